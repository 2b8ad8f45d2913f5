package codec

import "fmt"

// Raw is a [Codec] that never compresses: it stores every body raw and
// reports [OutcomeRaw]. It decodes any encoding, compressed or not. It is
// safe for concurrent use. The zero Raw is ready to use with the default
// options.
type Raw struct {
	maxSize int // 0 means DefaultMaxSize
}

// NewRaw returns a Raw codec with the given options; nil means the
// defaults. It returns [ErrInvalidOptions] for options out of range.
func NewRaw(opts *Options) (*Raw, error) {
	m, err := opts.maxSize()
	if err != nil {
		return nil, err
	}
	return &Raw{maxSize: m}, nil
}

// MaxSize returns the longest body the codec encodes or decodes.
func (c *Raw) MaxSize() int { return resolveMax(c.maxSize) }

// Encode appends the raw encoding of src to dst; see [Codec].
func (c *Raw) Encode(dst, src []byte) ([]byte, Outcome, error) {
	if m := c.MaxSize(); len(src) > m {
		return dst, OutcomeRaw, fmt.Errorf("%w: %d bytes, limit %d", ErrTooLarge, len(src), m)
	}
	return append(appendHeader(growFor(dst, len(src)), tagRaw, len(src)), src...), OutcomeRaw, nil
}

// Decode appends the body encoded in src to dst; see [Codec].
func (c *Raw) Decode(dst, src []byte) ([]byte, error) {
	return decode(dst, src, c.MaxSize())
}

// resolveMax maps a zero maximum size, that of a zero codec, to the default.
func resolveMax(m int) int {
	if m == 0 {
		return DefaultMaxSize
	}
	return m
}
