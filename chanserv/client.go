package chanserv

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"iter"
	"net"
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/beanspike/beanspike/chanserv/internal/wire"
	"github.com/beanspike/beanspike/codec"
)

// Client posts requests through a [Multiplexer]. Its methods are safe for
// concurrent use.
type Client struct {
	cfg   config
	mpx   Multiplexer
	dec   codec.Codec // for cfg.maxFrame
	pools bufPools

	mu     sync.Mutex
	closed bool
	calls  map[*call]struct{}
}

// NewClient returns a client that dials through mpx. It returns
// [ErrInvalidOption] if mpx is nil or an option is out of range.
func NewClient(mpx Multiplexer, opts ...Option) (*Client, error) {
	if mpx == nil {
		return nil, fmt.Errorf("%w: nil multiplexer", ErrInvalidOption)
	}
	cfg := defaultConfig()
	if err := cfg.apply(opts); err != nil {
		return nil, err
	}
	dec, err := codec.NewRaw(&codec.Options{MaxSize: cfg.maxFrame})
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalidOption, err)
	}
	return &Client{cfg: cfg, mpx: mpx, dec: dec, calls: make(map[*call]struct{})}, nil
}

// Close aborts every open response, as [Response.Close] does, and makes
// later Posts fail with [ErrClosed].
func (c *Client) Close() error {
	c.mu.Lock()
	c.closed = true
	calls := make([]*call, 0, len(c.calls))
	for cl := range c.calls {
		calls = append(calls, cl)
	}
	c.mu.Unlock()
	for _, cl := range calls {
		cl.abort(ErrClosed)
	}
	return nil
}

// Post sends body to service and returns the response, whose sources
// arrive as the server announces them. opts override the client's options
// for this request.
//
// ctx governs the whole request, not only Post: when it ends, the request
// is cancelled on the server and the response and its sources fail with
// ctx's error, returned unwrapped, whatever the server reports after.
// Its deadline is sent to the server. Post returns an error if the dial
// or the write of the request fails; server-side failures arrive through
// the response. The dial timeout ([WithDialTimeout]) bounds the dial
// and, on a multiplexer that is not a [ContextDialer], the write of the
// request's first bytes, by which a multiplexer that dials lazily, as
// AstraNet does, connects.
//
// No call waits on the multiplexer beyond its context: the request is
// written, and later frames (messages, credit) are sent, by goroutines
// of the response's own, so that a multiplexer whose writes ignore
// deadlines or whose Close does not unblock a Read delays them but not
// the caller.
//
// The caller must read the response to the end or close it; a response
// that becomes unreachable is closed when the garbage collector finds it.
func (c *Client) Post(ctx context.Context, service string, body []byte, opts ...Option) (*Response, error) {
	cl := &call{c: c, cfg: c.cfg, dec: c.dec}
	cfg := &cl.cfg
	if len(opts) > 0 {
		if err := cfg.apply(opts); err != nil {
			return nil, err
		}
		if cfg.maxFrame != c.cfg.maxFrame {
			dec, err := codec.NewRaw(&codec.Options{MaxSize: cfg.maxFrame})
			if err != nil {
				return nil, fmt.Errorf("%w: %v", ErrInvalidOption, err)
			}
			cl.dec = dec
		}
	}
	c.mu.Lock()
	closed := c.closed
	c.mu.Unlock()
	if closed {
		return nil, ErrClosed
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	conn, err := c.dial(ctx, cfg, service)
	if err != nil {
		return nil, err
	}
	cl.conn = conn
	cl.wake = make(chan struct{}, 1)
	cl.done = make(chan struct{})
	cl.written = make(chan error, 2)
	cl.queue = cl.queueBuf[:0]
	cl.br = c.pools.reader(conn)
	cl.ob.conn = conn
	// The reader's limit must admit an encoded frame of the largest size.
	cl.rd.Reset(cl.br, codec.MaxEncodedLen(cfg.maxFrame))

	params := wire.RequestParams{
		Window:   uint64(cfg.window),
		Sources:  uint64(cfg.maxSources),
		MaxFrame: uint64(cfg.maxFrame),
		Flags:    wire.FlagCodec,
	}
	if d, ok := ctx.Deadline(); ok {
		params.TimeoutUS = uint64(max(time.Until(d), time.Microsecond) / time.Microsecond)
	}
	var req []byte
	if len(body) <= smallRequest {
		req = make([]byte, 0, requestHead+len(body))
	} else {
		req = make([]byte, 0, requestHead)
	}
	req = wire.AppendPreamble(req)
	req = wire.AppendRequest(wire.AppendHeader(req, wire.KindRequest, 0, len(wire.AppendRequest(cl.scratch[:0], params, nil))+len(body)), params, nil)
	if len(body) <= smallRequest {
		req, body = append(req, body...), nil
	}
	if len(body) == 0 {
		body = nil
	}

	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		conn.Close()
		c.pools.put(cl.br, nil)
		return nil, ErrClosed
	}
	c.calls[cl] = struct{}{}
	c.mu.Unlock()
	if ctx.Done() != nil {
		cl.stop = context.AfterFunc(ctx, func() { cl.abort(ctx.Err()) })
	}
	// The reader writes the request, then reads the response. Post
	// waits for the write only as long as ctx allows, since a
	// multiplexer may block a first write whatever its deadlines say;
	// and for the first write, by which a multiplexer that dials lazily
	// connects, at most the dial timeout.
	go cl.readLoop(req, body)
	var expired <-chan time.Time
	if _, ok := c.mpx.(ContextDialer); !ok {
		// A multiplexer with a context-aware dial is trusted to have
		// connected by the time it returns; one without may not have.
		t := time.NewTimer(cfg.dialTimeout)
		defer t.Stop()
		expired = t.C
	}
	select {
	case err = <-cl.written:
	case <-expired:
		err = fmt.Errorf("%w: no answer within the dial timeout (%v)", os.ErrDeadlineExceeded, cfg.dialTimeout)
		cl.abort(err)
		return nil, fmt.Errorf("chanserv: dial %q: %w", service, err)
	case <-ctx.Done():
		cl.abort(ctx.Err())
		return nil, ctx.Err()
	}
	if err == nil && body != nil {
		select {
		case err = <-cl.written:
		case <-ctx.Done():
			cl.abort(ctx.Err())
			return nil, ctx.Err()
		}
	}
	if err != nil {
		<-cl.done
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, fmt.Errorf("chanserv: send request: %w", err)
	}

	r := &Response{c: cl}
	runtime.AddCleanup(r, func(cl *call) { cl.abort(ErrClosed) }, cl)
	return r, nil
}

// A request's preamble, header and parameters take at most requestHead
// bytes; a body of at most smallRequest bytes is written with them.
const (
	requestHead  = wire.PreambleSize + wire.MaxHeaderSize + 5*binary.MaxVarintLen64
	smallRequest = 16 << 10
)

func (c *Client) dial(ctx context.Context, cfg *config, service string) (net.Conn, error) {
	var (
		conn net.Conn
		err  error
	)
	if cd, ok := c.mpx.(ContextDialer); ok && ctx.Done() != nil {
		dctx, cancel := context.WithTimeout(ctx, cfg.dialTimeout)
		conn, err = cd.DialContext(dctx, cfg.network, service)
		cancel()
	} else {
		t := cfg.dialTimeout
		if d, ok := ctx.Deadline(); ok {
			t = min(t, max(time.Until(d), time.Millisecond))
		}
		conn, err = c.dialTimeout(ctx, cfg.network, service, t)
	}
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, fmt.Errorf("chanserv: dial %q: %w", service, err)
	}
	return conn, nil
}

// dialTimeout calls the multiplexer's DialTimeout, which knows no
// context, from a goroutine of its own if ctx can end, so that the dial
// ends with ctx: a connection that arrives after is closed.
func (c *Client) dialTimeout(ctx context.Context, network, service string, t time.Duration) (net.Conn, error) {
	if ctx.Done() == nil {
		return c.mpx.DialTimeout(network, service, t)
	}
	type dialed struct {
		conn net.Conn
		err  error
	}
	ch := make(chan dialed, 1)
	go func() {
		conn, err := c.mpx.DialTimeout(network, service, t)
		ch <- dialed{conn, err}
	}()
	select {
	case d := <-ch:
		return d.conn, d.err
	case <-ctx.Done():
		go func() {
			if d := <-ch; d.conn != nil {
				d.conn.Close()
			}
		}()
		return nil, ctx.Err()
	}
}

// Response is the answer to one [Client.Post]: a sequence of sources
// announced by the server, then an end status. Its methods are safe for
// concurrent use.
type Response struct {
	c *call
}

// Next returns the next source. It waits until the server announces one
// or ends the response, or until ctx ends. At the end it returns io.EOF if
// the server's handler succeeded, a [*RemoteError] if it failed,
// [ErrTruncated] if the stream broke, or the request context's error if
// the request was cancelled.
func (r *Response) Next(ctx context.Context) (*RemoteSource, error) {
	s, err := r.c.next(ctx)
	if err != nil {
		return nil, err
	}
	rs := &RemoteSource{s: s, resp: r}
	runtime.AddCleanup(rs, func(s *source) { s.close() }, s)
	return rs, nil
}

// Sources iterates over the sources until the end of the response. A
// final non-nil error is yielded with a nil source, as Next would return
// it; io.EOF is not yielded.
func (r *Response) Sources(ctx context.Context) iter.Seq2[*RemoteSource, error] {
	return func(yield func(*RemoteSource, error) bool) {
		for {
			s, err := r.Next(ctx)
			if errors.Is(err, io.EOF) {
				return
			}
			if !yield(s, err) || err != nil {
				return
			}
		}
	}
}

// Send sends msg to the server's handler, which reads it with
// [Request.Recv]. Messages arrive in order. Send waits while the handler
// is a message window behind (see [WithMessageWindow]) or until ctx ends.
// It returns [ErrClosed] once the response has ended or been closed. A
// message longer than the server's [WithMaxFrameSize] makes the server
// fail the request.
func (r *Response) Send(ctx context.Context, msg []byte) error {
	return r.c.send(ctx, msg)
}

// Close abandons the response: the request is cancelled on the server,
// and the response's sources fail with [ErrClosed], except data already
// received after a normal end. Close closes the stream and returns
// without waiting for anything the multiplexer might block on; the
// response's resources are released when the stream's reader ends. It
// is idempotent.
func (r *Response) Close() error {
	r.c.abort(ErrClosed)
	return nil
}

// RemoteSource is one source of a [Response]: a header and a sequence of
// frames, then an end status. Its methods are safe for concurrent use.
type RemoteSource struct {
	s    *source
	resp *Response // keeps the response alive while the source is
}

// ID returns the source's number, unique within the response.
func (rs *RemoteSource) ID() uint32 { return rs.s.id }

// Header returns the header the server announced the source with.
func (rs *RemoteSource) Header() []byte { return rs.s.header }

// Next returns the next frame. It waits until one arrives, the source
// ends, or ctx ends. At the end it returns io.EOF if the source ended
// successfully, a [*RemoteError] if the producer failed, [ErrTruncated] if
// the stream broke, or the request context's error if the request was
// cancelled. The caller owns the returned slice.
func (rs *RemoteSource) Next(ctx context.Context) ([]byte, error) {
	return rs.s.next(ctx)
}

// Frames iterates over the frames until the end of the source. A final
// non-nil error is yielded with a nil frame; io.EOF is not yielded.
func (rs *RemoteSource) Frames(ctx context.Context) iter.Seq2[[]byte, error] {
	return func(yield func([]byte, error) bool) {
		for {
			p, err := rs.Next(ctx)
			if errors.Is(err, io.EOF) {
				return
			}
			if !yield(p, err) || err != nil {
				return
			}
		}
	}
}

// Close abandons the source: its buffered frames are dropped, the server's
// producer gets [ErrSourceClosed], and the other sources go on. It is
// idempotent, and a no-op after the source was read to its end.
func (rs *RemoteSource) Close() error {
	rs.s.close()
	return nil
}

// Frames of at most slabFrame bytes are read into shared slabs of
// slabSize bytes. A frame the consumer keeps pins its slab.
const (
	slabFrame = 128
	slabSize  = 4096
)

// call is the client side of one request.
type call struct {
	c    *Client
	conn net.Conn
	cfg  config
	dec  codec.Codec
	br   *bufio.Reader
	rd   wire.Reader
	ob   outbox
	stop func() bool // nil if the request's context cannot end

	written chan error // the request's write error, sent by the reader
	scratch [64]byte   // for the request parameters
	slab    []byte     // owned by the reader goroutine

	aborted atomic.Bool // abortErr is set

	mu        sync.Mutex
	sources   idMap[*source] // announced, not yet finished by the consumer
	queue     []*source      // announced, not yet returned by Next
	queueBuf  [2]*source     // queue's first backing array
	ended     bool
	endErr    error // nil after a successful END
	abortErr  error // why the call was aborted locally
	msgCredit int64
	wake      chan struct{}
	sendWake  chan struct{} // made by the first Send that waits
	done      chan struct{} // closed when the reader has ended and released everything
}

// abort ends the call locally with err: the stream is closed, and
// everything waiting on the call returns err at once, without waiting for
// the reader, which a multiplexer may keep blocked after Close.
func (cl *call) abort(err error) {
	cl.mu.Lock()
	if cl.ended || cl.abortErr != nil {
		cl.mu.Unlock()
		return
	}
	cl.abortErr = err
	cl.aborted.Store(true)
	var buf [8]*source
	srcs := cl.sources.values(buf[:0])
	sendWake := cl.sendWake
	cl.mu.Unlock()
	cl.conn.Close()
	cl.ob.close()
	for _, s := range srcs {
		signal(s.wake)
	}
	signal(cl.wake)
	if sendWake != nil {
		signal(sendWake)
	}
}

// readLoop writes the request, reporting the outcome on cl.written
// after req and again after body if there is one, then reads the
// response.
func (cl *call) readLoop(req, body []byte) {
	_, err := cl.conn.Write(req)
	cl.written <- err
	if err == nil && body != nil {
		_, err = cl.conn.Write(body)
		cl.written <- err
	}
	if err == nil {
		cl.ob.ready()
		err = cl.readFrames()
	}
	cl.ob.close()
	cl.conn.Close()
	if cl.stop != nil {
		cl.stop()
	}
	cl.mu.Lock()
	if !cl.ended {
		cl.ended = true
		switch {
		case cl.abortErr != nil:
			err = cl.abortErr
		case errors.Is(err, ErrProtocol):
		default:
			err = fmt.Errorf("%w: %v", ErrTruncated, err)
		}
		cl.endErr = err
	}
	var buf [8]*source
	for _, s := range cl.sources.values(buf[:0]) {
		if cl.abortErr != nil {
			s.abort(cl.abortErr)
		} else {
			s.fail(cl.endErr, ErrTruncated)
		}
	}
	sendWake := cl.sendWake
	cl.mu.Unlock()
	if sendWake != nil {
		signal(sendWake)
	}
	c := cl.c
	c.mu.Lock()
	delete(c.calls, cl)
	c.mu.Unlock()
	c.pools.put(cl.br, nil)
	close(cl.done)
}

// readFrames reads until END (nil) or an error.
func (cl *call) readFrames() error {
	if err := cl.rd.ReadPreamble(); err != nil {
		if errors.Is(err, wire.ErrMalformed) {
			return fmt.Errorf("%w: %v", ErrProtocol, err)
		}
		return err
	}
	for {
		h, err := cl.rd.ReadHeader()
		if err != nil {
			if errors.Is(err, wire.ErrTooLarge) || errors.Is(err, wire.ErrMalformed) {
				return fmt.Errorf("%w: %v", ErrProtocol, err)
			}
			return err
		}
		switch h.Kind {
		case wire.KindData, wire.KindDataCodec:
			if err := cl.onData(h); err != nil {
				return err
			}
			continue
		case wire.KindSource:
			if h.Len > cl.cfg.maxFrame {
				return fmt.Errorf("%w: source header of %d bytes", ErrProtocol, h.Len)
			}
		default:
			if h.Len > 64<<10 {
				return fmt.Errorf("%w: control frame %#x of %d bytes", ErrProtocol, h.Kind, h.Len)
			}
		}
		var p []byte
		if h.Kind == wire.KindSource {
			p, err = cl.rd.ReadPayload(h.Len) // the header is the consumer's
		} else {
			p, err = cl.rd.ReadTemp(h.Len)
		}
		if err != nil {
			return err
		}
		switch h.Kind {
		case wire.KindSource:
			cl.mu.Lock()
			if _, dup := cl.sources.get(h.ID); dup || cl.sources.len() >= cl.cfg.maxSources {
				cl.mu.Unlock()
				return fmt.Errorf("%w: source %d beyond %d open or duplicate", ErrProtocol, h.ID, cl.cfg.maxSources)
			}
			s := &source{call: cl, id: h.ID, header: p, wake: make(chan struct{}, 1)}
			s.frames = s.framesBuf[:0]
			cl.sources.set(h.ID, s)
			cl.queue = append(cl.queue, s)
			cl.mu.Unlock()
			signal(cl.wake)
		case wire.KindEndSource:
			serr := errOfStatus(p)
			if errors.Is(serr, ErrProtocol) {
				return serr
			}
			cl.mu.Lock()
			s, _ := cl.sources.get(h.ID)
			cl.mu.Unlock()
			if s != nil && !s.end(serr) {
				return fmt.Errorf("%w: source %d ended twice", ErrProtocol, h.ID)
			}
		case wire.KindEnd:
			eerr := errOfStatus(p)
			if errors.Is(eerr, ErrProtocol) {
				return eerr
			}
			cl.mu.Lock()
			cl.ended = true
			cl.endErr = eerr
			if cl.abortErr != nil {
				// The call was cancelled first: that is its outcome.
				cl.endErr = cl.abortErr
			}
			cl.mu.Unlock()
			return nil
		case wire.KindMsgCredit:
			n, _, err := wire.Uvarint(p)
			if err != nil || n > 1<<40 {
				return fmt.Errorf("%w: bad message credit", ErrProtocol)
			}
			cl.mu.Lock()
			cl.msgCredit += int64(n)
			sendWake := cl.sendWake
			cl.mu.Unlock()
			if sendWake != nil {
				signal(sendWake)
			}
		default:
			return fmt.Errorf("%w: unexpected frame kind %#x from server", ErrProtocol, h.Kind)
		}
	}
}

func (cl *call) onData(h wire.Header) error {
	cl.mu.Lock()
	s, _ := cl.sources.get(h.ID)
	cl.mu.Unlock()
	if s == nil {
		// A source the consumer closed: its frames in flight are dropped.
		return cl.rd.Discard(h.Len)
	}
	s.mu.Lock()
	over, ended := s.uncredited >= int64(cl.cfg.window), s.ended
	s.mu.Unlock()
	if over {
		return fmt.Errorf("%w: source %d: data beyond credit", ErrProtocol, h.ID)
	}
	if ended {
		return fmt.Errorf("%w: source %d: data after its end", ErrProtocol, h.ID)
	}
	if h.Kind == wire.KindData && h.Len > cl.cfg.maxFrame {
		return fmt.Errorf("%w: %w: %d bytes", ErrProtocol, ErrFrameTooLarge, h.Len)
	}
	var p []byte
	var err error
	if h.Len <= slabFrame && h.Len > 0 {
		// Small frames share slabs: one allocation per slab, not per frame.
		if cap(cl.slab)-len(cl.slab) < h.Len {
			cl.slab = make([]byte, 0, slabSize)
		}
		n := len(cl.slab)
		cl.slab = cl.slab[:n+h.Len]
		p = cl.slab[n : n+h.Len : n+h.Len]
		err = cl.rd.ReadFull(p)
	} else {
		p, err = cl.rd.ReadPayload(h.Len)
	}
	if err != nil {
		return err
	}
	z := h.Kind == wire.KindDataCodec
	if z {
		if _, n, err := codec.Info(p); err != nil || n > cl.cfg.maxFrame {
			return fmt.Errorf("%w: source %d: bad encoded frame (%d bytes raw): %v", ErrProtocol, h.ID, n, err)
		}
	} else if p == nil {
		p = []byte{}
	}
	s.mu.Lock()
	s.uncredited += int64(h.Len)
	if !s.closed {
		s.frames = append(s.frames, frame{p: p, z: z})
	}
	s.mu.Unlock()
	signal(s.wake)
	return nil
}

func (cl *call) next(ctx context.Context) (*source, error) {
	for {
		cl.mu.Lock()
		if cl.abortErr != nil {
			err := cl.abortErr
			cl.mu.Unlock()
			return nil, err
		}
		if len(cl.queue) > 0 {
			s := cl.queue[0]
			cl.queue[0] = nil
			cl.queue = cl.queue[1:]
			more := len(cl.queue) > 0
			if !more {
				cl.queue = cl.queueBuf[:0]
			}
			cl.mu.Unlock()
			if more {
				signal(cl.wake)
			}
			return s, nil
		}
		if cl.ended {
			err := cl.endErr
			cl.mu.Unlock()
			if err == nil {
				return nil, io.EOF
			}
			return nil, err
		}
		cl.mu.Unlock()
		select {
		case <-cl.wake:
		case <-cl.done:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

func (cl *call) send(ctx context.Context, msg []byte) error {
	for {
		cl.mu.Lock()
		if cl.ended || cl.abortErr != nil {
			cl.mu.Unlock()
			return ErrClosed
		}
		if cl.msgCredit > 0 {
			cl.msgCredit -= int64(len(msg))
			cl.mu.Unlock()
			if err := cl.ob.put(wire.KindMessage, 0, nil, msg); err != nil {
				return fmt.Errorf("chanserv: send: %w", err)
			}
			return nil
		}
		if cl.sendWake == nil {
			cl.sendWake = make(chan struct{}, 1)
		}
		wake := cl.sendWake
		cl.mu.Unlock()
		select {
		case <-wake:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// finishSource forgets a source and returns its slot to the server.
func (cl *call) finishSource(s *source) {
	cl.mu.Lock()
	cl.sources.del(s.id)
	live := !cl.ended && cl.abortErr == nil
	cl.mu.Unlock()
	if live {
		cl.ob.putUvarint(wire.KindSourceSlots, 0, 1)
	}
}

type frame struct {
	p []byte
	z bool // encoded by package codec
}

// source is the client side of one source.
type source struct {
	call   *call
	id     uint32
	header []byte
	wake   chan struct{}

	mu         sync.Mutex
	frames     []frame
	framesBuf  [2]frame // frames' first backing array
	head       int
	uncredited int64 // bytes received and not yet credited back
	consumed   int64 // bytes read by the consumer and not yet credited
	ended      bool
	err        error // end status; nil is success
	closed     bool  // closed by the consumer
	finished   bool  // its slot was returned
}

// end records the server's end status; it reports false if the source
// had already ended.
func (s *source) end(err error) bool {
	s.mu.Lock()
	first := !s.ended
	if first {
		s.ended, s.err = true, err
	}
	s.mu.Unlock()
	signal(s.wake)
	return first
}

// abort drops the buffered frames and ends the source with err.
func (s *source) abort(err error) {
	s.mu.Lock()
	s.frames, s.head = nil, 0
	s.ended, s.err = true, err
	s.mu.Unlock()
	signal(s.wake)
}

// fail ends a source the server never ended: with the call's error, or
// with def if the call ended normally.
func (s *source) fail(callErr, def error) {
	s.mu.Lock()
	ended := s.ended
	s.mu.Unlock()
	if ended {
		return
	}
	if callErr == nil {
		callErr = fmt.Errorf("%w: response ended before the source", def)
	}
	s.end(callErr)
}

func (s *source) next(ctx context.Context) ([]byte, error) {
	cl := s.call
	for {
		s.mu.Lock()
		if s.closed {
			s.mu.Unlock()
			return nil, ErrClosed
		}
		if cl.aborted.Load() {
			s.mu.Unlock()
			cl.mu.Lock()
			err := cl.abortErr
			cl.mu.Unlock()
			return nil, err
		}
		if s.head < len(s.frames) {
			f := s.frames[s.head]
			s.frames[s.head] = frame{}
			s.head++
			if s.head == len(s.frames) {
				s.frames, s.head = s.frames[:0], 0
			} else if s.head >= 1024 && s.head*2 >= len(s.frames) {
				n := copy(s.frames, s.frames[s.head:])
				clear(s.frames[n:])
				s.frames, s.head = s.frames[:n], 0
			}
			s.consumed += int64(len(f.p))
			var credit int64
			if !s.ended && s.consumed >= int64(cl.cfg.window/2) {
				credit = s.consumed
				s.consumed = 0
				s.uncredited -= credit
			}
			s.mu.Unlock()
			if credit > 0 {
				cl.ob.putUvarint(wire.KindCredit, s.id, uint64(credit))
			}
			if !f.z {
				return f.p, nil
			}
			p, err := cl.dec.Decode(nil, f.p)
			if err != nil {
				return nil, fmt.Errorf("%w: source %d: %v", ErrProtocol, s.id, err)
			}
			return p, nil
		}
		if s.ended {
			err := s.err
			first := !s.finished
			s.finished = true
			s.mu.Unlock()
			if first {
				cl.finishSource(s)
			}
			if err == nil {
				return nil, io.EOF
			}
			return nil, err
		}
		s.mu.Unlock()
		select {
		case <-s.wake:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

func (s *source) close() {
	cl := s.call
	s.mu.Lock()
	if s.closed || s.finished {
		s.mu.Unlock()
		return
	}
	s.closed, s.finished = true, true
	ended := s.ended
	s.frames, s.head = nil, 0
	s.mu.Unlock()
	signal(s.wake)
	if !ended {
		cl.ob.put(wire.KindCloseSource, s.id, nil, nil)
	}
	cl.finishSource(s)
}
