package memory

import (
	"unsafe"

	"github.com/beanspike/beanspike/codec"
)

// bytesOf returns the bytes of s without copying them; they must only be
// read.
func bytesOf(s string) []byte {
	return unsafe.Slice(unsafe.StringData(s), len(s))
}

// prepare returns body as the store keeps it, computed outside the store
// lock: a private copy, LZ4-encoded when compression is asked for and
// makes it smaller. A body whose compression is skipped is kept raw,
// without the codec's header.
func (s *store) prepare(body []byte, compress bool) (stored, error) {
	if !compress {
		return stored{body: string(body)}, nil
	}
	enc, out, err := s.codec.Encode(nil, body)
	if err != nil {
		return stored{}, err
	}
	if !out.Compressed() {
		return stored{body: string(body), askCompress: true}, nil
	}
	return stored{body: string(enc), compressed: true, askCompress: true}, nil
}

// decode returns a new copy of the original body of a compressed job.
func (s *store) decode(body string) ([]byte, error) {
	return s.codec.Decode(nil, bytesOf(body))
}

// decodedLen returns the original length of a compressed job's body.
func decodedLen(body string) (int, error) {
	_, n, err := codec.Info(bytesOf(body))
	return n, err
}
