package metrics

import (
	"context"
	"errors"
	"time"

	"github.com/beanspike/beanspike"
)

// Wrap returns a queue that calls q and records each call. It implements
// [beanspike.Batcher] and [beanspike.BodyLimiter] when q does, and its
// As method reaches q's. Closing it closes q.
func (m *Metrics) Wrap(q beanspike.Queue) beanspike.Queue {
	w := &queue{m: m, q: q}
	b, batcher := q.(beanspike.Batcher)
	l, limiter := q.(beanspike.BodyLimiter)
	switch {
	case batcher && limiter:
		return &batchLimitQueue{batchQueue{w, b}, l}
	case batcher:
		return &batchQueue{w, b}
	case limiter:
		return &limitQueue{w, l}
	}
	return w
}

// queue is a wrapped beanspike.Queue.
type queue struct {
	m *Metrics
	q beanspike.Queue
}

var _ beanspike.Queue = (*queue)(nil)

type batchQueue struct {
	*queue
	b beanspike.Batcher
}

type limitQueue struct {
	*queue
	l beanspike.BodyLimiter
}

type batchLimitQueue struct {
	batchQueue
	l beanspike.BodyLimiter
}

var (
	_ beanspike.Batcher     = (*batchQueue)(nil)
	_ beanspike.BodyLimiter = (*limitQueue)(nil)
	_ beanspike.Batcher     = (*batchLimitQueue)(nil)
	_ beanspike.BodyLimiter = (*batchLimitQueue)(nil)
)

// MaxBodySize returns the wrapped queue's.
func (q *limitQueue) MaxBodySize() int { return q.l.MaxBodySize() }

// MaxBodySize returns the wrapped queue's.
func (q *batchLimitQueue) MaxBodySize() int { return q.l.MaxBodySize() }

// PutBatch calls the wrapped queue's and records it.
func (q *batchQueue) PutBatch(ctx context.Context, reqs []beanspike.PutRequest) ([]beanspike.ID, error) {
	start := q.m.begin()
	ids, err := q.b.PutBatch(ctx, reqs)
	q.m.done(opPutBatch, start, err)
	q.m.jobCnt[evPut].Add(float64(len(ids)))
	return ids, err
}

// ReserveBatch calls the wrapped queue's and records it.
func (q *batchQueue) ReserveBatch(ctx context.Context, max int, tubes ...string) ([]*beanspike.Job, error) {
	start := q.m.begin()
	jobs, err := q.b.ReserveBatch(ctx, max, tubes...)
	q.m.done(opReserveBatch, start, err)
	q.m.jobCnt[evReserved].Add(float64(len(jobs)))
	return jobs, err
}

// As reaches the wrapped queue's As, if it has one.
func (q *queue) As(target any) bool {
	if a, ok := q.q.(interface{ As(any) bool }); ok {
		return a.As(target)
	}
	return false
}

// Close closes the wrapped queue.
func (q *queue) Close() error { return q.q.Close() }

// Put calls the wrapped queue's Put and records it.
func (q *queue) Put(ctx context.Context, tube string, body []byte, opts ...beanspike.PutOption) (beanspike.ID, error) {
	start := q.m.begin()
	id, err := q.q.Put(ctx, tube, body, opts...)
	q.m.done(opPut, start, err)
	if err == nil {
		q.m.jobCnt[evPut].Inc()
		if len(opts) == 0 {
			return id, nil
		}
		if o, oerr := beanspike.NewPutOptions(opts...); oerr == nil && o.Compress {
			q.m.jobCnt[evCompress].Inc()
		}
	}
	return id, err
}

// Reserve calls the wrapped queue's Reserve and records it.
func (q *queue) Reserve(ctx context.Context, tubes ...string) (*beanspike.Job, error) {
	start := q.m.begin()
	j, err := q.q.Reserve(ctx, tubes...)
	q.m.done(opReserve, start, err)
	if err == nil {
		q.m.jobCnt[evReserved].Inc()
	}
	return j, err
}

// ReserveJob calls the wrapped queue's ReserveJob and records it.
func (q *queue) ReserveJob(ctx context.Context, id beanspike.ID) (*beanspike.Job, error) {
	start := q.m.begin()
	j, err := q.q.ReserveJob(ctx, id)
	q.m.done(opReserveJob, start, err)
	if err == nil {
		q.m.jobCnt[evReserved].Inc()
	}
	return j, err
}

// settled records a call that settles or touches a job: its event on
// success, a lapsed reservation on ErrNotReserved.
func (q *queue) settled(o op, ev int, start time.Time, err error) error {
	q.m.done(o, start, err)
	switch {
	case err == nil:
		q.m.jobCnt[ev].Inc()
	case errors.Is(err, beanspike.ErrNotReserved):
		q.m.lapsedC.Inc()
	}
	return err
}

// Delete calls the wrapped queue's Delete and records it.
func (q *queue) Delete(ctx context.Context, id beanspike.ID) error {
	start := q.m.begin()
	return q.settled(opDelete, evDeleted, start, q.q.Delete(ctx, id))
}

// Release calls the wrapped queue's Release and records it.
func (q *queue) Release(ctx context.Context, id beanspike.ID, priority uint32, delay time.Duration) error {
	start := q.m.begin()
	return q.settled(opRelease, evReleased, start, q.q.Release(ctx, id, priority, delay))
}

// Bury calls the wrapped queue's Bury and records it.
func (q *queue) Bury(ctx context.Context, id beanspike.ID, priority uint32, reason string) error {
	start := q.m.begin()
	return q.settled(opBury, evBuried, start, q.q.Bury(ctx, id, priority, reason))
}

// Touch calls the wrapped queue's Touch and records it.
func (q *queue) Touch(ctx context.Context, id beanspike.ID) error {
	start := q.m.begin()
	return q.settled(opTouch, evTouched, start, q.q.Touch(ctx, id))
}

// Kick calls the wrapped queue's Kick and records it.
func (q *queue) Kick(ctx context.Context, tube string, n int) (int, error) {
	start := q.m.begin()
	k, err := q.q.Kick(ctx, tube, n)
	q.m.done(opKick, start, err)
	q.m.jobCnt[evKicked].Add(float64(k))
	return k, err
}

// KickJob calls the wrapped queue's KickJob and records it.
func (q *queue) KickJob(ctx context.Context, id beanspike.ID) error {
	start := q.m.begin()
	err := q.q.KickJob(ctx, id)
	q.m.done(opKickJob, start, err)
	if err == nil {
		q.m.jobCnt[evKicked].Inc()
	}
	return err
}

// peek records a call returning a job.
func (q *queue) peek(o op, f func() (*beanspike.Job, error)) (*beanspike.Job, error) {
	start := q.m.begin()
	j, err := f()
	q.m.done(o, start, err)
	return j, err
}

// Peek calls the wrapped queue's Peek and records it.
func (q *queue) Peek(ctx context.Context, id beanspike.ID) (*beanspike.Job, error) {
	return q.peek(opPeek, func() (*beanspike.Job, error) { return q.q.Peek(ctx, id) })
}

// PeekReady calls the wrapped queue's PeekReady and records it.
func (q *queue) PeekReady(ctx context.Context, tube string) (*beanspike.Job, error) {
	return q.peek(opPeekReady, func() (*beanspike.Job, error) { return q.q.PeekReady(ctx, tube) })
}

// PeekDelayed calls the wrapped queue's PeekDelayed and records it.
func (q *queue) PeekDelayed(ctx context.Context, tube string) (*beanspike.Job, error) {
	return q.peek(opPeekDelayed, func() (*beanspike.Job, error) { return q.q.PeekDelayed(ctx, tube) })
}

// PeekBuried calls the wrapped queue's PeekBuried and records it.
func (q *queue) PeekBuried(ctx context.Context, tube string) (*beanspike.Job, error) {
	return q.peek(opPeekBuried, func() (*beanspike.Job, error) { return q.q.PeekBuried(ctx, tube) })
}

// StatsJob calls the wrapped queue's StatsJob and records it.
func (q *queue) StatsJob(ctx context.Context, id beanspike.ID) (*beanspike.JobStats, error) {
	start := q.m.begin()
	s, err := q.q.StatsJob(ctx, id)
	q.m.done(opStatsJob, start, err)
	return s, err
}

// StatsTube calls the wrapped queue's StatsTube and records it.
func (q *queue) StatsTube(ctx context.Context, tube string) (*beanspike.TubeStats, error) {
	start := q.m.begin()
	s, err := q.q.StatsTube(ctx, tube)
	q.m.done(opStatsTube, start, err)
	return s, err
}

// Tubes calls the wrapped queue's Tubes and records it.
func (q *queue) Tubes(ctx context.Context) ([]string, error) {
	start := q.m.begin()
	t, err := q.q.Tubes(ctx)
	q.m.done(opTubes, start, err)
	return t, err
}

// PauseTube calls the wrapped queue's PauseTube and records it.
func (q *queue) PauseTube(ctx context.Context, tube string, d time.Duration) error {
	start := q.m.begin()
	err := q.q.PauseTube(ctx, tube, d)
	q.m.done(opPauseTube, start, err)
	return err
}

// DeleteTube calls the wrapped queue's DeleteTube and records it.
func (q *queue) DeleteTube(ctx context.Context, tube string) (int, error) {
	start := q.m.begin()
	n, err := q.q.DeleteTube(ctx, tube)
	q.m.done(opDeleteTube, start, err)
	return n, err
}
