package remote

import (
	"context"
	"sync"
)

// budget bounds the bytes of replies held at once: by one session, or by
// the whole server. Callers take their share before they make the store
// call that allocates the reply, and give it back once the reply is
// written, so that a client that reads no replies holds at most the
// budget, however many calls it makes. Waiters are served in the order
// they came, so that a large share is not passed over for ever by small
// ones.
type budget struct {
	max int64

	mu      sync.Mutex
	held    int64
	peak    int64 // the most held at once, for the tests
	waiters []*budgetWaiter
}

// budgetWaiter is one wait for n bytes; ready is closed when they are
// granted.
type budgetWaiter struct {
	n     int64
	ready chan struct{}
}

func newBudget(max int64) *budget { return &budget{max: max} }

// share is what a reply of n bytes takes of b: n, or the whole budget
// for a reply longer than it, which then holds it alone.
func (b *budget) share(n int64) int64 { return max(min(n, b.max), 0) }

// acquire takes n bytes (at most the whole budget), waiting behind the
// earlier waiters until they are free. It returns ctx's error, having
// taken nothing, if ctx ends first.
func (b *budget) acquire(ctx context.Context, n int64) error {
	b.mu.Lock()
	if len(b.waiters) == 0 && b.held+n <= b.max {
		b.take(n)
		b.mu.Unlock()
		return nil
	}
	w := &budgetWaiter{n: n, ready: make(chan struct{})}
	b.waiters = append(b.waiters, w)
	b.mu.Unlock()
	select {
	case <-w.ready:
		return nil
	case <-ctx.Done():
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	select {
	case <-w.ready:
		// Granted as ctx ended: give it back.
		b.held -= n
	default:
		for i, o := range b.waiters {
			if o == w {
				b.waiters = append(b.waiters[:i], b.waiters[i+1:]...)
				break
			}
		}
	}
	b.grant() // the waiters behind w may fit now
	return ctx.Err()
}

// tryAcquire takes n bytes if they are free and nobody waits, and
// reports whether it did.
func (b *budget) tryAcquire(n int64) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	if len(b.waiters) > 0 || b.held+n > b.max {
		return false
	}
	b.take(n)
	return true
}

// tryAcquireUnits takes as many units of unit bytes as are free, at most
// n, if nobody waits, and returns how many it took.
func (b *budget) tryAcquireUnits(n, unit int64) int64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	if len(b.waiters) > 0 || unit <= 0 {
		return 0
	}
	k := min(n, (b.max-b.held)/unit)
	if k <= 0 {
		return 0
	}
	b.take(k * unit)
	return k
}

// add takes n bytes without waiting, even past the budget: for a reply
// found to be longer than what was taken for it, which is already made.
func (b *budget) add(n int64) {
	b.mu.Lock()
	b.take(n)
	b.mu.Unlock()
}

// release gives back n bytes and grants the waiters that then fit.
func (b *budget) release(n int64) {
	if n == 0 {
		return
	}
	b.mu.Lock()
	b.held -= n
	b.grant()
	b.mu.Unlock()
}

// take adds n to what is held; b.mu is held.
func (b *budget) take(n int64) {
	b.held += n
	b.peak = max(b.peak, b.held)
}

// grant serves the waiters, first come first served, while the first
// fits; b.mu is held.
func (b *budget) grant() {
	for len(b.waiters) > 0 && b.held+b.waiters[0].n <= b.max {
		w := b.waiters[0]
		b.waiters[0] = nil
		b.waiters = b.waiters[1:]
		b.take(w.n)
		close(w.ready)
	}
}

// usage returns what is held and the most held at once.
func (b *budget) usage() (held, peak int64) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.held, b.peak
}

// charge is what one reply holds of its session's budget and of its
// server's.
type charge struct {
	session, server int64
}

func (c charge) plus(o charge) charge  { return charge{c.session + o.session, c.server + o.server} }
func (c charge) minus(o charge) charge { return charge{c.session - o.session, c.server - o.server} }

// replyCost is what a reply carrying a job of n body bytes is counted
// for: the body, and the job's other fields, header and bookkeeping.
func replyCost(n int) int64 { return int64(n) + jobOverhead }

// jobOverhead bounds what a reply carrying a job holds besides the body:
// its header, the tube name (at most 200 bytes), the Job itself.
const jobOverhead = 1 << 10

// acquire takes n bytes of the session's budget, then of the server's,
// waiting behind the earlier waiters at each. It returns ctx's error,
// having taken nothing, if ctx ends first.
func (ss *session) acquire(ctx context.Context, n int64) (charge, error) {
	c := charge{ss.budget.share(n), ss.s.budget.share(n)}
	if err := ss.budget.acquire(ctx, c.session); err != nil {
		return charge{}, err
	}
	if err := ss.s.budget.acquire(ctx, c.server); err != nil {
		ss.budget.release(c.session)
		return charge{}, err
	}
	return c, nil
}

// tryAcquire takes n bytes of both budgets if they are free now.
func (ss *session) tryAcquire(n int64) (charge, bool) {
	c := charge{ss.budget.share(n), ss.s.budget.share(n)}
	if !ss.budget.tryAcquire(c.session) {
		return charge{}, false
	}
	if !ss.s.budget.tryAcquire(c.server) {
		ss.budget.release(c.session)
		return charge{}, false
	}
	return c, true
}

// tryAcquireUnits takes, of both budgets, as many units of unit bytes
// as are free now, at most n, and returns how many with the charge.
func (ss *session) tryAcquireUnits(n, unit int64) (int64, charge) {
	k := ss.budget.tryAcquireUnits(n, unit)
	if k == 0 {
		return 0, charge{}
	}
	g := ss.s.budget.tryAcquireUnits(k, unit)
	if g < k {
		ss.budget.release((k - g) * unit)
	}
	return g, charge{g * unit, g * unit}
}

// resize makes c what a reply of n bytes takes: it gives back the
// excess of a reply shorter than was taken for it, and adds, without
// waiting, the shortfall of one longer (a store that keeps bodies longer
// than its limit).
func (ss *session) resize(c *charge, n int64) {
	want := charge{ss.budget.share(n), ss.s.budget.share(n)}
	adjust(ss.budget, c.session, want.session)
	adjust(ss.s.budget, c.server, want.server)
	*c = want
}

func adjust(b *budget, from, to int64) {
	switch {
	case to < from:
		b.release(from - to)
	case to > from:
		b.add(to - from)
	}
}

// release gives c back to both budgets.
func (ss *session) release(c charge) {
	ss.budget.release(c.session)
	ss.s.budget.release(c.server)
}
