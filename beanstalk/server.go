package beanstalk

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"runtime/debug"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/beanspike/beanspike"
	"github.com/beanspike/beanspike/internal/lograte"
)

// DefaultMaxJobSize is the default limit on a put body, in bytes, as
// beanstalkd's -z default.
const DefaultMaxJobSize = 1<<16 - 1

// MaxJobSizeLimit is the largest value [WithMaxJobSize] accepts: 1 GiB,
// beanstalkd's ceiling.
const MaxJobSizeLimit = 1 << 30

// safetyMargin is the last part of a reservation's TTR during which
// reserve answers DEADLINE_SOON instead of waiting, as in beanstalkd.
const safetyMargin = time.Second

// ErrServerClosed is returned by [Server.Serve] and [Server.ServeConn]
// after [Server.Shutdown] or [Server.Close].
var ErrServerClosed = errors.New("beanstalk: server closed")

// errTooManyConns refuses a connection past [WithMaxConns].
var errTooManyConns = fmt.Errorf("%w: beanstalk: at the connection limit", beanspike.ErrUnavailable)

// Option configures a [Server].
type Option func(*config)

type config struct {
	maxJobSize  int
	maxConns    int
	idleTimeout time.Duration
	logger      *slog.Logger
	deleteTube  bool
}

// WithMaxJobSize sets the largest put body, in bytes; a larger put is
// answered JOB_TOO_BIG and its body is discarded unread. It must be
// between 0 and [MaxJobSizeLimit]. Defaults to [DefaultMaxJobSize]. The
// backend's own limit still applies: a body it refuses is answered
// JOB_TOO_BIG too.
func WithMaxJobSize(n int) Option { return func(c *config) { c.maxJobSize = n } }

// DefaultMaxConns is how many connections a server serves at once
// without [WithMaxConns].
const DefaultMaxConns = 1024

// WithMaxConns sets how many connections the server serves at once, over
// all its listeners; one accepted past that is closed at once (logged at
// most once a second). n must be positive. Defaults to [DefaultMaxConns].
// beanstalkd has no such bound: it takes connections until it runs out
// of file descriptors.
func WithMaxConns(n int) Option { return func(c *config) { c.maxConns = n } }

// WithIdleTimeout closes a connection when it sends nothing for d while
// the server waits for a command or a put body (never while a reserve
// waits for a job). Closing it returns its reservations to ready. Zero,
// the default, disables the timeout, as in beanstalkd; d must not be
// negative.
func WithIdleTimeout(d time.Duration) Option { return func(c *config) { c.idleTimeout = d } }

// WithDeleteTube enables the extension command "delete-tube <tube>",
// which deletes a tube and all its jobs, whatever their state, with
// [beanspike.Queue.DeleteTube]. It answers "DELETED <count>" with the
// number of jobs deleted, NOT_FOUND when the store has no such tube, or
// BAD_FORMAT. beanstalkd has no such command, so it is off by default:
// without this option the front end answers UNKNOWN_COMMAND, as
// beanstalkd does.
func WithDeleteTube() Option { return func(c *config) { c.deleteTube = true } }

// WithLogger sets where the server reports errors that no client sees:
// failed accepts, clients it could not open, backend failures. Defaults
// to discarding them.
func WithLogger(l *slog.Logger) Option { return func(c *config) { c.logger = l } }

// Server serves beanstalkd's text protocol over a [beanspike.Queue]
// store. Each connection is one client of the store, opened by the
// function given to [NewServer] and closed with the connection, so the
// connection's reservations belong to it and return to ready when it
// closes.
//
// A Server is safe for concurrent use. It may serve several listeners.
type Server struct {
	newClient func() (beanspike.Queue, error)
	cfg       config
	started   time.Time
	id        string
	hostname  string
	version   string

	// ctx is cancelled by Close: it ends every backend call.
	ctx    context.Context
	cancel context.CancelFunc
	// drainCtx is cancelled by Shutdown: it ends blocked reserves.
	drainCtx    context.Context
	drainCancel context.CancelFunc

	draining     atomic.Bool
	shuttingDown atomic.Bool
	lastFree     atomic.Int64  // when freeMemory last ran (Unix ns)
	frees        atomic.Uint64 // how many times it gave memory back

	cmdCounts [numOps]atomic.Uint64
	timeouts  atomic.Uint64

	mu         sync.Mutex
	closed     bool
	listeners  map[net.Listener]struct{}
	conns      map[*conn]struct{}
	opening    int // connections being opened, not yet in conns
	tubes      map[string]*tubeRefs
	producers  int
	workers    int
	waiting    int
	totalConns uint64
	wg         sync.WaitGroup
}

// tubeRefs counts the connections of this server that use, watch or wait
// on a tube. A tube referenced by a connection exists, as in beanstalkd,
// even when the store has never seen it.
type tubeRefs struct {
	using, watching, waiting int
}

// NewServer returns a server whose connections are clients made by
// newClient. newClient is called once per accepted connection, and the
// server closes the client when the connection ends. It returns an error
// wrapping [beanspike.ErrInvalidArgument] when an option is out of range.
func NewServer(newClient func() (beanspike.Queue, error), opts ...Option) (*Server, error) {
	if newClient == nil {
		return nil, fmt.Errorf("%w: nil client constructor", beanspike.ErrInvalidArgument)
	}
	cfg := config{maxJobSize: DefaultMaxJobSize, maxConns: DefaultMaxConns}
	for _, o := range opts {
		if o != nil {
			o(&cfg)
		}
	}
	if cfg.maxJobSize < 0 || cfg.maxJobSize > MaxJobSizeLimit {
		return nil, fmt.Errorf("%w: max job size %d is not between 0 and %d",
			beanspike.ErrInvalidArgument, cfg.maxJobSize, MaxJobSizeLimit)
	}
	if cfg.maxConns < 1 {
		return nil, fmt.Errorf("%w: max connections %d is not positive", beanspike.ErrInvalidArgument, cfg.maxConns)
	}
	if cfg.idleTimeout < 0 {
		return nil, fmt.Errorf("%w: negative idle timeout %s", beanspike.ErrInvalidArgument, cfg.idleTimeout)
	}
	if cfg.logger == nil {
		cfg.logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	var idb [8]byte
	if _, err := rand.Read(idb[:]); err != nil {
		return nil, fmt.Errorf("beanstalk: server id: %w", err)
	}
	host, err := os.Hostname()
	if err != nil {
		host = "unknown"
	}
	s := &Server{
		newClient: newClient,
		cfg:       cfg,
		started:   time.Now(),
		id:        hex.EncodeToString(idb[:]),
		hostname:  host,
		version:   moduleVersion(),
		listeners: make(map[net.Listener]struct{}),
		conns:     make(map[*conn]struct{}),
		tubes:     make(map[string]*tubeRefs),
	}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	s.drainCtx, s.drainCancel = context.WithCancel(s.ctx)
	return s, nil
}

// moduleVersion returns the version of the beanspike module this server
// was built from, as stats reports it.
func moduleVersion() string {
	const path = "github.com/beanspike/beanspike"
	v := "devel"
	if bi, ok := debug.ReadBuildInfo(); ok {
		if bi.Main.Path == path && bi.Main.Version != "" {
			v = bi.Main.Version
		}
		for _, d := range bi.Deps {
			if d.Path == path && d.Version != "" {
				v = d.Version
			}
		}
	}
	return "beanspike " + v
}

// Serve accepts connections on l and serves each in its own goroutine
// until l fails or the server is shut down. It always returns a non-nil
// error: [ErrServerClosed] after Shutdown or Close, otherwise the
// listener's error. Temporary accept errors are retried with a backoff.
// Serve closes l when it returns.
func (s *Server) Serve(l net.Listener) error {
	s.mu.Lock()
	if s.closed || s.shuttingDown.Load() {
		s.mu.Unlock()
		l.Close()
		return ErrServerClosed
	}
	s.listeners[l] = struct{}{}
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		delete(s.listeners, l)
		s.mu.Unlock()
		l.Close()
	}()

	var (
		backoff time.Duration
		lim     lograte.Limiter
	)
	for {
		nc, err := l.Accept()
		if err != nil {
			if s.shuttingDown.Load() || s.isClosed() {
				return ErrServerClosed
			}
			var te interface{ Temporary() bool }
			if errors.As(err, &te) && te.Temporary() {
				backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
				if held, ok := lim.Allow(time.Now()); ok {
					s.cfg.logger.Warn("beanstalk: accept", "err", err, "retry", backoff, "unlogged", held)
				}
				select {
				case <-time.After(backoff):
				case <-s.drainCtx.Done():
				}
				continue
			}
			return err
		}
		backoff = 0
		c, err := s.open(nc)
		if err != nil {
			if errors.Is(err, errTooManyConns) {
				if held, ok := lim.Allow(time.Now()); ok {
					s.cfg.logger.Warn("beanstalk: connection refused: at the connection limit",
						"limit", s.cfg.maxConns, "remote", nc.RemoteAddr(), "unlogged", held)
				}
			}
			continue
		}
		go c.serve()
	}
}

// ServeConn serves one connection, already accepted, until it ends. It
// returns [ErrServerClosed] if the server is shut down or closed, nil when
// the connection ends otherwise, the error of the client constructor, or
// one wrapping [beanspike.ErrUnavailable] at the connection limit
// ([WithMaxConns]).
// It closes nc.
func (s *Server) ServeConn(nc net.Conn) error {
	c, err := s.open(nc)
	if err != nil {
		return err
	}
	c.serve()
	if s.shuttingDown.Load() || s.isClosed() {
		return ErrServerClosed
	}
	return nil
}

// open registers a new connection and opens its client.
func (s *Server) open(nc net.Conn) (*conn, error) {
	s.mu.Lock()
	if s.closed || s.shuttingDown.Load() {
		s.mu.Unlock()
		nc.Close()
		return nil, ErrServerClosed
	}
	if len(s.conns)+s.opening >= s.cfg.maxConns {
		s.mu.Unlock()
		nc.Close()
		return nil, errTooManyConns
	}
	s.opening++
	s.wg.Add(1)
	s.mu.Unlock()

	q, err := s.newClient()
	if err != nil {
		s.cfg.logger.Error("beanstalk: open client", "err", err, "remote", nc.RemoteAddr())
		nc.Close()
		s.mu.Lock()
		s.opening--
		s.mu.Unlock()
		s.wg.Done()
		return nil, err
	}
	c := newConn(s, nc, q)

	s.mu.Lock()
	s.opening--
	if s.closed || s.shuttingDown.Load() {
		s.mu.Unlock()
		q.Close()
		nc.Close()
		s.wg.Done()
		return nil, ErrServerClosed
	}
	s.conns[c] = struct{}{}
	s.totalConns++
	s.refLocked(c.use, 1, 0)
	s.refLocked(beanspike.DefaultTube, 0, 1)
	s.mu.Unlock()
	return c, nil
}

// forget unregisters a connection that has ended.
func (s *Server) forget(c *conn) {
	s.mu.Lock()
	delete(s.conns, c)
	s.refLocked(c.use, -1, 0)
	for _, t := range c.watch {
		s.refLocked(t, 0, -1)
	}
	if c.producer {
		s.producers--
	}
	if c.worker {
		s.workers--
	}
	s.mu.Unlock()
	s.wg.Done()
}

// refLocked adjusts the use and watch counts of tube. s.mu must be held.
func (s *Server) refLocked(tube string, using, watching int) {
	r := s.tubes[tube]
	if r == nil {
		r = &tubeRefs{}
		s.tubes[tube] = r
	}
	r.using += using
	r.watching += watching
	if r.using == 0 && r.watching == 0 && r.waiting == 0 {
		delete(s.tubes, tube)
	}
}

// setWaiting marks a connection as waiting in reserve on tubes, or no
// longer waiting.
func (s *Server) setWaiting(tubes []string, on bool) {
	d := 1
	if !on {
		d = -1
	}
	s.mu.Lock()
	s.waiting += d
	for _, t := range tubes {
		r := s.tubes[t]
		if r == nil { // cannot happen: the connection watches t
			continue
		}
		r.waiting += d
	}
	s.mu.Unlock()
}

// setRole records that a connection became a producer or a worker.
func (s *Server) setRole(producer bool) {
	s.mu.Lock()
	if producer {
		s.producers++
	} else {
		s.workers++
	}
	s.mu.Unlock()
}

// referenced returns the tubes referenced by connections, with "default",
// which always exists.
func (s *Server) referenced() map[string]tubeRefs {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make(map[string]tubeRefs, len(s.tubes)+1)
	out[beanspike.DefaultTube] = tubeRefs{}
	for n, r := range s.tubes {
		out[n] = *r
	}
	return out
}

// tubeRefsOf returns the reference counts of one tube and whether any
// connection references it ("default" always counts as referenced).
func (s *Server) tubeRefsOf(tube string) (tubeRefs, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if r := s.tubes[tube]; r != nil {
		return *r, true
	}
	return tubeRefs{}, tube == beanspike.DefaultTube
}

// listTubes returns the tubes that exist: the store's and those
// connections reference, in lexical order.
func (s *Server) listTubes(ctx context.Context, q beanspike.Queue) ([]string, error) {
	stored, err := q.Tubes(ctx)
	if err != nil {
		return nil, err
	}
	seen := s.referenced()
	names := make([]string, 0, len(stored)+len(seen))
	for _, t := range stored {
		if _, ok := seen[t]; !ok {
			names = append(names, t)
		}
	}
	for t := range seen {
		names = append(names, t)
	}
	sort.Strings(names)
	return names, nil
}

// pruneAll drops lapsed reservations from every connection's records, so
// that stats counts their timeouts.
func (s *Server) pruneAll() {
	s.mu.Lock()
	conns := make([]*conn, 0, len(s.conns))
	for c := range s.conns {
		conns = append(conns, c)
	}
	s.mu.Unlock()
	now := time.Now()
	for _, c := range conns {
		c.prune(now)
	}
}

func (s *Server) isClosed() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.closed
}

// Conns returns the number of connections the server is serving.
func (s *Server) Conns() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.conns)
}

// SetDraining turns drain mode on or off, as beanstalkd's SIGUSR1 turns
// it on: while draining, put is answered DRAINING and every other
// command works as usual.
func (s *Server) SetDraining(on bool) { s.draining.Store(on) }

// Draining reports whether the server is in drain mode.
func (s *Server) Draining() bool { return s.draining.Load() }

// Shutdown stops the server gracefully. It closes the listeners, enters
// drain mode (put is answered DRAINING), ends blocked reserves with
// TIMED_OUT and answers later reserves TIMED_OUT at once, so that no new
// work is handed out. Each connection is closed as soon as it is between
// commands and holds no reservation; a connection holding reservations
// keeps being served until it has deleted, released or buried them, or
// they lapse. Shutdown returns nil once every connection is closed. If
// ctx is done first, it closes the remaining connections as Close does
// and returns ctx's error.
func (s *Server) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	s.shuttingDown.Store(true)
	s.draining.Store(true)
	conns := s.closeListenersLocked()
	s.mu.Unlock()
	s.drainCancel()
	for _, c := range conns {
		c.interrupt()
	}

	done := make(chan struct{})
	go func() {
		s.wg.Wait()
		close(done)
	}()
	select {
	case <-done:
		s.Close()
		return nil
	case <-ctx.Done():
		s.Close()
		<-done
		return ctx.Err()
	}
}

// closeListenersLocked closes the listeners and returns the open
// connections. s.mu must be held.
func (s *Server) closeListenersLocked() []*conn {
	for l := range s.listeners {
		l.Close()
	}
	conns := make([]*conn, 0, len(s.conns))
	for c := range s.conns {
		conns = append(conns, c)
	}
	return conns
}

// Close stops the server at once: it closes the listeners and every
// connection, whose reservations return to ready, and waits for the
// connections' goroutines to end. Close is idempotent and returns nil.
func (s *Server) Close() error {
	s.mu.Lock()
	s.closed = true
	conns := s.closeListenersLocked()
	s.mu.Unlock()
	s.cancel()
	for _, c := range conns {
		c.nc.Close()
	}
	s.wg.Wait()
	return nil
}

// freeAbove is the buffer of an abandoned put body large enough to be
// given back to the operating system at once; freeEvery spaces those
// returns, which cost a garbage collection.
const (
	freeAbove = 1 << 20
	freeEvery = time.Second
)

// freeMemory returns the memory of abandoned put bodies to the operating
// system at once, instead of over the minutes the runtime's scavenger
// would take, unless it did so less than freeEvery ago.
func (s *Server) freeMemory() {
	now := time.Now().UnixNano()
	last := s.lastFree.Load()
	if now-last < int64(freeEvery) || !s.lastFree.CompareAndSwap(last, now) {
		return
	}
	debug.FreeOSMemory()
	s.frees.Add(1)
}
