package aerospike

import (
	"context"
	"fmt"
	"time"

	as "github.com/aerospike/aerospike-client-go/v8"
	"github.com/aerospike/aerospike-client-go/v8/types"

	"github.com/beanspike/beanspike"
)

// newJob is a validated put request.
type newJob struct {
	tube       string
	stored     []byte
	size       int
	compressed bool
	asked      bool
	opts       beanspike.PutOptions
}

// prepare validates a put request and encodes its body. It writes
// nothing.
func (q *Queue) prepare(tube string, body []byte, opts []beanspike.PutOption) (newJob, error) {
	if err := beanspike.ValidateTube(tube); err != nil {
		return newJob{}, err
	}
	o, err := beanspike.NewPutOptions(opts...)
	if err != nil {
		return newJob{}, err
	}
	if err := beanspike.ValidateBody(len(body), q.s.cfg.maxBodySize); err != nil {
		return newJob{}, err
	}
	j := newJob{tube: tube, size: len(body), opts: o, asked: o.Compress, stored: body}
	if o.Compress {
		enc, out, err := q.s.codec.Encode(nil, body)
		if err != nil {
			return newJob{}, fmt.Errorf("%w: %w", beanspike.ErrJobTooBig, err)
		}
		if out.Compressed() {
			j.stored, j.compressed = enc, true
		}
	}
	return j, nil
}

// Put adds a job to tube and returns its ID; see [beanspike.Queue.Put].
// It writes the job record and its hint in one batch command (two
// single-record commands, the record first, when nothing else of the
// process is in flight); plus, rarely, a command to take a block of IDs
// and the first time a process uses a tube, a read of its meta record.
func (q *Queue) Put(ctx context.Context, tube string, body []byte, opts ...beanspike.PutOption) (beanspike.ID, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	if err := q.errClosed(); err != nil {
		return 0, err
	}
	j, err := q.prepare(tube, body, opts)
	if err != nil {
		return 0, err
	}
	ids, err := q.put(ctx, []newJob{j})
	if err != nil {
		return 0, err
	}
	return ids[0], nil
}

// PutBatch puts every request and returns their IDs in order; see
// [beanspike.Batcher.PutBatch]. Jobs go out 256 at a time: their records
// and their hints, grouped by segment, in one batch command.
func (q *Queue) PutBatch(ctx context.Context, reqs []beanspike.PutRequest) ([]beanspike.ID, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if err := q.errClosed(); err != nil {
		return nil, err
	}
	jobs := make([]newJob, len(reqs))
	for i, r := range reqs {
		j, err := q.prepare(r.Tube, r.Body, r.Options)
		if err != nil {
			return nil, err
		}
		jobs[i] = j
	}
	ids := make([]beanspike.ID, 0, len(jobs))
	// A chunk's hints may all go into one segment: keep that within what
	// a segment takes.
	size := max(min(256, q.s.cfg.segSize/8), 1)
	for len(jobs) > 0 {
		chunk := jobs[:min(len(jobs), size)]
		jobs = jobs[len(chunk):]
		got, err := q.put(ctx, chunk)
		ids = append(ids, got...)
		if err != nil {
			return ids, err
		}
	}
	return ids, nil
}

// put writes jobs: their records and hints in one batch command, the
// counts to the process's counter. It returns the IDs of the jobs put,
// in order, up to the first that failed; jobs after a failed one are
// taken back.
func (q *Queue) put(ctx context.Context, jobs []newJob) ([]beanspike.ID, error) {
	ids, err := q.newIDs(ctx, len(jobs))
	if err != nil {
		return nil, err
	}
	tubes := map[string]*tubeInfo{}
	for _, j := range jobs {
		if tubes[j.tube] == nil {
			t, err := q.tube(ctx, j.tube, 1<<62, true)
			if err != nil {
				return nil, err
			}
			tubes[j.tube] = t
			q.touchTube(j.tube)
		}
	}
	now := q.nowNs()
	type placed struct {
		t *tubeInfo
		h hint
		k byte
		d delta
	}
	ps := make([]placed, len(jobs))
	recs := make([]as.BatchRecordIfc, 0, len(jobs)+4)
	for i, j := range jobs {
		t := tubes[j.tube]
		p := placed{t: t}
		st := beanspike.Ready
		at := q.seq()
		if j.opts.Delay > 0 {
			st, at = beanspike.Delayed, after(now, j.opts.Delay)
		}
		p.k = kindOf(st)
		p.h = hint{pri: j.opts.Priority, t: at, id: ids[i], ttr: int64(j.opts.TTR)}
		if st != beanspike.Ready {
			p.h.pri = 0
		}
		p.d.add(st, j.opts.Priority, 1)
		p.d.total = 1
		if j.asked {
			if j.compressed {
				p.d.comp = 1
			} else {
				p.d.skipped = 1
			}
		}
		ps[i] = p
		enc := 0
		if j.compressed {
			enc = 1
		}
		stored := j.stored
		if stored == nil {
			stored = []byte{}
		}
		recs = append(recs, as.NewBatchWrite(q.s.bwCreate, q.jobKey(ids[i]),
			as.PutOp(as.NewBin(binTube, j.tube)),
			as.PutOp(as.NewBin(binBody, stored)),
			as.PutOp(as.NewBin(binEnc, enc)),
			as.PutOp(as.NewBin(binSize, j.size)),
			as.PutOp(as.NewBin(binStored, len(j.stored))),
			as.PutOp(as.NewBin(binCreated, now)),
			as.PutOp(as.NewBin(binState, int(st))),
			as.PutOp(as.NewBin(binPri, int64(j.opts.Priority))),
			as.PutOp(as.NewBin(binTTR, int64(j.opts.TTR))),
			as.PutOp(as.NewBin(binAt, at)),
			as.PutOp(as.NewBin(binDelay, int64(j.opts.Delay))),
			as.PutOp(as.NewBin(binChanged, now)),
		))
	}
	if err := q.at("put"); err != nil {
		return nil, err
	}
	// Job records first, then their hints: a hint is never seen before
	// its job record exists, which would make a claim of it fail.
	q.batch(ctx, recs)

	// Job records: retry those that failed for a while, in doubt or not.
	failed := -1 // first job that failed for good
	var failErr error
	for i := range jobs {
		br := recs[i].BatchRec()
		if br.ResultCode == types.OK {
			continue
		}
		err := q.retry(ctx, func() error {
			if br.ResultCode == types.OK {
				return nil
			}
			if br.ResultCode == types.KEY_EXISTS_ERROR {
				return nil // an attempt in doubt was applied
			}
			if !transient(br.ResultCode) {
				return interpretRecordError(batchErr(br))
			}
			q.batch(ctx, recs[i:i+1])
			if br.ResultCode != types.OK && br.ResultCode != types.KEY_EXISTS_ERROR {
				return batchErr(br)
			}
			return nil
		})
		if err != nil {
			failed, failErr = i, err
			break
		}
	}
	good := len(jobs)
	if failed >= 0 {
		good = failed
	}
	// Hints of the jobs whose records were written, grouped by segment.
	refs := make([]ixRef, good)
	hs := make([]hint, good)
	for i, p := range ps[:good] {
		refs[i], hs[i] = p.t.ix(p.k), p.h
	}
	groups, err := q.groupHints(ctx, refs, hs)
	if err != nil {
		groups, failed, failErr = nil, 0, err
	}
	hintRecs := make([]as.BatchRecordIfc, len(groups))
	for g, grp := range groups {
		hintRecs[g] = q.insertGroup(grp, hs)
	}
	q.batch(ctx, hintRecs)
	// A group whose write failed goes again, one hint at a time, with a
	// fresh directory.
	for g, grp := range groups {
		if ok, _ := q.inserted(grp.d, grp.seg, hintRecs[g].BatchRec()); ok {
			continue
		}
		for _, i := range grp.at {
			if err := q.insertTube(ctx, ps[i].t, ps[i].k, ps[i].h); err != nil && (failed < 0 || i < failed) {
				failed, failErr = i, err
			}
		}
	}
	if failed >= 0 {
		// Take back the jobs from the first that failed on: their
		// records, then their hints. Nothing was counted yet.
		var dels []as.BatchRecordIfc
		var undo []placed
		for i := failed; i < len(jobs); i++ {
			dels = append(dels, as.NewBatchDelete(nil, q.jobKey(ids[i])))
			undo = append(undo, ps[i])
		}
		_ = q.batchWrite(ctx, dels)
		for _, p := range undo {
			q.remove(p.t.ix(p.k), p.h)
		}
		ps = ps[:failed]
	}
	var sum delta
	for _, p := range ps {
		q.s.counted(p.t, p.d)
		sum = sum.plus(p.d)
		if p.k == kindReady {
			q.s.pictureAdd(p.t, p.h)
		}
	}
	if len(ps) > 0 {
		q.s.signal()
	}
	if failed >= 0 {
		return ids[:failed], failErr
	}
	return ids, nil
}

// insertTube inserts hint h into index kind of tube t, following the
// tube to a new incarnation when DeleteTube removed the one t names (the
// job then lives in the new one).
func (q *Queue) insertTube(ctx context.Context, t *tubeInfo, kind byte, h hint) error {
	err := q.insert(ctx, t.ix(kind), h)
	if err == nil {
		return nil
	}
	now, terr := q.tube(ctx, t.name, 0, true)
	if terr != nil || now.ep == t.ep {
		return err
	}
	return q.insert(ctx, now.ix(kind), h)
}

// newIDs returns n new job IDs, unique across all clients of the store:
// they come in blocks taken from the ID counter (add and read in one
// command). A process uses a block for at most a minute.
func (q *Queue) newIDs(ctx context.Context, n int) ([]beanspike.ID, error) {
	s := q.s
	s.idMu.Lock()
	defer s.idMu.Unlock()
	out := make([]beanspike.ID, 0, n)
	for len(out) < n {
		now := time.Now().UnixNano()
		if s.idNext >= s.idEnd || now-s.idAt > int64(time.Minute) {
			want := int64(max(idBlock, n-len(out)))
			var end int64
			err := q.retry(ctx, func() error {
				rec, err := s.client.Operate(q.plainWritePolicy(ctx), q.idKey(),
					as.AddOp(as.NewBin(binNextID, want)), as.GetBinOp(binNextID))
				if err != nil {
					return err
				}
				v, ok := lastInt(rec, binNextID)
				if !ok {
					return errUnavailable("ID counter unreadable")
				}
				end = v
				return nil
			})
			if err != nil {
				return nil, err
			}
			s.idNext, s.idEnd, s.idAt = uint64(end-want+1), uint64(end+1), now
		}
		out = append(out, beanspike.ID(s.idNext))
		s.idNext++
	}
	return out, nil
}
