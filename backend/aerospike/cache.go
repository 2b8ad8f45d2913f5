package aerospike

import (
	"math"
	"math/rand/v2"
	"slices"
	"sync"
	"time"

	"github.com/beanspike/beanspike"
)

// The ready cache is a process's picture of the most urgent ready jobs of
// the tubes its clients reserve from, so that most Reserve calls go
// straight to the claim instead of reading every index record of the
// tube first. It is a hint, never the truth: every claim is still a
// compare-and-swap on the index entry, so a stale picture costs a failed
// claim, never a wrong reservation.
//
// A view read fills a tube's picture: the first cacheDepth ready entries
// of each index record, the earliest due time of its delayed and reserved
// entries, and the tube's pause. The writes of this process keep it up to
// date (a put or release adds its entry, a claim or delete takes its entry
// out), so within a process Reserve picks exactly as it would from a
// fresh read. Writes of other processes are seen at the next read: a
// picture is used for at most cacheTTL, and never to decide that nothing
// is ready, nor once a due time has passed (a sweep is needed), nor once
// an index record whose ready map was read only in part has no known
// entries left.

// cacheDepth is how many ready entries per index record a view read for
// Reserve takes.
const cacheDepth = 8

// cacheTTL is how long a tube's picture is used before it is read again.
const cacheTTL = 5 * time.Millisecond

// readyCache holds the pictures of the tubes.
type readyCache struct {
	mu    sync.Mutex
	tubes map[string]*tubePicture
	// taken holds the jobs taken for a claim: 0 while the claim is in
	// flight, then the generation at which it ended. A view read that
	// began before then may still show the job ready, and must not bring
	// it back into the picture.
	taken map[beanspike.ID]uint64
	gen   uint64
	// bodyBytes is the size of the bodies read ahead, in all pictures.
	bodyBytes int
	// ttl replaces cacheTTL when set (tests that count commands set it
	// long, so that the count does not depend on the machine's speed).
	ttl time.Duration
}

// tubePicture is a picture of one tube.
type tubePicture struct {
	gen       uint64 // the cache generation when its read began
	at        int64  // when it was read (ns, reading client's clock)
	pauseTill int64
	shards    []shardPicture
	// bodies holds the job records read ahead for known ready jobs, and
	// the marks of those being read or not to be read (see prefetch.go).
	bodies map[beanspike.ID]aheadRec
	held   int  // records in bodies
	stale  bool // not to be used: the next read replaces it
}

// shardPicture is the picture of one index record.
type shardPicture struct {
	ready    []kv  // known ready entries, most urgent first
	complete bool  // ready held every ready entry when it was read
	due      int64 // earliest due time of a delayed or reserved entry
}

// begin returns the generation to give store for a view read that
// begins now.
func (c *readyCache) begin() uint64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.gen
}

// store records a view of tubes, read with depth ready entries per index
// record, whose read began at generation gen. A tube whose picture comes
// from a later read keeps it.
func (c *readyCache) store(tvs []tubeView, now int64, depth int, gen uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.tubes == nil {
		c.tubes = map[string]*tubePicture{}
	}
	// Claims that ended before the read began show in it.
	for id, g := range c.taken {
		if g != 0 && g <= gen {
			delete(c.taken, id)
		}
	}
	for _, tv := range tvs {
		old := c.tubes[tv.name]
		if old != nil && old.gen > gen {
			continue
		}
		p := &tubePicture{gen: gen, at: now, pauseTill: tv.pauseTill, shards: make([]shardPicture, len(tv.shards))}
		for i, sv := range tv.shards {
			ready := make([]kv, 0, len(sv.ready))
			for _, r := range sv.ready {
				if _, busy := c.taken[r.id]; !busy {
					ready = append(ready, r)
				}
			}
			slices.SortFunc(ready, readyLess)
			p.shards[i] = shardPicture{
				ready:    ready,
				complete: len(sv.ready) < depth,
				due:      sv.next,
			}
		}
		c.carryBodies(old, p)
		c.tubes[tv.name] = p
	}
}

// take removes from the pictures of tubes and returns up to max ready
// jobs, most urgent first (across tubes as rank orders them), skipping
// paused tubes. With spread > 1 it returns one job picked at random
// among the first spread. It returns nil when any picture is missing,
// too old or not enough to decide, or when it knows of no ready job.
func (c *readyCache) take(tubes []string, now int64, max, spread int) []cand {
	c.mu.Lock()
	defer c.mu.Unlock()
	type head struct {
		p    *tubePicture
		tube string
	}
	heads := make([]head, 0, len(tubes))
	for _, t := range tubes {
		p := c.tubes[t]
		ttl := cacheTTL
		if c.ttl > 0 {
			ttl = c.ttl
		}
		if p == nil || p.stale || now < p.at || now-p.at >= int64(ttl) {
			return nil
		}
		for _, sp := range p.shards {
			if sp.due <= now {
				return nil
			}
		}
		if p.pauseTill > now {
			continue
		}
		heads = append(heads, head{p, t})
	}
	want := max
	if spread > 1 {
		want = spread
	}
	var out []cand
	for len(out) < want {
		bt, bs := -1, -1
		for i, h := range heads {
			s, ok := h.p.best()
			if !ok {
				// This tube's picture cannot decide: a job it hides
				// might come first.
				c.putBack(out)
				return nil
			}
			if s < 0 {
				continue
			}
			if bt >= 0 {
				x, y := h.p.shards[s].ready[0], heads[bt].p.shards[bs].ready[0]
				if x.e.pri > y.e.pri || x.e.pri == y.e.pri && x.id > y.id {
					continue
				}
			}
			bt, bs = i, s
		}
		if bt < 0 {
			break
		}
		sp := &heads[bt].p.shards[bs]
		out = append(out, cand{shardRef{heads[bt].tube, bs}, sp.ready[0], heads[bt].p.body(sp.ready[0].id)})
		sp.ready = sp.ready[1:]
	}
	if spread > 1 && len(out) > 1 {
		i := rand.IntN(len(out))
		c.putBack(append(out[:i:i], out[i+1:]...))
		out = out[i : i+1]
	}
	if c.taken == nil {
		c.taken = map[beanspike.ID]uint64{}
	}
	for _, cd := range out {
		c.taken[cd.id] = 0
	}
	return out
}

// done records that the claims of cands, taken by take, ended.
func (c *readyCache) done(cands []cand) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.gen++
	for _, cd := range cands {
		if _, ok := c.taken[cd.id]; ok {
			c.taken[cd.id] = c.gen
		}
		// Claimed, or taken by another client: a record read ahead is
		// given to one job at most.
		c.dropBody(c.tubes[cd.ref.tube], cd.id)
	}
}

// best returns the index record holding the most urgent known ready job
// of p, -1 when p knows of none, and ok false when an index record read
// in part has no known entries left, so that p cannot tell.
func (p *tubePicture) best() (shard int, ok bool) {
	b := -1
	for i, sp := range p.shards {
		if len(sp.ready) == 0 {
			if !sp.complete {
				return -1, false
			}
			continue
		}
		if b < 0 || readyLess(sp.ready[0], p.shards[b].ready[0]) < 0 {
			b = i
		}
	}
	return b, true
}

// putBack returns taken jobs that were not claimed to their pictures.
// The caller holds c.mu.
func (c *readyCache) putBack(cands []cand) {
	for _, cd := range cands {
		c.addLocked(cd.ref, cd.kv)
	}
}

// add records that job id became ready with entry e in the index record
// ref.
func (c *readyCache) add(ref shardRef, p kv) {
	c.mu.Lock()
	c.addLocked(ref, p)
	c.mu.Unlock()
}

func (c *readyCache) addLocked(ref shardRef, p kv) {
	tp := c.tubes[ref.tube]
	if tp == nil || ref.shard >= len(tp.shards) {
		return
	}
	sp := &tp.shards[ref.shard]
	i, found := slices.BinarySearchFunc(sp.ready, p, readyLess)
	if found {
		sp.ready[i] = p
		return
	}
	if i == len(sp.ready) && !sp.complete {
		return // beyond what the picture knows of this index record
	}
	sp.ready = slices.Insert(sp.ready, i, p)
}

// drop records that job id left the ready map of the index record ref.
func (c *readyCache) drop(ref shardRef, id beanspike.ID) {
	c.mu.Lock()
	defer c.mu.Unlock()
	tp := c.tubes[ref.tube]
	if tp == nil || ref.shard >= len(tp.shards) {
		return
	}
	sp := &tp.shards[ref.shard]
	sp.ready = slices.DeleteFunc(sp.ready, func(p kv) bool { return p.id == id })
	c.dropBody(tp, id)
}

// due records that an entry of the index record ref falls due at t.
func (c *readyCache) due(ref shardRef, t int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	tp := c.tubes[ref.tube]
	if tp == nil || ref.shard >= len(tp.shards) {
		return
	}
	sp := &tp.shards[ref.shard]
	sp.due = min(sp.due, t)
}

// stale makes the picture of tube unusable, as after a claim showed it
// wrong: the next Reserve reads the tube again. The records read ahead
// stay, for the next picture to keep those of the jobs it still shows.
func (c *readyCache) stale(tube string) {
	c.mu.Lock()
	if tp := c.tubes[tube]; tp != nil {
		tp.stale = true
	}
	c.mu.Unlock()
}

// forget drops the picture of tube, with its records read ahead.
func (c *readyCache) forget(tube string) {
	c.mu.Lock()
	if tp := c.tubes[tube]; tp != nil {
		for id := range tp.bodies {
			c.dropBody(tp, id)
		}
		delete(c.tubes, tube)
	}
	c.mu.Unlock()
}

// moved records moves applied to the index record ref.
func (c *readyCache) moved(ref shardRef, moves []move) {
	for _, m := range moves {
		if m.from == binReady && m.to != binReady {
			c.drop(ref, m.id)
		}
		switch m.to {
		case binReady:
			if m.from == binReady {
				c.drop(ref, m.id)
			}
			c.add(ref, kv{m.id, m.new})
		case binDelayed, binReserved:
			c.due(ref, m.new.k1)
		}
	}
}

// noDue is the due time of an index record with nothing delayed or
// reserved.
const noDue = math.MaxInt64
