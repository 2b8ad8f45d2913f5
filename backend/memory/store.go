package memory

import (
	"math"
	"sync"
	"time"

	"github.com/beanspike/beanspike"
	"github.com/beanspike/beanspike/codec"
)

// never is the event time of a tube that has nothing timed to do.
const never = math.MaxInt64

// Job flags.
const (
	flagCompressed uint8 = 1 << iota
)

// job is one stored job. It is kept small: a store holds millions of
// them. Times are nanoseconds on the store's monotonic clock (see
// store.now); the counters that most jobs never use live in ext.
type job struct {
	id      uint64
	tube    *tube
	body    string // as stored: raw, or encoded when flagCompressed is set
	owner   *Queue // the holder of a reserved job
	ext     *jobExt
	created int64
	// key orders the job in the heap of its state: the ready sequence,
	// the due time, the reservation deadline or the bury sequence.
	key      int64
	ttr      int64
	delay    int64
	pri      uint32
	reserves uint32
	hidx     int32 // index in the heap of its state
	state    beanspike.State
	flags    uint8
}

// jobExt holds what few jobs need: the rarer counters and a bury reason.
type jobExt struct {
	timeouts, releases, buries, kicks uint32
	reason                            string
}

func (j *job) x() *jobExt {
	if j.ext == nil {
		j.ext = new(jobExt)
	}
	return j.ext
}

// tube holds the jobs of one tube by state, its counters and the Reserve
// calls waiting on it. A tube that is not listed exists only to hold
// waiters: it was never put to (or was deleted) and is invisible to
// Tubes and StatsTube.
type tube struct {
	name   string
	listed bool

	ready, delayed, reserved, buried jobHeap
	urgent                           int

	total, deletes, pauses, compressed, skipped uint64

	pause    int64 // duration of the current or last pause
	pauseEnd int64 // when the current pause ends; 0 when not paused

	next  int64 // time of the next timed event, or never
	evIdx int   // index in store.events, or -1

	whead, wtail *waitNode
	nwait        int

	pending bool // queued in store.pending for dispatch
}

func newTube(name string) *tube {
	t := &tube{name: name, next: never, evIdx: -1}
	t.ready.byPri = true
	return t
}

func (t *tube) paused() bool { return t.pauseEnd != 0 }

// waiter is a blocked Reserve or ReserveBatch call. It is linked into the
// wait list of each tube it watches and served in FIFO order per tube.
type waiter struct {
	c     *Queue
	tubes []*tube
	nodes []waitNode
	max   int

	// Set under the store lock, then done is closed.
	served bool
	got    []snapshot
	err    error
	done   chan struct{}
}

type waitNode struct {
	w          *waiter
	prev, next *waitNode
}

// store is the state shared by the clients of one in-memory store. All of
// it is guarded by mu.
type store struct {
	mu      sync.Mutex
	base    time.Time // the origin of the store's monotonic clock
	maxBody int
	codec   *codec.LZ4

	jobs   jobIndex
	tubes  map[string]*tube
	lastID uint64
	seq    int64 // orders ready and buried jobs

	events  tubeHeap // tubes by their next timed event
	pending []*tube  // tubes with ready jobs and waiters to serve

	timer   *time.Timer
	armedAt int64 // when the timer fires; never when stopped

	clients int
	closed  bool
}

func newStore(o *options) (*store, error) {
	c, err := codec.NewLZ4(&codec.Options{MaxSize: o.maxBodySize})
	if err != nil {
		return nil, err
	}
	return &store{
		base:    time.Now(),
		maxBody: o.maxBodySize,
		codec:   c,
		tubes:   make(map[string]*tube),
		armedAt: never,
	}, nil
}

// now reads the store's monotonic clock.
func (s *store) now() int64 { return int64(time.Since(s.base)) }

// lock takes the store lock and applies the timed events that are due.
func (s *store) lock() int64 {
	s.mu.Lock()
	now := s.now()
	s.advance(now)
	return now
}

// unlock serves waiters, re-arms the timer and releases the lock.
func (s *store) unlock() {
	s.dispatch()
	s.arm()
	s.mu.Unlock()
}

// listedTube returns the tube name, creating it if needed, and lists it.
func (s *store) listedTube(name string) *tube {
	t := s.tubes[name]
	if t == nil {
		t = newTube(name)
		s.tubes[name] = t
	}
	t.listed = true
	return t
}

// forget drops t from the tube map when nothing needs it any more.
func (s *store) forget(t *tube) {
	if !t.listed && t.nwait == 0 && s.tubes[t.name] == t {
		delete(s.tubes, t.name)
	}
}

// --- state changes -------------------------------------------------------

// take removes j from the heap of its current state.
func (s *store) take(j *job) {
	t := j.tube
	switch j.state {
	case beanspike.Ready:
		t.ready.remove(j)
		if j.pri < beanspike.UrgentPriority {
			t.urgent--
		}
	case beanspike.Delayed:
		t.delayed.remove(j)
		s.fixEvents(t)
	case beanspike.Reserved:
		t.reserved.remove(j)
		delete(j.owner.held, j)
		j.owner = nil
		s.fixEvents(t)
	case beanspike.Buried:
		t.buried.remove(j)
	}
	j.state = 0
}

// toReady makes j (taken from its old state) ready.
func (s *store) toReady(j *job) {
	t := j.tube
	s.seq++
	j.key = s.seq
	j.state = beanspike.Ready
	t.ready.push(j)
	if j.pri < beanspike.UrgentPriority {
		t.urgent++
	}
	if t.nwait > 0 && !t.pending {
		t.pending = true
		s.pending = append(s.pending, t)
	}
}

// toDelayed makes j (taken from its old state) delayed until due.
func (s *store) toDelayed(j *job, due int64) {
	j.key = due
	j.state = beanspike.Delayed
	j.tube.delayed.push(j)
	s.fixEvents(j.tube)
}

// toReserved makes j (taken from its old state) reserved by c.
func (s *store) toReserved(j *job, c *Queue, now int64) {
	j.key = after(now, time.Duration(j.ttr))
	j.state = beanspike.Reserved
	j.owner = c
	j.reserves++
	c.held[j] = struct{}{}
	j.tube.reserved.push(j)
	s.fixEvents(j.tube)
}

// toBuried makes j (taken from its old state) buried.
func (s *store) toBuried(j *job) {
	s.seq++
	j.key = s.seq
	j.state = beanspike.Buried
	j.tube.buried.push(j)
}

// remove deletes j from the store.
func (s *store) remove(j *job) {
	s.take(j)
	s.jobs.remove(j)
}

// --- timed events ----------------------------------------------------------

// after returns now+d, saturating below never, so that the longest
// durations a caller can give (a TTR, delay or pause of math.MaxInt64)
// stay in the future instead of wrapping into the past.
func after(now int64, d time.Duration) int64 {
	if int64(d) >= never-1-now {
		return never - 1
	}
	return now + int64(d)
}

// fixEvents recomputes t's next timed event and its place in the events
// heap.
func (s *store) fixEvents(t *tube) {
	next := int64(never)
	if j := t.delayed.min(); j != nil {
		next = j.key
	}
	if j := t.reserved.min(); j != nil && j.key < next {
		next = j.key
	}
	if t.pauseEnd != 0 && t.pauseEnd < next {
		next = t.pauseEnd
	}
	t.next = next
	switch {
	case next == never && t.evIdx >= 0:
		s.events.remove(t)
	case next == never:
	case t.evIdx < 0:
		s.events.push(t)
	default:
		s.events.fixAt(t.evIdx)
	}
}

// advance applies every timed event due at now: delayed jobs become
// ready, lapsed reservations return to ready, pauses end.
func (s *store) advance(now int64) {
	for len(s.events) > 0 && s.events[0].next <= now {
		t := s.events[0]
		for j := t.delayed.min(); j != nil && j.key <= now; j = t.delayed.min() {
			s.take(j)
			s.toReady(j)
		}
		for j := t.reserved.min(); j != nil && j.key <= now; j = t.reserved.min() {
			s.take(j)
			j.x().timeouts++
			s.toReady(j)
		}
		if t.pauseEnd != 0 && t.pauseEnd <= now {
			t.pauseEnd = 0
			s.wake(t)
		}
		s.fixEvents(t)
	}
}

// arm sets the store's one timer for the earliest timed event.
func (s *store) arm() {
	if s.closed {
		return
	}
	next := int64(never)
	if len(s.events) > 0 {
		next = s.events[0].next
	}
	if next >= s.armedAt {
		return // the timer fires soon enough; an early firing is harmless
	}
	d := time.Duration(next - s.now())
	if d < 0 {
		d = 0
	}
	s.armedAt = next
	if s.timer == nil {
		s.timer = time.AfterFunc(d, s.fire)
	} else {
		s.timer.Reset(d)
	}
}

// fire runs when the timer goes off.
func (s *store) fire() {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return
	}
	s.armedAt = never
	s.advance(s.now())
	s.unlock()
}

// stop shuts the store down once its last client is closed.
func (s *store) stop() {
	s.closed = true
	if s.timer != nil {
		s.timer.Stop()
	}
	s.armedAt = never
	s.jobs.reset()
	s.tubes = nil
	s.events = nil
	s.pending = nil
}

// --- waiters ---------------------------------------------------------------

// wake queues t for dispatch if it has waiters.
func (s *store) wake(t *tube) {
	if t.nwait > 0 && !t.pending && t.ready.len() > 0 {
		t.pending = true
		s.pending = append(s.pending, t)
	}
}

// enqueue links w at the end of the wait list of each of its tubes.
func (s *store) enqueue(w *waiter) {
	w.nodes = make([]waitNode, len(w.tubes))
	for i, t := range w.tubes {
		n := &w.nodes[i]
		n.w = w
		n.prev = t.wtail
		if t.wtail != nil {
			t.wtail.next = n
		} else {
			t.whead = n
		}
		t.wtail = n
		t.nwait++
	}
	w.c.waiters[w] = struct{}{}
}

// dequeue unlinks w from every wait list it is in.
func (s *store) dequeue(w *waiter) {
	for i, t := range w.tubes {
		n := &w.nodes[i]
		if n.prev != nil {
			n.prev.next = n.next
		} else {
			t.whead = n.next
		}
		if n.next != nil {
			n.next.prev = n.prev
		} else {
			t.wtail = n.prev
		}
		n.prev, n.next = nil, nil
		t.nwait--
		s.forget(t)
	}
	delete(w.c.waiters, w)
}

// dispatch hands ready jobs to the waiters of the pending tubes, the
// longest-waiting first.
func (s *store) dispatch() {
	for len(s.pending) > 0 {
		t := s.pending[len(s.pending)-1]
		s.pending = s.pending[:len(s.pending)-1]
		t.pending = false
		for t.whead != nil && t.ready.len() > 0 && !t.paused() {
			w := t.whead.w
			s.dequeue(w)
			w.got = s.reserveFrom(w.c, w.tubes, w.max, s.now(), nil)
			w.served = true
			close(w.done)
		}
	}
}

// best returns the ready job Reserve takes next from tubes: the lowest
// priority, then the first ready within a tube, then the lowest ID across
// tubes.
func best(tubes []*tube) *job {
	var b *job
	for _, t := range tubes {
		if t.paused() {
			continue
		}
		j := t.ready.min()
		if j == nil {
			continue
		}
		if b == nil || j.pri < b.pri || (j.pri == b.pri && j.id < b.id) {
			b = j
		}
	}
	return b
}

// reserveFrom reserves up to max ready jobs of tubes for c and appends
// their snapshots to dst.
func (s *store) reserveFrom(c *Queue, tubes []*tube, max int, now int64, dst []snapshot) []snapshot {
	for len(dst) < max {
		j := best(tubes)
		if j == nil {
			break
		}
		s.take(j)
		s.toReserved(j, c, now)
		dst = append(dst, snap(j))
	}
	return dst
}
