// Package quirkmux is an in-memory [chanserv.Multiplexer] that behaves as
// AstraNet does where AstraNet departs from a well-behaved net.Conn, so
// that code meant to run on AstraNet can be tested without it:
//
//   - DialTimeout returns before the peer accepts: it never fails, not
//     even for an address nobody listens on, and it does not wait.
//   - The first Write on a dialled connection waits until the peer's
//     listener accepts the connection, and neither its deadlines nor
//     Close end the wait. On an address nobody listens on, it waits until
//     the Network is closed. The first Write ignores deadlines even once
//     accepted.
//   - Close does not unblock a Read already waiting: that Read returns
//     only when data arrives, the peer closes its end, its deadline
//     passes, or the Network is closed. (Calls made after Close fail at
//     once.)
//
// Otherwise connections behave as usual: a Write waits while the peer has
// a window (64 KiB) of unread bytes, deadlines are honoured, and a Read
// returns io.EOF once the peer has closed and its bytes are read. A peer
// that closed its end still receives, up to a window, what is written to
// it, which a Read it left waiting may return; past the window, writes
// fail. The
// Network does not implement [chanserv.ContextDialer], as AstraNet does
// not.
//
// [chanserv.Multiplexer]: https://pkg.go.dev/github.com/beanspike/beanspike/chanserv#Multiplexer
// [chanserv.ContextDialer]: https://pkg.go.dev/github.com/beanspike/beanspike/chanserv#ContextDialer
package quirkmux

import (
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Window is how many unread bytes a connection buffers in each
// direction before a Write waits.
const Window = 64 << 10

// Errors returned by a Network.
var (
	// ErrAddrInUse means Bind was given an address already bound.
	ErrAddrInUse = errors.New("quirkmux: address already in use")
	// ErrClosed means the Network was closed.
	ErrClosed = errors.New("quirkmux: network closed")
)

// Addr is a virtual address on a Network.
type Addr string

// Network returns "quirkmux".
func (Addr) Network() string { return "quirkmux" }

// String returns the address.
func (a Addr) String() string { return string(a) }

// Network is an in-memory multiplexer with AstraNet's quirks. The zero
// value is not usable; call New. Its methods are safe for concurrent use.
type Network struct {
	mu        sync.Mutex
	listeners map[string]*listener
	next      uint64
	done      chan struct{}
	closed    bool
}

// New returns an empty network.
func New() *Network {
	return &Network{listeners: make(map[string]*listener), done: make(chan struct{})}
}

// Close closes every listener and ends every wait on the network's
// connections, those the quirks make uninterruptible included, with
// [ErrClosed]. It is idempotent.
func (n *Network) Close() error {
	n.mu.Lock()
	defer n.mu.Unlock()
	if !n.closed {
		n.closed = true
		close(n.done)
	}
	return nil
}

// Bind listens on laddr. "" or any address ending in ":0" binds a new
// ephemeral address of the form "@N". network is ignored.
func (n *Network) Bind(network, laddr string) (net.Listener, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.closed {
		return nil, ErrClosed
	}
	if laddr == "" || strings.HasSuffix(laddr, ":0") {
		n.next++
		laddr = fmt.Sprintf("@%d", n.next)
	}
	if _, ok := n.listeners[laddr]; ok {
		return nil, fmt.Errorf("%w: %q", ErrAddrInUse, laddr)
	}
	l := &listener{n: n, addr: Addr(laddr), wake: make(chan struct{}, 1), done: make(chan struct{})}
	n.listeners[laddr] = l
	return l, nil
}

// DialTimeout returns a connection to address at once, without waiting
// for the listener to accept it; see the package documentation. network
// and timeout are ignored. It fails only after Close.
func (n *Network) DialTimeout(network, address string, timeout time.Duration) (net.Conn, error) {
	n.mu.Lock()
	if n.closed {
		n.mu.Unlock()
		return nil, ErrClosed
	}
	l := n.listeners[address]
	n.next++
	local := Addr(fmt.Sprintf("@%d", n.next))
	n.mu.Unlock()
	lk := &link{n: n, changed: make(chan struct{})}
	client := &Conn{l: lk, side: 0, local: local, remote: Addr(address)}
	server := &Conn{l: lk, side: 1, local: Addr(address), remote: local}
	if l != nil {
		l.enqueue(server)
	}
	return client, nil
}

type listener struct {
	n    *Network
	addr Addr
	wake chan struct{}
	done chan struct{}
	once sync.Once

	mu      sync.Mutex
	pending []*Conn
}

func (l *listener) enqueue(c *Conn) {
	l.mu.Lock()
	l.pending = append(l.pending, c)
	l.mu.Unlock()
	select {
	case l.wake <- struct{}{}:
	default:
	}
}

// Accept takes the oldest connection dialled to the listener and
// acknowledges it, which releases the dialler's first Write.
func (l *listener) Accept() (net.Conn, error) {
	for {
		l.mu.Lock()
		if len(l.pending) > 0 {
			c := l.pending[0]
			l.pending = l.pending[1:]
			more := len(l.pending) > 0
			l.mu.Unlock()
			if more {
				select {
				case l.wake <- struct{}{}:
				default:
				}
			}
			c.l.accept()
			return c, nil
		}
		l.mu.Unlock()
		select {
		case <-l.wake:
		case <-l.done:
			return nil, &net.OpError{Op: "accept", Net: "quirkmux", Addr: l.addr, Err: net.ErrClosed}
		case <-l.n.done:
			return nil, &net.OpError{Op: "accept", Net: "quirkmux", Addr: l.addr, Err: ErrClosed}
		}
	}
}

// Close stops accepting. Connections dialled and not accepted stay
// unacknowledged, as on AstraNet.
func (l *listener) Close() error {
	l.once.Do(func() {
		l.n.mu.Lock()
		if l.n.listeners[string(l.addr)] == l {
			delete(l.n.listeners, string(l.addr))
		}
		l.n.mu.Unlock()
		close(l.done)
	})
	return nil
}

func (l *listener) Addr() net.Addr { return l.addr }

// link is the shared state of a connection's two ends.
type link struct {
	n        *Network
	mu       sync.Mutex
	changed  chan struct{} // closed and replaced at every change
	accepted bool
	buf      [2][]byte // buf[i]: written by side i, not yet read
	closed   [2]bool   // side i closed
	reset    bool      // the link was lost: everything fails
}

// notify wakes every waiter; l.mu must be held.
func (l *link) notify() {
	close(l.changed)
	l.changed = make(chan struct{})
}

func (l *link) accept() {
	l.mu.Lock()
	l.accepted = true
	l.notify()
	l.mu.Unlock()
}

// Conn is one end of a connection.
type Conn struct {
	l             *link
	side          int
	local, remote Addr

	// guarded by l.mu
	wrote         bool // a Write has returned: deadlines apply
	readDeadline  time.Time
	writeDeadline time.Time
}

// wait waits for the link to change, for the deadline d (if not zero) to
// pass, or for the network to close. It returns an error for the last
// two. l.mu must be held; it is released while waiting.
func (c *Conn) wait(op string, d time.Time) error {
	ch := c.l.changed
	c.l.mu.Unlock()
	defer c.l.mu.Lock()
	var timeout <-chan time.Time
	if !d.IsZero() {
		t := time.NewTimer(time.Until(d))
		defer t.Stop()
		timeout = t.C
	}
	select {
	case <-ch:
		return nil
	case <-timeout:
		return c.opErr(op, os.ErrDeadlineExceeded)
	case <-c.l.n.done:
		return c.opErr(op, ErrClosed)
	}
}

func (c *Conn) opErr(op string, err error) error {
	return &net.OpError{Op: op, Net: "quirkmux", Source: c.local, Addr: c.remote, Err: err}
}

func expired(d time.Time) bool { return !d.IsZero() && !time.Now().Before(d) }

// Read reads what the peer wrote. A Read waiting when Close is called
// goes on waiting; see the package documentation.
func (c *Conn) Read(p []byte) (int, error) {
	l := c.l
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed[c.side] {
		return 0, c.opErr("read", net.ErrClosed)
	}
	in := 1 - c.side
	for {
		if l.reset {
			return 0, c.opErr("read", syscall.ECONNRESET)
		}
		if len(l.buf[in]) > 0 {
			if len(p) == 0 {
				return 0, nil
			}
			n := copy(p, l.buf[in])
			l.buf[in] = l.buf[in][n:]
			if len(l.buf[in]) == 0 {
				l.buf[in] = nil
			}
			l.notify()
			return n, nil
		}
		if l.closed[in] {
			return 0, io.EOF
		}
		if expired(c.readDeadline) {
			return 0, c.opErr("read", os.ErrDeadlineExceeded)
		}
		if err := c.wait("read", c.readDeadline); err != nil {
			return 0, err
		}
	}
}

// Write writes p. The first Write of a dialled connection waits for the
// peer to accept it whatever the deadlines and Close say; see the package
// documentation.
func (c *Conn) Write(p []byte) (int, error) {
	l := c.l
	l.mu.Lock()
	defer l.mu.Unlock()
	for !l.accepted && !l.reset {
		if err := c.wait("write", time.Time{}); err != nil {
			return 0, err
		}
	}
	deadline := c.writeDeadline
	if !c.wrote {
		deadline = time.Time{}
	}
	defer func() { c.wrote = true }()
	out := c.side
	n := 0
	for {
		if l.reset {
			return n, c.opErr("write", syscall.ECONNRESET)
		}
		if l.closed[c.side] {
			return n, c.opErr("write", net.ErrClosed)
		}
		if expired(deadline) {
			return n, c.opErr("write", os.ErrDeadlineExceeded)
		}
		if room := Window - len(l.buf[out]); room > 0 {
			k := min(room, len(p)-n)
			l.buf[out] = append(l.buf[out], p[n:n+k]...)
			n += k
			l.notify()
			if n == len(p) {
				return n, nil
			}
			continue
		}
		if l.closed[1-c.side] {
			// The peer closed and its window is full: as AstraNet, the
			// write fails rather than waiting for a reader that may
			// never come.
			return n, c.opErr("write", io.ErrClosedPipe)
		}
		if err := c.wait("write", deadline); err != nil {
			return n, err
		}
	}
}

// Close closes this end: the peer reads what was written, then io.EOF.
// A Read already waiting on this end is not unblocked; a Write is,
// unless it is the first one still waiting for the peer to accept.
func (c *Conn) Close() error {
	l := c.l
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed[c.side] {
		return nil
	}
	l.closed[c.side] = true
	l.notify()
	return nil
}

// Reset breaks the connection as a lost link does (AstraNet resets the
// streams of a lost route): every call on either end, waiting or not,
// fails at once.
func (c *Conn) Reset() {
	l := c.l
	l.mu.Lock()
	defer l.mu.Unlock()
	l.reset = true
	l.notify()
}

// LocalAddr returns this end's address.
func (c *Conn) LocalAddr() net.Addr { return c.local }

// RemoteAddr returns the peer's address.
func (c *Conn) RemoteAddr() net.Addr { return c.remote }

// SetDeadline sets the read and write deadlines.
func (c *Conn) SetDeadline(t time.Time) error {
	c.l.mu.Lock()
	defer c.l.mu.Unlock()
	c.readDeadline, c.writeDeadline = t, t
	c.l.notify()
	return nil
}

// SetReadDeadline sets the read deadline.
func (c *Conn) SetReadDeadline(t time.Time) error {
	c.l.mu.Lock()
	defer c.l.mu.Unlock()
	c.readDeadline = t
	c.l.notify()
	return nil
}

// SetWriteDeadline sets the write deadline. The first Write ignores it.
func (c *Conn) SetWriteDeadline(t time.Time) error {
	c.l.mu.Lock()
	defer c.l.mu.Unlock()
	c.writeDeadline = t
	c.l.notify()
	return nil
}
