package conformance

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/beanspike/beanspike"
)

// Run runs the whole suite against the implementation h makes. Every
// subtest gets its own store and runs in parallel with the others.
func Run(t *testing.T, h Harness) {
	t.Helper()
	if h.NewStore == nil {
		t.Fatal("conformance: Harness.NewStore is nil")
	}
	h.Capabilities = h.Capabilities.withDefaults()
	for _, tc := range suite() {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t, h)
			defer e.watch()()
			tc.fn(t, e)
		})
	}
}

// test is one subtest of the suite.
type test struct {
	name string
	fn   func(t *testing.T, e *env)
}

// suite lists every subtest, grouped as the files that hold them.
func suite() []test {
	var all []test
	for _, group := range [][]test{
		orderTests, timeTests, ownershipTests, stateTests, peekTests,
		statsTests, pauseTests, reserveTests, tubeTests, batchTests,
		bodyTests, badInputTests, concurrentTests,
	} {
		all = append(all, group...)
	}
	return all
}

// env is what one subtest works with: its own store, a context that the
// watchdog cancels, and the clients it made.
type env struct {
	t      *testing.T
	caps   Capabilities
	store  Store
	ctx    context.Context
	cancel context.CancelFunc

	mu      sync.Mutex
	clients []beanspike.Queue
}

func newEnv(t *testing.T, h Harness) *env {
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	return &env{
		t:      t,
		caps:   h.Capabilities,
		store:  h.NewStore(t),
		ctx:    ctx,
		cancel: cancel,
	}
}

// client makes a new client of the subtest's store and closes it when
// the subtest ends.
func (e *env) client() beanspike.Queue {
	e.t.Helper()
	q := e.store.NewClient(e.t)
	if q == nil {
		e.t.Fatal("Store.NewClient returned nil")
	}
	e.mu.Lock()
	e.clients = append(e.clients, q)
	e.mu.Unlock()
	e.t.Cleanup(func() { _ = q.Close() })
	return q
}

// watch starts the subtest's watchdog and returns the function that stops
// it. When the watchdog fires, it fails the subtest with a goroutine dump,
// cancels the subtest's context and closes its clients, which unblocks
// every call that keeps its contract. If the subtest still runs after a
// grace period, the watchdog panics with the dump.
func (e *env) watch() (stop func()) {
	var (
		mu       sync.Mutex
		finished bool
	)
	grace := e.caps.Watchdog / 2
	if grace < 10*time.Second {
		grace = 10 * time.Second
	}
	var last *time.Timer
	first := time.AfterFunc(e.caps.Watchdog, func() {
		dump := goroutines()
		mu.Lock()
		if finished {
			mu.Unlock()
			return
		}
		e.t.Errorf("watchdog: subtest still running after %s; cancelling its context and closing its clients\n%s", e.caps.Watchdog, dump)
		last = time.AfterFunc(grace, func() {
			mu.Lock()
			defer mu.Unlock()
			if !finished {
				panic(fmt.Sprintf("conformance: %s hung: still running %s after its watchdog fired\n%s", e.t.Name(), grace, goroutines()))
			}
		})
		mu.Unlock()
		e.cancel()
		e.mu.Lock()
		clients := append([]beanspike.Queue(nil), e.clients...)
		e.mu.Unlock()
		for _, q := range clients {
			_ = q.Close()
		}
	})
	return func() {
		first.Stop()
		mu.Lock()
		finished = true
		if last != nil {
			last.Stop()
		}
		mu.Unlock()
	}
}

// goroutines returns the stacks of every goroutine.
func goroutines() string {
	buf := make([]byte, 1<<20)
	for {
		n := runtime.Stack(buf, true)
		if n < len(buf) {
			return string(buf[:n])
		}
		if len(buf) >= 64<<20 {
			return string(buf[:n]) + "\n[truncated]"
		}
		buf = make([]byte, 2*len(buf))
	}
}

// slack is the declared time slack.
func (e *env) slack() time.Duration { return e.caps.TimeSlack }

// wakeBound is how long the suite waits for an event that does not depend
// on the clock (a Put waking a blocked Reserve, Close or a cancelled
// context unblocking it). It checks that the event happens, not how fast.
func (e *env) wakeBound() time.Duration { return 5*time.Second + e.caps.TimeSlack }

// sleep waits for d, or fails the subtest when its context ends first.
func (e *env) sleep(d time.Duration) {
	e.t.Helper()
	if d <= 0 {
		return
	}
	tm := time.NewTimer(d)
	defer tm.Stop()
	select {
	case <-tm.C:
	case <-e.ctx.Done():
		e.t.Fatalf("interrupted while sleeping: %v", e.ctx.Err())
	}
}

// sleepUntil waits until the time at.
func (e *env) sleepUntil(at time.Time) {
	e.t.Helper()
	e.sleep(time.Until(at))
}

// put puts a job and fails the subtest on error.
func (e *env) put(q beanspike.Queue, tube string, body []byte, opts ...beanspike.PutOption) beanspike.ID {
	e.t.Helper()
	id, err := q.Put(e.ctx, tube, body, opts...)
	if err != nil {
		e.t.Fatalf("Put(%q, %d bytes): %v", tube, len(body), err)
	}
	if id == 0 {
		e.t.Fatalf("Put(%q) returned ID 0", tube)
	}
	return id
}

// putS puts a job whose body is s.
func (e *env) putS(q beanspike.Queue, tube, s string, opts ...beanspike.PutOption) beanspike.ID {
	e.t.Helper()
	return e.put(q, tube, []byte(s), opts...)
}

// poll reserves with a done context: a ready job or ctx.Err().
func (e *env) poll(q beanspike.Queue, tubes ...string) (*beanspike.Job, error) {
	ctx, cancel := context.WithCancel(e.ctx)
	cancel()
	return q.Reserve(ctx, tubes...)
}

// pollNone checks that a poll of tubes finds nothing.
func (e *env) pollNone(q beanspike.Queue, tubes ...string) {
	e.t.Helper()
	j, err := e.poll(q, tubes...)
	if err == nil {
		e.t.Fatalf("Reserve(%q) with a done context returned %v, want context.Canceled (no job should be ready)", tubes, j)
	}
	if err != context.Canceled {
		e.t.Fatalf("Reserve(%q) with a done context and no ready job: err = %v, want context.Canceled unwrapped", tubes, err)
	}
}

// reserve reserves a job, waiting at most wakeBound, and fails the subtest
// when none comes.
func (e *env) reserve(q beanspike.Queue, tubes ...string) *beanspike.Job {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(e.ctx, e.wakeBound())
	defer cancel()
	j, err := q.Reserve(ctx, tubes...)
	if err != nil {
		e.t.Fatalf("Reserve(%q): %v", tubes, err)
	}
	checkJob(e.t, j)
	return j
}

// reserveID reserves a job and checks that it is id.
func (e *env) reserveID(q beanspike.Queue, id beanspike.ID, tubes ...string) *beanspike.Job {
	e.t.Helper()
	j := e.reserve(q, tubes...)
	if j.ID != id {
		e.t.Fatalf("Reserve(%q) = job %d (%q), want job %d", tubes, j.ID, j.Body, id)
	}
	return j
}

// checkJob fails when a returned job is nil or has ID 0.
func checkJob(t *testing.T, j *beanspike.Job) {
	t.Helper()
	if j == nil {
		t.Fatal("got a nil job with a nil error")
	}
	if j.ID == 0 {
		t.Fatalf("got %v with ID 0", j)
	}
}

// statsJob returns a job's stats and fails the subtest on error.
func (e *env) statsJob(q beanspike.Queue, id beanspike.ID) *beanspike.JobStats {
	e.t.Helper()
	s, err := q.StatsJob(e.ctx, id)
	if err != nil {
		e.t.Fatalf("StatsJob(%d): %v", id, err)
	}
	if s == nil {
		e.t.Fatalf("StatsJob(%d) returned nil stats", id)
	}
	if s.ID != id {
		e.t.Fatalf("StatsJob(%d).ID = %d", id, s.ID)
	}
	return s
}

// statsTube returns a tube's stats and fails the subtest on error.
func (e *env) statsTube(q beanspike.Queue, tube string) *beanspike.TubeStats {
	e.t.Helper()
	s, err := q.StatsTube(e.ctx, tube)
	if err != nil {
		e.t.Fatalf("StatsTube(%q): %v", tube, err)
	}
	if s == nil {
		e.t.Fatalf("StatsTube(%q) returned nil stats", tube)
	}
	if s.Name != tube {
		e.t.Fatalf("StatsTube(%q).Name = %q", tube, s.Name)
	}
	return s
}

// wantState checks a job's state.
func (e *env) wantState(q beanspike.Queue, id beanspike.ID, want beanspike.State) *beanspike.JobStats {
	e.t.Helper()
	s := e.statsJob(q, id)
	if s.State != want {
		e.t.Fatalf("job %d is %v, want %v", id, s.State, want)
	}
	return s
}

// wantGone checks that a job no longer exists.
func (e *env) wantGone(q beanspike.Queue, id beanspike.ID) {
	e.t.Helper()
	if s, err := q.StatsJob(e.ctx, id); !errors.Is(err, beanspike.ErrNotFound) {
		e.t.Fatalf("StatsJob(%d) of a deleted job = %+v, %v; want ErrNotFound", id, s, err)
	}
	if j, err := q.Peek(e.ctx, id); !errors.Is(err, beanspike.ErrNotFound) {
		e.t.Fatalf("Peek(%d) of a deleted job = %v, %v; want ErrNotFound", id, j, err)
	}
}

// wantErr checks that err wraps want.
func wantErr(t *testing.T, err, want error, format string, args ...any) {
	t.Helper()
	if !errors.Is(err, want) {
		t.Fatalf("%s: err = %v, want %v", fmt.Sprintf(format, args...), err, want)
	}
}

// ok fails the subtest when err is not nil.
func ok(t *testing.T, err error, format string, args ...any) {
	t.Helper()
	if err != nil {
		t.Fatalf("%s: %v", fmt.Sprintf(format, args...), err)
	}
}

// reserved is the outcome of an asynchronous Reserve.
type reserved struct {
	job *beanspike.Job
	err error
	at  time.Time
}

// reserveAsync starts a blocking Reserve and returns a channel with its
// outcome.
func reserveAsync(ctx context.Context, q beanspike.Queue, tubes ...string) <-chan reserved {
	ch := make(chan reserved, 1)
	go func() {
		j, err := q.Reserve(ctx, tubes...)
		ch <- reserved{j, err, time.Now()}
	}()
	return ch
}

// await waits for an asynchronous Reserve for at most d.
func (e *env) await(ch <-chan reserved, d time.Duration, what string) reserved {
	e.t.Helper()
	tm := time.NewTimer(d)
	defer tm.Stop()
	select {
	case r := <-ch:
		return r
	case <-tm.C:
		e.t.Fatalf("%s: Reserve still blocked after %s", what, d)
	case <-e.ctx.Done():
		e.t.Fatalf("%s: interrupted: %v", what, e.ctx.Err())
	}
	return reserved{}
}

// notReturned checks that an asynchronous Reserve is still blocked.
func (e *env) notReturned(ch <-chan reserved, what string) {
	e.t.Helper()
	select {
	case r := <-ch:
		e.t.Fatalf("%s: Reserve returned early: %v, %v", what, r.job, r.err)
	default:
	}
}

// waitWaiting waits until tube has n blocked Reserve calls, when the
// implementation counts them exactly; otherwise it gives the calls a
// moment to block.
func (e *env) waitWaiting(q beanspike.Queue, tube string, n int) {
	e.t.Helper()
	if !e.caps.ExactWaiting {
		e.sleep(50 * time.Millisecond)
		return
	}
	deadline := time.Now().Add(e.wakeBound())
	for {
		s := e.statsTube(q, tube)
		if s.Waiting == n {
			return
		}
		if time.Now().After(deadline) {
			e.t.Fatalf("StatsTube(%q).Waiting = %d after %s, want %d", tube, s.Waiting, e.wakeBound(), n)
		}
		e.sleep(time.Millisecond)
	}
}

// within checks that d is in [lo, hi].
func within(t *testing.T, what string, d, lo, hi time.Duration) {
	t.Helper()
	if d < lo || d > hi {
		t.Fatalf("%s = %s, want between %s and %s", what, d, lo, hi)
	}
}
