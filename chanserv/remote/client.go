package remote

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"sync"
	"sync/atomic"
	"time"

	"github.com/beanspike/beanspike"
	"github.com/beanspike/beanspike/chanserv"
)

// link is one session with a server: one chanserv request that lasts as
// long as the session, carrying calls upstream as messages and replies
// downstream on one source.
type link struct {
	cl      *chanserv.Client
	resp    *chanserv.Response
	out     *chanserv.RemoteSource // the reply stream
	cancel  context.CancelFunc     // the session's context
	onClose func()                 // releases what the session was opened over; may be nil
	cfg     config
	maxMsg  int // the longest call the server accepts
	maxBody int // the store's body limit, 0 if unknown
	inBody  int // the longest job body accepted from the server

	lost     func(*link)  // told once when the session is lost, not closed
	lastRecv atomic.Int64 // when the last reply frame arrived, in Unix nanoseconds

	mu         sync.Mutex
	nextID     uint64
	calls      map[uint64]*call
	closed     bool
	err        error // why the session is unusable
	readerDone chan struct{}
	stopPing   chan struct{} // closed when the session ends: the keepalive stops
}

// call is one call waiting for its reply.
type call struct {
	op        byte
	done      chan struct{} // closed when the call is complete
	finished  bool          // done is closed
	abandoned bool          // the caller left: release the jobs that arrive
	reply     dec           // a successful reply's result
	jobs      []*beanspike.Job
	released  int  // jobs of an abandoned call already released
	sent      bool // the call's message was handed to the transport
	err       error
}

// openLink opens a session with the server listening on the service
// addr of mpx. ctx bounds the dial and the session's opening, not the
// session. It returns ctx's error if ctx ends first, and an error
// wrapping [beanspike.ErrUnavailable] if the server cannot be reached or
// refuses the session.
func openLink(ctx context.Context, mpx chanserv.Multiplexer, addr string, cfg config) (*link, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	cl, err := chanserv.NewClient(mpx, cfg.chanservOptions()...)
	if err != nil {
		return nil, err
	}
	sctx, cancel := context.WithCancel(context.Background())
	stop := context.AfterFunc(ctx, cancel)
	fail := func(err error) (*link, error) {
		stop()
		cancel()
		cl.Close()
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, fmt.Errorf("%w: remote: open a session with %q: %w", beanspike.ErrUnavailable, addr, err)
	}
	resp, err := cl.Post(sctx, addr, appendSession(nil, cfg.maxFrame, cfg.token))
	if err != nil {
		return fail(err)
	}
	src, err := resp.Next(ctx)
	if err != nil {
		resp.Close()
		return fail(err)
	}
	d := dec{b: src.Header()}
	if h := (dec{b: src.Header()}); h.uvarint() == 0 && h.byte() == codeUnauthorized && h.done() == nil {
		resp.Close()
		return fail(ErrUnauthorized)
	}
	id, code, v := d.uvarint(), d.byte(), d.byte()
	maxMsg, maxBody := d.uvarint(), d.uvarint()
	if err := d.done(); err != nil || id != 0 || code != codeOK || v != version || maxMsg > 1<<31 || maxBody > 1<<40 {
		resp.Close()
		return fail(fmt.Errorf("%w: bad hello from the server", errMalformed))
	}
	if !stop() {
		resp.Close()
		return fail(ctx.Err())
	}
	q := &link{
		cl:         cl,
		resp:       resp,
		out:        src,
		cancel:     cancel,
		cfg:        cfg,
		maxMsg:     int(maxMsg),
		maxBody:    int(maxBody),
		inBody:     bodyLimit(int(maxMsg), int(maxBody)),
		calls:      make(map[uint64]*call),
		readerDone: make(chan struct{}),
		stopPing:   make(chan struct{}),
	}
	q.lastRecv.Store(time.Now().UnixNano())
	go q.readLoop()
	if cfg.keepalive > 0 {
		go q.keepalive(cfg.keepalive)
	}
	return q, nil
}

// Close ends the session: the server closes the session's Queue client,
// so its reservations return to ready, and Close waits for that (at most
// the call timeout). Calls in flight and later calls fail with
// [beanspike.ErrClosed]. Close is idempotent.
func (q *link) Close() error {
	q.mu.Lock()
	if q.closed {
		q.mu.Unlock()
		<-q.readerDone
		return nil
	}
	q.closed = true
	alive := q.err == nil
	if alive {
		close(q.stopPing)
	}
	for id, c := range q.calls {
		c.finish(beanspike.ErrClosed)
		c.abandoned = true
		if !returnsJob(c.op) {
			delete(q.calls, id)
		}
	}
	q.nextID++
	id := q.nextID
	q.mu.Unlock()
	if alive {
		ctx, cancel := context.WithTimeout(context.Background(), q.cfg.callTimeout)
		if q.resp.Send(ctx, binary.AppendUvarint([]byte{opClose}, id)) == nil {
			select {
			case <-q.readerDone: // the server ended the session
			case <-ctx.Done():
			}
		}
		cancel()
	}
	q.resp.Close()
	q.cl.Close()
	<-q.readerDone
	q.cancel()
	if q.onClose != nil {
		q.onClose()
	}
	return nil
}

// finish completes c; the caller holds q.mu.
func (c *call) finish(err error) {
	if c.finished {
		return
	}
	c.finished = true
	c.err = err
	close(c.done)
}

// begin registers a call of op and returns the message that starts it.
func (q *link) begin(op byte) (uint64, *call, []byte, error) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.err != nil {
		return 0, nil, nil, &unsentError{q.err}
	}
	if q.closed {
		return 0, nil, nil, beanspike.ErrClosed
	}
	q.nextID++
	c := &call{op: op, done: make(chan struct{})}
	q.calls[q.nextID] = c
	msg := make([]byte, 0, 64)
	msg = append(msg, op)
	return q.nextID, c, binary.AppendUvarint(msg, q.nextID), nil
}

// forget drops a call whose reply nobody waits for any more. A call
// whose reply carries jobs is kept, marked abandoned, until the reply
// comes: reserved jobs are then released. It reports false if the call
// completed meanwhile: its result stands.
func (q *link) forget(id uint64, c *call) bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	if c.finished {
		return false
	}
	if returnsJob(c.op) {
		c.abandoned = true
	} else {
		delete(q.calls, id)
	}
	return true
}

// returnsJob tells whether the reply to op carries a job, whose body may
// follow in frames: such calls stay registered until their reply comes,
// so that the reply stream is parsed right.
func returnsJob(op byte) bool {
	switch op {
	case opReserve, opReserveJob, opPeek, opPeekReady, opPeekDelayed, opPeekBuried:
		return true
	}
	return false
}

// returnsReservations tells whether the reply to op may carry reserved
// jobs.
func returnsReservations(op byte) bool { return op == opReserve || op == opReserveJob }

// send sends a call's message.
func (q *link) send(ctx context.Context, msg []byte) error {
	if len(msg) > q.maxMsg {
		return fmt.Errorf("%w: remote: call of %d bytes, over the server's limit of %d", beanspike.ErrJobTooBig, len(msg), q.maxMsg)
	}
	err := q.resp.Send(ctx, msg)
	switch {
	case err == nil:
		return nil
	case ctx.Err() != nil:
		return ctx.Err()
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.err != nil {
		return &unsentError{q.err}
	}
	if q.closed {
		return beanspike.ErrClosed
	}
	return &unsentError{fmt.Errorf("%w: remote: send: %v", beanspike.ErrUnavailable, err)}
}

// unsentError is the error of a call that was not sent because its
// session is lost: it can be made again on a new session.
type unsentError struct{ err error }

func (e *unsentError) Error() string { return e.err.Error() }
func (e *unsentError) Unwrap() error { return e.err }

// markSent records that c's message went to the transport.
func (q *link) markSent(c *call) {
	q.mu.Lock()
	c.sent = true
	q.mu.Unlock()
}

// cancelCall tells the server to cancel call id. It is best effort.
func (q *link) cancelCall(id uint64) {
	ctx, cancel := context.WithTimeout(context.Background(), q.cfg.callTimeout)
	defer cancel()
	_ = q.resp.Send(ctx, binary.AppendUvarint([]byte{opCancel}, id))
}

// do makes a call that reserves nothing and returns its reply's result.
func (q *link) do(ctx context.Context, op byte, args func([]byte) []byte) (*dec, error) {
	c, err := q.roundTrip(ctx, op, args)
	if err != nil {
		return nil, err
	}
	return &c.reply, nil
}

// peek makes a call whose reply is one job, not reserved.
func (q *link) peek(ctx context.Context, op byte, args func([]byte) []byte) (*beanspike.Job, error) {
	c, err := q.roundTrip(ctx, op, args)
	if err != nil {
		return nil, err
	}
	return c.jobs[0], nil
}

// roundTrip makes a call that reserves nothing and returns it answered.
func (q *link) roundTrip(ctx context.Context, op byte, args func([]byte) []byte) (*call, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	id, c, msg, err := q.begin(op)
	if err != nil {
		return nil, err
	}
	if args != nil {
		msg = args(msg)
	}
	if err := q.send(ctx, msg); err != nil {
		q.forget(id, c)
		return nil, err
	}
	q.markSent(c)
	select {
	case <-c.done:
	case <-ctx.Done():
		if q.forget(id, c) {
			q.cancelCall(id)
			return nil, ctx.Err()
		}
	}
	if c.err != nil {
		if ctx.Err() != nil && isContextErr(c.err) {
			return nil, ctx.Err()
		}
		return nil, c.err
	}
	return c, nil
}

// reserve makes a call whose reply carries reserved jobs: a Reserve of up
// to n jobs, or a ReserveJob. A call cancelled by ctx waits, at most the
// call timeout, for the server to confirm that it reserved nothing; jobs
// that arrive after the caller has left are released.
func (q *link) reserve(ctx context.Context, op byte, args func([]byte) []byte) ([]*beanspike.Job, error) {
	poll := ctx.Err() != nil
	if poll && op != opReserve {
		return nil, ctx.Err()
	}
	id, c, msg, err := q.begin(op)
	if err != nil {
		return nil, err
	}
	msg = args(msg)
	sctx := ctx
	var timeout <-chan struct{}
	wait := ctx.Done()
	if poll {
		var cancel context.CancelFunc
		sctx, cancel = context.WithTimeout(context.Background(), q.cfg.callTimeout)
		defer cancel()
		timeout, wait = sctx.Done(), nil
	}
	if err := q.send(sctx, msg); err != nil {
		q.forget(id, c)
		if poll && sctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, err
	}
	q.markSent(c)
	select {
	case <-c.done:
	case <-timeout:
		if q.forget(id, c) {
			return nil, ctx.Err()
		}
	case <-wait:
		// The contract: a cancelled Reserve reserved nothing. Wait, at
		// most the call timeout, for the server to confirm that, or to
		// send the job it reserved before the cancellation arrived.
		q.cancelCall(id)
		t := time.NewTimer(q.cfg.callTimeout)
		select {
		case <-c.done:
		case <-t.C:
			if q.forget(id, c) {
				return nil, ctx.Err()
			}
		}
		t.Stop()
		if c.err != nil && len(c.jobs) == 0 {
			// Refused, cancelled, or the session was lost, which
			// returns its reservations: the call took nothing.
			return nil, ctx.Err()
		}
	}
	if c.err != nil {
		if ctx.Err() != nil && isContextErr(c.err) {
			return nil, ctx.Err()
		}
		return nil, c.err
	}
	return c.jobs, nil
}

func isContextErr(err error) bool {
	return errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded)
}

// readLoop reads replies until the session ends.
func (q *link) readLoop() {
	defer close(q.readerDone)
	ctx := context.Background()
	for {
		p, err := q.out.Next(ctx)
		if err == nil {
			q.lastRecv.Store(time.Now().UnixNano())
			err = q.onReply(ctx, p, false)
		}
		if err != nil {
			if errors.Is(err, io.EOF) {
				// The reply stream ended: the response's end tells why.
				_, err = q.resp.Next(ctx)
			}
			q.resp.Close()
			q.fail(err)
			return
		}
	}
}

// fail records why the session ended, fails every call in flight, and
// tells the owner, unless the session was closed or had failed already.
// A call whose message was sent fails with an error that also wraps
// [ErrOutcomeUnknown]: the server may have carried it out.
func (q *link) fail(cause error) {
	q.mu.Lock()
	if q.closed || q.err != nil {
		q.mu.Unlock()
		return
	}
	if errors.Is(cause, io.EOF) {
		cause = errors.New("the server ended the session")
	}
	if errors.Is(cause, ErrNotAnswering) {
		q.err = fmt.Errorf("%w: remote: session lost: %w", beanspike.ErrUnavailable, cause)
	} else {
		q.err = fmt.Errorf("%w: remote: session lost: %v", beanspike.ErrUnavailable, cause)
	}
	unknown := fmt.Errorf("%w (%w: the call was sent; it may have been carried out)", q.err, ErrOutcomeUnknown)
	for id, c := range q.calls {
		if c.sent {
			c.finish(unknown)
		} else {
			c.finish(q.err)
		}
		delete(q.calls, id)
	}
	close(q.stopPing)
	lost := q.lost
	q.mu.Unlock()
	if lost != nil {
		lost(q)
	}
}

// keepalive sends a ping whenever no reply has arrived for every, and
// fails the session with [ErrNotAnswering] if the ping gets no reply
// within every: a server that stopped answering is found out in at most
// 2.25 times every (the quiet time, the check's period, the ping's
// wait), however long the calls in flight may wait.
func (q *link) keepalive(every time.Duration) {
	t := time.NewTicker(every / 4)
	defer t.Stop()
	for {
		select {
		case <-q.stopPing:
			return
		case <-t.C:
		}
		if time.Since(time.Unix(0, q.lastRecv.Load())) < every {
			continue
		}
		ctx, cancel := context.WithTimeout(context.Background(), every)
		_, err := q.roundTrip(ctx, opPing, nil)
		cancel()
		if err == context.DeadlineExceeded {
			q.fail(fmt.Errorf("%w: no reply to a keepalive within %v", ErrNotAnswering, every))
			q.resp.Close()
			return
		}
	}
}

// onReply handles one reply, whose first frame is p, or, if long, the
// whole reply read from frames. It returns an error if the reply stream
// cannot be read any more.
func (q *link) onReply(ctx context.Context, p []byte, long bool) error {
	d := dec{b: p}
	id := d.uvarint()
	code := d.byte()
	if d.err != nil {
		return fmt.Errorf("%w: reply header", errMalformed)
	}
	if code == codeLong {
		// The reply follows in frames; it is read whole, then handled
		// as if it had come in one.
		n := d.uvarint()
		if err := d.done(); err != nil || long || n == 0 || n > maxInBody {
			return fmt.Errorf("%w: long reply of %d bytes", errMalformed, n)
		}
		p, err := q.readChunks(ctx, int(n))
		if err != nil {
			return err
		}
		return q.onReply(ctx, p, true)
	}
	q.mu.Lock()
	c := q.calls[id]
	q.mu.Unlock()
	if code != codeOK {
		if c != nil {
			q.complete(id, c, errOf(code, string(d.rest())))
		}
		return nil
	}
	if c == nil || !returnsJob(c.op) {
		// Calls whose replies carry jobs stay registered: this one has
		// no job to skip.
		if c != nil {
			c.reply = d
			q.complete(id, c, nil)
		}
		return nil
	}
	more := byte(0)
	if c.op == opReserve {
		more = d.byte()
	}
	j, framed := d.job()
	if err := d.done(); err != nil {
		return err
	}
	if framed > q.inBody {
		return fmt.Errorf("%w: a job body of %d bytes announced, over the limit of %d", errMalformed, framed, q.inBody)
	}
	if framed > 0 {
		body, err := q.readChunks(ctx, framed)
		if err != nil {
			return err
		}
		j.Body = body
	}
	q.mu.Lock()
	c.jobs = append(c.jobs, j)
	if more == 0 {
		delete(q.calls, id)
		c.finish(nil)
	}
	orphans := c.orphans()
	q.mu.Unlock()
	q.release(ctx, orphans)
	return nil
}

// complete finishes call id with err. A Reserve that already received
// jobs succeeds with them whatever err says: the job that failed is
// released by the server.
func (q *link) complete(id uint64, c *call, err error) {
	q.mu.Lock()
	delete(q.calls, id)
	if len(c.jobs) > 0 {
		err = nil
	}
	c.finish(err)
	orphans := c.orphans()
	q.mu.Unlock()
	q.release(context.Background(), orphans)
}

// orphans returns the reserved jobs of an abandoned call not yet
// released, and counts them as released; the caller holds q.mu.
func (c *call) orphans() []*beanspike.Job {
	if !c.abandoned || !returnsReservations(c.op) {
		return nil
	}
	jobs := c.jobs[c.released:]
	c.released = len(c.jobs)
	return jobs
}

// release returns jobs that reached no caller to ready, with their
// priority. The replies are not awaited.
func (q *link) release(ctx context.Context, jobs []*beanspike.Job) {
	for _, j := range jobs {
		q.mu.Lock()
		if q.closed || q.err != nil {
			q.mu.Unlock()
			return // the session's end releases them
		}
		q.nextID++
		id := q.nextID
		q.mu.Unlock()
		msg := binary.AppendUvarint([]byte{opRelease}, id)
		msg = binary.AppendUvarint(msg, uint64(j.ID))
		msg = binary.AppendUvarint(msg, uint64(j.Priority))
		msg = appendDuration(msg, 0)
		_ = q.resp.Send(ctx, msg)
	}
}

// maxInBody is the longest job body or long reply a client accepts from
// any server, whatever its hello announces.
const maxInBody = 1 << 30

// bodyLimit is the longest job body a client accepts from a server whose
// hello announced the limits maxMsg and maxBody: no job can have been put
// through that server with a longer one.
func bodyLimit(maxMsg, maxBody int) int {
	return min(max(maxMsg, maxBody), maxInBody)
}

// readChunks reads n bytes, a job's body or a long reply, from the
// reply stream's next frames, n as checked against the limit. The bytes
// are stored as they arrive: a server that announces many and sends few
// costs little.
func (q *link) readChunks(ctx context.Context, n int) ([]byte, error) {
	b := make([]byte, 0, min(n, chunkSize))
	for len(b) < n {
		p, err := q.out.Next(ctx)
		if err != nil {
			if errors.Is(err, io.EOF) {
				err = io.ErrUnexpectedEOF
			}
			return nil, err
		}
		if len(p) > n-len(b) {
			return nil, fmt.Errorf("%w: %d bytes longer than announced", errMalformed, len(p)-(n-len(b)))
		}
		if len(b)+len(p) > cap(b) {
			nb := make([]byte, len(b), min(n, max(4*cap(b), len(b)+len(p))))
			copy(nb, b)
			b = nb
		}
		b = append(b, p...)
	}
	return b, nil
}
