package aerospiketest

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// DefaultNamespace is the namespace served when no namespace is configured.
const DefaultNamespace = "test"

// DefaultMaxRecordSize is the default maximum record size, 1 MiB, as
// Aerospike's default max-record-size.
const DefaultMaxRecordSize = 1 << 20

// MaxMaxRecordSize is the largest max-record-size Aerospike accepts, 8 MiB.
const MaxMaxRecordSize = 8 << 20

// DefaultBuild is the server version reported to clients.
const DefaultBuild = "8.1.2.0"

// DefaultPendingLimit is the default number of transactions that may be
// pending on one key before further ones fail with KEY_BUSY, matching
// Aerospike's transaction-pending-limit.
const DefaultPendingLimit = 20

// maxTTLSeconds is Aerospike's default max-ttl (10 years).
const maxTTLSeconds = 10 * 365 * 24 * 3600

// NamespaceConfig configures one namespace.
type NamespaceConfig struct {
	// Name is the namespace name: 1 to 31 bytes, no ':' or ';'.
	Name string
	// DefaultTTL is applied to writes that send TTL 0. Zero means records
	// never expire. Defaults to 0.
	DefaultTTL time.Duration
	// MaxRecordSize is the namespace's max-record-size: the largest record
	// accepted, measured as a real server measures it (see the package
	// doc); larger writes fail with RECORD_TOO_BIG (13). At most
	// MaxMaxRecordSize. Defaults to DefaultMaxRecordSize.
	MaxRecordSize int
	// NsupPeriod is the namespace's nsup-period, in whole seconds: how
	// often a real server's namespace supervisor removes expired records
	// (this server expires records as they are read). Zero, the
	// default as on a real server, disables it: writes with a TTL are then
	// refused with FORBIDDEN (22) unless AllowTTLWithoutNsup is set.
	NsupPeriod time.Duration
	// AllowTTLWithoutNsup is the namespace's allow-ttl-without-nsup: accept
	// writes with a TTL although NsupPeriod is zero. Defaults to false.
	AllowTTLWithoutNsup bool
}

// Option configures a Server.
type Option func(*config) error

type config struct {
	addr         string
	namespaces   []NamespaceConfig
	build        string
	nodeName     string
	pendingLimit int
	maxFrame     int64
}

// WithNamespace adds a namespace. When any namespace is added, the default
// "test" namespace is not created unless it is added too.
func WithNamespace(ns NamespaceConfig) Option {
	return func(c *config) error {
		if ns.Name == "" || len(ns.Name) > 31 {
			return fmt.Errorf("aerospiketest: namespace name %q must be 1 to 31 bytes", ns.Name)
		}
		for _, r := range ns.Name {
			if r == ':' || r == ';' || r == '\t' || r == '\n' || r == ',' {
				return fmt.Errorf("aerospiketest: namespace name %q contains %q", ns.Name, r)
			}
		}
		for _, have := range c.namespaces {
			if have.Name == ns.Name {
				return fmt.Errorf("aerospiketest: namespace %q configured twice", ns.Name)
			}
		}
		if ns.MaxRecordSize < 0 || ns.DefaultTTL < 0 || ns.NsupPeriod < 0 {
			return fmt.Errorf("aerospiketest: namespace %q: negative limit", ns.Name)
		}
		if ns.MaxRecordSize > MaxMaxRecordSize {
			return fmt.Errorf("aerospiketest: namespace %q: max record size %d over %d", ns.Name, ns.MaxRecordSize, MaxMaxRecordSize)
		}
		if ns.NsupPeriod%time.Second != 0 || ns.DefaultTTL%time.Second != 0 {
			return fmt.Errorf("aerospiketest: namespace %q: nsup period and default TTL must be whole seconds", ns.Name)
		}
		if ns.DefaultTTL > 0 && ns.NsupPeriod == 0 && !ns.AllowTTLWithoutNsup {
			// A real server refuses to start with this configuration.
			return fmt.Errorf("aerospiketest: namespace %q: a default TTL needs a nonzero nsup period or AllowTTLWithoutNsup", ns.Name)
		}
		if ns.MaxRecordSize == 0 {
			ns.MaxRecordSize = DefaultMaxRecordSize
		}
		c.namespaces = append(c.namespaces, ns)
		return nil
	}
}

// WithBuild sets the version answered to the "build" info command.
// Versions from 8.1 on make the client use the newer secondary-index info
// syntax and send user-agent-set; both syntaxes are accepted. Defaults to
// DefaultBuild.
func WithBuild(build string) Option {
	return func(c *config) error {
		if build == "" || build[0] < '6' || build[0] > '9' {
			return fmt.Errorf("aerospiketest: build %q: must be 6.x to 9.x", build)
		}
		c.build = build
		return nil
	}
}

// WithNodeName sets the node name reported by the "node" info command.
// Defaults to "BB9000000000001".
func WithNodeName(name string) Option {
	return func(c *config) error {
		if name == "" {
			return errors.New("aerospiketest: empty node name")
		}
		c.nodeName = name
		return nil
	}
}

// WithPendingLimit sets how many transactions may wait on one key; one more
// fails with KEY_BUSY (14). Zero disables the limit. Defaults to
// DefaultPendingLimit.
func WithPendingLimit(n int) Option {
	return func(c *config) error {
		if n < 0 {
			return errors.New("aerospiketest: negative pending limit")
		}
		c.pendingLimit = n
		return nil
	}
}

// WithAddr sets the host:port the server listens on, and reports to
// clients as its service address. Defaults to 127.0.0.1 and a port the
// system picks.
func WithAddr(addr string) Option {
	return func(c *config) error {
		if _, _, err := net.SplitHostPort(addr); err != nil {
			return fmt.Errorf("aerospiketest: address %q: %w", addr, err)
		}
		c.addr = addr
		return nil
	}
}

// Stats are counters observed by the server since it started.
type Stats struct {
	// Connections is the number of accepted connections.
	Connections int64
	// Commands is the number of AS_MSG requests handled (batch, scan and
	// query requests count once).
	Commands int64
	// InfoRequests is the number of info requests handled.
	InfoRequests int64
	// FaultsFired is the number of injected faults that took effect.
	FaultsFired int64
	// KeyBusy is the number of transactions refused by the pending limit.
	KeyBusy int64
}

// Server is an in-process Aerospike-compatible server listening on
// 127.0.0.1. It is safe for concurrent use.
type Server struct {
	cfg        config
	ln         net.Listener
	namespaces map[string]*namespace
	nsOrder    []string
	replicas   string

	clockOffset atomic.Int64 // nanoseconds added to the wall clock

	faults faultSet

	stConns, stCommands, stInfo, stFaults, stKeyBusy atomic.Int64

	done chan struct{} // closed by Close

	mu     sync.Mutex
	conns  map[net.Conn]struct{}
	closed bool
	wg     sync.WaitGroup
}

// sleep waits for d or until the server closes.
func (s *Server) sleep(d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-s.done:
	}
}

// NewServer starts a server, by default on a random 127.0.0.1 port.
func NewServer(opts ...Option) (*Server, error) {
	cfg := config{
		addr:         "127.0.0.1:0",
		build:        DefaultBuild,
		nodeName:     "BB9000000000001",
		pendingLimit: DefaultPendingLimit,
		maxFrame:     128 << 20,
	}
	for _, o := range opts {
		if o == nil {
			continue
		}
		if err := o(&cfg); err != nil {
			return nil, err
		}
	}
	if len(cfg.namespaces) == 0 {
		cfg.namespaces = []NamespaceConfig{{Name: DefaultNamespace, MaxRecordSize: DefaultMaxRecordSize}}
	}
	ln, err := net.Listen("tcp", cfg.addr)
	if err != nil {
		return nil, fmt.Errorf("aerospiketest: listen: %w", err)
	}
	s := &Server{
		cfg:        cfg,
		ln:         ln,
		namespaces: make(map[string]*namespace, len(cfg.namespaces)),
		conns:      make(map[net.Conn]struct{}),
		done:       make(chan struct{}),
	}
	for _, nc := range cfg.namespaces {
		s.namespaces[nc.Name] = newNamespace(nc)
		s.nsOrder = append(s.nsOrder, nc.Name)
	}
	s.replicas = replicasValue(s.nsOrder)
	s.wg.Add(1)
	go s.acceptLoop()
	return s, nil
}

// Addr returns the listening address as host:port.
func (s *Server) Addr() string { return s.ln.Addr().String() }

// Host returns the listening host, "127.0.0.1" by default.
func (s *Server) Host() string {
	h, _, _ := net.SplitHostPort(s.Addr())
	return h
}

// Port returns the listening port.
func (s *Server) Port() int {
	_, p, _ := net.SplitHostPort(s.Addr())
	n, _ := strconv.Atoi(p)
	return n
}

// Close stops the listener, closes every connection and waits for all
// server goroutines to return. It is safe to call more than once.
func (s *Server) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	close(s.done)
	err := s.ln.Close()
	for c := range s.conns {
		_ = c.Close()
	}
	s.mu.Unlock()
	s.wg.Wait()
	return err
}

// Now returns the server clock: the wall clock plus any offset set with
// AdvanceClock or SetClock. Expiration is evaluated against it.
func (s *Server) Now() time.Time {
	return time.Now().Add(time.Duration(s.clockOffset.Load()))
}

// AdvanceClock moves the server clock forward by d (backward if d < 0).
func (s *Server) AdvanceClock(d time.Duration) { s.clockOffset.Add(int64(d)) }

// SetClock sets the server clock to t; it then keeps running from t.
func (s *Server) SetClock(t time.Time) { s.clockOffset.Store(int64(time.Until(t))) }

// Stats returns a snapshot of the server counters.
func (s *Server) Stats() Stats {
	return Stats{
		Connections:  s.stConns.Load(),
		Commands:     s.stCommands.Load(),
		InfoRequests: s.stInfo.Load(),
		FaultsFired:  s.stFaults.Load(),
		KeyBusy:      s.stKeyBusy.Load(),
	}
}

// RecordCount returns the number of live records in a namespace, or -1 if
// the namespace does not exist.
func (s *Server) RecordCount(ns string) int {
	n, ok := s.namespaces[ns]
	if !ok {
		return -1
	}
	return n.count(s.nowVoid())
}

// nowVoid is the server clock in seconds since the citrusleaf epoch.
func (s *Server) nowVoid() uint32 {
	sec := s.Now().Unix() - citrusleafEpochOffset
	if sec < 0 {
		return 0
	}
	return uint32(sec)
}

func (s *Server) acceptLoop() {
	defer s.wg.Done()
	for {
		c, err := s.ln.Accept()
		if err != nil {
			return
		}
		s.mu.Lock()
		if s.closed {
			s.mu.Unlock()
			_ = c.Close()
			return
		}
		s.conns[c] = struct{}{}
		s.wg.Add(1)
		s.mu.Unlock()
		s.stConns.Add(1)
		go s.serveConn(c)
	}
}

func (s *Server) dropConn(c net.Conn) {
	_ = c.Close()
	s.mu.Lock()
	delete(s.conns, c)
	s.mu.Unlock()
}

// connState is what a connection keeps between its requests: a buffered
// reader, the request body buffer, the parsed message and the response
// buffer. Requests are served one at a time, so nothing in it is shared.
type connState struct {
	r    *bufio.Reader
	body []byte
	msg  message
	cw   connWriter
	// batch holds the entries and messages of the last batch request.
	batch batchBuf
}

// connReadBuffer is the size of a connection's read buffer: a request
// usually arrives in one read.
const connReadBuffer = 16 << 10

// serveConn handles one connection: requests are served one at a time.
func (s *Server) serveConn(c net.Conn) {
	defer s.wg.Done()
	defer s.dropConn(c)
	cs := &connState{r: bufio.NewReaderSize(c, connReadBuffer), body: make([]byte, 0, 4<<10)}
	cs.msg.names = nameTable{}
	cs.cw.conn = c
	for {
		f, body, err := readFrameInto(cs.r, s.cfg.maxFrame, cs.body)
		if err != nil {
			return
		}
		cs.body = body
		switch f.typ {
		case protoInfo:
			s.stInfo.Add(1)
			if len(f.body) > maxInfoSize {
				return
			}
			reply := s.infoFault(string(f.body))
			if reply == nil {
				return
			}
			if _, err := c.Write(frameProto(protoInfo, reply)); err != nil {
				return
			}
		case protoMsg:
			s.stCommands.Add(1)
			if !s.handleMessage(cs, f.body) {
				return
			}
		case protoCompressed:
			// Request compression is an Enterprise feature: the request is
			// answered with ENTERPRISE_ONLY and not executed.
			s.stCommands.Add(1)
			if !cs.cw.fail(rcEnterpriseOnly) {
				return
			}
		default:
			// Admin (security) and unknown proto types are not served.
			return
		}
	}
}

// connWriter writes responses and records failures. Its buffer is reused
// by the next response on the connection.
type connWriter struct {
	conn io.Writer
	w    io.Writer // conn, or discard for a response that is not sent
	err  error
	out  []byte
}

// builder returns an empty response builder that uses cw's buffer and
// leaves room for the proto header.
func (cw *connWriter) builder() respBuilder {
	if cap(cw.out) < protoHeaderSize {
		cw.out = make([]byte, 0, 1<<10)
	}
	return respBuilder{buf: cw.out[:protoHeaderSize], off: protoHeaderSize}
}

// release hands w's buffer back to cw for the next response.
func (cw *connWriter) release(w *respBuilder) {
	if w.off == protoHeaderSize && cap(w.buf) <= maxKeptBuffer {
		cw.out = w.buf[:0]
	}
}

// send writes the messages accumulated in w as one proto frame and empties
// w.
func (cw *connWriter) send(w *respBuilder) bool {
	if w.off != protoHeaderSize {
		ok := cw.write(frameProto(protoMsg, w.buf))
		w.reset()
		return ok
	}
	n := len(w.buf) - protoHeaderSize
	binary.BigEndian.PutUint64(w.buf, uint64(n)|uint64(protoVersion)<<56|uint64(protoMsg)<<48)
	ok := cw.write(w.buf)
	w.reset()
	return ok
}

// fail answers the current request with code alone, in one message that
// ends single-record and multi-record responses alike.
func (cw *connWriter) fail(code byte) bool {
	cw.w, cw.err = cw.conn, nil
	w := cw.builder()
	w.begin(info3Last, code, 0, 0, 0, 0, 0)
	ok := cw.send(&w)
	cw.release(&w)
	return ok
}

func (cw *connWriter) write(b []byte) bool {
	if cw.err != nil {
		return false
	}
	_, cw.err = cw.w.Write(b)
	return cw.err == nil
}
