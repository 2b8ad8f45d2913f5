package metrics

import (
	"errors"
	"math"
	"runtime"
	"sync/atomic"
	"time"

	"github.com/beanspike/beanspike"
)

// The counts of a wrapped queue are kept with it: only its calls write
// them, so that queues used by different goroutines, each its own, do not
// contend for shared cache lines. A scrape sums the queues' counts.
//
// What a scrape derives rather than counts: a job event is a call that
// succeeded (a put is a Put that returned nil, a deletion a Delete), and
// the calls of an operation are those that succeeded and those that
// failed. So a call that succeeds writes one counter.

// core holds the counters that every call reads or writes. What an
// untimed call of Put, Reserve or Delete touches of it is in its first
// cache line: the choice of the calls timed and the counters of these
// operations. It holds no pointers and fills a size class of whole cache
// lines, so that the allocator puts it at the start of one.
type core struct {
	seed  uint64 // of the choice of the calls timed
	limit uint64 // Metrics.limit
	ops   [numOps]struct {
		ok     atomic.Uint64 // calls that returned nil
		failed atomic.Uint64 // calls that returned an error
	}
	_ [384 - 16 - numOps*16]byte
}

// rest holds what the calls that fail or are timed, and a few others,
// count: the rows of counters are made on first use, so that a queue
// holds those of the operations it calls.
type rest struct {
	created time.Time // Metrics.created: the clock counts from it
	lat     [numOps]atomic.Pointer[hist]
	errs    [numOps]atomic.Pointer[[numKinds]atomic.Uint64] // failed calls by kind
	// Job events that are not one call that succeeded: jobs put and
	// reserved by batches, kicked by Kick, and the puts that asked for
	// compression.
	jobs   [numEvents]atomic.Uint64
	lapsed atomic.Uint64
	bounds []time.Duration // of the buckets (see nanoBounds)
}

// hist holds the latencies of the timed calls of one operation:
// len(bounds)+2 counters, the sum of the durations in nanoseconds, then
// the calls by bucket (not cumulative; the last is +Inf).
type hist struct {
	n      []atomic.Uint64
	bounds []time.Duration
}

func newRest(m *Metrics) *rest { return &rest{created: m.created, bounds: m.bounds} }

// clock reads the monotonic clock.
func (r *rest) clock() time.Duration { return time.Since(r.created) }

// observe records a timed call of o that took d.
func (r *rest) observe(o op, d time.Duration) {
	h := r.lat[o].Load()
	if h == nil {
		h = &hist{n: make([]atomic.Uint64, len(r.bounds)+2), bounds: r.bounds}
		if !r.lat[o].CompareAndSwap(nil, h) {
			h = r.lat[o].Load()
		}
	}
	d = max(d, 0)
	i := 0
	for i < len(h.bounds) && h.bounds[i] < d {
		i++
	}
	h.n[0].Add(uint64(d))
	h.n[1+i].Add(1)
}

// fail counts a call of o that returned err (not nil).
func (r *rest) fail(c *core, o op, err error) {
	c.ops[o].failed.Add(1)
	e := r.errs[o].Load()
	if e == nil {
		e = new([numKinds]atomic.Uint64)
		if !r.errs[o].CompareAndSwap(nil, e) {
			e = r.errs[o].Load()
		}
	}
	e[kind(err)].Add(1)
	if settles[o] && errors.Is(err, beanspike.ErrNotReserved) {
		r.lapsed.Add(1)
	}
}

// settles are the operations that settle or touch a reserved job: when
// they find the reservation gone, it lapsed.
var settles = [numOps]bool{opDelete: true, opRelease: true, opBury: true, opTouch: true}

// totals are the sums of the counts of queues.
type totals struct {
	ok, failed [numOps]uint64
	errs       [numOps][numKinds]uint64
	jobs       [numEvents]uint64
	lapsed     uint64
	lat        [numOps][]uint64 // as hist, or nil
}

// add adds the counts of a queue to t.
func (t *totals) add(c *core, r *rest) {
	for o := range numOps {
		t.ok[o] += c.ops[o].ok.Load()
		t.failed[o] += c.ops[o].failed.Load()
		if e := r.errs[o].Load(); e != nil {
			for k := range e {
				t.errs[o][k] += e[k].Load()
			}
		}
		if h := r.lat[o].Load(); h != nil {
			if t.lat[o] == nil {
				t.lat[o] = make([]uint64, len(h.n))
			}
			for i := range h.n {
				t.lat[o][i] += h.n[i].Load()
			}
		}
	}
	for e := range t.jobs {
		t.jobs[e] += r.jobs[e].Load()
	}
	t.lapsed += r.lapsed.Load()
}

// addTotals adds u to t.
func (t *totals) addTotals(u *totals) {
	for o := range numOps {
		t.ok[o] += u.ok[o]
		t.failed[o] += u.failed[o]
		for k := range t.errs[o] {
			t.errs[o][k] += u.errs[o][k]
		}
		if u.lat[o] != nil {
			if t.lat[o] == nil {
				t.lat[o] = make([]uint64, len(u.lat[o]))
			}
			for i, n := range u.lat[o] {
				t.lat[o][i] += n
			}
		}
	}
	for e := range t.jobs {
		t.jobs[e] += u.jobs[e]
	}
	t.lapsed += u.lapsed
}

// nanoBounds returns, for each upper bound in seconds, the longest
// duration whose Seconds are at most the bound: a duration falls in the
// same bucket compared with these as its Seconds compared with the
// bounds, without the division.
func nanoBounds(bounds []float64) []time.Duration {
	ds := make([]time.Duration, len(bounds))
	for i, b := range bounds {
		switch {
		case b < 0:
			ds[i] = -1
		case b >= float64(math.MaxInt64)/1e9:
			ds[i] = math.MaxInt64
		default:
			d := time.Duration(b * 1e9)
			for d < math.MaxInt64 && (d+1).Seconds() <= b {
				d++
			}
			for d >= 0 && d.Seconds() > b {
				d--
			}
			ds[i] = d
		}
	}
	return ds
}

// begin starts a call of o: it returns the clock, if the call is to be
// timed, and -1 otherwise. Whether it is timed is a hash of the number of
// calls of o the queue has made, so the clock is read only for the calls
// timed.
func (h *handle) begin(o op) time.Duration {
	c := h.c
	n := &c.ops[o]
	if mix((n.ok.Load()+n.failed.Load())*uint64(numOps)+uint64(o)+c.seed) > c.limit {
		return -1
	}
	return h.r.clock()
}

// done records a call of o that began at start (see begin) and returned
// err: for a call that succeeded and is not timed, an atomic addition. It
// keeps h alive until then: were h collected during the call, its queue
// would be retired before the call is counted.
func (h *handle) done(o op, start time.Duration, err error) {
	if err != nil || start >= 0 {
		h.record(o, start, err)
	} else {
		h.c.ops[o].ok.Add(1)
	}
	runtime.KeepAlive(h)
}

// record is done for a call that failed or is timed.
func (h *handle) record(o op, start time.Duration, err error) {
	if start >= 0 {
		h.r.observe(o, h.r.clock()-start)
	}
	if err == nil {
		h.c.ops[o].ok.Add(1)
	} else {
		h.r.fail(h.c, o, err)
	}
}

// mix is the finalizer of SplitMix64: a bijection of the uint64s whose
// outputs for consecutive inputs look random.
func mix(x uint64) uint64 {
	x ^= x >> 30
	x *= 0xbf58476d1ce4e5b9
	x ^= x >> 27
	x *= 0x94d049bb133111eb
	return x ^ x>>31
}
