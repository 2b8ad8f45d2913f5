package codec

import (
	"fmt"
	"slices"
	"sync"

	"github.com/pierrec/lz4/v4"
)

// LZ4 is a [Codec] that stores a body as an LZ4 block when that is shorter
// than the body, and raw otherwise (reporting [OutcomeSkipped]). It
// decodes any encoding, compressed or not.
//
// It is safe for concurrent use. Each LZ4 keeps its own pool of
// compressors (a hash table of about 136 KiB each), one per concurrent
// Encode at most; idle ones are released by the garbage collector. The
// zero LZ4 is ready to use with the default options. An LZ4 must not be
// copied after first use.
type LZ4 struct {
	maxSize int       // 0 means DefaultMaxSize
	pool    sync.Pool // of *lz4.Compressor
}

// NewLZ4 returns an LZ4 codec with the given options; nil means the
// defaults. It returns [ErrInvalidOptions] for options out of range.
func NewLZ4(opts *Options) (*LZ4, error) {
	m, err := opts.maxSize()
	if err != nil {
		return nil, err
	}
	return &LZ4{maxSize: m}, nil
}

// MaxSize returns the longest body the codec encodes or decodes.
func (c *LZ4) MaxSize() int { return resolveMax(c.maxSize) }

// Encode appends the encoding of src to dst, compressed when that makes it
// shorter; see [Codec]. It returns [OutcomeCompressed] or
// [OutcomeSkipped].
func (c *LZ4) Encode(dst, src []byte) ([]byte, Outcome, error) {
	if m := c.MaxSize(); len(src) > m {
		return dst, OutcomeRaw, fmt.Errorf("%w: %d bytes, limit %d", ErrTooLarge, len(src), m)
	}
	start := len(dst)
	out := appendHeader(growFor(dst, len(src)), tagLZ4, len(src))
	if len(src) >= minCompressible {
		// Compress into the room the raw body would take, less one byte:
		// a block that does not fit there would not shrink the body. The
		// compressor reports that as n == 0 or an error, skipping the
		// copy of trailing literals, and writes nothing past the room.
		room := out[len(out) : len(out)+len(src)-1]
		comp, _ := c.pool.Get().(*lz4.Compressor)
		if comp == nil {
			comp = new(lz4.Compressor)
		}
		n, err := comp.CompressBlock(src, room)
		c.pool.Put(comp)
		if err == nil && n > 0 && n < len(src) {
			return out[:len(out)+n], OutcomeCompressed, nil
		}
	}
	out[start] = tagRaw
	return append(out, src...), OutcomeSkipped, nil
}

// Decode appends the body encoded in src to dst; see [Codec].
func (c *LZ4) Decode(dst, src []byte) ([]byte, error) {
	return decode(dst, src, c.MaxSize())
}

// growFor returns dst with room for the encoding of an n-byte body.
func growFor(dst []byte, n int) []byte {
	return slices.Grow(dst, headerLen(n)+n)
}
