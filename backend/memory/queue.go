package memory

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/beanspike/beanspike"
)

// snapshot is what a call returns of a job, taken under the store lock so
// that the body can be decoded and copied after it is released.
type snapshot struct {
	id         uint64
	tube       string
	body       string
	compressed bool
	pri        uint32
	reserves   uint32
	ttr        int64
}

func snap(j *job) snapshot {
	return snapshot{
		id:         j.id,
		tube:       j.tube.name,
		body:       j.body,
		compressed: j.flags&flagCompressed != 0,
		pri:        j.pri,
		reserves:   j.reserves,
		ttr:        j.ttr,
	}
}

// toJob builds the caller's copy of a job.
func (s *store) toJob(sn snapshot) (*beanspike.Job, error) {
	var body []byte
	if sn.compressed {
		b, err := s.decode(sn.body)
		if err != nil {
			return nil, fmt.Errorf("memory: job %d: stored body does not decode: %w", sn.id, err)
		}
		body = b
	} else {
		body = []byte(sn.body)
	}
	return &beanspike.Job{
		ID:       beanspike.ID(sn.id),
		Tube:     sn.tube,
		Body:     body,
		Priority: sn.pri,
		TTR:      time.Duration(sn.ttr),
		Reserves: sn.reserves,
	}, nil
}

func (s *store) toJobs(got []snapshot) ([]*beanspike.Job, error) {
	jobs := make([]*beanspike.Job, len(got))
	for i, sn := range got {
		j, err := s.toJob(sn)
		if err != nil {
			return nil, err
		}
		jobs[i] = j
	}
	return jobs, nil
}

func errClosed() error { return beanspike.ErrClosed }

func errNotFound(id beanspike.ID) error {
	return fmt.Errorf("%w: job %d", beanspike.ErrNotFound, id)
}

func errNotReserved(id beanspike.ID) error {
	return fmt.Errorf("%w: job %d", beanspike.ErrNotReserved, id)
}

func errNoTube(name string) error {
	return fmt.Errorf("%w: no tube %q", beanspike.ErrNotFound, name)
}

// stored is a body prepared for storage, outside the store lock.
type stored struct {
	body        string
	compressed  bool
	askCompress bool
}

// put stores a new job; the caller holds the lock and has validated
// everything.
func (s *store) put(name string, b stored, o *beanspike.PutOptions, now int64) beanspike.ID {
	t := s.listedTube(name)
	s.lastID++
	j := &job{
		id:      s.lastID,
		tube:    t,
		body:    b.body,
		created: now,
		ttr:     int64(o.TTR),
		delay:   int64(o.Delay),
		pri:     o.Priority,
		hidx:    -1,
	}
	if b.compressed {
		j.flags |= flagCompressed
		t.compressed++
	} else if b.askCompress {
		t.skipped++
	}
	t.total++
	s.jobs.add(j)
	if o.Delay > 0 {
		s.toDelayed(j, after(now, o.Delay))
	} else {
		s.toReady(j)
	}
	return beanspike.ID(j.id)
}

// Put adds a job to tube; see [beanspike.Queue.Put].
func (q *Queue) Put(ctx context.Context, tube string, body []byte, opts ...beanspike.PutOption) (beanspike.ID, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	if err := beanspike.ValidateTube(tube); err != nil {
		return 0, err
	}
	o, err := beanspike.NewPutOptions(opts...)
	if err != nil {
		return 0, err
	}
	s := q.s
	if err := beanspike.ValidateBody(len(body), s.maxBody); err != nil {
		return 0, err
	}
	b, err := s.prepare(body, o.Compress)
	if err != nil {
		return 0, err
	}
	now := s.lock()
	if q.closed {
		s.unlock()
		return 0, errClosed()
	}
	id := s.put(tube, b, &o, now)
	s.unlock()
	return id, nil
}

// PutBatch puts every request and returns their IDs in order; see
// [beanspike.Batcher.PutBatch]. All requests are validated first: if any
// is invalid, nothing is put. The batch is put atomically.
func (q *Queue) PutBatch(ctx context.Context, reqs []beanspike.PutRequest) ([]beanspike.ID, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	s := q.s
	opts := make([]beanspike.PutOptions, len(reqs))
	for i, r := range reqs {
		if err := beanspike.ValidateTube(r.Tube); err != nil {
			return nil, fmt.Errorf("request %d: %w", i, err)
		}
		o, err := beanspike.NewPutOptions(r.Options...)
		if err != nil {
			return nil, fmt.Errorf("request %d: %w", i, err)
		}
		if err := beanspike.ValidateBody(len(r.Body), s.maxBody); err != nil {
			return nil, fmt.Errorf("request %d: %w", i, err)
		}
		opts[i] = o
	}
	bodies := make([]stored, len(reqs))
	for i, r := range reqs {
		b, err := s.prepare(r.Body, opts[i].Compress)
		if err != nil {
			return nil, fmt.Errorf("request %d: %w", i, err)
		}
		bodies[i] = b
	}
	ids := make([]beanspike.ID, len(reqs))
	now := s.lock()
	if q.closed {
		s.unlock()
		return nil, errClosed()
	}
	for i, r := range reqs {
		ids[i] = s.put(r.Tube, bodies[i], &opts[i], now)
	}
	s.unlock()
	return ids, nil
}

// Reserve reserves the most urgent ready job of tubes; see
// [beanspike.Queue.Reserve].
func (q *Queue) Reserve(ctx context.Context, tubes ...string) (*beanspike.Job, error) {
	var buf [1]snapshot
	got, err := q.reserve(ctx, 1, tubes, buf[:0])
	if err != nil {
		return nil, err
	}
	return q.s.toJob(got[0])
}

// ReserveBatch blocks as Reserve does until at least one job is ready,
// then reserves up to max ready jobs; see [beanspike.Batcher.ReserveBatch].
func (q *Queue) ReserveBatch(ctx context.Context, max int, tubes ...string) ([]*beanspike.Job, error) {
	if max <= 0 {
		return nil, fmt.Errorf("%w: batch size %d is not positive", beanspike.ErrInvalidArgument, max)
	}
	got, err := q.reserve(ctx, max, tubes, nil)
	if err != nil {
		return nil, err
	}
	return q.s.toJobs(got)
}

// reserve reserves up to max jobs of tubes, blocking until there is at
// least one, and appends their snapshots to dst.
func (q *Queue) reserve(ctx context.Context, max int, tubes []string, dst []snapshot) ([]snapshot, error) {
	names := tubes
	if len(tubes) == 1 {
		if err := beanspike.ValidateTube(tubes[0]); err != nil {
			return nil, err
		}
	} else {
		var err error
		if names, err = beanspike.NormalizeTubes(tubes); err != nil {
			return nil, err
		}
	}
	s := q.s
	now := s.lock()
	if q.closed {
		s.unlock()
		return nil, errClosed()
	}
	var buf [4]*tube
	ts := buf[:0]
	for _, n := range names {
		if t := s.tubes[n]; t != nil {
			ts = append(ts, t)
		}
	}
	if got := s.reserveFrom(q, ts, max, now, dst); len(got) > 0 {
		s.unlock()
		return got, nil
	}
	if err := ctx.Err(); err != nil {
		s.unlock()
		return nil, err
	}
	w := &waiter{c: q, max: max, done: make(chan struct{}), tubes: make([]*tube, len(names))}
	for i, n := range names {
		t := s.tubes[n]
		if t == nil {
			t = newTube(n)
			s.tubes[n] = t
		}
		w.tubes[i] = t
	}
	s.enqueue(w)
	s.unlock()

	select {
	case <-w.done:
	case <-ctx.Done():
		s.lock()
		if !w.served && w.err == nil {
			s.dequeue(w)
			s.unlock()
			return nil, ctx.Err()
		}
		// Served at the same moment: keep the jobs rather than lose them.
		s.unlock()
	}
	if w.err != nil {
		return nil, w.err
	}
	return w.got, nil
}

// lockJob makes the checks that every call about one job begins with —
// ctx, the ID, a closed client, a job that does not exist — then those of
// check, if not nil, under the store lock. It returns the job and the
// store's time with the lock held, or an error without it.
func (q *Queue) lockJob(ctx context.Context, id beanspike.ID, check func(*job) error) (*job, int64, error) {
	if err := ctx.Err(); err != nil {
		return nil, 0, err
	}
	if err := beanspike.ValidateID(id); err != nil {
		return nil, 0, err
	}
	s := q.s
	now := s.lock()
	var err error
	j := s.jobs.get(uint64(id))
	switch {
	case q.closed:
		err = errClosed()
	case j == nil:
		err = errNotFound(id)
	case check != nil:
		err = check(j)
	}
	if err != nil {
		s.unlock()
		return nil, 0, err
	}
	return j, now, nil
}

// holds is the check of the calls that only the holder of a reservation
// may make.
func (q *Queue) holds(j *job) error {
	if j.state != beanspike.Reserved || j.owner != q {
		return errNotReserved(beanspike.ID(j.id))
	}
	return nil
}

// lockTube makes the checks that every call about a tube begins with —
// ctx, the name, a closed client — and returns the store's time with the
// store lock held, or an error without it.
func (q *Queue) lockTube(ctx context.Context, tube string) (int64, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	if err := beanspike.ValidateTube(tube); err != nil {
		return 0, err
	}
	now := q.s.lock()
	if q.closed {
		q.s.unlock()
		return 0, errClosed()
	}
	return now, nil
}

// ReserveJob reserves the job id if it is ready, delayed or buried; see
// [beanspike.Queue.ReserveJob].
func (q *Queue) ReserveJob(ctx context.Context, id beanspike.ID) (*beanspike.Job, error) {
	j, now, err := q.lockJob(ctx, id, func(j *job) error {
		if j.state == beanspike.Reserved {
			return fmt.Errorf("%w: job %d is reserved", beanspike.ErrNotFound, id)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	s := q.s
	s.take(j)
	s.toReserved(j, q, now)
	sn := snap(j)
	s.unlock()
	return s.toJob(sn)
}

// Delete removes a job reserved by this client, or one that is ready,
// delayed or buried; see [beanspike.Queue.Delete].
func (q *Queue) Delete(ctx context.Context, id beanspike.ID) error {
	j, _, err := q.lockJob(ctx, id, func(j *job) error {
		if j.state == beanspike.Reserved {
			return q.holds(j)
		}
		return nil
	})
	if err != nil {
		return err
	}
	s := q.s
	j.tube.deletes++
	s.remove(j)
	s.unlock()
	return nil
}

// Release returns a job reserved by this client to ready, or to delayed
// when delay > 0; see [beanspike.Queue.Release].
func (q *Queue) Release(ctx context.Context, id beanspike.ID, priority uint32, delay time.Duration) error {
	if err := beanspike.ValidateDelay(delay); err != nil {
		return err
	}
	j, now, err := q.lockJob(ctx, id, q.holds)
	if err != nil {
		return err
	}
	s := q.s
	s.take(j)
	j.pri = priority
	j.delay = int64(delay)
	j.x().releases++
	if delay > 0 {
		s.toDelayed(j, after(now, delay))
	} else {
		s.toReady(j)
	}
	s.unlock()
	return nil
}

// Bury moves a job reserved by this client to buried; see
// [beanspike.Queue.Bury].
func (q *Queue) Bury(ctx context.Context, id beanspike.ID, priority uint32, reason string) error {
	j, _, err := q.lockJob(ctx, id, q.holds)
	if err != nil {
		return err
	}
	s := q.s
	s.take(j)
	j.pri = priority
	x := j.x()
	x.buries++
	x.reason = reason
	s.toBuried(j)
	s.unlock()
	return nil
}

// Touch extends this client's reservation of a job by its TTR from now;
// see [beanspike.Queue.Touch].
func (q *Queue) Touch(ctx context.Context, id beanspike.ID) error {
	j, now, err := q.lockJob(ctx, id, q.holds)
	if err != nil {
		return err
	}
	s := q.s
	j.key = after(now, time.Duration(j.ttr))
	j.tube.reserved.fix(j)
	s.fixEvents(j.tube)
	s.unlock()
	return nil
}

// Kick moves up to n buried jobs of tube to ready, or, when it has none,
// up to n delayed jobs; see [beanspike.Queue.Kick].
func (q *Queue) Kick(ctx context.Context, tube string, n int) (int, error) {
	if n < 0 {
		return 0, fmt.Errorf("%w: kick count %d is negative", beanspike.ErrInvalidArgument, n)
	}
	if _, err := q.lockTube(ctx, tube); err != nil {
		return 0, err
	}
	s := q.s
	t := s.tubes[tube]
	kicked := 0
	if t != nil {
		h := &t.buried
		if h.len() == 0 {
			h = &t.delayed
		}
		for ; kicked < n && h.len() > 0; kicked++ {
			j := h.min()
			s.take(j)
			j.x().kicks++
			s.toReady(j)
		}
	}
	s.unlock()
	return kicked, nil
}

// KickJob moves one buried or delayed job to ready; see
// [beanspike.Queue.KickJob].
func (q *Queue) KickJob(ctx context.Context, id beanspike.ID) error {
	j, _, err := q.lockJob(ctx, id, func(j *job) error {
		if j.state != beanspike.Buried && j.state != beanspike.Delayed {
			return fmt.Errorf("%w: job %d is %s, neither buried nor delayed", beanspike.ErrNotFound, id, j.state)
		}
		return nil
	})
	if err != nil {
		return err
	}
	s := q.s
	s.take(j)
	j.x().kicks++
	s.toReady(j)
	s.unlock()
	return nil
}

// Peek returns a job in any state without reserving it; see
// [beanspike.Queue.Peek].
func (q *Queue) Peek(ctx context.Context, id beanspike.ID) (*beanspike.Job, error) {
	j, _, err := q.lockJob(ctx, id, nil)
	if err != nil {
		return nil, err
	}
	s := q.s
	sn := snap(j)
	s.unlock()
	return s.toJob(sn)
}

// PeekReady returns the job Reserve would take next from tube, ignoring
// a pause; see [beanspike.Queue.PeekReady].
func (q *Queue) PeekReady(ctx context.Context, tube string) (*beanspike.Job, error) {
	return q.peek(ctx, tube, beanspike.Ready)
}

// PeekDelayed returns the delayed job of tube due soonest; see
// [beanspike.Queue.PeekDelayed].
func (q *Queue) PeekDelayed(ctx context.Context, tube string) (*beanspike.Job, error) {
	return q.peek(ctx, tube, beanspike.Delayed)
}

// PeekBuried returns the job of tube buried longest ago; see
// [beanspike.Queue.PeekBuried].
func (q *Queue) PeekBuried(ctx context.Context, tube string) (*beanspike.Job, error) {
	return q.peek(ctx, tube, beanspike.Buried)
}

func (q *Queue) peek(ctx context.Context, tube string, state beanspike.State) (*beanspike.Job, error) {
	if _, err := q.lockTube(ctx, tube); err != nil {
		return nil, err
	}
	s := q.s
	var j *job
	if t := s.tubes[tube]; t != nil {
		switch state {
		case beanspike.Ready:
			j = t.ready.min()
		case beanspike.Delayed:
			j = t.delayed.min()
		case beanspike.Buried:
			j = t.buried.min()
		}
	}
	if j == nil {
		s.unlock()
		return nil, fmt.Errorf("%w: no %s job in tube %q", beanspike.ErrNotFound, state, tube)
	}
	sn := snap(j)
	s.unlock()
	return s.toJob(sn)
}

// StatsJob describes a job; see [beanspike.Queue.StatsJob].
func (q *Queue) StatsJob(ctx context.Context, id beanspike.ID) (*beanspike.JobStats, error) {
	j, now, err := q.lockJob(ctx, id, nil)
	if err != nil {
		return nil, err
	}
	s := q.s
	st := &beanspike.JobStats{
		ID:         id,
		Tube:       j.tube.name,
		State:      j.state,
		Priority:   j.pri,
		Age:        time.Duration(now - j.created),
		Delay:      time.Duration(j.delay),
		TTR:        time.Duration(j.ttr),
		Reserves:   j.reserves,
		Size:       len(j.body),
		StoredSize: len(j.body),
		Compressed: j.flags&flagCompressed != 0,
	}
	if j.state == beanspike.Reserved || j.state == beanspike.Delayed {
		st.TimeLeft = max(time.Duration(j.key-now), 0)
	}
	if x := j.ext; x != nil {
		st.Timeouts, st.Releases, st.Buries, st.Kicks = x.timeouts, x.releases, x.buries, x.kicks
		st.BuryReason = x.reason
	}
	body := j.body
	s.unlock()
	if st.Compressed {
		n, err := decodedLen(body)
		if err != nil {
			return nil, fmt.Errorf("memory: job %d: stored body does not decode: %w", id, err)
		}
		st.Size = n
	}
	return st, nil
}

// StatsTube describes a tube; see [beanspike.Queue.StatsTube].
func (q *Queue) StatsTube(ctx context.Context, tube string) (*beanspike.TubeStats, error) {
	now, err := q.lockTube(ctx, tube)
	if err != nil {
		return nil, err
	}
	s := q.s
	defer s.unlock()
	t := s.tubes[tube]
	if t == nil || !t.listed {
		return nil, errNoTube(tube)
	}
	st := &beanspike.TubeStats{
		Name:               t.name,
		Urgent:             t.urgent,
		Ready:              t.ready.len(),
		Reserved:           t.reserved.len(),
		Delayed:            t.delayed.len(),
		Buried:             t.buried.len(),
		TotalJobs:          t.total,
		Waiting:            t.nwait,
		Deletes:            t.deletes,
		Pauses:             t.pauses,
		Pause:              time.Duration(t.pause),
		Compressed:         t.compressed,
		CompressionSkipped: t.skipped,
	}
	if t.paused() {
		st.PauseLeft = time.Duration(t.pauseEnd - now)
	}
	return st, nil
}

// Tubes lists the store's tubes in lexical order; see
// [beanspike.Queue.Tubes].
func (q *Queue) Tubes(ctx context.Context) ([]string, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	s := q.s
	s.lock()
	if q.closed {
		s.unlock()
		return nil, errClosed()
	}
	names := make([]string, 0, len(s.tubes))
	for name, t := range s.tubes {
		if t.listed {
			names = append(names, name)
		}
	}
	s.unlock()
	slices.Sort(names)
	return names, nil
}

// PauseTube stops Reserve from taking jobs of tube for d, or ends a pause
// when d == 0; see [beanspike.Queue.PauseTube].
func (q *Queue) PauseTube(ctx context.Context, tube string, d time.Duration) error {
	if err := beanspike.ValidateDelay(d); err != nil {
		return err
	}
	now, err := q.lockTube(ctx, tube)
	if err != nil {
		return err
	}
	s := q.s
	t := s.listedTube(tube)
	t.pauses++
	if d == 0 {
		t.pauseEnd = 0
		s.wake(t)
	} else {
		t.pause = int64(d)
		t.pauseEnd = after(now, d)
	}
	s.fixEvents(t)
	s.unlock()
	return nil
}

// DeleteTube deletes tube and all its jobs, whatever their state; see
// [beanspike.Queue.DeleteTube]. Reserve calls blocked on the tube keep
// waiting for jobs put into it later.
func (q *Queue) DeleteTube(ctx context.Context, tube string) (int, error) {
	if _, err := q.lockTube(ctx, tube); err != nil {
		return 0, err
	}
	s := q.s
	t := s.tubes[tube]
	if t == nil || !t.listed {
		s.unlock()
		return 0, errNoTube(tube)
	}
	n := 0
	for _, h := range []*jobHeap{&t.ready, &t.delayed, &t.reserved, &t.buried} {
		for _, j := range h.jobs {
			if j.owner != nil {
				delete(j.owner.held, j)
				j.owner = nil
			}
			s.jobs.remove(j)
			n++
		}
		h.jobs = nil
	}
	if t.evIdx >= 0 {
		s.events.remove(t)
	}
	// Start afresh; only the waiters stay.
	t.urgent = 0
	t.total, t.deletes, t.pauses, t.compressed, t.skipped = 0, 0, 0, 0, 0
	t.pause, t.pauseEnd, t.next = 0, 0, never
	t.listed = false
	s.forget(t)
	s.unlock()
	return n, nil
}
