package aerospike

import (
	"context"
	"time"

	as "github.com/aerospike/aerospike-client-go/v8"
	"github.com/aerospike/aerospike-client-go/v8/types"

	"github.com/beanspike/beanspike"
)

// Orphan job records. A Put that fails with its job record written and
// its index entry not (the entry write failed for good, or the process
// died between the two) deletes the record, but that delete may fail or
// never run. Such a record is no job; the orphan pass finds and deletes
// it, without a scan: it walks the job IDs in order, behind the ID
// counter, reading a block of records by key at a time and looking up
// the index entries of the records it finds.
//
// An ID is checked once the counter passed it at least orphanLag ago: a
// process uses a block of IDs for at most idBlockLife, and a Put writes
// within seconds of taking its ID, so by then every record of the ID is
// written or never will be. A record without an entry whose put time is
// as old is deleted. The pass's state, in the repair record of the
// store, is the next ID to check (cursor), the highest ID that may be
// checked (horizon), and a recent reading of the counter with its time
// (mark); the horizon moves to the mark once the mark is orphanLag old.
// One client at a time runs the pass, under a lease held in the same
// record, and commits the cursor only if it still holds the lease.
const (
	// idBlockLife is how long a process uses a block of IDs before it
	// takes a new one.
	idBlockLife = time.Minute
	// orphanLag is how long after the ID counter passed an ID the pass
	// checks it, and how old a record without an entry must be.
	orphanLag = 10 * time.Minute
	// orphanLease is how long a pass holds the repair record.
	orphanLease = 30 * time.Second
	// orphanBudget bounds the time one pass spends checking blocks.
	orphanBudget = 2 * time.Second
	// orphanEvery is how many repair passes of the background loop go by
	// between two attempts at the orphan pass: a client tries about every
	// ten seconds.
	orphanEvery = 10
)

// Bins of the repair record.
const (
	binCursor  = "cursor"
	binHorizon = "horizon"
	binMark    = "mark"
	binMarkAt  = "markat"
	binLease   = "lease" // end of the current pass's lease (ns); 0 when free
)

func (q *Queue) repairKey() *as.Key {
	k, _ := q.s.metaRecordKey("repair")
	return k
}

// repairOrphans runs one orphan pass, unless another client holds the
// lease. It reports how many orphan records it deleted.
func (q *Queue) repairOrphans(ctx context.Context) (int, error) {
	now := q.nowNs()
	lease := now + int64(orphanLease)
	// Take the lease and read the state in one command. A filter is not
	// evaluated on a record that does not exist: the first pass creates
	// it.
	p := q.writePolicy(ctx, as.ExpLessEq(as.ExpIntBin(binLease), as.ExpIntVal(now)))
	var rec *as.Record
	err := q.retry(ctx, func() error {
		var err error
		rec, err = q.s.client.Operate(p, q.repairKey(), as.PutOp(as.NewBin(binLease, lease)), as.GetOp())
		return err
	})
	if err != nil {
		if resultCode(err) == types.FILTERED_OUT {
			return 0, nil // another client is at it
		}
		return 0, err
	}
	cursor, _ := toInt(rec.Bins[binCursor])
	horizon, _ := toInt(rec.Bins[binHorizon])
	mark, _ := toInt(rec.Bins[binMark])
	markAt, _ := toInt(rec.Bins[binMarkAt])
	cursor = max(cursor, 1)
	if markAt == 0 || now-markAt >= int64(orphanLag) {
		if markAt != 0 {
			horizon = max(horizon, mark+1)
		}
		var counter *as.Record
		err := q.retry(ctx, func() error {
			var err error
			counter, err = q.s.client.Get(q.readPolicy(ctx), q.counterKey(), binNext)
			return err
		})
		switch {
		case err == nil:
			mark, _ = toInt(counter.Bins[binNext])
		case errorIsNotFound(err):
			mark = 0 // no ID handed out yet
		default:
			return 0, err
		}
		markAt = now
	}
	deleted := 0
	start := time.Now()
	for cursor < horizon && time.Since(start) < orphanBudget {
		hi := min(cursor+idBlock, horizon)
		n, settled, err := q.deleteOrphans(ctx, cursor, hi, now)
		deleted += n
		if err != nil || !settled {
			break // commit what is done; this block again next time
		}
		cursor = hi
		if ctx.Err() != nil {
			break
		}
	}
	if err := q.at("orphans:commit"); err != nil {
		return deleted, err
	}
	// Commit, and free the lease, if the lease is still ours.
	wp := q.writePolicy(ctx, as.ExpEq(as.ExpIntBin(binLease), as.ExpIntVal(lease)))
	wp.RecordExistsAction = as.UPDATE_ONLY
	err = q.retry(ctx, func() error {
		_, err := q.s.client.Operate(wp, q.repairKey(),
			as.PutOp(as.NewBin(binCursor, cursor)), as.PutOp(as.NewBin(binHorizon, horizon)),
			as.PutOp(as.NewBin(binMark, mark)), as.PutOp(as.NewBin(binMarkAt, markAt)),
			as.PutOp(as.NewBin(binLease, 0)))
		return err
	})
	if err != nil && resultCode(err) != types.FILTERED_OUT && !errorIsNotFound(err) {
		return deleted, err
	}
	return deleted, nil
}

// deleteOrphans deletes the job records of IDs lo to hi-1 that have no
// index entry and were put at least orphanLag before now (ns). It
// reports whether every record of the range could be judged: one whose
// put time is younger than that is left for a later pass, unless it is
// so far in the future (more than orphanLag ahead of now) that only a
// wrong clock can have written it, when the horizon alone decides.
func (q *Queue) deleteOrphans(ctx context.Context, lo, hi, now int64) (deleted int, settled bool, err error) {
	recs := make([]as.BatchRecordIfc, 0, hi-lo)
	for id := lo; id < hi; id++ {
		recs = append(recs, as.NewBatchRead(nil, q.jobKey(beanspike.ID(id)), []string{binTube, binPut}))
	}
	if err := q.batchRead(ctx, recs); err != nil {
		return 0, false, err
	}
	type group struct{ ids []beanspike.ID }
	groups := map[shardRef]*group{}
	var order []shardRef
	settled = true
	for i, r := range recs {
		br := r.BatchRec()
		if br.ResultCode != types.OK || br.Record == nil {
			continue
		}
		id := beanspike.ID(lo + int64(i))
		if put, ok := toInt(br.Record.Bins[binPut]); ok && put > now-int64(orphanLag) && put <= now+int64(orphanLag) {
			settled = false // too young to judge
			continue
		}
		tube, _ := br.Record.Bins[binTube].(string)
		ref := shardRef{tube, q.shardOf(id)}
		g := groups[ref]
		if g == nil {
			g = &group{}
			groups[ref] = g
			order = append(order, ref)
		}
		g.ids = append(g.ids, id)
	}
	var orphans []*as.Key
	for _, ref := range order {
		ids := groups[ref].ids
		var entries map[beanspike.ID]found
		if ref.tube != "" {
			f, err := q.readEntries(ctx, ref, ids)
			if err != nil {
				return 0, false, err
			}
			entries = f
		}
		for _, id := range ids {
			if _, ok := entries[id]; !ok {
				orphans = append(orphans, q.jobKey(id))
			}
		}
	}
	if len(orphans) == 0 {
		return 0, settled, nil
	}
	if err := q.deleteRecords(ctx, orphans); err != nil {
		return 0, false, err
	}
	return len(orphans), settled, nil
}
