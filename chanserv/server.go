package chanserv

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"time"

	"github.com/beanspike/beanspike/chanserv/internal/wire"
	"github.com/beanspike/beanspike/codec"
)

// Handler serves one request. It announces sources with w.NewSource and
// writes their frames; what it returns becomes the end status of the
// response: nil is success, anything else a failure the client receives as
// a [*RemoteError] (return a *RemoteError to choose its status and code).
//
// ctx is cancelled when the client closes or cancels the request, when
// the request's deadline passes, and when the server is closed or its
// shutdown grace period ends. A handler must return soon after that.
// Sources still open when it returns are ended with [StatusAborted].
type Handler interface {
	ServeChan(ctx context.Context, req *Request, w ResponseWriter) error
}

// HandlerFunc adapts a function to a [Handler].
type HandlerFunc func(ctx context.Context, req *Request, w ResponseWriter) error

// ServeChan calls f.
func (f HandlerFunc) ServeChan(ctx context.Context, req *Request, w ResponseWriter) error {
	return f(ctx, req, w)
}

// ResponseWriter announces the sources of a response. It is safe for
// concurrent use.
type ResponseWriter interface {
	// NewSource announces a source with an application-defined header
	// (may be nil). It waits while the client has as many sources open
	// as it allows (see [WithMaxSources]), returning ctx's error if ctx
	// ends first, and [ErrClosed] once the handler has returned.
	NewSource(ctx context.Context, header []byte) (SourceWriter, error)
}

// SourceWriter writes the frames of one source. Different sources may be
// written concurrently; the methods of one SourceWriter must not be called
// concurrently, except Close, which may be called at any time.
type SourceWriter interface {
	// WriteFrame sends p as one frame. It waits while the consumer is
	// more than a window behind (see [WithWindow]): frames are never
	// dropped. It returns ctx's error if ctx ends first, [ErrSourceClosed]
	// if the consumer closed the source, [ErrFrameTooLarge] if p is over
	// the client's limit, or the request context's error if the request
	// was cancelled. p is not retained.
	WriteFrame(ctx context.Context, p []byte) error

	// Close ends the source with err as its status: nil for success.
	// The consumer sees io.EOF after the last frame on success, and a
	// [*RemoteError] otherwise. Close is idempotent; later calls return
	// nil.
	Close(err error) error
}

// Request is one request received by a [Server].
type Request struct {
	// Service is the address the request arrived on.
	Service string
	// Body is the request body sent by the client.
	Body []byte
	// RemoteAddr is the client's address as the multiplexer reports it.
	RemoteAddr net.Addr

	sc *serverConn
}

// Recv returns the next message the client sent with [Response.Send] on
// this request. It waits until one arrives or ctx ends, and returns
// [ErrClosed] once the client has closed or the request has ended.
func (r *Request) Recv(ctx context.Context) ([]byte, error) {
	return r.sc.recv(ctx)
}

// Server serves requests arriving through a [Multiplexer]. Its methods are
// safe for concurrent use.
type Server struct {
	cfg   config
	mpx   Multiplexer
	codec *codec.LZ4
	pools bufPools

	base       context.Context
	cancelBase context.CancelCauseFunc

	mu        sync.Mutex
	closing   bool
	listeners map[net.Listener]struct{}
	conns     map[*serverConn]struct{}
	wg        sync.WaitGroup // serve loops and connections
}

// NewServer returns a server that binds through mpx. mpx may be nil if
// only [Server.Serve] is used. It returns [ErrInvalidOption] for an option
// out of range.
func NewServer(mpx Multiplexer, opts ...Option) (*Server, error) {
	cfg := defaultConfig()
	if err := cfg.apply(opts); err != nil {
		return nil, err
	}
	c, err := codec.NewLZ4(&codec.Options{MaxSize: cfg.maxFrame})
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalidOption, err)
	}
	s := &Server{
		cfg:       cfg,
		mpx:       mpx,
		codec:     c,
		listeners: make(map[net.Listener]struct{}),
		conns:     make(map[*serverConn]struct{}),
	}
	s.base, s.cancelBase = context.WithCancelCause(context.Background())
	return s, nil
}

// Handle binds service on the multiplexer and serves it with h in the
// background until [Server.Shutdown] or [Server.Close]. The service is
// reachable when Handle returns.
func (s *Server) Handle(service string, h Handler) error {
	if s.mpx == nil {
		return fmt.Errorf("%w: no multiplexer", ErrInvalidOption)
	}
	if h == nil {
		return fmt.Errorf("%w: nil handler", ErrInvalidOption)
	}
	l, err := s.mpx.Bind("", service)
	if err != nil {
		return fmt.Errorf("chanserv: bind %q: %w", service, err)
	}
	if !s.track(l) {
		l.Close()
		return ErrServerClosed
	}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		if err := s.serve(l, service, h); !errors.Is(err, ErrServerClosed) {
			s.cfg.logger.Error("chanserv: serve stopped", "service", service, "err", err)
		}
	}()
	return nil
}

// Serve accepts streams on l and serves them with h. It blocks until l
// fails or the server is shut down, and then returns [ErrServerClosed]
// (after Shutdown or Close) or the accept error. l is closed on return.
func (s *Server) Serve(l net.Listener, h Handler) error {
	if h == nil {
		return fmt.Errorf("%w: nil handler", ErrInvalidOption)
	}
	if !s.track(l) {
		l.Close()
		return ErrServerClosed
	}
	s.wg.Add(1)
	defer s.wg.Done()
	return s.serve(l, l.Addr().String(), h)
}

func (s *Server) track(l net.Listener) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closing {
		return false
	}
	s.listeners[l] = struct{}{}
	return true
}

func (s *Server) serve(l net.Listener, service string, h Handler) error {
	defer func() {
		s.mu.Lock()
		delete(s.listeners, l)
		s.mu.Unlock()
		l.Close()
	}()
	var delay time.Duration
	for {
		c, err := l.Accept()
		if err != nil {
			s.mu.Lock()
			closing := s.closing
			s.mu.Unlock()
			if closing {
				return ErrServerClosed
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				delay = min(max(2*delay, 5*time.Millisecond), time.Second)
				s.cfg.logger.Warn("chanserv: accept", "service", service, "err", err, "retry", delay)
				t := time.NewTimer(delay)
				select {
				case <-t.C:
				case <-s.base.Done():
					t.Stop()
				}
				continue
			}
			return err
		}
		delay = 0
		sc := &serverConn{s: s, conn: c, service: service}
		s.mu.Lock()
		if s.closing && s.base.Err() != nil {
			s.mu.Unlock()
			c.Close()
			return ErrServerClosed
		}
		s.conns[sc] = struct{}{}
		s.wg.Add(1)
		s.mu.Unlock()
		go func() {
			defer s.wg.Done()
			sc.serve(h)
			s.mu.Lock()
			delete(s.conns, sc)
			s.mu.Unlock()
		}()
	}
}

// Shutdown stops accepting requests and waits for in-flight ones to
// finish. If ctx ends first, it cancels the remaining requests, which end
// with [StatusShuttingDown], waits for their handlers to return, and
// returns ctx's error. Later calls to Handle and Serve return
// [ErrServerClosed].
func (s *Server) Shutdown(ctx context.Context) error {
	s.stopListening()
	done := make(chan struct{})
	go func() {
		s.wg.Wait()
		close(done)
	}()
	select {
	case <-done:
		s.cancelBase(ErrServerClosed)
		return nil
	case <-ctx.Done():
	}
	s.cancelBase(ErrShuttingDown)
	<-done
	return ctx.Err()
}

// Close stops the server at once: listeners and streams are closed and
// handlers cancelled. It waits for the handlers to return.
func (s *Server) Close() error {
	s.stopListening()
	s.cancelBase(ErrServerClosed)
	s.mu.Lock()
	for sc := range s.conns {
		sc.conn.Close()
	}
	s.mu.Unlock()
	s.wg.Wait()
	return nil
}

func (s *Server) stopListening() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closing = true
	for l := range s.listeners {
		l.Close()
	}
}

// errClientClosed is the cause of a request's cancellation when the
// client closes its stream.
var errClientClosed = fmt.Errorf("%w: client closed the request", ErrClosed)

// serverConn is one request on one stream.
type serverConn struct {
	s       *Server
	conn    net.Conn
	service string
	w       frameWriter
	rd      wire.Reader
	params  wire.RequestParams
	req     Request
	ctx     context.Context
	cancel  context.CancelCauseFunc
	reader  sync.WaitGroup // the goroutine reading the client's frames
	flusher sync.WaitGroup // the goroutine flushing w, once started

	mu         sync.Mutex
	done       bool // the handler returned
	slots      uint64
	slotWake   chan struct{} // made by the first NewSource that waits
	nextID     uint32
	sources    idMap[*sourceWriter]
	msgs       [][]byte
	msgUnacked int           // message bytes received and not yet credited back
	msgRead    int           // message bytes read by the handler, not yet credited
	msgWake    chan struct{} // made by the first Recv that waits
	readDone   bool
}

func (sc *serverConn) serve(h Handler) {
	s := sc.s
	br := s.pools.reader(sc.conn)
	sc.w.bw = s.pools.writer(sc.conn)
	sc.rd.Reset(br, s.cfg.maxFrame)
	defer sc.conn.Close()

	req, err := sc.handshake()
	if err != nil {
		s.cfg.logger.Debug("chanserv: handshake", "service", sc.service, "err", err)
		if errors.Is(err, wire.ErrTooLarge) {
			msg := fmt.Sprintf("%v: %v", ErrFrameTooLarge, err)
			sc.w.writeStatus(true, wire.KindEnd, 0, &RemoteError{Status: StatusProtocol, Message: msg})
		}
		sc.conn.Close()
		s.pools.put(br, sc.w.detach())
		return
	}
	ctx, cancel := context.WithCancelCause(s.base)
	if sc.params.TimeoutUS > 0 {
		var c2 context.CancelFunc
		ctx, c2 = context.WithTimeout(ctx, time.Duration(sc.params.TimeoutUS)*time.Microsecond)
		defer c2()
	}
	sc.ctx, sc.cancel = ctx, cancel
	sc.slots = sc.params.Sources

	sc.w.later = sc
	werr := sc.w.writeUvarint(true, wire.KindMsgCredit, 0, uint64(s.cfg.msgWindow))
	sc.reader.Add(1)
	go sc.readLoop()

	if werr == nil {
		err = sc.runHandler(ctx, h, req)
	} else {
		err = werr
	}

	sc.mu.Lock()
	sc.done = true
	var buf [8]*sourceWriter
	open := sc.sources.values(buf[:0])
	sc.mu.Unlock()
	cause := context.Cause(ctx)
	shutdown := errors.Is(cause, ErrShuttingDown)
	if shutdown && err != nil {
		err = fmt.Errorf("%w: %v", ErrShuttingDown, err)
	}
	if errors.Is(cause, ErrProtocol) {
		err = &RemoteError{Status: StatusProtocol, Message: cause.Error()}
	}
	if len(open) > 0 {
		abort := ErrShuttingDown
		if !shutdown {
			abort = fmt.Errorf("%w: handler returned before closing the source", ErrAborted)
		}
		for _, sw := range open {
			sw.Close(abort)
		}
	}
	sc.w.writeStatus(false, wire.KindEnd, 0, err)
	sc.w.flush()
	cancel(ErrClosed)
	sc.conn.Close()
	sc.reader.Wait()
	bw := sc.w.detach()
	sc.flusher.Wait()
	s.pools.put(br, bw)
}

// flushLoop flushes the frames buffered by sc's writers each time it is
// woken, until wake is closed; see frameWriter.
func (sc *serverConn) flushLoop(wake <-chan struct{}) {
	defer sc.flusher.Done()
	for range wake {
		sc.flushLater()
	}
}

// flushLater flushes the frames buffered by sc's writers. A failed write
// ends the request.
func (sc *serverConn) flushLater() {
	w := &sc.w
	w.mu.Lock()
	w.flushing = false
	var err error
	if w.err == nil && w.bw.Buffered() > 0 {
		w.err = w.bw.Flush()
		err = w.err
	}
	w.mu.Unlock()
	if err != nil {
		sc.cancel(fmt.Errorf("%w: write: %v", ErrClosed, err))
	}
}

// runHandler calls h, turning a panic into an error.
func (sc *serverConn) runHandler(ctx context.Context, h Handler, req *Request) (err error) {
	defer func() {
		if p := recover(); p != nil {
			sc.s.cfg.logger.Error("chanserv: handler panic", "service", sc.service, "panic", p)
			err = fmt.Errorf("handler panic: %v", p)
		}
	}()
	return h.ServeChan(ctx, req, sc)
}

func (sc *serverConn) handshake() (*Request, error) {
	sc.conn.SetReadDeadline(time.Now().Add(sc.s.cfg.handshakeTimeout))
	if err := sc.rd.ReadPreamble(); err != nil {
		return nil, err
	}
	h, err := sc.rd.ReadHeader()
	if err != nil {
		return nil, err
	}
	if h.Kind != wire.KindRequest || h.ID != 0 {
		return nil, fmt.Errorf("%w: first frame kind %#x", ErrProtocol, h.Kind)
	}
	p, err := sc.rd.ReadPayload(h.Len)
	if err != nil {
		return nil, err
	}
	params, body, err := wire.ParseRequest(p)
	if err != nil {
		return nil, err
	}
	if params.Window == 0 || params.Sources == 0 || params.MaxFrame == 0 ||
		params.Window > 1<<40 || params.Sources > 1<<32 || params.MaxFrame > 1<<31 {
		return nil, fmt.Errorf("%w: request parameters %+v", ErrProtocol, params)
	}
	sc.params = params
	sc.conn.SetReadDeadline(time.Time{})
	sc.req = Request{Service: sc.service, Body: body, RemoteAddr: sc.conn.RemoteAddr(), sc: sc}
	return &sc.req, nil
}

// readLoop reads the client's frames until the stream ends.
func (sc *serverConn) readLoop() {
	defer sc.reader.Done()
	err := sc.readFrames()
	sc.mu.Lock()
	sc.readDone = true
	msgWake := sc.msgWake
	sc.mu.Unlock()
	if msgWake != nil {
		signal(msgWake)
	}
	if !errors.Is(err, io.EOF) && !errors.Is(err, net.ErrClosed) {
		sc.s.cfg.logger.Debug("chanserv: read", "service", sc.service, "err", err)
	}
	if errors.Is(err, ErrProtocol) {
		sc.cancel(err)
		return
	}
	sc.cancel(errClientClosed)
}

func (sc *serverConn) readFrames() error {
	for {
		h, err := sc.rd.ReadHeader()
		if err != nil {
			if errors.Is(err, wire.ErrTooLarge) || errors.Is(err, wire.ErrMalformed) {
				return fmt.Errorf("%w: %v", ErrProtocol, err)
			}
			return err
		}
		if h.Kind == wire.KindMessage {
			if err := sc.onMessage(h.Len); err != nil {
				return err
			}
			continue
		}
		if h.Len > 16 {
			return fmt.Errorf("%w: control frame %#x of %d bytes", ErrProtocol, h.Kind, h.Len)
		}
		p, err := sc.rd.ReadTemp(h.Len)
		if err != nil {
			return err
		}
		switch h.Kind {
		case wire.KindCredit, wire.KindSourceSlots:
			n, _, err := wire.Uvarint(p)
			if err != nil {
				return fmt.Errorf("%w: %v", ErrProtocol, err)
			}
			if h.Kind == wire.KindCredit {
				err = sc.onCredit(h.ID, n)
			} else {
				err = sc.onSlots(n)
			}
			if err != nil {
				return err
			}
		case wire.KindCloseSource:
			sc.mu.Lock()
			sw, _ := sc.sources.get(h.ID)
			sc.mu.Unlock()
			if sw != nil {
				sw.mu.Lock()
				sw.peerClosed = true
				sw.mu.Unlock()
				signal(sw.wake)
			}
		default:
			return fmt.Errorf("%w: unexpected frame kind %#x from client", ErrProtocol, h.Kind)
		}
	}
}

func (sc *serverConn) onMessage(n int) error {
	sc.mu.Lock()
	over := sc.msgUnacked >= sc.s.cfg.msgWindow
	sc.mu.Unlock()
	if over {
		return fmt.Errorf("%w: message beyond credit", ErrProtocol)
	}
	p, err := sc.rd.ReadPayload(n)
	if err != nil {
		return err
	}
	if p == nil {
		p = []byte{}
	}
	sc.mu.Lock()
	sc.msgUnacked += n
	sc.msgs = append(sc.msgs, p)
	msgWake := sc.msgWake
	sc.mu.Unlock()
	if msgWake != nil {
		signal(msgWake)
	}
	return nil
}

func (sc *serverConn) onCredit(id uint32, n uint64) error {
	sc.mu.Lock()
	sw, _ := sc.sources.get(id)
	sc.mu.Unlock()
	if sw == nil {
		return nil // already closed: late credit
	}
	sw.mu.Lock()
	if n > uint64(sw.outstanding) {
		sw.mu.Unlock()
		return fmt.Errorf("%w: credit %d for %d outstanding bytes", ErrProtocol, n, sw.outstanding)
	}
	sw.outstanding -= int64(n)
	sw.mu.Unlock()
	signal(sw.wake)
	return nil
}

func (sc *serverConn) onSlots(n uint64) error {
	sc.mu.Lock()
	defer sc.mu.Unlock()
	if sc.slots+n > sc.params.Sources {
		return fmt.Errorf("%w: %d source slots returned beyond %d", ErrProtocol, n, sc.params.Sources)
	}
	sc.slots += n
	if sc.slotWake != nil {
		signal(sc.slotWake)
	}
	return nil
}

func (sc *serverConn) recv(ctx context.Context) ([]byte, error) {
	for {
		sc.mu.Lock()
		if len(sc.msgs) > 0 {
			p := sc.msgs[0]
			sc.msgs[0] = nil
			sc.msgs = sc.msgs[1:]
			sc.msgRead += len(p)
			// Credit goes back in batches of half the window, not per
			// message: in request/response use a credit frame per call
			// would double the frames. The client may send while its
			// credit is positive; once the handler has read everything,
			// that credit is window - msgRead, positive since msgRead
			// stays below window/2: the batching never stalls it.
			var credit int
			if sc.msgRead > 0 && sc.msgRead >= sc.s.cfg.msgWindow/2 {
				credit = sc.msgRead
				sc.msgRead = 0
				sc.msgUnacked -= credit
			}
			done := sc.done
			sc.mu.Unlock()
			if credit > 0 && !done {
				sc.w.writeUvarint(false, wire.KindMsgCredit, 0, uint64(credit))
			}
			return p, nil
		}
		if sc.readDone || sc.done {
			sc.mu.Unlock()
			return nil, ErrClosed
		}
		if sc.msgWake == nil {
			sc.msgWake = make(chan struct{}, 1)
		}
		wake := sc.msgWake
		sc.mu.Unlock()
		select {
		case <-wake:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

// NewSource implements [ResponseWriter].
func (sc *serverConn) NewSource(ctx context.Context, header []byte) (SourceWriter, error) {
	var sw *sourceWriter
	for sw == nil {
		sc.mu.Lock()
		if sc.done {
			sc.mu.Unlock()
			return nil, ErrClosed
		}
		if sc.slots > 0 {
			sc.slots--
			if sc.slots > 0 && sc.slotWake != nil {
				signal(sc.slotWake)
			}
			sc.nextID++
			sw = &sourceWriter{sc: sc, id: sc.nextID, wake: make(chan struct{}, 1)}
			sc.sources.set(sw.id, sw)
			sc.mu.Unlock()
			break
		}
		if sc.slotWake == nil {
			sc.slotWake = make(chan struct{}, 1)
		}
		wake := sc.slotWake
		sc.mu.Unlock()
		select {
		case <-wake:
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-sc.ctx.Done():
			return nil, sc.ctx.Err()
		}
	}
	if err := sc.w.write(wire.KindSource, sw.id, header); err != nil {
		sc.forget(sw.id)
		sc.cancel(fmt.Errorf("%w: write: %v", ErrClosed, err))
		return nil, sc.ctx.Err()
	}
	return sw, nil
}

func (sc *serverConn) forget(id uint32) {
	sc.mu.Lock()
	sc.sources.del(id)
	sc.mu.Unlock()
}

// sourceWriter implements [SourceWriter].
type sourceWriter struct {
	sc   *serverConn
	id   uint32
	wake chan struct{}
	wmu  sync.Mutex // serialises the frames of this source with its end

	mu          sync.Mutex
	outstanding int64 // bytes sent and not yet credited
	peerClosed  bool
	closed      bool
}

func (sw *sourceWriter) WriteFrame(ctx context.Context, p []byte) error {
	sc := sw.sc
	if uint64(len(p)) > sc.params.MaxFrame {
		return fmt.Errorf("%w: %d bytes, client limit %d", ErrFrameTooLarge, len(p), sc.params.MaxFrame)
	}
	kind := wire.KindData
	payload := p
	if sc.s.cfg.compress && sc.params.Flags&wire.FlagCodec != 0 && len(p) > 64 {
		if b, out, err := sc.s.codec.Encode(nil, p); err == nil && out.Compressed() {
			kind, payload = wire.KindDataCodec, b
		}
	}
	sw.wmu.Lock()
	defer sw.wmu.Unlock()
	for {
		sw.mu.Lock()
		if sw.closed || sw.peerClosed {
			sw.mu.Unlock()
			return ErrSourceClosed
		}
		if sw.outstanding < int64(sc.params.Window) {
			sw.outstanding += int64(len(payload))
			sw.mu.Unlock()
			break
		}
		sw.mu.Unlock()
		select {
		case <-sw.wake:
		case <-ctx.Done():
			return ctx.Err()
		case <-sc.ctx.Done():
			return sc.ctx.Err()
		}
	}
	if err := sc.w.write(kind, sw.id, payload); err != nil {
		// The stream is broken: the request is over.
		sc.cancel(fmt.Errorf("%w: write: %v", ErrClosed, err))
		return sc.ctx.Err()
	}
	return nil
}

func (sw *sourceWriter) Close(err error) error {
	sw.mu.Lock()
	if sw.closed {
		sw.mu.Unlock()
		return nil
	}
	sw.closed = true
	sw.mu.Unlock()
	signal(sw.wake)
	sw.wmu.Lock()
	defer sw.wmu.Unlock()
	sw.sc.forget(sw.id)
	if werr := sw.sc.w.writeStatus(false, wire.KindEndSource, sw.id, err); werr != nil {
		return fmt.Errorf("chanserv: end source: %w", werr)
	}
	return nil
}
