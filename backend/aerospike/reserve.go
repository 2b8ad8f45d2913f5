package aerospike

import (
	"cmp"
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"time"

	as "github.com/aerospike/aerospike-client-go/v8"
	"github.com/aerospike/aerospike-client-go/v8/types"

	"github.com/beanspike/beanspike"
)

// Blocking Reserve polls with a delay that starts at pollMin, doubles up
// to pollMax, and starts again at pollMin when this process puts a job.
const (
	pollMin = 5 * time.Millisecond
	pollMax = 100 * time.Millisecond
)

// danglingGrace is how long an index entry whose job record is missing
// is given for the record to appear: a job record and its entry are
// written by one batch command, whose parts a server may apply in either
// order (or by two commands, the record first), or a failed Put may have
// left the entry behind.
const danglingGrace = 10 * time.Second

// maxClaim bounds the jobs one ReserveBatch round claims.
const maxClaim = 128

// shardView is what a view read of one index record.
type shardView struct {
	ref     shardRef
	ready   []kv  // the most urgent ready entries
	delayed []kv  // the delayed entries due soonest
	buried  []kv  // the entries buried longest ago
	due     bool  // a delayed job is due or a reservation lapsed
	next    int64 // earliest due time of a delayed or reserved entry read
	stale   int64 // start time of the oldest unfinished delete; 0 if none
}

// tubeView is what a view read of one tube.
type tubeView struct {
	name      string
	exists    bool  // the tube's meta record exists
	pauseTill int64 // end of the current pause (ns)
	shards    []shardView
}

// viewSpec says what a view reads of each index record.
type viewSpec struct {
	ready    int  // how many of the most urgent ready entries
	delayed  int  // how many of the delayed entries due soonest
	buried   int  // how many of the buried entries buried longest ago
	deleting bool // read the oldest unfinished delete
}

// view reads the meta record and the heads of the index records of tubes
// in one batch command. Index records with due delayed jobs or lapsed
// reservations are swept and read again, so the view shows them ready.
func (q *Queue) view(ctx context.Context, tubes []string, spec viewSpec) ([]tubeView, error) {
	tvs := make([]tubeView, len(tubes))
	var ops []*as.Operation
	if spec.ready > 0 {
		ops = append(ops, as.MapGetByRankRangeCountOp(binReady, 0, spec.ready, as.MapReturnType.KEY_VALUE))
	}
	ops = append(ops,
		as.MapGetByRankRangeCountOp(binDelayed, 0, max(spec.delayed, 1), as.MapReturnType.KEY_VALUE),
		as.MapGetByRankRangeCountOp(binReserved, 0, 1, as.MapReturnType.KEY_VALUE))
	if spec.buried > 0 {
		ops = append(ops, as.MapGetByRankRangeCountOp(binBuried, 0, spec.buried, as.MapReturnType.KEY_VALUE))
	}
	if spec.deleting {
		ops = append(ops, as.MapGetByRankRangeCountOp(binDeleting, 0, 1, as.MapReturnType.KEY_VALUE))
	}

	type slot struct{ t, s int }
	var recs []as.BatchRecordIfc
	var slots []slot
	for ti, name := range tubes {
		tvs[ti] = tubeView{name: name, shards: make([]shardView, q.s.shards)}
		recs = append(recs, as.NewBatchRead(nil, q.metaKey(name), []string{binPauseTill}))
		slots = append(slots, slot{ti, -1})
		for si, key := range q.shardKeys(name) {
			tvs[ti].shards[si].ref = shardRef{name, si}
			recs = append(recs, as.NewBatchReadOps(nil, key, ops...))
			slots = append(slots, slot{ti, si})
		}
	}
	for round := 0; ; round++ {
		if err := q.batchRead(ctx, recs); err != nil {
			return nil, err
		}
		now := q.nowNs()
		var again []as.BatchRecordIfc
		var againSlots []slot
		var sweeps []shardRef
		for i, r := range recs {
			br := r.BatchRec()
			sl := slots[i]
			tv := &tvs[sl.t]
			var bins as.BinMap
			if br.ResultCode == types.OK && br.Record != nil {
				bins = br.Record.Bins
			}
			if sl.s < 0 {
				tv.exists = br.ResultCode == types.OK
				tv.pauseTill, _ = toInt(bins[binPauseTill])
				continue
			}
			sv := &tv.shards[sl.s]
			sv.ready = pairs(bins[binReady])
			sv.delayed = pairs(bins[binDelayed])
			sv.buried = pairs(bins[binBuried])
			sv.next = noDue
			for _, p := range sv.delayed {
				sv.next = min(sv.next, p.e.k1)
			}
			for _, p := range pairs(bins[binReserved]) {
				sv.next = min(sv.next, p.e.k1)
			}
			sv.due = sv.next <= now
			sv.stale = 0
			if spec.deleting {
				for _, v := range intPairs(bins[binDeleting]) {
					sv.stale = v
				}
			}
			if sv.due && round < 3 {
				sweeps = append(sweeps, sv.ref)
				again = append(again, as.NewBatchReadOps(nil, q.shardKey(sv.ref), ops...))
				againSlots = append(againSlots, sl)
			}
		}
		if len(sweeps) == 0 {
			q.s.noteViewed(tubes, now)
			return tvs, nil
		}
		for _, ref := range sweeps {
			if err := q.sweep(ctx, ref); err != nil {
				return nil, err
			}
		}
		recs, slots = again, againSlots
	}
}

// cand is a ready job that Reserve may claim.
type cand struct {
	ref shardRef
	kv
	rec *as.Record // its job record, when read ahead
}

// rank returns the ready jobs of the unpaused tubes of tvs in the order
// Reserve takes them, up to limit: within a tube by priority and then the
// order they became ready; across tubes by priority and then ID.
func rank(tvs []tubeView, now int64, limit int, ignorePause bool) []cand {
	lists := make([][]cand, 0, len(tvs))
	for _, tv := range tvs {
		if !ignorePause && tv.pauseTill > now {
			continue
		}
		var l []cand
		for _, sv := range tv.shards {
			for _, p := range sv.ready {
				l = append(l, cand{ref: sv.ref, kv: p})
			}
		}
		slices.SortFunc(l, func(a, b cand) int { return readyLess(a.kv, b.kv) })
		if len(l) > 0 {
			lists = append(lists, l)
		}
	}
	var out []cand
	for len(out) < limit {
		best := -1
		for i, l := range lists {
			if len(l) == 0 {
				continue
			}
			if best < 0 {
				best = i
				continue
			}
			b := lists[best][0]
			if c := cmp.Compare(l[0].e.pri, b.e.pri); c < 0 || c == 0 && l[0].id < b.id {
				best = i
			}
		}
		if best < 0 {
			break
		}
		out = append(out, lists[best][0])
		lists[best] = lists[best][1:]
	}
	return out
}

// Reserve reserves the most urgent ready job of tubes; see
// [beanspike.Queue.Reserve]. A poll claims the best job and reads its
// record in one command (the claim alone when the record was read
// ahead), after reading the first ready entries of every index record of
// the tubes in a batch command when the process's ready cache cannot tell
// the best job. While nothing is ready it polls again
// after 5ms, doubling up to 100ms, and at once when this process puts a
// job.
func (q *Queue) Reserve(ctx context.Context, tubes ...string) (*beanspike.Job, error) {
	jobs, err := q.reserve(ctx, 1, tubes)
	if err != nil {
		return nil, err
	}
	return jobs[0], nil
}

// ReserveBatch blocks as Reserve does until at least one job is ready,
// then reserves up to max ready jobs; see [beanspike.Batcher.ReserveBatch].
func (q *Queue) ReserveBatch(ctx context.Context, max int, tubes ...string) ([]*beanspike.Job, error) {
	if max <= 0 {
		return nil, fmt.Errorf("%w: batch size %d is not positive", beanspike.ErrInvalidArgument, max)
	}
	return q.reserve(ctx, min(max, maxClaim), tubes)
}

func (q *Queue) reserve(ctx context.Context, max int, tubes []string) ([]*beanspike.Job, error) {
	names, err := beanspike.NormalizeTubes(tubes)
	if err != nil {
		return nil, err
	}
	if err := q.errClosed(); err != nil {
		return nil, err
	}
	for _, t := range names {
		q.touchTube(t)
	}
	jobs, err := q.tryReserve(ctx, max, names)
	if err != nil || len(jobs) > 0 {
		return q.keep(ctx, jobs, err)
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	q.s.waiting(names, 1)
	defer q.s.waiting(names, -1)
	delay := pollMin
	for {
		wake := q.s.wakeChan()
		t := time.NewTimer(delay)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, ctx.Err()
		case <-q.done:
			t.Stop()
			return nil, beanspike.ErrClosed
		case <-wake:
			t.Stop()
			delay = pollMin
		case <-t.C:
			delay = min(2*delay, pollMax)
		}
		jobs, err := q.tryReserve(ctx, max, names)
		if err != nil || len(jobs) > 0 {
			return q.keep(ctx, jobs, err)
		}
		if err := q.errClosed(); err != nil {
			return nil, err
		}
	}
}

// keep returns the jobs a Reserve call got, unless the client was closed
// meanwhile: then it returns them to ready.
func (q *Queue) keep(ctx context.Context, jobs []*beanspike.Job, err error) ([]*beanspike.Job, error) {
	if err != nil || !q.closed.Load() {
		return jobs, err
	}
	for _, j := range jobs {
		if h, ok := q.holdingOf(j.ID); ok {
			q.unhold(j.ID)
			_, _ = q.apply(ctx, h.ref, []move{{j.ID, binReserved, h.e, binReady, h.e.asReady(q.seq())}})
		}
	}
	return nil, beanspike.ErrClosed
}

// waiting counts this process's blocked Reserve calls per tube.
func (s *store) waiting(tubes []string, d int) {
	s.mu.Lock()
	for _, t := range tubes {
		s.wait[t] += d
		if s.wait[t] <= 0 {
			delete(s.wait, t)
		}
	}
	s.mu.Unlock()
}

// tryReserve makes one attempt to reserve up to max jobs, retrying when
// other clients claim the chosen jobs first. It takes the jobs from the
// process's ready cache when its picture of the tubes can decide, and
// reads the tubes' index records otherwise. After a lost race it picks
// at random among the most urgent jobs, which spreads racing clients
// over different jobs.
func (q *Queue) tryReserve(ctx context.Context, n int, names []string) ([]*beanspike.Job, error) {
	lost := 0
	for range 8 {
		spread := 0
		if lost > 0 && n == 1 {
			spread = min(2<<lost, 16)
		}
		cands := q.s.ready.take(names, q.nowNs(), n, spread)
		cached := cands != nil
		if !cached {
			depth := max(n+spread, cacheDepth)
			gen := q.s.ready.begin()
			tvs, err := q.view(ctx, names, viewSpec{ready: depth})
			if err != nil {
				return nil, err
			}
			now := q.nowNs()
			q.s.ready.store(tvs, now, depth, gen)
			cands = q.s.ready.take(names, now, n, spread)
			if cands == nil {
				cands = rank(tvs, now, n+spread, false)
				if spread > 0 && len(cands) > 0 {
					i := rand.IntN(len(cands))
					cands = cands[i : i+1]
				}
				cands = cands[:min(len(cands), n)]
			}
		}
		if len(cands) == 0 {
			return nil, nil
		}
		jobs, err := q.claim(ctx, cands, q.s.ready.wanting(names, cands))
		q.s.ready.done(cands)
		if err != nil || len(jobs) > 0 {
			return jobs, err
		}
		if err := q.errClosed(); err != nil {
			return nil, err
		}
		lost++
		if cached {
			// The picture was stale: read again.
			for _, t := range names {
				q.s.ready.stale(t)
			}
		}
	}
	return nil, nil
}

// casBatchPolicy is casPolicy for a batch write.
func casBatchPolicy(moves []move) *as.BatchWritePolicy {
	p := batchWritePolicy(guard(moves))
	p.RecordExistsAction = as.UPDATE_ONLY
	return p
}

// claim reserves the ready jobs cands for q, and reads their records, in
// one command: per index record one guarded write moving the entries from
// ready to reserved, and one read per job record not read ahead. It also
// reads ahead the records of pre (see prefetch.go). Jobs that another
// client took first are skipped.
func (q *Queue) claim(ctx context.Context, cands []cand, pre []ahead) ([]*beanspike.Job, error) {
	now := q.nowNs()
	type group struct {
		ref   shardRef
		moves []move
		ok    bool
		// recs holds, per move, the job record read ahead, and reads the
		// read of the record of a move without one.
		recs  []*as.Record
		reads []*as.BatchRecord
	}
	groups := make([]*group, 0, 1)
	var byRef map[shardRef]*group // once there are many groups
	for _, c := range cands {
		var g *group
		if byRef != nil {
			g = byRef[c.ref]
		} else {
			for _, o := range groups {
				if o.ref == c.ref {
					g = o
					break
				}
			}
		}
		if g == nil {
			g = &group{ref: c.ref}
			groups = append(groups, g)
			if byRef != nil {
				byRef[c.ref] = g
			} else if len(groups) > 8 {
				byRef = make(map[shardRef]*group, 2*len(groups))
				for _, o := range groups {
					byRef[o.ref] = o
				}
			}
		}
		n := c.e.asReserved(q.owner, deadline(now, c.e.ttr))
		n.reserves++
		g.moves = append(g.moves, move{c.id, binReady, c.e, binReserved, n})
		g.recs = append(g.recs, c.rec)
	}
	recs := make([]as.BatchRecordIfc, 0, len(groups)+len(cands)+len(pre))
	for _, g := range groups {
		recs = append(recs, as.NewBatchWrite(casBatchPolicy(g.moves), q.shardKey(g.ref), q.moveOps(g.moves)...))
	}
	for _, g := range groups {
		g.reads = make([]*as.BatchRecord, len(g.moves))
		for i, m := range g.moves {
			if g.recs[i] == nil {
				r := as.NewBatchRead(nil, q.jobKey(m.id), q.s.jobBins)
				recs = append(recs, r)
				g.reads[i] = r.BatchRec()
			}
		}
	}
	aheadAt := len(recs)
	for _, a := range pre {
		recs = append(recs, as.NewBatchRead(q.s.aheadPol, q.jobKey(a.kv.id), q.s.jobBins))
	}
	q.batch(ctx, recs)
	for i, a := range pre {
		switch br := recs[aheadAt+i].BatchRec(); br.ResultCode {
		case types.OK:
			q.s.ready.keep(a, br.Record, false)
		case types.FILTERED_OUT, types.KEY_NOT_FOUND_ERROR:
			// A large body, or a record not (yet) there: read it after
			// the claim, as without read-ahead.
			q.s.ready.keep(a, nil, true)
		default:
			q.s.ready.keep(a, nil, false)
		}
	}
	// claimErr is the failure of a claim that did not take effect; the
	// claims that did are still returned (or given back), never left
	// held by this client without its knowing.
	var claimErr error
	for i, g := range groups {
		br := recs[i].BatchRec()
		switch {
		case br.ResultCode == types.OK:
			g.ok = true
		case codeInDoubt(br):
			// The claim may have been applied: look.
			ok, verr := q.verify(ctx, g.ref, g.moves)
			if verr != nil {
				// Unknown: if it was applied, the TTR returns the jobs.
				claimErr = verr
				continue
			}
			g.ok = ok
		case br.ResultCode == types.FILTERED_OUT, br.ResultCode == types.KEY_NOT_FOUND_ERROR,
			transient(br.ResultCode):
			// Lost the race, the tube is gone, or the server was busy.
		default:
			claimErr = interpretError(batchErr(br))
		}
	}
	for _, g := range groups {
		if g.ok {
			q.s.ready.moved(g.ref, g.moves)
		} else {
			// The picture showed these jobs ready and they are not, or
			// they were taken out of it without being claimed.
			q.s.ready.stale(g.ref.tube)
		}
	}
	if herr := q.at("reserve:claimed"); herr != nil {
		return nil, herr
	}
	var jobs []*beanspike.Job
	var failure error
	for _, g := range groups {
		for i, m := range g.moves {
			if !g.ok {
				continue
			}
			if failure != nil {
				q.giveBack(ctx, g.ref, m)
				continue
			}
			rec := g.recs[i]
			if br := g.reads[i]; br != nil && br.ResultCode == types.OK {
				rec = br.Record
			} else if rec == nil {
				r, gerr := q.confirmRecord(ctx, m.id, q.s.jobBins...)
				switch {
				case gerr == nil:
					rec = r
				case errorIsNotFound(gerr):
					q.dangling(ctx, g.ref, m)
					continue
				default:
					failure = gerr
					q.giveBack(ctx, g.ref, m)
					continue
				}
			}
			j, jerr := q.toJob(m.id, rec, m.new)
			if jerr != nil {
				failure = jerr
				q.giveBack(ctx, g.ref, m)
				continue
			}
			q.hold(m.id, holding{g.ref, m.new})
			q.s.remember(m.id, g.ref.tube)
			jobs = append(jobs, j)
		}
	}
	if failure == nil {
		failure = claimErr
	}
	if failure != nil && len(jobs) == 0 {
		return nil, failure
	}
	return jobs, nil
}

// deadline returns now+ttr, saturating.
func deadline(now, ttr int64) int64 {
	if ttr >= 1<<62 || now > 1<<62 {
		return 1<<63 - 1
	}
	return now + ttr
}

// giveBack undoes a claim that cannot be returned to the caller.
func (q *Queue) giveBack(ctx context.Context, ref shardRef, m move) {
	_, _ = q.apply(ctx, ref, []move{{m.id, binReserved, m.new, m.from, m.old}})
}

// dangling handles a claimed entry whose job record is missing. The
// record of a job being put may not have landed yet: the entry is parked
// as delayed for a second. An entry older than danglingGrace belongs to a
// put that failed, or to a tube being deleted: it is dropped.
func (q *Queue) dangling(ctx context.Context, ref shardRef, m move) {
	now := q.nowNs()
	if now-m.new.put < int64(danglingGrace) {
		n := m.old.asDelayed(now+int64(time.Second), m.old.k2)
		_, _ = q.apply(ctx, ref, []move{{m.id, binReserved, m.new, binDelayed, n}})
		return
	}
	_, _ = q.apply(ctx, ref, []move{{m.id, binReserved, m.new, "", entry{}}})
}

// toJob builds the caller's job from its record and entry.
func (q *Queue) toJob(id beanspike.ID, rec *as.Record, e entry) (*beanspike.Job, error) {
	tube, _ := rec.Bins[binTube].(string)
	body, err := q.body(id, rec)
	if err != nil {
		return nil, err
	}
	return &beanspike.Job{
		ID:       id,
		Tube:     tube,
		Body:     body,
		Priority: e.pri,
		TTR:      dur(e.ttr),
		Reserves: e.reserves,
	}, nil
}

// body returns the original body of a job record, in a slice of its own:
// the client copies every blob it reads out of its buffers, and a record
// gives its body to one job.
func (q *Queue) body(id beanspike.ID, rec *as.Record) ([]byte, error) {
	raw, _ := rec.Bins[binBody].([]byte)
	if enc, _ := toInt(rec.Bins[binEnc]); enc == 1 {
		b, err := q.s.codec.Decode(nil, raw)
		if err != nil {
			return nil, fmt.Errorf("%w: job %d: stored body does not decode: %w", beanspike.ErrUnavailable, id, err)
		}
		return b, nil
	}
	if raw == nil {
		raw = []byte{}
	}
	return raw, nil
}

// ReserveJob reserves job id if it is ready, delayed or buried; see
// [beanspike.Queue.ReserveJob].
func (q *Queue) ReserveJob(ctx context.Context, id beanspike.ID) (*beanspike.Job, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if err := beanspike.ValidateID(id); err != nil {
		return nil, err
	}
	if err := q.errClosed(); err != nil {
		return nil, err
	}
	for range 8 {
		loc, rec, err := q.locate(ctx, id, true)
		if err != nil {
			return nil, err
		}
		if loc.bin == binReserved {
			return nil, fmt.Errorf("%w: job %d is reserved", beanspike.ErrNotFound, id)
		}
		n := loc.e.asReserved(q.owner, deadline(q.nowNs(), loc.e.ttr))
		n.reserves++
		ok, err := q.apply(ctx, loc.ref, []move{{id, loc.bin, loc.e, binReserved, n}})
		if err != nil {
			return nil, err
		}
		if !ok {
			continue
		}
		j, err := q.toJob(id, rec, n)
		if err != nil {
			q.giveBack(ctx, loc.ref, move{id, loc.bin, loc.e, binReserved, n})
			return nil, err
		}
		q.hold(id, holding{loc.ref, n})
		q.touchTube(loc.ref.tube)
		return j, nil
	}
	return nil, errUnavailable("job %d keeps changing", id)
}
