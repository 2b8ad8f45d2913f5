package beanspike

import (
	"context"
	"time"
)

// DefaultTube is the tube Reserve watches when it is given none, as in
// beanstalkd.
const DefaultTube = "default"

// Queue is a client of a job store. Every method is safe for concurrent
// use by multiple goroutines.
//
// A Queue value is one client: the reservations it makes belong to it, and
// only it can Delete, Release, Bury or Touch them. Two Queue values, even
// of the same store and in the same process, are two clients. Closing a
// client returns its reservations to ready.
//
// Methods that take a job ID return [ErrInvalidArgument] for ID 0, and
// methods that take a tube name return [ErrInvalidTube] for a name that
// breaks the rules of [ValidateTube].
//
// Every method returns the context's error, unwrapped, when ctx is done
// before the call completes; the call may then have taken effect or not,
// as with any network call (Reserve with a done context is a poll; see
// there). Other errors wrap the sentinels in errors.go.
//
// A call that breaks more than one rule — bad input given to a closed
// client or with a done context, say — returns one of the errors that
// apply; which one is up to the implementation. Either way it changes
// nothing.
type Queue interface {
	// Put adds a job to tube and returns its ID. With no options the job
	// is ready at once, with priority [DefaultPriority] and TTR
	// [DefaultTTR].
	//
	// Errors: [ErrInvalidTube], [ErrJobTooBig], [ErrInvalidArgument]
	// (bad option values), [ErrClosed].
	Put(ctx context.Context, tube string, body []byte, opts ...PutOption) (ID, error)

	// Reserve reserves the most urgent ready job of the given tubes
	// (DefaultTube when none is given): the lowest priority value, and
	// among equal priorities the job that became ready first; across
	// tubes, ties go to the lower ID. Paused tubes give nothing until
	// their pause ends.
	//
	// Reserve blocks until a job is ready or ctx is done. A Reserve
	// blocked on a tube that DeleteTube deletes keeps waiting, and takes
	// the first job put into the tube of that name afterwards. If a job is
	// ready when it is called, Reserve returns it even if ctx is already
	// done: a done context makes Reserve a non-blocking poll, and an
	// empty poll returns ctx.Err().
	//
	// The reservation lasts the job's TTR; Touch extends it. When it
	// lapses, the job returns to ready (counted as a timeout) and this
	// client can no longer act on it.
	//
	// Errors: [ErrInvalidTube], [ErrClosed], ctx.Err().
	Reserve(ctx context.Context, tubes ...string) (*Job, error)

	// ReserveJob reserves the job with the given ID if it is ready,
	// delayed or buried, as beanstalkd's reserve-job.
	//
	// Errors: [ErrNotFound] (no such job, or it is reserved), [ErrClosed].
	ReserveJob(ctx context.Context, id ID) (*Job, error)

	// Delete removes a job that is reserved by this client, or that is
	// ready, delayed or buried.
	//
	// Errors: [ErrNotFound], [ErrNotReserved] (another client holds it),
	// [ErrClosed].
	Delete(ctx context.Context, id ID) error

	// Release returns a job reserved by this client to ready with the
	// given priority, or to delayed when delay > 0.
	//
	// Errors: [ErrNotFound], [ErrNotReserved], [ErrInvalidArgument]
	// (negative delay), [ErrClosed].
	Release(ctx context.Context, id ID, priority uint32, delay time.Duration) error

	// Bury moves a job reserved by this client to buried, with a new
	// priority and a reason that StatsJob reports.
	//
	// Errors: [ErrNotFound], [ErrNotReserved], [ErrClosed].
	Bury(ctx context.Context, id ID, priority uint32, reason string) error

	// Touch extends this client's reservation of a job: it now lapses
	// the job's TTR from now.
	//
	// Errors: [ErrNotFound], [ErrNotReserved], [ErrClosed].
	Touch(ctx context.Context, id ID) error

	// Kick moves up to n jobs of tube to ready: buried jobs, oldest
	// buried first, if the tube has any; otherwise delayed jobs, those
	// due soonest first. It returns how many it moved: 0 for a tube that
	// does not exist.
	//
	// Errors: [ErrInvalidTube], [ErrInvalidArgument] (n < 0), [ErrClosed].
	Kick(ctx context.Context, tube string, n int) (int, error)

	// KickJob moves one buried or delayed job to ready.
	//
	// Errors: [ErrNotFound] (no such job, or it is neither buried nor
	// delayed), [ErrClosed].
	KickJob(ctx context.Context, id ID) error

	// Peek returns a job in any state without reserving it.
	//
	// Errors: [ErrNotFound], [ErrClosed].
	Peek(ctx context.Context, id ID) (*Job, error)

	// PeekReady returns the job Reserve would return from tube next
	// (ignoring pause); PeekDelayed the delayed job due soonest;
	// PeekBuried the job buried longest ago.
	//
	// Errors: [ErrNotFound] (no job in that state), [ErrInvalidTube],
	// [ErrClosed].
	PeekReady(ctx context.Context, tube string) (*Job, error)
	PeekDelayed(ctx context.Context, tube string) (*Job, error)
	PeekBuried(ctx context.Context, tube string) (*Job, error)

	// StatsJob describes a job.
	//
	// Errors: [ErrNotFound], [ErrClosed].
	StatsJob(ctx context.Context, id ID) (*JobStats, error)

	// StatsTube describes a tube. A tube exists from its first Put or
	// PauseTube until DeleteTube.
	//
	// Errors: [ErrNotFound] (no such tube), [ErrInvalidTube], [ErrClosed].
	StatsTube(ctx context.Context, tube string) (*TubeStats, error)

	// Tubes lists the store's tubes in lexical order.
	Tubes(ctx context.Context) ([]string, error)

	// PauseTube stops Reserve from taking jobs of tube for d, from now;
	// pausing a paused tube starts the new pause in place of the old.
	// d == 0 ends a pause: the tube's waiting Reserve calls take its
	// ready jobs at once, and [TubeStats.Pause] keeps the duration of the
	// pause that ended. Every call counts in [TubeStats.Pauses]. Pausing
	// a tube that does not exist creates it.
	//
	// Errors: [ErrInvalidTube], [ErrInvalidArgument] (d < 0), [ErrClosed].
	PauseTube(ctx context.Context, tube string, d time.Duration) error

	// DeleteTube deletes tube and every job in it, whatever its state,
	// and returns how many jobs it deleted. Clients holding reservations
	// of its jobs get ErrNotFound when they next act on them.
	//
	// Errors: [ErrNotFound] (no such tube), [ErrInvalidTube], [ErrClosed].
	DeleteTube(ctx context.Context, tube string) (int, error)

	// Close closes the client: its reservations return to ready at once,
	// with their priority and counted neither as releases nor as
	// timeouts (one that had already lapsed counts as a timeout, as
	// always); its blocked calls return [ErrClosed], and so do its later
	// calls. Close is idempotent. An implementation that cannot return
	// the reservations at once (its store is unreachable) leaves them to
	// lapse after their TTR and says so in the error it returns.
	Close() error
}

// Batcher is implemented by queues that put and reserve many jobs in one
// call, which saves round trips on networked stores. Use [PutBatch] and
// [ReserveBatch], which fall back to one call per job for queues that do
// not implement it.
type Batcher interface {
	// PutBatch puts every request and returns their IDs in order. All
	// requests are validated first: if any is invalid, nothing is put.
	// If the store fails part-way, PutBatch returns the IDs of the jobs
	// put so far with the error.
	PutBatch(ctx context.Context, reqs []PutRequest) ([]ID, error)

	// ReserveBatch blocks as Reserve does until at least one job is
	// ready, then reserves up to max ready jobs without waiting for more.
	// It returns the errors Reserve does, and [ErrInvalidArgument] for
	// max <= 0.
	ReserveBatch(ctx context.Context, max int, tubes ...string) ([]*Job, error)
}

// PutRequest is one job of a batch put.
type PutRequest struct {
	Tube    string
	Body    []byte
	Options []PutOption
}

// BodyLimiter is implemented by queues that can tell their maximum body
// size, so that [PutBatch] can validate a whole batch before putting any
// of it into a queue that is not a [Batcher].
type BodyLimiter interface {
	// MaxBodySize returns the largest body, in bytes, that Put accepts.
	MaxBodySize() int
}

// PutBatch puts every request of reqs into q; see [Batcher.PutBatch]. For
// a queue that is neither a [Batcher] nor a [BodyLimiter], an oversized
// body is found only when its turn comes, after the requests before it
// were put.
func PutBatch(ctx context.Context, q Queue, reqs []PutRequest) ([]ID, error) {
	if b, ok := q.(Batcher); ok {
		return b.PutBatch(ctx, reqs)
	}
	limit := -1
	if l, ok := q.(BodyLimiter); ok {
		limit = l.MaxBodySize()
	}
	for _, r := range reqs {
		if err := ValidateTube(r.Tube); err != nil {
			return nil, err
		}
		if _, err := NewPutOptions(r.Options...); err != nil {
			return nil, err
		}
		if limit >= 0 {
			if err := ValidateBody(len(r.Body), limit); err != nil {
				return nil, err
			}
		}
	}
	ids := make([]ID, 0, len(reqs))
	for _, r := range reqs {
		id, err := q.Put(ctx, r.Tube, r.Body, r.Options...)
		if err != nil {
			return ids, err
		}
		ids = append(ids, id)
	}
	return ids, nil
}

// ReserveBatch reserves up to max jobs from q; see [Batcher.ReserveBatch].
func ReserveBatch(ctx context.Context, q Queue, max int, tubes ...string) ([]*Job, error) {
	if max <= 0 {
		return nil, errorf(ErrInvalidArgument, "batch size %d is not positive", max)
	}
	if b, ok := q.(Batcher); ok {
		return b.ReserveBatch(ctx, max, tubes...)
	}
	j, err := q.Reserve(ctx, tubes...)
	if err != nil {
		return nil, err
	}
	jobs := []*Job{j}
	done, cancel := context.WithCancel(ctx)
	cancel() // later reserves only poll
	for len(jobs) < max {
		j, err := q.Reserve(done, tubes...)
		if err != nil {
			break
		}
		jobs = append(jobs, j)
	}
	return jobs, nil
}
