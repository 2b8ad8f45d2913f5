package wire

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"runtime"
	"testing"
)

func TestRoundTrip(t *testing.T) {
	var b []byte
	b = AppendPreamble(b)
	b = AppendFrame(b, KindRequest, 0, AppendRequest(nil, RequestParams{Window: 1 << 18, Sources: 3, MaxFrame: 99, TimeoutUS: 7, Flags: FlagCodec}, []byte("body")))
	b = AppendFrame(b, KindData, 1<<32-1, bytes.Repeat([]byte{7}, 300))
	b = AppendFrame(b, KindEnd, 0, AppendStatus(nil, 1, 42, "boom"))
	r := NewReader(bufio.NewReader(bytes.NewReader(b)), 1000)
	if err := r.ReadPreamble(); err != nil {
		t.Fatal(err)
	}
	h, err := r.ReadHeader()
	if err != nil || h.Kind != KindRequest {
		t.Fatal(h, err)
	}
	p, _ := r.ReadPayload(h.Len)
	rp, body, err := ParseRequest(p)
	if err != nil || rp.Window != 1<<18 || rp.Sources != 3 || rp.MaxFrame != 99 || rp.TimeoutUS != 7 || rp.Flags != FlagCodec || string(body) != "body" {
		t.Fatal(rp, body, err)
	}
	h, _ = r.ReadHeader()
	if h.Kind != KindData || h.ID != 1<<32-1 || h.Len != 300 {
		t.Fatal(h)
	}
	r.Discard(h.Len)
	h, _ = r.ReadHeader()
	p, _ = r.ReadPayload(h.Len)
	st, code, msg, err := ParseStatus(p)
	if err != nil || st != 1 || code != 42 || msg != "boom" {
		t.Fatal(st, code, msg, err)
	}
	if _, err := r.ReadHeader(); !errors.Is(err, io.EOF) {
		t.Fatal(err)
	}
}

func TestLimits(t *testing.T) {
	// A frame claiming 1 TiB is refused from its header alone.
	b := AppendHeader(nil, KindData, 1, 1<<40)
	r := NewReader(bufio.NewReader(bytes.NewReader(b)), 1<<20)
	if _, err := r.ReadHeader(); !errors.Is(err, ErrTooLarge) {
		t.Fatal(err)
	}
	// An id over 32 bits and an overlong varint are malformed.
	b = append([]byte{byte(KindData)}, 0x80, 0x80, 0x80, 0x80, 0x10, 0)
	if _, err := NewReader(bufio.NewReader(bytes.NewReader(b)), 10).ReadHeader(); !errors.Is(err, ErrMalformed) {
		t.Fatal(err)
	}
	b = append([]byte{byte(KindData)}, bytes.Repeat([]byte{0xff}, 11)...)
	if _, err := NewReader(bufio.NewReader(bytes.NewReader(b)), 10).ReadHeader(); !errors.Is(err, ErrMalformed) {
		t.Fatal(err)
	}
	// A stream cut inside a frame is unexpected EOF, not a clean end.
	b = AppendFrame(nil, KindData, 1, []byte("hello"))
	r = NewReader(bufio.NewReader(bytes.NewReader(b[:len(b)-1])), 10)
	h, err := r.ReadHeader()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.ReadPayload(h.Len); !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Fatal(err)
	}
	if err := CheckPreamble([]byte("CHSV\x02\x00\x00\x00")); !errors.Is(err, ErrMalformed) {
		t.Fatal(err)
	}
}

// FuzzReader decodes arbitrary bytes as frames: it must never panic,
// never return a payload over the limit, and agree with the encoder.
func FuzzReader(f *testing.F) {
	f.Add(AppendFrame(nil, KindData, 3, []byte("hello")))
	f.Add(AppendFrame(AppendFrame(nil, KindEnd, 0, AppendStatus(nil, 0, 0, "")), KindSource, 9, nil))
	f.Add(AppendHeader(nil, KindData, 1, 1<<40))
	f.Add(AppendFrame(nil, KindRequest, 0, AppendRequest(nil, RequestParams{Window: 1, Sources: 1, MaxFrame: 1}, []byte("x"))))
	const limit = 4096
	f.Fuzz(func(t *testing.T, in []byte) {
		r := NewReader(bufio.NewReader(bytes.NewReader(in)), limit)
		var out []byte
		for {
			h, err := r.ReadHeader()
			if err != nil {
				break
			}
			if h.Len > limit || h.Len < 0 {
				t.Fatalf("header length %d over the limit", h.Len)
			}
			p, err := r.ReadPayload(h.Len)
			if err != nil {
				break
			}
			if len(p) != h.Len {
				t.Fatalf("payload %d bytes, header %d", len(p), h.Len)
			}
			out = AppendFrame(out, h.Kind, h.ID, p)
			switch h.Kind {
			case KindEnd, KindEndSource:
				ParseStatus(p)
			case KindRequest:
				ParseRequest(p)
			}
		}
		// Re-decoding what was re-encoded gives the same frames.
		r2 := NewReader(bufio.NewReader(bytes.NewReader(out)), limit)
		var again []byte
		for {
			h, err := r2.ReadHeader()
			if err != nil {
				break
			}
			p, err := r2.ReadPayload(h.Len)
			if err != nil {
				t.Fatalf("re-encoded frame: %v", err)
			}
			again = AppendFrame(again, h.Kind, h.ID, p)
		}
		if !bytes.Equal(out, again) {
			t.Fatal("re-encoding is not stable")
		}
	})
}

func TestReadTemp(t *testing.T) {
	small := bytes.Repeat([]byte{1}, 10)
	large := bytes.Repeat([]byte{2}, 5000) // over the 4096-byte buffer
	var b []byte
	b = AppendFrame(b, KindCredit, 3, small)
	b = AppendFrame(b, KindData, 4, large)
	b = AppendFrame(b, KindCredit, 5, small[:3]) // truncated below
	r := NewReader(bufio.NewReaderSize(bytes.NewReader(b[:len(b)-1]), 4096), 1<<20)
	for _, want := range [][]byte{small, large} {
		h, err := r.ReadHeader()
		if err != nil {
			t.Fatal(err)
		}
		p, err := r.ReadTemp(h.Len)
		if err != nil || !bytes.Equal(p, want) {
			t.Fatalf("payload of %d bytes, want %d: %v", len(p), len(want), err)
		}
	}
	h, err := r.ReadHeader()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.ReadTemp(h.Len); !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Fatalf("truncated payload: %v, want io.ErrUnexpectedEOF", err)
	}
}

func TestReadPreambleTruncated(t *testing.T) {
	for n, want := range map[int]error{0: io.EOF, 5: io.ErrUnexpectedEOF} {
		r := NewReader(bufio.NewReader(bytes.NewReader(AppendPreamble(nil)[:n])), 10)
		if err := r.ReadPreamble(); !errors.Is(err, want) {
			t.Errorf("%d bytes: %v, want %v", n, err, want)
		}
	}
}

// ReadPayload and ReadTemp allocate as the bytes arrive: a payload
// announced at 64 MiB of which 100 KB come costs about what came.
func TestPayloadAllocatedAsItArrives(t *testing.T) {
	const announced, sent = 64 << 20, 100 << 10
	for name, read := range map[string]func(r *Reader) error{
		"ReadPayload": func(r *Reader) error { _, err := r.ReadPayload(announced); return err },
		"ReadTemp":    func(r *Reader) error { _, err := r.ReadTemp(announced); return err },
	} {
		r := NewReader(bufio.NewReader(bytes.NewReader(make([]byte, sent))), announced)
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		if err := read(r); !errors.Is(err, io.ErrUnexpectedEOF) {
			t.Fatalf("%s of a short payload: %v, want ErrUnexpectedEOF", name, err)
		}
		runtime.ReadMemStats(&after)
		if got := after.TotalAlloc - before.TotalAlloc; got > 8<<20 {
			t.Fatalf("%s: %d bytes allocated for %d that came of %d announced", name, got, sent, announced)
		}
	}
}
