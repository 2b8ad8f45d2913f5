package metrics

import (
	"context"
	"math/rand/v2"
	"runtime"
	"time"

	"github.com/beanspike/beanspike"
)

// Wrap returns a queue that calls q and records each call. It implements
// [beanspike.Batcher] and [beanspike.BodyLimiter] when q does, and its
// As method reaches q's. Closing it closes q.
//
// The wrapped queue keeps its counts itself (about 1 KiB, and 200 bytes
// more for each operation it times, with the default buckets), and a
// scrape sums those of the queues: goroutines that each use a queue of
// their own do not contend for them. Once the queue is garbage collected,
// its counts are folded into the totals.
func (m *Metrics) Wrap(q beanspike.Queue) beanspike.Queue {
	r := wrapped{&core{seed: rand.Uint64(), limit: m.limit}, newRest(m)}
	m.mu.Lock()
	m.queues[r] = struct{}{}
	m.mu.Unlock()
	h := handle{c: r.c, r: r.r, q: q}
	_, batcher := q.(beanspike.Batcher)
	_, limiter := q.(beanspike.BodyLimiter)
	switch {
	case batcher && limiter:
		return retiring(m, r, &batchLimitQueue{batchQueue{h}})
	case batcher:
		return retiring(m, r, &batchQueue{h})
	case limiter:
		return retiring(m, r, &limitQueue{h})
	}
	return retiring(m, r, &h)
}

// wrapped are the counts of a wrapped queue, as the Metrics holds them.
type wrapped struct {
	c *core
	r *rest
}

// retiring returns h, made to retire r once h is collected.
func retiring[H any](m *Metrics, r wrapped, h *H) *H {
	runtime.AddCleanup(h, m.retire, r)
	return h
}

// retire folds the counts of r, whose queue is collected, into the
// totals of the queues collected before, and drops r.
func (m *Metrics) retire(r wrapped) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.retired.add(r.c, r.r)
	delete(m.queues, r)
}

// handle is a queue as Wrap returns it: the wrapped queue and its counts,
// 32 bytes, so that the handles, read on every call and never written,
// pack two to a cache line; and a handle collected tells that the queue
// is gone while the Metrics still holds its counts. A call keeps its
// handle alive until it is counted (see done).
type handle struct {
	c *core
	r *rest
	q beanspike.Queue
}

// The handles that keep the optional interfaces of their queues.
type (
	batchQueue      struct{ handle }
	limitQueue      struct{ handle }
	batchLimitQueue struct{ batchQueue }
)

var (
	_ beanspike.Queue       = (*handle)(nil)
	_ beanspike.Batcher     = (*batchQueue)(nil)
	_ beanspike.BodyLimiter = (*limitQueue)(nil)
	_ beanspike.Batcher     = (*batchLimitQueue)(nil)
	_ beanspike.BodyLimiter = (*batchLimitQueue)(nil)
)

// MaxBodySize returns the wrapped queue's.
func (q *limitQueue) MaxBodySize() int { return q.q.(beanspike.BodyLimiter).MaxBodySize() }

// MaxBodySize returns the wrapped queue's.
func (q *batchLimitQueue) MaxBodySize() int { return q.q.(beanspike.BodyLimiter).MaxBodySize() }

// PutBatch calls the wrapped queue's and records it.
func (q *batchQueue) PutBatch(ctx context.Context, reqs []beanspike.PutRequest) ([]beanspike.ID, error) {
	start := q.begin(opPutBatch)
	ids, err := q.q.(beanspike.Batcher).PutBatch(ctx, reqs)
	q.r.jobs[evPut].Add(uint64(len(ids)))
	q.done(opPutBatch, start, err)
	return ids, err
}

// ReserveBatch calls the wrapped queue's and records it.
func (q *batchQueue) ReserveBatch(ctx context.Context, max int, tubes ...string) ([]*beanspike.Job, error) {
	start := q.begin(opReserveBatch)
	jobs, err := q.q.(beanspike.Batcher).ReserveBatch(ctx, max, tubes...)
	q.r.jobs[evReserved].Add(uint64(len(jobs)))
	q.done(opReserveBatch, start, err)
	return jobs, err
}

// As reaches the wrapped queue's As, if it has one.
func (h *handle) As(target any) bool {
	if a, ok := h.q.(interface{ As(any) bool }); ok {
		return a.As(target)
	}
	return false
}

// Close closes the wrapped queue.
func (h *handle) Close() error { return h.q.Close() }

// Put calls the wrapped queue's Put and records it.
func (h *handle) Put(ctx context.Context, tube string, body []byte, opts ...beanspike.PutOption) (beanspike.ID, error) {
	start := h.begin(opPut)
	id, err := h.q.Put(ctx, tube, body, opts...)
	if err == nil && len(opts) > 0 {
		if o, oerr := beanspike.NewPutOptions(opts...); oerr == nil && o.Compress {
			h.r.jobs[evCompress].Add(1)
		}
	}
	h.done(opPut, start, err)
	return id, err
}

// Reserve calls the wrapped queue's Reserve and records it.
func (h *handle) Reserve(ctx context.Context, tubes ...string) (*beanspike.Job, error) {
	start := h.begin(opReserve)
	j, err := h.q.Reserve(ctx, tubes...)
	h.done(opReserve, start, err)
	return j, err
}

// ReserveJob calls the wrapped queue's ReserveJob and records it.
func (h *handle) ReserveJob(ctx context.Context, id beanspike.ID) (*beanspike.Job, error) {
	start := h.begin(opReserveJob)
	j, err := h.q.ReserveJob(ctx, id)
	h.done(opReserveJob, start, err)
	return j, err
}

// Delete calls the wrapped queue's Delete and records it.
func (h *handle) Delete(ctx context.Context, id beanspike.ID) error {
	start := h.begin(opDelete)
	err := h.q.Delete(ctx, id)
	h.done(opDelete, start, err)
	return err
}

// Release calls the wrapped queue's Release and records it.
func (h *handle) Release(ctx context.Context, id beanspike.ID, priority uint32, delay time.Duration) error {
	start := h.begin(opRelease)
	err := h.q.Release(ctx, id, priority, delay)
	h.done(opRelease, start, err)
	return err
}

// Bury calls the wrapped queue's Bury and records it.
func (h *handle) Bury(ctx context.Context, id beanspike.ID, priority uint32, reason string) error {
	start := h.begin(opBury)
	err := h.q.Bury(ctx, id, priority, reason)
	h.done(opBury, start, err)
	return err
}

// Touch calls the wrapped queue's Touch and records it.
func (h *handle) Touch(ctx context.Context, id beanspike.ID) error {
	start := h.begin(opTouch)
	err := h.q.Touch(ctx, id)
	h.done(opTouch, start, err)
	return err
}

// Kick calls the wrapped queue's Kick and records it.
func (h *handle) Kick(ctx context.Context, tube string, n int) (int, error) {
	start := h.begin(opKick)
	k, err := h.q.Kick(ctx, tube, n)
	if k > 0 {
		h.r.jobs[evKicked].Add(uint64(k))
	}
	h.done(opKick, start, err)
	return k, err
}

// KickJob calls the wrapped queue's KickJob and records it.
func (h *handle) KickJob(ctx context.Context, id beanspike.ID) error {
	start := h.begin(opKickJob)
	err := h.q.KickJob(ctx, id)
	h.done(opKickJob, start, err)
	return err
}

// Peek calls the wrapped queue's Peek and records it.
func (h *handle) Peek(ctx context.Context, id beanspike.ID) (*beanspike.Job, error) {
	start := h.begin(opPeek)
	j, err := h.q.Peek(ctx, id)
	h.done(opPeek, start, err)
	return j, err
}

// PeekReady calls the wrapped queue's PeekReady and records it.
func (h *handle) PeekReady(ctx context.Context, tube string) (*beanspike.Job, error) {
	start := h.begin(opPeekReady)
	j, err := h.q.PeekReady(ctx, tube)
	h.done(opPeekReady, start, err)
	return j, err
}

// PeekDelayed calls the wrapped queue's PeekDelayed and records it.
func (h *handle) PeekDelayed(ctx context.Context, tube string) (*beanspike.Job, error) {
	start := h.begin(opPeekDelayed)
	j, err := h.q.PeekDelayed(ctx, tube)
	h.done(opPeekDelayed, start, err)
	return j, err
}

// PeekBuried calls the wrapped queue's PeekBuried and records it.
func (h *handle) PeekBuried(ctx context.Context, tube string) (*beanspike.Job, error) {
	start := h.begin(opPeekBuried)
	j, err := h.q.PeekBuried(ctx, tube)
	h.done(opPeekBuried, start, err)
	return j, err
}

// StatsJob calls the wrapped queue's StatsJob and records it.
func (h *handle) StatsJob(ctx context.Context, id beanspike.ID) (*beanspike.JobStats, error) {
	start := h.begin(opStatsJob)
	s, err := h.q.StatsJob(ctx, id)
	h.done(opStatsJob, start, err)
	return s, err
}

// StatsTube calls the wrapped queue's StatsTube and records it.
func (h *handle) StatsTube(ctx context.Context, tube string) (*beanspike.TubeStats, error) {
	start := h.begin(opStatsTube)
	s, err := h.q.StatsTube(ctx, tube)
	h.done(opStatsTube, start, err)
	return s, err
}

// Tubes calls the wrapped queue's Tubes and records it.
func (h *handle) Tubes(ctx context.Context) ([]string, error) {
	start := h.begin(opTubes)
	t, err := h.q.Tubes(ctx)
	h.done(opTubes, start, err)
	return t, err
}

// PauseTube calls the wrapped queue's PauseTube and records it.
func (h *handle) PauseTube(ctx context.Context, tube string, d time.Duration) error {
	start := h.begin(opPauseTube)
	err := h.q.PauseTube(ctx, tube, d)
	h.done(opPauseTube, start, err)
	return err
}

// DeleteTube calls the wrapped queue's DeleteTube and records it.
func (h *handle) DeleteTube(ctx context.Context, tube string) (int, error) {
	start := h.begin(opDeleteTube)
	n, err := h.q.DeleteTube(ctx, tube)
	h.done(opDeleteTube, start, err)
	return n, err
}
