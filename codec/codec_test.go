package codec_test

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"runtime"
	"sync"
	"testing"

	"github.com/beanspike/beanspike/codec"
	"github.com/pierrec/lz4/v4"
)

// roundTripSizes are the body lengths of TestRoundTrip: the empty body,
// every length around the 13-byte minimum an LZ4 block can shrink and
// the compressor's own 15-byte limit, and lengths around LZ4's 64 KiB
// window, powers of two and a few MiB.
func roundTripSizes(short bool) []int {
	var sizes []int
	for n := 0; n <= 80; n++ {
		sizes = append(sizes, n)
	}
	sizes = append(sizes, 127, 128, 255, 256, 1023, 1024, 4095, 4096,
		65535, 65536, 65537, 2*65536+7, 1<<20-1, 1<<20)
	if !short {
		sizes = append(sizes, 4<<20+3)
	}
	return sizes
}

// header returns the header of an encoded body of n bytes with the tag.
func header(tag byte, n int) []byte {
	return binary.AppendUvarint([]byte{tag}, uint64(n))
}

// referenceLZ4 compresses src with the lz4 block API directly, into a
// buffer of the full bound, and returns the block or nil when the library
// reports it incompressible.
func referenceLZ4(t testing.TB, src []byte) []byte {
	t.Helper()
	dst := make([]byte, lz4.CompressBlockBound(len(src)))
	n, err := lz4.CompressBlock(src, dst, nil)
	if err != nil {
		t.Fatalf("lz4.CompressBlock(%d bytes): %v", len(src), err)
	}
	if n == 0 {
		return nil
	}
	return dst[:n]
}

// checkRoundTrip encodes src with c after a prefix, checks the encoding
// against the wire format and the reference compressor, and decodes it
// back with c and with other.
func checkRoundTrip(t testing.TB, c, other codec.Codec, src []byte) {
	t.Helper()
	prefix := []byte("prefix")
	enc, outcome, err := c.Encode(bytes.Clone(prefix), src)
	if err != nil {
		t.Fatalf("Encode(%d bytes): %v", len(src), err)
	}
	if !bytes.Equal(enc[:len(prefix)], prefix) {
		t.Fatalf("Encode overwrote dst's prefix: %q", enc[:len(prefix)])
	}
	blob := enc[len(prefix):]
	if max := codec.MaxEncodedLen(len(src)); len(blob) > max {
		t.Fatalf("encoded %d bytes into %d, MaxEncodedLen %d", len(src), len(blob), max)
	}

	compressed, rawLen, err := codec.Info(blob)
	if err != nil {
		t.Fatalf("Info: %v", err)
	}
	if rawLen != len(src) || compressed != outcome.Compressed() {
		t.Fatalf("Info = (%v, %d), want (%v, %d)", compressed, rawLen, outcome.Compressed(), len(src))
	}

	// The stored form is exactly what the wire format and the reference
	// compressor say it must be.
	var want []byte
	switch c.(type) {
	case *codec.Raw:
		if outcome != codec.OutcomeRaw {
			t.Fatalf("Raw codec: outcome %v", outcome)
		}
		want = append(header(0x00, len(src)), src...)
	case *codec.LZ4:
		ref := referenceLZ4(t, src)
		if ref != nil && len(ref) < len(src) {
			if outcome != codec.OutcomeCompressed {
				t.Fatalf("LZ4 codec: outcome %v, but lz4 shrinks %d bytes to %d", outcome, len(src), len(ref))
			}
			want = append(header(0x01, len(src)), ref...)
		} else {
			if outcome != codec.OutcomeSkipped {
				t.Fatalf("LZ4 codec: outcome %v, but lz4 does not shrink %d bytes (block %d bytes)", outcome, len(src), len(ref))
			}
			want = append(header(0x00, len(src)), src...)
		}
	default:
		t.Fatalf("unknown codec %T", c)
	}
	if !bytes.Equal(blob, want) {
		t.Fatalf("encoding of %d bytes (%v) differs from the wire format:\n got % x\nwant % x",
			len(src), outcome, head(blob), head(want))
	}

	for _, d := range []codec.Codec{c, other} {
		got, err := d.Decode(bytes.Clone(prefix), blob)
		if err != nil {
			t.Fatalf("%T.Decode: %v", d, err)
		}
		if !bytes.Equal(got[:len(prefix)], prefix) || !bytes.Equal(got[len(prefix):], src) {
			t.Fatalf("%T.Decode after prefix: got %d bytes, want %d", d, len(got)-len(prefix), len(src))
		}
		got, err = d.Decode(nil, blob)
		if err != nil || !bytes.Equal(got, src) {
			t.Fatalf("%T.Decode(nil): %d bytes, %v; want %d bytes", d, len(got), err, len(src))
		}
	}
}

// head returns at most the first 32 bytes of b, for messages.
func head(b []byte) []byte { return b[:min(len(b), 32)] }

func newCodecs(t testing.TB, opts *codec.Options) (*codec.LZ4, *codec.Raw) {
	t.Helper()
	l, err := codec.NewLZ4(opts)
	if err != nil {
		t.Fatalf("NewLZ4: %v", err)
	}
	r, err := codec.NewRaw(opts)
	if err != nil {
		t.Fatalf("NewRaw: %v", err)
	}
	return l, r
}

func TestRoundTrip(t *testing.T) {
	l, r := newCodecs(t, nil)
	for _, fam := range families {
		t.Run(fam.name, func(t *testing.T) {
			t.Parallel()
			counts := map[codec.Outcome]int{}
			for i, n := range roundTripSizes(testing.Short()) {
				src := fam.gen(uint64(i), n)
				checkRoundTrip(t, l, r, src)
				checkRoundTrip(t, r, l, src)
				_, o, _ := l.Encode(nil, src)
				counts[o]++
			}
			t.Logf("LZ4 outcomes: %v", counts)
		})
	}
}

// TestSkipThreshold checks that no body shorter than 13 bytes is stored
// compressed, and that the first lengths that can shrink do.
func TestSkipThreshold(t *testing.T) {
	l, _ := newCodecs(t, nil)
	for n := 0; n < 13; n++ {
		for i, fam := range families {
			src := fam.gen(uint64(i), n)
			if ref := referenceLZ4(t, src); ref != nil && len(ref) < n {
				t.Errorf("%s: lz4 shrinks %d bytes to %d: the threshold is wrong", fam.name, n, len(ref))
			}
			if _, o, err := l.Encode(nil, src); err != nil || o != codec.OutcomeSkipped {
				t.Errorf("%s: Encode(%d bytes) = %v, %v; want skipped", fam.name, n, o, err)
			}
		}
	}
	// 20 zero bytes is the shortest body this compressor shrinks (by a
	// byte), 19 the longest it does not.
	for n, want := range map[int]codec.Outcome{19: codec.OutcomeSkipped, 20: codec.OutcomeCompressed} {
		enc, o, err := l.Encode(nil, make([]byte, n))
		if err != nil || o != want {
			t.Errorf("Encode(%d zeros) = %v, %v; want %v", n, o, err, want)
		}
		if o.Compressed() && len(enc) != 2+n-1 {
			t.Errorf("Encode(%d zeros) stored %d bytes, want %d", n, len(enc), 2+n-1)
		}
	}
}

// TestMaxRatio checks that the bound on a block's ratio does not reject
// bodies that compress as well as LZ4 allows.
func TestMaxRatio(t *testing.T) {
	l, r := newCodecs(t, nil)
	src := make([]byte, 8<<20)
	checkRoundTrip(t, l, r, src)
	enc, _, _ := l.Encode(nil, src)
	t.Logf("8 MiB of zeros: %d bytes stored, ratio %.1f", len(enc), float64(len(src))/float64(len(enc)))

	// A hand-made block at the format's limit: one literal, then one
	// match of 19+255k bytes, spelled with k 0xff length bytes.
	for _, k := range []int{0, 1, 2, 1000} {
		block := []byte{0x1f, 'a', 0x01, 0x00}
		block = append(block, bytes.Repeat([]byte{0xff}, k)...)
		block = append(block, 0x00)
		n := 1 + 4 + 15 + 255*k
		blob := append(header(0x01, n), block...)
		got, err := l.Decode(nil, blob)
		if err != nil || !bytes.Equal(got, bytes.Repeat([]byte{'a'}, n)) {
			t.Errorf("k=%d: Decode of a %d-byte block holding %d bytes: %d bytes, %v", k, len(block), n, len(got), err)
		}
	}
}

func TestDecodeCorrupt(t *testing.T) {
	l, r := newCodecs(t, nil)
	text := textBytes(1, 4096)
	valid, o, err := l.Encode(nil, text)
	if err != nil || !o.Compressed() {
		t.Fatalf("Encode(text) = %v, %v", o, err)
	}
	block := valid[len(header(0x01, len(text))):]
	withLen := func(n int) []byte { return append(header(0x01, n), block...) }
	maxUvarint := append([]byte{0x01}, binary.AppendUvarint(nil, ^uint64(0))...)

	tests := []struct {
		name string
		src  []byte
		// infoOK: the header is sound; only decoding the block finds
		// the damage.
		infoOK bool
	}{
		{"empty", nil, false},
		{"raw tag only", []byte{0x00}, false},
		{"lz4 tag only", []byte{0x01}, false},
		{"unknown tag 0x02", []byte{0x02, 0x00}, false},
		{"unknown tag 0xff", []byte{0xff, 0x05, 'h', 'e', 'l', 'l', 'o'}, false},
		{"truncated length", []byte{0x00, 0x80}, false},
		{"length overflows", append([]byte{0x00}, bytes.Repeat([]byte{0xff}, 10)...), false},
		{"length not shortest", []byte{0x00, 0x80, 0x00}, false},
		{"raw payload short", []byte{0x00, 0x05, 'h', 'e', 'l', 'l'}, false},
		{"raw payload long", []byte{0x00, 0x03, 'h', 'e', 'l', 'l'}, false},
		{"raw huge length", append(header(0x00, 1<<62), "abc"...), false},
		{"lz4 empty block", []byte{0x01, 0x05}, false},
		{"lz4 block not shorter", []byte{0x01, 0x03, 0x30, 'a', 'b', 'c'}, false},
		{"lz4 ratio over 255", append(header(0x01, 3*255+1), 0x00, 0x00, 0x00), false},
		{"lz4 huge length", append(header(0x01, 1<<40), 0x00, 0x00, 0x00), false},
		{"lz4 max uvarint", append(maxUvarint, 0x00, 0x00, 0x00), false},
		{"lz4 length one more", withLen(len(text) + 1), true},
		{"lz4 length one less", withLen(len(text) - 1), true},
		{"lz4 truncated block", valid[:len(valid)-1], true},
		{"lz4 zero offset", append(header(0x01, 20), 0x10, 'a', 0x00, 0x00, 0x50, 'b', 'c', 'd', 'e', 'f'), true},
		{"lz4 offset before start", append(header(0x01, 20), 0x10, 'a', 0x05, 0x00, 0x50, 'b', 'c', 'd', 'e', 'f'), true},
		{"lz4 literals past end", append(header(0x01, 100), 0xf0, 0x50, 'a', 'b'), true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, c := range []codec.Codec{l, r} {
				dst := make([]byte, 4, 64)
				copy(dst, "keep")
				got, err := c.Decode(dst, tt.src)
				if !errors.Is(err, codec.ErrCorrupt) {
					t.Errorf("%T.Decode(% x) = %d bytes, %v; want ErrCorrupt", c, head(tt.src), len(got), err)
				}
				if string(got) != "keep" {
					t.Errorf("%T.Decode returned %q on error, want dst unchanged", c, got)
				}
			}
			_, _, err := codec.Info(tt.src)
			if tt.infoOK && err != nil {
				t.Errorf("Info: %v; want no error (header is sound)", err)
			}
			if !tt.infoOK && !errors.Is(err, codec.ErrCorrupt) {
				t.Errorf("Info: %v; want ErrCorrupt", err)
			}
		})
	}
}

// allocatedBytes returns the bytes f allocates on the heap, on average
// over runs calls.
func allocatedBytes(runs int, f func()) uint64 {
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	for range runs {
		f()
	}
	runtime.ReadMemStats(&after)
	return (after.TotalAlloc - before.TotalAlloc) / uint64(runs)
}

// TestDecodeClaimsAllocateNothing checks that a header claiming a body
// the payload cannot hold, or one over the limit, is rejected before any
// buffer for the body is allocated.
func TestDecodeClaimsAllocateNothing(t *testing.T) {
	l, _ := newCodecs(t, nil)
	overLimit := append(header(0x01, codec.DefaultMaxSize+1), make([]byte, codec.DefaultMaxSize/255+1)...)
	for name, src := range map[string][]byte{
		"lz4 huge length":  append(header(0x01, 1<<40), 0x00, 0x00, 0x00),
		"lz4 ratio":        append(header(0x01, 1<<20), make([]byte, 100)...),
		"raw huge length":  append(header(0x00, 1<<50), "abc"...),
		"over the maximum": overLimit,
	} {
		var err error
		perCall := allocatedBytes(100, func() { _, err = l.Decode(nil, src) })
		if err == nil {
			t.Errorf("%s: Decode succeeded", name)
		}
		if perCall > 1024 {
			t.Errorf("%s: Decode allocated %d bytes per call before failing (%v)", name, perCall, err)
		}
	}
}

func TestTooLarge(t *testing.T) {
	small, smallRaw := newCodecs(t, &codec.Options{MaxSize: 100})
	big, _ := newCodecs(t, nil)
	for _, c := range []codec.Codec{small, smallRaw} {
		dst := []byte("keep")
		got, o, err := c.Encode(dst, make([]byte, 101))
		if !errors.Is(err, codec.ErrTooLarge) || string(got) != "keep" || o != codec.OutcomeRaw {
			t.Errorf("%T.Encode(101 bytes, limit 100) = %q, %v, %v; want dst, raw, ErrTooLarge", c, head(got), o, err)
		}
		enc, _, err := c.Encode(nil, make([]byte, 100))
		if err != nil {
			t.Fatalf("%T.Encode(100 bytes, limit 100): %v", c, err)
		}
		if _, err := c.Decode(nil, enc); err != nil {
			t.Errorf("%T.Decode(100 bytes, limit 100): %v", c, err)
		}
		for _, src := range [][]byte{make([]byte, 101), randomBytes(1, 101)} {
			enc, _, err := big.Encode(nil, src)
			if err != nil {
				t.Fatal(err)
			}
			got, err := c.Decode(dst, enc)
			if !errors.Is(err, codec.ErrTooLarge) || errors.Is(err, codec.ErrCorrupt) || string(got) != "keep" {
				t.Errorf("%T.Decode(101-byte body, limit 100) = %q, %v; want dst, ErrTooLarge", c, head(got), err)
			}
		}
	}
	// The default limit: a plausible header one byte over it.
	src := append(header(0x01, codec.DefaultMaxSize+1), make([]byte, codec.DefaultMaxSize/255+1)...)
	if _, err := big.Decode(nil, src); !errors.Is(err, codec.ErrTooLarge) {
		t.Errorf("Decode(DefaultMaxSize+1) = %v, want ErrTooLarge", err)
	}
	if _, _, err := big.Encode(nil, make([]byte, codec.DefaultMaxSize+1)); !errors.Is(err, codec.ErrTooLarge) {
		t.Errorf("Encode(DefaultMaxSize+1) = %v, want ErrTooLarge", err)
	}
}

func TestOptions(t *testing.T) {
	opts := &codec.Options{MaxSize: -1}
	if _, err := codec.NewLZ4(opts); !errors.Is(err, codec.ErrInvalidOptions) {
		t.Errorf("NewLZ4(MaxSize -1) = %v, want ErrInvalidOptions", err)
	}
	if _, err := codec.NewRaw(opts); !errors.Is(err, codec.ErrInvalidOptions) {
		t.Errorf("NewRaw(MaxSize -1) = %v, want ErrInvalidOptions", err)
	}
	if opts.MaxSize != -1 {
		t.Errorf("constructor changed the options: %+v", opts)
	}

	zero := &codec.Options{}
	l, r := newCodecs(t, zero)
	var zl codec.LZ4
	var zr codec.Raw
	for name, got := range map[string]int{
		"LZ4(&Options{})": l.MaxSize(), "Raw(&Options{})": r.MaxSize(),
		"zero LZ4": zl.MaxSize(), "zero Raw": zr.MaxSize(),
	} {
		if got != codec.DefaultMaxSize {
			t.Errorf("%s.MaxSize() = %d, want %d", name, got, codec.DefaultMaxSize)
		}
	}
	if *zero != (codec.Options{}) {
		t.Errorf("constructor changed the options: %+v", zero)
	}
	l, _ = newCodecs(t, &codec.Options{MaxSize: 7})
	if l.MaxSize() != 7 {
		t.Errorf("MaxSize() = %d, want 7", l.MaxSize())
	}

	// Zero codecs work.
	src := textBytes(2, 1000)
	checkRoundTrip(t, &zl, &zr, src)
	checkRoundTrip(t, &zr, &zl, src)
}

func TestOutcome(t *testing.T) {
	for _, tt := range []struct {
		o                   codec.Outcome
		compressed, skipped bool
		s                   string
	}{
		{codec.OutcomeRaw, false, false, "raw"},
		{codec.OutcomeCompressed, true, false, "compressed"},
		{codec.OutcomeSkipped, false, true, "skipped"},
		{codec.Outcome(9), false, false, "Outcome(9)"},
	} {
		if tt.o.Compressed() != tt.compressed || tt.o.Skipped() != tt.skipped || tt.o.String() != tt.s {
			t.Errorf("%d: got (%v, %v, %q), want (%v, %v, %q)", tt.o,
				tt.o.Compressed(), tt.o.Skipped(), tt.o.String(), tt.compressed, tt.skipped, tt.s)
		}
	}
}

func TestMaxEncodedLen(t *testing.T) {
	for n, want := range map[int]int{0: 2, 1: 3, 127: 129, 128: 131, 1 << 14: 1<<14 + 4, -1: -1} {
		if got := codec.MaxEncodedLen(n); got != want {
			t.Errorf("MaxEncodedLen(%d) = %d, want %d", n, got, want)
		}
	}
	if got := codec.MaxEncodedLen(int(^uint(0) >> 1)); got != -1 {
		t.Errorf("MaxEncodedLen(MaxInt) = %d, want -1", got)
	}
}

// TestNoAllocs checks that Encode and Decode allocate nothing when dst has
// room.
func TestNoAllocs(t *testing.T) {
	l, r := newCodecs(t, nil)
	for _, fam := range families {
		src := fam.gen(3, 64<<10)
		enc := make([]byte, 0, codec.MaxEncodedLen(len(src)))
		dec := make([]byte, 0, len(src))
		blob, _, err := l.Encode(nil, src)
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range []codec.Codec{l, r} {
			encAllocs := testing.AllocsPerRun(50, func() { _, _, _ = c.Encode(enc, src) })
			decAllocs := testing.AllocsPerRun(50, func() { _, _ = c.Decode(dec, blob) })
			// The race detector makes sync.Pool drop items at random,
			// so a compressor is sometimes made anew.
			limit := 0.0
			if raceEnabled {
				limit = 0.9
			}
			if encAllocs > limit {
				t.Errorf("%s: %T.Encode allocates %.2f times per call with room in dst", fam.name, c, encAllocs)
			}
			if decAllocs != 0 {
				t.Errorf("%s: %T.Decode allocates %.2f times per call with room in dst", fam.name, c, decAllocs)
			}
		}
	}
}

// TestConcurrent shares one codec among goroutines; run with -race.
func TestConcurrent(t *testing.T) {
	l, _ := newCodecs(t, nil)
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 20 {
				fam := families[(g+i)%len(families)]
				src := fam.gen(uint64(g*100+i), 1000+i*997)
				enc, _, err := l.Encode(nil, src)
				if err != nil {
					t.Errorf("Encode: %v", err)
					return
				}
				got, err := l.Decode(nil, enc)
				if err != nil || !bytes.Equal(got, src) {
					t.Errorf("goroutine %d, %s, %d bytes: round trip failed: %v", g, fam.name, len(src), err)
					return
				}
			}
		})
	}
	wg.Wait()
}

// TestErrorsWrap checks that errors carry detail and still match.
func TestErrorsWrap(t *testing.T) {
	_, _, err := codec.Info([]byte{0x07, 0x00})
	if !errors.Is(err, codec.ErrCorrupt) || err.Error() == codec.ErrCorrupt.Error() {
		t.Errorf("Info(bad tag) = %v; want ErrCorrupt with detail", err)
	}
	want := fmt.Sprintf("%02x", 0x07)
	if !bytes.Contains([]byte(err.Error()), []byte(want)) {
		t.Errorf("error %q does not name the tag", err)
	}
}

// TestWireExamples checks the examples of the package documentation.
func TestWireExamples(t *testing.T) {
	l, _ := newCodecs(t, nil)
	for _, tt := range []struct {
		body []byte
		want []byte // a prefix of the encoding
		full bool   // want is the whole encoding
	}{
		{nil, []byte{0x00, 0x00}, true},
		{[]byte("hi"), []byte{0x00, 0x02, 'h', 'i'}, true},
		{make([]byte, 1000), []byte{0x01, 0xe8, 0x07}, false},
	} {
		enc, _, err := l.Encode(nil, tt.body)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.HasPrefix(enc, tt.want) || (tt.full && len(enc) != len(tt.want)) {
			t.Errorf("encoding of %d bytes = % x, want % x (whole: %v)", len(tt.body), head(enc), tt.want, tt.full)
		}
	}
}
