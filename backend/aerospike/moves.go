package aerospike

import (
	"context"
	"slices"

	as "github.com/aerospike/aerospike-client-go/v8"
	"github.com/aerospike/aerospike-client-go/v8/types"

	"github.com/beanspike/beanspike"
)

// move is one state change of one job within an index record: the entry
// old, found in the map from, is replaced by the entry new in the map to,
// or removed when to is empty.
type move struct {
	id   beanspike.ID
	from string
	old  entry
	to   string
	new  entry
}

// moveOps returns the operations that apply moves: removals first, then
// puts, grouped by map.
func (q *Queue) moveOps(moves []move) []*as.Operation {
	if len(moves) == 1 {
		// The common case: one job changes maps, or its entry changes.
		m := &moves[0]
		ops := make([]*as.Operation, 0, 4)
		if m.from != m.to {
			ops = append(ops, as.MapRemoveByKeyOp(m.from, int64(m.id), as.MapReturnType.NONE))
		}
		if m.to != "" {
			ops = append(ops, as.MapPutOp(q.s.mapPolicy, m.to, int64(m.id), m.new.value()))
		}
		return ops
	}
	var ops []*as.Operation
	for _, bin := range stateBins {
		var keys []any
		for _, m := range moves {
			if m.from == bin && m.to != bin {
				keys = append(keys, int64(m.id))
			}
		}
		switch len(keys) {
		case 0:
		case 1:
			ops = append(ops, as.MapRemoveByKeyOp(bin, keys[0], as.MapReturnType.NONE))
		default:
			ops = append(ops, as.MapRemoveByKeyListOp(bin, keys, as.MapReturnType.NONE))
		}
	}
	for _, bin := range stateBins {
		var items map[any]any
		var one *move
		for i := range moves {
			m := &moves[i]
			if m.to != bin {
				continue
			}
			if one != nil && items == nil {
				items = map[any]any{int64(one.id): one.new.value()}
			}
			if items != nil {
				items[int64(m.id)] = m.new.value()
			}
			one = m
		}
		switch {
		case items != nil:
			ops = append(ops, as.MapPutItemsOp(q.s.mapPolicy, bin, items))
		case one != nil:
			ops = append(ops, as.MapPutOp(q.s.mapPolicy, bin, int64(one.id), one.new.value()))
		}
	}
	return ops
}

// apply performs moves, with the extra operations, atomically on the
// index record ref if every moved entry is still as observed. The write
// never creates the index record (a filter is not evaluated on a record
// that does not exist), so a move into a deleted tube fails instead of
// resurrecting it. It reports whether the moves took effect. Transient
// failures are retried; after a failure that leaves the outcome in
// doubt, a failed guard is checked against the intended result.
func (q *Queue) apply(ctx context.Context, ref shardRef, moves []move, extra ...*as.Operation) (bool, error) {
	if len(moves) == 0 {
		return false, nil
	}
	rec := as.NewBatchWrite(casBatchPolicy(moves), q.shardKey(ref), append(q.moveOps(moves), extra...)...)
	recs := []as.BatchRecordIfc{rec}
	br := rec.BatchRec()
	b := backoff{h: &q.s.health}
	doubt := false
	for {
		q.batch(ctx, recs)
		code := br.ResultCode
		if code == types.OK {
			q.s.ready.moved(ref, moves)
			return true, nil
		}
		if code == types.FILTERED_OUT || code == types.KEY_NOT_FOUND_ERROR {
			if doubt {
				if ok, verr := q.verify(ctx, ref, moves); verr == nil && ok {
					q.s.ready.moved(ref, moves)
					return true, nil
				}
			}
			q.s.ready.stale(ref.tube)
			return false, nil
		}
		err := batchErr(br)
		if !transient(code) {
			q.s.ready.stale(ref.tube)
			return false, interpretError(err)
		}
		doubt = doubt || codeInDoubt(br)
		if werr := b.wait(ctx, q.stopCh(), err); werr != nil {
			q.s.ready.stale(ref.tube)
			return false, werr
		}
	}
}

// verify tells whether moves are in effect: each moved job is in its
// target map with the new entry, or, for removals, in no map.
func (q *Queue) verify(ctx context.Context, ref shardRef, moves []move) (bool, error) {
	ids := make([]beanspike.ID, len(moves))
	for i, m := range moves {
		ids[i] = m.id
	}
	found, err := q.readEntries(ctx, ref, ids)
	if err != nil {
		return false, err
	}
	for _, m := range moves {
		loc, ok := found[m.id]
		if m.to == "" {
			if ok {
				return false, nil
			}
			continue
		}
		if !ok || loc.bin != m.to || loc.e != m.new {
			return false, nil
		}
	}
	return true, nil
}

// found is where a job's entry was found in an index record.
type found struct {
	bin string
	e   entry
}

// readEntries reads the entries of ids from the index record ref.
func (q *Queue) readEntries(ctx context.Context, ref shardRef, ids []beanspike.ID) (map[beanspike.ID]found, error) {
	keys := make([]any, len(ids))
	for i, id := range ids {
		keys[i] = int64(id)
	}
	ops := make([]*as.Operation, 0, len(stateBins))
	for _, bin := range stateBins {
		ops = append(ops, as.MapGetByKeyListOp(bin, keys, as.MapReturnType.KEY_VALUE))
	}
	out := map[beanspike.ID]found{}
	var rec *as.Record
	err := q.retry(ctx, func() error {
		var err error
		rec, err = q.s.client.Operate(q.plainWritePolicy(ctx), q.shardKey(ref), ops...)
		return err
	})
	if err != nil {
		if resultCode(err) == types.KEY_NOT_FOUND_ERROR || errorIsNotFound(err) {
			return out, nil
		}
		return nil, err
	}
	for _, bin := range stateBins {
		for _, p := range pairs(rec.Bins[bin]) {
			out[p.id] = found{bin, p.e}
		}
	}
	return out, nil
}

// location is where a job lives.
type location struct {
	ref shardRef
	bin string
	e   entry
}

func (l location) state() beanspike.State { return binState(l.bin) }

// locate finds job id: its tube (from the cache or the job record) and
// its entry in the index, after making it ready if it was due. With
// withRecord it also returns the job record. It returns ErrNotFound when
// the job has no index entry: the index is the truth of what exists.
func (q *Queue) locate(ctx context.Context, id beanspike.ID, withRecord bool) (location, *as.Record, error) {
	tube, cached := q.s.tubeOf(id)
	var rec *as.Record
	if !cached || withRecord {
		var bins []string
		if !withRecord {
			bins = []string{binTube}
		}
		r, err := q.getRecord(ctx, id, bins...)
		if err != nil {
			return location{}, nil, err
		}
		rec = r
		t, ok := rec.Bins[binTube].(string)
		if !ok {
			return location{}, nil, errNotFound(id)
		}
		tube = t
		q.s.remember(id, tube)
	}
	ref := shardRef{tube, q.shardOf(id)}
	for range 4 {
		f, err := q.readEntries(ctx, ref, []beanspike.ID{id})
		if err != nil {
			return location{}, nil, err
		}
		e, ok := f[id]
		if !ok {
			return location{}, nil, errNotFound(id)
		}
		if (e.bin == binDelayed || e.bin == binReserved) && e.e.k1 <= q.nowNs() {
			if err := q.sweep(ctx, ref); err != nil {
				return location{}, nil, err
			}
			continue
		}
		return location{ref, e.bin, e.e}, rec, nil
	}
	return location{}, nil, errUnavailable("job %d keeps changing", id)
}

// getRecord reads the job record of id; ErrNotFound when there is none.
func (q *Queue) getRecord(ctx context.Context, id beanspike.ID, bins ...string) (*as.Record, error) {
	return q.readJobRecord(ctx, q.readPolicy(ctx), id, bins)
}

// confirmRecord is getRecord reading every copy of the record a cluster
// holds (read mode AP ALL): while partitions migrate, the copy a read
// reaches may lack a record that another copy has.
func (q *Queue) confirmRecord(ctx context.Context, id beanspike.ID, bins ...string) (*as.Record, error) {
	p := *q.readPolicy(ctx)
	p.ReadModeAP = as.ReadModeAPAll
	return q.readJobRecord(ctx, &p, id, bins)
}

func (q *Queue) readJobRecord(ctx context.Context, p *as.BasePolicy, id beanspike.ID, bins []string) (*as.Record, error) {
	var rec *as.Record
	err := q.retry(ctx, func() error {
		var err error
		rec, err = q.s.client.Get(p, q.jobKey(id), bins...)
		return err
	})
	if err != nil {
		if errorIsNotFound(err) {
			return nil, errNotFound(id)
		}
		return nil, err
	}
	return rec, nil
}

// Sweeping reads and moves at most this many entries of a map at a time.
const sweepChunk = 32

// sweep makes the due delayed jobs and the lapsed reservations of the
// index record ref ready, in one guarded write per chunk. Any client may
// run it at any time: when two race, one write wins and the other finds
// its guard failed and reads again.
func (q *Queue) sweep(ctx context.Context, ref shardRef) error {
	key := q.shardKey(ref)
	ops := []*as.Operation{
		as.MapGetByRankRangeCountOp(binDelayed, 0, sweepChunk, as.MapReturnType.KEY_VALUE),
		as.MapGetByRankRangeCountOp(binReserved, 0, sweepChunk, as.MapReturnType.KEY_VALUE),
	}
	for range 64 {
		var rec *as.Record
		err := q.retry(ctx, func() error {
			var err error
			rec, err = q.s.client.Operate(q.plainWritePolicy(ctx), key, ops...)
			return err
		})
		if err != nil {
			if errorIsNotFound(err) {
				return nil
			}
			return err
		}
		now := q.nowNs()
		var moves []move
		delayed := pairs(rec.Bins[binDelayed])
		reserved := pairs(rec.Bins[binReserved])
		full := false
		for _, p := range delayed {
			if p.e.k1 <= now {
				moves = append(moves, move{p.id, binDelayed, p.e, binReady, p.e.asReady(p.e.k1)})
			}
		}
		full = full || (len(delayed) == sweepChunk && delayed[len(delayed)-1].e.k1 <= now)
		for _, p := range reserved {
			if p.e.k1 <= now {
				n := p.e.asReady(p.e.k1)
				n.timeouts++
				moves = append(moves, move{p.id, binReserved, p.e, binReady, n})
			}
		}
		full = full || (len(reserved) == sweepChunk && reserved[len(reserved)-1].e.k1 <= now)
		if len(moves) == 0 {
			return nil
		}
		ok, err := q.apply(ctx, ref, moves)
		if err != nil {
			return err
		}
		if ok {
			q.s.signal()
			if !full {
				return nil
			}
		}
	}
	return nil
}

// sortedIDs returns the keys of m in order.
func sortedIDs[V any](m map[beanspike.ID]V) []beanspike.ID {
	ids := make([]beanspike.ID, 0, len(m))
	for id := range m {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	return ids
}
