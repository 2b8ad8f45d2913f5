package aerospike

import (
	"context"
	"errors"
	"fmt"
	"math"

	as "github.com/aerospike/aerospike-client-go/v8"
	"github.com/aerospike/aerospike-client-go/v8/types"

	"github.com/beanspike/beanspike"
)

// newJob is a validated, encoded job waiting to be put.
type newJob struct {
	tube       string
	stored     []byte
	compressed bool
	asked      bool // compression was asked for
	size       int
	opts       beanspike.PutOptions

	id  beanspike.ID
	bin string
	e   entry
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
	j := newJob{tube: tube, size: len(body), opts: o, asked: o.Compress}
	if o.Compress {
		enc, out, err := q.s.codec.Encode(nil, body)
		if err != nil {
			return newJob{}, fmt.Errorf("%w: %w", beanspike.ErrJobTooBig, err)
		}
		if out.Compressed() {
			j.stored, j.compressed = enc, true
		}
	}
	if !j.compressed {
		// Written before Put returns; the ready cache keeps a copy, if
		// any: no copy is needed here.
		j.stored = body
	}
	return j, nil
}

// Put adds a job to tube and returns its ID; see [beanspike.Queue.Put].
// It writes the job record and the job's index entry in one batch
// command, or, when nothing else of the process is in flight, as two
// single-record commands one after the other (see the package doc); plus
// one command to register a tube this process has not used yet and one
// per 256 puts to take a block of IDs.
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
// [beanspike.Batcher.PutBatch]. All requests are validated and encoded
// before anything is written; the jobs are then written in batch commands
// of up to 256 jobs.
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
			return nil, fmt.Errorf("request %d: %w", i, err)
		}
		jobs[i] = j
	}
	ids := make([]beanspike.ID, 0, len(reqs))
	for len(jobs) > 0 {
		n := min(len(jobs), 256)
		got, err := q.put(ctx, jobs[:n])
		ids = append(ids, got...)
		if err != nil {
			return ids, err
		}
		jobs = jobs[n:]
	}
	return ids, nil
}

// putGroup is the part of a put batch that goes to one index record.
type putGroup struct {
	ref   shardRef
	jobs  []int // indexes into the batch
	done  bool
	doubt bool // a write whose outcome is unknown may have applied
}

// put writes jobs. It returns the IDs of the jobs put, in order, up to
// the first that could not be put; jobs after it that were put are
// removed again (best effort).
func (q *Queue) put(ctx context.Context, jobs []newJob) ([]beanspike.ID, error) {
	for _, j := range jobs {
		if err := q.ensureTube(ctx, j.tube); err != nil {
			return nil, err
		}
	}
	ids, err := q.allocIDs(ctx, len(jobs))
	if err != nil {
		return nil, err
	}
	// Groups are found by a scan while few, by a map beyond.
	var groups map[shardRef]*putGroup
	order := make([]*putGroup, 0, 1)
	now := q.nowNs()
	for i := range jobs {
		j := &jobs[i]
		j.id = ids[i]
		e := entry{pri: j.opts.Priority, ttr: int64(j.opts.TTR), delay: int64(j.opts.Delay), put: now}
		seq := q.seq()
		if j.opts.Delay > 0 {
			due := int64(math.MaxInt64 - 1)
			if int64(j.opts.Delay) < due-now {
				due = now + int64(j.opts.Delay)
			}
			j.bin, j.e = binDelayed, e.asDelayed(due, seq)
		} else {
			j.bin, j.e = binReady, e.asReady(seq)
		}
		ref := shardRef{j.tube, q.shardOf(j.id)}
		var g *putGroup
		if groups != nil {
			g = groups[ref]
		} else {
			for _, o := range order {
				if o.ref == ref {
					g = o
					break
				}
			}
		}
		if g == nil {
			g = &putGroup{ref: ref}
			order = append(order, g)
			if groups != nil {
				groups[ref] = g
			} else if len(order) > 8 {
				groups = make(map[shardRef]*putGroup, 2*len(order))
				for _, o := range order {
					groups[o.ref] = o
				}
			}
		}
		g.jobs = append(g.jobs, i)
	}

	flags := make([]bool, 3*len(jobs))
	recDone, recDoubt, put := flags[:len(jobs)], flags[len(jobs):2*len(jobs)], flags[2*len(jobs):]
	var fresh []string
	b := backoff{h: &q.s.health}
	var failure error
	// Crash simulation: write only one half of the batch, then stop.
	skipIndex := q.at("put:index") != nil
	skipRecord := q.at("put:record") != nil
	for {
		// A group whose write may have been applied is checked before it
		// is sent again, so that no entry is put twice.
		for _, g := range order {
			if !g.done && g.doubt {
				if err := q.at("put:recheck"); err != nil {
					return nil, err
				}
				ok, err := q.groupLanded(ctx, g, jobs, recDone)
				if err != nil {
					failure = err
					break
				}
				g.done = ok
				g.doubt = false
			}
		}
		if failure != nil {
			break
		}
		recs := make([]as.BatchRecordIfc, 0, len(jobs)+len(order))
		recIdx := make([]int, 0, len(jobs))
		var grpIdx []*putGroup
		for i := range jobs {
			if !recDone[i] && !skipRecord {
				recs = append(recs, q.recordWrite(&jobs[i]))
				recIdx = append(recIdx, i)
			}
		}
		for _, g := range order {
			if !g.done && !skipIndex {
				recs = append(recs, q.groupWrite(g, jobs))
				grpIdx = append(grpIdx, g)
			}
		}
		if len(recs) == 0 {
			break
		}
		q.batch(ctx, recs)
		if skipIndex || skipRecord {
			return nil, errCrashed
		}
		var last error
		for n, i := range recIdx {
			br := recs[n].BatchRec()
			switch {
			case br.ResultCode == types.OK:
				recDone[i] = true
			case br.ResultCode == types.KEY_EXISTS_ERROR && recDoubt[i]:
				recDone[i] = true // an earlier attempt wrote it
			case transient(br.ResultCode):
				recDoubt[i] = recDoubt[i] || codeInDoubt(br)
				last = batchErr(br)
			default:
				failure = interpretRecordError(batchErr(br))
			}
		}
		for n, g := range grpIdx {
			br := recs[len(recIdx)+n].BatchRec()
			switch {
			case br.ResultCode == types.OK:
				g.done = true
				if tot, ok := lastInt(br.Record, binTotal); ok && tot == int64(len(g.jobs)) {
					fresh = append(fresh, g.ref.tube)
				}
			case transient(br.ResultCode):
				g.doubt = g.doubt || codeInDoubt(br)
				last = batchErr(br)
			default:
				failure = interpretError(batchErr(br))
			}
		}
		if failure != nil || last == nil {
			break
		}
		if werr := b.wait(ctx, q.stopCh(), last); werr != nil {
			failure = werr
			break
		}
	}

	// A shard record created by this batch may belong to a tube deleted
	// since this process registered it: register it again.
	for _, t := range fresh {
		q.forgetTube(t)
		if err := q.ensureTube(ctx, t); err != nil && failure == nil {
			failure = err
		}
	}

	// entry[i]: job i's entry was written, or may have been.
	entry := make([]bool, len(jobs))
	for _, g := range order {
		for _, i := range g.jobs {
			put[i] = g.done && recDone[i]
			entry[i] = g.done || g.doubt
		}
	}
	wake := false
	for i, j := range jobs {
		if put[i] {
			q.s.remember(j.id, j.tube)
			ref := shardRef{j.tube, q.shardOf(j.id)}
			if j.bin == binReady {
				wake = true
				q.s.ready.addPut(ref, kv{j.id, j.e}, &jobs[i])
			} else {
				q.s.ready.due(ref, j.e.k1)
			}
		}
	}
	for i, j := range jobs {
		if i == 0 || j.tube != jobs[i-1].tube {
			q.touchTube(j.tube)
		}
	}
	if wake {
		q.s.signal()
	}
	prefix := len(jobs)
	for i := range jobs {
		if !put[i] {
			prefix = i
			break
		}
	}
	out := ids[:prefix]
	if prefix == len(jobs) {
		return out, nil
	}
	q.undoPut(jobs[prefix:], entry[prefix:], recDone[prefix:])
	if failure == nil {
		failure = errUnavailable("put did not complete")
	}
	return out, failure
}

// errCrashed is returned by operations stopped by a test hook.
var errCrashed = errors.New("aerospike: stopped by test hook")

// enc is the value of the job record's enc bin.
func (j *newJob) enc() int {
	if j.compressed {
		return 1
	}
	return 0
}

// recordWrite is the batch write of a job record.
func (q *Queue) recordWrite(j *newJob) *as.BatchWrite {
	ops := make([]*as.Operation, 4, 5)
	ops[0] = as.PutOp(as.NewBin(binTube, j.tube))
	ops[1] = as.PutOp(as.NewBin(binEnc, j.enc()))
	ops[2] = as.PutOp(as.NewBin(binSize, j.size))
	ops[3] = as.PutOp(as.NewBin(binPut, j.e.put))
	if len(j.stored) > 0 {
		ops = append(ops, as.PutOp(as.NewBin(binBody, j.stored)))
	}
	return as.NewBatchWrite(q.s.bwCreate, q.jobKey(j.id), ops...)
}

// groupWrite is the batch write of the index entries of one group, with
// the tube's counters.
func (q *Queue) groupWrite(g *putGroup, jobs []newJob) *as.BatchWrite {
	ops := make([]*as.Operation, 0, 6)
	comp, skip := 0, 0
	for _, i := range g.jobs {
		if j := &jobs[i]; j.compressed {
			comp++
		} else if j.asked {
			skip++
		}
	}
	for _, bin := range [...]string{binReady, binDelayed} {
		var items map[any]any
		var one *newJob
		for _, i := range g.jobs {
			j := &jobs[i]
			if j.bin != bin {
				continue
			}
			if one != nil && items == nil {
				items = map[any]any{int64(one.id): one.e.value()}
			}
			if items != nil {
				items[int64(j.id)] = j.e.value()
			}
			one = j
		}
		switch {
		case items != nil:
			ops = append(ops, as.MapPutItemsOp(q.s.mapPolicy, bin, items))
		case one != nil:
			ops = append(ops, as.MapPutOp(q.s.mapPolicy, bin, int64(one.id), one.e.value()))
		}
	}
	ops = append(ops, as.AddOp(as.NewBin(binTotal, len(g.jobs))))
	if comp > 0 {
		ops = append(ops, as.AddOp(as.NewBin(binComp, comp)))
	}
	if skip > 0 {
		ops = append(ops, as.AddOp(as.NewBin(binSkip, skip)))
	}
	ops = append(ops, q.s.opGetTotal)
	return as.NewBatchWrite(q.s.bwPol, q.shardKey(g.ref), ops...)
}

// groupLanded tells whether the index entries of g were written by an
// attempt whose outcome is in doubt. They were if any is in the index,
// or recorded as deleted (its job was reserved and deleted since), or if
// a job record this Put wrote is gone (deleted, and the delete finished).
func (q *Queue) groupLanded(ctx context.Context, g *putGroup, jobs []newJob, recDone []bool) (bool, error) {
	ids := make([]beanspike.ID, len(g.jobs))
	keys := make([]any, len(g.jobs))
	for n, i := range g.jobs {
		ids[n] = jobs[i].id
		keys[n] = int64(jobs[i].id)
	}
	f, err := q.readEntries(ctx, g.ref, ids)
	if err != nil || len(f) > 0 {
		return len(f) > 0, err
	}
	var rec *as.Record
	err = q.retry(ctx, func() error {
		var err error
		rec, err = q.s.client.Operate(q.plainWritePolicy(ctx), q.shardKey(g.ref),
			as.MapGetByKeyListOp(binDeleting, keys, as.MapReturnType.KEY))
		return err
	})
	switch {
	case err == nil:
		if l, _ := rec.Bins[binDeleting].([]any); len(l) > 0 {
			return true, nil
		}
	case !errorIsNotFound(err):
		return false, err
	}
	for _, i := range g.jobs {
		if !recDone[i] {
			continue
		}
		var ok bool
		err := q.retry(ctx, func() error {
			var err error
			ok, err = q.s.client.Exists(q.readPolicy(ctx), q.jobKey(jobs[i].id))
			return err
		})
		if err != nil {
			return false, err
		}
		if !ok {
			return true, nil
		}
	}
	return false, nil
}

// undoPut removes what was written of jobs that a failed put does not
// report as put, so that a rejected call leaves the store as it was:
// each entry written, or whose write is in doubt, is removed with the
// counts its write added, in one compare-and-swap (which does nothing
// when the entry is not there), and each job record written is deleted.
// It is best effort: an entry left behind by a failure here has no record
// and is dropped when claimed (see the package doc); a job record left
// behind has no entry and is never seen.
func (q *Queue) undoPut(jobs []newJob, entry, recDone []bool) {
	ctx, cancel := context.WithTimeout(context.Background(), q.s.cfg.timeout)
	defer cancel()
	for i := range jobs {
		j := &jobs[i]
		if entry[i] {
			extra := []*as.Operation{as.AddOp(as.NewBin(binTotal, -1))}
			if j.compressed {
				extra = append(extra, as.AddOp(as.NewBin(binComp, -1)))
			} else if j.asked {
				extra = append(extra, as.AddOp(as.NewBin(binSkip, -1)))
			}
			_, _ = q.apply(ctx, shardRef{j.tube, q.shardOf(j.id)}, []move{{id: j.id, from: j.bin, old: j.e}}, extra...)
		}
		if recDone[i] {
			_, _ = q.s.client.Delete(q.plainWritePolicy(ctx), q.jobKey(j.id))
		}
	}
}

// batchErr returns the error of a failed batch record.
func batchErr(br *as.BatchRecord) error {
	if br.Err != nil {
		return br.Err
	}
	return &as.AerospikeError{ResultCode: br.ResultCode}
}

// lastInt returns the last integer result for bin in rec.
func lastInt(rec *as.Record, bin string) (int64, bool) {
	if rec == nil {
		return 0, false
	}
	r := results(rec.Bins, bin)
	for i := len(r) - 1; i >= 0; i-- {
		if n, ok := toInt(r[i]); ok {
			return n, true
		}
	}
	return 0, false
}

// results returns the results of the operations on bin, in order.
func results(bins as.BinMap, bin string) []any {
	v, ok := bins[bin]
	if !ok {
		return nil
	}
	if r, ok := v.(as.OpResults); ok {
		return r
	}
	return []any{v}
}

// ensureTube registers tube in the tube list, and creates its meta
// record, unless this process knows it did already.
func (q *Queue) ensureTube(ctx context.Context, tube string) error {
	q.s.mu.Lock()
	known := q.s.known[tube]
	q.s.mu.Unlock()
	if known {
		return nil
	}
	if err := q.register(ctx, tube, nil); err != nil {
		return err
	}
	q.s.mu.Lock()
	q.s.known[tube] = true
	q.s.mu.Unlock()
	return nil
}

func (q *Queue) forgetTube(tube string) {
	q.s.mu.Lock()
	delete(q.s.known, tube)
	q.s.mu.Unlock()
}

// register writes tube's meta record, with the extra operations, and its
// entry in the tube list, in one batch command. Both writes are
// idempotent.
func (q *Queue) register(ctx context.Context, tube string, metaOps []*as.Operation) error {
	listPolicy := as.NewMapPolicyWithFlags(as.MapOrder.KEY_ORDERED, as.MapWriteFlagsCreateOnly|as.MapWriteFlagsNoFail)
	meta := append([]*as.Operation{as.PutOp(as.NewBin(binName, tube))}, metaOps...)
	metaDone, listDone := false, false
	b := backoff{h: &q.s.health}
	for {
		var recs []as.BatchRecordIfc
		var metaRec as.BatchRecordIfc
		if !metaDone {
			metaRec = as.NewBatchWrite(batchWritePolicy(nil), q.metaKey(tube), meta...)
			recs = append(recs, metaRec)
		}
		if !listDone {
			recs = append(recs, as.NewBatchWrite(batchWritePolicy(nil), q.listKey(),
				as.MapPutOp(listPolicy, binTubes, tube, q.now().UnixMilli())))
		}
		q.batch(ctx, recs)
		var last error
		for _, r := range recs {
			br := r.BatchRec()
			switch {
			case br.ResultCode == types.OK && r == metaRec:
				metaDone = true
			case br.ResultCode == types.OK:
				listDone = true
			case transient(br.ResultCode):
				last = batchErr(br)
			default:
				return interpretError(batchErr(br))
			}
		}
		if metaDone && listDone {
			return nil
		}
		if last == nil {
			last = errUnavailable("tube registration did not complete")
		}
		if werr := b.wait(ctx, q.stopCh(), last); werr != nil {
			return werr
		}
	}
}

// allocIDs returns n new job IDs, unique across every client of the
// store: blocks of idBlock IDs are taken from a counter record with one
// add-and-read command, and used for at most idBlockLife.
func (q *Queue) allocIDs(ctx context.Context, n int) ([]beanspike.ID, error) {
	s := q.s
	out := make([]beanspike.ID, 0, n)
	take := func() {
		for len(out) < n && s.idNext != 0 && s.idNext <= s.idEnd {
			out = append(out, beanspike.ID(s.idNext))
			s.idNext++
		}
	}
	now := q.nowNs()
	s.mu.Lock()
	if now-s.idAt > int64(idBlockLife) {
		// The orphan pass counts on no ID being used long after its
		// block was taken.
		s.idNext, s.idEnd = 0, 0
	}
	take()
	s.mu.Unlock()
	if len(out) == n {
		return out, nil
	}
	s.idMu.Lock()
	defer s.idMu.Unlock()
	for len(out) < n {
		s.mu.Lock()
		take()
		s.mu.Unlock()
		if len(out) == n {
			break
		}
		block := max(idBlock, n-len(out))
		var hi int64
		err := q.retry(ctx, func() error {
			rec, err := s.client.Operate(q.plainWritePolicy(ctx), q.counterKey(),
				as.AddOp(as.NewBin(binNext, block)), as.GetBinOp(binNext))
			if err != nil {
				return err
			}
			v, ok := lastInt(rec, binNext)
			if !ok {
				return errUnavailable("ID counter returned %v", rec.Bins[binNext])
			}
			hi = v
			return nil
		})
		if err != nil {
			return nil, err
		}
		s.mu.Lock()
		s.idNext, s.idEnd, s.idAt = uint64(hi-int64(block)+1), uint64(hi), q.nowNs()
		s.mu.Unlock()
	}
	return out, nil
}

// errUnavailable makes an error wrapping ErrUnavailable.
func errUnavailable(format string, args ...any) error {
	return fmt.Errorf("%w: %s", beanspike.ErrUnavailable, fmt.Sprintf(format, args...))
}

// errorIsNotFound tells whether err means a record does not exist.
func errorIsNotFound(err error) bool {
	return errors.Is(err, beanspike.ErrNotFound) || resultCode(err) == types.KEY_NOT_FOUND_ERROR
}
