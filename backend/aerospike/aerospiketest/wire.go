package aerospiketest

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// Proto header types.
const (
	protoVersion    = 2
	protoInfo       = 1
	protoAdmin      = 2
	protoMsg        = 3
	protoCompressed = 4
)

// Limits applied to every length read from the wire.
const (
	maxInfoSize     = 1 << 20  // an info request body
	maxFields       = 1 << 12  // fields in one message
	maxOps          = 1 << 15  // ops in one message
	maxBatchKeys    = 5 << 20  // keys in one batch
	msgHeaderSize   = 22       // AS_MSG header size
	protoHeaderSize = 8        // proto header size
	readChunk       = 64 << 10 // growth step while reading a frame body
)

// Message header flags.
const (
	info1Read             = 0x01
	info1GetAll           = 0x02
	info1ShortQuery       = 0x04
	info1Batch            = 0x08
	info1NoBinData        = 0x20
	info2Write            = 0x01
	info2Delete           = 0x02
	info2Generation       = 0x04
	info2GenerationGT     = 0x08
	info2DurableDelete    = 0x10
	info2CreateOnly       = 0x20
	info2RespondAllOps    = 0x80
	info3Last             = 0x01
	info3PartitionDone    = 0x04
	info3UpdateOnly       = 0x08
	info3CreateOrReplace  = 0x10
	info3ReplaceOnly      = 0x20
	batchMsgRepeat        = 0x01
	batchMsgInfo          = 0x02
	batchMsgGen           = 0x04
	batchMsgTTL           = 0x08
	batchMsgInfo4         = 0x10
	ttlNeverExpire        = 0xFFFFFFFF
	ttlDontUpdate         = 0xFFFFFFFE
	citrusleafEpochOffset = 1262304000
)

// Field types.
const (
	fieldNamespace     = 0
	fieldSet           = 1
	fieldKey           = 2
	fieldRecordVersion = 3
	fieldDigest        = 4
	fieldMRTID         = 5
	fieldMRTDeadline   = 6
	fieldQueryID       = 7
	fieldSocketTimeout = 9
	fieldRecordsPerSec = 10
	fieldPIDArray      = 11
	fieldDigestArray   = 12
	fieldMaxRecords    = 13
	fieldBValArray     = 15
	fieldIndexName     = 21
	fieldIndexRange    = 22
	fieldIndexContext  = 23
	fieldIndexExp      = 24
	fieldIndexType     = 26
	fieldUDFPackage    = 30
	fieldUDFFunction   = 31
	fieldUDFArgs       = 32
	fieldUDFOp         = 33
	fieldQueryBinList  = 40
	fieldBatchIndex    = 41
	fieldBatchWithSet  = 42
	fieldFilterExp     = 43
)

// Op types.
const (
	opRead       = 1
	opWrite      = 2
	opCDTRead    = 3
	opCDTModify  = 4
	opAdd        = 5
	opExpRead    = 7
	opExpModify  = 8
	opAppend     = 9
	opPrepend    = 10
	opTouch      = 11
	opBitRead    = 12
	opBitModify  = 13
	opDelete     = 14
	opHLLRead    = 15
	opHLLModify  = 16
	maxBinName   = 15
	digestLength = 20
)

// errFrame reports a malformed frame; the connection is closed.
var errFrame = errors.New("aerospiketest: malformed frame")

// frame is one proto frame read from a connection.
type frame struct {
	typ  byte
	body []byte
}

// readFrame reads one proto frame. A compressed frame (type 4) is returned
// as it is: a Community Edition server does not inflate it. maxBody caps
// the declared body length.
func readFrame(r io.Reader, maxBody int64) (frame, error) {
	f, _, err := readFrameInto(r, maxBody, nil)
	return f, err
}

// maxKeptBuffer is the largest read or response buffer a connection keeps
// for its next request.
const maxKeptBuffer = 1 << 20

// readFrameInto is readFrame reading the body into buf when it fits. It
// also returns the buffer to pass next time: buf, or a larger one the body
// was read into. The frame's body is valid until buf is reused.
func readFrameInto(r io.Reader, maxBody int64, buf []byte) (frame, []byte, error) {
	hdr, err := readHeader(r)
	if err != nil {
		return frame{}, buf, err
	}
	n, err := frameLen(hdr, maxBody)
	if err != nil {
		return frame{}, buf, err
	}
	var body []byte
	if n <= int64(cap(buf)) {
		body = buf[:n]
		if _, err := io.ReadFull(r, body); err != nil {
			return frame{}, buf, err
		}
	} else {
		if body, err = readN(r, n); err != nil {
			return frame{}, buf, err
		}
		if cap(body) <= maxKeptBuffer {
			buf = body[:0]
		}
	}
	return frame{typ: hdr[1], body: body}, buf, nil
}

// readHeader reads a proto header. From a bufio.Reader (a connection's
// reader) it is peeked, so that the header does not escape to the heap.
func readHeader(r io.Reader) ([protoHeaderSize]byte, error) {
	var hdr [protoHeaderSize]byte
	br, ok := r.(*bufio.Reader)
	if !ok {
		var h [protoHeaderSize]byte
		_, err := io.ReadFull(r, h[:])
		return h, err
	}
	p, err := br.Peek(protoHeaderSize)
	if err != nil {
		if len(p) > 0 && err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return hdr, err
	}
	copy(hdr[:], p)
	_, _ = br.Discard(protoHeaderSize)
	return hdr, nil
}

// frameLen checks a proto header and returns its body length.
func frameLen(hdr [protoHeaderSize]byte, maxBody int64) (int64, error) {
	v := binary.BigEndian.Uint64(hdr[:])
	if hdr[0] != protoVersion {
		return 0, fmt.Errorf("%w: version %d", errFrame, hdr[0])
	}
	n := int64(v & 0xFFFFFFFFFFFF)
	if n > maxBody {
		return 0, fmt.Errorf("%w: body of %d bytes exceeds limit %d", errFrame, n, maxBody)
	}
	return n, nil
}

// readN reads exactly n bytes, growing the buffer only as data arrives so a
// bogus length cannot force a large allocation.
func readN(r io.Reader, n int64) ([]byte, error) {
	if n <= readChunk {
		b := make([]byte, n)
		_, err := io.ReadFull(r, b)
		return b, err
	}
	var buf bytes.Buffer
	buf.Grow(readChunk)
	if _, err := io.CopyN(&buf, r, n); err != nil {
		if errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF
		}
		return nil, err
	}
	return buf.Bytes(), nil
}

// field is one message field.
type field struct {
	typ  byte
	data []byte
}

// op is one message operation.
type op struct {
	typ      byte
	particle byte
	name     string
	value    []byte
}

// message is a parsed AS_MSG. Its fields and op values point into the
// request body; op names are strings of their own.
type message struct {
	info1, info2, info3, info4 byte
	resultCode                 byte
	generation                 uint32
	ttl                        uint32
	timeout                    uint32
	fields                     []field
	ops                        []op
	// names, when not nil, interns op names across a connection's
	// requests.
	names nameTable
}

// nameTable interns the bin and set names a connection sends, so that
// serving a request does not allocate a string per op or record; it stops
// growing at maxInternedNames.
type nameTable map[string]string

const maxInternedNames = 1024

func (t nameTable) str(b []byte) string {
	if t == nil {
		return string(b)
	}
	if s, ok := t[string(b)]; ok {
		return s
	}
	s := string(b)
	if len(t) < maxInternedNames {
		t[s] = s
	}
	return s
}

func (m *message) field(t byte) ([]byte, bool) {
	for i := range m.fields {
		if m.fields[i].typ == t {
			return m.fields[i].data, true
		}
	}
	return nil, false
}

// parseMessage parses an AS_MSG body. Every length is checked against the
// remaining input.
func parseMessage(b []byte) (*message, error) {
	m := &message{}
	if err := parseMessageInto(m, b); err != nil {
		return nil, err
	}
	return m, nil
}

// parseMessageInto parses an AS_MSG body into m, reusing its field and op
// slices and keeping its name table.
func parseMessageInto(m *message, b []byte) error {
	if len(b) < msgHeaderSize {
		return fmt.Errorf("%w: short message header", errFrame)
	}
	if b[0] != msgHeaderSize {
		return fmt.Errorf("%w: header size %d", errFrame, b[0])
	}
	*m = message{
		info1:      b[1],
		info2:      b[2],
		info3:      b[3],
		info4:      b[4],
		resultCode: b[5],
		generation: binary.BigEndian.Uint32(b[6:]),
		ttl:        binary.BigEndian.Uint32(b[10:]),
		timeout:    binary.BigEndian.Uint32(b[14:]),
		fields:     m.fields[:0],
		ops:        m.ops[:0],
		names:      m.names,
	}
	nFields := int(binary.BigEndian.Uint16(b[18:]))
	nOps := int(binary.BigEndian.Uint16(b[20:]))
	rest, err := parseFieldsOps(b[msgHeaderSize:], nFields, nOps, m)
	if err != nil {
		return err
	}
	if len(rest) != 0 {
		return fmt.Errorf("%w: %d trailing bytes", errFrame, len(rest))
	}
	return nil
}

// parseFieldsOps parses nFields fields then nOps ops from b into m and
// returns the unread remainder.
func parseFieldsOps(b []byte, nFields, nOps int, m *message) ([]byte, error) {
	if nFields > maxFields || nOps > maxOps {
		return nil, fmt.Errorf("%w: %d fields, %d ops", errFrame, nFields, nOps)
	}
	if n := min(nFields, len(b)/5+1); nFields > 0 && cap(m.fields) < n {
		m.fields = make([]field, 0, n)
	}
	for range nFields {
		if len(b) < 5 {
			return nil, fmt.Errorf("%w: truncated field", errFrame)
		}
		sz := binary.BigEndian.Uint32(b)
		if b[4] == fieldBatchIndex && uint64(sz) > uint64(len(b)-4) {
			// Clients size the batch field as the rest of the message, which
			// overshoots when a filter field precedes it; the batch field is
			// always last, so it extends to the end.
			sz = uint32(len(b) - 4)
		}
		if sz < 1 || uint64(sz) > uint64(len(b)-4) {
			return nil, fmt.Errorf("%w: field size %d", errFrame, sz)
		}
		m.fields = append(m.fields, field{typ: b[4], data: b[5 : 4+sz]})
		b = b[4+sz:]
	}
	if n := min(nOps, len(b)/8+1); nOps > 0 && cap(m.ops) < n {
		m.ops = make([]op, 0, n)
	}
	for range nOps {
		if len(b) < 8 {
			return nil, fmt.Errorf("%w: truncated op", errFrame)
		}
		sz := binary.BigEndian.Uint32(b)
		nameLen := int(b[7])
		if sz < 4 || uint64(sz) > uint64(len(b)-4) || 4+nameLen > int(sz) {
			return nil, fmt.Errorf("%w: op size %d", errFrame, sz)
		}
		o := op{typ: b[4], particle: b[5], name: m.names.str(b[8 : 8+nameLen]), value: b[8+nameLen : 4+sz]}
		m.ops = append(m.ops, o)
		b = b[4+sz:]
	}
	return b, nil
}

// respBuilder accumulates response AS_MSGs. A builder from
// connWriter.builder keeps room for the proto header at the start of buf
// (off is protoHeaderSize), so that a frame is sent without a copy.
type respBuilder struct {
	buf []byte
	off int
}

// reset empties the builder, keeping its buffer.
func (w *respBuilder) reset() { w.buf = w.buf[:w.off] }

// size is the number of message bytes accumulated.
func (w *respBuilder) size() int { return len(w.buf) - w.off }

// begin appends a message header.
func (w *respBuilder) begin(info3, rc byte, gen, voidTime, txnTTL uint32, nFields, nOps int) {
	w.buf = append(w.buf, msgHeaderSize, 0, 0, info3, 0, rc)
	w.buf = binary.BigEndian.AppendUint32(w.buf, gen)
	w.buf = binary.BigEndian.AppendUint32(w.buf, voidTime)
	w.buf = binary.BigEndian.AppendUint32(w.buf, txnTTL)
	w.buf = binary.BigEndian.AppendUint16(w.buf, uint16(nFields))
	w.buf = binary.BigEndian.AppendUint16(w.buf, uint16(nOps))
}

func (w *respBuilder) field(t byte, data []byte) {
	w.buf = binary.BigEndian.AppendUint32(w.buf, uint32(len(data)+1))
	w.buf = append(w.buf, t)
	w.buf = append(w.buf, data...)
}

// opValue writes one response op holding a bin value.
func (w *respBuilder) opValue(name string, v any) {
	start := len(w.buf)
	w.buf = append(w.buf, 0, 0, 0, 0, opRead, 0, 0, byte(len(name)))
	w.buf = append(w.buf, name...)
	var pt byte
	w.buf, pt = appendParticle(w.buf, v)
	w.buf[start+5] = pt
	binary.BigEndian.PutUint32(w.buf[start:], uint32(len(w.buf)-start-4))
}

// frameProto wraps body as a type-3 proto frame.
func frameProto(typ byte, body []byte) []byte {
	out := make([]byte, protoHeaderSize, protoHeaderSize+len(body))
	binary.BigEndian.PutUint64(out, uint64(len(body))|uint64(protoVersion)<<56|uint64(typ)<<48)
	return append(out, body...)
}
