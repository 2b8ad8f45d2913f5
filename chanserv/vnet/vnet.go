package vnet

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	mrand "math/rand/v2"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	yamux "github.com/libp2p/go-yamux/v5"

	"github.com/beanspike/beanspike/internal/lograte"
)

// Errors returned by a Node and its connections.
var (
	// ErrNoRoute means no linked peer advertised the dialled address
	// before the dial timeout, or the peer no longer had it.
	ErrNoRoute = errors.New("vnet: no route to address")
	// ErrRefused means the peer reset a stream before accepting it: it
	// had as many streams from this node as [WithMaxStreams] lets it
	// serve, or its buffer budget ([WithSessionBuffer], [WithMaxBuffer])
	// was spent, or its accept backlog was full, or the stream had not
	// sent its target's address when the peer needed its place among
	// the streams awaiting theirs (see the package doc's Limits).
	ErrRefused = errors.New("vnet: stream refused by peer")
	// ErrKeepAlive means the peer did not answer a keepalive ping in time
	// ([WithKeepAlive]): the session and all its streams failed.
	ErrKeepAlive = errors.New("vnet: peer missed a keepalive")
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
	// DefaultAcceptBacklog is how many streams a peer may have opened
	// that the node has not yet taken up.
	DefaultAcceptBacklog = 256
	// DefaultMaxConns is how many connections one listener serves at a
	// time.
	DefaultMaxConns = 1024
	// DefaultMaxStreams is how many streams a peer may have open to the
	// node at a time, on one connection.
	DefaultMaxStreams = 256
	// DefaultMaxBuffer is how many bytes of receive window the streams of
	// all connections may hold together: 4 GiB, which is what the
	// control streams of DefaultMaxConns connections (2 MiB each with the
	// default window) and 2,048 more streams reserve.
	DefaultMaxBuffer = 1 << 32
	// DefaultKeepAliveInterval is how long a session may be silent before
	// the node pings the peer.
	DefaultKeepAliveInterval = 30 * time.Second
	// DefaultKeepAliveTimeout is how long the node waits for the answer
	// to a ping, and for a write to the connection to go through.
	DefaultKeepAliveTimeout = 10 * time.Second
	// DefaultDialTimeout is used by DialTimeout when given 0.
	DefaultDialTimeout = 10 * time.Second
	// maxAddrLen is the longest address.
	maxAddrLen = 1024
	// preambleTimeout bounds how long an accepted stream may take to
	// name its target. What keeps streams that do not from filling the
	// node is the bound on them (see pendingStreams), not this.
	preambleTimeout = 10 * time.Second
	// minWindow is yamux's initial window, the least a stream has.
	minWindow = 256 << 10
)

// Option configures a [Node].
type Option func(*Node) error

// WithWindow sets the per-stream receive window in bytes (at least 256
// KiB): how much a peer may send on a stream before the node's reader
// takes it. Each stream reserves its window against the buffer budgets.
// Defaults to [DefaultWindow].
func WithWindow(n int) Option {
	return func(nd *Node) error {
		if n < minWindow || n > 1<<30 {
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

// WithMaxConns sets how many connections each listener ([Node.Listen],
// [Node.Serve]) serves at a time. A connection past the limit is closed
// at once, after a yamux go-away that the refused node logs (without
// TLS). Defaults to [DefaultMaxConns].
func WithMaxConns(n int) Option {
	return func(nd *Node) error {
		if n < 1 {
			return fmt.Errorf("%w: max conns %d", ErrInvalidOption, n)
		}
		nd.maxConns = n
		return nil
	}
}

// WithMaxStreams sets how many streams a peer may have open to the node
// at a time on one connection. A stream past the limit is reset, and the
// peer sees [ErrRefused]. Defaults to [DefaultMaxStreams].
func WithMaxStreams(n int) Option {
	return func(nd *Node) error {
		if n < 1 || n > 1<<24 {
			return fmt.Errorf("%w: max streams %d not in [1, 2^24]", ErrInvalidOption, n)
		}
		nd.maxStreams = n
		return nil
	}
}

// WithAcceptBacklog sets how many streams a peer may have opened that
// the node has not yet taken up; it also bounds how many of the node's own
// stream openings may wait for the peer's answer. A stream past it is
// reset. Defaults to [DefaultAcceptBacklog].
func WithAcceptBacklog(n int) Option {
	return func(nd *Node) error {
		if n < 1 || n > 1<<20 {
			return fmt.Errorf("%w: accept backlog %d not in [1, 2^20]", ErrInvalidOption, n)
		}
		nd.backlog = n
		return nil
	}
}

// WithSessionBuffer sets how many bytes of receive window the streams a
// peer opens on one connection may hold. Each stream holds its whole
// window ([WithWindow]), so the node lets a peer have at most n / window
// streams open at a time (and at most [WithMaxStreams]); a stream past
// that is reset, and the peer sees [ErrRefused]. Defaults to the windows
// of [WithMaxStreams] streams.
func WithSessionBuffer(n int) Option {
	return func(nd *Node) error {
		if n < minWindow {
			return fmt.Errorf("%w: session buffer %d under 256 KiB", ErrInvalidOption, n)
		}
		nd.sessBuf = int64(n)
		return nil
	}
}

// WithMaxBuffer sets how many bytes of receive window the streams of all
// the node's connections may hold together: each stream its whole window,
// whichever side opened it, the two control streams of each connection
// included; a stream a peer opened counts 4 KiB until it has named its
// target. A stream a peer opens, or names the target of, while they hold
// more is reset, and the peer sees [ErrRefused]. Defaults to
// [DefaultMaxBuffer].
func WithMaxBuffer(n int) Option {
	return func(nd *Node) error {
		if n < minWindow {
			return fmt.Errorf("%w: max buffer %d under 256 KiB", ErrInvalidOption, n)
		}
		nd.buf.limit = int64(n)
		return nil
	}
}

// WithKeepAlive sets how long a session may go without receiving anything
// before the node pings the peer (0 turns pings off), and how long the
// node then waits for the answer. A peer that does not answer in time
// fails the session and its streams with [ErrKeepAlive]. timeout also
// bounds each write to the connection: a peer that reads nothing for that
// long loses its session. Defaults to [DefaultKeepAliveInterval] and
// [DefaultKeepAliveTimeout].
func WithKeepAlive(interval, timeout time.Duration) Option {
	return func(nd *Node) error {
		if interval < 0 || timeout <= 0 {
			return fmt.Errorf("%w: keepalive interval %v, timeout %v", ErrInvalidOption, interval, timeout)
		}
		nd.keepAlive, nd.keepAliveTimeout = interval, timeout
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

	maxConns                    int
	maxStreams, backlog         int
	sessBuf                     int64 // window bytes of the streams a peer opens
	buf                         budget
	pending                     pendingStreams
	keepAlive, keepAliveTimeout time.Duration
	listenTLS, dialTLS          *tls.Config
	base                        context.Context // cancelled by Close
	cancelBase                  context.CancelFunc
	bufs                        sync.Pool // of *[]byte: first writes and preambles

	mu        sync.Mutex
	closed    bool
	listeners map[string]*listener
	sessions  map[*session]struct{}
	tcp       map[net.Listener]struct{}
	changed   chan struct{} // closed and replaced when routes change
	done      chan struct{} // closed by Close
	nextPort  uint64
	wg        sync.WaitGroup

	logMu     sync.Mutex
	limiters  map[string]*lograte.Limiter // by kind of line
	lingering atomic.Int32                // refused connections draining
}

// New returns a node with a random identity.
func New(opts ...Option) (*Node, error) {
	var b [8]byte
	if _, err := rand.Read(b[:]); err != nil {
		return nil, err
	}
	n := &Node{
		id:               hex.EncodeToString(b[:]),
		window:           DefaultWindow,
		maxConns:         DefaultMaxConns,
		maxStreams:       DefaultMaxStreams,
		backlog:          DefaultAcceptBacklog,
		keepAlive:        DefaultKeepAliveInterval,
		keepAliveTimeout: DefaultKeepAliveTimeout,
		limiters:         make(map[string]*lograte.Limiter),
		logger:           slog.New(slog.DiscardHandler),
		listeners:        make(map[string]*listener),
		sessions:         make(map[*session]struct{}),
		tcp:              make(map[net.Listener]struct{}),
		changed:          make(chan struct{}),
		done:             make(chan struct{}),
	}
	n.buf.limit = DefaultMaxBuffer
	n.base, n.cancelBase = context.WithCancel(context.Background())
	n.addr = Addr("@" + n.id)
	for _, o := range opts {
		if err := o(n); err != nil {
			return nil, err
		}
	}
	if n.sessBuf == 0 {
		n.sessBuf = int64(n.maxStreams) * int64(n.window)
	}
	if n.sessBuf < int64(n.window) {
		return nil, fmt.Errorf("%w: session buffer %d under the window %d", ErrInvalidOption, n.sessBuf, n.window)
	}
	n.buf.discount = int64(n.window) - pendingCharge
	if n.pending.max == 0 {
		n.pending.max = max(defaultMaxPending, n.maxStreams)
	}
	return n, nil
}

// ID returns the node's random identity, which ephemeral addresses carry.
func (n *Node) ID() string { return n.id }

func (n *Node) yamuxConfig() *yamux.Config {
	c := yamux.DefaultConfig()
	c.AcceptBacklog = n.backlog
	c.PingBacklog = 8
	// Each stream holds a whole window; one more for the peer's control
	// stream.
	c.MaxIncomingStreams = uint32(min(int64(n.maxStreams), n.sessBuf/int64(n.window))) + 1
	// The whole window from the start, as hashicorp/yamux gave it: chanserv
	// sends up to its own credit window per source without waiting.
	c.InitialStreamWindowSize = n.window
	c.MaxStreamWindowSize = n.window
	c.EnableKeepAlive = n.keepAlive > 0
	if c.EnableKeepAlive {
		c.KeepAliveInterval = n.keepAlive
	}
	c.ConnectionWriteTimeout = n.keepAliveTimeout
	c.LogOutput = &yamuxLog{n: n}
	return c
}

// Listen listens on a real network address (such as "tcp", "127.0.0.1:0")
// and serves peers in the background until Close, as [Node.Serve] does. It
// returns the address listened on.
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
// second. With [WithListenTLS], each connection's TLS handshake runs on
// its own goroutine, and its session starts once the handshake is done.
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
		lim   lograte.Limiter
		conns atomic.Int64
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
			if more, ok := lim.Allow(time.Now()); ok {
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
		if conns.Add(1) > int64(n.maxConns) {
			conns.Add(-1)
			n.warn("maxconns", "vnet: connection refused: listener at its limit", "addr", l.Addr().String(), "peer", c.RemoteAddr().String(), "max_conns", n.maxConns)
			if n.listenTLS != nil {
				c.Close() // a TLS client would take a go-away for a broken handshake
			} else {
				n.refuse(c)
			}
			continue
		}
		done := func() { conns.Add(-1) }
		if n.listenTLS != nil {
			n.mu.Lock()
			if n.closed {
				n.mu.Unlock()
				c.Close()
				return ErrClosed
			}
			n.wg.Add(1)
			n.mu.Unlock()
			go n.serverTLS(l, c, done)
			continue
		}
		if err := n.attach(c, false, done); err != nil {
			c.Close()
			if errors.Is(err, ErrClosed) {
				return err
			}
		}
	}
}

// refuse sends c a yamux go-away, which the peer's session reports, and
// closes it. Closing a TCP connection with unread data sends a reset,
// which may destroy the go-away before the peer reads it; so the
// connection is shut for writing and drained for a moment first, by at
// most refuseLingers goroutines at a time.
func (n *Node) refuse(c net.Conn) {
	var ga [12]byte
	ga[1] = 3 // go away
	binary.BigEndian.PutUint32(ga[8:], goAwayBusy)
	c.SetDeadline(time.Now().Add(refuseLinger))
	c.Write(ga[:])
	cw, ok := c.(interface{ CloseWrite() error })
	if !ok || n.lingering.Add(1) > refuseLingers {
		if ok {
			n.lingering.Add(-1)
		}
		c.Close()
		return
	}
	cw.CloseWrite()
	go func() {
		defer n.lingering.Add(-1)
		io.Copy(io.Discard, io.LimitReader(c, 64<<10))
		c.Close()
	}()
}

// A refused connection lingers at most refuseLinger, and at most
// refuseLingers of them at a time.
const (
	refuseLinger  = 250 * time.Millisecond
	refuseLingers = 64
)

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

// Connect dials a peer at a real network address and links to it. With
// [WithDialTLS], it returns once the TLS handshake is done, or its error.
// The link lasts until either node closes or the connection fails;
// Connect does not reconnect.
func (n *Node) Connect(ctx context.Context, network, address string) error {
	var d net.Dialer
	c, err := d.DialContext(ctx, network, address)
	if err != nil {
		return err
	}
	if n.dialTLS != nil {
		tc, err := n.clientTLS(ctx, c, address)
		if err != nil {
			c.Close()
			return err
		}
		c = tc
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
	return n.attach(c, initiator, nil)
}

// attach is Attach, calling done (if not nil) when the session ends or
// fails to start.
func (n *Node) attach(c net.Conn, initiator bool, done func()) (err error) {
	if done != nil {
		defer func() {
			if err != nil {
				done()
			}
		}()
	}
	s := &session{n: n, remote: make(map[string]struct{}), done: done}
	mm := func() (yamux.MemoryManager, error) {
		return &span{node: &n.buf, window: int64(n.window)}, nil
	}
	var ys *yamux.Session
	if initiator {
		ys, err = yamux.Client(c, n.yamuxConfig(), mm)
	} else {
		ys, err = yamux.Server(c, n.yamuxConfig(), mm)
	}
	if err != nil {
		return err
	}
	s.ys = ys
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
// Read fails with [ErrNoRoute]. The address goes to the peer with the
// first Write or Read; the peer resets ([ErrRefused]) a connection that
// does neither for 10 s, or for so long that it is the oldest of more
// than 1,024 streams awaiting their preambles there. network is ignored.
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
			st, err := s.ys.OpenStream(ctx)
			if err != nil {
				if ctx.Err() != nil {
					return nil, &net.OpError{Op: "dial", Net: "vnet", Addr: Addr(address), Err: ctx.Err()}
				}
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
	n.cancelBase()
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

// yamuxLog is the destination of a session's log lines: it passes them
// on to the node's logger, at most one a second for the whole node, so
// that a peer cannot flood the log (go-yamux logs, for instance, each
// ping reply it drops).
type yamuxLog struct{ n *Node }

func (y *yamuxLog) Write(p []byte) (int, error) {
	n := y.n
	line := strings.TrimSpace(string(p))
	// Drop log.LstdFlags' "2006/01/02 15:04:05 " prefix.
	if len(line) > 20 && line[4] == '/' && line[13] == ':' {
		line = line[20:]
	}
	level := slog.LevelDebug
	if strings.HasPrefix(line, "[ERR]") || strings.HasPrefix(line, "[WARN]") {
		level = slog.LevelWarn
	}
	n.logLimited(level, "yamux", "vnet: "+line)
	return len(p), nil
}
