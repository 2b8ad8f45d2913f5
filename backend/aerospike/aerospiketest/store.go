package aerospiketest

import (
	"bytes"
	"encoding/binary"
	"sort"
	"sync"
)

const partitionCount = 4096

type digest = [digestLength]byte

// partitionID is the partition of a digest, as the client computes it.
func partitionID(d []byte) int {
	return int(binary.LittleEndian.Uint16(d)) & (partitionCount - 1)
}

// partition holds the records of one partition; its lock serialises the
// commands on its records.
type partition struct {
	mu   sync.RWMutex
	recs map[digest]*record
}

// namespace is one namespace's store.
type namespace struct {
	cfg   NamespaceConfig
	parts [partitionCount]partition

	pendMu  sync.Mutex
	pending map[digest]int

	idxMu    sync.RWMutex
	sindexes map[string]*sindex
}

func newNamespace(cfg NamespaceConfig) *namespace {
	n := &namespace{cfg: cfg, pending: map[digest]int{}, sindexes: map[string]*sindex{}}
	for i := range n.parts {
		n.parts[i].recs = map[digest]*record{}
	}
	return n
}

func (n *namespace) partition(d digest) *partition {
	return &n.parts[partitionID(d[:])]
}

// live returns the record for d unless it is missing or expired. The
// partition lock must be held; expired records are left for the next
// write or truncate to replace.
func (p *partition) live(d digest, now uint32) *record {
	r := p.recs[d]
	if r == nil {
		return nil
	}
	if r.expired(now) {
		return nil
	}
	return r
}

// enter registers a transaction on d; it fails when limit transactions are
// already pending. leave must be called after a successful enter.
func (n *namespace) enter(d digest, limit int) bool {
	if limit <= 0 {
		return true
	}
	n.pendMu.Lock()
	defer n.pendMu.Unlock()
	if n.pending[d] >= limit {
		return false
	}
	n.pending[d]++
	return true
}

func (n *namespace) leave(d digest, limit int) {
	if limit <= 0 {
		return
	}
	n.pendMu.Lock()
	defer n.pendMu.Unlock()
	if n.pending[d] <= 1 {
		delete(n.pending, d)
	} else {
		n.pending[d]--
	}
}

func (n *namespace) count(now uint32) int {
	c := 0
	for i := range n.parts {
		p := &n.parts[i]
		p.mu.RLock()
		for _, r := range p.recs {
			if !r.expired(now) {
				c++
			}
		}
		p.mu.RUnlock()
	}
	return c
}

// truncate deletes the records of set (all sets unless useSet) last
// updated before cutoff (Unix nanoseconds, inclusive).
func (n *namespace) truncate(set string, useSet bool, cutoff int64) {
	for i := range n.parts {
		p := &n.parts[i]
		p.mu.Lock()
		for d, r := range p.recs {
			if (!useSet || r.set == set) && r.lut <= cutoff {
				delete(p.recs, d)
			}
		}
		p.mu.Unlock()
	}
}

// entry is a record snapshot taken for a scan or query.
type entry struct {
	d    digest
	rec  *record
	bval int64
}

// snapshot returns the live records of partition pid whose set matches,
// sorted by digest.
func (n *namespace) snapshot(pid int, set string, now uint32) []entry {
	p := &n.parts[pid]
	p.mu.RLock()
	out := make([]entry, 0, len(p.recs))
	for d, r := range p.recs {
		if r.expired(now) {
			continue
		}
		if set != "" && r.set != set {
			continue
		}
		out = append(out, entry{d: d, rec: r})
	}
	p.mu.RUnlock()
	sort.Slice(out, func(i, j int) bool { return bytes.Compare(out[i].d[:], out[j].d[:]) < 0 })
	return out
}

// sindex is a secondary index definition. Queries evaluate it against the
// records at query time, so it is always fully built.
type sindex struct {
	ns, set, name, bin string
	typ                string // NUMERIC, STRING, BLOB, GEO2DSPHERE
	coll               string // DEFAULT, LIST, MAPKEYS, MAPVALUES
	ctx                []byte
	exp                []byte
}

func (n *namespace) createIndex(idx *sindex) string {
	n.idxMu.Lock()
	defer n.idxMu.Unlock()
	if _, ok := n.sindexes[idx.name]; ok {
		return "FAIL:200:index with the same name already exists"
	}
	for _, o := range n.sindexes {
		if o.set == idx.set && o.bin == idx.bin && o.typ == idx.typ && o.coll == idx.coll &&
			bytes.Equal(o.ctx, idx.ctx) && bytes.Equal(o.exp, idx.exp) {
			return "FAIL:200:index with the same definition already exists"
		}
	}
	n.sindexes[idx.name] = idx
	return "OK"
}

func (n *namespace) dropIndex(name string) bool {
	n.idxMu.Lock()
	defer n.idxMu.Unlock()
	if _, ok := n.sindexes[name]; !ok {
		return false
	}
	delete(n.sindexes, name)
	return true
}

func (n *namespace) index(name string) *sindex {
	n.idxMu.RLock()
	defer n.idxMu.RUnlock()
	return n.sindexes[name]
}

func (n *namespace) indexes() []*sindex {
	n.idxMu.RLock()
	defer n.idxMu.RUnlock()
	out := make([]*sindex, 0, len(n.sindexes))
	for _, idx := range n.sindexes {
		out = append(out, idx)
	}
	return out
}
