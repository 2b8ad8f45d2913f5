package aerospike

import (
	"context"
	"errors"
	"time"

	as "github.com/aerospike/aerospike-client-go/v8"
	"github.com/aerospike/aerospike-client-go/v8/types"

	"github.com/beanspike/beanspike"
)

// staleGrace is how long a hint that does not match its job is left to
// the client that is moving the job, before anyone repairs it (ns).
const staleGrace = int64(2 * time.Second)

// missingGrace is how long a hint whose job record is missing is kept:
// the record of a Put in flight may not be written yet (ns).
const missingGrace = int64(10 * time.Second)

// tend moves what is due in tube t: delayed jobs whose time came and
// lapsed reservations, if the first hints of those indexes say so.
func (q *Queue) tend(ctx context.Context, t *tubeInfo) error {
	now := q.nowNs()
	for _, kind := range []byte{kindDelayed, kindReserved} {
		hs, err := q.head(ctx, t.ix(kind), 1)
		if err != nil {
			return err
		}
		if len(hs) > 0 && hs[0].t <= now {
			return q.sweep(ctx, t)
		}
	}
	return nil
}

// sweep moves the due delayed jobs and lapsed reservations of tube t to
// ready, a chunk at a time, up to sweepMax jobs per call; a reservation
// that Touch extended gets its lease hint filed again under its new
// deadline.
func (q *Queue) sweep(ctx context.Context, t *tubeInfo) error {
	const sweepMax = 1024
	done := 0
	for _, kind := range []byte{kindDelayed, kindReserved} {
		for done < sweepMax {
			now := q.nowNs()
			hs, err := q.head(ctx, t.ix(kind), 64)
			if err != nil {
				return err
			}
			var due []hint
			for _, h := range hs {
				if h.t <= now {
					due = append(due, h)
				}
			}
			if len(due) == 0 {
				break
			}
			n, err := q.sweepHints(ctx, t, kind, due, now)
			if err != nil {
				return err
			}
			done += len(due)
			if n == 0 {
				break // only hints left to others for now
			}
		}
	}
	return nil
}

// sweepHints handles due hints of index kind and returns how many it
// took out of the index.
func (q *Queue) sweepHints(ctx context.Context, t *tubeInfo, kind byte, due []hint, now int64) (int, error) {
	ids := make([]beanspike.ID, len(due))
	for i, h := range due {
		ids[i] = h.id
	}
	js, err := q.readJobs(ctx, ids)
	if err != nil {
		return 0, err
	}
	var stale []hint
	n := 0
	for _, h := range due {
		j, ok := js[h.id]
		if !ok || !j.matches(kind, h) {
			stale = append(stale, h)
			continue
		}
		if kind == kindReserved && j.at > now {
			// Touched: file the lease again under its deadline.
			if err := q.refile(ctx, t, j); err != nil {
				return n, err
			}
			n++
			continue
		}
		moved, err := q.toReady(ctx, t, j, now, false)
		if err != nil {
			return n, err
		}
		if moved {
			n++
		} else {
			stale = append(stale, h)
		}
	}
	if len(stale) > 0 {
		if err := q.checkNow(ctx, t, kind, stale, js); err != nil {
			return n, err
		}
	}
	return n, nil
}

// refile files the lease hint of a touched reservation under its new
// deadline: the new hint and a compare-and-swap of the job record's lease
// time, then the old hint goes.
func (q *Queue) refile(ctx context.Context, t *tubeInfo, j jobRec) error {
	old := j.hint()
	if err := q.insert(ctx, t.ix(kindReserved), hint{t: j.at, id: j.id, ttr: j.ttr}); err != nil {
		return err
	}
	wp := q.writePolicy(ctx, nil)
	wp.RecordExistsAction = as.UPDATE_ONLY
	wp.GenerationPolicy = as.EXPECT_GEN_EQUAL
	wp.Generation = j.gen
	err := q.retry(ctx, func() error {
		_, err := q.s.client.Operate(wp, q.jobKey(j.id), as.PutOp(as.NewBin(binLease, j.at)))
		switch resultCode(err) {
		case types.GENERATION_ERROR, types.KEY_NOT_FOUND_ERROR:
			return nil // it moved on; the new hint is stale and checked when due
		}
		return err
	})
	if err != nil {
		return err
	}
	return q.removeNow(ctx, t.ix(kindReserved), [][]byte{old.key(kindReserved)})
}

// check has hint h of index kind of tube t checked in the background.
func (s *store) check(t *tubeInfo, kind byte, h hint) {
	s.mu.Lock()
	if len(s.checks) >= 4096 {
		s.mu.Unlock()
		return
	}
	s.checks = append(s.checks, staleHint{t: t, kind: kind, h: h})
	s.mu.Unlock()
	s.kick()
}

// staleHint is a hint to check.
type staleHint struct {
	t    *tubeInfo
	kind byte
	h    hint
}

// checkNow checks hints of index kind that did not match their jobs (js
// holds the job records read, missing ones left out). A hint whose job
// record is gone goes, once older than missingGrace; one whose job has
// moved on goes, once the move is older than staleGrace, after the hint
// that the job's state calls for is written (it may be missing: its
// mover may have died between its steps).
func (q *Queue) checkNow(ctx context.Context, t *tubeInfo, kind byte, hs []hint, js map[beanspike.ID]jobRec) error {
	now := q.nowNs()
	var drop [][]byte
	for _, h := range hs {
		j, ok := js[h.id]
		switch {
		case !ok:
			age := now - h.t
			if kind == kindReady || kind == kindBuried {
				if age < missingGrace {
					continue
				}
			}
			drop = append(drop, h.key(kind))
		case j.matches(kind, h):
		case now-j.changed < staleGrace:
		default:
			// A job of another tube (a hint left by a crash in a tube of
			// the same name's earlier incarnation) is not this index's.
			if j.tube == t.name {
				if err := q.insertTube(ctx, t, kindOf(j.state), j.hint()); err != nil {
					return err
				}
			}
			drop = append(drop, h.key(kind))
		}
	}
	if len(drop) == 0 {
		return nil
	}
	for _, k := range drop {
		if h, ok := parseHint(kind, k); ok && kind == kindReady {
			q.s.pictureDrop(t.name, h)
		}
	}
	return q.removeNow(ctx, t.ix(kind), drop)
}

// --- background work -------------------------------------------------------

// later runs f in the background, bounded by the store's work context.
func (s *store) later(f func(ctx context.Context)) {
	if s.dead.Load() {
		return
	}
	s.bgWait.Add(1)
	go func() {
		defer s.bgWait.Done()
		s.bgSem <- struct{}{}
		defer func() { <-s.bgSem }()
		ctx, cancel := context.WithTimeout(s.bgCtx, 30*time.Second)
		defer cancel()
		f(ctx)
	}()
}

type workRef struct {
	r   ixRef
	seg int64
}

// startWork claims a segment for a split or merge by this process.
func (s *store) startWork(r ixRef, seg int64) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	w := workRef{r, seg}
	if s.work[w] {
		return false
	}
	s.work[w] = true
	return true
}

func (s *store) endWork(r ixRef, seg int64) {
	s.mu.Lock()
	delete(s.work, workRef{r, seg})
	s.mu.Unlock()
}

// pendingMove is a hint to file, and one to remove once it is filed.
type pendingMove struct {
	to     ixRef
	h      hint
	from   ixRef
	old    hint
	insert bool
}

// moveHint files hint h in index to, then removes hint old from index
// from, in the background, in that order.
func (s *store) moveHint(to ixRef, h hint, from ixRef, old hint) {
	s.mu.Lock()
	s.moves = append(s.moves, pendingMove{to: to, h: h, from: from, old: old, insert: true})
	s.markGone(from, old)
	s.mu.Unlock()
	s.kick()
}

// moveHintMarked is moveHint for a hint the caller marked gone already.
func (s *store) moveHintMarked(to ixRef, h hint, from ixRef, old hint) {
	s.mu.Lock()
	s.moves = append(s.moves, pendingMove{to: to, h: h, from: from, old: old, insert: true})
	s.mu.Unlock()
	s.kick()
}

// goneRef names a ready hint that the process is removing: picture reads
// leave it out meanwhile.
type goneRef struct {
	tube string
	ep   int64
	key  [20]byte
}

func goneOf(r ixRef, h hint) goneRef {
	return goneRef{r.tube, r.ep, [20]byte(h.key(kindReady))}
}

// markGone notes a ready hint the process is removing; s.mu is held.
func (s *store) markGone(r ixRef, h hint) {
	if r.kind == kindReady {
		s.gone[goneOf(r, h)]++
	}
}

// unmarkGone forgets a removed ready hint; s.mu is held.
func (s *store) unmarkGone(r ixRef, h hint) {
	if r.kind == kindReady {
		g := goneOf(r, h)
		if s.gone[g]--; s.gone[g] <= 0 {
			delete(s.gone, g)
		}
	}
}

// isGone tells whether the process is removing ready hint h of tube t.
func (s *store) isGone(t *tubeInfo, h hint) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.gone[goneOf(t.ix(kindReady), h)] > 0
}

// unhint removes hints from index r in the background.
func (s *store) unhint(r ixRef, hs []hint) {
	s.mu.Lock()
	for _, h := range hs {
		s.moves = append(s.moves, pendingMove{from: r, old: h})
		s.markGone(r, h)
	}
	s.mu.Unlock()
	s.kick()
}

// counted adds d to the counts of tube t that the process has yet to
// write.
func (s *store) counted(t *tubeInfo, d delta) {
	if d.zero() {
		return
	}
	k := tubeEp{t.name, t.ep}
	s.mu.Lock()
	s.counts[k] = s.counts[k].plus(d)
	s.mu.Unlock()
	s.kick()
}

type tubeEp struct {
	tube string
	ep   int64
}

// kick wakes the flusher.
func (s *store) kick() {
	select {
	case s.flushReq <- struct{}{}:
	default:
	}
}

// flushLinger is how long the background writer waits after work comes
// before it writes a round, unless a call waits for it.
const flushLinger = 2 * time.Millisecond

// flush waits until everything the process had to write in the
// background when it was called is written (or ctx is done).
func (s *store) flush(ctx context.Context) {
	s.mu.Lock()
	s.queued++
	want := s.queued
	s.mu.Unlock()
	s.kick()
	select {
	case s.flushNow <- struct{}{}:
	default:
	}
	for {
		s.mu.Lock()
		done := s.flushed >= want
		ch := s.flushCh
		s.mu.Unlock()
		if done {
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-ch:
		case <-s.flusherDone:
			return
		}
	}
}

// flusher writes, in the background, the hints and counts that the
// process's calls leave to it: one round at a time, everything queued
// when the round began, so that work piling up during a round goes out
// together in the next.
func (q *Queue) flusher() {
	s := q.s
	defer close(s.flusherDone)
	linger := time.NewTimer(0)
	<-linger.C
	for {
		select {
		case <-s.flushReq:
		case <-s.bgCtx.Done():
			q.flushRound(context.Background())
			return
		}
		// Linger a little, so that a round carries the work of many
		// calls, unless someone waits for it.
		linger.Reset(flushLinger)
		select {
		case <-linger.C:
		case <-s.flushNow:
			if !linger.Stop() {
				<-linger.C
			}
		case <-s.bgCtx.Done():
			q.flushRound(context.Background())
			return
		}
		q.flushRound(s.bgCtx)
	}
}

// flushRound writes what is queued.
func (q *Queue) flushRound(ctx context.Context) {
	s := q.s
	s.mu.Lock()
	moves, counts, checks := s.moves, s.counts, s.checks
	s.moves, s.counts, s.checks = nil, map[tubeEp]delta{}, nil
	round := s.queued
	s.mu.Unlock()
	if s.dead.Load() {
		moves, counts, checks = nil, nil, nil
	}
	ctx, cancel := context.WithTimeout(ctx, 2*s.cfg.timeout+time.Second)
	defer cancel()

	// Inserts first, in one batch command per round, grouped by segment.
	var inserts []pendingMove
	for _, m := range moves {
		if m.insert {
			inserts = append(inserts, m)
		}
	}
	filed := q.fileAll(ctx, inserts)
	// Removals of hints whose successor is filed.
	byIx := map[ixRef][][]byte{}
	k := 0
	for _, m := range moves {
		if m.insert {
			ok := filed[k]
			k++
			if !ok {
				continue // the old hint stays to find the job
			}
		}
		byIx[m.from] = append(byIx[m.from], m.old.key(m.from.kind))
	}
	for r, keys := range byIx {
		_ = q.removeNow(ctx, r, keys)
	}
	s.mu.Lock()
	for _, m := range moves {
		s.unmarkGone(m.from, m.old)
	}
	s.mu.Unlock()
	// Counts: one batch command.
	var recs []as.BatchRecordIfc
	for k, d := range counts {
		if rec := q.countRec(k.tube, k.ep, d); rec != nil {
			recs = append(recs, rec)
		}
	}
	if len(recs) > 0 {
		_ = q.batchWrite(ctx, recs)
	}
	// Checks, grouped by index: one batch read of their job records and
	// one removal per index.
	type ixKey struct {
		tube string
		ep   int64
		kind byte
	}
	groups := map[ixKey][]staleHint{}
	for _, c := range checks {
		k := ixKey{c.t.name, c.t.ep, c.kind}
		groups[k] = append(groups[k], c)
	}
	for _, g := range groups {
		ids := make([]beanspike.ID, len(g))
		hs := make([]hint, len(g))
		for i, c := range g {
			ids[i], hs[i] = c.h.id, c.h
		}
		if js, err := q.readJobs(ctx, ids); err == nil {
			_ = q.checkNow(ctx, g[0].t, g[0].kind, hs, js)
		}
	}
	s.mu.Lock()
	s.flushed = max(s.flushed, round)
	close(s.flushCh)
	s.flushCh = make(chan struct{})
	s.mu.Unlock()
}

// fileAll files the hints of moves and reports which were filed.
func (q *Queue) fileAll(ctx context.Context, ms []pendingMove) map[int]bool {
	filed := map[int]bool{}
	if len(ms) == 0 {
		return filed
	}
	refs := make([]ixRef, len(ms))
	hs := make([]hint, len(ms))
	for i, m := range ms {
		refs[i], hs[i] = m.to, m.h
	}
	groups, err := q.groupHints(ctx, refs, hs)
	if err != nil {
		return filed
	}
	recs := make([]as.BatchRecordIfc, len(groups))
	for g, grp := range groups {
		recs[g] = q.insertGroup(grp, hs)
	}
	q.batch(ctx, recs)
	for g, grp := range groups {
		ok, _ := q.inserted(grp.d, grp.seg, recs[g].BatchRec())
		for _, i := range grp.at {
			filed[i] = ok || q.insert(ctx, ms[i].to, ms[i].h) == nil
		}
	}
	return filed
}

// --- the client's loop -----------------------------------------------------

// background is the client's loop: every sweep interval it tends the
// tubes the client used in the last ten minutes, but for those another
// client of the process tended within half an interval.
func (q *Queue) background() {
	defer q.loop.Done()
	iv := q.s.cfg.sweepInterval
	tk := time.NewTicker(iv)
	defer tk.Stop()
	for {
		select {
		case <-q.done:
			return
		case <-tk.C:
		}
		pctx, pcancel := context.WithTimeout(context.Background(), q.s.cfg.timeout)
		q.probe(pctx)
		pcancel()
		now := q.nowNs()
		q.mu.Lock()
		var tubes []string
		for t, at := range q.active {
			if now-at > int64(10*time.Minute) {
				delete(q.active, t)
				continue
			}
			tubes = append(tubes, t)
		}
		q.mu.Unlock()
		for _, name := range tubes {
			if !q.s.tendDue(name, now, int64(iv)/2) {
				continue
			}
			ctx, cancel := context.WithTimeout(context.Background(), q.s.cfg.timeout)
			if t, err := q.tube(ctx, name, tubeFresh, false); err == nil && t.exists() {
				_ = q.tend(ctx, t)
			}
			cancel()
		}
	}
}

// tendDue tells whether tube is due for tending by this process, and if
// so notes that it is being tended.
func (s *store) tendDue(tube string, now, within int64) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if now-s.tended[tube] < within {
		return false
	}
	if len(s.tended) >= maxTubes {
		clear(s.tended)
	}
	s.tended[tube] = now
	return true
}

// releaseAll returns the client's reservations to ready, at Close.
func (q *Queue) releaseAll(ctx context.Context) error {
	q.mu.Lock()
	held := make(map[beanspike.ID]holding, len(q.held))
	for id, h := range q.held {
		held[id] = h
	}
	q.mu.Unlock()
	var first error
	for id, h := range held {
		err := q.ownMove(ctx, id, beanspike.Ready, h.pri, func(int64) (int64, []*as.Operation) {
			return q.seq(), nil
		})
		if err != nil && first == nil && !isNotHeld(err) {
			first = err
		}
	}
	if first != nil {
		return errUnavailable("reservations not returned, they lapse after their TTR: %v", first)
	}
	return nil
}

func isNotHeld(err error) bool {
	return errors.Is(err, beanspike.ErrNotReserved) || errors.Is(err, beanspike.ErrNotFound)
}
