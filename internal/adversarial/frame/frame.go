// Package frame crafts the bytes of beanspike's network protocols as an
// attacker sends them, well formed or not: yamux frames (the framing of
// the vnet multiplexer), vnet stream preambles, chanserv frames, and the
// remote protocol's session request and calls. It never reads: it is for
// tools and tests that play a misbehaving peer (chanserv/vnet's abuse
// command, the adversarial suite), whose frames must follow the wire
// formats documented in packages vnet, chanserv and remote without
// going through their encoders.
//
// Every function appends to b and returns the extended slice, so that
// many frames can be built into one buffer and sent in one write.
package frame

import "encoding/binary"

// Yamux frame types, as in the yamux specification.
const (
	TypeData   byte = 0
	TypeWindow byte = 1 // window update; with FlagSYN it opens a stream
	TypePing   byte = 2
	TypeGoAway byte = 3
)

// Yamux frame flags.
const (
	FlagSYN uint16 = 1
	FlagACK uint16 = 2
	FlagFIN uint16 = 4
	FlagRST uint16 = 8
)

// YamuxHeaderSize is the length of a yamux frame header: version, type,
// flags, stream id and length.
const YamuxHeaderSize = 12

// YamuxInitialWindow is the receive window every yamux stream has before
// any window update: what a peer may send on a stream it just opened.
const YamuxInitialWindow = 256 << 10

// Yamux appends a yamux frame header (version 0). For a data frame,
// length is how many payload bytes follow; for a window update, the
// window's increase; for a ping, the ping's id (stream 0); for a go-away,
// its code.
func Yamux(b []byte, typ byte, flags uint16, stream, length uint32) []byte {
	b = append(b, 0, typ)
	b = binary.BigEndian.AppendUint16(b, flags)
	b = binary.BigEndian.AppendUint32(b, stream)
	return binary.BigEndian.AppendUint32(b, length)
}

// Ping appends a yamux ping that asks for a reply (SYN) with id.
func Ping(b []byte, id uint32) []byte { return Yamux(b, TypePing, FlagSYN, 0, id) }

// Open appends a window update with SYN: it opens stream id without
// sending data. A client's streams have odd ids.
func Open(b []byte, id uint32) []byte { return Yamux(b, TypeWindow, FlagSYN, id, 0) }

// Data appends a data frame carrying p on stream id, with flags (FlagSYN
// opens the stream with this frame).
func Data(b []byte, flags uint16, id uint32, p []byte) []byte {
	b = Yamux(b, TypeData, flags, id, uint32(len(p)))
	return append(b, p...)
}

// VnetPreamble appends what the opener of a vnet stream sends first: the
// length of the address it dials (2 bytes, big-endian) and the address.
// An empty address names the control stream.
func VnetPreamble(b []byte, service string) []byte {
	b = binary.BigEndian.AppendUint16(b, uint16(len(service)))
	return append(b, service...)
}

// Chanserv frame kinds a client sends.
const (
	KindRequest     byte = 0x01
	KindCredit      byte = 0x02
	KindSourceSlots byte = 0x03
	KindMessage     byte = 0x04
	KindCloseSource byte = 0x05
)

// ChanservPreamble appends the chanserv preamble of version 1: "CHSV", the
// version, three zero bytes.
func ChanservPreamble(b []byte) []byte {
	return append(b, 'C', 'H', 'S', 'V', 1, 0, 0, 0)
}

// ChanservHeader appends a chanserv frame header: the kind, the id and
// the payload's length n, which may be anything, such as 4 GiB.
func ChanservHeader(b []byte, kind byte, id uint32, n uint64) []byte {
	b = append(b, kind)
	b = binary.AppendUvarint(b, uint64(id))
	return binary.AppendUvarint(b, n)
}

// Request are the parameters of a chanserv REQUEST frame.
type Request struct {
	Window    uint64 // data bytes the server may send per source before credit
	Sources   uint64 // sources the server may announce
	MaxFrame  uint64 // longest frame the client accepts
	TimeoutUS uint64 // the request's timeout in microseconds; 0: none
	Flags     uint64 // bit 0: the client takes compressed frames
}

// DefaultRequest returns the parameters a chanserv client sends by
// default.
func DefaultRequest() Request {
	return Request{Window: 256 << 10, Sources: 1024, MaxFrame: 16 << 20, Flags: 1}
}

// ChanservRequest appends a whole REQUEST frame with the parameters p and
// body.
func ChanservRequest(b []byte, p Request, body []byte) []byte {
	var payload []byte
	for _, v := range []uint64{p.Window, p.Sources, p.MaxFrame, p.TimeoutUS, p.Flags} {
		payload = binary.AppendUvarint(payload, v)
	}
	payload = append(payload, body...)
	b = ChanservHeader(b, KindRequest, 0, uint64(len(payload)))
	return append(b, payload...)
}

// ChanservMessage appends a MESSAGE frame: msg, sent upstream on the
// request.
func ChanservMessage(b, msg []byte) []byte {
	b = ChanservHeader(b, KindMessage, 0, uint64(len(msg)))
	return append(b, msg...)
}

// Remote protocol calls (op bytes), as package remote numbers them.
const (
	OpPut    byte = 1
	OpDelete byte = 5
	OpPeek   byte = 11
	OpPing   byte = 22
)

// Session appends the body of a remote session request: "BSPK",
// version 2, the longest frame the client accepts and, if not empty,
// the token.
func Session(b []byte, maxFrame int, token string) []byte {
	b = append(b, 'B', 'S', 'P', 'K', 2)
	b = binary.AppendUvarint(b, uint64(maxFrame))
	if token != "" {
		b = binary.AppendUvarint(b, uint64(len(token)))
		b = append(b, token...)
	}
	return b
}

// Put appends a remote Put call with the call id: tube, priority 0, no
// delay, a TTR of 60 s, no compression, then body.
func Put(b []byte, id uint64, tube string, body []byte) []byte {
	b = append(b, OpPut)
	b = binary.AppendUvarint(b, id)
	b = binary.AppendUvarint(b, uint64(len(tube)))
	b = append(b, tube...)
	b = binary.AppendUvarint(b, 0)   // priority
	b = binary.AppendVarint(b, 0)    // delay
	b = binary.AppendVarint(b, 60e9) // TTR, nanoseconds
	b = append(b, 0)                 // flags: not compressed
	return append(b, body...)
}

// Call appends a remote call whose only argument is a job id: OpPeek,
// OpDelete and the like.
func Call(b []byte, op byte, id, job uint64) []byte {
	b = append(b, op)
	b = binary.AppendUvarint(b, id)
	return binary.AppendUvarint(b, job)
}
