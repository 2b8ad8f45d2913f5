package aerospike

import (
	"bytes"
	"context"
	"fmt"
	"slices"
	"time"

	as "github.com/aerospike/aerospike-client-go/v8"
	"github.com/aerospike/aerospike-client-go/v8/types"

	"github.com/beanspike/beanspike"
)

// picture is what the clients of a process know of the head of a tube's
// ready index: its first hints as a read saw them, less those taken
// since, plus those the process added before the last one. See the
// package doc (Ready cache).
type picture struct {
	ep   int64
	hs   []hint // in index order
	last []byte // key of the last hint read
	due  int64  // earliest delayed or reserved hint time seen (ns)
	read int64  // process clock (ns)
}

// pictureFresh is how long a picture serves.
const pictureFresh = int64(5 * time.Millisecond)

// pictureSize is how many hints a picture read takes.
const pictureSize = 32

// pictureAdd adds a ready hint that a client of the process wrote to its
// tube's picture, if the picture covers its place.
func (s *store) pictureAdd(t *tubeInfo, h hint) {
	s.mu.Lock()
	defer s.mu.Unlock()
	p := s.pics[t.name]
	// The picture covers the index up to the last hint it read.
	if p == nil || p.ep != t.ep || p.last == nil || bytes.Compare(h.key(kindReady), p.last) > 0 {
		return
	}
	i, _ := slices.BinarySearchFunc(p.hs, h, hintLess)
	p.hs = slices.Insert(p.hs, i, h)
}

// pictureDrop takes a hint out of its tube's picture.
func (s *store) pictureDrop(tube string, h hint) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if p := s.pics[tube]; p != nil {
		if i := slices.IndexFunc(p.hs, h.same); i >= 0 {
			p.hs = slices.Delete(p.hs, i, i+1)
		}
	}
}

// dropPicture forgets tube's picture.
func (s *store) dropPicture(tube string) {
	s.mu.Lock()
	delete(s.pics, tube)
	s.mu.Unlock()
}

// readPictures reads the pictures of tubes that have none fresh: the
// first ready hints, and the first delayed and reserved hints, of each,
// in one batch command per segment level.
func (q *Queue) readPictures(ctx context.Context, ts []*tubeInfo) error {
	now := time.Now().UnixNano()
	for _, t := range ts {
		q.s.mu.Lock()
		p := q.s.pics[t.name]
		fresh := p != nil && p.ep == t.ep && now-p.read <= pictureFresh && p.due > q.nowNs()
		ok := fresh && len(p.hs) > 0
		var after []byte
		if fresh && len(p.hs) == 0 {
			after = p.last
		}
		q.s.mu.Unlock()
		if ok {
			continue
		}
		if after != nil {
			// Used up while fresh: read on after its last hint, not from
			// the head again (which holds the hints just taken).
			more, last, err := q.headAfter(ctx, t, after, pictureSize)
			if err != nil {
				return err
			}
			if len(more) > 0 {
				use := q.usable(t, more)
				q.s.mu.Lock()
				if p2 := q.s.pics[t.name]; p2 == p {
					p.hs, p.last = use, last
				}
				q.s.mu.Unlock()
				continue
			}
		}
		all, due, err := q.readHeads(ctx, t, pictureSize)
		if err != nil {
			return err
		}
		hs := q.usable(t, all)
		if len(hs) == 0 && len(all) >= pictureSize {
			// The head is hints this process is taking out: look past them.
			if all, err = q.head(ctx, t.ix(kindReady), 8*pictureSize); err != nil {
				return err
			}
			hs = q.usable(t, all)
		}
		np := &picture{ep: t.ep, hs: hs, due: due, read: now}
		if len(all) > 0 {
			np.last = all[len(all)-1].key(kindReady)
		}
		q.s.mu.Lock()
		if len(q.s.pics) >= maxTubes {
			clear(q.s.pics)
		}
		q.s.pics[t.name] = np
		q.s.mu.Unlock()
	}
	return nil
}

// headAfter reads up to n ready hints of tube t that follow key, from
// the segment that holds key on. It returns the key of the last hint it
// read.
func (q *Queue) headAfter(ctx context.Context, t *tubeInfo, key []byte, n int) ([]hint, []byte, error) {
	d, err := q.dir(ctx, t.ix(kindReady), false, false)
	if err != nil || d == nil {
		return nil, nil, err
	}
	var out []hint
	for i := d.find(key); i < len(d.segs) && len(out) < n; i++ {
		op := as.MapGetByIndexRangeCountOp(binEntries, 0, n-len(out), as.MapReturnType.KEY_VALUE)
		if i == d.find(key) {
			// From the least key above key (key is fixed-width: key
			// followed by a zero byte is just above it).
			after := append(slices.Clip(key), 0)
			op = as.MapGetByKeyRelativeIndexRangeCountOp(binEntries, as.BytesValue(after), 0, n, as.MapReturnType.KEY_VALUE)
		}
		rec := as.NewBatchReadOps(nil, q.s.segKey(d.ref, d.segs[i]), op)
		if err := q.batchRead(ctx, []as.BatchRecordIfc{rec}); err != nil {
			return nil, nil, err
		}
		if rec.BatchRec().ResultCode != types.OK {
			break // gone: the next full read settles it
		}
		out = append(out, headKeys(kindReady, rec.BatchRec())...)
	}
	if len(out) == 0 {
		return nil, nil, nil
	}
	return out, out[len(out)-1].key(kindReady), nil
}

// usable returns the ready hints of hs that the process is neither
// taking out nor skipping, each once (a split under way holds some
// twice).
func (q *Queue) usable(t *tubeInfo, hs []hint) []hint {
	out := hs[:0:0]
	seen := make(map[hint]bool, len(hs))
	r := t.ix(kindReady)
	now := time.Now().UnixNano()
	q.s.mu.Lock()
	for _, h := range hs {
		if seen[h] {
			continue
		}
		seen[h] = true
		g := goneOf(r, h)
		if q.s.gone[g] > 0 {
			continue
		}
		if until, ok := q.s.skips[g]; ok && until >= now {
			continue
		}
		out = append(out, h)
	}
	q.s.mu.Unlock()
	slices.SortFunc(out, hintLess)
	return out
}

// readHeads reads the first n ready hints of tube t and the earliest
// time of its delayed and reserved hints: with the directories cached,
// one batch command that reads the first segment of each index; what it
// cannot settle so (a directory not cached, a first segment with fewer
// than n hints and more segments after it) is read index by index.
func (q *Queue) readHeads(ctx context.Context, t *tubeInfo, n int) ([]hint, int64, error) {
	kinds := []byte{kindReady, kindDelayed, kindReserved}
	counts := []int{n, 1, 1}
	var recs []as.BatchRecordIfc
	var dirs []*dir
	for i, k := range kinds {
		d := q.s.cachedDir(t.ix(k))
		if d == nil || d.missing || len(d.segs) == 0 {
			dirs = append(dirs, nil)
			continue
		}
		dirs = append(dirs, d)
		recs = append(recs, as.NewBatchReadOps(nil, q.s.segKey(d.ref, d.segs[0]),
			as.MapGetByIndexRangeCountOp(binEntries, 0, counts[i], as.MapReturnType.KEY_VALUE)))
	}
	if len(recs) > 0 {
		if err := q.batchRead(ctx, recs); err != nil {
			return nil, 0, err
		}
	}
	heads := make([][]hint, len(kinds))
	k := 0
	for i, kind := range kinds {
		var br *as.BatchRecord
		if dirs[i] != nil {
			br = recs[k].BatchRec()
			k++
		}
		if br != nil && br.ResultCode == types.OK {
			got := headKeys(kind, br)
			if len(got) >= counts[i] || len(dirs[i].segs) == 1 {
				heads[i] = got
				continue
			}
		}
		hs, err := q.head(ctx, t.ix(kind), counts[i])
		if err != nil {
			return nil, 0, err
		}
		heads[i] = hs
	}
	due := int64(1<<63 - 1)
	for _, hs := range heads[1:] {
		if len(hs) > 0 {
			due = min(due, hs[0].t)
		}
	}
	return heads[0], due, nil
}

// Reserve reserves the most urgent ready job of tubes; see
// [beanspike.Queue.Reserve]. The job is claimed with one single-record
// command on its record, which returns the job; the hints are moved
// afterwards, in the background.
func (q *Queue) Reserve(ctx context.Context, tubes ...string) (*beanspike.Job, error) {
	jobs, err := q.reserve(ctx, 1, tubes)
	if err != nil {
		return nil, err
	}
	return jobs[0], nil
}

// ReserveBatch reserves up to max ready jobs; see
// [beanspike.Batcher.ReserveBatch].
func (q *Queue) ReserveBatch(ctx context.Context, max int, tubes ...string) ([]*beanspike.Job, error) {
	if max <= 0 {
		return nil, fmt.Errorf("%w: batch size %d is not positive", beanspike.ErrInvalidArgument, max)
	}
	return q.reserve(ctx, max, tubes)
}

func (q *Queue) reserve(ctx context.Context, max int, tubes []string) ([]*beanspike.Job, error) {
	if len(tubes) == 0 {
		tubes = []string{beanspike.DefaultTube}
	}
	names, err := beanspike.NormalizeTubes(tubes)
	if err != nil {
		return nil, err
	}
	if err := q.errClosed(); err != nil {
		return nil, err
	}
	for _, n := range names {
		q.touchTube(n)
	}
	wait := 5 * time.Millisecond
	waiting := false
	defer func() {
		if waiting {
			q.s.unwait(names)
		}
	}()
	for {
		wake := q.s.wakeChan()
		jobs, err := q.poll(ctx, names, max)
		if err != nil || len(jobs) > 0 {
			return jobs, err
		}
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		if !waiting {
			waiting = true
			q.s.addWait(names)
			continue // count as waiting before looking once more
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, ctx.Err()
		case <-q.done:
			t.Stop()
			return nil, beanspike.ErrClosed
		case <-wake:
			t.Stop()
		case <-t.C:
			wait = min(2*wait, 100*time.Millisecond)
		}
	}
}

// poll reserves up to max ready jobs of the tubes named, without
// waiting.
func (q *Queue) poll(ctx context.Context, names []string, max int) ([]*beanspike.Job, error) {
	var ts []*tubeInfo
	for _, n := range names {
		t, err := q.tube(ctx, n, tubeFresh, false)
		if err != nil {
			return nil, err
		}
		if t.exists() {
			ts = append(ts, t)
		}
	}
	if len(ts) == 0 {
		return nil, nil
	}
	var got []*beanspike.Job
	for round := 0; len(got) < max && round < 8; round++ {
		if err := q.readPictures(ctx, ts); err != nil {
			return got, err
		}
		now := q.nowNs()
		swept := false
		for _, t := range ts {
			q.s.mu.Lock()
			due := int64(1<<63 - 1)
			if p := q.s.pics[t.name]; p != nil {
				due = p.due
			}
			q.s.mu.Unlock()
			if due <= now {
				if err := q.sweep(ctx, t); err != nil {
					return got, err
				}
				q.s.dropPicture(t.name)
				swept = true
			}
		}
		if swept {
			continue
		}
		tried := 0
		for len(got) < max {
			t, h, ok := q.pick(ts, now)
			if !ok {
				break
			}
			tried++
			j, err := q.claim(ctx, t, h)
			if err != nil {
				q.s.mu.Lock()
				q.s.unmarkGone(t.ix(kindReady), h)
				q.s.mu.Unlock()
				return got, err
			}
			if j != nil {
				got = append(got, j)
			}
		}
		if len(got) > 0 || tried == 0 {
			break
		}
		for _, t := range ts { // every claim lost: read again
			q.s.dropPicture(t.name)
		}
	}
	return got, nil
}

// pick takes the best hint of the tubes' pictures out of its picture:
// the lowest priority, then the lower ID across tubes; within a tube the
// index order. It skips paused tubes. Processes racing for one job
// spread by themselves: a loser leaves the hint out of its pictures for a
// while and takes the next.
func (q *Queue) pick(ts []*tubeInfo, now int64) (*tubeInfo, hint, bool) {
	q.s.mu.Lock()
	defer q.s.mu.Unlock()
	var bt *tubeInfo
	var bh hint
	bi := -1
	for _, t := range ts {
		if t.pauseEnd > now {
			continue
		}
		p := q.s.pics[t.name]
		if p == nil || p.ep != t.ep || len(p.hs) == 0 {
			continue
		}
		i := 0
		h := p.hs[i]
		if bt == nil || h.pri < bh.pri || (h.pri == bh.pri && h.id < bh.id) {
			bt, bh, bi = t, h, i
		}
	}
	if bt == nil {
		return nil, hint{}, false
	}
	p := q.s.pics[bt.name]
	p.hs = slices.Delete(p.hs, bi, bi+1)
	// Taken: picture reads leave it out while it is claimed, and then
	// until its hint is removed.
	q.s.markGone(bt.ix(kindReady), bh)
	return bt, bh, true
}

// claim reserves the job of ready hint h for q: one compare-and-swap on
// the job record that checks that the job is still as the hint says and
// returns the record. It returns nil, nil when the job was not as the
// hint says (taken by another client, or the hint is stale).
func (q *Queue) claim(ctx context.Context, t *tubeInfo, h hint) (*beanspike.Job, error) {
	now := q.nowNs()
	deadline := after(now, time.Duration(h.ttr))
	filter := as.ExpAnd(
		as.ExpEq(as.ExpIntBin(binState), as.ExpIntVal(int64(beanspike.Ready))),
		as.ExpEq(as.ExpIntBin(binAt), as.ExpIntVal(h.t)),
		as.ExpEq(as.ExpIntBin(binPri), as.ExpIntVal(int64(h.pri))),
	)
	ops := append(q.reserveOps(deadline, now), as.GetOp())
	if err := q.at("claim"); err != nil {
		return nil, err
	}
	rec := as.NewBatchWrite(q.s.bwUpdateWith(filter), q.jobKey(h.id), ops...)
	var br *as.BatchRecord
	err := q.retry(ctx, func() error {
		q.batch(ctx, []as.BatchRecordIfc{rec})
		br = rec.BatchRec()
		if transient(br.ResultCode) {
			if codeInDoubt(br) {
				return nil // looked at below
			}
			return batchErr(br)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	var j jobRec
	switch {
	case br.ResultCode == types.OK:
		var ok bool
		if j, ok = parseJob(h.id, br.Record); !ok {
			return nil, errUnavailable("job %d: record unreadable", h.id)
		}
	case codeInDoubt(br):
		// Find out whether the claim was applied.
		got, ok, err := q.readJob(ctx, h.id, true)
		if err != nil {
			return nil, err
		}
		if !ok || got.state != beanspike.Reserved || got.owner != q.owner || got.changed != now {
			q.lostRace(t, h)
			return nil, nil
		}
		j = got
	default:
		q.lostRace(t, h)
		return nil, nil
	}
	if err := q.at("claimed"); err != nil {
		return nil, err
	}
	body, err := q.body(j)
	if err != nil {
		return nil, err
	}
	q.hold(h.id, holding{tube: t.name, ep: t.ep, pri: j.pri, ttr: j.ttr, lease: deadline, deadline: deadline})
	// Count it, then file the lease and drop the ready hint in that
	// order: until the lease is filed, the ready hint is what finds the
	// job again should this process die.
	q.s.counted(t, move(beanspike.Ready, beanspike.Reserved, j.pri, j.pri))
	q.s.moveHintMarked(t.ix(kindReserved), hint{t: deadline, id: h.id, ttr: j.ttr}, t.ix(kindReady), h)
	return &beanspike.Job{
		ID:       h.id,
		Tube:     t.name,
		Body:     body,
		Priority: j.pri,
		TTR:      dur(j.ttr),
		Reserves: j.reserves,
	}, nil
}

// reserveOps are the writes that make a job record reserved by q until
// deadline, at now.
func (q *Queue) reserveOps(deadline, now int64) []*as.Operation {
	return []*as.Operation{
		as.PutOp(as.NewBin(binState, int(beanspike.Reserved))),
		as.PutOp(as.NewBin(binAt, deadline)),
		as.PutOp(as.NewBin(binLease, deadline)),
		as.PutOp(as.NewBin(binOwner1, q.owner[0])),
		as.PutOp(as.NewBin(binOwner2, q.owner[1])),
		as.AddOp(as.NewBin(binReserves, 1)),
		as.PutOp(as.NewBin(binChanged, now)),
	}
}

// lostRace notes a claim that found its job not as its hint said, and has
// the hint checked in the background.
func (q *Queue) lostRace(t *tubeInfo, h hint) {
	q.s.skip(t, h)
	q.s.mu.Lock()
	q.s.unmarkGone(t.ix(kindReady), h)
	q.s.mu.Unlock()
	q.s.check(t, kindReady, h)
}

// skipFor is how long a ready hint whose claim failed is left out of the
// process's pictures (ns): it is stale (checked in the background), its
// job was taken by another process, or its job is being moved to it and
// the hint was written first, as moves write it.
const skipFor = int64(100 * time.Millisecond)

// skip keeps a ready hint whose claim failed out of the process's
// pictures for skipFor.
func (s *store) skip(t *tubeInfo, h hint) {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := time.Now().UnixNano()
	if len(s.skips) >= 1<<14 {
		for k, until := range s.skips {
			if until < now {
				delete(s.skips, k)
			}
		}
		if len(s.skips) >= 1<<14 {
			clear(s.skips)
		}
	}
	s.skips[goneOf(t.ix(kindReady), h)] = now + skipFor
}

// body returns the original body of a job record.
func (q *Queue) body(j jobRec) ([]byte, error) {
	raw := j.body
	if j.enc {
		b, err := q.s.codec.Decode(nil, raw)
		if err != nil {
			return nil, fmt.Errorf("%w: job %d: stored body does not decode: %w", beanspike.ErrUnavailable, j.id, err)
		}
		return b, nil
	}
	if raw == nil {
		raw = []byte{}
	}
	return raw, nil
}

// readJob reads a job record, with its body if body is set. ok is false
// when there is no such job.
func (q *Queue) readJob(ctx context.Context, id beanspike.ID, body bool) (j jobRec, ok bool, err error) {
	var rec *as.Record
	err = q.retry(ctx, func() error {
		var err error
		if body {
			rec, err = q.s.client.Get(q.readPolicy(ctx), q.jobKey(id))
		} else {
			rec, err = q.s.client.Get(q.readPolicy(ctx), q.jobKey(id), jobStateBins...)
		}
		if resultCode(err) == types.KEY_NOT_FOUND_ERROR {
			rec, err = nil, nil
		}
		return err
	})
	if err != nil || rec == nil {
		return jobRec{}, false, err
	}
	j, ok = parseJob(id, rec)
	return j, ok, nil
}

// readJobs reads job records without their bodies; missing ones are left
// out.
func (q *Queue) readJobs(ctx context.Context, ids []beanspike.ID) (map[beanspike.ID]jobRec, error) {
	recs := make([]as.BatchRecordIfc, len(ids))
	for i, id := range ids {
		recs[i] = as.NewBatchRead(nil, q.jobKey(id), jobStateBins)
	}
	if err := q.batchRead(ctx, recs); err != nil {
		return nil, err
	}
	out := make(map[beanspike.ID]jobRec, len(ids))
	for i, r := range recs {
		if j, ok := parseJob(ids[i], r.BatchRec().Record); ok {
			out[ids[i]] = j
		}
	}
	return out, nil
}

// ReserveJob reserves job id if it is ready, delayed or buried; see
// [beanspike.Queue.ReserveJob]. One read of the job record, then one
// compare-and-swap on it.
func (q *Queue) ReserveJob(ctx context.Context, id beanspike.ID) (*beanspike.Job, error) {
	if err := q.idCheck(ctx, id); err != nil {
		return nil, err
	}
	for range 8 {
		j, ok, err := q.readJob(ctx, id, false)
		if err != nil {
			return nil, err
		}
		now := q.nowNs()
		if !ok {
			return nil, errNotFound(id)
		}
		eff := j.effective(now)
		if eff == beanspike.Reserved {
			return nil, fmt.Errorf("%w: job %d is reserved", beanspike.ErrNotFound, id)
		}
		t, err := q.tube(ctx, j.tube, 1<<62, false)
		if err != nil {
			return nil, err
		}
		deadline := after(now, time.Duration(j.ttr))
		ops := q.reserveOps(deadline, now)
		if j.state == beanspike.Reserved { // lapsed
			ops = append(ops, as.AddOp(as.NewBin(binTimeouts, 1)))
		}
		ops = append(ops, as.GetOp())
		rec, err := q.casJob(ctx, j, ops...)
		if err != nil {
			return nil, err
		}
		if rec == nil {
			continue // changed meanwhile
		}
		got, _ := parseJob(id, rec)
		body, err := q.body(got)
		if err != nil {
			return nil, err
		}
		q.hold(id, holding{tube: t.name, ep: t.ep, pri: got.pri, ttr: got.ttr, lease: deadline, deadline: deadline})
		q.s.counted(t, move(j.state, beanspike.Reserved, j.pri, j.pri))
		q.s.pictureDrop(t.name, j.hint())
		q.s.moveHint(t.ix(kindReserved), hint{t: deadline, id: id, ttr: j.ttr}, t.ix(kindOf(j.state)), j.hint())
		return &beanspike.Job{ID: id, Tube: j.tube, Body: body, Priority: got.pri, TTR: dur(got.ttr), Reserves: got.reserves}, nil
	}
	return nil, errUnavailable("job %d keeps changing", id)
}

// casJob applies ops to job record j under a check that it has not
// changed since it was read (its generation). It returns nil, nil when
// it had.
func (q *Queue) casJob(ctx context.Context, j jobRec, ops ...*as.Operation) (*as.Record, error) {
	var rec *as.Record
	var changed bool
	err := q.retry(ctx, func() error {
		wp := q.writePolicy(ctx, nil)
		wp.RecordExistsAction = as.UPDATE_ONLY
		wp.GenerationPolicy = as.EXPECT_GEN_EQUAL
		wp.Generation = j.gen
		var err error
		rec, err = q.s.client.Operate(wp, q.jobKey(j.id), ops...)
		switch resultCode(err) {
		case types.GENERATION_ERROR, types.KEY_NOT_FOUND_ERROR:
			changed = true
			return nil
		}
		if err != nil && inDoubt(err) {
			// Applied or not: compare.
			got, ok, rerr := q.readJob(ctx, j.id, false)
			if rerr != nil {
				return err
			}
			if ok && got.gen == j.gen+1 {
				rec, err = q.s.client.Get(q.readPolicy(ctx), q.jobKey(j.id))
				return err
			}
			if !ok || got.gen != j.gen {
				changed = true
				return nil
			}
		}
		return err
	})
	if err != nil || changed {
		return nil, err
	}
	return rec, nil
}

// idCheck makes the checks every call about a job begins with.
func (q *Queue) idCheck(ctx context.Context, id beanspike.ID) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := beanspike.ValidateID(id); err != nil {
		return err
	}
	return q.errClosed()
}
