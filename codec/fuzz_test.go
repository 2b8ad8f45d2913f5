package codec_test

import (
	"bytes"
	"errors"
	"testing"

	"github.com/beanspike/beanspike/codec"
)

// fuzzMaxSize is the codecs' limit in the fuzz targets, small enough that
// a lying header cannot make a run slow.
const fuzzMaxSize = 1 << 20

// addEncodedSeeds adds valid encodings of some bodies to f.
func addEncodedSeeds(f *testing.F) {
	l, _ := newCodecs(f, nil)
	for i, fam := range families {
		for _, n := range []int{0, 1, 12, 13, 20, 100, 2000} {
			enc, _, err := l.Encode(nil, fam.gen(uint64(i), n))
			if err != nil {
				f.Fatal(err)
			}
			f.Add(enc)
		}
	}
}

// FuzzDecode checks that Decode of any input returns a body or an error,
// never panics, and never produces more than the limit or than the input
// can hold.
func FuzzDecode(f *testing.F) {
	addEncodedSeeds(f)
	for _, s := range [][]byte{
		nil, {0x00}, {0x01}, {0x02, 0x00}, {0x00, 0x80, 0x00}, {0x00, 0x03, 'a', 'b'},
		{0x01, 0x14, 0x10, 'a', 0x00, 0x00, 0x50, 'b', 'c', 'd', 'e', 'f'},
		{0x01, 0xff, 0xff, 0xff, 0xff, 0x0f, 0x1f, 'a', 0x01, 0x00, 0xff, 0xff},
	} {
		f.Add(s)
	}
	l, r := newCodecs(f, &codec.Options{MaxSize: fuzzMaxSize})
	f.Fuzz(func(t *testing.T, src []byte) {
		compressed, rawLen, infoErr := codec.Info(src)
		var bodies [][]byte
		for _, c := range []codec.Codec{l, r} {
			dst := []byte("keep")
			got, err := c.Decode(dst, src)
			if err != nil {
				if !errors.Is(err, codec.ErrCorrupt) && !errors.Is(err, codec.ErrTooLarge) {
					t.Fatalf("%T.Decode: unexpected error %v", c, err)
				}
				if string(got) != "keep" {
					t.Fatalf("%T.Decode returned %q with an error, want dst", c, head(got))
				}
				if infoErr == nil && errors.Is(err, codec.ErrTooLarge) != (rawLen > fuzzMaxSize) {
					t.Fatalf("%T.Decode: %v, but Info says %d bytes", c, err, rawLen)
				}
				bodies = append(bodies, nil)
				continue
			}
			if infoErr != nil {
				t.Fatalf("%T.Decode succeeded where Info failed: %v", c, infoErr)
			}
			body := got[4:]
			if string(got[:4]) != "keep" || len(body) != rawLen {
				t.Fatalf("%T.Decode: %d bytes after %q, Info says %d", c, len(body), got[:4], rawLen)
			}
			if len(body) > fuzzMaxSize || len(body) > 255*len(src) {
				t.Fatalf("%T.Decode: %d bytes from %d, over a limit", c, len(body), len(src))
			}
			bodies = append(bodies, body)
		}
		if (bodies[0] == nil) != (bodies[1] == nil) || !bytes.Equal(bodies[0], bodies[1]) {
			t.Fatalf("LZ4 and Raw decode differently")
		}
		body := bodies[0]
		if body == nil {
			return
		}
		// A valid raw encoding is the one Raw makes; any valid body
		// round-trips.
		if !compressed {
			enc, _, err := r.Encode(nil, body)
			if err != nil || !bytes.Equal(enc, src) {
				t.Fatalf("raw encoding is not canonical: % x re-encodes to % x (%v)", head(src), head(enc), err)
			}
		}
		enc, _, err := l.Encode(nil, body)
		if err != nil {
			t.Fatal(err)
		}
		again, err := l.Decode(nil, enc)
		if err != nil || !bytes.Equal(again, body) {
			t.Fatalf("decoded body does not round-trip: %v", err)
		}
	})
}

// FuzzRoundTrip checks that every body round-trips through both codecs in
// the documented format.
func FuzzRoundTrip(f *testing.F) {
	for i, fam := range families {
		for _, n := range []int{0, 1, 2, 12, 13, 14, 15, 19, 20, 21, 64, 1000, 4000} {
			f.Add(fam.gen(uint64(i), n))
		}
	}
	l, r := newCodecs(f, &codec.Options{MaxSize: fuzzMaxSize})
	f.Fuzz(func(t *testing.T, src []byte) {
		if len(src) > fuzzMaxSize {
			return
		}
		checkRoundTrip(t, l, r, src)
		checkRoundTrip(t, r, l, src)
	})
}
