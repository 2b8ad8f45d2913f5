package remote

import (
	"context"
	"encoding/binary"
	"fmt"
	"time"

	"github.com/beanspike/beanspike"
)

// The methods of beanspike.Queue and beanspike.Batcher, each one call on
// the session. Their documentation is the interface's; what is particular
// to the remote client is said here.

// Put adds a job to tube; see [beanspike.Queue.Put]. A body too long to
// fit in a call fails with [beanspike.ErrJobTooBig] without a round trip.
func (q *Queue) Put(ctx context.Context, tube string, body []byte, opts ...beanspike.PutOption) (beanspike.ID, error) {
	o, err := beanspike.NewPutOptions(opts...)
	if err != nil {
		return 0, err
	}
	d, err := q.do(ctx, opPut, func(b []byte) []byte {
		b = appendString(b, tube)
		b = appendPutOptions(b, o)
		return append(b, body...)
	})
	if err != nil {
		return 0, err
	}
	id := beanspike.ID(d.uvarint())
	return id, q.check(d)
}

// PutBatch puts every request and returns their IDs in order; see
// [beanspike.Batcher.PutBatch]. A batch that fits in one call is put by
// the server's store in one PutBatch; a larger one is validated here and
// then sent in several calls.
func (q *Queue) PutBatch(ctx context.Context, reqs []beanspike.PutRequest) ([]beanspike.ID, error) {
	opts := make([]beanspike.PutOptions, len(reqs))
	size := 16
	for i, r := range reqs {
		o, err := beanspike.NewPutOptions(r.Options...)
		if err != nil {
			return nil, fmt.Errorf("request %d: %w", i, err)
		}
		opts[i] = o
		size += len(r.Tube) + len(r.Body) + 48
	}
	limit := q.maxMessage() - 64
	if size > limit {
		// Several calls: validate everything first, so that an invalid
		// request puts nothing.
		for i, r := range reqs {
			if err := beanspike.ValidateTube(r.Tube); err != nil {
				return nil, fmt.Errorf("request %d: %w", i, err)
			}
			if err := beanspike.ValidateBody(len(r.Body), q.MaxBodySize()); err != nil {
				return nil, fmt.Errorf("request %d: %w", i, err)
			}
		}
	}
	ids := make([]beanspike.ID, 0, len(reqs))
	for start := 0; start < len(reqs) || start == 0; {
		end, n := start, 16
		for end < len(reqs) && (end == start || n+len(reqs[end].Tube)+len(reqs[end].Body)+48 <= limit) {
			n += len(reqs[end].Tube) + len(reqs[end].Body) + 48
			end++
		}
		got, err := q.putBatch(ctx, reqs[start:end], opts[start:end])
		ids = append(ids, got...)
		if err != nil {
			return ids, err
		}
		start = end
		if start == len(reqs) {
			break
		}
	}
	return ids, nil
}

func (q *Queue) putBatch(ctx context.Context, reqs []beanspike.PutRequest, opts []beanspike.PutOptions) ([]beanspike.ID, error) {
	d, err := q.do(ctx, opPutBatch, func(b []byte) []byte {
		b = binary.AppendUvarint(b, uint64(len(reqs)))
		for i, r := range reqs {
			b = appendString(b, r.Tube)
			b = appendPutOptions(b, opts[i])
			b = appendBytes(b, r.Body)
		}
		return b
	})
	if err != nil {
		return nil, err
	}
	ids := make([]beanspike.ID, d.count(1))
	for i := range ids {
		ids[i] = beanspike.ID(d.uvarint())
	}
	if len(d.b) > 0 {
		// A partial batch: the error follows the IDs.
		code := d.byte()
		return ids, errOf(code, string(d.rest()))
	}
	return ids, q.check(d)
}

// Reserve reserves the most urgent ready job of tubes; see
// [beanspike.Queue.Reserve]. With a done context it polls the server. A
// cancelled Reserve waits for the server to confirm it took nothing (at
// most the call timeout, see [WithCallTimeout]); if a job was reserved
// meanwhile, Reserve returns it. This is the one wait that outlasts a
// call's context.
func (q *Queue) Reserve(ctx context.Context, tubes ...string) (*beanspike.Job, error) {
	jobs, err := q.reserve(ctx, opReserve, reserveArgs(1, ctx.Err() != nil, tubes))
	if err != nil {
		return nil, err
	}
	return jobs[0], nil
}

// ReserveBatch reserves up to max jobs; see
// [beanspike.Batcher.ReserveBatch]. The jobs arrive as they are
// reserved, one source each, in one round trip.
func (q *Queue) ReserveBatch(ctx context.Context, max int, tubes ...string) ([]*beanspike.Job, error) {
	if max <= 0 {
		return nil, fmt.Errorf("%w: batch size %d is not positive", beanspike.ErrInvalidArgument, max)
	}
	return q.reserve(ctx, opReserve, reserveArgs(max, ctx.Err() != nil, tubes))
}

func reserveArgs(n int, poll bool, tubes []string) func([]byte) []byte {
	return func(b []byte) []byte {
		b = binary.AppendUvarint(b, uint64(n))
		var f byte
		if poll {
			f |= flagPoll
		}
		b = append(b, f)
		b = binary.AppendUvarint(b, uint64(len(tubes)))
		for _, t := range tubes {
			b = appendString(b, t)
		}
		return b
	}
}

// ReserveJob reserves the job id; see [beanspike.Queue.ReserveJob].
func (q *Queue) ReserveJob(ctx context.Context, id beanspike.ID) (*beanspike.Job, error) {
	jobs, err := q.reserve(ctx, opReserveJob, idArgs(id))
	if err != nil {
		return nil, err
	}
	return jobs[0], nil
}

func idArgs(id beanspike.ID) func([]byte) []byte {
	return func(b []byte) []byte { return binary.AppendUvarint(b, uint64(id)) }
}

func tubeArgs(tube string) func([]byte) []byte {
	return func(b []byte) []byte { return appendString(b, tube) }
}

// check reports a malformed reply.
func (q *Queue) check(d *dec) error {
	if err := d.done(); err != nil {
		return fmt.Errorf("%w: remote: bad reply: %v", beanspike.ErrUnavailable, err)
	}
	return nil
}

// simple makes a call whose reply carries nothing.
func (q *Queue) simple(ctx context.Context, op byte, args func([]byte) []byte) error {
	d, err := q.do(ctx, op, args)
	if err != nil {
		return err
	}
	return q.check(d)
}

// Delete removes a job; see [beanspike.Queue.Delete].
func (q *Queue) Delete(ctx context.Context, id beanspike.ID) error {
	return q.simple(ctx, opDelete, idArgs(id))
}

// Release returns a reserved job to ready or delayed; see
// [beanspike.Queue.Release].
func (q *Queue) Release(ctx context.Context, id beanspike.ID, priority uint32, delay time.Duration) error {
	return q.simple(ctx, opRelease, func(b []byte) []byte {
		b = binary.AppendUvarint(b, uint64(id))
		b = binary.AppendUvarint(b, uint64(priority))
		return appendDuration(b, delay)
	})
}

// Bury buries a reserved job; see [beanspike.Queue.Bury].
func (q *Queue) Bury(ctx context.Context, id beanspike.ID, priority uint32, reason string) error {
	return q.simple(ctx, opBury, func(b []byte) []byte {
		b = binary.AppendUvarint(b, uint64(id))
		b = binary.AppendUvarint(b, uint64(priority))
		return appendString(b, reason)
	})
}

// Touch extends a reservation; see [beanspike.Queue.Touch].
func (q *Queue) Touch(ctx context.Context, id beanspike.ID) error {
	return q.simple(ctx, opTouch, idArgs(id))
}

// Kick moves up to n buried or delayed jobs of tube to ready; see
// [beanspike.Queue.Kick].
func (q *Queue) Kick(ctx context.Context, tube string, n int) (int, error) {
	d, err := q.do(ctx, opKick, func(b []byte) []byte {
		b = appendString(b, tube)
		return binary.AppendVarint(b, int64(n))
	})
	if err != nil {
		return 0, err
	}
	k := int(d.uvarint())
	return k, q.check(d)
}

// KickJob moves one buried or delayed job to ready; see
// [beanspike.Queue.KickJob].
func (q *Queue) KickJob(ctx context.Context, id beanspike.ID) error {
	return q.simple(ctx, opKickJob, idArgs(id))
}

// Peek returns a job without reserving it; see [beanspike.Queue.Peek].
func (q *Queue) Peek(ctx context.Context, id beanspike.ID) (*beanspike.Job, error) {
	return q.peek(ctx, opPeek, idArgs(id))
}

// PeekReady returns the job Reserve would take next from tube; see
// [beanspike.Queue.PeekReady].
func (q *Queue) PeekReady(ctx context.Context, tube string) (*beanspike.Job, error) {
	return q.peek(ctx, opPeekReady, tubeArgs(tube))
}

// PeekDelayed returns the delayed job of tube due soonest; see
// [beanspike.Queue.PeekDelayed].
func (q *Queue) PeekDelayed(ctx context.Context, tube string) (*beanspike.Job, error) {
	return q.peek(ctx, opPeekDelayed, tubeArgs(tube))
}

// PeekBuried returns the job of tube buried longest ago; see
// [beanspike.Queue.PeekBuried].
func (q *Queue) PeekBuried(ctx context.Context, tube string) (*beanspike.Job, error) {
	return q.peek(ctx, opPeekBuried, tubeArgs(tube))
}

// StatsJob describes a job; see [beanspike.Queue.StatsJob].
func (q *Queue) StatsJob(ctx context.Context, id beanspike.ID) (*beanspike.JobStats, error) {
	d, err := q.do(ctx, opStatsJob, idArgs(id))
	if err != nil {
		return nil, err
	}
	s := d.jobStats()
	return s, q.check(d)
}

// StatsTube describes a tube; see [beanspike.Queue.StatsTube].
// TubeStats.Waiting counts the Reserve calls blocked in the server's
// store, remote ones included, as that store counts them.
func (q *Queue) StatsTube(ctx context.Context, tube string) (*beanspike.TubeStats, error) {
	d, err := q.do(ctx, opStatsTube, tubeArgs(tube))
	if err != nil {
		return nil, err
	}
	s := d.tubeStats()
	return s, q.check(d)
}

// Tubes lists the store's tubes; see [beanspike.Queue.Tubes].
func (q *Queue) Tubes(ctx context.Context) ([]string, error) {
	d, err := q.do(ctx, opTubes, nil)
	if err != nil {
		return nil, err
	}
	tubes := make([]string, d.count(1))
	for i := range tubes {
		tubes[i] = d.string()
	}
	return tubes, q.check(d)
}

// PauseTube pauses tube for d; see [beanspike.Queue.PauseTube].
func (q *Queue) PauseTube(ctx context.Context, tube string, d time.Duration) error {
	return q.simple(ctx, opPauseTube, func(b []byte) []byte {
		b = appendString(b, tube)
		return appendDuration(b, d)
	})
}

// DeleteTube deletes tube and its jobs; see [beanspike.Queue.DeleteTube].
func (q *Queue) DeleteTube(ctx context.Context, tube string) (int, error) {
	d, err := q.do(ctx, opDeleteTube, tubeArgs(tube))
	if err != nil {
		return 0, err
	}
	n := int(d.uvarint())
	return n, q.check(d)
}
