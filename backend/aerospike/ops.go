package aerospike

import (
	"context"
	"fmt"
	"time"

	as "github.com/aerospike/aerospike-client-go/v8"
	"github.com/aerospike/aerospike-client-go/v8/types"

	"github.com/beanspike/beanspike"
)

// holding is a reservation of this client as it was last written.
type holding struct {
	tube     string
	ep       int64
	pri      uint32
	ttr      int64
	lease    int64 // time the lease hint was filed under
	deadline int64
}

func (h holding) info() *tubeInfo { return &tubeInfo{name: h.tube, ep: h.ep} }

// ownFilter checks that a job record is reserved by q, and with live
// set, that the reservation has not lapsed at now.
func (q *Queue) ownFilter(live bool, now int64) *as.Expression {
	e := []*as.Expression{
		as.ExpEq(as.ExpIntBin(binState), as.ExpIntVal(int64(beanspike.Reserved))),
		as.ExpEq(as.ExpIntBin(binOwner1), as.ExpIntVal(q.owner[0])),
		as.ExpEq(as.ExpIntBin(binOwner2), as.ExpIntVal(q.owner[1])),
	}
	if live {
		e = append(e, as.ExpGreater(as.ExpIntBin(binAt), as.ExpIntVal(now)))
	}
	return as.ExpAnd(e...)
}

// notHeld returns the error of a call that only the holder of a
// reservation may make, for a job this client does not hold.
func (q *Queue) notHeld(ctx context.Context, id beanspike.ID) error {
	j, ok, err := q.readJob(ctx, id, false)
	if err != nil {
		return err
	}
	if !ok {
		return errNotFound(id)
	}
	if j.state == beanspike.Reserved && j.owner == q.owner && j.at > q.nowNs() {
		return errUnavailable("job %d changed while it was acted on", id)
	}
	return errNotReserved(id)
}

// ownWrite applies ops, which set the change time to now, to a job held
// by q, under ownFilter, with the extra batch records before it (a new
// hint). It reports whether the job was as held. A write in doubt whose
// retry finds the job changed is told applied by the change time.
func (q *Queue) ownWrite(ctx context.Context, id beanspike.ID, now int64, extra []as.BatchRecordIfc, ops ...*as.Operation) (bool, error) {
	rec := as.NewBatchWrite(q.s.bwUpdateWith(q.ownFilter(true, now)), q.jobKey(id), ops...)
	recs := append(extra, rec)
	if err := q.at("own"); err != nil {
		return false, err
	}
	q.batch(ctx, recs)
	br := rec.BatchRec()
	doubt := false
	err := q.retry(ctx, func() error {
		switch {
		case br.ResultCode == types.OK, br.ResultCode == types.FILTERED_OUT, br.ResultCode == types.KEY_NOT_FOUND_ERROR:
			return nil
		case !transient(br.ResultCode):
			return batchErr(br)
		}
		doubt = doubt || codeInDoubt(br)
		q.batch(ctx, []as.BatchRecordIfc{rec})
		switch br.ResultCode {
		case types.OK, types.FILTERED_OUT, types.KEY_NOT_FOUND_ERROR:
			return nil
		}
		return batchErr(br)
	})
	if err != nil {
		return false, err
	}
	if br.ResultCode != types.OK && doubt {
		j, ok, err := q.readJob(ctx, id, false)
		if err != nil {
			return false, err
		}
		return ok && j.changed == now, nil
	}
	return br.ResultCode == types.OK, nil
}

// Delete removes a job reserved by this client, or one that is ready,
// delayed or buried; see [beanspike.Queue.Delete]. For a job the client
// holds: one delete of its record, checked against the reservation.
// Otherwise one read of the record, then its delete, checked against
// its generation. Its hint goes in the background.
func (q *Queue) Delete(ctx context.Context, id beanspike.ID) error {
	if err := q.idCheck(ctx, id); err != nil {
		return err
	}
	if h, ok := q.holdingOf(id); ok {
		if err := q.at("delete"); err != nil {
			return err
		}
		wp := q.writePolicy(ctx, q.ownFilter(false, 0))
		var existed, doubt bool
		err := q.retry(ctx, func() error {
			var err error
			existed, err = q.s.client.Delete(wp, q.jobKey(id))
			switch c := resultCode(err); {
			case c == types.KEY_NOT_FOUND_ERROR && doubt:
				// The attempt in doubt deleted it: none but the
				// holder deletes a reserved job.
				existed, err = true, nil
			case c == types.FILTERED_OUT || c == types.KEY_NOT_FOUND_ERROR:
				existed, err = false, nil
			case err != nil && inDoubt(err):
				doubt = true
			}
			return err
		})
		if err != nil {
			return err
		}
		// Delete reports a missing record as not existing: after an
		// attempt in doubt, that attempt deleted it.
		existed = existed || doubt
		if err := q.at("deleted"); existed && err != nil {
			return err
		}
		q.unhold(id)
		if existed {
			t := h.info()
			d := move(beanspike.Reserved, 0, h.pri, h.pri)
			d.deletes = 1
			q.s.counted(t, d)
			q.remove(t.ix(kindReserved), hint{t: h.lease, id: id})
			return nil
		}
	}
	for range 8 {
		j, ok, err := q.readJob(ctx, id, false)
		if err != nil {
			return err
		}
		if !ok {
			return errNotFound(id)
		}
		if j.effective(q.nowNs()) == beanspike.Reserved && j.owner != q.owner {
			return errNotReserved(id)
		}
		wp := q.writePolicy(ctx, nil)
		wp.GenerationPolicy = as.EXPECT_GEN_EQUAL
		wp.Generation = j.gen
		var existed, changed, doubt bool
		err = q.retry(ctx, func() error {
			var err error
			existed, err = q.s.client.Delete(wp, q.jobKey(id))
			switch c := resultCode(err); {
			case c == types.KEY_NOT_FOUND_ERROR && doubt:
				existed, err = true, nil // the attempt in doubt deleted it
			case c == types.GENERATION_ERROR, c == types.KEY_NOT_FOUND_ERROR:
				changed, err = true, nil
			case err != nil && inDoubt(err):
				doubt = true
			}
			return err
		})
		if err != nil {
			return err
		}
		if doubt && !changed {
			existed = true // an attempt in doubt deleted it
		}
		if changed || !existed {
			continue
		}
		q.unhold(id)
		t, err := q.tube(ctx, j.tube, 1<<62, false)
		if err != nil || t.ep == 0 {
			return err
		}
		d := move(j.state, 0, j.pri, j.pri)
		d.deletes = 1
		q.s.counted(t, d)
		q.s.pictureDrop(t.name, j.hint())
		q.remove(t.ix(kindOf(j.state)), j.hint())
		return nil
	}
	return errUnavailable("job %d keeps changing", id)
}

// Release returns a job reserved by this client to ready, or to delayed
// when delay > 0; see [beanspike.Queue.Release]. One batch command: the
// new hint and a compare-and-swap of the job record.
func (q *Queue) Release(ctx context.Context, id beanspike.ID, priority uint32, delay time.Duration) error {
	if err := beanspike.ValidateDelay(delay); err != nil {
		return err
	}
	if err := q.idCheck(ctx, id); err != nil {
		return err
	}
	st := beanspike.Ready
	if delay > 0 {
		st = beanspike.Delayed
	}
	return q.ownMove(ctx, id, st, priority, func(now int64) (int64, []*as.Operation) {
		at := q.seq()
		if delay > 0 {
			at = after(now, delay)
		}
		return at, []*as.Operation{
			as.AddOp(as.NewBin(binReleases, 1)),
			as.PutOp(as.NewBin(binDelay, int64(delay))),
		}
	})
}

// Bury moves a job reserved by this client to buried; see
// [beanspike.Queue.Bury]. One batch command, as Release.
func (q *Queue) Bury(ctx context.Context, id beanspike.ID, priority uint32, reason string) error {
	if err := q.idCheck(ctx, id); err != nil {
		return err
	}
	return q.ownMove(ctx, id, beanspike.Buried, priority, func(int64) (int64, []*as.Operation) {
		return q.seq(), []*as.Operation{
			as.AddOp(as.NewBin(binBuries, 1)),
			as.PutOp(as.NewBin(binReason, reason)),
		}
	})
}

// ownMove moves a job held by q to state st with priority pri: the hint
// of its new state first, then the job record, in one batch command; the
// lease hint goes afterwards, in the background.
func (q *Queue) ownMove(ctx context.Context, id beanspike.ID, st beanspike.State, pri uint32,
	f func(now int64) (int64, []*as.Operation)) error {
	h, ok := q.holdingOf(id)
	if !ok {
		return q.notHeld(ctx, id)
	}
	t := h.info()
	now := q.nowNs()
	at, extra := f(now)
	nh := hint{t: at, id: id, ttr: h.ttr}
	if st == beanspike.Ready {
		nh.pri = pri
	}
	kind := kindOf(st)
	d, err := q.dir(ctx, t.ix(kind), false, true)
	if err != nil {
		return err
	}
	seg := d.segs[d.find(nh.key(kind))]
	ins := q.insertRec(d, seg, []hint{nh})
	ops := append([]*as.Operation{
		as.PutOp(as.NewBin(binState, int(st))),
		as.PutOp(as.NewBin(binPri, int64(pri))),
		as.PutOp(as.NewBin(binAt, at)),
		as.PutOp(as.NewBin(binOwner1, 0)),
		as.PutOp(as.NewBin(binOwner2, 0)),
		as.PutOp(as.NewBin(binChanged, now)),
	}, extra...)
	moved, err := q.ownWrite(ctx, id, now, []as.BatchRecordIfc{ins}, ops...)
	if err != nil {
		return err
	}
	inserted, _ := q.inserted(d, seg, ins.BatchRec())
	if !moved {
		if inserted {
			q.remove(t.ix(kind), nh)
		}
		q.unhold(id)
		return q.notHeld(ctx, id)
	}
	q.unhold(id)
	if !inserted {
		if err := q.insertTube(ctx, t, kind, nh); err != nil {
			// The lease hint stays: the sweep that finds it files the
			// job under its new state.
			return err
		}
	}
	q.s.counted(t, move(beanspike.Reserved, st, pri, h.pri))
	q.remove(t.ix(kindReserved), hint{t: h.lease, id: id})
	if st == beanspike.Ready {
		q.s.pictureAdd(t, nh)
		q.s.signal()
	}
	return nil
}

// Touch extends this client's reservation of a job by its TTR from now;
// see [beanspike.Queue.Touch]. One compare-and-swap of the job record;
// the lease hint stays where it is, and the sweep that finds it files it
// again under the new deadline.
func (q *Queue) Touch(ctx context.Context, id beanspike.ID) error {
	if err := q.idCheck(ctx, id); err != nil {
		return err
	}
	h, ok := q.holdingOf(id)
	if !ok {
		return q.notHeld(ctx, id)
	}
	now := q.nowNs()
	deadline := after(now, time.Duration(h.ttr))
	moved, err := q.ownWrite(ctx, id, now, nil,
		as.PutOp(as.NewBin(binAt, deadline)), as.PutOp(as.NewBin(binChanged, now)))
	if err != nil {
		return err
	}
	if !moved {
		q.unhold(id)
		return q.notHeld(ctx, id)
	}
	h.deadline = deadline
	q.hold(id, h)
	return nil
}

// Kick moves up to n buried jobs of tube to ready, or, when it has none,
// up to n delayed jobs; see [beanspike.Queue.Kick]. It reads the first
// hints of the index, their job records, then moves them in one batch
// command, repeating while it finds fewer than n jobs to move.
func (q *Queue) Kick(ctx context.Context, tube string, n int) (int, error) {
	if n < 0 {
		return 0, fmt.Errorf("%w: kick count %d is negative", beanspike.ErrInvalidArgument, n)
	}
	if err := q.callCheck(ctx, tube); err != nil {
		return 0, err
	}
	t, err := q.tube(ctx, tube, 0, false)
	if err != nil || !t.exists() || n == 0 {
		return 0, err
	}
	if err := q.tend(ctx, t); err != nil {
		return 0, err
	}
	kicked := 0
	seen := map[beanspike.ID]bool{} // a call kicks a job once, as if at one instant
	for _, kind := range []byte{kindBuried, kindDelayed} {
		for rounds := 0; kicked < n && rounds < 64; rounds++ {
			all, err := q.head(ctx, t.ix(kind), min(n-kicked, 256))
			if err != nil {
				return kicked, err
			}
			var hs []hint
			for _, h := range all {
				if !seen[h.id] {
					seen[h.id] = true
					hs = append(hs, h)
				}
			}
			if len(hs) == 0 {
				break
			}
			hs = hs[:min(len(hs), n-kicked)]
			k, err := q.kick(ctx, t, kind, hs)
			kicked += k
			if err != nil {
				return kicked, err
			}
		}
		if kicked > 0 {
			break
		}
	}
	return kicked, nil
}

// kick moves the jobs of hints hs of index kind to ready, and returns how
// many it moved. Hints that do not match their jobs are checked.
func (q *Queue) kick(ctx context.Context, t *tubeInfo, kind byte, hs []hint) (int, error) {
	ids := make([]beanspike.ID, len(hs))
	for i, h := range hs {
		ids[i] = h.id
	}
	js, err := q.readJobs(ctx, ids)
	if err != nil {
		return 0, err
	}
	now := q.nowNs()
	var todo []jobRec
	var stale []hint
	for _, h := range hs {
		j, ok := js[h.id]
		if !ok || !j.matches(kind, h) {
			stale = append(stale, h)
			continue
		}
		todo = append(todo, j)
	}
	moved := 0
	for _, j := range todo {
		ok, err := q.toReady(ctx, t, j, now, true)
		if err != nil {
			return moved, err
		}
		if ok {
			moved++
		}
	}
	if len(stale) > 0 {
		if err := q.checkNow(ctx, t, kind, stale, js); err != nil {
			return moved, err
		}
	}
	return moved, nil
}

// toReady moves job j, as read, to ready: the ready hint and a
// compare-and-swap of the job record against what was read, in one batch
// command; then the old hint goes. A kicked job (kick set, counted as a
// kick) becomes ready now; one a sweep moves, whose delay ran out or
// whose reservation lapsed, became ready at that time.
func (q *Queue) toReady(ctx context.Context, t *tubeInfo, j jobRec, now int64, kick bool) (bool, error) {
	at := j.at
	var ops []*as.Operation
	if kick {
		at = q.seq()
		ops = append(ops, as.AddOp(as.NewBin(binKicks, 1)))
	}
	nh := hint{pri: j.pri, t: at, id: j.id, ttr: j.ttr}
	d, err := q.dir(ctx, t.ix(kindReady), false, true)
	if err != nil {
		return false, err
	}
	seg := d.segs[d.find(nh.key(kindReady))]
	ins := q.insertRec(d, seg, []hint{nh})
	all := append([]*as.Operation{
		as.PutOp(as.NewBin(binState, int(beanspike.Ready))),
		as.PutOp(as.NewBin(binAt, at)),
		as.PutOp(as.NewBin(binOwner1, 0)),
		as.PutOp(as.NewBin(binOwner2, 0)),
		as.PutOp(as.NewBin(binChanged, now)),
	}, ops...)
	if j.state == beanspike.Reserved && j.at <= now {
		all = append(all, as.AddOp(as.NewBin(binTimeouts, 1)))
	}
	wp := q.s.bwGen(j.gen)
	rec := as.NewBatchWrite(wp, q.jobKey(j.id), all...)
	if err := q.at("to-ready"); err != nil {
		return false, err
	}
	err = q.retry(ctx, func() error {
		q.batch(ctx, []as.BatchRecordIfc{ins, rec})
		if br := rec.BatchRec(); transient(br.ResultCode) && !codeInDoubt(br) {
			return batchErr(br)
		}
		return nil
	})
	if err != nil {
		return false, err
	}
	inserted, _ := q.inserted(d, seg, ins.BatchRec())
	br := rec.BatchRec()
	ok := br.ResultCode == types.OK
	if !ok && codeInDoubt(br) {
		got, found, err := q.readJob(ctx, j.id, false)
		if err != nil {
			return false, err
		}
		ok = found && got.gen == j.gen+1 && got.state == beanspike.Ready && got.at == at
	}
	if !ok {
		if inserted {
			// Another client may have made the same move, with the same
			// hint: have it checked, not removed.
			q.s.check(t, kindReady, nh)
		}
		return false, nil
	}
	if !inserted {
		if err := q.insertTube(ctx, t, kindReady, nh); err != nil {
			return true, err
		}
	}
	q.s.counted(t, move(j.state, beanspike.Ready, j.pri, j.pri))
	q.s.pictureAdd(t, nh)
	if err := q.removeNow(ctx, t.ix(kindOf(j.state)), [][]byte{j.hint().key(kindOf(j.state))}); err != nil {
		return true, err
	}
	q.s.signal()
	return true, nil
}

// KickJob moves one buried or delayed job to ready; see
// [beanspike.Queue.KickJob]. One read of its record, then one batch
// command.
func (q *Queue) KickJob(ctx context.Context, id beanspike.ID) error {
	if err := q.idCheck(ctx, id); err != nil {
		return err
	}
	for range 8 {
		j, ok, err := q.readJob(ctx, id, false)
		if err != nil {
			return err
		}
		if !ok {
			return errNotFound(id)
		}
		if st := j.effective(q.nowNs()); st != beanspike.Buried && st != beanspike.Delayed {
			return fmt.Errorf("%w: job %d is %s, neither buried nor delayed", beanspike.ErrNotFound, id, st)
		}
		t, err := q.tube(ctx, j.tube, 1<<62, false)
		if err != nil {
			return err
		}
		moved, err := q.toReady(ctx, t, j, q.nowNs(), true)
		if err != nil || moved {
			return err
		}
	}
	return errUnavailable("job %d keeps changing", id)
}

// Peek returns a job in any state; see [beanspike.Queue.Peek]. One read
// of its record.
func (q *Queue) Peek(ctx context.Context, id beanspike.ID) (*beanspike.Job, error) {
	if err := q.idCheck(ctx, id); err != nil {
		return nil, err
	}
	j, ok, err := q.readJob(ctx, id, true)
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, errNotFound(id)
	}
	return q.toJob(j)
}

func (q *Queue) toJob(j jobRec) (*beanspike.Job, error) {
	body, err := q.body(j)
	if err != nil {
		return nil, err
	}
	return &beanspike.Job{ID: j.id, Tube: j.tube, Body: body, Priority: j.pri, TTR: dur(j.ttr), Reserves: j.reserves}, nil
}

// PeekReady returns the job Reserve would take next from tube, ignoring
// a pause; see [beanspike.Queue.PeekReady].
func (q *Queue) PeekReady(ctx context.Context, tube string) (*beanspike.Job, error) {
	return q.peek(ctx, tube, kindReady, beanspike.Ready)
}

// PeekDelayed returns the delayed job of tube due soonest; see
// [beanspike.Queue.PeekDelayed].
func (q *Queue) PeekDelayed(ctx context.Context, tube string) (*beanspike.Job, error) {
	return q.peek(ctx, tube, kindDelayed, beanspike.Delayed)
}

// PeekBuried returns the job of tube buried longest ago; see
// [beanspike.Queue.PeekBuried].
func (q *Queue) PeekBuried(ctx context.Context, tube string) (*beanspike.Job, error) {
	return q.peek(ctx, tube, kindBuried, beanspike.Buried)
}

// peek reads the first hints of an index and the records they name, and
// returns the first job that its hint matches, checking the others.
func (q *Queue) peek(ctx context.Context, tube string, kind byte, st beanspike.State) (*beanspike.Job, error) {
	if err := q.callCheck(ctx, tube); err != nil {
		return nil, err
	}
	t, err := q.tube(ctx, tube, 0, false)
	if err != nil {
		return nil, err
	}
	none := fmt.Errorf("%w: no %s job in tube %q", beanspike.ErrNotFound, st, tube)
	if !t.exists() {
		return nil, none
	}
	if err := q.tend(ctx, t); err != nil {
		return nil, err
	}
	hs, err := q.head(ctx, t.ix(kind), 64)
	if err != nil {
		return nil, err
	}
	for _, h := range hs {
		if kind == kindReady && q.s.isGone(t, h) {
			continue
		}
		j, ok, err := q.readJob(ctx, h.id, true)
		if err != nil {
			return nil, err
		}
		if ok && j.matches(kind, h) {
			return q.toJob(j)
		}
		js := map[beanspike.ID]jobRec{}
		if ok {
			js[h.id] = j
		}
		if err := q.checkNow(ctx, t, kind, []hint{h}, js); err != nil {
			return nil, err
		}
	}
	if len(hs) < 64 {
		return nil, none
	}
	return nil, errUnavailable("tube %q keeps changing", tube)
}

// StatsJob describes a job; see [beanspike.Queue.StatsJob]. One read of
// its record.
func (q *Queue) StatsJob(ctx context.Context, id beanspike.ID) (*beanspike.JobStats, error) {
	if err := q.idCheck(ctx, id); err != nil {
		return nil, err
	}
	j, ok, err := q.readJob(ctx, id, false)
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, errNotFound(id)
	}
	now := q.nowNs()
	st := &beanspike.JobStats{
		ID:         id,
		Tube:       j.tube,
		State:      j.effective(now),
		Priority:   j.pri,
		Age:        dur(max(now-j.created, 0)),
		Delay:      dur(j.delay),
		TTR:        dur(j.ttr),
		Reserves:   j.reserves,
		Timeouts:   j.timeouts,
		Releases:   j.releases,
		Buries:     j.buries,
		Kicks:      j.kicks,
		BuryReason: j.reason,
		Size:       j.size,
		StoredSize: j.stored,
		Compressed: j.enc,
	}
	if j.state == beanspike.Reserved && j.at <= now {
		st.Timeouts++
	}
	if st.State == beanspike.Reserved || st.State == beanspike.Delayed {
		st.TimeLeft = dur(max(j.at-now, 0))
	}
	return st, nil
}
