package beanspike

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"runtime/debug"
	"strings"
	"sync"
	"time"
)

// Worker defaults.
const (
	// DefaultConcurrency is how many handlers a [Worker] runs at once
	// without [WithConcurrency]: one, so that jobs run one at a time in
	// the order Reserve gives them, as with a plain beanstalkd worker.
	DefaultConcurrency = 1
	// DefaultMaxAttempts is how many times a [Worker] runs a failing job
	// before it buries it, without [WithMaxAttempts].
	DefaultMaxAttempts = 25
	// DefaultBackoffBase and DefaultBackoffMax bound the retry delay of
	// a [Worker] without [WithBackoff].
	DefaultBackoffBase, DefaultBackoffMax = time.Second, time.Hour
	// MaxBuryReason is the longest bury reason, in bytes, that a
	// [Worker] writes: longer handler error texts are cut to it.
	MaxBuryReason = 8 << 10
)

// Delays between Reserve calls that keep failing.
const (
	reserveBackoffBase = 50 * time.Millisecond
	reserveBackoffMax  = 5 * time.Second
)

// ErrBury, wrapped in a handler's error, makes the [Worker] bury the job
// at once, whatever its attempts, with the error's text as the reason.
// Use it for jobs that retrying cannot fix (a malformed body, say). See
// also [BuryJob].
var ErrBury = errors.New("beanspike: bury job")

// ErrJobTimeout is the cause of a handler's cancelled context, and is
// wrapped in the failure the [Worker] reports, when the handler ran past
// its time limit ([WithJobTimeout], [WithJobTimeoutFunc]).
var ErrJobTimeout = errors.New("beanspike: job ran past its time limit")

// ErrWorkerStarted is returned by [Worker.Run] when Run was already
// called on the worker: a Worker runs once. Make a new one to run again.
var ErrWorkerStarted = errors.New("beanspike: worker already started")

// Handler processes one job for a [Worker].
//
// Handle returns nil when the job is done: the worker then deletes it.
// Any other result is a failure: the worker releases the job with a
// backoff delay to try again, or buries it (see [Worker]). ctx is
// cancelled when the worker stops hard or loses the job's reservation;
// context.Cause(ctx) then tells which. A handler may run more than once
// for the same job (delivery is at least once) and must be idempotent.
type Handler interface {
	Handle(ctx context.Context, job *Job) error
}

// HandlerFunc adapts a function to the [Handler] interface.
type HandlerFunc func(ctx context.Context, job *Job) error

// Handle calls f(ctx, job).
func (f HandlerFunc) Handle(ctx context.Context, job *Job) error { return f(ctx, job) }

// WorkerOption sets an option of [NewWorker].
type WorkerOption func(*workerOptions)

type workerOptions struct {
	tubes       []string
	concurrency int
	maxAttempts int
	backoffBase time.Duration
	backoffMax  time.Duration
	onError     func(error)
	jobTimeout  time.Duration
	timeoutFunc func(*Job) time.Duration
	logger      *slog.Logger
}

// WithTubes sets the tubes the worker reserves jobs from. Defaults to
// [DefaultTube]. Invalid names make [NewWorker] fail with
// [ErrInvalidTube].
func WithTubes(tubes ...string) WorkerOption {
	tubes = append([]string(nil), tubes...)
	return func(o *workerOptions) { o.tubes = tubes }
}

// WithConcurrency sets how many handlers run at once, and so how many
// jobs the worker holds reserved at most. Defaults to
// [DefaultConcurrency]; n < 1 makes [NewWorker] fail with
// [ErrInvalidArgument].
func WithConcurrency(n int) WorkerOption {
	return func(o *workerOptions) { o.concurrency = n }
}

// WithMaxAttempts sets how many reservations a failing job gets before
// the worker buries it instead of releasing it: a job whose
// [Job.Reserves] has reached n is buried when its handler fails. Zero
// means no limit. Defaults to [DefaultMaxAttempts]; n < 0 makes
// [NewWorker] fail with [ErrInvalidArgument].
func WithMaxAttempts(n int) WorkerOption {
	return func(o *workerOptions) { o.maxAttempts = n }
}

// WithBackoff sets the retry delay of failed jobs: attempt k waits
// base·2^(k-1), capped at max, then scaled by a random factor in
// [0.5, 1] so that jobs that failed together do not retry together.
// Defaults to [DefaultBackoffBase] and [DefaultBackoffMax]; base <= 0
// or max < base makes [NewWorker] fail with [ErrInvalidArgument].
func WithBackoff(base, max time.Duration) WorkerOption {
	return func(o *workerOptions) { o.backoffBase, o.backoffMax = base, max }
}

// WithErrorHandler sets a function the worker calls with every failure
// it meets: a failed Reserve, Touch, Delete, Release or Bury, and a
// handler's error or panic. Each error is a [*WorkerError]. The function
// is called from the worker's goroutines, possibly concurrently, and
// should return quickly. Defaults to none.
func WithErrorHandler(f func(error)) WorkerOption {
	return func(o *workerOptions) { o.onError = f }
}

// WithJobTimeout limits how long the handler may run on one job. When
// the limit passes, the handler's context is cancelled with
// [ErrJobTimeout] as its cause and the worker stops touching the job: a
// handler that then returns an error has failed (the job is released
// with a backoff, or buried once it has used its attempts; the error
// reported wraps ErrJobTimeout), one that returns nil has done the job,
// which is deleted if it is still reserved, and a handler that ignores
// its context loses the job when its TTR runs out, for another worker to
// take. Zero, the default, means no limit; d < 0 makes
// [NewWorker] fail with [ErrInvalidArgument].
func WithJobTimeout(d time.Duration) WorkerOption {
	return func(o *workerOptions) { o.jobTimeout = d }
}

// WithJobTimeoutFunc sets the time limit of each job from the job itself
// (its tube, its priority, its body), as [WithJobTimeout] does for all,
// and in its place: f is called when the job starts; a result of zero or
// less means no limit for that job.
func WithJobTimeoutFunc(f func(*Job) time.Duration) WorkerOption {
	return func(o *workerOptions) { o.timeoutFunc = f }
}

// WithLogger makes the worker log what it reports to its error handler
// (a failed handler at Warn, a lost job or a failed queue call at Error),
// with the job's ID and tube. Defaults to no logging.
func WithLogger(l *slog.Logger) WorkerOption {
	return func(o *workerOptions) { o.logger = l }
}

// WorkerError is a failure reported by a [Worker] to its error handler,
// and the cause of a handler's cancelled context when the worker lost
// the job's reservation.
type WorkerError struct {
	// Op is what failed: "reserve", "handle", "touch", "delete",
	// "release" or "bury".
	Op string
	// Job is the job concerned; nil for "reserve".
	Job *Job
	// Err is the error.
	Err error
}

// Error describes the failure.
func (e *WorkerError) Error() string {
	if e.Job == nil {
		return "beanspike: worker " + e.Op + ": " + e.Err.Error()
	}
	return fmt.Sprintf("beanspike: worker %s job %d: %v", e.Op, e.Job.ID, e.Err)
}

// Unwrap returns e.Err.
func (e *WorkerError) Unwrap() error { return e.Err }

// PanicError is the error a [Worker] records for a handler that
// panicked. Its text, used as the bury reason, holds the panic value
// and the handler's stack.
type PanicError struct {
	// Value is the value the handler panicked with.
	Value any
	// Stack is the stack of the panicking goroutine.
	Stack []byte
}

// Error returns the panic value and the stack.
func (e *PanicError) Error() string {
	return fmt.Sprintf("panic: %v\n\n%s", e.Value, e.Stack)
}

// Unwrap returns the panic value if it is an error, and nil otherwise.
func (e *PanicError) Unwrap() error {
	err, _ := e.Value.(error)
	return err
}

// BuryJob returns an error that makes the [Worker] bury the job at once
// with err's text as the reason. The result wraps both err and
// [ErrBury].
func BuryJob(err error) error {
	if err == nil {
		return ErrBury
	}
	return &buryError{err}
}

type buryError struct{ err error }

func (e *buryError) Error() string   { return e.err.Error() }
func (e *buryError) Unwrap() []error { return []error{e.err, ErrBury} }

// RetryAfter returns an error that makes the [Worker] release the job
// with delay d instead of its backoff delay, unless the job has used up
// its attempts, in which case it is buried as usual. The result wraps
// err. A negative d counts as zero.
func RetryAfter(err error, d time.Duration) error {
	return &retryError{err: err, delay: max(d, 0)}
}

type retryError struct {
	err   error
	delay time.Duration
}

func (e *retryError) Error() string {
	if e.err == nil {
		return "beanspike: retry after " + e.delay.String()
	}
	return e.err.Error()
}

func (e *retryError) Unwrap() error { return e.err }

// A Worker reserves jobs from a [Queue] and runs a [Handler] on each, in
// up to [WithConcurrency] goroutines.
//
// For each job the worker:
//
//   - runs the handler with a context derived from Run's, and touches the
//     job every half TTR while the handler runs, so that a long handler
//     keeps its reservation. If a Touch fails with [ErrNotReserved],
//     [ErrNotFound] or [ErrClosed], the job is lost (its reservation
//     lapsed, it was deleted, or the client closed): the worker cancels
//     the handler's context, with a [*WorkerError] as its cause, and
//     does nothing more with the job.
//   - deletes the job when the handler returns nil.
//   - buries the job, with the error's text as the reason, when the
//     handler's error wraps [ErrBury] (see [BuryJob]) or the job has
//     been reserved [WithMaxAttempts] times; the attempt count is
//     [Job.Reserves], so reservations that lapsed count too.
//   - otherwise releases the job, with its priority unchanged and a delay
//     that grows exponentially with its attempts ([WithBackoff]), or the
//     delay given to [RetryAfter].
//
// A panicking handler counts as a failing one, with a [*PanicError];
// the worker keeps running. A handler may be given a time limit
// ([WithJobTimeout], or per job [WithJobTimeoutFunc]); past it, its
// context ends with [ErrJobTimeout] and the job is no longer touched, so
// that a hung handler does not hold its job beyond the job's TTR.
//
// The worker holds at most as many reserved jobs as it has idle
// handlers: it reserves only for free slots, with [ReserveBatch] when
// several are free. Each job runs in a goroutine of its own; with a
// concurrency of 1, each handler call returns before the next begins.
//
// # Delivery semantics
//
// Delivery is at least once. A job runs again if its handler fails, if
// the process dies while running it (the reservation lapses after the
// TTR), if a Touch comes too late, or if the Delete after a successful
// run fails. Handlers must be idempotent.
//
// # Stopping
//
// [Worker.Shutdown] stops gracefully: the worker reserves no more jobs
// and waits for running handlers to finish and their jobs to be deleted,
// released or buried. Cancelling Run's context is a hard stop: handlers'
// contexts are cancelled, and each job whose handler then returns an
// error is released at once, with its priority and no delay, for
// another worker to take (a job whose handler returns nil is deleted).
// Jobs reserved but not yet started are released the same way. The
// Delete, Release and Bury calls that settle a job are not cut short by
// a stop: each is bounded by the job's TTR.
type Worker struct {
	q     Queue
	h     Handler
	opts  workerOptions
	tubes []string

	rngMu sync.Mutex
	rng   *rand.Rand

	mu      sync.Mutex
	started bool               // Run was called
	ended   bool               // Run returned, or Shutdown came before Run
	stop    context.CancelFunc // stops reserving; nil until Run
	halt    context.CancelFunc // hard stop; nil until Run
	done    chan struct{}      // closed when ended is set
}

// NewWorker returns a worker that runs h on jobs reserved from q. It
// fails with [ErrInvalidArgument] when q or h is nil or an option is
// out of range, and with [ErrInvalidTube] for a bad tube name.
func NewWorker(q Queue, h Handler, opts ...WorkerOption) (*Worker, error) {
	if q == nil {
		return nil, errorf(ErrInvalidArgument, "nil queue")
	}
	if h == nil {
		return nil, errorf(ErrInvalidArgument, "nil handler")
	}
	o := workerOptions{
		concurrency: DefaultConcurrency,
		maxAttempts: DefaultMaxAttempts,
		backoffBase: DefaultBackoffBase,
		backoffMax:  DefaultBackoffMax,
	}
	for _, opt := range opts {
		if opt != nil {
			opt(&o)
		}
	}
	tubes, err := NormalizeTubes(o.tubes)
	if err != nil {
		return nil, err
	}
	switch {
	case o.concurrency < 1:
		return nil, errorf(ErrInvalidArgument, "concurrency %d is below 1", o.concurrency)
	case o.maxAttempts < 0:
		return nil, errorf(ErrInvalidArgument, "negative max attempts %d", o.maxAttempts)
	case o.backoffBase <= 0:
		return nil, errorf(ErrInvalidArgument, "backoff base %s is not positive", o.backoffBase)
	case o.backoffMax < o.backoffBase:
		return nil, errorf(ErrInvalidArgument, "backoff max %s is below base %s", o.backoffMax, o.backoffBase)
	case o.jobTimeout < 0:
		return nil, errorf(ErrInvalidArgument, "negative job timeout %s", o.jobTimeout)
	}
	return &Worker{
		q:     q,
		h:     h,
		opts:  o,
		tubes: tubes,
		rng:   rand.New(rand.NewPCG(rand.Uint64(), rand.Uint64())),
		done:  make(chan struct{}),
	}, nil
}

// Run reserves and handles jobs until ctx is done or [Worker.Shutdown]
// is called, and returns when every handler it started has returned and
// its job has been settled. A handler that ignores its context keeps Run
// from returning.
//
// Run returns ctx.Err() when ctx ended it (a hard stop, see [Worker]),
// nil when Shutdown did (or was called before Run), and the Reserve
// error, wrapping [ErrClosed], when the queue was closed under it. It
// returns [ErrWorkerStarted] if Run was called before. Other Reserve
// errors do not stop Run: it reports them to the error handler and
// tries again after a growing delay.
func (w *Worker) Run(ctx context.Context) error {
	w.mu.Lock()
	if w.started {
		w.mu.Unlock()
		return ErrWorkerStarted
	}
	w.started = true
	if w.ended { // Shutdown came first
		w.mu.Unlock()
		return nil
	}
	hardCtx, halt := context.WithCancel(ctx)
	stopCtx, stop := context.WithCancel(hardCtx)
	w.halt, w.stop = halt, stop
	w.mu.Unlock()
	defer halt()

	var wg sync.WaitGroup
	err := w.fetch(ctx, stopCtx, hardCtx, &wg)
	if err != nil {
		halt() // the client is closed: running jobs are lost anyway
	}
	wg.Wait()
	stop()

	w.mu.Lock()
	w.ended = true
	close(w.done)
	w.mu.Unlock()

	if ctx.Err() != nil {
		return ctx.Err()
	}
	return err
}

// Shutdown stops the worker gracefully: it stops reserving jobs and waits
// for running handlers to finish and their jobs to be settled, then
// returns nil. If ctx ends first, Shutdown stops the worker hard, as
// cancelling Run's context does, and returns ctx.Err() without waiting
// further; Run returns once the cancelled handlers have returned.
// Shutdown may be called before Run, or more than once.
func (w *Worker) Shutdown(ctx context.Context) error {
	w.mu.Lock()
	if !w.started && !w.ended {
		w.ended = true
		close(w.done)
	}
	if w.stop != nil {
		w.stop()
	}
	w.mu.Unlock()

	select {
	case <-w.done:
		return nil
	default:
	}
	select {
	case <-w.done:
		return nil
	case <-ctx.Done():
	}
	w.mu.Lock()
	if w.halt != nil {
		w.halt()
	}
	w.mu.Unlock()
	return ctx.Err()
}

// fetch reserves jobs for free handler slots and starts a goroutine for
// each, until stopCtx is done (it returns nil) or the queue is closed (it
// returns the Reserve error). It stops as soon as Run's context ctx, or
// hardCtx, is done, without waiting for the cancellation to reach
// stopCtx: a cancellation reaches the contexts derived from ctx one after
// the other, and jobs reserved in between would be released at once, as
// stopped hard, and reserved again.
func (w *Worker) fetch(ctx, stopCtx, hardCtx context.Context, wg *sync.WaitGroup) error {
	stopped := func() bool { return ctx.Err() != nil || hardCtx.Err() != nil || stopCtx.Err() != nil }
	slots := make(chan struct{}, w.opts.concurrency)
	failures := 0
	for !stopped() {
		select {
		case slots <- struct{}{}:
		case <-stopCtx.Done():
			return nil
		}
		if stopped() {
			return nil
		}
		n := 1
	more:
		for n < cap(slots) {
			select {
			case slots <- struct{}{}:
				n++
			default:
				break more
			}
		}

		jobs, err := ReserveBatch(stopCtx, w.q, n, w.tubes...)
		reservedAt := time.Now()
		for range n - len(jobs) {
			<-slots
		}
		for _, job := range jobs {
			wg.Go(func() {
				defer func() { <-slots }()
				w.process(hardCtx, job, reservedAt)
			})
		}
		if err == nil {
			failures = 0
			continue
		}
		if stopped() {
			return nil
		}
		w.report("reserve", nil, err)
		if errors.Is(err, ErrClosed) {
			return err
		}
		failures++
		t := time.NewTimer(w.jitter(expBackoff(reserveBackoffBase, reserveBackoffMax, failures)))
		select {
		case <-t.C:
		case <-stopCtx.Done():
			t.Stop()
			return nil
		}
	}
	return nil
}

// process runs the handler on one reserved job, touching the job while
// the handler runs, then settles the job.
func (w *Worker) process(hardCtx context.Context, job *Job, reservedAt time.Time) {
	if hardCtx.Err() != nil { // stopped hard before the job started
		w.settle(hardCtx, job, hardCtx.Err())
		return
	}
	hctx, cancel := context.WithCancelCause(hardCtx)
	defer cancel(nil)
	kctx, stopTouching := context.WithCancel(hctx)
	defer stopTouching()

	limit := w.opts.jobTimeout
	if w.opts.timeoutFunc != nil {
		limit = w.opts.timeoutFunc(job)
	}
	if limit > 0 {
		// Past the limit the handler's context ends, and the job is no
		// longer touched: a handler that ignores its context loses the
		// job at the end of its TTR instead of holding it for ever.
		t := time.AfterFunc(limit, func() {
			cancel(fmt.Errorf("%w (%s)", ErrJobTimeout, limit))
			stopTouching()
		})
		defer t.Stop()
	}

	touched := make(chan bool, 1) // whether the reservation is still held
	go func() { touched <- w.keepAlive(kctx, job, reservedAt, cancel) }()

	err := w.call(hctx, job)
	stopTouching()
	if !<-touched {
		return // the job is no longer ours
	}
	// A handler that returned nil past its limit did the job: it is
	// deleted if the reservation still holds. One that failed failed
	// because of the limit.
	if cause := context.Cause(hctx); err != nil && errors.Is(cause, ErrJobTimeout) &&
		hardCtx.Err() == nil && !errors.Is(err, ErrJobTimeout) {
		err = fmt.Errorf("%w: %w", cause, err)
	}
	w.settle(hardCtx, job, err)
}

// keepAlive touches job every half TTR until ctx is done. It returns
// false if the job was lost, after cancelling the handler's context with
// the Touch error as the cause.
func (w *Worker) keepAlive(ctx context.Context, job *Job, reservedAt time.Time, cancel context.CancelCauseFunc) bool {
	interval := max(job.TTR, MinTTR) / 2
	t := time.NewTimer(time.Until(reservedAt.Add(interval)))
	defer t.Stop()
	for {
		select {
		case <-t.C:
		case <-ctx.Done():
			return true
		}
		tctx, tcancel := context.WithTimeout(ctx, interval)
		err := w.q.Touch(tctx, job.ID)
		tcancel()
		if err == nil {
			t.Reset(interval)
			continue
		}
		if ctx.Err() != nil {
			return true
		}
		werr := &WorkerError{Op: "touch", Job: job, Err: err}
		w.reportErr(werr)
		if errors.Is(err, ErrNotReserved) || errors.Is(err, ErrNotFound) || errors.Is(err, ErrClosed) {
			cancel(werr)
			return false
		}
		t.Reset(interval / 4) // a transient failure: try again soon
	}
}

// call runs the handler, turning a panic into a *PanicError.
func (w *Worker) call(ctx context.Context, job *Job) (err error) {
	defer func() {
		if v := recover(); v != nil {
			err = &PanicError{Value: v, Stack: debug.Stack()}
		}
	}()
	return w.h.Handle(ctx, job)
}

// settle deletes, releases or buries job after its handler returned
// herr.
func (w *Worker) settle(hardCtx context.Context, job *Job, herr error) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(hardCtx), max(job.TTR, MinTTR))
	defer cancel()
	stopped := hardCtx.Err() != nil
	if herr != nil && !(stopped && isContextErr(herr)) {
		w.report("handle", job, herr)
	}
	switch {
	case herr == nil:
		if err := w.q.Delete(ctx, job.ID); err != nil {
			w.report("delete", job, err)
		}
	case errors.Is(herr, ErrBury),
		!stopped && w.opts.maxAttempts > 0 && int64(job.Reserves) >= int64(w.opts.maxAttempts):
		if err := w.q.Bury(ctx, job.ID, job.Priority, buryReason(herr)); err != nil {
			w.report("bury", job, err)
		}
	default:
		var delay time.Duration
		var re *retryError
		switch {
		case stopped:
			// Released at once for another worker.
		case errors.As(herr, &re):
			delay = re.delay
		default:
			delay = w.jitter(expBackoff(w.opts.backoffBase, w.opts.backoffMax, int(job.Reserves)))
		}
		if err := w.q.Release(ctx, job.ID, job.Priority, delay); err != nil {
			w.report("release", job, err)
		}
	}
}

func (w *Worker) report(op string, job *Job, err error) {
	w.reportErr(&WorkerError{Op: op, Job: job, Err: err})
}

func (w *Worker) reportErr(err *WorkerError) {
	if l := w.opts.logger; l != nil {
		level := slog.LevelError
		if err.Op == "handle" {
			level = slog.LevelWarn
		}
		attrs := []slog.Attr{slog.String("op", err.Op), slog.String("err", err.Err.Error())}
		if err.Job != nil {
			attrs = append(attrs, slog.Uint64("job", uint64(err.Job.ID)), slog.String("tube", err.Job.Tube),
				slog.Uint64("reserves", uint64(err.Job.Reserves)))
		}
		l.LogAttrs(context.Background(), level, "beanspike worker: "+err.Op+" failed", attrs...)
	}
	if w.opts.onError != nil {
		w.opts.onError(err)
	}
}

// jitter scales d by a random factor in [0.5, 1].
func (w *Worker) jitter(d time.Duration) time.Duration {
	half := d / 2
	if half <= 0 {
		return d
	}
	w.rngMu.Lock()
	r := w.rng.Int64N(int64(half) + 1)
	w.rngMu.Unlock()
	return d - half + time.Duration(r)
}

// expBackoff returns base·2^(attempt-1), capped at max.
func expBackoff(base, max time.Duration, attempt int) time.Duration {
	d := base
	for i := 1; i < attempt && d < max; i++ {
		if d > max/2 {
			return max
		}
		d *= 2
	}
	return min(d, max)
}

func isContextErr(err error) bool {
	return errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded)
}

// buryReason is err's text, cut to MaxBuryReason bytes of valid UTF-8.
func buryReason(err error) string {
	s := err.Error()
	if len(s) > MaxBuryReason {
		s = strings.ToValidUTF8(s[:MaxBuryReason], "")
	}
	return s
}
