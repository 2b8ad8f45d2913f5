package remote

import (
	"cmp"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/beanspike/beanspike"
	"github.com/beanspike/beanspike/chanserv"
	"github.com/beanspike/beanspike/internal/lograte"
)

// Server serves a job store to remote clients. Each client session gets
// its own Queue client of the store, made by the function given to
// [NewServer]: the session's reservations belong to it, and when the
// session ends — the client closes, its connection is lost, its process
// dies — the server closes that Queue client, so the reservations return
// to ready at once instead of when their TTR lapses.
//
// A reply that carries a job holds a copy of its body until it is
// written, and a client that reads no replies would have the server hold
// one for each call it makes. So the bytes of replies held at once are
// bounded, per session and for the whole server ([WithMaxReplyBytes]):
// a call that returns jobs (a Reserve, a ReserveJob, a Peek) takes what
// its reply may need — the store's body limit per job — before the store
// is called, and gives it back once the reply is written. A session over
// its budget is read no further until its replies are taken. A Reserve
// waits for a job holding none of the budget, and hands a job back to
// ready rather than hold it while it waits for room. A session whose client
// takes no reply frame for the reply timeout ([WithReplyTimeout]) is
// ended, which frees what it held.
//
// Its methods are safe for concurrent use.
type Server struct {
	newClient func() (beanspike.Queue, error)
	cfg       config
	budget    *budget // the bytes of replies all sessions hold

	mu       sync.Mutex
	closing  bool
	servers  []*chanserv.Server
	sessions map[*session]struct{}
	wg       sync.WaitGroup // sessions

	warnLim lograte.Limiter // paces warn
}

var _ chanserv.Handler = (*Server)(nil)

// warn logs a bad peer's doing at most once a second, with the number
// of lines held back since the last one, so that a peer cannot flood the
// log.
func (s *Server) warn(msg string, args ...any) {
	held, ok := s.warnLim.Allow(time.Now())
	if !ok {
		return
	}
	if held > 0 {
		args = append(args, "held_back", held)
	}
	s.cfg.logger.Warn(msg, args...)
}

// Sessions returns the number of sessions the server holds open.
func (s *Server) Sessions() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.sessions)
}

// NewServer returns a server whose sessions each use a Queue client made
// by newClient, and close it when they end. It returns an error wrapping
// [ErrInvalidOption] for a nil newClient or an option out of range.
func NewServer(newClient func() (beanspike.Queue, error), opts ...Option) (*Server, error) {
	if newClient == nil {
		return nil, fmt.Errorf("%w: nil newClient", ErrInvalidOption)
	}
	cfg, err := newConfig(opts)
	if err != nil {
		return nil, err
	}
	return &Server{newClient: newClient, cfg: cfg, budget: newBudget(int64(cfg.maxReplyBytes)), sessions: make(map[*session]struct{})}, nil
}

// Listen binds service on mpx and serves clients on it in the background
// until [Server.Shutdown] or [Server.Close]. The service is reachable
// when Listen returns. Listen may be called for several multiplexers.
func (s *Server) Listen(mpx chanserv.Multiplexer, service string) error {
	cs, err := chanserv.NewServer(mpx, s.cfg.chanservOptions()...)
	if err != nil {
		return err
	}
	s.mu.Lock()
	if s.closing {
		s.mu.Unlock()
		return chanserv.ErrServerClosed
	}
	s.servers = append(s.servers, cs)
	s.mu.Unlock()
	return cs.Handle(service, s)
}

// Shutdown stops accepting sessions and ends the open ones: blocked
// Reserve calls fail with [beanspike.ErrUnavailable], other calls in
// flight finish and are answered, then each session's Queue client is
// closed. It waits for all that until ctx ends, then closes what is left
// as [Server.Close] does and returns ctx's error.
func (s *Server) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	s.closing = true
	servers := s.servers
	for ss := range s.sessions {
		ss.stop(stopDrain)
	}
	s.mu.Unlock()
	done := make(chan struct{})
	go func() {
		s.wg.Wait()
		close(done)
	}()
	var err error
	select {
	case <-done:
	case <-ctx.Done():
		err = ctx.Err()
		s.mu.Lock()
		for ss := range s.sessions {
			ss.stop(stopKill)
		}
		s.mu.Unlock()
		<-done
	}
	for _, cs := range servers {
		if serr := cs.Shutdown(ctx); serr != nil && err == nil {
			err = serr
		}
	}
	return err
}

// Close stops the server at once: sessions end, their calls are
// cancelled, their Queue clients closed and their connections closed. It
// waits for the sessions to end.
func (s *Server) Close() error {
	s.mu.Lock()
	s.closing = true
	servers := s.servers
	for ss := range s.sessions {
		ss.stop(stopKill)
	}
	s.mu.Unlock()
	s.wg.Wait()
	for _, cs := range servers {
		cs.Close()
	}
	return nil
}

// Why a session stops.
const (
	stopNone   = iota
	stopClient // the client asked, or went away
	stopDrain  // the server shuts down gracefully
	stopKill   // the server closes
)

// session is the server side of one client.
type session struct {
	s        *Server
	q        beanspike.Queue
	peer     net.Addr
	version  byte // of the client
	maxFrame int  // the longest frame the client accepts

	budget *budget // the bytes of replies the session holds
	perJob int64   // what a reply takes per job it may carry

	outMu   sync.Mutex            // serialises the replies
	out     chanserv.SourceWriter // the reply stream
	writing atomic.Int64          // when the frame being written began, in Unix nanoseconds; 0 if none
	watchMu sync.Mutex
	watch   *time.Timer // checks that the frames written are taken

	ctx        context.Context // the session's; cancelled when it ends
	cancel     context.CancelFunc
	recvCancel context.CancelFunc // stops the receive loop

	mu      sync.Mutex
	why     int
	ops     map[uint64]*op
	running sync.WaitGroup // calls

	// Calls run on worker goroutines, which wait for the next call when
	// done, so that a session does not start a goroutine (and grow its
	// stack) per call. At most maxIdleWorkers wait; the others end.
	work     chan task     // hands a call to a waiting worker
	idle     atomic.Int32  // workers waiting, or about to
	stopIdle chan struct{} // closed when the session ends: waiting workers end
	workers  sync.WaitGroup
}

// maxIdleWorkers is how many idle worker goroutines a session keeps.
const maxIdleWorkers = 4

// task is one call handed to a worker.
type task struct {
	ctx    context.Context
	cancel context.CancelFunc
	code   byte
	id     uint64
	d      dec
	charge charge // the reply bytes taken for it
	jobs   int    // for a Reserve poll, the most jobs the charge covers
}

// op is one call in flight.
type op struct {
	cancel   context.CancelFunc
	blocking bool // a Reserve that may wait for a job
}

// stop makes the session end: its receive loop returns, and its calls
// are cancelled: only the blocking ones for stopDrain, so that the others
// finish and are answered; all of them, and the replies, otherwise.
func (ss *session) stop(why int) {
	ss.mu.Lock()
	if why > ss.why {
		ss.why = why
	}
	for _, o := range ss.ops {
		if why != stopDrain || o.blocking {
			o.cancel()
		}
	}
	ss.mu.Unlock()
	ss.recvCancel()
	if why != stopDrain {
		ss.cancel()
	}
}

// ServeChan serves one session; it implements [chanserv.Handler], so a
// Server can also be mounted on a chanserv server of the caller's with
// its Handle method. The session ends when the client closes it or goes
// away, or the server shuts down.
func (s *Server) ServeChan(ctx context.Context, req *chanserv.Request, w chanserv.ResponseWriter) error {
	v, maxFrame, token, err := checkSession(req.Body)
	if err != nil {
		return err
	}
	if s.cfg.checkToken != nil && !s.cfg.checkToken(token) {
		s.warn("remote: session refused: bad or missing token", "peer", req.RemoteAddr)
		_, err := w.NewSource(ctx, appendHeader(nil, 0, codeUnauthorized))
		return err
	}
	s.mu.Lock()
	if s.closing {
		s.mu.Unlock()
		return chanserv.ErrShuttingDown
	}
	s.wg.Add(1)
	s.mu.Unlock()
	defer s.wg.Done()

	q, err := s.newClient()
	if err != nil {
		return fmt.Errorf("remote: new client of the store: %w", err)
	}
	ss := &session{s: s, q: q, peer: req.RemoteAddr, version: v, maxFrame: maxFrame, ops: make(map[uint64]*op), work: make(chan task), stopIdle: make(chan struct{})}
	ss.budget = newBudget(int64(s.cfg.maxSessionReplyBytes))
	ss.ctx, ss.cancel = context.WithCancel(ctx)
	defer ss.cancel()
	rctx, rcancel := context.WithCancel(ss.ctx)
	ss.recvCancel = rcancel
	defer rcancel()

	s.mu.Lock()
	if s.closing {
		s.mu.Unlock()
		q.Close()
		return chanserv.ErrShuttingDown
	}
	s.sessions[ss] = struct{}{}
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		delete(s.sessions, ss)
		s.mu.Unlock()
	}()
	s.cfg.logger.Debug("remote: session opened", "peer", req.RemoteAddr)

	maxBody := 0
	if l, ok := q.(beanspike.BodyLimiter); ok {
		maxBody = l.MaxBodySize()
	}
	// A store that does not say its limit holds no longer bodies than
	// this server takes in a call, unless they were put some other way:
	// a reply found longer is counted for what it is (see resize).
	ss.perJob = replyCost(cmp.Or(maxBody, s.cfg.maxFrame))
	ss.out, err = w.NewSource(ss.ctx, appendHello(nil, v, s.cfg.maxFrame, maxBody))
	if err != nil {
		q.Close()
		return err
	}
	ss.startWatch()
	defer ss.stopWatch()

	why := ss.loop(rctx, req)
	ss.stop(why)
	ss.running.Wait()
	close(ss.stopIdle)
	ss.workers.Wait()
	q.Close()
	ss.out.Close(nil)
	ss.mu.Lock()
	why = ss.why
	ss.mu.Unlock()
	s.cfg.logger.Debug("remote: session ended", "peer", req.RemoteAddr, "why", why)
	if why == stopDrain || why == stopKill {
		return chanserv.ErrShuttingDown
	}
	return nil
}

// loop receives calls until the session ends and returns why it ended.
func (ss *session) loop(ctx context.Context, req *chanserv.Request) int {
	for {
		msg, err := req.Recv(ctx)
		if err != nil {
			return stopClient // or the server's stop, recorded already
		}
		d := dec{b: msg}
		code := d.byte()
		id := d.uvarint()
		if d.err != nil || id == 0 {
			ss.s.warn("remote: malformed call; ending the session", "peer", req.RemoteAddr)
			return stopClient
		}
		switch code {
		case opCancel:
			ss.mu.Lock()
			if o := ss.ops[id]; o != nil {
				o.cancel()
			}
			ss.mu.Unlock()
			continue
		case opClose:
			return stopClient
		}
		// The reply bytes of a call that does not wait are taken before
		// it starts: a session over its budget is read no further.
		t := task{code: code, id: id, d: d}
		if n, jobs := ss.replyBound(code, d); n > 0 {
			c, err := ss.acquire(ctx, n)
			if err != nil {
				return stopClient // the session's stop, recorded already
			}
			t.charge, t.jobs = c, jobs
		}
		ss.start(t)
	}
}

// replyBound returns what the reply to a call that returns jobs without
// waiting for one may take, and, for a Reserve poll, the most jobs that
// covers: as many as asked for, if the budgets can hold them, else as
// many as they can, at least one. It returns 0 for the other calls: those
// whose replies carry no job, and a Reserve that may wait, which takes
// its bytes as the job comes (see reserveWait).
func (ss *session) replyBound(code byte, d dec) (int64, int) {
	switch code {
	case opPeek, opPeekReady, opPeekDelayed, opPeekBuried, opReserveJob:
		return ss.perJob, 1
	case opReserve:
		n := d.uvarint()
		if f := d.byte(); d.err != nil || f&flagPoll == 0 {
			return 0, 0
		}
		fit := max(min(ss.budget.max, ss.s.budget.max)/ss.perJob, 1)
		k := int(max(min(n, uint64(ss.s.cfg.maxBatch), uint64(fit)), 1))
		return int64(k) * ss.perJob, k
	}
	return 0, 0
}

// start runs one call in its own goroutine.
func (ss *session) start(t task) {
	var (
		ctx    context.Context
		cancel context.CancelFunc
	)
	code, id, d := t.code, t.id, t.d
	blocking := code == opReserve
	if blocking && peekPoll(d) {
		// A poll runs with a done context: it takes a ready job or
		// returns at once.
		ctx, cancel = context.WithCancel(ss.ctx)
		cancel()
		blocking = false
	} else {
		ctx, cancel = context.WithCancel(ss.ctx)
	}
	ss.mu.Lock()
	if ss.ops[id] != nil || len(ss.ops) >= ss.s.cfg.maxInFlight {
		ss.mu.Unlock()
		cancel()
		ss.release(t.charge)
		err := fmt.Errorf("%w: call %d refused: %d calls in flight or a duplicate id", beanspike.ErrUnavailable, id, ss.s.cfg.maxInFlight)
		ss.sendError(ctx, id, err)
		return
	}
	ss.ops[id] = &op{cancel: cancel, blocking: blocking}
	ss.running.Add(1)
	ss.mu.Unlock()
	t.ctx, t.cancel = ctx, cancel
	select {
	case ss.work <- t:
	default:
		ss.workers.Add(1)
		go ss.worker(t)
	}
}

// worker runs t, then the calls handed to it while it waits, until the
// session ends or enough other workers wait.
func (ss *session) worker(t task) {
	defer ss.workers.Done()
	for {
		ss.serve(&t)
		ss.mu.Lock()
		delete(ss.ops, t.id)
		ss.mu.Unlock()
		t.cancel()
		ss.running.Done()
		if ss.idle.Add(1) > maxIdleWorkers {
			ss.idle.Add(-1)
			return
		}
		select {
		case t = <-ss.work:
			ss.idle.Add(-1)
		case <-ss.stopIdle:
			return
		}
	}
}

// peekPoll tells whether the arguments of a Reserve ask for a poll.
func peekPoll(d dec) bool {
	d.uvarint()
	f := d.byte()
	return d.err == nil && f&flagPoll != 0
}

// serve runs one call and sends its reply.
func (ss *session) serve(t *task) {
	ctx, code, id, d := t.ctx, t.code, t.id, &t.d
	if code == opReserve {
		ss.serveReserve(t)
		return
	}
	c := t.charge
	defer func() { ss.release(c) }() // once the reply is written
	q := ss.q
	var (
		b   = appendHeader(make([]byte, 0, 64), id, codeOK)
		err error
		job *beanspike.Job // a result job, its body framed if long
	)
	switch code {
	case opPut:
		tube := d.string()
		opts := d.putOptions()
		body := d.rest()
		if err = d.done(); err == nil {
			var jid beanspike.ID
			jid, err = q.Put(ctx, tube, body, opts...)
			b = binary.AppendUvarint(b, uint64(jid))
		}
	case opPutBatch:
		n := d.count(4)
		reqs := make([]beanspike.PutRequest, n)
		for i := range reqs {
			reqs[i].Tube = d.string()
			reqs[i].Options = d.putOptions()
			reqs[i].Body = d.bytes()
		}
		if err = d.done(); err == nil {
			var ids []beanspike.ID
			ids, err = beanspike.PutBatch(ctx, q, reqs)
			b = binary.AppendUvarint(b, uint64(len(ids)))
			for _, jid := range ids {
				b = binary.AppendUvarint(b, uint64(jid))
			}
			if err != nil {
				// A partial batch: the IDs put, then the error.
				err = ss.wireErr(ctx, err)
				b = append(b, codeOf(err))
				b = append(b, errorText(err)...)
				err = nil
			}
		}
	case opReserveJob, opPeek:
		jid := beanspike.ID(d.uvarint())
		if err = d.done(); err == nil {
			if code == opReserveJob {
				job, err = q.ReserveJob(ctx, jid)
			} else {
				job, err = q.Peek(ctx, jid)
			}
		}
	case opPeekReady, opPeekDelayed, opPeekBuried:
		tube := d.string()
		if err = d.done(); err == nil {
			switch code {
			case opPeekReady:
				job, err = q.PeekReady(ctx, tube)
			case opPeekDelayed:
				job, err = q.PeekDelayed(ctx, tube)
			default:
				job, err = q.PeekBuried(ctx, tube)
			}
		}
	case opDelete, opTouch, opKickJob:
		jid := beanspike.ID(d.uvarint())
		if err = d.done(); err == nil {
			switch code {
			case opDelete:
				err = q.Delete(ctx, jid)
			case opTouch:
				err = q.Touch(ctx, jid)
			default:
				err = q.KickJob(ctx, jid)
			}
		}
	case opRelease:
		jid := beanspike.ID(d.uvarint())
		pri := d.uint32()
		delay := d.duration()
		if err = d.done(); err == nil {
			err = q.Release(ctx, jid, pri, delay)
		}
	case opBury:
		jid := beanspike.ID(d.uvarint())
		pri := d.uint32()
		reason := d.string()
		if err = d.done(); err == nil {
			err = q.Bury(ctx, jid, pri, reason)
		}
	case opKick:
		tube := d.string()
		n := d.varint()
		if err = d.done(); err == nil {
			var k int
			k, err = q.Kick(ctx, tube, int(max(min(n, 1<<31-1), -1)))
			b = binary.AppendUvarint(b, uint64(k))
		}
	case opStatsJob:
		jid := beanspike.ID(d.uvarint())
		if err = d.done(); err == nil {
			var st *beanspike.JobStats
			if st, err = q.StatsJob(ctx, jid); err == nil {
				b = appendJobStats(b, st)
			}
		}
	case opStatsTube:
		tube := d.string()
		if err = d.done(); err == nil {
			var st *beanspike.TubeStats
			if st, err = q.StatsTube(ctx, tube); err == nil {
				b = appendTubeStats(b, st)
			}
		}
	case opTubes:
		if err = d.done(); err == nil {
			var tubes []string
			if tubes, err = q.Tubes(ctx); err == nil {
				b = binary.AppendUvarint(b, uint64(len(tubes)))
				for _, t := range tubes {
					b = appendString(b, t)
				}
			}
		}
	case opPauseTube:
		tube := d.string()
		dur := d.duration()
		if err = d.done(); err == nil {
			err = q.PauseTube(ctx, tube, dur)
		}
	case opPing:
		err = d.done()
	case opDeleteTube:
		tube := d.string()
		if err = d.done(); err == nil {
			var n int
			n, err = q.DeleteTube(ctx, tube)
			b = binary.AppendUvarint(b, uint64(n))
		}
	default:
		err = fmt.Errorf("%w: remote: unknown call %d", errors.ErrUnsupported, code)
	}
	if errors.Is(err, errMalformed) {
		err = fmt.Errorf("%w: call %d: %v", beanspike.ErrInvalidArgument, id, err)
	}
	if err != nil {
		ss.release(c)
		c = charge{}
		ss.sendError(ctx, id, err)
		return
	}
	var body []byte
	if job != nil {
		ss.resize(&c, replyCost(len(job.Body)))
		b = appendJob(b, job)
		if len(job.Body) > inlineMax {
			body = job.Body
		}
	}
	if err := ss.send(ss.ctx, b, body); err != nil {
		if errors.Is(err, errReplyTooLong) {
			ss.sendError(ctx, id, err)
		}
		if code == opReserveJob {
			ss.undeliverable([]*beanspike.Job{job}, err)
		}
	}
}

// sendError sends the reply of a call that failed with err.
func (ss *session) sendError(ctx context.Context, id uint64, err error) {
	ss.send(ss.ctx, appendErrorReply(nil, id, ss.wireErr(ctx, err)), nil)
}

// serveReserve runs a Reserve of up to max jobs and sends one source per
// job, the last one flagged.
func (ss *session) serveReserve(t *task) {
	ctx, id, d := t.ctx, t.id, &t.d
	c := t.charge
	defer func() { ss.release(c) }() // what the replies not written hold
	n := d.uvarint()
	poll := d.byte()&flagPoll != 0
	count := d.count(1)
	var (
		jobs []*beanspike.Job
		err  error
	)
	if count > ss.s.cfg.maxTubes {
		ss.release(c)
		c = charge{}
		ss.sendError(ctx, id, fmt.Errorf("%w: Reserve on %d tubes, more than this server's %d", beanspike.ErrInvalidArgument, count, ss.s.cfg.maxTubes))
		return
	}
	tubes := make([]string, count)
	for i := range tubes {
		tubes[i] = d.string()
	}
	if err = d.done(); err == nil {
		switch {
		case n > uint64(ss.s.cfg.maxBatch):
			err = fmt.Errorf("%w: batch of %d jobs, more than this server's %d", beanspike.ErrInvalidArgument, n, ss.s.cfg.maxBatch)
		case n == 0:
			err = fmt.Errorf("%w: batch size 0 is not positive", beanspike.ErrInvalidArgument)
		case poll:
			// The bytes were taken for t.jobs jobs; more follow if
			// those are short and the budgets have room.
			if jobs, err = ss.reserveReady(ctx, min(int(n), t.jobs), tubes); err == nil {
				ss.resize(&c, jobsCost(jobs))
				jobs, c = ss.fill(ctx, jobs, c, int(n), tubes)
			}
		default:
			var more charge
			jobs, more, err = ss.reserveWait(ctx, int(n), tubes)
			c = c.plus(more)
		}
	}
	if errors.Is(err, errMalformed) {
		err = fmt.Errorf("%w: call %d: %v", beanspike.ErrInvalidArgument, id, err)
	}
	if err != nil {
		ss.release(c)
		c = charge{}
		ss.sendError(ctx, id, err)
		return
	}
	ss.resize(&c, jobsCost(jobs))
	for i, j := range jobs {
		b := appendHeader(make([]byte, 0, 64+min(len(j.Body), inlineMax)), id, codeOK)
		more := byte(0)
		if i < len(jobs)-1 {
			more = 1
		}
		b = append(b, more)
		b = appendJob(b, j)
		var body []byte
		if len(j.Body) > inlineMax {
			body = j.Body
		}
		if err := ss.send(ss.ctx, b, body); err != nil {
			if errors.Is(err, errReplyTooLong) {
				ss.sendError(ctx, id, err)
			}
			ss.undeliverable(jobs[i:], err)
			return
		}
		// This job's reply is written: what it held is free.
		sent := replyCost(len(j.Body))
		part := charge{min(sent, c.session), min(sent, c.server)}
		ss.release(part)
		c = c.minus(part)
	}
}

// reserveReady reserves up to n ready jobs of tubes without waiting: a
// Reserve poll, whose reply bytes were taken for n jobs. ctx is done.
func (ss *session) reserveReady(ctx context.Context, n int, tubes []string) ([]*beanspike.Job, error) {
	if n == 1 {
		j, err := ss.q.Reserve(ctx, tubes...)
		if err != nil {
			return nil, err
		}
		return []*beanspike.Job{j}, nil
	}
	return beanspike.ReserveBatch(ctx, ss.q, n, tubes...)
}

// jobsCost is what replies carrying jobs are counted for.
func jobsCost(jobs []*beanspike.Job) int64 {
	n := int64(0)
	for _, j := range jobs {
		n += replyCost(len(j.Body))
	}
	return n
}

// fill adds to jobs, which c covers, ready jobs of tubes up to n in all,
// as long as the budgets have room for them now, and returns them with
// what they take. It asks the store for as many as the room free can
// hold should each be of the largest body; as replies carrying small
// jobs take little of it, it asks again while jobs come. poll is done.
func (ss *session) fill(poll context.Context, jobs []*beanspike.Job, c charge, n int, tubes []string) ([]*beanspike.Job, charge) {
	for len(jobs) < n {
		k, more := ss.tryAcquireUnits(int64(n-len(jobs)), ss.perJob)
		if k == 0 {
			break
		}
		got, err := ss.reserveReady(poll, int(k), tubes)
		if err != nil {
			ss.release(more)
			break
		}
		ss.resize(&more, jobsCost(got))
		jobs, c = append(jobs, got...), c.plus(more)
		if len(got) < int(k) {
			break // no more ready
		}
	}
	return jobs, c
}

// errNoRoom is why a job reserved while a session's reply budget, or the
// server's, was spent goes back to ready.
var errNoRoom = errors.New("remote: no room for the reply; the job goes back to ready until there is")

// reserveWait reserves up to n jobs of tubes, waiting until one is
// ready, and returns them with the reply bytes it took for them. It waits
// for a job holding no budget, so that sessions waiting for jobs do not
// keep the budget from the calls of others; and it never holds a job
// while it waits for budget: it waits for room before it waits for a job,
// and should the room be gone when a job comes, it hands the job back to
// ready, waits for room, then takes a ready job, if there still is one,
// with the room already taken. The jobs after the first are those ready
// at once that the room free then can hold (see fill).
func (ss *session) reserveWait(ctx context.Context, n int, tubes []string) ([]*beanspike.Job, charge, error) {
	q := ss.q
	poll, cancel := context.WithCancel(ctx)
	cancel()
	var (
		j *beanspike.Job
		c charge
	)
	for j == nil {
		room, err := ss.acquire(ctx, ss.perJob)
		if err != nil {
			return nil, charge{}, err
		}
		ss.release(room)
		if j, err = q.Reserve(ctx, tubes...); err != nil {
			return nil, charge{}, err
		}
		var ok bool
		if c, ok = ss.tryAcquire(replyCost(len(j.Body))); ok {
			break
		}
		ss.undeliverable([]*beanspike.Job{j}, errNoRoom)
		if c, err = ss.acquire(ctx, ss.perJob); err != nil {
			return nil, charge{}, err
		}
		if j, err = q.Reserve(poll, tubes...); err != nil {
			ss.release(c)
			if ctx.Err() != nil || !isContextErr(err) {
				return nil, charge{}, err
			}
			j = nil // taken by another meanwhile: wait again
		}
	}
	ss.resize(&c, replyCost(len(j.Body)))
	jobs, c := ss.fill(poll, []*beanspike.Job{j}, c, n, tubes)
	return jobs, c, nil
}

// wireErr is the error a call's reply reports: a context error that the
// server caused (its shutdown) becomes ErrUnavailable, so that only the
// client's own cancellation reads as a context error.
func (ss *session) wireErr(ctx context.Context, err error) error {
	if ctx.Err() == nil || (!errors.Is(err, context.Canceled) && !errors.Is(err, context.DeadlineExceeded)) {
		return err
	}
	ss.mu.Lock()
	why := ss.why
	ss.mu.Unlock()
	if why == stopDrain || why == stopKill {
		return fmt.Errorf("%w: the server is shutting down", beanspike.ErrUnavailable)
	}
	return err
}

// undeliverable returns jobs whose delivery failed to ready at once, with
// their priority: the client never saw them.
func (ss *session) undeliverable(jobs []*beanspike.Job, cause error) {
	for _, j := range jobs {
		ctx, cancel := context.WithTimeout(context.WithoutCancel(ss.ctx), 5*time.Second)
		err := ss.q.Release(ctx, j.ID, j.Priority, 0)
		cancel()
		ss.s.cfg.logger.Debug("remote: job not delivered; released", "job", j.ID, "cause", cause, "err", err)
	}
}

// errReplyTooLong means a reply does not fit in one frame of a client
// whose version cannot take it in several.
var errReplyTooLong = fmt.Errorf("%w: remote: the reply does not fit in one frame, and the client's version cannot take it in several", errors.ErrUnsupported)

// send sends one reply: h, the reply's header and result, in one frame
// or, when it is longer than the client's frames, as a long reply (the
// header codeLong and h's length, then h in frames); then body, if any,
// in frames. It returns errReplyTooLong, having sent nothing, if h does
// not fit and the client cannot take a long reply. Any other failure
// means the reply stream is broken, or cut inside a reply so that the
// client cannot tell where the next one starts: the session ends, so
// that the client learns it at once instead of waiting for the reply.
func (ss *session) send(ctx context.Context, h, body []byte) error {
	ss.outMu.Lock()
	defer ss.outMu.Unlock()
	chunk := min(chunkSize, ss.maxFrame)
	if len(h) > ss.maxFrame {
		if ss.version < version {
			return errReplyTooLong
		}
		id, _ := binary.Uvarint(h)
		long := binary.AppendUvarint(appendHeader(nil, id, codeLong), uint64(len(h)))
		if err := ss.write(ctx, long); err != nil {
			return err
		}
		if err := ss.writeChunks(ctx, h, chunk); err != nil {
			return err
		}
	} else if err := ss.write(ctx, h); err != nil {
		return err
	}
	return ss.writeChunks(ctx, body, chunk)
}

// writeChunks writes p in frames of at most chunk bytes.
func (ss *session) writeChunks(ctx context.Context, p []byte, chunk int) error {
	for len(p) > 0 {
		n := min(len(p), chunk)
		if err := ss.write(ctx, p[:n]); err != nil {
			return err
		}
		p = p[n:]
	}
	return nil
}

// write writes one frame of a reply; a failure ends the session.
func (ss *session) write(ctx context.Context, p []byte) error {
	ss.writing.Store(time.Now().UnixNano())
	err := ss.out.WriteFrame(ctx, p)
	ss.writing.Store(0)
	if err != nil {
		ss.s.cfg.logger.Debug("remote: reply not sent; ending the session", "err", err)
		ss.stop(stopClient)
		return err
	}
	return nil
}

// startWatch starts checking, every quarter of the reply timeout, that
// the client takes the frames written to it: a session whose client has
// taken none for the reply timeout is ended, which frees the replies it
// held and its other calls' share of the budgets.
func (ss *session) startWatch() {
	every := max(ss.s.cfg.replyTimeout/4, time.Millisecond)
	ss.watchMu.Lock()
	ss.watch = time.AfterFunc(every, func() { ss.checkWrites(every) })
	ss.watchMu.Unlock()
}

// stopWatch stops the checks.
func (ss *session) stopWatch() {
	ss.watchMu.Lock()
	ss.watch.Stop()
	ss.watch = nil
	ss.watchMu.Unlock()
}

// checkWrites ends the session if the frame being written has waited
// for the client for the reply timeout, and checks again after every
// otherwise.
func (ss *session) checkWrites(every time.Duration) {
	if at := ss.writing.Load(); at != 0 && time.Since(time.Unix(0, at)) >= ss.s.cfg.replyTimeout {
		ss.s.warn("remote: replies not taken; ending the session", "peer", ss.peer, "timeout", ss.s.cfg.replyTimeout)
		ss.stop(stopClient)
		return
	}
	ss.watchMu.Lock()
	if ss.watch != nil {
		ss.watch.Reset(every)
	}
	ss.watchMu.Unlock()
}
