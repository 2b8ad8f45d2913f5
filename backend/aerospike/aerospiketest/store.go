package aerospiketest

import (
	"bytes"
	"encoding/binary"
	"sort"
	"sync"
	"sync/atomic"
	"time"
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

// Set name limits of a namespace, as in Aerospike.
const (
	// maxSetName is the longest set name, in bytes.
	maxSetName = 63
	// maxSets is how many set names a namespace holds until the server
	// restarts: names are never released, even when their records are gone.
	maxSets = 4095
)

// namespace is one namespace's store.
type namespace struct {
	cfg   NamespaceConfig
	parts [partitionCount]partition

	// Settings that set-config changes at run time; cfg holds their
	// initial values.
	maxRecordSize atomic.Int64
	nsupPeriod    atomic.Int64 // seconds
	allowTTL      atomic.Bool

	setMu    sync.RWMutex
	setIndex map[string]struct{}
	setNames []string // in order of first use

	pendMu  sync.Mutex
	pending map[digest]int

	idxMu    sync.RWMutex
	sindexes map[string]*sindex
}

func newNamespace(cfg NamespaceConfig) *namespace {
	n := &namespace{cfg: cfg, pending: map[digest]int{}, sindexes: map[string]*sindex{}, setIndex: map[string]struct{}{}}
	n.maxRecordSize.Store(int64(cfg.MaxRecordSize))
	n.nsupPeriod.Store(int64(cfg.NsupPeriod / time.Second))
	n.allowTTL.Store(cfg.AllowTTLWithoutNsup)
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

// useSet registers set as a set name of the namespace, if it is not one
// already. It reports false when the namespace holds maxSets names and set
// is not among them. The empty name (no set) is always usable.
func (n *namespace) useSet(set string) bool {
	if set == "" {
		return true
	}
	n.setMu.RLock()
	_, ok := n.setIndex[set]
	n.setMu.RUnlock()
	if ok {
		return true
	}
	n.setMu.Lock()
	defer n.setMu.Unlock()
	if _, ok := n.setIndex[set]; ok {
		return true
	}
	if len(n.setNames) >= maxSets {
		return false
	}
	n.setIndex[set] = struct{}{}
	n.setNames = append(n.setNames, set)
	return true
}

// sets returns the set names of the namespace in order of first use.
func (n *namespace) sets() []string {
	n.setMu.RLock()
	defer n.setMu.RUnlock()
	return append([]string(nil), n.setNames...)
}

// hasSet reports whether set is a set name of the namespace.
func (n *namespace) hasSet(set string) bool {
	n.setMu.RLock()
	defer n.setMu.RUnlock()
	_, ok := n.setIndex[set]
	return ok
}

// setObjects returns the number of live records of each set.
func (n *namespace) setObjects(now uint32) map[string]int {
	out := map[string]int{}
	for i := range n.parts {
		p := &n.parts[i]
		p.mu.RLock()
		for _, r := range p.recs {
			if !r.expired(now) {
				out[r.set]++
			}
		}
		p.mu.RUnlock()
	}
	return out
}

// truncate deletes the records of set (all sets unless useSet) last
// updated strictly before cutoff, a time in whole milliseconds (Unix
// nanoseconds): record update times have millisecond resolution, and a
// record updated in the cutoff's millisecond survives.
func (n *namespace) truncate(set string, useSet bool, cutoff int64) {
	for i := range n.parts {
		p := &n.parts[i]
		p.mu.Lock()
		for d, r := range p.recs {
			if (!useSet || r.set == set) && r.lut < cutoff {
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

// Outcomes of createIndex.
const (
	indexCreated   = iota // a new index
	indexExists           // the same name and definition: nothing to do
	indexRenamed          // the definition existed under another name
	indexDifferent        // the name exists with another definition
)

// sameDefinition reports whether a and b index the same values.
func (a *sindex) sameDefinition(b *sindex) bool {
	return a.set == b.set && a.bin == b.bin && a.typ == b.typ && a.coll == b.coll &&
		bytes.Equal(a.ctx, b.ctx) && bytes.Equal(a.exp, b.exp)
}

// createIndex adds idx as a real server does: creating an index that exists
// with the same definition is not an error, and creating one whose
// definition exists under another name renames that index.
func (n *namespace) createIndex(idx *sindex) int {
	n.idxMu.Lock()
	defer n.idxMu.Unlock()
	if o, ok := n.sindexes[idx.name]; ok {
		if o.sameDefinition(idx) {
			return indexExists
		}
		return indexDifferent
	}
	for name, o := range n.sindexes {
		if o.sameDefinition(idx) {
			delete(n.sindexes, name)
			n.sindexes[idx.name] = idx
			return indexRenamed
		}
	}
	n.sindexes[idx.name] = idx
	return indexCreated
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
