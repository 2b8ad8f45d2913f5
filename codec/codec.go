package codec

import (
	"errors"
	"fmt"
)

// Codec encodes bodies for storage and decodes them back. Implementations
// are safe for concurrent use.
type Codec interface {
	// Encode appends the encoded form of src to dst and returns the
	// extended slice and how the body was stored. It allocates only when
	// dst lacks the capacity for [MaxEncodedLen](len(src)) more bytes.
	// It returns [ErrTooLarge], with dst unchanged and [OutcomeRaw], when
	// src is longer than the codec's maximum size. dst and src must not
	// overlap.
	Encode(dst, src []byte) ([]byte, Outcome, error)

	// Decode appends the body encoded in src, in the format of the package
	// documentation, to dst and returns the extended slice. It allocates
	// only when dst lacks the capacity for the body. It returns an error
	// wrapping [ErrCorrupt] when src is not a valid encoding, or
	// [ErrTooLarge] when the body is longer than the codec's maximum size;
	// then it returns dst with its length unchanged, though the bytes of
	// its spare capacity may have been overwritten. dst and src must not
	// overlap.
	Decode(dst, src []byte) ([]byte, error)
}

// Outcome tells how Encode stored a body.
type Outcome uint8

const (
	// OutcomeRaw: the body was stored raw without compression being
	// asked for ([Raw] codec).
	OutcomeRaw Outcome = iota
	// OutcomeCompressed: the body was stored LZ4-compressed.
	OutcomeCompressed
	// OutcomeSkipped: compression was asked for ([LZ4] codec) but the
	// body was stored raw because compression did not make it smaller.
	OutcomeSkipped
)

// Compressed tells whether the stored form is compressed.
func (o Outcome) Compressed() bool { return o == OutcomeCompressed }

// Skipped tells whether compression was asked for but skipped because it
// did not shrink the body.
func (o Outcome) Skipped() bool { return o == OutcomeSkipped }

// String returns "raw", "compressed" or "skipped".
func (o Outcome) String() string {
	switch o {
	case OutcomeRaw:
		return "raw"
	case OutcomeCompressed:
		return "compressed"
	case OutcomeSkipped:
		return "skipped"
	}
	return fmt.Sprintf("Outcome(%d)", uint8(o))
}

// DefaultMaxSize is the maximum body size of a codec made without
// [Options.MaxSize]: 64 MiB.
const DefaultMaxSize = 64 << 20

// Options configure a codec. A nil *Options means the defaults.
type Options struct {
	// MaxSize is the longest body, in bytes, that Encode accepts and
	// Decode produces. It must not be negative. Defaults to
	// [DefaultMaxSize] when zero.
	MaxSize int
}

// maxSize resolves opts to a maximum size.
func (o *Options) maxSize() (int, error) {
	if o == nil || o.MaxSize == 0 {
		return DefaultMaxSize, nil
	}
	if o.MaxSize < 0 {
		return 0, fmt.Errorf("%w: MaxSize %d is negative", ErrInvalidOptions, o.MaxSize)
	}
	return o.MaxSize, nil
}

// Errors returned by this package; test for them with [errors.Is].
var (
	// ErrCorrupt means Decode or [Info] was given bytes that are not a
	// valid encoding: truncated, an unknown tag, a length that does not
	// match the payload, or an LZ4 block that does not decode to that
	// length. The stored body is damaged or was not written by this
	// package; retrying will not help.
	ErrCorrupt = errors.New("codec: corrupt encoded body")

	// ErrTooLarge means a body is longer than the codec's maximum size:
	// Encode wrote nothing, or Decode produced nothing. The encoding
	// itself may be valid; a codec with a larger [Options.MaxSize] can
	// decode it.
	ErrTooLarge = errors.New("codec: body larger than the maximum size")

	// ErrInvalidOptions means a constructor was given options out of
	// range. No codec was made.
	ErrInvalidOptions = errors.New("codec: invalid options")
)

// Compile-time checks.
var (
	_ Codec = (*LZ4)(nil)
	_ Codec = (*Raw)(nil)
)
