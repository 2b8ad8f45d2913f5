package beanstalk

import (
	"bufio"
	"context"
	"errors"
	"net"
	"os"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/beanspike/beanspike"
)

// Buffer sizes of a connection. A command line never needs more than
// lineMax bytes of the read buffer; a put body is read into its own slice
// of exactly its size, bounded by the max job size.
const (
	readBufSize  = 4096
	writeBufSize = 4096
	// discardChunk bounds each step of discarding a refused put body.
	discardChunk = 64 << 10
	// keepBufSize bounds the reply buffer a connection keeps between
	// commands: a larger one, made for a long list or stats document,
	// is left to the garbage collector.
	keepBufSize = 64 << 10
)

// conn is one client connection and its state: the tube it uses, the
// tubes it watches and the reservations it holds, with their deadlines.
type conn struct {
	srv  *Server
	nc   net.Conn
	r    *bufio.Reader
	w    *bufio.Writer
	q    beanspike.Queue
	poll context.Context // already done: Reserve only polls

	// Owned by the connection's goroutine.
	use      string
	watch    []string
	producer bool
	worker   bool
	armed    bool // a read deadline may be set on nc
	line     []byte

	// mu guards reserved, which stats reads from other goroutines.
	mu       sync.Mutex
	reserved map[beanspike.ID]reservation
}

// reservation is what the connection knows of a job it reserved: when the
// reservation lapses, and the job's TTR, to compute the next deadline on
// touch.
type reservation struct {
	deadline time.Time
	ttr      time.Duration
}

func newConn(s *Server, nc net.Conn, q beanspike.Queue) *conn {
	poll, cancel := context.WithCancel(context.Background())
	cancel()
	return &conn{
		srv:      s,
		nc:       nc,
		r:        bufio.NewReaderSize(nc, readBufSize),
		w:        bufio.NewWriterSize(nc, writeBufSize),
		q:        q,
		poll:     poll,
		use:      beanspike.DefaultTube,
		watch:    []string{beanspike.DefaultTube},
		reserved: make(map[beanspike.ID]reservation),
		line:     make([]byte, 0, 64),
	}
}

// serve runs the connection until it ends.
func (c *conn) serve() {
	defer c.close()
	for {
		line, n, err := c.readLine()
		if err != nil {
			return
		}
		cmd := parseCommand(line, int64(c.srv.cfg.maxJobSize), c.srv.cfg.deleteTube)
		c.r.Discard(n) // cannot fail: the line is buffered
		if cmd.counted {
			c.srv.cmdCounts[cmd.op].Add(1)
		}
		if !c.exec(&cmd) {
			return
		}
		// Each reply is sent before the next command runs, as beanstalkd
		// sends it: a client that has gone is noticed at the first reply
		// that cannot be written, and the commands it sent after that
		// one are not run.
		if err := c.w.Flush(); err != nil {
			return
		}
		if c.srv.shuttingDown.Load() && c.r.Buffered() == 0 && !c.holding(time.Now()) {
			return
		}
	}
}

// close ends the connection: it sends the replies still buffered, closes
// the client (its reservations return to ready) and the socket.
func (c *conn) close() {
	c.w.Flush()
	if err := c.q.Close(); err != nil {
		c.srv.cfg.logger.Error("beanstalk: close client", "err", err)
	}
	c.nc.Close()
	c.srv.forget(c)
}

// interrupt wakes the connection's goroutine from a blocked read, so that
// it notices a shutdown.
func (c *conn) interrupt() {
	c.nc.SetReadDeadline(time.Now())
}

// readLine returns the next command line, without its CRLF, and its length
// with CRLF; the line stays valid until the reader is used again. Lines
// longer than lineMax are discarded up to their CRLF and answered
// BAD_FORMAT, as beanstalkd does.
func (c *conn) readLine() ([]byte, int, error) {
	discarding := false
	for {
		buf, _ := c.r.Peek(c.r.Buffered())
		n, overflow := scanLine(buf)
		switch {
		case n > 0 && discarding:
			c.r.Discard(n)
			c.reply(msgBadFormat)
			discarding = false
			continue
		case n > 0:
			return buf[:n-2], n, nil
		case overflow:
			c.r.Discard(lineMax)
			discarding = true
			continue
		}
		if err := c.fill(len(buf) + 1); err != nil {
			return nil, 0, err
		}
	}
}

// fill blocks until n bytes are buffered, after sending the replies
// buffered so far.
func (c *conn) fill(n int) error {
	for {
		if err := c.prepareRead(); err != nil {
			return err
		}
		_, err := c.r.Peek(n)
		if err == nil {
			return nil
		}
		if !c.retry(err) {
			return err
		}
	}
}

// readFull reads exactly len(p) bytes.
func (c *conn) readFull(p []byte) error {
	for len(p) > 0 {
		if c.r.Buffered() == 0 {
			if err := c.prepareRead(); err != nil {
				return err
			}
		}
		n, err := c.r.Read(p)
		p = p[n:]
		if err != nil && !c.retry(err) {
			return err
		}
	}
	return nil
}

// discard reads and drops n bytes. Like readFull, it reads from the
// socket only after prepareRead, so that the deadline a finished wait
// left behind is never in force.
func (c *conn) discard(n int64) error {
	for n > 0 {
		step := int64(c.r.Buffered())
		if step == 0 {
			if err := c.prepareRead(); err != nil {
				return err
			}
			step = discardChunk
		}
		d, err := c.r.Discard(int(min(n, step)))
		n -= int64(d)
		if err != nil && !c.retry(err) {
			return err
		}
	}
	return nil
}

// prepareRead is called before a read that may block: it sends the
// buffered replies and sets the read deadline.
func (c *conn) prepareRead() error {
	if err := c.w.Flush(); err != nil {
		return err
	}
	c.arm()
	return nil
}

// arm sets the read deadline: while the server shuts down, now for a
// connection without reservations and the soonest reservation deadline
// otherwise; else the idle timeout, if any.
func (c *conn) arm() {
	for {
		shutting := c.srv.shuttingDown.Load()
		var d time.Time
		switch {
		case shutting:
			now := time.Now()
			d = now
			if dl, ok := c.soonest(now); ok {
				d = dl
			}
		case c.srv.cfg.idleTimeout > 0:
			d = time.Now().Add(c.srv.cfg.idleTimeout)
		case !c.armed:
			return
		}
		c.nc.SetReadDeadline(d)
		c.armed = !d.IsZero()
		// Shutdown sets its flag before it interrupts: if it began after
		// the load above, its deadline may have been overwritten.
		if shutting || !c.srv.shuttingDown.Load() {
			return
		}
	}
}

// retry decides, after a failed read, whether to read again: only when
// the read was interrupted by a shutdown and the connection still holds
// reservations, which it may still delete, release or bury.
func (c *conn) retry(err error) bool {
	if !errors.Is(err, os.ErrDeadlineExceeded) || !c.srv.shuttingDown.Load() {
		return false
	}
	return c.holding(time.Now())
}

// exec runs one parsed command. It returns false when the connection must
// close.
func (c *conn) exec(cmd *command) bool {
	if cmd.errReply != "" {
		if cmd.skip > 0 {
			if err := c.discard(cmd.skip); err != nil {
				return false
			}
		}
		c.reply(cmd.errReply)
		return true
	}
	ctx := c.srv.ctx
	id := beanspike.ID(cmd.id)
	switch cmd.op {
	case opPut:
		return c.put(cmd)

	case opReserve:
		return c.reserve(-1)

	case opReserveTimeout:
		return c.reserve(cmd.timeout)

	case opReserveJob:
		if id == 0 {
			break
		}
		j, err := c.q.ReserveJob(ctx, id)
		if err != nil {
			return c.fail(err)
		}
		c.setWorker()
		c.track(j)
		c.replyJob("RESERVED ", j)
		return true

	case opDelete:
		if id == 0 {
			break
		}
		err := c.q.Delete(ctx, id)
		c.settle(id, err)
		return c.answer(err, msgDeleted)

	case opRelease:
		if id == 0 {
			break
		}
		err := c.q.Release(ctx, id, cmd.pri, seconds(cmd.delay))
		c.settle(id, err)
		return c.answer(err, msgReleased)

	case opBury:
		if id == 0 {
			break
		}
		err := c.q.Bury(ctx, id, cmd.pri, "")
		c.settle(id, err)
		return c.answer(err, msgBuried)

	case opTouch:
		if id == 0 {
			break
		}
		if err := c.q.Touch(ctx, id); err != nil {
			c.settle(id, err)
			return c.fail(err)
		}
		c.touched(ctx, id)
		c.reply(msgTouched)
		return true

	case opPeekJob:
		if id == 0 {
			break
		}
		j, err := c.q.Peek(ctx, id)
		if err != nil {
			return c.fail(err)
		}
		c.replyJob("FOUND ", j)
		return true

	case opPeekReady, opPeekDelayed, opPeekBuried:
		peek := c.q.PeekReady
		switch cmd.op {
		case opPeekDelayed:
			peek = c.q.PeekDelayed
		case opPeekBuried:
			peek = c.q.PeekBuried
		}
		j, err := peek(ctx, c.use)
		if err != nil {
			return c.fail(err)
		}
		c.replyJob("FOUND ", j)
		return true

	case opKick:
		n, err := c.q.Kick(ctx, c.use, int(cmd.bound))
		if err != nil && !errors.Is(err, beanspike.ErrNotFound) {
			return c.fail(err)
		}
		c.replyUint("KICKED ", uint64(n))
		return true

	case opKickJob:
		if id == 0 {
			break
		}
		return c.answer(c.q.KickJob(ctx, id), msgKicked)

	case opStatsJob:
		if id == 0 {
			break
		}
		st, err := c.q.StatsJob(ctx, id)
		if err != nil {
			return c.fail(err)
		}
		c.replyData(appendJobStats(c.line[:0], st))
		return true

	case opStatsTube:
		refs, referenced := c.srv.tubeRefsOf(cmd.tube)
		st, err := c.q.StatsTube(ctx, cmd.tube)
		switch {
		case errors.Is(err, beanspike.ErrNotFound) && referenced:
			st = &beanspike.TubeStats{Name: cmd.tube}
		case err != nil:
			return c.fail(err)
		}
		c.replyData(appendTubeStats(c.line[:0], st, refs))
		return true

	case opStats:
		data, err := c.srv.appendStats(ctx, c.line[:0], c.q)
		if err != nil {
			return c.fail(err)
		}
		c.replyData(data)
		return true

	case opListTubes:
		names, err := c.srv.listTubes(ctx, c.q)
		if err != nil {
			return c.fail(err)
		}
		c.replyData(appendList(c.line[:0], names))
		return true

	case opListTubeUsed:
		c.replyString("USING ", c.use)
		return true

	case opListTubesWatched:
		c.replyData(appendList(c.line[:0], c.watch))
		return true

	case opUse:
		if cmd.tube != c.use {
			c.srv.mu.Lock()
			c.srv.refLocked(cmd.tube, 1, 0)
			c.srv.refLocked(c.use, -1, 0)
			c.srv.mu.Unlock()
			c.use = cmd.tube
		}
		c.replyString("USING ", c.use)
		return true

	case opWatch:
		if !contains(c.watch, cmd.tube) {
			c.srv.mu.Lock()
			c.srv.refLocked(cmd.tube, 0, 1)
			c.srv.mu.Unlock()
			c.watch = append(c.watch, cmd.tube)
		}
		c.replyUint("WATCHING ", uint64(len(c.watch)))
		return true

	case opIgnore:
		for i, t := range c.watch {
			if t != cmd.tube {
				continue
			}
			if len(c.watch) < 2 {
				c.reply(msgNotIgnored)
				return true
			}
			// Move the last tube into the gap, as beanstalkd does: it
			// shows in list-tubes-watched.
			last := len(c.watch) - 1
			c.watch[i] = c.watch[last]
			c.watch = c.watch[:last]
			c.srv.mu.Lock()
			c.srv.refLocked(cmd.tube, 0, -1)
			c.srv.mu.Unlock()
			break
		}
		c.replyUint("WATCHING ", uint64(len(c.watch)))
		return true

	case opPauseTube:
		if _, referenced := c.srv.tubeRefsOf(cmd.tube); !referenced {
			if _, err := c.q.StatsTube(ctx, cmd.tube); err != nil {
				return c.fail(err)
			}
		}
		return c.answer(c.q.PauseTube(ctx, cmd.tube, seconds(cmd.delay)), msgPaused)

	case opDeleteTube:
		n, err := c.q.DeleteTube(ctx, cmd.tube)
		if err != nil {
			return c.fail(err)
		}
		c.replyUint("DELETED ", uint64(n))
		return true

	case opQuit:
		return false
	}
	// Job ID 0 names no job.
	c.reply(msgNotFound)
	return true
}

// put reads a put's body and stores the job.
func (c *conn) put(cmd *command) bool {
	if !c.producer {
		c.producer = true
		c.srv.setRole(true)
	}
	size := int(cmd.size)
	body, err := c.readBody(size + 2)
	if err != nil {
		return false
	}
	if body[size] != '\r' || body[size+1] != '\n' {
		c.reply(msgExpectedCRLF)
		return true
	}
	if c.srv.draining.Load() {
		c.reply(msgDraining)
		return true
	}
	id, err := c.q.Put(c.srv.ctx, c.use, body[:size:size],
		beanspike.WithPriority(cmd.pri),
		beanspike.WithDelay(seconds(cmd.delay)),
		beanspike.WithTTR(seconds(max(cmd.ttr, 1))))
	if err != nil {
		return c.fail(err)
	}
	c.replyUint("INSERTED ", uint64(id))
	return true
}

// bodyChunk is what a put body's buffer starts at, and how much more a
// body of unknown good faith gets before as much has arrived.
const bodyChunk = 64 << 10

// readBody reads a put body of n bytes (with its CRLF). Its buffer grows
// as the bytes arrive, so that a client that announces a large body and
// sends little of it makes the server hold only what it sent. A large
// body abandoned half-way is given back to the operating system at once,
// at most every freeEvery across the server.
func (c *conn) readBody(n int) ([]byte, error) {
	if n <= bodyChunk {
		body := make([]byte, n)
		return body, c.readFull(body)
	}
	body := make([]byte, 0, bodyChunk)
	for len(body) < n {
		if len(body) == cap(body) {
			body = slices.Grow(body, min(n, 2*cap(body))-len(body))
		}
		m := min(cap(body), n) - len(body)
		if err := c.readFull(body[len(body) : len(body)+m]); err != nil {
			if cap(body) >= freeAbove {
				body = nil
				c.srv.freeMemory()
			}
			return nil, err
		}
		body = body[:len(body)+m]
	}
	return body, nil
}

// reserve runs reserve (timeout < 0) and reserve-with-timeout.
func (c *conn) reserve(timeout int32) bool {
	c.setWorker()
	now := time.Now()
	c.prune(now)
	j, err := c.q.Reserve(c.poll, c.watch...)
	if err == nil {
		c.track(j)
		c.replyJob("RESERVED ", j)
		return true
	}
	if !isContextErr(err) {
		return c.fail(err)
	}
	soonest, holding := c.soonest(now)
	if holding && !now.Before(soonest.Add(-safetyMargin)) {
		c.reply(msgDeadlineSoon)
		return true
	}
	if timeout == 0 || c.srv.shuttingDown.Load() {
		c.reply(msgTimedOut)
		return true
	}

	// Wait for a job, for the safety margin of the soonest reservation or
	// for the timeout, whichever comes first.
	var until time.Time
	if timeout > 0 {
		until = now.Add(seconds(uint32(timeout)))
	}
	if holding {
		if ds := soonest.Add(-safetyMargin); until.IsZero() || ds.Before(until) {
			until = ds
		}
	}
	var ctx context.Context
	var cancel context.CancelFunc
	if until.IsZero() {
		ctx, cancel = context.WithCancel(c.srv.drainCtx)
	} else {
		ctx, cancel = context.WithDeadline(c.srv.drainCtx, until)
	}
	defer cancel()
	if err := c.w.Flush(); err != nil {
		return false
	}
	var halfClosed atomic.Bool
	stop := c.watchHangup(cancel, &halfClosed)
	c.srv.setWaiting(c.watch, true)
	j, err = c.q.Reserve(ctx, c.watch...)
	c.srv.setWaiting(c.watch, false)
	stop()
	if err == nil {
		c.track(j)
		c.replyJob("RESERVED ", j)
		return true
	}
	if !isContextErr(err) {
		return c.fail(err)
	}
	if c.srv.ctx.Err() != nil {
		return false // the server is closing
	}
	if !halfClosed.Load() {
		if soonest, ok := c.soonest(time.Now()); ok && !time.Now().Before(soonest.Add(-safetyMargin)) {
			c.reply(msgDeadlineSoon)
			return true
		}
	}
	c.reply(msgTimedOut)
	return true
}

// watchHangup watches the connection while a reserve waits: if the peer
// closes its side, it sets *hungUp and cancels the wait, as beanstalkd
// answers TIMED_OUT to a half-closed connection. Input that arrives
// meanwhile stays buffered for later commands. The returned stop function
// ends the watch; the reader is the caller's again once it returns.
func (c *conn) watchHangup(cancel context.CancelFunc, hungUp *atomic.Bool) (stop func()) {
	if c.r.Buffered() >= readBufSize {
		return func() {} // nothing more can be read to notice a hangup
	}
	if c.armed {
		c.nc.SetReadDeadline(time.Time{})
		c.armed = false
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for n := c.r.Buffered() + 1; n <= readBufSize; n = c.r.Buffered() + 1 {
			if _, err := c.r.Peek(n); err != nil {
				if !errors.Is(err, os.ErrDeadlineExceeded) {
					hungUp.Store(true)
					cancel()
				}
				return
			}
		}
	}()
	return func() {
		select {
		case <-done:
			return
		default:
		}
		c.nc.SetReadDeadline(time.Now())
		<-done
		// The deadline that stopped the watch is in the past: the next
		// read must not meet it.
		c.armed = true
		c.arm()
	}
}

func (c *conn) setWorker() {
	if !c.worker {
		c.worker = true
		c.srv.setRole(false)
	}
}

// track records a reservation the connection just made.
func (c *conn) track(j *beanspike.Job) {
	c.mu.Lock()
	c.reserved[j.ID] = reservation{deadline: time.Now().Add(j.TTR), ttr: j.TTR}
	c.mu.Unlock()
}

// settle forgets a reservation after a delete, release, bury or touch
// that ended it or found it gone.
// A reservation the store no longer holds for this client has lapsed:
// it counts as a timeout, even if the record's deadline had not quite
// passed by this server's clock.
func (c *conn) settle(id beanspike.ID, err error) {
	if err != nil && !errors.Is(err, beanspike.ErrNotFound) && !errors.Is(err, beanspike.ErrNotReserved) {
		return
	}
	c.prune(time.Now())
	c.mu.Lock()
	if _, ok := c.reserved[id]; ok {
		delete(c.reserved, id)
		if errors.Is(err, beanspike.ErrNotReserved) {
			c.srv.timeouts.Add(1)
		}
	}
	c.mu.Unlock()
}

// touched restarts the deadline of a reservation after a touch.
func (c *conn) touched(ctx context.Context, id beanspike.ID) {
	now := time.Now()
	c.mu.Lock()
	r, ok := c.reserved[id]
	c.mu.Unlock()
	if !ok {
		// Our record lapsed a moment before the store's: ask for the TTR.
		st, err := c.q.StatsJob(ctx, id)
		if err != nil {
			return
		}
		r.ttr = st.TTR
	}
	r.deadline = now.Add(r.ttr)
	c.mu.Lock()
	c.reserved[id] = r
	c.mu.Unlock()
}

// prune forgets the reservations whose TTR has run out, counting them as
// timeouts.
func (c *conn) prune(now time.Time) {
	c.mu.Lock()
	for id, r := range c.reserved {
		if !now.Before(r.deadline) {
			delete(c.reserved, id)
			c.srv.timeouts.Add(1)
		}
	}
	c.mu.Unlock()
}

// soonest returns the earliest deadline of the connection's live
// reservations, after pruning the lapsed ones.
func (c *conn) soonest(now time.Time) (time.Time, bool) {
	c.prune(now)
	c.mu.Lock()
	defer c.mu.Unlock()
	var d time.Time
	for _, r := range c.reserved {
		if d.IsZero() || r.deadline.Before(d) {
			d = r.deadline
		}
	}
	return d, !d.IsZero()
}

// holding reports whether the connection holds live reservations.
func (c *conn) holding(now time.Time) bool {
	_, ok := c.soonest(now)
	return ok
}

// fail answers a command whose backend call failed. It returns false when
// the connection must close: its client is closed or the server is.
func (c *conn) fail(err error) bool {
	switch {
	case errors.Is(err, beanspike.ErrNotFound), errors.Is(err, beanspike.ErrNotReserved):
		c.reply(msgNotFound)
	case errors.Is(err, beanspike.ErrJobTooBig):
		c.reply(msgJobTooBig)
	case errors.Is(err, beanspike.ErrInvalidTube), errors.Is(err, beanspike.ErrInvalidArgument):
		c.reply(msgBadFormat)
	case errors.Is(err, beanspike.ErrUnavailable):
		c.srv.cfg.logger.Warn("beanstalk: store unavailable", "err", err)
		c.reply(msgOutOfMemory)
	case errors.Is(err, beanspike.ErrClosed), isContextErr(err):
		if c.srv.ctx.Err() == nil {
			c.srv.cfg.logger.Error("beanstalk: client failed", "err", err)
			c.reply(msgInternalError)
		}
		return false
	default:
		c.srv.cfg.logger.Error("beanstalk: backend error", "err", err)
		c.reply(msgInternalError)
	}
	return true
}

func (c *conn) reply(msg string) { c.w.WriteString(msg) }

// answer replies msg to a command whose backend call succeeded, or
// answers err as fail does. It returns false when the connection must
// close.
func (c *conn) answer(err error, msg string) bool {
	if err != nil {
		return c.fail(err)
	}
	c.reply(msg)
	return true
}

// replyUint sends a word and a number: INSERTED, KICKED, WATCHING.
func (c *conn) replyUint(word string, n uint64) {
	b := append(c.line[:0], word...)
	b = strconv.AppendUint(b, n, 10)
	b = append(b, '\r', '\n')
	c.w.Write(b)
	c.line = b[:0]
}

// replyString sends a word and a name: USING.
func (c *conn) replyString(word, name string) {
	c.w.WriteString(word)
	c.w.WriteString(name)
	c.w.WriteString("\r\n")
}

// replyJob sends RESERVED or FOUND with the job's body.
func (c *conn) replyJob(word string, j *beanspike.Job) {
	b := append(c.line[:0], word...)
	b = strconv.AppendUint(b, uint64(j.ID), 10)
	b = append(b, ' ')
	b = strconv.AppendInt(b, int64(len(j.Body)), 10)
	b = append(b, '\r', '\n')
	c.w.Write(b)
	c.w.Write(j.Body)
	c.w.WriteString("\r\n")
	c.line = b[:0]
}

// replyData sends OK with a YAML document.
func (c *conn) replyData(data []byte) {
	c.w.WriteString("OK ")
	var nb [20]byte
	c.w.Write(strconv.AppendInt(nb[:0], int64(len(data)), 10))
	c.w.WriteString("\r\n")
	c.w.Write(data)
	c.w.WriteString("\r\n")
	if cap(data) <= keepBufSize {
		c.line = data[:0]
	}
}

func seconds(s uint32) time.Duration { return time.Duration(s) * time.Second }

func isContextErr(err error) bool {
	return errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded)
}

func contains(list []string, s string) bool {
	for _, t := range list {
		if t == s {
			return true
		}
	}
	return false
}
