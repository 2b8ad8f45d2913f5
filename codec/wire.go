package codec

import (
	"encoding/binary"
	"fmt"
	"math"
	"slices"

	"github.com/pierrec/lz4/v4"
)

// Tags: the first byte of an encoded body.
const (
	tagRaw byte = 0x00
	tagLZ4 byte = 0x01
)

// maxRatio is the largest ratio of decoded to encoded size an LZ4 block can
// have: a sequence of 3+k bytes (token, offset, k length bytes) expands to
// at most 19+255k bytes, and a literal byte to one.
const maxRatio = 255

// minCompressible is the length of the shortest body that an LZ4 block can
// be shorter than. The block format requires the last match to start at
// least 12 bytes before the end, so a shorter body is all literals: a token
// and the body, one byte longer than the body.
const minCompressible = 13

// MaxEncodedLen returns the longest encoding of a body of n bytes: the tag,
// the length varint and the body itself. Encode never needs more room than
// that. It returns -1 when n is negative or the length would overflow int.
func MaxEncodedLen(n int) int {
	if n < 0 {
		return -1
	}
	h := headerLen(n)
	if n > math.MaxInt-h {
		return -1
	}
	return h + n
}

// headerLen returns the length of the header of a body of n ≥ 0 bytes.
func headerLen(n int) int {
	h := 2 // tag and the varint's last byte
	for u := uint64(n); u >= 0x80; u >>= 7 {
		h++
	}
	return h
}

// appendHeader appends the header for a body of n bytes with the given tag.
func appendHeader(dst []byte, tag byte, n int) []byte {
	return binary.AppendUvarint(append(dst, tag), uint64(n))
}

// corrupt returns an error wrapping ErrCorrupt.
func corrupt(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ErrCorrupt}, args...)...)
}

// parseHeader reads the header of src and checks it against the payload
// length, so that rawLen can be trusted not to exceed what the payload can
// hold; the payload is src[hdrLen:]. It does not look inside an LZ4
// payload.
func parseHeader(src []byte) (tag byte, rawLen, hdrLen int, err error) {
	if len(src) < 2 {
		return 0, 0, 0, corrupt("%d bytes, shorter than any header", len(src))
	}
	tag = src[0]
	var v uint64
	var k int
	if b := src[1]; b < 0x80 {
		v, k = uint64(b), 1 // a body under 128 bytes
	} else if len(src) > 2 && src[2] < 0x80 && src[2] != 0 {
		v, k = uint64(b&0x7f)|uint64(src[2])<<7, 2 // under 16 KiB
	} else {
		v, k = binary.Uvarint(src[1:])
		if k <= 0 || src[k] == 0 {
			return 0, 0, 0, badLength(k)
		}
	}
	hdrLen = 1 + k
	p := uint64(len(src) - hdrLen)
	switch tag {
	case tagRaw:
		if v != p {
			return 0, 0, 0, corrupt("raw body of %d bytes claims %d", p, v)
		}
	case tagLZ4:
		if p == 0 || p >= v {
			return 0, 0, 0, corrupt("LZ4 block of %d bytes claims to hold %d", p, v)
		}
		if v > p*maxRatio || v > math.MaxInt {
			return 0, 0, 0, corrupt("LZ4 block of %d bytes cannot hold %d", p, v)
		}
	default:
		return 0, 0, 0, corrupt("unknown tag 0x%02x", tag)
	}
	return tag, int(v), hdrLen, nil
}

// badLength describes a length varint that binary.Uvarint read as k.
func badLength(k int) error {
	switch {
	case k == 0:
		return corrupt("truncated length")
	case k < 0:
		return corrupt("length overflows 64 bits")
	}
	return corrupt("length not in its shortest form")
}

// Info reports, without decoding, whether the encoded body src is stored
// compressed and the length of the body it holds. It checks the header
// and the payload length but not the LZ4 block itself, so Decode may
// still return [ErrCorrupt] when Info did not. It applies no maximum size.
func Info(src []byte) (compressed bool, rawLen int, err error) {
	tag, rawLen, _, err := parseHeader(src)
	if err != nil {
		return false, 0, err
	}
	return tag == tagLZ4, rawLen, nil
}

// decode implements Codec.Decode for a codec with the given maximum size.
func decode(dst, src []byte, maxSize int) ([]byte, error) {
	tag, rawLen, hdrLen, err := parseHeader(src)
	if err != nil {
		return dst, err
	}
	if rawLen > maxSize {
		return dst, fmt.Errorf("%w: %d bytes, limit %d", ErrTooLarge, rawLen, maxSize)
	}
	if tag == tagRaw {
		return append(dst, src[hdrLen:]...), nil
	}
	start := len(dst)
	out := slices.Grow(dst, rawLen)[:start+rawLen]
	n, err := lz4.UncompressBlock(src[hdrLen:], out[start:])
	if err != nil {
		return dst, corrupt("LZ4 block: %v", err)
	}
	if n != rawLen {
		return dst, corrupt("LZ4 block holds %d bytes, header claims %d", n, rawLen)
	}
	return out, nil
}
