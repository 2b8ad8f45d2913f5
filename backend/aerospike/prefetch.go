package aerospike

import (
	"bytes"
	"slices"

	as "github.com/aerospike/aerospike-client-go/v8"

	"github.com/beanspike/beanspike"
)

// Read-ahead of job records. A Reserve that has its job's record in hand
// claims the job with one single-record command, instead of the claim and
// a read of the record. A job record never changes once written and a job
// ID is never used twice, so a record read before the claim is the record
// the claim would read after it; the compare-and-set on the index entry
// still decides who gets the job.
//
// When a claim goes out while the process holds the records of fewer
// than aheadLow of a tube's known ready jobs (its ready cache picture),
// the claim's command also reads the records of the next ones, up to
// aheadJobs held. Only records whose body is at most aheadBody bytes are
// sent (a filter on the size bin: larger bodies are read after the claim,
// as without read-ahead), and nothing is read ahead while the process
// holds aheadBudget bytes. A record read ahead leaves with its entry:
// when the job is claimed (by this process or, as a failed claim shows,
// by another), when it leaves the ready map, or when the picture is
// dropped (a tube deleted); a picture found wrong by a failed claim keeps
// them until the next read, and a new picture keeps the records of the
// jobs it still shows.
// A job this process put is held the same way, from what it wrote.
const (
	aheadJobs   = 32
	aheadLow    = 8
	aheadBody   = 8 << 10
	aheadBudget = 4 << 20
)

// aheadRec is a job record read ahead; without rec, a mark that the
// job's record is being read ahead (pending) or is not to be.
type aheadRec struct {
	shard   int
	kv      kv
	rec     *as.Record
	size    int
	pending bool
}

// ahead names a job whose record a claim reads ahead.
type ahead struct {
	ref shardRef
	kv  kv
}

// aheadPolicy returns the read policy of a read-ahead: only records with
// small bodies are sent.
func aheadPolicy() *as.BatchReadPolicy {
	p := as.NewBatchReadPolicy()
	p.FilterExpression = as.ExpLessEq(as.ExpIntBin(binSize), as.ExpIntVal(aheadBody))
	return p
}

// wanting returns the jobs of tubes whose records a claim of cands should
// read ahead: none for a tube whose picture holds, or is reading,
// aheadLow records or more; otherwise the most urgent known ready jobs,
// taking each index record's in turn, without a record or mark, until the
// picture would hold aheadJobs.
func (c *readyCache) wanting(tubes []string, cands []cand) []ahead {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.bodyBytes >= aheadBudget {
		return nil
	}
	var out []ahead
	for _, t := range tubes {
		tp := c.tubes[t]
		if tp == nil || tp.stale || tp.held >= aheadLow {
			continue
		}
		// Records being read count as held.
		n := aheadJobs - tp.held
		for _, h := range tp.bodies {
			if h.pending {
				n--
			}
		}
		if aheadJobs-n >= aheadLow {
			continue
		}
		for depth := 0; n > 0; depth++ {
			more := false
			for s := range tp.shards {
				ready := tp.shards[s].ready
				if depth >= len(ready) {
					continue
				}
				more = true
				p := ready[depth]
				if _, ok := tp.bodies[p.id]; ok {
					continue
				}
				if _, ok := c.taken[p.id]; ok {
					continue
				}
				if slices.ContainsFunc(cands, func(cd cand) bool { return cd.id == p.id }) {
					continue
				}
				out = append(out, ahead{shardRef{t, s}, p})
				c.holdBody(tp, aheadRec{shard: s, kv: p, pending: true})
				if n--; n == 0 {
					break
				}
			}
			if !more {
				break
			}
		}
	}
	return out
}

// keep records the result of reading ahead the record of a, which
// wanting marked pending: rec; or, without rec, that the record is not to
// be read ahead (mark) or may be tried again (!mark). A record is kept
// only while the picture still shows a's entry ready, within the budget.
func (c *readyCache) keep(a ahead, rec *as.Record, mark bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	tp := c.tubes[a.ref.tube]
	if tp == nil {
		return
	}
	if h, ok := tp.bodies[a.kv.id]; !ok || !h.pending || h.kv != a.kv {
		return // dropped meanwhile, with its entry or its picture
	}
	delete(tp.bodies, a.kv.id)
	h := aheadRec{shard: a.ref.shard, kv: a.kv}
	switch {
	case rec != nil:
		body, _ := rec.Bins[binBody].([]byte)
		if c.bodyBytes+len(body) > aheadBudget {
			return
		}
		h.rec, h.size = rec, len(body)
	case !mark:
		return
	}
	c.holdBody(tp, h)
}

// addPut records that this process put the ready job j, whose entry is
// p, into the index record ref, as add does; and, when the picture shows
// it and its body is small enough for the budget, keeps a copy of its
// record as if read ahead: a job put and reserved in one process is
// claimed without reading its record.
func (c *readyCache) addPut(ref shardRef, p kv, j *newJob) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.addLocked(ref, p)
	tp := c.tubes[ref.tube]
	if tp == nil || ref.shard >= len(tp.shards) || j.size > aheadBody ||
		c.bodyBytes+len(j.stored) > aheadBudget || !tp.shows(ref.shard, p) {
		return
	}
	if _, ok := tp.bodies[p.id]; ok {
		return
	}
	bins := as.BinMap{binTube: j.tube, binEnc: j.enc()}
	if len(j.stored) > 0 {
		// The caller may reuse the body it put.
		bins[binBody] = bytes.Clone(j.stored)
	}
	c.holdBody(tp, aheadRec{shard: ref.shard, kv: p, rec: &as.Record{Bins: bins}, size: len(j.stored)})
}

// shows tells whether p shows entry x ready in index record shard.
func (p *tubePicture) shows(shard int, x kv) bool {
	ready := p.shards[shard].ready
	i, found := slices.BinarySearchFunc(ready, x, readyLess)
	return found && ready[i].id == x.id
}

// body returns the record read ahead for job id in p, if any.
func (p *tubePicture) body(id beanspike.ID) *as.Record {
	if p == nil {
		return nil
	}
	return p.bodies[id].rec
}

// carryBodies moves to the new picture p the records read ahead in old
// for the jobs p still shows ready; the others are dropped. p takes over
// old's map, which nothing else refers to. The caller holds c.mu.
func (c *readyCache) carryBodies(old, p *tubePicture) {
	if old == nil {
		return
	}
	for id, h := range old.bodies {
		if h.shard < len(p.shards) && p.shows(h.shard, h.kv) {
			if h.rec != nil {
				p.held++
			}
			continue
		}
		c.bodyBytes -= h.size
		delete(old.bodies, id)
	}
	p.bodies, old.bodies, old.held = old.bodies, nil, 0
}

// holdBody puts h, a record read ahead or a mark, into tp, counting its
// record. The caller holds c.mu.
func (c *readyCache) holdBody(tp *tubePicture, h aheadRec) {
	if tp.bodies == nil {
		tp.bodies = map[beanspike.ID]aheadRec{}
	}
	tp.bodies[h.kv.id] = h
	if h.rec != nil {
		tp.held++
		c.bodyBytes += h.size
	}
}

// dropBody drops the record read ahead, or the mark, of job id from tp.
// The caller holds c.mu.
func (c *readyCache) dropBody(tp *tubePicture, id beanspike.ID) {
	if tp == nil {
		return
	}
	h, ok := tp.bodies[id]
	if !ok {
		return
	}
	if h.rec != nil {
		tp.held--
		c.bodyBytes -= h.size
	}
	delete(tp.bodies, id)
}
