// Package codec encodes job bodies for storage: LZ4-compressed when that
// makes them smaller, raw otherwise, always in one self-describing format,
// so that any stored body decodes with [LZ4.Decode] or [Raw.Decode] and no
// configuration.
//
// [LZ4] compresses; [Raw] never does. Both implement [Codec], decode each
// other's output and are safe for concurrent use. Encode reports per call,
// as an [Outcome], whether the stored form is compressed and whether
// compression was skipped because it did not shrink the body. [Info]
// reads the same facts back from a stored body without decoding it.
//
// # Wire format
//
// An encoded body is a header followed by a payload:
//
//	byte 0        tag
//	                0x00  raw: the payload is the body itself
//	                0x01  LZ4: the payload is one LZ4 block
//	                other values are reserved and rejected
//	bytes 1..k    the body's length n before encoding, as an unsigned
//	              varint (encoding/binary's Uvarint: 7 bits a byte, least
//	              significant group first, high bit set on every byte but
//	              the last), in its shortest form; 1 to 10 bytes
//	bytes k+1..   the payload, to the end of the encoded body:
//	                raw:  exactly n bytes, the body
//	                LZ4:  one block in the LZ4 block format (no frame, no
//	                      checksum, no dictionary) that decodes to exactly
//	                      n bytes; it is at least 1 and at most n-1 bytes
//	                      long, and n is at most 255 times its length (the
//	                      block format's largest possible ratio)
//
// Examples: the empty body is 00 00; the body "hi" is 00 02 68 69; a body
// of 1000 zero bytes is 01 e8 07 followed by its LZ4 block.
//
// The encoded length is therefore never more than [MaxEncodedLen] of the
// body's length: one tag byte, the varint and the body. The format carries
// no checksum: a damaged LZ4 payload is usually, and a damaged raw payload
// never, detected. It relies on the store for integrity.
//
// # Compression
//
// [LZ4.Encode] compresses with the LZ4 block compressor of
// github.com/pierrec/lz4/v4, keeping the result only when its block is
// shorter than the body; otherwise, and for bodies shorter than 13 bytes,
// which the block format cannot shrink, it stores the body raw and reports
// [OutcomeSkipped]. Because the raw fallback copies the body, an encoded
// body is never longer than the raw form, however incompressible the data.
//
// # Limits and errors
//
// Each codec has a maximum body size, [DefaultMaxSize] unless set in
// [Options]. Encode refuses larger bodies and Decode refuses to produce
// them, with [ErrTooLarge], so that a body that could be written can be
// read back by a codec with the same limit. Decode checks the header
// before allocating: a claimed length that the payload cannot hold returns
// [ErrCorrupt] before any buffer for the body is allocated, so a damaged
// or hostile body costs at most the codec's limit in memory. Decode never panics on any input.
package codec
