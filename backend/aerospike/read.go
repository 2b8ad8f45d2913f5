package aerospike

import (
	"context"
	"fmt"
	"math"
	"slices"
	"time"

	as "github.com/aerospike/aerospike-client-go/v8"
	"github.com/aerospike/aerospike-client-go/v8/types"

	"github.com/beanspike/beanspike"
)

// Peek returns a job in any state without reserving it; see
// [beanspike.Queue.Peek].
func (q *Queue) Peek(ctx context.Context, id beanspike.ID) (*beanspike.Job, error) {
	if err := q.checkID(ctx, id); err != nil {
		return nil, err
	}
	loc, rec, err := q.locate(ctx, id, true)
	if err != nil {
		return nil, err
	}
	return q.toJob(id, rec, loc.e)
}

// PeekReady returns the job Reserve would take next from tube, ignoring a
// pause; see [beanspike.Queue.PeekReady].
func (q *Queue) PeekReady(ctx context.Context, tube string) (*beanspike.Job, error) {
	return q.peekState(ctx, tube, beanspike.Ready)
}

// PeekDelayed returns the delayed job of tube due soonest; see
// [beanspike.Queue.PeekDelayed].
func (q *Queue) PeekDelayed(ctx context.Context, tube string) (*beanspike.Job, error) {
	return q.peekState(ctx, tube, beanspike.Delayed)
}

// PeekBuried returns the job of tube buried longest ago; see
// [beanspike.Queue.PeekBuried].
func (q *Queue) PeekBuried(ctx context.Context, tube string) (*beanspike.Job, error) {
	return q.peekState(ctx, tube, beanspike.Buried)
}

func (q *Queue) peekState(ctx context.Context, tube string, state beanspike.State) (*beanspike.Job, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if err := beanspike.ValidateTube(tube); err != nil {
		return nil, err
	}
	if err := q.errClosed(); err != nil {
		return nil, err
	}
	// An entry whose job record is missing (its Put failed half-way, or
	// is still writing it; see the package doc) is passed over, and the
	// next one read: each attempt reads one entry more of each index
	// record than there are entries passed over.
	skip := map[beanspike.ID]bool{}
	for range peekAttempts {
		var spec viewSpec
		n := 1 + len(skip)
		switch state {
		case beanspike.Ready:
			spec.ready = n
		case beanspike.Delayed:
			spec.delayed = n
		case beanspike.Buried:
			spec.buried = n
		}
		tvs, err := q.view(ctx, []string{tube}, spec)
		if err != nil {
			return nil, err
		}
		var list []cand
		switch state {
		case beanspike.Ready:
			list = rank(tvs, 0, math.MaxInt, true)
		default:
			for _, sv := range tvs[0].shards {
				l := sv.delayed
				if state == beanspike.Buried {
					l = sv.buried
				}
				for _, p := range l {
					list = append(list, cand{ref: sv.ref, kv: p})
				}
			}
			slices.SortFunc(list, func(a, b cand) int { return keyLess(a.kv, b.kv) })
		}
		var best *cand
		for i := range list {
			if !skip[list[i].id] {
				best = &list[i]
				break
			}
		}
		if best == nil {
			return nil, fmt.Errorf("%w: no %s job in tube %q", beanspike.ErrNotFound, state, tube)
		}
		rec, err := q.getRecord(ctx, best.id)
		if err != nil {
			if errorIsNotFound(err) {
				skip[best.id] = true // deleted meanwhile, or never put
				continue
			}
			return nil, err
		}
		return q.toJob(best.id, rec, best.e)
	}
	return nil, errUnavailable("tube %q keeps changing", tube)
}

// peekAttempts bounds the view reads of one PeekReady, PeekDelayed or
// PeekBuried.
const peekAttempts = 16

// StatsJob describes a job; see [beanspike.Queue.StatsJob].
func (q *Queue) StatsJob(ctx context.Context, id beanspike.ID) (*beanspike.JobStats, error) {
	if err := q.checkID(ctx, id); err != nil {
		return nil, err
	}
	loc, rec, err := q.locate(ctx, id, true)
	if err != nil {
		return nil, err
	}
	now := q.nowNs()
	e := loc.e
	tube, _ := rec.Bins[binTube].(string)
	size, _ := toInt(rec.Bins[binSize])
	enc, _ := toInt(rec.Bins[binEnc])
	stored, _ := rec.Bins[binBody].([]byte)
	st := &beanspike.JobStats{
		ID:         id,
		Tube:       tube,
		State:      loc.state(),
		Priority:   e.pri,
		Age:        dur(max(now-e.put, 0)),
		Delay:      dur(e.delay),
		TTR:        dur(e.ttr),
		Reserves:   e.reserves,
		Timeouts:   e.timeouts,
		Releases:   e.releases,
		Buries:     e.buries,
		Kicks:      e.kicks,
		BuryReason: e.reason,
		Size:       int(size),
		StoredSize: len(stored),
		Compressed: enc == 1,
	}
	if loc.bin == binReserved || loc.bin == binDelayed {
		st.TimeLeft = dur(max(e.k1-now, 0))
	}
	return st, nil
}

// StatsTube describes a tube; see [beanspike.Queue.StatsTube]. The counts
// come from the sizes of the index maps and from counters kept in the
// index records by the operations themselves: two batch commands (one
// that sweeps due jobs, one that reads), never a scan. Waiting counts
// only the blocked Reserve calls of this process's clients.
func (q *Queue) StatsTube(ctx context.Context, tube string) (*beanspike.TubeStats, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if err := beanspike.ValidateTube(tube); err != nil {
		return nil, err
	}
	if err := q.errClosed(); err != nil {
		return nil, err
	}
	if _, err := q.view(ctx, []string{tube}, viewSpec{}); err != nil {
		return nil, err
	}
	urgentEnd := as.NewListValue([]any{int64(beanspike.UrgentPriority)})
	ops := []*as.Operation{
		as.MapSizeOp(binReady),
		as.MapGetByValueRangeOp(binReady, nil, urgentEnd, as.MapReturnType.COUNT),
		as.MapSizeOp(binDelayed),
		as.MapSizeOp(binReserved),
		as.MapSizeOp(binBuried),
		as.GetBinOp(binTotal),
		as.GetBinOp(binDeletes),
		as.GetBinOp(binComp),
		as.GetBinOp(binSkip),
	}
	recs := []as.BatchRecordIfc{as.NewBatchRead(nil, q.metaKey(tube), nil)}
	for _, k := range q.shardKeys(tube) {
		recs = append(recs, as.NewBatchReadOps(nil, k, ops...))
	}
	if err := q.batchRead(ctx, recs); err != nil {
		return nil, err
	}
	meta := recs[0].BatchRec()
	if meta.ResultCode != types.OK || meta.Record == nil {
		return nil, errNoTube(tube)
	}
	now := q.nowNs()
	st := &beanspike.TubeStats{Name: tube}
	mb := meta.Record.Bins
	pauses, _ := toInt(mb[binPauses])
	pause, _ := toInt(mb[binPause])
	till, _ := toInt(mb[binPauseTill])
	st.Pauses = uint64(pauses)
	st.Pause = time.Duration(pause)
	if till > now {
		st.PauseLeft = time.Duration(till - now)
	}
	for _, r := range recs[1:] {
		br := r.BatchRec()
		if br.ResultCode != types.OK || br.Record == nil {
			continue
		}
		b := br.Record.Bins
		ready := results(b, binReady)
		st.Ready += intAt(ready, 0)
		st.Urgent += intAt(ready, 1)
		st.Delayed += intAt(results(b, binDelayed), 0)
		st.Reserved += intAt(results(b, binReserved), 0)
		st.Buried += intAt(results(b, binBuried), 0)
		st.TotalJobs += uint64(intAt(results(b, binTotal), 0))
		st.Deletes += uint64(intAt(results(b, binDeletes), 0))
		st.Compressed += uint64(intAt(results(b, binComp), 0))
		st.CompressionSkipped += uint64(intAt(results(b, binSkip), 0))
	}
	q.s.mu.Lock()
	st.Waiting = q.s.wait[tube]
	q.s.mu.Unlock()
	return st, nil
}

func intAt(r []any, i int) int {
	if i < len(r) {
		if n, ok := toInt(r[i]); ok {
			return int(n)
		}
	}
	return 0
}

// Tubes lists the store's tubes in lexical order; see
// [beanspike.Queue.Tubes]. One read of the tube list record.
func (q *Queue) Tubes(ctx context.Context) ([]string, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if err := q.errClosed(); err != nil {
		return nil, err
	}
	var rec *as.Record
	err := q.retry(ctx, func() error {
		var err error
		rec, err = q.s.client.Get(q.readPolicy(ctx), q.listKey(), binTubes)
		return err
	})
	if err != nil {
		if errorIsNotFound(err) {
			return []string{}, nil
		}
		return nil, err
	}
	names := []string{}
	switch m := rec.Bins[binTubes].(type) {
	case []as.MapPair:
		for _, p := range m {
			if s, ok := p.Key.(string); ok {
				names = append(names, s)
			}
		}
	case map[any]any:
		for k := range m {
			if s, ok := k.(string); ok {
				names = append(names, s)
			}
		}
	}
	slices.Sort(names)
	return names, nil
}

// PauseTube stops Reserve from taking jobs of tube for d, or ends a pause
// when d == 0; see [beanspike.Queue.PauseTube]. One batch command writing
// the tube's meta record and its tube-list entry.
func (q *Queue) PauseTube(ctx context.Context, tube string, d time.Duration) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := beanspike.ValidateTube(tube); err != nil {
		return err
	}
	if err := beanspike.ValidateDelay(d); err != nil {
		return err
	}
	if err := q.errClosed(); err != nil {
		return err
	}
	ops := []*as.Operation{as.AddOp(as.NewBin(binPauses, 1))}
	if d == 0 {
		ops = append(ops, as.PutOp(as.NewBin(binPauseTill, 0)))
	} else {
		ops = append(ops,
			as.PutOp(as.NewBin(binPause, int64(d))),
			as.PutOp(as.NewBin(binPauseTill, deadline(q.nowNs(), int64(d)))))
	}
	q.s.ready.stale(tube)
	err := q.register(ctx, tube, ops)
	q.s.ready.stale(tube)
	if err != nil {
		return err
	}
	q.s.mu.Lock()
	q.s.known[tube] = true
	q.s.mu.Unlock()
	if d == 0 {
		q.s.signal()
	}
	return nil
}

// DeleteTube deletes tube and every job in it; see
// [beanspike.Queue.DeleteTube]. It reads the tube's index records, deletes
// the job records, then the index and meta records, and last removes the
// tube from the tube list; a crash part-way leaves the tube listed, and
// calling DeleteTube again finishes the work. Jobs put into the tube
// while it is being deleted may be deleted with it.
func (q *Queue) DeleteTube(ctx context.Context, tube string) (int, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	if err := beanspike.ValidateTube(tube); err != nil {
		return 0, err
	}
	if err := q.errClosed(); err != nil {
		return 0, err
	}
	q.s.ready.forget(tube)
	defer q.s.ready.forget(tube)
	shardOps := []*as.Operation{
		as.GetBinOp(binReady), as.GetBinOp(binDelayed), as.GetBinOp(binReserved),
		as.GetBinOp(binBuried), as.GetBinOp(binDeleting),
	}
	recs := []as.BatchRecordIfc{
		as.NewBatchReadHeader(nil, q.metaKey(tube)),
		as.NewBatchReadOps(nil, q.listKey(), as.MapGetByKeyOp(binTubes, tube, as.MapReturnType.COUNT)),
	}
	keys := q.shardKeys(tube)
	for _, k := range keys {
		recs = append(recs, as.NewBatchReadOps(nil, k, shardOps...))
	}
	if err := q.batchRead(ctx, recs); err != nil {
		return 0, err
	}
	listed := false
	if br := recs[1].BatchRec(); br.ResultCode == types.OK && br.Record != nil {
		n, _ := toInt(br.Record.Bins[binTubes])
		listed = n > 0
	}
	if recs[0].BatchRec().ResultCode != types.OK && !listed {
		return 0, errNoTube(tube)
	}
	count := 0
	var jobKeys []*as.Key
	for _, r := range recs[2:] {
		br := r.BatchRec()
		if br.ResultCode != types.OK || br.Record == nil {
			continue
		}
		for _, bin := range []string{binReady, binDelayed, binReserved, binBuried, binDeleting} {
			for id := range mapKeys(br.Record.Bins[bin]) {
				if bin != binDeleting {
					count++
				}
				jobKeys = append(jobKeys, q.jobKey(beanspike.ID(id)))
			}
		}
	}
	if err := q.at("deletetube:read"); err != nil {
		return 0, err
	}
	if err := q.deleteRecords(ctx, jobKeys); err != nil {
		return 0, err
	}
	if err := q.at("deletetube:records"); err != nil {
		return 0, err
	}
	if err := q.deleteRecords(ctx, append(append([]*as.Key(nil), keys...), q.metaKey(tube))); err != nil {
		return 0, err
	}
	if err := q.at("deletetube:index"); err != nil {
		return 0, err
	}
	err := q.retry(ctx, func() error {
		_, err := q.s.client.Operate(q.writePolicy(ctx, nil), q.listKey(),
			as.MapRemoveByKeyOp(binTubes, tube, as.MapReturnType.NONE))
		return err
	})
	if err != nil && !errorIsNotFound(err) {
		return 0, err
	}
	q.forgetTube(tube)
	q.mu.Lock()
	for id, h := range q.held {
		if h.ref.tube == tube {
			delete(q.held, id)
		}
	}
	for ref := range q.cleanup {
		if ref.tube == tube {
			delete(q.cleanup, ref)
		}
	}
	q.mu.Unlock()
	return count, nil
}

// deleteRecords deletes the records of keys in batch commands; records
// already gone are fine.
func (q *Queue) deleteRecords(ctx context.Context, keys []*as.Key) error {
	for len(keys) > 0 {
		chunk := keys[:min(len(keys), 1000)]
		keys = keys[len(chunk):]
		err := q.retry(ctx, func() error {
			recs := make([]as.BatchRecordIfc, len(chunk))
			for i, k := range chunk {
				recs[i] = as.NewBatchDelete(nil, k)
			}
			q.batch(ctx, recs)
			var left []*as.Key
			var last error
			for i, r := range recs {
				br := r.BatchRec()
				if br.ResultCode != types.OK && br.ResultCode != types.KEY_NOT_FOUND_ERROR {
					left = append(left, chunk[i])
					last = batchErr(br)
				}
			}
			chunk = left
			return last
		})
		if err != nil {
			return err
		}
	}
	return nil
}

// mapKeys returns the integer keys of a map bin.
func mapKeys(v any) map[int64]struct{} {
	out := map[int64]struct{}{}
	switch m := v.(type) {
	case []as.MapPair:
		for _, p := range m {
			if k, ok := toInt(p.Key); ok {
				out[k] = struct{}{}
			}
		}
	case map[any]any:
		for k := range m {
			if n, ok := toInt(k); ok {
				out[n] = struct{}{}
			}
		}
	}
	return out
}
