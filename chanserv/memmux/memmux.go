// Package memmux is an in-memory [chanserv.Multiplexer]: virtual
// listeners in a map and connections made of [net.Pipe] pairs. It needs
// no sockets and starts no goroutines, which makes it the multiplexer of
// choice for tests, examples and in-process use.
//
// Connections are synchronous and unbuffered, like net.Pipe: a Write
// returns when the peer has read the bytes. Deadlines and Close behave as
// on any net.Conn (the connections pass golang.org/x/net/nettest's
// conformance suite). Dial hands the connection to an Accept and waits
// for it, so a dial to a listener nobody accepts on times out.
//
// [chanserv.Multiplexer]: https://pkg.go.dev/github.com/beanspike/beanspike/chanserv#Multiplexer
package memmux

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"time"
)

// Errors returned by a Network.
var (
	// ErrNoListener means nothing is bound at the dialled address.
	ErrNoListener = errors.New("memmux: connection refused: no listener")
	// ErrAddrInUse means Bind was given an address already bound.
	ErrAddrInUse = errors.New("memmux: address already in use")
)

// Addr is a virtual address on a Network.
type Addr string

// Network returns "memmux".
func (Addr) Network() string { return "memmux" }

// String returns the address.
func (a Addr) String() string { return string(a) }

// Network is an in-memory multiplexer. The zero value is not usable; call
// New. Its methods are safe for concurrent use.
type Network struct {
	mu        sync.Mutex
	listeners map[string]*listener
	next      uint64
}

// New returns an empty network.
func New() *Network {
	return &Network{listeners: make(map[string]*listener)}
}

// Bind listens on laddr. "" or any address ending in ":0" binds a new
// ephemeral address of the form "@N". network is ignored.
func (n *Network) Bind(network, laddr string) (net.Listener, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if laddr == "" || strings.HasSuffix(laddr, ":0") {
		n.next++
		laddr = fmt.Sprintf("@%d", n.next)
	}
	if _, ok := n.listeners[laddr]; ok {
		return nil, fmt.Errorf("%w: %q", ErrAddrInUse, laddr)
	}
	l := &listener{n: n, addr: Addr(laddr), ch: make(chan net.Conn), done: make(chan struct{})}
	n.listeners[laddr] = l
	return l, nil
}

// DialTimeout connects to address, waiting at most timeout for the
// listener to accept (zero means no limit). network is ignored.
func (n *Network) DialTimeout(network, address string, timeout time.Duration) (net.Conn, error) {
	ctx := context.Background()
	if timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, timeout)
		defer cancel()
	}
	return n.DialContext(ctx, network, address)
}

// DialContext connects to address, waiting until the listener accepts or
// ctx ends. network is ignored.
func (n *Network) DialContext(ctx context.Context, network, address string) (net.Conn, error) {
	n.mu.Lock()
	l := n.listeners[address]
	n.next++
	local := Addr(fmt.Sprintf("@%d", n.next))
	n.mu.Unlock()
	if l == nil {
		return nil, &net.OpError{Op: "dial", Net: "memmux", Addr: Addr(address), Err: ErrNoListener}
	}
	a, b := net.Pipe()
	client := &Conn{Conn: a, local: local, remote: l.addr}
	server := &Conn{Conn: b, local: l.addr, remote: local}
	select {
	case l.ch <- server:
		return client, nil
	case <-l.done:
		a.Close()
		b.Close()
		return nil, &net.OpError{Op: "dial", Net: "memmux", Addr: Addr(address), Err: ErrNoListener}
	case <-ctx.Done():
		a.Close()
		b.Close()
		return nil, &net.OpError{Op: "dial", Net: "memmux", Addr: Addr(address), Err: ctx.Err()}
	}
}

// Conn is one end of an in-memory connection: a net.Pipe end with the
// virtual addresses of both sides.
type Conn struct {
	net.Conn
	local, remote Addr
}

// LocalAddr returns this end's address.
func (c *Conn) LocalAddr() net.Addr { return c.local }

// RemoteAddr returns the peer's address.
func (c *Conn) RemoteAddr() net.Addr { return c.remote }

type listener struct {
	n    *Network
	addr Addr
	ch   chan net.Conn
	done chan struct{}
	once sync.Once
}

func (l *listener) Accept() (net.Conn, error) {
	select {
	case c := <-l.ch:
		return c, nil
	case <-l.done:
		return nil, &net.OpError{Op: "accept", Net: "memmux", Addr: l.addr, Err: net.ErrClosed}
	}
}

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
