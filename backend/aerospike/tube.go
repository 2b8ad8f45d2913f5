package aerospike

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"time"

	as "github.com/aerospike/aerospike-client-go/v8"
	"github.com/aerospike/aerospike-client-go/v8/types"

	"github.com/beanspike/beanspike"
)

// tubeInfo is a tube's meta record as read.
type tubeInfo struct {
	name     string
	ep       int64 // 0: no such tube
	gen      uint32
	pauseEnd int64
	pauseDur int64
	pauses   int64
	deleting bool  // DeleteTube is removing this incarnation
	read     int64 // when read (ns, process clock)
}

func (t *tubeInfo) exists() bool { return t != nil && t.ep != 0 && !t.deleting }

func (t *tubeInfo) ix(kind byte) ixRef { return ixRef{tube: t.name, ep: t.ep, kind: kind} }

// tubeFresh is how long a tube's meta record read by a client of the
// process serves the others: a pause begun elsewhere is honoured at most
// this late.
const tubeFresh = int64(5 * time.Millisecond)

// maxTubes bounds the tubes a store keeps in memory.
const maxTubes = 1 << 14

// tube returns tube's meta record, read within maxAge; with create, a
// tube that does not exist is made (registered in the tube list, then
// given a meta record with a new incarnation).
func (q *Queue) tube(ctx context.Context, name string, maxAge int64, create bool) (*tubeInfo, error) {
	s := q.s
	now := time.Now().UnixNano()
	s.mu.Lock()
	t := s.tubes[name]
	s.mu.Unlock()
	// A tube seen missing is read again after tubeFresh whatever maxAge
	// says: it may have been made since.
	if t != nil && (t.exists() && now-t.read <= maxAge || !t.exists() && !create && now-t.read <= min(maxAge, tubeFresh)) {
		return t, nil
	}
	for range 8 {
		t, err := q.readTube(ctx, name)
		if err != nil {
			return nil, err
		}
		if t.exists() || !create {
			return t, nil
		}
		if err := q.createTube(ctx, t); err != nil {
			return nil, err
		}
	}
	return nil, errUnavailable("tube %q keeps changing", name)
}

// readTube reads tube's meta record.
func (q *Queue) readTube(ctx context.Context, name string) (*tubeInfo, error) {
	var rec *as.Record
	err := q.retry(ctx, func() error {
		var err error
		rec, err = q.s.client.Get(q.readPolicy(ctx), q.metaKey(name))
		if resultCode(err) == types.KEY_NOT_FOUND_ERROR {
			rec, err = nil, nil
		}
		return err
	})
	if err != nil {
		return nil, err
	}
	t := &tubeInfo{name: name, read: time.Now().UnixNano()}
	if rec != nil {
		t.gen = rec.Generation
		t.ep, _ = toInt(rec.Bins[binEpoch])
		t.pauseEnd, _ = toInt(rec.Bins[binPauseEnd])
		t.pauseDur, _ = toInt(rec.Bins[binPauseDur])
		t.pauses, _ = toInt(rec.Bins[binPauses])
		del, _ := toInt(rec.Bins["del"])
		t.deleting = del != 0
	}
	q.s.mu.Lock()
	if len(q.s.tubes) >= maxTubes {
		clear(q.s.tubes)
	}
	q.s.tubes[name] = t
	q.s.mu.Unlock()
	return t, nil
}

// forgetTube drops the process's copy of tube's meta record.
func (s *store) forgetTube(name string) {
	s.mu.Lock()
	delete(s.tubes, name)
	s.mu.Unlock()
}

// createTube registers the tube in the tube list, then gives it a meta
// record with a new incarnation (or a new incarnation in place of one
// that DeleteTube is removing). A crash between the two leaves the tube
// listed without a meta record, which Tubes does not list.
func (q *Queue) createTube(ctx context.Context, old *tubeInfo) error {
	if err := q.retry(ctx, func() error {
		_, err := q.s.client.Operate(q.plainWritePolicy(ctx), q.listKey(),
			as.MapPutOp(as.NewMapPolicy(as.MapOrder.KEY_ORDERED, as.MapWriteMode.UPDATE), binListTubes, old.name, 1))
		return err
	}); err != nil {
		return err
	}
	ep := rand.Int64N(1<<62) + 1
	return q.retry(ctx, func() error {
		wp := q.writePolicy(ctx, nil)
		if old.ep == 0 {
			wp.RecordExistsAction = as.CREATE_ONLY
		} else {
			wp.RecordExistsAction = as.UPDATE_ONLY
			wp.GenerationPolicy = as.EXPECT_GEN_EQUAL
			wp.Generation = old.gen
		}
		err := q.s.client.PutBins(wp, q.metaKey(old.name), as.NewBin(binEpoch, ep), as.NewBin("del", 0))
		switch resultCode(err) {
		case types.KEY_EXISTS_ERROR, types.GENERATION_ERROR, types.KEY_NOT_FOUND_ERROR:
			return nil // someone else did: read again
		}
		return err
	})
}

// --- counters --------------------------------------------------------------

// delta is a change to a tube's counts.
type delta struct {
	ready, delayed, reserved, buried, urgent int64
	total, deletes, comp, skipped            int64
}

// move returns the delta of a job of priority pri going from state from
// to state to (0 for a new or deleted job).
func move(from, to beanspike.State, pri uint32, fromPri uint32) delta {
	var d delta
	d.add(from, fromPri, -1)
	d.add(to, pri, 1)
	return d
}

func (d *delta) add(st beanspike.State, pri uint32, n int64) {
	switch st {
	case beanspike.Ready:
		d.ready += n
		if pri < beanspike.UrgentPriority {
			d.urgent += n
		}
	case beanspike.Delayed:
		d.delayed += n
	case beanspike.Reserved:
		d.reserved += n
	case beanspike.Buried:
		d.buried += n
	}
}

func (d delta) plus(e delta) delta {
	return delta{
		d.ready + e.ready, d.delayed + e.delayed, d.reserved + e.reserved, d.buried + e.buried,
		d.urgent + e.urgent, d.total + e.total, d.deletes + e.deletes, d.comp + e.comp, d.skipped + e.skipped,
	}
}

func (d delta) zero() bool { return d == delta{} }

func (d delta) ops() []*as.Operation {
	ops := make([]*as.Operation, 0, 4)
	for _, c := range [...]struct {
		bin string
		n   int64
	}{
		{cntReady, d.ready}, {cntDelayed, d.delayed}, {cntReserved, d.reserved}, {cntBuried, d.buried},
		{cntUrgent, d.urgent}, {cntTotal, d.total}, {cntDeletes, d.deletes}, {cntComp, d.comp}, {cntSkipped, d.skipped},
	} {
		if c.n != 0 {
			ops = append(ops, as.AddOp(as.NewBin(c.bin, c.n)))
		}
	}
	return ops
}

// countRec returns the batch record that adds d to one of the tube's
// counter records, chosen at random; nil for no change.
func (q *Queue) countRec(tube string, ep int64, d delta) *as.BatchWrite {
	if d.zero() {
		return nil
	}
	return as.NewBatchWrite(q.s.bwPol, q.counterKey(tube, ep, rand.IntN(counterShards)), d.ops()...)
}

// --- tube calls ------------------------------------------------------------

// StatsTube describes a tube; see [beanspike.Queue.StatsTube]. Its counts
// come from the tube's counter records, one batch read; delayed jobs
// whose time came and lapsed reservations are moved first.
func (q *Queue) StatsTube(ctx context.Context, tube string) (*beanspike.TubeStats, error) {
	if err := q.callCheck(ctx, tube); err != nil {
		return nil, err
	}
	t, err := q.tube(ctx, tube, 0, false)
	if err != nil {
		return nil, err
	}
	if !t.exists() {
		return nil, errNoTube(tube)
	}
	if err := q.tend(ctx, t); err != nil {
		return nil, err
	}
	q.s.flush(ctx)
	recs := make([]as.BatchRecordIfc, counterShards)
	for k := range recs {
		recs[k] = as.NewBatchRead(nil, q.counterKey(tube, t.ep, k), nil)
	}
	if err := q.batchRead(ctx, recs); err != nil {
		return nil, err
	}
	var sum [9]int64
	names := [9]string{cntReady, cntDelayed, cntReserved, cntBuried, cntUrgent, cntTotal, cntDeletes, cntComp, cntSkipped}
	for _, r := range recs {
		if rec := r.BatchRec().Record; rec != nil {
			for i, n := range names {
				v, _ := toInt(rec.Bins[n])
				sum[i] += v
			}
		}
	}
	pos := func(v int64) int { return int(max(v, 0)) }
	st := &beanspike.TubeStats{
		Name:               tube,
		Ready:              pos(sum[0]),
		Delayed:            pos(sum[1]),
		Reserved:           pos(sum[2]),
		Buried:             pos(sum[3]),
		Urgent:             pos(sum[4]),
		TotalJobs:          uint64(max(sum[5], 0)),
		Deletes:            uint64(max(sum[6], 0)),
		Compressed:         uint64(max(sum[7], 0)),
		CompressionSkipped: uint64(max(sum[8], 0)),
		Pauses:             uint64(t.pauses),
		Pause:              dur(t.pauseDur),
		Waiting:            q.s.waiting(tube),
	}
	if now := q.nowNs(); t.pauseEnd > now {
		st.PauseLeft = dur(t.pauseEnd - now)
	}
	return st, nil
}

// Tubes lists the store's tubes in lexical order; see
// [beanspike.Queue.Tubes]. It reads the tube list, then the meta records
// of the tubes listed.
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
		rec, err = q.s.client.Get(q.readPolicy(ctx), q.listKey(), binListTubes)
		if resultCode(err) == types.KEY_NOT_FOUND_ERROR {
			rec, err = nil, nil
		}
		return err
	})
	if err != nil || rec == nil {
		return []string{}, err
	}
	var names []string
	switch m := rec.Bins[binListTubes].(type) {
	case map[any]any:
		for k := range m {
			if n, ok := k.(string); ok {
				names = append(names, n)
			}
		}
	case []as.MapPair:
		for _, p := range m {
			if n, ok := p.Key.(string); ok {
				names = append(names, n)
			}
		}
	}
	slices.Sort(names)
	out := make([]string, 0, len(names))
	for len(names) > 0 {
		chunk := names[:min(len(names), 256)]
		names = names[len(chunk):]
		recs := make([]as.BatchRecordIfc, len(chunk))
		for i, n := range chunk {
			recs[i] = as.NewBatchRead(nil, q.metaKey(n), []string{binEpoch, "del"})
		}
		if err := q.batchRead(ctx, recs); err != nil {
			return nil, err
		}
		for i, r := range recs {
			if rec := r.BatchRec().Record; rec != nil {
				if del, _ := toInt(rec.Bins["del"]); del == 0 {
					out = append(out, chunk[i])
				}
			}
		}
	}
	return out, nil
}

// PauseTube stops Reserve from taking jobs of tube for d, or ends a pause
// when d == 0; see [beanspike.Queue.PauseTube]. One write to the tube's
// meta record (and, for a new tube, its creation).
func (q *Queue) PauseTube(ctx context.Context, tube string, d time.Duration) error {
	if err := beanspike.ValidateDelay(d); err != nil {
		return err
	}
	if err := q.callCheck(ctx, tube); err != nil {
		return err
	}
	t, err := q.tube(ctx, tube, 0, true)
	if err != nil {
		return err
	}
	ops := []*as.Operation{as.AddOp(as.NewBin(binPauses, 1))}
	if d == 0 {
		ops = append(ops, as.PutOp(as.NewBin(binPauseEnd, 0)))
	} else {
		ops = append(ops, as.PutOp(as.NewBin(binPauseDur, int64(d))),
			as.PutOp(as.NewBin(binPauseEnd, after(q.nowNs(), d))))
	}
	err = q.retry(ctx, func() error {
		wp := q.writePolicy(ctx, as.ExpEq(as.ExpIntBin(binEpoch), as.ExpIntVal(t.ep)))
		wp.RecordExistsAction = as.UPDATE_ONLY
		_, err := q.s.client.Operate(wp, q.metaKey(tube), ops...)
		return err
	})
	q.s.forgetTube(tube)
	if c := resultCode(err); c == types.FILTERED_OUT || c == types.KEY_NOT_FOUND_ERROR {
		return q.PauseTube(ctx, tube, d) // deleted meanwhile: pause the new tube
	}
	if err == nil && d == 0 {
		q.s.signal()
	}
	return err
}

// after returns now+d, saturating instead of overflowing.
func after(now int64, d time.Duration) int64 {
	const never = 1<<63 - 1
	if int64(d) >= never-1-now {
		return never - 1
	}
	return now + int64(d)
}

// DeleteTube deletes tube and every job in it; see
// [beanspike.Queue.DeleteTube]. It marks the tube's meta record, from
// when on the tube does not exist and a Put makes a new incarnation of
// it; then it walks the old incarnation's indexes, deleting the job
// records they name, the segments and the directories, then the counter
// and meta records: O(jobs of the tube). A DeleteTube that dies midway
// is finished by the next DeleteTube of the tube, unless a Put made the
// tube anew meanwhile; the job records it did not reach then stay behind,
// unreachable.
func (q *Queue) DeleteTube(ctx context.Context, tube string) (int, error) {
	if err := q.callCheck(ctx, tube); err != nil {
		return 0, err
	}
	t, err := q.readTube(ctx, tube)
	if err != nil {
		return 0, err
	}
	if t.ep == 0 {
		return 0, errNoTube(tube)
	}
	if !t.deleting {
		err := q.retry(ctx, func() error {
			wp := q.writePolicy(ctx, nil)
			wp.RecordExistsAction = as.UPDATE_ONLY
			wp.GenerationPolicy = as.EXPECT_GEN_EQUAL
			wp.Generation = t.gen
			return q.s.client.PutBins(wp, q.metaKey(tube), as.NewBin("del", 1))
		})
		if c := resultCode(err); c == types.GENERATION_ERROR || c == types.KEY_NOT_FOUND_ERROR {
			return q.DeleteTube(ctx, tube)
		}
		if err != nil {
			return 0, err
		}
	}
	q.s.forgetTube(tube)
	q.s.dropTube(tube)
	n, err := q.purge(ctx, t)
	if err != nil {
		return n, err
	}
	// The meta record goes only if no Put made the tube anew.
	err = q.retry(ctx, func() error {
		wp := q.writePolicy(ctx, as.ExpAnd(as.ExpEq(as.ExpIntBin(binEpoch), as.ExpIntVal(t.ep)),
			as.ExpEq(as.ExpIntBin("del"), as.ExpIntVal(1))))
		_, err := q.s.client.Delete(wp, q.metaKey(tube))
		if c := resultCode(err); c == types.FILTERED_OUT || c == types.KEY_NOT_FOUND_ERROR {
			return nil
		}
		return err
	})
	if err != nil {
		return n, err
	}
	if now, _ := q.readTube(ctx, tube); now != nil && now.ep == 0 {
		_ = q.retry(ctx, func() error {
			_, err := q.s.client.Operate(q.plainWritePolicy(ctx), q.listKey(),
				as.MapRemoveByKeyOp(binListTubes, tube, as.MapReturnType.NONE))
			return err
		})
	}
	q.s.forgetTube(tube)
	return n, nil
}

// purge deletes what incarnation t of a tube holds: the job records its
// indexes name, their segments and directories, and its counters. It
// returns how many job records it deleted.
func (q *Queue) purge(ctx context.Context, t *tubeInfo) (int, error) {
	n := 0
	for _, kind := range []byte{kindReady, kindDelayed, kindReserved, kindBuried} {
		r := t.ix(kind)
		segs, err := q.segments(ctx, r)
		if err != nil {
			return n, err
		}
		for _, seg := range segs {
			keys, err := q.segmentKeys(ctx, r, seg)
			if err != nil {
				return n, err
			}
			for len(keys) > 0 {
				chunk := keys[:min(len(keys), 256)]
				keys = keys[len(chunk):]
				k, err := q.deleteJobsOf(ctx, t.name, chunk)
				n += k
				if err != nil {
					return n, err
				}
			}
		}
		var recs []as.BatchRecordIfc
		for _, seg := range segs {
			recs = append(recs, as.NewBatchDelete(nil, q.s.segKey(r, seg)))
		}
		recs = append(recs, as.NewBatchDelete(nil, q.s.dirKey(r)))
		if err := q.batchWrite(ctx, recs); err != nil {
			return n, err
		}
		q.s.dropDir(r)
	}
	recs := make([]as.BatchRecordIfc, counterShards)
	for k := range recs {
		recs[k] = as.NewBatchDelete(nil, q.counterKey(t.name, t.ep, k))
	}
	return n, q.batchWrite(ctx, recs)
}

// segmentKeys reads every key of a segment.
func (q *Queue) segmentKeys(ctx context.Context, r ixRef, seg int64) ([]hint, error) {
	var keys []hint
	err := q.retry(ctx, func() error {
		rec, err := q.s.client.Operate(q.plainWritePolicy(ctx), q.s.segKey(r, seg),
			as.MapGetByIndexRangeOp(binEntries, 0, as.MapReturnType.KEY_VALUE))
		if resultCode(err) == types.KEY_NOT_FOUND_ERROR {
			return nil
		}
		if err != nil {
			return err
		}
		keys = nil
		for _, v := range results(rec.Bins, binEntries) {
			keys = append(keys, pairList(r.kind, v)...)
		}
		return nil
	})
	return keys, err
}

// deleteJobsOf deletes the job records of tube named by hint keys, and
// returns how many it deleted.
func (q *Queue) deleteJobsOf(ctx context.Context, tube string, hs []hint) (int, error) {
	filter := as.ExpEq(as.ExpStringBin(binTube), as.ExpStringVal(tube))
	pol := as.NewBatchDeletePolicy()
	pol.FilterExpression = filter
	var recs []as.BatchRecordIfc
	for _, h := range hs {
		recs = append(recs, as.NewBatchDelete(pol, q.jobKey(h.id)))
	}
	if err := q.batchWrite(ctx, recs); err != nil {
		return 0, err
	}
	n := 0
	for _, r := range recs {
		if r.BatchRec().ResultCode == types.OK {
			n++
		}
	}
	return n, nil
}

// batchWrite runs a batch of writes and deletes, retrying those that
// failed transiently, until each is applied or refused for good (a
// missing record, a filter).
func (q *Queue) batchWrite(ctx context.Context, recs []as.BatchRecordIfc) error {
	todo := recs
	return q.retry(ctx, func() error {
		q.batch(ctx, todo)
		var again []as.BatchRecordIfc
		var last error
		for _, r := range todo {
			if br := r.BatchRec(); transient(br.ResultCode) {
				again = append(again, r)
				last = batchErr(br)
			}
		}
		todo = again
		return last
	})
}

// callCheck makes the checks every call about a tube begins with.
func (q *Queue) callCheck(ctx context.Context, tube string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := beanspike.ValidateTube(tube); err != nil {
		return err
	}
	return q.errClosed()
}

func errUnavailable(format string, args ...any) error {
	return fmt.Errorf("%w: %s", beanspike.ErrUnavailable, fmt.Sprintf(format, args...))
}

func batchErr(br *as.BatchRecord) error {
	if br.Err != nil {
		return br.Err
	}
	return &as.AerospikeError{ResultCode: br.ResultCode}
}
