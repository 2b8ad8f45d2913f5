// Package wire encodes and decodes the frames of the chanserv protocol,
// version 1. The format is documented in the chanserv package.
package wire

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"sync"
)

// Preamble constants: every stream starts, in each direction, with Magic,
// one version byte and three reserved bytes.
const (
	Magic        = "CHSV"
	Version      = 1
	PreambleSize = 8
)

// Kind is a frame's type.
type Kind uint8

// Frame kinds sent by the client.
const (
	KindRequest     Kind = 0x01 // id 0: request parameters and body
	KindCredit      Kind = 0x02 // id source: uvarint bytes of DATA credit
	KindSourceSlots Kind = 0x03 // id 0: uvarint more sources allowed
	KindMessage     Kind = 0x04 // id 0: an application message
	KindCloseSource Kind = 0x05 // id source: the consumer abandoned it
)

// Frame kinds sent by the server.
const (
	KindSource    Kind = 0x11 // id new source: its header
	KindData      Kind = 0x12 // id source: a raw data frame
	KindDataCodec Kind = 0x13 // id source: a data frame encoded by package codec
	KindEndSource Kind = 0x14 // id source: end status
	KindEnd       Kind = 0x15 // id 0: end status of the request
	KindMsgCredit Kind = 0x16 // id 0: uvarint bytes of message credit
)

// MaxHeaderSize is the longest frame header: a kind byte and two uvarints
// (the id at most 5 bytes, the length at most 10).
const MaxHeaderSize = 1 + binary.MaxVarintLen32 + binary.MaxVarintLen64

// Errors returned by the decoder.
var (
	// ErrTooLarge means a frame's length exceeds the reader's limit.
	ErrTooLarge = errors.New("frame larger than the limit")
	// ErrMalformed means the bytes are not a valid frame or preamble.
	ErrMalformed = errors.New("malformed frame")
)

// AppendPreamble appends the version-1 preamble to b.
func AppendPreamble(b []byte) []byte {
	return append(b, Magic[0], Magic[1], Magic[2], Magic[3], Version, 0, 0, 0)
}

// CheckPreamble validates a preamble and returns its version. It returns
// ErrMalformed if p is not a preamble, and an error naming the version if
// the version is not 1.
func CheckPreamble(p []byte) error {
	if len(p) != PreambleSize || string(p[:4]) != Magic {
		return fmt.Errorf("%w: bad preamble % x", ErrMalformed, p)
	}
	if p[4] != Version {
		return fmt.Errorf("%w: unsupported version %d", ErrMalformed, p[4])
	}
	return nil
}

// AppendHeader appends a frame header for a payload of n bytes.
func AppendHeader(b []byte, k Kind, id uint32, n int) []byte {
	b = append(b, byte(k))
	b = binary.AppendUvarint(b, uint64(id))
	return binary.AppendUvarint(b, uint64(n))
}

// AppendFrame appends a whole frame.
func AppendFrame(b []byte, k Kind, id uint32, p []byte) []byte {
	return append(AppendHeader(b, k, id, len(p)), p...)
}

// Header is a decoded frame header.
type Header struct {
	Kind Kind
	ID   uint32
	Len  int
}

// Reader decodes frames from a byte stream, rejecting any frame longer
// than its limit before allocating for it.
type Reader struct {
	br  *bufio.Reader
	max int
}

// NewReader returns a Reader on br that rejects payloads over max bytes.
func NewReader(br *bufio.Reader, max int) *Reader {
	return &Reader{br: br, max: max}
}

// Reset makes r read from br with the limit max, as NewReader does.
func (r *Reader) Reset(br *bufio.Reader, max int) {
	r.br, r.max = br, max
}

// ReadPreamble reads and checks a preamble.
func (r *Reader) ReadPreamble() error {
	p, err := r.br.Peek(PreambleSize)
	if err != nil {
		if len(p) > 0 && errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF
		}
		return err
	}
	err = CheckPreamble(p)
	r.br.Discard(PreambleSize)
	return err
}

// ReadHeader reads a frame header. It returns io.EOF only when the stream
// ends cleanly before a frame; a stream that ends inside a header returns
// io.ErrUnexpectedEOF.
func (r *Reader) ReadHeader() (Header, error) {
	k, err := r.br.ReadByte()
	if err != nil {
		return Header{}, err
	}
	id, err := readUvarint(r.br)
	if err != nil {
		return Header{}, err
	}
	if id > 1<<32-1 {
		return Header{}, fmt.Errorf("%w: id %d", ErrMalformed, id)
	}
	n, err := readUvarint(r.br)
	if err != nil {
		return Header{}, err
	}
	if n > uint64(r.max) {
		return Header{}, fmt.Errorf("%w: %d bytes, limit %d", ErrTooLarge, n, r.max)
	}
	return Header{Kind: Kind(k), ID: uint32(id), Len: int(n)}, nil
}

// A payload is read into memory allocated as its bytes arrive: at most
// growStart bytes before any has, then at most growFactor times what has
// arrived. A peer that announces a long payload and sends little of it
// costs little; a long payload that does arrive is copied about once
// more than it would be if allocated whole.
const (
	growStart  = 64 << 10
	growFactor = 16
)

// firstChunks holds the buffers ReadPayload reads the start of long
// payloads into.
var firstChunks = sync.Pool{New: func() any { return new([growStart]byte) }}

// ReadPayload reads a payload of n bytes, n as checked by ReadHeader
// against the limit, allocating as the bytes arrive (see growStart). The
// first growStart bytes of a longer payload are read into a pooled
// buffer, so that only the payload's own memory is allocated.
func (r *Reader) ReadPayload(n int) ([]byte, error) {
	if n == 0 {
		return nil, nil
	}
	if n <= growStart {
		p := make([]byte, n)
		if err := r.ReadFull(p); err != nil {
			return nil, err
		}
		return p, nil
	}
	first := firstChunks.Get().(*[growStart]byte)
	err := r.ReadFull(first[:])
	if err != nil {
		firstChunks.Put(first)
		return nil, err
	}
	p := make([]byte, min(n, growStart*growFactor))
	got := copy(p, first[:])
	firstChunks.Put(first)
	for {
		if err := r.ReadFull(p[got:]); err != nil {
			return nil, err
		}
		got = len(p)
		if got == n {
			return p, nil
		}
		q := make([]byte, min(n, got*growFactor))
		copy(q, p)
		p = q
	}
}

// ReadTemp reads a payload of n bytes, n as checked by ReadHeader, into
// memory that stays valid only until the next read.
func (r *Reader) ReadTemp(n int) ([]byte, error) {
	if n == 0 {
		return nil, nil
	}
	if n > r.br.Size() {
		return r.ReadPayload(n)
	}
	p, err := r.br.Peek(n)
	if err != nil {
		return nil, unexpected(err)
	}
	r.br.Discard(n)
	return p, nil
}

// ReadFull reads exactly len(p) payload bytes into p.
func (r *Reader) ReadFull(p []byte) error {
	_, err := io.ReadFull(r.br, p)
	return unexpected(err)
}

// Discard skips a payload of n bytes.
func (r *Reader) Discard(n int) error {
	_, err := r.br.Discard(n)
	return unexpected(err)
}

// readUvarint reads a uvarint of at most 10 bytes; EOF inside it is
// io.ErrUnexpectedEOF.
func readUvarint(br *bufio.Reader) (uint64, error) {
	var v uint64
	for i := 0; i < binary.MaxVarintLen64; i++ {
		b, err := br.ReadByte()
		if err != nil {
			return 0, unexpected(err)
		}
		if b < 0x80 {
			if i == binary.MaxVarintLen64-1 && b > 1 {
				break
			}
			return v | uint64(b)<<(7*i), nil
		}
		v |= uint64(b&0x7f) << (7 * i)
	}
	return 0, fmt.Errorf("%w: varint overflows 64 bits", ErrMalformed)
}

func unexpected(err error) error {
	if errors.Is(err, io.EOF) {
		return io.ErrUnexpectedEOF
	}
	return err
}

// Uvarint decodes one uvarint from the front of p and returns it with the
// rest of p.
func Uvarint(p []byte) (uint64, []byte, error) {
	v, n := binary.Uvarint(p)
	if n <= 0 {
		return 0, nil, fmt.Errorf("%w: bad varint", ErrMalformed)
	}
	return v, p[n:], nil
}

// Status is the outcome carried by END and END_SOURCE frames.
type Status uint8

// AppendStatus appends an end-status payload: status byte, uvarint code,
// message.
func AppendStatus(b []byte, s Status, code uint32, msg string) []byte {
	b = append(b, byte(s))
	b = binary.AppendUvarint(b, uint64(code))
	return append(b, msg...)
}

// ParseStatus decodes an end-status payload.
func ParseStatus(p []byte) (Status, uint32, string, error) {
	if len(p) < 2 {
		return 0, 0, "", fmt.Errorf("%w: short status", ErrMalformed)
	}
	code, rest, err := Uvarint(p[1:])
	if err != nil {
		return 0, 0, "", err
	}
	if code > 1<<32-1 {
		return 0, 0, "", fmt.Errorf("%w: status code %d", ErrMalformed, code)
	}
	return Status(p[0]), uint32(code), string(rest), nil
}

// RequestParams are the parameters at the front of a REQUEST payload.
type RequestParams struct {
	Window    uint64 // DATA bytes the server may have outstanding per source
	Sources   uint64 // sources the server may announce before more slots
	MaxFrame  uint64 // longest DATA payload the client accepts
	TimeoutUS uint64 // request timeout in microseconds; 0 means none
	Flags     uint64 // bit 0: the client accepts KindDataCodec
}

// FlagCodec: the client accepts DATA frames encoded by package codec.
const FlagCodec = 1

// AppendRequest appends a REQUEST payload.
func AppendRequest(b []byte, p RequestParams, body []byte) []byte {
	b = binary.AppendUvarint(b, p.Window)
	b = binary.AppendUvarint(b, p.Sources)
	b = binary.AppendUvarint(b, p.MaxFrame)
	b = binary.AppendUvarint(b, p.TimeoutUS)
	b = binary.AppendUvarint(b, p.Flags)
	return append(b, body...)
}

// ParseRequest decodes a REQUEST payload into its parameters and body.
func ParseRequest(p []byte) (RequestParams, []byte, error) {
	var rp RequestParams
	var err error
	for _, f := range []*uint64{&rp.Window, &rp.Sources, &rp.MaxFrame, &rp.TimeoutUS, &rp.Flags} {
		if *f, p, err = Uvarint(p); err != nil {
			return RequestParams{}, nil, err
		}
	}
	return rp, p, nil
}
