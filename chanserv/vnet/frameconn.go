package vnet

import (
	"encoding/binary"
	"net"
)

// yamux's frame header (hashicorp/yamux v0.1.2): version u8 (0), type u8
// (0 is data), flags u16, stream id u32, length u32, all big-endian. A
// data frame's length is the length of the body that follows; the other
// types (window update, ping, go away) carry no body and use the length
// field for something else.
const (
	yamuxHeaderSize = 12
	yamuxTypeData   = 0
)

// mergeCopyMax is the largest frame that frameConn copies into one buffer
// to write; larger ones are written with net.Buffers (one writev on TCP).
const mergeCopyMax = 16 << 10

// frameConn is the connection handed to yamux. yamux's send loop writes
// each frame as two Write calls, the 12-byte header and then the body,
// which costs two system calls and, on TCP with Nagle off, often two
// segments. frameConn holds back the header of a data frame with a body
// and sends it with the body in one write.
//
// Only yamux's send loop writes to it, one frame at a time, so no lock is
// needed; the loop writes a data frame's body right after its header,
// with nothing in between that can block: a held header never waits for
// anything but the Write that follows it. A header without a body (a
// window update, ping or go-away, or a data frame of length 0, which
// carries only flags) is written at once. If the next write is not the
// announced body after all, the held header is written first, so the
// bytes on the wire are always exactly those yamux wrote, in order.
type frameConn struct {
	net.Conn
	hdr  [yamuxHeaderSize]byte
	held bool        // hdr waits for its body
	buf  []byte      // header and body of a small frame
	vec  [2][]byte   // header and body of a large frame
	bufs net.Buffers // over vec; a field, so that writing allocates nothing
}

func newFrameConn(c net.Conn) *frameConn { return &frameConn{Conn: c} }

// Write writes p, or holds it back if it is the header of a data frame
// whose body follows.
func (c *frameConn) Write(p []byte) (int, error) {
	if c.held {
		c.held = false
		if len(p) == int(binary.BigEndian.Uint32(c.hdr[8:])) {
			return c.writeFrame(p)
		}
		if _, err := c.Conn.Write(c.hdr[:]); err != nil {
			return 0, err
		}
	}
	if len(p) == yamuxHeaderSize && p[1] == yamuxTypeData && binary.BigEndian.Uint32(p[8:]) > 0 {
		copy(c.hdr[:], p)
		c.held = true
		return len(p), nil
	}
	return c.Conn.Write(p)
}

// writeFrame writes the held header and then body in one write. It
// returns how many bytes of body were written.
func (c *frameConn) writeFrame(body []byte) (int, error) {
	var (
		n   int
		err error
	)
	if len(body) <= mergeCopyMax {
		c.buf = append(append(c.buf[:0], c.hdr[:]...), body...)
		n, err = c.Conn.Write(c.buf)
	} else {
		c.vec = [2][]byte{c.hdr[:], body}
		c.bufs = c.vec[:]
		var n64 int64
		n64, err = c.bufs.WriteTo(c.Conn)
		n = int(n64)
		c.vec = [2][]byte{}
		c.bufs = nil
	}
	return max(n-yamuxHeaderSize, 0), err
}
