// Package vnet is the default [chanserv.Multiplexer]: virtual listeners
// and connections carried as github.com/hashicorp/yamux streams over
// ordinary connections (TCP, TLS, anything that is a net.Conn).
//
// A [Node] is one participant. It serves peers that connect to it
// ([Node.Listen], [Node.Serve]) and connects to peers ([Node.Connect]);
// either way the link is one yamux session, usable in both directions.
// [Node.Bind] registers a virtual address (a service name, or "" / ":0"
// for a fresh ephemeral one), which the node advertises to every peer;
// [Node.DialTimeout] opens a stream to a peer that advertises the
// address, waiting for the advertisement if it has not arrived yet. A
// node does not dial its own addresses and does not forward: a service is
// reachable from the nodes directly linked to the one that bound it.
//
// # Wire format
//
// Each session starts with both sides opening a control stream. Every
// stream starts with a preamble from the opener: a big-endian uint16
// length and the target address (length 0 for the control stream). The
// acceptor answers a service stream with one status byte, 0 (accepted) or
// 1 (no such address), sent in front of its first write; the opener reads
// it on its first read, so opening a stream costs no round trip. On the
// control stream each side sends records: one byte (1 = bound, 2 =
// unbound), a big-endian uint16 length and the address.
//
// # Connections
//
// Streams are wrapped to behave as a correct net.Conn (the wrapper passes
// golang.org/x/net/nettest's conformance suite): writes after their
// deadline fail with a timeout, and Close unblocks pending reads and
// writes. yamux's per-stream window (Config.MaxStreamWindowSize) gives
// each stream its own flow control, so a stalled reader blocks only its
// own stream. yamux writes a frame's header and body with two writes;
// vnet joins them, so that a small message costs one system call.
//
// hashicorp/yamux was chosen over libp2p/go-yamux/v5 by measurement:
// go-yamux opens streams more cheaply but moves large frames with 30-60%
// more CPU (see chanserv's BENCHMARKS.md).
//
// [chanserv.Multiplexer]: https://pkg.go.dev/github.com/beanspike/beanspike/chanserv#Multiplexer
package vnet

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	mrand "math/rand/v2"
	"net"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/yamux"
)

// Errors returned by a Node.
var (
	// ErrNoRoute means no linked peer advertised the dialled address
	// before the dial timeout, or the peer no longer had it.
	ErrNoRoute = errors.New("vnet: no route to address")
	// ErrAddrInUse means Bind was given an address already bound on this
	// node.
	ErrAddrInUse = errors.New("vnet: address already in use")
	// ErrClosed means the node was closed.
	ErrClosed = errors.New("vnet: node closed")
	// ErrInvalidOption means an option was out of range.
	ErrInvalidOption = errors.New("vnet: invalid option")
)

// Defaults of the options.
const (
	// DefaultWindow is the per-stream receive window: 1 MiB.
	DefaultWindow = 1 << 20
	// DefaultAcceptBacklog is how many streams a session may have opened
	// and not yet accepted.
	DefaultAcceptBacklog = 4096
	// DefaultDialTimeout is used by DialTimeout when given 0.
	DefaultDialTimeout = 10 * time.Second
	// maxAddrLen is the longest address.
	maxAddrLen = 1024
	// preambleTimeout bounds how long an accepted stream may take to
	// name its target.
	preambleTimeout = 10 * time.Second
)

// Option configures a [Node].
type Option func(*Node) error

// WithWindow sets the per-stream receive window in bytes (at least 256
// KiB). Defaults to [DefaultWindow].
func WithWindow(n int) Option {
	return func(nd *Node) error {
		if n < 256<<10 || n > 1<<30 {
			return fmt.Errorf("%w: window %d not in [256 KiB, 1 GiB]", ErrInvalidOption, n)
		}
		nd.window = uint32(n)
		return nil
	}
}

// WithLogger sends yamux's and the node's diagnostics to l. Defaults to
// discarding them.
func WithLogger(l *slog.Logger) Option {
	return func(nd *Node) error {
		if l == nil {
			return fmt.Errorf("%w: nil logger", ErrInvalidOption)
		}
		nd.logger = l
		return nil
	}
}

// Addr is a virtual address.
type Addr string

// Network returns "vnet".
func (Addr) Network() string { return "vnet" }

// String returns the address.
func (a Addr) String() string { return string(a) }

// Node is a participant in a virtual network. Its methods are safe for
// concurrent use.
type Node struct {
	id     string
	addr   net.Addr // "@<id>", the local address of dialled connections
	window uint32
	logger *slog.Logger
	bufs   sync.Pool // of *[]byte: first writes and preambles

	mu        sync.Mutex
	closed    bool
	listeners map[string]*listener
	sessions  map[*session]struct{}
	tcp       map[net.Listener]struct{}
	changed   chan struct{} // closed and replaced when routes change
	done      chan struct{} // closed by Close
	nextPort  uint64
	wg        sync.WaitGroup
}

// New returns a node with a random identity.
func New(opts ...Option) (*Node, error) {
	var b [8]byte
	if _, err := rand.Read(b[:]); err != nil {
		return nil, err
	}
	n := &Node{
		id:        hex.EncodeToString(b[:]),
		window:    DefaultWindow,
		logger:    slog.New(slog.DiscardHandler),
		listeners: make(map[string]*listener),
		sessions:  make(map[*session]struct{}),
		tcp:       make(map[net.Listener]struct{}),
		changed:   make(chan struct{}),
		done:      make(chan struct{}),
	}
	n.addr = Addr("@" + n.id)
	for _, o := range opts {
		if err := o(n); err != nil {
			return nil, err
		}
	}
	return n, nil
}

// ID returns the node's random identity, which ephemeral addresses carry.
func (n *Node) ID() string { return n.id }

func (n *Node) yamuxConfig() *yamux.Config {
	c := yamux.DefaultConfig()
	c.AcceptBacklog = DefaultAcceptBacklog
	c.MaxStreamWindowSize = n.window
	c.LogOutput = nil
	c.Logger = slogAdapter{n.logger}
	c.StreamCloseTimeout = time.Minute
	return c
}

// Listen listens on a real network address (such as "tcp", "127.0.0.1:0")
// and serves peers in the background until Close. It returns the address
// listened on.
func (n *Node) Listen(network, address string) (net.Addr, error) {
	l, err := net.Listen(network, address)
	if err != nil {
		return nil, err
	}
	n.mu.Lock()
	if n.closed {
		n.mu.Unlock()
		l.Close()
		return nil, ErrClosed
	}
	n.wg.Add(1)
	n.mu.Unlock()
	go func() {
		defer n.wg.Done()
		n.Serve(l) // logs why it stopped
	}()
	return l.Addr(), nil
}

// Serve accepts peers on l until l fails for good or the node is closed,
// which closes l. It returns [ErrClosed] after Close, or the error that
// stopped l. Temporary errors, such as running out of file descriptors
// (EMFILE, ENFILE), do not stop it: it waits, from 5 ms doubling up to 1 s,
// and tries again, as net/http's Server does, and logs them at most once a
// second.
func (n *Node) Serve(l net.Listener) error {
	n.mu.Lock()
	if n.closed {
		n.mu.Unlock()
		l.Close()
		return ErrClosed
	}
	n.tcp[l] = struct{}{}
	n.mu.Unlock()
	defer func() {
		n.mu.Lock()
		delete(n.tcp, l)
		n.mu.Unlock()
		l.Close()
	}()
	var (
		delay time.Duration
		lim   logLimiter
	)
	for {
		c, err := l.Accept()
		if err != nil {
			if n.isClosed() {
				return ErrClosed
			}
			if !isTemporary(err) {
				n.logger.Error("vnet: listener stopped", "addr", l.Addr().String(), "err", err)
				return err
			}
			delay = min(max(2*delay, acceptDelayMin), acceptDelayMax)
			if more, ok := lim.allow(time.Now()); ok {
				n.logger.Warn("vnet: accept failed; retrying", "addr", l.Addr().String(), "err", err, "retry_in", delay, "unlogged", more)
			}
			t := time.NewTimer(delay)
			select {
			case <-t.C:
			case <-n.done:
				t.Stop()
				return ErrClosed
			}
			continue
		}
		delay = 0
		if err := n.Attach(c, false); err != nil {
			c.Close()
			if errors.Is(err, ErrClosed) {
				return err
			}
		}
	}
}

// Delays between retries of a failed Accept, as in net/http.
var (
	acceptDelayMin = 5 * time.Millisecond
	acceptDelayMax = time.Second
)

// isTemporary reports whether an Accept error may go away by itself:
// a timeout, or an error that says it is temporary (syscall.Errno says so
// of EMFILE, ENFILE and EINTR).
func isTemporary(err error) bool {
	var t interface{ Temporary() bool }
	if errors.As(err, &t) && t.Temporary() {
		return true
	}
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

func (n *Node) isClosed() bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.closed
}

// logLimiter lets through at most one log line per logInterval and counts
// the ones it held back.
type logLimiter struct {
	last time.Time
	held int
}

// logInterval is the least time between two lines of one logLimiter.
const logInterval = time.Second

// allow reports whether a line may be logged now, and if so how many were
// held back since the last one.
func (l *logLimiter) allow(now time.Time) (held int, ok bool) {
	if !l.last.IsZero() && now.Sub(l.last) < logInterval {
		l.held++
		return 0, false
	}
	held, l.held, l.last = l.held, 0, now
	return held, true
}

// Connect dials a peer at a real network address and links to it. The
// link lasts until either node closes or the connection fails; Connect
// does not reconnect.
func (n *Node) Connect(ctx context.Context, network, address string) error {
	var d net.Dialer
	c, err := d.DialContext(ctx, network, address)
	if err != nil {
		return err
	}
	if err := n.Attach(c, true); err != nil {
		c.Close()
		return err
	}
	return nil
}

// Attach runs a session over an established connection. Exactly one side
// of the connection must pass initiator true. The session ends when the
// connection fails or the node closes; c is closed then.
func (n *Node) Attach(c net.Conn, initiator bool) error {
	var (
		ys  *yamux.Session
		err error
	)
	fc := newFrameConn(c)
	if initiator {
		ys, err = yamux.Client(fc, n.yamuxConfig())
	} else {
		ys, err = yamux.Server(fc, n.yamuxConfig())
	}
	if err != nil {
		return err
	}
	s := &session{n: n, ys: ys, remote: make(map[string]struct{})}
	n.mu.Lock()
	if n.closed {
		n.mu.Unlock()
		ys.Close()
		return ErrClosed
	}
	n.sessions[s] = struct{}{}
	n.wg.Add(1)
	n.mu.Unlock()
	go s.run()
	return nil
}

// Bind registers the virtual address laddr and advertises it to every
// peer. "" or an address ending in ":0" binds a fresh ephemeral address
// "@<node id>:<n>", which cannot collide with a service name. network is
// ignored.
func (n *Node) Bind(network, laddr string) (net.Listener, error) {
	n.mu.Lock()
	if n.closed {
		n.mu.Unlock()
		return nil, ErrClosed
	}
	if laddr == "" || strings.HasSuffix(laddr, ":0") {
		n.nextPort++
		laddr = fmt.Sprintf("@%s:%d", n.id, n.nextPort)
	}
	if len(laddr) > maxAddrLen {
		n.mu.Unlock()
		return nil, fmt.Errorf("%w: address of %d bytes", ErrInvalidOption, len(laddr))
	}
	if _, ok := n.listeners[laddr]; ok {
		n.mu.Unlock()
		return nil, fmt.Errorf("%w: %q", ErrAddrInUse, laddr)
	}
	l := &listener{n: n, addr: Addr(laddr), ch: make(chan *Conn), done: make(chan struct{})}
	n.listeners[laddr] = l
	sessions := n.sessionList()
	n.mu.Unlock()
	for _, s := range sessions {
		s.advertise(opBound, laddr)
	}
	return l, nil
}

func (n *Node) sessionList() []*session {
	out := make([]*session, 0, len(n.sessions))
	for s := range n.sessions {
		out = append(out, s)
	}
	return out
}

// DialTimeout connects to a virtual address bound on a linked peer,
// waiting at most timeout (0 means [DefaultDialTimeout]) for a peer to
// advertise it. network is ignored.
func (n *Node) DialTimeout(network, address string, timeout time.Duration) (net.Conn, error) {
	if timeout <= 0 {
		timeout = DefaultDialTimeout
	}
	return n.dial(context.Background(), timeout, address)
}

// DialContext connects to a virtual address bound on a linked peer,
// waiting until a peer advertises it or ctx ends. The stream is opened
// without a round trip: if the peer no longer has the address, the first
// Read fails with [ErrNoRoute]. network is ignored.
func (n *Node) DialContext(ctx context.Context, network, address string) (net.Conn, error) {
	return n.dial(ctx, 0, address)
}

// dial waits for a route until ctx ends or, if timeout is positive, the
// timeout passes. The timer is made only if dial has to wait.
func (n *Node) dial(ctx context.Context, timeout time.Duration, address string) (net.Conn, error) {
	var expired <-chan time.Time
	if len(address) == 0 || len(address) > maxAddrLen {
		return nil, &net.OpError{Op: "dial", Net: "vnet", Addr: Addr(address), Err: ErrNoRoute}
	}
	for {
		n.mu.Lock()
		if n.closed {
			n.mu.Unlock()
			return nil, ErrClosed
		}
		// Pick uniformly among the sessions that advertise the address.
		var s *session
		cands := 0
		for c := range n.sessions {
			if c.has(address) {
				cands++
				if mrand.IntN(cands) == 0 {
					s = c
				}
			}
		}
		changed := n.changed
		n.mu.Unlock()
		if s != nil {
			st, err := s.ys.OpenStream()
			if err != nil {
				n.logger.Debug("vnet: open stream", "err", err)
				s.ys.Close()
				continue
			}
			c := newConn(n, st, true, n.addr, Addr(address))
			c.dialled = address
			return c, nil
		}
		if timeout > 0 && expired == nil {
			t := time.NewTimer(timeout)
			defer t.Stop()
			expired = t.C
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return nil, &net.OpError{Op: "dial", Net: "vnet", Addr: Addr(address), Err: fmt.Errorf("%w: %w", ErrNoRoute, ctx.Err())}
		case <-expired:
			return nil, &net.OpError{Op: "dial", Net: "vnet", Addr: Addr(address), Err: fmt.Errorf("%w: %w", ErrNoRoute, context.DeadlineExceeded)}
		}
	}
}

// Close closes every listener, session and connection of the node and
// waits for its goroutines to end.
func (n *Node) Close() error {
	n.mu.Lock()
	if n.closed {
		n.mu.Unlock()
		n.wg.Wait()
		return nil
	}
	n.closed = true
	close(n.done)
	ls := make([]*listener, 0, len(n.listeners))
	for _, l := range n.listeners {
		ls = append(ls, l)
	}
	for l := range n.tcp {
		l.Close()
	}
	sessions := n.sessionList()
	n.notifyLocked()
	n.mu.Unlock()
	for _, l := range ls {
		l.Close()
	}
	for _, s := range sessions {
		s.ys.Close()
	}
	n.wg.Wait()
	return nil
}

// notifyLocked wakes dialers waiting for a route. n.mu must be held.
func (n *Node) notifyLocked() {
	close(n.changed)
	n.changed = make(chan struct{})
}

const (
	opBound   = 1
	opUnbound = 2
)

// session is one yamux link to a peer.
type session struct {
	n  *Node
	ys *yamux.Session

	ctlMu sync.Mutex
	ctl   net.Conn // our control stream; nil until opened

	mu     sync.Mutex
	remote map[string]struct{} // addresses the peer advertised
}

func (s *session) has(addr string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, ok := s.remote[addr]
	return ok
}

func (s *session) run() {
	n := s.n
	defer n.wg.Done()
	var wg sync.WaitGroup
	defer wg.Wait()
	defer func() {
		s.ys.Close()
		n.mu.Lock()
		delete(n.sessions, s)
		n.notifyLocked()
		n.mu.Unlock()
	}()

	ctl, err := s.ys.OpenStream()
	if err != nil {
		return
	}
	// Under ctlMu, so that a concurrent Bind either is in this list or
	// advertises after it.
	s.ctlMu.Lock()
	buf := []byte{0, 0} // preamble: the empty address of a control stream
	n.mu.Lock()
	for name := range n.listeners {
		buf = appendRecord(buf, opBound, name)
	}
	n.mu.Unlock()
	s.ctl = ctl
	_, err = ctl.Write(buf)
	s.ctlMu.Unlock()
	if err != nil {
		return
	}
	for {
		st, err := s.ys.AcceptStream()
		if err != nil {
			return
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			s.route(st)
		}()
	}
}

// advertise tells the peer about a local address.
func (s *session) advertise(op byte, name string) {
	s.ctlMu.Lock()
	defer s.ctlMu.Unlock()
	if s.ctl == nil {
		return // run sends the full list when it opens the control stream
	}
	if _, err := s.ctl.Write(appendRecord(nil, op, name)); err != nil {
		s.ys.Close()
	}
}

func appendRecord(b []byte, op byte, name string) []byte {
	b = append(b, op, byte(len(name)>>8), byte(len(name)))
	return append(b, name...)
}

// route reads an accepted stream's preamble and hands it on.
func (s *session) route(st *yamux.Stream) {
	st.SetReadDeadline(time.Now().Add(preambleTimeout))
	var hdr [2]byte
	if _, err := io.ReadFull(st, hdr[:]); err != nil {
		st.Close()
		return
	}
	ln := int(binary.BigEndian.Uint16(hdr[:]))
	if ln > maxAddrLen {
		st.Close()
		return
	}
	n := s.n
	bp := n.buf()
	name := append((*bp)[:0], make([]byte, ln)...)
	_, err := io.ReadFull(st, name)
	*bp = name
	if err != nil {
		n.bufs.Put(bp)
		st.Close()
		return
	}
	st.SetReadDeadline(time.Time{})
	if ln == 0 {
		n.bufs.Put(bp)
		s.readControl(st)
		return
	}
	n.mu.Lock()
	l := n.listeners[string(name)]
	n.mu.Unlock()
	n.bufs.Put(bp)
	if l == nil {
		st.Write([]byte{1})
		st.Close()
		return
	}
	c := newConn(n, st, false, l.addr, remoteAddr)
	select {
	case l.ch <- c:
	case <-l.done:
		st.Write([]byte{1})
		st.Close()
	case <-s.ys.CloseChan():
		st.Close()
	}
}

// readControl applies the peer's advertisements until the stream ends.
func (s *session) readControl(st *yamux.Stream) {
	defer s.ys.Close()
	br := bufio.NewReader(st)
	var hdr [3]byte
	for {
		if _, err := io.ReadFull(br, hdr[:]); err != nil {
			return
		}
		ln := int(binary.BigEndian.Uint16(hdr[1:]))
		if ln == 0 || ln > maxAddrLen {
			return
		}
		name := make([]byte, ln)
		if _, err := io.ReadFull(br, name); err != nil {
			return
		}
		s.mu.Lock()
		switch hdr[0] {
		case opBound:
			s.remote[string(name)] = struct{}{}
		case opUnbound:
			delete(s.remote, string(name))
		default:
			s.mu.Unlock()
			return
		}
		s.mu.Unlock()
		s.n.mu.Lock()
		s.n.notifyLocked()
		s.n.mu.Unlock()
	}
}

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

// buf returns a pooled buffer, to be put back in n.bufs.
func (n *Node) buf() *[]byte {
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
	needStatus bool // the opener must read the acceptor's status byte
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
	bp := c.n.buf()
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
	if c.closed.Load() {
		err = net.ErrClosed
	} else if errors.Is(err, yamux.ErrTimeout) {
		err = os.ErrDeadlineExceeded
	} else if errors.Is(err, io.EOF) {
		return io.EOF
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
	if b[0] != 0 {
		c.statusErr = c.opErr("dial", ErrNoRoute)
	}
	return c.statusErr
}

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

// slogAdapter sends yamux's log lines to a slog.Logger.
type slogAdapter struct{ l *slog.Logger }

func (a slogAdapter) Print(v ...any) { a.l.Debug(strings.TrimSpace(fmt.Sprint(v...))) }
func (a slogAdapter) Printf(format string, v ...any) {
	a.l.Debug(strings.TrimSpace(fmt.Sprintf(format, v...)))
}
func (a slogAdapter) Println(v ...any) { a.l.Debug(strings.TrimSpace(fmt.Sprintln(v...))) }
