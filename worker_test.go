package beanspike_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/beanspike/beanspike"
	"github.com/beanspike/beanspike/backend/memory"
	"github.com/beanspike/beanspike/internal/syncbuf"
)

// watchdog bounds every test, so that a hang fails instead of stalling.
const watchdog = 20 * time.Second

// newStore returns the first client of a new memory store, closed at the
// end of the test, and a function that makes more clients of it.
func newStore(t *testing.T) (*memory.Queue, func() *memory.Queue) {
	t.Helper()
	q, err := memory.New()
	if err != nil {
		t.Fatalf("memory.New: %v", err)
	}
	t.Cleanup(func() { q.Close() })
	return q, func() *memory.Queue {
		t.Helper()
		c, err := q.NewClient()
		if err != nil {
			t.Fatalf("NewClient: %v", err)
		}
		t.Cleanup(func() { c.Close() })
		return c
	}
}

func testContext(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), watchdog)
	t.Cleanup(cancel)
	return ctx
}

func put(t *testing.T, q beanspike.Queue, tube, body string, opts ...beanspike.PutOption) beanspike.ID {
	t.Helper()
	id, err := q.Put(context.Background(), tube, []byte(body), opts...)
	if err != nil {
		t.Fatalf("Put(%q, %q): %v", tube, body, err)
	}
	return id
}

func statsJob(t *testing.T, q beanspike.Queue, id beanspike.ID) *beanspike.JobStats {
	t.Helper()
	st, err := q.StatsJob(context.Background(), id)
	if err != nil {
		t.Fatalf("StatsJob(%d): %v", id, err)
	}
	return st
}

func newWorker(t *testing.T, q beanspike.Queue, h beanspike.HandlerFunc, opts ...beanspike.WorkerOption) *beanspike.Worker {
	t.Helper()
	w, err := beanspike.NewWorker(q, h, opts...)
	if err != nil {
		t.Fatalf("NewWorker: %v", err)
	}
	return w
}

// run is a Run call in progress.
type run struct {
	done chan struct{}
	err  error
}

// wait waits for Run to return and returns its result.
func (r *run) wait(t *testing.T) error {
	t.Helper()
	select {
	case <-r.done:
		return r.err
	case <-time.After(watchdog):
		t.Fatal("Run did not return")
		return nil
	}
}

// goRun runs w in a goroutine.
func goRun(ctx context.Context, w *beanspike.Worker) *run {
	r := &run{done: make(chan struct{})}
	go func() {
		defer close(r.done)
		r.err = w.Run(ctx)
	}()
	return r
}

// start runs w in a goroutine. At the end of the test it shuts w down
// and waits for Run.
func start(t *testing.T, ctx context.Context, w *beanspike.Worker) *run {
	t.Helper()
	r := goRun(ctx, w)
	t.Cleanup(func() {
		sctx, cancel := context.WithTimeout(context.Background(), watchdog)
		defer cancel()
		w.Shutdown(sctx)
		select {
		case <-r.done:
		case <-sctx.Done():
			t.Errorf("Run did not return after Shutdown")
		}
	})
	return r
}

// waitFor polls cond until it holds or the watchdog fires.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(watchdog)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// recv waits for a value from ch.
func recv[T any](t *testing.T, ch <-chan T) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(watchdog):
		t.Fatal("timed out waiting for the handler")
		panic("unreachable")
	}
}

// errorLog collects the errors a worker reports.
type errorLog struct {
	mu   sync.Mutex
	errs []*beanspike.WorkerError
}

func (l *errorLog) handle(err error) {
	var we *beanspike.WorkerError
	if !errors.As(err, &we) {
		panic(fmt.Sprintf("reported error %T is not a *WorkerError: %v", err, err))
	}
	l.mu.Lock()
	l.errs = append(l.errs, we)
	l.mu.Unlock()
}

func (l *errorLog) all() []*beanspike.WorkerError {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]*beanspike.WorkerError(nil), l.errs...)
}

func (l *errorLog) ops() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	var ops []string
	for _, e := range l.errs {
		ops = append(ops, e.Op)
	}
	return ops
}

func (l *errorLog) count(op string) int {
	n := 0
	for _, o := range l.ops() {
		if o == op {
			n++
		}
	}
	return n
}

// faultQueue wraps a Queue to inject faults: it hides the Batcher of the
// queue it wraps, and can fail calls.
type faultQueue struct {
	beanspike.Queue
	reserveErr func(n int) error // called with the Reserve call's number, from 1
	touchErr   func(id beanspike.ID) error

	mu       sync.Mutex
	reserves int
	calls    map[string]int
}

func (f *faultQueue) count(op string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.calls == nil {
		f.calls = make(map[string]int)
	}
	f.calls[op]++
}

func (f *faultQueue) Calls(op string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.calls[op]
}

func (f *faultQueue) Reserve(ctx context.Context, tubes ...string) (*beanspike.Job, error) {
	f.count("reserve")
	f.mu.Lock()
	f.reserves++
	n := f.reserves
	f.mu.Unlock()
	if f.reserveErr != nil {
		if err := f.reserveErr(n); err != nil {
			return nil, err
		}
	}
	return f.Queue.Reserve(ctx, tubes...)
}

func (f *faultQueue) Touch(ctx context.Context, id beanspike.ID) error {
	f.count("touch")
	if f.touchErr != nil {
		if err := f.touchErr(id); err != nil {
			return err
		}
	}
	return f.Queue.Touch(ctx, id)
}

func (f *faultQueue) Delete(ctx context.Context, id beanspike.ID) error {
	f.count("delete")
	return f.Queue.Delete(ctx, id)
}

func (f *faultQueue) Release(ctx context.Context, id beanspike.ID, pri uint32, delay time.Duration) error {
	f.count("release")
	return f.Queue.Release(ctx, id, pri, delay)
}

func (f *faultQueue) Bury(ctx context.Context, id beanspike.ID, pri uint32, reason string) error {
	f.count("bury")
	return f.Queue.Bury(ctx, id, pri, reason)
}

func TestNewWorkerRejectsBadArguments(t *testing.T) {
	t.Parallel()
	q, _ := newStore(t)
	h := beanspike.HandlerFunc(func(context.Context, *beanspike.Job) error { return nil })
	for _, tc := range []struct {
		name string
		q    beanspike.Queue
		h    beanspike.Handler
		opts []beanspike.WorkerOption
		want error
	}{
		{"nil queue", nil, h, nil, beanspike.ErrInvalidArgument},
		{"nil handler", q, nil, nil, beanspike.ErrInvalidArgument},
		{"bad tube", q, h, []beanspike.WorkerOption{beanspike.WithTubes("ok", "-bad")}, beanspike.ErrInvalidTube},
		{"zero concurrency", q, h, []beanspike.WorkerOption{beanspike.WithConcurrency(0)}, beanspike.ErrInvalidArgument},
		{"negative attempts", q, h, []beanspike.WorkerOption{beanspike.WithMaxAttempts(-1)}, beanspike.ErrInvalidArgument},
		{"zero backoff", q, h, []beanspike.WorkerOption{beanspike.WithBackoff(0, time.Second)}, beanspike.ErrInvalidArgument},
		{"max below base", q, h, []beanspike.WorkerOption{beanspike.WithBackoff(time.Second, time.Millisecond)}, beanspike.ErrInvalidArgument},
	} {
		w, err := beanspike.NewWorker(tc.q, tc.h, tc.opts...)
		if !errors.Is(err, tc.want) || w != nil {
			t.Errorf("%s: NewWorker = %v, %v; want nil, %v", tc.name, w, err, tc.want)
		}
	}
	if _, err := beanspike.NewWorker(q, h, beanspike.WithMaxAttempts(0), nil); err != nil {
		t.Errorf("NewWorker with unlimited attempts and a nil option: %v", err)
	}
}

func TestWorkerDeletesDoneJobs(t *testing.T) {
	t.Parallel()
	ctx := testContext(t)
	q, _ := newStore(t)
	var ids []beanspike.ID
	for i := range 5 {
		ids = append(ids, put(t, q, "mail", fmt.Sprint("job ", i), beanspike.WithPriority(uint32(10-i))))
	}
	var mu sync.Mutex
	var got []string
	done := make(chan struct{})
	var errs errorLog
	w := newWorker(t, q, func(ctx context.Context, j *beanspike.Job) error {
		mu.Lock()
		defer mu.Unlock()
		got = append(got, string(j.Body))
		if len(got) == len(ids) {
			close(done)
		}
		return nil
	}, beanspike.WithTubes("mail"), beanspike.WithErrorHandler(errs.handle))
	res := start(t, ctx, w)
	recv(t, done)
	if err := w.Shutdown(ctx); err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	if err := res.wait(t); err != nil {
		t.Fatalf("Run: %v", err)
	}
	// One handler at a time, so the jobs ran in priority order.
	want := []string{"job 4", "job 3", "job 2", "job 1", "job 0"}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("handled %q, want %q", got, want)
	}
	for _, id := range ids {
		if _, err := q.StatsJob(ctx, id); !errors.Is(err, beanspike.ErrNotFound) {
			t.Errorf("StatsJob(%d) after success: %v, want ErrNotFound", id, err)
		}
	}
	if ops := errs.ops(); len(ops) != 0 {
		t.Errorf("reported errors %v, want none", ops)
	}
}

func TestWorkerReleasesFailedJobWithBackoff(t *testing.T) {
	t.Parallel()
	ctx := testContext(t)
	q, _ := newStore(t)
	id := put(t, q, beanspike.DefaultTube, "flaky", beanspike.WithPriority(7))
	attempts := make(chan uint32, 10)
	var errs errorLog
	w := newWorker(t, q, func(ctx context.Context, j *beanspike.Job) error {
		attempts <- j.Reserves
		return errors.New("try later")
	}, beanspike.WithBackoff(10*time.Second, 15*time.Second), beanspike.WithErrorHandler(errs.handle))
	start(t, ctx, w)

	// Attempt k waits base·2^(k-1), capped at max, times a factor in [0.5, 1].
	for _, want := range []struct {
		attempt  uint32
		min, max time.Duration
	}{
		{1, 5 * time.Second, 10 * time.Second},
		{2, 7500 * time.Millisecond, 15 * time.Second}, // 20s capped at 15s
	} {
		if got := recv(t, attempts); got != want.attempt {
			t.Fatalf("handler saw attempt %d, want %d", got, want.attempt)
		}
		var st *beanspike.JobStats
		waitFor(t, "the job to be released", func() bool {
			st = statsJob(t, q, id)
			return st.State == beanspike.Delayed
		})
		if st.Delay < want.min || st.Delay > want.max {
			t.Errorf("attempt %d: released with delay %s, want within [%s, %s]", want.attempt, st.Delay, want.min, want.max)
		}
		if st.Priority != 7 || st.Releases != want.attempt || st.Buries != 0 {
			t.Errorf("attempt %d: priority %d, releases %d, buries %d; want 7, %d, 0", want.attempt, st.Priority, st.Releases, st.Buries, want.attempt)
		}
		if err := q.KickJob(ctx, id); err != nil {
			t.Fatalf("KickJob: %v", err)
		}
	}
	recv(t, attempts)
	if n := errs.count("handle"); n < 2 {
		t.Errorf("%d handler errors reported, want at least 2", n)
	}
}

func TestWorkerBuriesAfterMaxAttempts(t *testing.T) {
	t.Parallel()
	ctx := testContext(t)
	q, _ := newStore(t)
	id := put(t, q, beanspike.DefaultTube, "doomed", beanspike.WithPriority(3))
	var calls atomic.Int32
	w := newWorker(t, q, func(ctx context.Context, j *beanspike.Job) error {
		return fmt.Errorf("failure %d", calls.Add(1))
	}, beanspike.WithMaxAttempts(3), beanspike.WithBackoff(time.Millisecond, 2*time.Millisecond))
	start(t, ctx, w)
	var st *beanspike.JobStats
	waitFor(t, "the job to be buried", func() bool {
		st = statsJob(t, q, id)
		return st.State == beanspike.Buried
	})
	if st.BuryReason != "failure 3" || st.Reserves != 3 || st.Releases != 2 || st.Priority != 3 {
		t.Errorf("buried with reason %q after %d reserves, %d releases, priority %d; want \"failure 3\", 3, 2, 3",
			st.BuryReason, st.Reserves, st.Releases, st.Priority)
	}
	time.Sleep(20 * time.Millisecond)
	if n := calls.Load(); n != 3 {
		t.Errorf("handler ran %d times, want 3", n)
	}
}

func TestWorkerBuryJobSkipsRetries(t *testing.T) {
	t.Parallel()
	ctx := testContext(t)
	q, _ := newStore(t)
	wrapped := put(t, q, beanspike.DefaultTube, "wrapped")
	helper := put(t, q, beanspike.DefaultTube, "helper")
	w := newWorker(t, q, func(ctx context.Context, j *beanspike.Job) error {
		if string(j.Body) == "wrapped" {
			return fmt.Errorf("malformed body: %w", beanspike.ErrBury)
		}
		return beanspike.BuryJob(errors.New("unknown job kind"))
	})
	start(t, ctx, w)
	for id, reason := range map[beanspike.ID]string{
		wrapped: "malformed body: " + beanspike.ErrBury.Error(),
		helper:  "unknown job kind",
	} {
		var st *beanspike.JobStats
		waitFor(t, "the job to be buried", func() bool {
			st = statsJob(t, q, id)
			return st.State == beanspike.Buried
		})
		if st.BuryReason != reason || st.Reserves != 1 {
			t.Errorf("job %d buried with reason %q after %d reserves, want %q after 1", id, st.BuryReason, st.Reserves, reason)
		}
	}
}

func TestWorkerRetryAfterSetsDelay(t *testing.T) {
	t.Parallel()
	ctx := testContext(t)
	q, _ := newStore(t)
	id := put(t, q, beanspike.DefaultTube, "rate limited")
	w := newWorker(t, q, func(ctx context.Context, j *beanspike.Job) error {
		return beanspike.RetryAfter(errors.New("429"), 42*time.Second)
	})
	start(t, ctx, w)
	var st *beanspike.JobStats
	waitFor(t, "the job to be released", func() bool {
		st = statsJob(t, q, id)
		return st.State == beanspike.Delayed
	})
	if st.Delay != 42*time.Second {
		t.Errorf("released with delay %s, want 42s", st.Delay)
	}
}

func TestWorkerRecoversFromPanics(t *testing.T) {
	t.Parallel()
	ctx := testContext(t)
	q, _ := newStore(t)
	bad := put(t, q, beanspike.DefaultTube, "panic", beanspike.WithPriority(1))
	good := put(t, q, beanspike.DefaultTube, "fine", beanspike.WithPriority(2))
	var errs errorLog
	handled := make(chan string, 2)
	w := newWorker(t, q, func(ctx context.Context, j *beanspike.Job) error {
		handled <- string(j.Body)
		if string(j.Body) == "panic" {
			panicInHandler()
		}
		return nil
	}, beanspike.WithMaxAttempts(1), beanspike.WithErrorHandler(errs.handle))
	start(t, ctx, w)
	if got := recv(t, handled) + "," + recv(t, handled); got != "panic,fine" {
		t.Fatalf("handled %s, want panic,fine", got)
	}
	var st *beanspike.JobStats
	waitFor(t, "the panicking job to be buried", func() bool {
		st = statsJob(t, q, bad)
		return st.State == beanspike.Buried
	})
	if !strings.HasPrefix(st.BuryReason, "panic: kaboom\n") || !strings.Contains(st.BuryReason, "panicInHandler") {
		t.Errorf("bury reason %q, want the panic value and the stack", st.BuryReason)
	}
	waitFor(t, "the good job to be deleted", func() bool {
		_, err := q.StatsJob(ctx, good)
		return errors.Is(err, beanspike.ErrNotFound)
	})
	all := errs.all()
	var pe *beanspike.PanicError
	if len(all) != 1 || all[0].Op != "handle" || all[0].Job.ID != bad || !errors.As(all[0], &pe) || pe.Value != "kaboom" {
		t.Errorf("reported %v, want one handle error with a *PanicError of kaboom", all)
	}
}

func panicInHandler() { panic("kaboom") }

func TestWorkerTouchesLongJobs(t *testing.T) {
	t.Parallel()
	ctx := testContext(t)
	q, _ := newStore(t)
	// Touched every second, the job must outlive its TTR of 2s; a late
	// touch still has a second of slack on a loaded machine.
	id := put(t, q, beanspike.DefaultTube, "long", beanspike.WithTTR(2*time.Second))
	type result struct {
		ctxErr error
		st     *beanspike.JobStats
		err    error
	}
	results := make(chan result, 1)
	w := newWorker(t, q, func(ctx context.Context, j *beanspike.Job) error {
		select {
		case <-time.After(2500 * time.Millisecond):
		case <-ctx.Done():
		}
		st, err := q.StatsJob(context.Background(), j.ID)
		results <- result{ctx.Err(), st, err}
		return nil
	})
	start(t, ctx, w)
	r := recv(t, results)
	if r.ctxErr != nil {
		t.Errorf("handler context ended: %v", r.ctxErr)
	}
	if r.err != nil {
		t.Fatalf("StatsJob: %v", r.err)
	}
	if r.st.State != beanspike.Reserved || r.st.Timeouts != 0 || r.st.Reserves != 1 {
		t.Errorf("after 2.5s with a TTR of 2s: state %s, %d timeouts, %d reserves; want reserved, 0, 1",
			r.st.State, r.st.Timeouts, r.st.Reserves)
	}
	waitFor(t, "the job to be deleted", func() bool {
		_, err := q.StatsJob(ctx, id)
		return errors.Is(err, beanspike.ErrNotFound)
	})
}

func TestWorkerCancelsHandlerWhenJobIsDeleted(t *testing.T) {
	t.Parallel()
	ctx := testContext(t)
	q, newClient := newStore(t)
	other := newClient()
	put(t, q, "doomed", "long", beanspike.WithTTR(time.Second))
	started := make(chan struct{})
	causes := make(chan error, 1)
	var errs errorLog
	w := newWorker(t, q, func(ctx context.Context, j *beanspike.Job) error {
		close(started)
		<-ctx.Done()
		causes <- context.Cause(ctx)
		return ctx.Err()
	}, beanspike.WithTubes("doomed"), beanspike.WithErrorHandler(errs.handle))
	start(t, ctx, w)
	recv(t, started)
	if n, err := other.DeleteTube(ctx, "doomed"); err != nil || n != 1 {
		t.Fatalf("DeleteTube = %d, %v; want 1, nil", n, err)
	}
	cause := recv(t, causes)
	var we *beanspike.WorkerError
	if !errors.As(cause, &we) || we.Op != "touch" || !errors.Is(cause, beanspike.ErrNotFound) {
		t.Errorf("handler context cause %v, want a touch *WorkerError wrapping ErrNotFound", cause)
	}
	time.Sleep(20 * time.Millisecond)
	if ops := errs.ops(); fmt.Sprint(ops) != "[touch]" {
		t.Errorf("reported %v, want only the touch error", ops)
	}
}

func TestWorkerLeavesLostJobAlone(t *testing.T) {
	t.Parallel()
	ctx := testContext(t)
	q, _ := newStore(t)
	id := put(t, q, beanspike.DefaultTube, "lost", beanspike.WithTTR(time.Second))
	fq := &faultQueue{Queue: q, touchErr: func(beanspike.ID) error {
		return fmt.Errorf("%w: lapsed", beanspike.ErrNotReserved)
	}}
	returned := make(chan struct{})
	w := newWorker(t, fq, func(ctx context.Context, j *beanspike.Job) error {
		defer close(returned)
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(5 * time.Second):
			return errors.New("handler context not cancelled")
		}
	})
	start(t, ctx, w)
	recv(t, returned)
	// Give the worker time to act wrongly on the job.
	time.Sleep(50 * time.Millisecond)
	if n := fq.Calls("delete") + fq.Calls("release") + fq.Calls("bury"); n != 0 {
		t.Errorf("worker acted %d times on a job it lost", n)
	}
	if st := statsJob(t, q, id); st.State != beanspike.Reserved {
		t.Errorf("job state %s, want still reserved", st.State)
	}
}

func TestWorkerRespectsConcurrency(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name    string
		batcher bool
	}{{"batcher", true}, {"no batcher", false}} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			const n, jobs = 3, 15
			ctx := testContext(t)
			mq, _ := newStore(t)
			var q beanspike.Queue = mq
			if !tc.batcher {
				q = &faultQueue{Queue: mq}
			}
			for i := range jobs {
				put(t, q, beanspike.DefaultTube, fmt.Sprint(i))
			}
			var running, peak, handled atomic.Int32
			done := make(chan struct{})
			var overReserved atomic.Int32
			w := newWorker(t, q, func(ctx context.Context, j *beanspike.Job) error {
				now := running.Add(1)
				defer running.Add(-1)
				for {
					p := peak.Load()
					if now <= p || peak.CompareAndSwap(p, now) {
						break
					}
				}
				if st, err := q.StatsTube(ctx, beanspike.DefaultTube); err != nil || st.Reserved > n {
					overReserved.Add(1)
				}
				time.Sleep(20 * time.Millisecond)
				if handled.Add(1) == jobs {
					close(done)
				}
				return nil
			}, beanspike.WithConcurrency(n))
			res := start(t, ctx, w)
			recv(t, done)
			if err := w.Shutdown(ctx); err != nil {
				t.Fatalf("Shutdown: %v", err)
			}
			if err := res.wait(t); err != nil {
				t.Fatalf("Run: %v", err)
			}
			if p := peak.Load(); p != n {
				t.Errorf("at most %d handlers ran at once, want %d", p, n)
			}
			if o := overReserved.Load(); o != 0 {
				t.Errorf("%d times more than %d jobs were reserved", o, n)
			}
			st, err := q.StatsTube(ctx, beanspike.DefaultTube)
			if err != nil || st.Ready+st.Reserved+st.Delayed+st.Buried != 0 {
				t.Errorf("tube after the run: %+v, %v; want empty", st, err)
			}
		})
	}
}

func TestWorkerShutdownWaitsForHandlers(t *testing.T) {
	t.Parallel()
	ctx := testContext(t)
	q, _ := newStore(t)
	id := put(t, q, beanspike.DefaultTube, "slow")
	put(t, q, beanspike.DefaultTube, "never started")
	started := make(chan struct{})
	var finished atomic.Bool
	w := newWorker(t, q, func(ctx context.Context, j *beanspike.Job) error {
		close(started)
		time.Sleep(200 * time.Millisecond)
		finished.Store(ctx.Err() == nil)
		return nil
	})
	res := start(t, ctx, w)
	recv(t, started)
	if err := w.Shutdown(ctx); err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	if !finished.Load() {
		t.Error("Shutdown returned before the handler finished, or cancelled it")
	}
	if _, err := q.StatsJob(ctx, id); !errors.Is(err, beanspike.ErrNotFound) {
		t.Errorf("StatsJob after Shutdown: %v, want ErrNotFound", err)
	}
	if err := res.wait(t); err != nil {
		t.Errorf("Run: %v, want nil", err)
	}
	st, err := q.StatsTube(ctx, beanspike.DefaultTube)
	if err != nil || st.Ready != 1 || st.Reserved != 0 {
		t.Errorf("tube after Shutdown: %+v, %v; want 1 ready job, none reserved", st, err)
	}
	if err := w.Run(ctx); !errors.Is(err, beanspike.ErrWorkerStarted) {
		t.Errorf("second Run: %v, want ErrWorkerStarted", err)
	}
	if err := w.Shutdown(ctx); err != nil {
		t.Errorf("second Shutdown: %v", err)
	}
}

func TestWorkerShutdownTimeoutStopsHard(t *testing.T) {
	t.Parallel()
	ctx := testContext(t)
	q, _ := newStore(t)
	id := put(t, q, beanspike.DefaultTube, "stuck", beanspike.WithPriority(5))
	started := make(chan struct{})
	w := newWorker(t, q, func(ctx context.Context, j *beanspike.Job) error {
		close(started)
		<-ctx.Done()
		return ctx.Err()
	})
	res := start(t, ctx, w)
	recv(t, started)
	sctx, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
	defer cancel()
	if err := w.Shutdown(sctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Shutdown: %v, want DeadlineExceeded", err)
	}
	if err := res.wait(t); err != nil {
		t.Errorf("Run: %v, want nil", err)
	}
	st := statsJob(t, q, id)
	if st.State != beanspike.Ready || st.Releases != 1 || st.Priority != 5 || st.Timeouts != 0 {
		t.Errorf("job after hard stop: state %s, %d releases, priority %d, %d timeouts; want ready, 1, 5, 0",
			st.State, st.Releases, st.Priority, st.Timeouts)
	}
}

func TestWorkerRunContextCancelStopsHard(t *testing.T) {
	t.Parallel()
	ctx := testContext(t)
	q, _ := newStore(t)
	quit := put(t, q, beanspike.DefaultTube, "quit", beanspike.WithPriority(1))
	finish := put(t, q, beanspike.DefaultTube, "finish", beanspike.WithPriority(2))
	waiting := put(t, q, beanspike.DefaultTube, "waiting", beanspike.WithPriority(3))
	var started sync.WaitGroup
	started.Add(2)
	w := newWorker(t, q, func(ctx context.Context, j *beanspike.Job) error {
		started.Done()
		<-ctx.Done()
		if string(j.Body) == "finish" {
			return nil // completed in spite of the stop
		}
		return ctx.Err()
	}, beanspike.WithConcurrency(2))
	rctx, cancel := context.WithCancel(ctx)
	res := start(t, rctx, w)
	started.Wait()
	cancel()
	if err := res.wait(t); !errors.Is(err, context.Canceled) {
		t.Errorf("Run: %v, want context.Canceled", err)
	}
	if st := statsJob(t, q, quit); st.State != beanspike.Ready || st.Releases != 1 {
		t.Errorf("cancelled job: state %s, %d releases; want ready, 1", st.State, st.Releases)
	}
	if _, err := q.StatsJob(ctx, finish); !errors.Is(err, beanspike.ErrNotFound) {
		t.Errorf("finished job: StatsJob = %v, want ErrNotFound", err)
	}
	if st := statsJob(t, q, waiting); st.State != beanspike.Ready || st.Reserves != 0 {
		t.Errorf("waiting job: state %s, %d reserves; want ready, 0", st.State, st.Reserves)
	}
}

func TestWorkerShutdownBeforeRun(t *testing.T) {
	t.Parallel()
	ctx := testContext(t)
	q, _ := newStore(t)
	id := put(t, q, beanspike.DefaultTube, "untouched")
	w := newWorker(t, q, func(context.Context, *beanspike.Job) error { return nil })
	if err := w.Shutdown(ctx); err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	if err := w.Run(ctx); err != nil {
		t.Fatalf("Run after Shutdown: %v, want nil", err)
	}
	if st := statsJob(t, q, id); st.Reserves != 0 {
		t.Errorf("job reserved %d times by a worker shut down before it ran", st.Reserves)
	}
}

func TestWorkerRetriesReserveErrors(t *testing.T) {
	t.Parallel()
	ctx := testContext(t)
	q, _ := newStore(t)
	id := put(t, q, beanspike.DefaultTube, "eventually")
	fq := &faultQueue{Queue: q, reserveErr: func(n int) error {
		if n <= 3 {
			return fmt.Errorf("%w: injected %d", beanspike.ErrUnavailable, n)
		}
		return nil
	}}
	var errs errorLog
	done := make(chan struct{})
	w := newWorker(t, fq, func(context.Context, *beanspike.Job) error {
		close(done)
		return nil
	}, beanspike.WithErrorHandler(errs.handle))
	begin := time.Now()
	start(t, ctx, w)
	recv(t, done)
	// Retries wait 50ms, 100ms, 200ms, each times a factor in [0.5, 1].
	if d := time.Since(begin); d < 175*time.Millisecond {
		t.Errorf("three failed reserves took %s, want at least 175ms of backoff", d)
	}
	if ops := errs.ops(); fmt.Sprint(ops) != "[reserve reserve reserve]" {
		t.Errorf("reported %v, want three reserve errors", ops)
	}
	for _, e := range errs.all() {
		if !errors.Is(e, beanspike.ErrUnavailable) || e.Job != nil {
			t.Errorf("reported %v (job %v), want ErrUnavailable without a job", e, e.Job)
		}
	}
	waitFor(t, "the job to be deleted", func() bool {
		_, err := q.StatsJob(ctx, id)
		return errors.Is(err, beanspike.ErrNotFound)
	})
}

func TestWorkerStopsWhenQueueCloses(t *testing.T) {
	t.Parallel()
	ctx := testContext(t)
	_, newClient := newStore(t)
	c := newClient()
	put(t, c, beanspike.DefaultTube, "not yet", beanspike.WithDelay(time.Hour)) // makes the tube
	w := newWorker(t, c, func(context.Context, *beanspike.Job) error { return nil })
	res := start(t, ctx, w)
	waitFor(t, "the worker to wait in Reserve", func() bool {
		st, err := c.StatsTube(ctx, beanspike.DefaultTube)
		return err == nil && st.Waiting == 1
	})
	c.Close()
	if err := res.wait(t); !errors.Is(err, beanspike.ErrClosed) {
		t.Errorf("Run: %v, want ErrClosed", err)
	}
}

func TestWorkerWatchesItsTubes(t *testing.T) {
	t.Parallel()
	ctx := testContext(t)
	q, _ := newStore(t)
	put(t, q, "a", "from a", beanspike.WithPriority(1))
	other := put(t, q, beanspike.DefaultTube, "from default")
	put(t, q, "b", "from b", beanspike.WithPriority(2))
	got := make(chan string, 3)
	w := newWorker(t, q, func(ctx context.Context, j *beanspike.Job) error {
		got <- j.Tube + ":" + string(j.Body)
		return nil
	}, beanspike.WithTubes("a", "b"))
	start(t, ctx, w)
	if s := recv(t, got) + "," + recv(t, got); s != "a:from a,b:from b" {
		t.Errorf("handled %s, want a:from a,b:from b", s)
	}
	time.Sleep(20 * time.Millisecond)
	if st := statsJob(t, q, other); st.Reserves != 0 {
		t.Errorf("job of an unwatched tube reserved %d times", st.Reserves)
	}
}

// TestWorkerLeavesNoGoroutines runs workers through every way of
// stopping and checks that the goroutine count returns to where it was.
// It does not run in parallel, so that other tests do not move the count.
func TestWorkerLeavesNoGoroutines(t *testing.T) {
	ctx := testContext(t)
	q, newClient := newStore(t)
	base := runtime.NumGoroutine()

	handler := func(ctx context.Context, j *beanspike.Job) error {
		switch string(j.Body) {
		case "block":
			<-ctx.Done()
			return ctx.Err()
		case "fail":
			return errors.New("failed")
		case "panic":
			panic("boom")
		}
		return nil
	}
	fill := func() {
		for _, b := range []string{"ok", "fail", "panic", "block", "block", "ok"} {
			put(t, q, beanspike.DefaultTube, b, beanspike.WithTTR(time.Second))
		}
	}
	waitBusy := func() {
		waitFor(t, "handlers to block", func() bool {
			st, err := q.StatsTube(ctx, beanspike.DefaultTube)
			return err == nil && st.Reserved == 2 && st.Ready == 0
		})
	}

	// Hard stop by Run's context.
	fill()
	rctx, cancel := context.WithCancel(ctx)
	w := newWorker(t, q, handler, beanspike.WithConcurrency(4), beanspike.WithMaxAttempts(1))
	res := goRun(rctx, w)
	waitBusy()
	cancel()
	res.wait(t)

	// Shutdown whose context expires.
	w = newWorker(t, q, handler, beanspike.WithConcurrency(4), beanspike.WithMaxAttempts(1))
	res = goRun(ctx, w)
	waitBusy()
	sctx, scancel := context.WithTimeout(ctx, 20*time.Millisecond)
	w.Shutdown(sctx)
	scancel()
	res.wait(t)

	// Graceful Shutdown of an idle worker blocked in Reserve.
	put(t, q, "empty", "not yet", beanspike.WithDelay(time.Hour)) // makes the tube
	w = newWorker(t, q, handler, beanspike.WithTubes("empty"))
	res = goRun(ctx, w)
	waitFor(t, "the worker to wait in Reserve", func() bool {
		st, err := q.StatsTube(ctx, "empty")
		return err == nil && st.Waiting == 1
	})
	if err := w.Shutdown(ctx); err != nil {
		t.Errorf("Shutdown: %v", err)
	}
	res.wait(t)

	// A lost reservation, then the queue closing under the worker.
	c := newClient()
	put(t, q, "lost", "block", beanspike.WithTTR(time.Second))
	w = newWorker(t, c, handler, beanspike.WithTubes("lost"))
	res = goRun(ctx, w)
	waitFor(t, "the job to be reserved", func() bool {
		st, err := q.StatsTube(ctx, "lost")
		return err == nil && st.Reserved == 1
	})
	if _, err := q.DeleteTube(ctx, "lost"); err != nil {
		t.Fatalf("DeleteTube: %v", err)
	}
	time.Sleep(600 * time.Millisecond) // the next touch finds the job gone
	c.Close()
	if err := res.wait(t); !errors.Is(err, beanspike.ErrClosed) {
		t.Errorf("Run: %v, want ErrClosed", err)
	}

	var n int
	deadline := time.Now().Add(5 * time.Second)
	for n = runtime.NumGoroutine(); n > base && time.Now().Before(deadline); n = runtime.NumGoroutine() {
		time.Sleep(5 * time.Millisecond)
	}
	if n > base {
		buf := make([]byte, 1<<20)
		t.Errorf("%d goroutines left, %d before the workers ran:\n%s", n, base, buf[:runtime.Stack(buf, true)])
	}
}

func TestWorkerKeepsJobAfterTransientTouchFailure(t *testing.T) {
	t.Parallel()
	ctx := testContext(t)
	q, _ := newStore(t)
	// The first touch, after 1s, fails; the retry a quarter interval
	// later must keep the job past its TTR of 2s.
	id := put(t, q, beanspike.DefaultTube, "long", beanspike.WithTTR(2*time.Second))
	var touches atomic.Int32
	fq := &faultQueue{Queue: q, touchErr: func(beanspike.ID) error {
		if touches.Add(1) == 1 {
			return fmt.Errorf("%w: injected", beanspike.ErrUnavailable)
		}
		return nil
	}}
	var errs errorLog
	results := make(chan error, 1)
	w := newWorker(t, fq, func(ctx context.Context, j *beanspike.Job) error {
		select {
		case <-time.After(2400 * time.Millisecond):
		case <-ctx.Done():
		}
		st, err := q.StatsJob(context.Background(), j.ID)
		if err == nil && (st.Timeouts != 0 || st.State != beanspike.Reserved) {
			err = fmt.Errorf("state %s with %d timeouts, want reserved with none", st.State, st.Timeouts)
		}
		results <- errors.Join(ctx.Err(), err)
		return nil
	}, beanspike.WithErrorHandler(errs.handle))
	start(t, ctx, w)
	if err := recv(t, results); err != nil {
		t.Errorf("handler: %v", err)
	}
	waitFor(t, "the job to be deleted", func() bool {
		_, err := q.StatsJob(ctx, id)
		return errors.Is(err, beanspike.ErrNotFound)
	})
	if n := touches.Load(); n < 2 {
		t.Errorf("%d touches, want a retry after the failed one", n)
	}
	if ops := errs.ops(); fmt.Sprint(ops) != "[touch]" {
		t.Errorf("reported %v, want one touch error", ops)
	}
}

// BenchmarkWorker measures how fast a worker burns down a tube of no-op
// jobs on the memory backend.
func BenchmarkWorker(b *testing.B) {
	for _, n := range []int{1, 8} {
		b.Run(fmt.Sprint("concurrency=", n), func(b *testing.B) {
			ctx := context.Background()
			q, err := memory.New()
			if err != nil {
				b.Fatal(err)
			}
			defer q.Close()
			body := make([]byte, 64)
			for range b.N {
				if _, err := q.Put(ctx, beanspike.DefaultTube, body); err != nil {
					b.Fatal(err)
				}
			}
			var left atomic.Int64
			left.Store(int64(b.N))
			done := make(chan struct{})
			w, err := beanspike.NewWorker(q, beanspike.HandlerFunc(func(context.Context, *beanspike.Job) error {
				if left.Add(-1) == 0 {
					close(done)
				}
				return nil
			}), beanspike.WithConcurrency(n))
			if err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			b.ResetTimer()
			res := make(chan error, 1)
			go func() { res <- w.Run(ctx) }()
			<-done
			b.StopTimer()
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "jobs/s")
			if err := w.Shutdown(ctx); err != nil {
				b.Fatal(err)
			}
			if err := <-res; err != nil {
				b.Fatal(err)
			}
		})
	}
}

// A handler past its time limit has its context cancelled with
// ErrJobTimeout; its error is a failure, reported wrapping ErrJobTimeout,
// and the job is released for another attempt.
func TestWorkerJobTimeoutReleases(t *testing.T) {
	q, _ := newStore(t)
	ctx := testContext(t)
	id := put(t, q, beanspike.DefaultTube, "slow", beanspike.WithTTR(10*time.Second))
	var errs []error
	var mu sync.Mutex
	causes := make(chan error, 1)
	w, err := beanspike.NewWorker(q, beanspike.HandlerFunc(func(ctx context.Context, j *beanspike.Job) error {
		<-ctx.Done()
		causes <- context.Cause(ctx)
		return ctx.Err()
	}), beanspike.WithJobTimeout(50*time.Millisecond), beanspike.WithBackoff(time.Hour, time.Hour),
		beanspike.WithErrorHandler(func(err error) { mu.Lock(); errs = append(errs, err); mu.Unlock() }))
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx) }()
	select {
	case cause := <-causes:
		if !errors.Is(cause, beanspike.ErrJobTimeout) {
			t.Fatalf("handler's context cause = %v, want ErrJobTimeout", cause)
		}
	case <-ctx.Done():
		t.Fatal("the handler's context was not cancelled")
	}
	waitState(t, q, id, beanspike.Delayed)
	if err := w.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	<-done
	mu.Lock()
	defer mu.Unlock()
	if len(errs) != 1 || !errors.Is(errs[0], beanspike.ErrJobTimeout) {
		t.Fatalf("reported %v, want one failure wrapping ErrJobTimeout", errs)
	}
}

// A handler that ignores its context past its time limit no longer keeps
// its job: the worker stops touching it, the reservation lapses at the
// end of the TTR, and another worker gets the job.
func TestWorkerJobTimeoutFreesHungJob(t *testing.T) {
	q, newClient := newStore(t)
	ctx := testContext(t)
	id := put(t, q, beanspike.DefaultTube, "hang", beanspike.WithTTR(beanspike.MinTTR))
	release := make(chan struct{})
	started := make(chan struct{}, 1)
	w, err := beanspike.NewWorker(q, beanspike.HandlerFunc(func(context.Context, *beanspike.Job) error {
		started <- struct{}{}
		<-release // ignores its context
		return nil
	}), beanspike.WithJobTimeoutFunc(func(j *beanspike.Job) time.Duration {
		if string(j.Body) == "hang" {
			return 100 * time.Millisecond
		}
		return 0
	}))
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx) }()
	<-started
	other := newClient()
	rctx, cancel := context.WithTimeout(ctx, 5*beanspike.MinTTR)
	j, err := other.Reserve(rctx)
	cancel()
	if err != nil || j.ID != id {
		t.Fatalf("another client's Reserve of the hung job = %v, %v; want job %d after its TTR", j, err, id)
	}
	if err := other.Delete(ctx, j.ID); err != nil {
		t.Fatal(err)
	}
	close(release)
	if err := w.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	<-done
}

func TestWorkerRejectsNegativeJobTimeout(t *testing.T) {
	q, _ := newStore(t)
	_, err := beanspike.NewWorker(q, beanspike.HandlerFunc(func(context.Context, *beanspike.Job) error { return nil }),
		beanspike.WithJobTimeout(-time.Second))
	if !errors.Is(err, beanspike.ErrInvalidArgument) {
		t.Fatalf("NewWorker with a negative job timeout: %v, want ErrInvalidArgument", err)
	}
}

// WithLogger logs each failure with the job's ID and tube.
func TestWorkerLogs(t *testing.T) {
	q, _ := newStore(t)
	ctx := testContext(t)
	id := put(t, q, "logged", "x")
	var buf syncbuf.Buffer
	failed := make(chan struct{}, 1)
	w, err := beanspike.NewWorker(q, beanspike.HandlerFunc(func(context.Context, *beanspike.Job) error {
		defer func() { failed <- struct{}{} }()
		return errors.New("boom")
	}), beanspike.WithTubes("logged"), beanspike.WithBackoff(time.Hour, time.Hour),
		beanspike.WithLogger(slog.New(slog.NewTextHandler(&buf, nil))))
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx) }()
	<-failed
	waitState(t, q, id, beanspike.Delayed)
	if err := w.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	<-done
	out := buf.String()
	for _, want := range []string{"level=WARN", "op=handle", "err=boom", fmt.Sprintf("job=%d", id), "tube=logged"} {
		if !strings.Contains(out, want) {
			t.Fatalf("log lacks %q:\n%s", want, out)
		}
	}
}

// waitState waits until job id is in state.
func waitState(t *testing.T, q beanspike.Queue, id beanspike.ID, state beanspike.State) {
	t.Helper()
	waitFor(t, fmt.Sprintf("job %d to be %s", id, state), func() bool {
		return statsJob(t, q, id).State == state
	})
}
