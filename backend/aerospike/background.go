package aerospike

import (
	"context"
	"errors"
	"time"

	as "github.com/aerospike/aerospike-client-go/v8"
	"github.com/aerospike/aerospike-client-go/v8/types"

	"github.com/beanspike/beanspike"
)

// Timing of the background loop's work.
const (
	// activeFor is how long a tube stays in a client's care after the
	// client last used it.
	activeFor = 10 * time.Minute
	// repairEvery is how many ticks pass between repair passes.
	repairEvery = 10
	// deleteGrace is how old an unfinished delete must be before the
	// repair pass finishes it: a live client finishes its own deletes
	// within a tick.
	deleteGrace = 5 * time.Second
)

// background runs the client's loop until Close.
func (q *Queue) background() {
	defer q.loop.Done()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	t := time.NewTicker(q.s.cfg.sweepInterval)
	defer t.Stop()
	for {
		select {
		case <-q.done:
			return
		case <-t.C:
		}
		q.probe(ctx)
		q.maintain(ctx)
	}
}

// maintain is one tick of the background loop: it clears the deleting
// entries of this client's finished deletes, sweeps the tubes the client
// used lately (due delayed jobs and lapsed reservations become ready),
// and every repairEvery ticks finishes deletes that crashed clients left
// half done and runs the orphan pass. Every step is idempotent and safe to run from many clients
// at once.
func (q *Queue) maintain(parent context.Context) {
	ctx, cancel := context.WithTimeout(parent, 2*q.s.cfg.timeout)
	defer cancel()
	q.flushCleanup(ctx)
	now := q.nowNs()
	q.mu.Lock()
	q.ticks++
	repair := q.ticks%repairEvery == 0
	orphans := q.ticks%(repairEvery*orphanEvery) == 0
	tubes := make([]string, 0, len(q.active))
	for t, at := range q.active {
		if now-at > int64(activeFor) {
			delete(q.active, t)
			continue
		}
		tubes = append(tubes, t)
	}
	for id, h := range q.held {
		if h.e.k1 < now-int64(time.Minute) {
			delete(q.held, id)
		}
	}
	q.mu.Unlock()
	if !repair {
		// A view read by another client of the process in the last half
		// tick swept what was due then.
		tubes = q.s.unviewed(tubes, now-int64(q.s.cfg.sweepInterval/2))
	}
	if len(tubes) == 0 {
		return
	}
	tvs, err := q.view(ctx, tubes, viewSpec{deleting: repair})
	if err != nil || !repair {
		return
	}
	for _, tv := range tvs {
		for _, sv := range tv.shards {
			if sv.stale != 0 && q.nowNs()-sv.stale > int64(deleteGrace) {
				_ = q.repairDeletes(ctx, sv.ref)
			}
		}
	}
	if orphans {
		_, _ = q.repairOrphans(ctx)
	}
}

// noteViewed records that a view read of tubes, with due work swept,
// ended at now.
func (s *store) noteViewed(tubes []string, now int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.viewed == nil {
		s.viewed = map[string]int64{}
	}
	for _, t := range tubes {
		s.viewed[t] = max(s.viewed[t], now)
	}
}

// unviewed returns the tubes of tubes that no view read of the store's
// clients covered since the time since. It forgets older reads.
func (s *store) unviewed(tubes []string, since int64) []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := tubes[:0]
	for _, t := range tubes {
		if at, ok := s.viewed[t]; ok && at >= since {
			continue
		}
		delete(s.viewed, t)
		out = append(out, t)
	}
	return out
}

// flushCleanup finishes this client's deletes: one batch command deletes
// the job records, then one clears the deleting entries of the deletes
// whose records are gone, for all index records.
func (q *Queue) flushCleanup(ctx context.Context) {
	q.flushRecords(ctx)
	q.mu.Lock()
	if len(q.cleanup) == 0 {
		q.mu.Unlock()
		return
	}
	pending := q.cleanup
	q.cleanup = map[shardRef][]int64{}
	q.mu.Unlock()
	var recs []as.BatchRecordIfc
	var refs []shardRef
	for ref, ids := range pending {
		keys := make([]any, len(ids))
		for i, id := range ids {
			keys[i] = id
		}
		recs = append(recs, as.NewBatchWrite(q.s.bwUpdate, q.shardKey(ref), as.MapRemoveByKeyListOp(binDeleting, keys, as.MapReturnType.NONE)))
		refs = append(refs, ref)
	}
	q.batch(ctx, recs)
	q.mu.Lock()
	defer q.mu.Unlock()
	for i, r := range recs {
		br := r.BatchRec()
		if br.ResultCode == types.OK || br.ResultCode == types.KEY_NOT_FOUND_ERROR {
			continue
		}
		// Try again next tick; the repair pass is the backstop.
		q.cleanup[refs[i]] = append(q.cleanup[refs[i]], pending[refs[i]]...)
	}
}

// flushRecords deletes the job records of this client's deletes and
// queues their deleting entries to be cleared. Records it could not
// delete stay queued for the next tick; the repair pass is the backstop.
func (q *Queue) flushRecords(ctx context.Context) {
	q.mu.Lock()
	if len(q.doomed) == 0 {
		q.mu.Unlock()
		return
	}
	pending := q.doomed
	q.doomed = map[shardRef][]int64{}
	q.mu.Unlock()
	var recs []as.BatchRecordIfc
	for _, ids := range pending {
		for _, id := range ids {
			recs = append(recs, as.NewBatchDelete(nil, q.jobKey(beanspike.ID(id))))
		}
	}
	q.batch(ctx, recs)
	if q.at("delete:record") != nil {
		return
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	i := 0
	for ref, ids := range pending {
		for _, id := range ids {
			br := recs[i].BatchRec()
			i++
			if br.ResultCode == types.OK || br.ResultCode == types.KEY_NOT_FOUND_ERROR {
				q.cleanup[ref] = append(q.cleanup[ref], id)
			} else {
				q.doomed[ref] = append(q.doomed[ref], id)
			}
		}
	}
}

// repairDeletes finishes the deletes recorded in the deleting map of the
// index record ref that are older than deleteGrace: their client crashed
// between removing the index entry and deleting the job record, or
// before clearing the deleting entry. It deletes the job records, then
// the deleting entries; both steps are idempotent.
func (q *Queue) repairDeletes(ctx context.Context, ref shardRef) error {
	key := q.shardKey(ref)
	var rec *as.Record
	err := q.retry(ctx, func() error {
		var err error
		rec, err = q.s.client.Operate(q.plainWritePolicy(ctx), key,
			as.MapGetByRankRangeCountOp(binDeleting, 0, 256, as.MapReturnType.KEY_VALUE))
		return err
	})
	if err != nil {
		if errorIsNotFound(err) {
			return nil
		}
		return err
	}
	limit := q.nowNs() - int64(deleteGrace)
	var ids []any
	var keys []*as.Key
	for id, at := range intPairs(rec.Bins[binDeleting]) {
		if at <= limit {
			ids = append(ids, id)
			keys = append(keys, q.jobKey(beanspike.ID(id)))
		}
	}
	if len(ids) == 0 {
		return nil
	}
	if err := q.deleteRecords(ctx, keys); err != nil {
		return err
	}
	err = q.retry(ctx, func() error {
		p := q.writePolicy(ctx, nil)
		p.RecordExistsAction = as.UPDATE_ONLY
		_, err := q.s.client.Operate(p, key, as.MapRemoveByKeyListOp(binDeleting, ids, as.MapReturnType.NONE))
		return err
	})
	if err != nil && !errorIsNotFound(err) {
		return err
	}
	return nil
}

// releaseAll returns this client's live reservations to ready, one
// guarded write per index record (per job when a record's group write
// fails its guard).
func (q *Queue) releaseAll(ctx context.Context) error {
	q.mu.Lock()
	held := q.held
	q.held = map[beanspike.ID]holding{}
	q.mu.Unlock()
	now := q.nowNs()
	groups := map[shardRef][]move{}
	for _, id := range sortedIDs(held) {
		h := held[id]
		if h.e.k1 <= now {
			continue // lapsed: a sweep counts the timeout
		}
		groups[h.ref] = append(groups[h.ref], move{id, binReserved, h.e, binReady, h.e.asReady(q.seq())})
	}
	var errs []error
	for ref, moves := range groups {
		ok, err := q.apply(ctx, ref, moves)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if ok || len(moves) == 1 {
			continue
		}
		for _, m := range moves {
			if _, err := q.apply(ctx, ref, []move{m}); err != nil {
				errs = append(errs, err)
			}
		}
	}
	q.flushCleanup(ctx)
	if len(groups) > 0 {
		q.s.signal()
	}
	return errors.Join(errs...)
}
