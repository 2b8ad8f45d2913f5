package vnet

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"time"

	yamux "github.com/libp2p/go-yamux/v5"
)

// remoteAddr is the remote address of accepted connections.
const remoteAddr = Addr("@remote")

type listener struct {
	n    *Node
	addr net.Addr // an Addr
	ch   chan *Conn
	done chan struct{}
	once sync.Once
}

func (l *listener) Accept() (net.Conn, error) {
	select {
	case c := <-l.ch:
		return c, nil
	case <-l.done:
		return nil, &net.OpError{Op: "accept", Net: "vnet", Addr: l.addr, Err: net.ErrClosed}
	}
}

func (l *listener) Close() error {
	l.once.Do(func() {
		n := l.n
		n.mu.Lock()
		if n.listeners[l.addr.String()] == l {
			delete(n.listeners, l.addr.String())
		}
		sessions := n.sessionList()
		n.mu.Unlock()
		close(l.done)
		for _, s := range sessions {
			s.advertise(opUnbound, l.addr.String())
		}
	})
	return nil
}

func (l *listener) Addr() net.Addr { return l.addr }

// pooled returns a pooled buffer, to be put back in n.bufs.
func (n *Node) pooled() *[]byte {
	if bp, ok := n.bufs.Get().(*[]byte); ok {
		return bp
	}
	b := make([]byte, 0, 512)
	return &b
}

// firstWriteMax is the longest write sent in one piece with the
// connection's preamble or status byte.
const firstWriteMax = 32 << 10

// Conn is a virtual connection: a yamux stream with correct net.Conn
// deadline and Close behaviour.
type Conn struct {
	n             *Node
	st            *yamux.Stream
	local, remote net.Addr // Addr values
	dialled       string   // the opener's target address, sent in its preamble
	closed        atomic.Bool
	active        atomic.Int32 // reads and writes in progress
	wdeadline     atomic.Int64 // Unix nanoseconds; 0 means none
	dmu           sync.Mutex   // orders deadline changes with Close

	wmu    sync.Mutex
	prefix bool // the preamble (opener) or status byte (acceptor) is unsent

	rmu        sync.Mutex
	opener     bool
	needStatus bool        // the opener must read the acceptor's status byte
	gotStatus  atomic.Bool // the opener read the status byte
	statusErr  error
}

func newConn(n *Node, st *yamux.Stream, opener bool, local, remote net.Addr) *Conn {
	return &Conn{n: n, st: st, prefix: true, opener: opener, needStatus: opener, local: local, remote: remote}
}

// appendPrefix appends what the connection sends before its first byte:
// the opener's preamble or the acceptor's status byte 0 (accepted).
func (c *Conn) appendPrefix(b []byte) []byte {
	if !c.opener {
		return append(b, 0)
	}
	return append(binary.BigEndian.AppendUint16(b, uint16(len(c.dialled))), c.dialled...)
}

// writePrefixed writes the prefix followed by b, which is at most
// firstWriteMax bytes, in one piece, and returns how many bytes of b were
// written. c.wmu must be held.
func (c *Conn) writePrefixed(b []byte) (int, error) {
	c.prefix = false
	bp := c.n.pooled()
	buf := append(c.appendPrefix((*bp)[:0]), b...)
	pl := len(buf) - len(b)
	n, err := c.st.Write(buf) // yamux does not retain buf
	if cap(buf) <= 64<<10 {
		*bp = buf[:0]
		c.n.bufs.Put(bp)
	}
	return max(n-pl, 0), err
}

func (c *Conn) opErr(op string, err error) error {
	if err == nil {
		return nil
	}
	var se *yamux.StreamError
	switch {
	case c.closed.Load():
		err = net.ErrClosed
	case errors.Is(err, yamux.ErrTimeout):
		err = os.ErrDeadlineExceeded
	case errors.Is(err, io.EOF):
		return io.EOF
	case errors.Is(err, yamux.ErrKeepAliveTimeout):
		err = fmt.Errorf("%w: %w", ErrKeepAlive, err)
	case errors.As(err, &se) && se.Remote && se.ErrorCode == resetNoRoute:
		err = fmt.Errorf("%w: %w", ErrNoRoute, err)
	case errors.As(err, &se) && se.Remote && (se.ErrorCode == resetRefused || se.ErrorCode == 0 && c.opener && c.awaitingStatus()):
		err = fmt.Errorf("%w: %w", ErrRefused, err)
	}
	return &net.OpError{Op: op, Net: "vnet", Source: c.local, Addr: c.remote, Err: err}
}

// Read reads data from the stream.
func (c *Conn) Read(b []byte) (int, error) {
	c.active.Add(1)
	defer c.active.Add(-1)
	if c.closed.Load() {
		return 0, c.opErr("read", net.ErrClosed)
	}
	if err := c.readStatus(); err != nil {
		return 0, err
	}
	n, err := c.st.Read(b)
	return n, c.opErr("read", err)
}

func (c *Conn) readStatus() error {
	c.rmu.Lock()
	defer c.rmu.Unlock()
	if !c.needStatus {
		return c.statusErr
	}
	if err := c.flushPrefix(); err != nil {
		return err
	}
	var b [1]byte
	if _, err := io.ReadFull(c.st, b[:]); err != nil {
		if errors.Is(err, yamux.ErrTimeout) {
			return c.opErr("read", err) // not fatal: retry after the deadline moves
		}
		c.needStatus = false
		if errors.Is(err, io.EOF) {
			err = ErrNoRoute
		}
		c.statusErr = c.opErr("read", err)
		return c.statusErr
	}
	c.needStatus = false
	c.gotStatus.Store(true)
	if b[0] != 0 {
		c.statusErr = c.opErr("dial", ErrNoRoute)
	}
	return c.statusErr
}

// awaitingStatus reports whether the opener has not read the acceptor's
// status byte: a reset before it means the stream was never accepted.
func (c *Conn) awaitingStatus() bool { return !c.gotStatus.Load() }

func (c *Conn) flushPrefix() error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if !c.prefix {
		return nil
	}
	_, err := c.writePrefixed(nil)
	return c.opErr("write", err)
}

// Write writes data to the stream.
func (c *Conn) Write(b []byte) (int, error) {
	c.active.Add(1)
	defer c.active.Add(-1)
	if c.closed.Load() {
		return 0, c.opErr("write", net.ErrClosed)
	}
	if d := c.wdeadline.Load(); d != 0 && time.Now().UnixNano() >= d {
		return 0, c.opErr("write", os.ErrDeadlineExceeded)
	}
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if c.prefix {
		if len(b) <= firstWriteMax {
			n, err := c.writePrefixed(b)
			return n, c.opErr("write", err)
		}
		if _, err := c.writePrefixed(nil); err != nil {
			return 0, c.opErr("write", err)
		}
	}
	n, err := c.st.Write(b)
	return n, c.opErr("write", err)
}

// Close closes the connection; pending reads and writes return
// net.ErrClosed.
func (c *Conn) Close() error {
	c.dmu.Lock()
	defer c.dmu.Unlock()
	if c.closed.Swap(true) {
		return nil
	}
	if !c.opener && c.wmu.TryLock() {
		// An acceptor that never wrote still owes the opener its status.
		// (If a write holds wmu, it is sending the status.)
		if c.prefix {
			c.st.SetWriteDeadline(time.Now().Add(time.Second))
			c.writePrefixed(nil)
		}
		c.wmu.Unlock()
	}
	if c.active.Load() > 0 {
		// yamux's Close does not wake pending reads and writes: a past
		// deadline does. A Read or Write that starts later sees closed.
		past := time.Unix(1, 0)
		c.st.SetReadDeadline(past)
		c.st.SetWriteDeadline(past)
	}
	return c.st.Close()
}

// LocalAddr returns the local virtual address.
func (c *Conn) LocalAddr() net.Addr { return c.local }

// RemoteAddr returns the peer's virtual address.
func (c *Conn) RemoteAddr() net.Addr { return c.remote }

// SetDeadline sets the read and write deadlines.
func (c *Conn) SetDeadline(t time.Time) error {
	if err := c.SetReadDeadline(t); err != nil {
		return err
	}
	return c.SetWriteDeadline(t)
}

// SetReadDeadline sets the deadline for pending and future reads.
func (c *Conn) SetReadDeadline(t time.Time) error {
	c.dmu.Lock()
	defer c.dmu.Unlock()
	if c.closed.Load() {
		return c.opErr("set", net.ErrClosed)
	}
	return c.st.SetReadDeadline(t)
}

// SetWriteDeadline sets the deadline for pending and future writes.
func (c *Conn) SetWriteDeadline(t time.Time) error {
	c.dmu.Lock()
	defer c.dmu.Unlock()
	if c.closed.Load() {
		return c.opErr("set", net.ErrClosed)
	}
	var d int64
	if !t.IsZero() {
		d = max(int64(t.Sub(time.Unix(0, 0))), 1) // saturates, unlike UnixNano
	}
	c.wdeadline.Store(d)
	return c.st.SetWriteDeadline(t)
}
