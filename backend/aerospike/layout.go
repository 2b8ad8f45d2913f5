package aerospike

import (
	"encoding/binary"
	"strconv"
	"time"

	as "github.com/aerospike/aerospike-client-go/v8"

	"github.com/beanspike/beanspike"
)

// Bins of a job record. The record is the truth about its job: what it
// is (tube, body, size, put time) and where it stands (state, priority,
// times, owner, counters). See the package doc.
const (
	binTube     = "tube" // tube name
	binBody     = "b"    // body as stored
	binEnc      = "enc"  // 1 when the body is codec-encoded (compressed)
	binSize     = "sz"   // original body size
	binCreated  = "ct"   // put time (ns)
	binState    = "s"    // beanspike.State
	binPri      = "p"    // priority
	binTTR      = "ttr"  // TTR (ns)
	binAt       = "at"   // ready: became ready; delayed: due; reserved: deadline; buried: buried at (ns)
	binLease    = "rk"   // reserved: the time its lease hint is filed under (ns)
	binOwner1   = "o1"   // reserved: owner, first half
	binOwner2   = "o2"   // reserved: owner, second half
	binReserves = "nr"
	binTimeouts = "nt"
	binReleases = "nl"
	binBuries   = "nb"
	binKicks    = "nk"
	binDelay    = "dl" // last delay (ns)
	binReason   = "why"
	binChanged  = "mt" // when the state last changed (ns)
	binStored   = "ss" // size of the body as stored
)

// jobStateBins are the bins a decision about a job reads: everything but
// the body.
var jobStateBins = []string{
	binTube, binEnc, binSize, binCreated, binState, binPri, binTTR, binAt, binLease,
	binOwner1, binOwner2, binReserves, binTimeouts, binReleases, binBuries, binKicks,
	binDelay, binReason, binChanged, binStored,
}

// Bins of index records.
const (
	binFences  = "f"  // directory: fence -> segment number
	binEntries = "r"  // segment: hint key -> 0
	binSealed  = "sl" // segment: merged away, takes no more hints
	binLock    = "lk" // segment: split under way since (ns)
	binHi      = "hi" // segment: upper fence (a string of the key's bytes)
	binNext    = "nx" // segment: the new segment of a split under way
	// binKeyPrefix holds a segment's key prefix ([WithKeyPrefix]), so that
	// a store's segments can be found by a scan.
	binKeyPrefix = "kp"
)

// Bins of a tube's meta record.
const (
	binEpoch     = "ep" // incarnation of the tube: part of every index key
	binPauseEnd  = "pe" // end of the pause (ns), 0 when not paused
	binPauseDur  = "pd" // duration of the last pause (ns)
	binPauses    = "np" // pause count
	binNextID    = "next"
	binListTubes = "t"
)

// Bins of a counter record, one of [counterShards] per tube incarnation.
const (
	cntReady    = "r"
	cntDelayed  = "d"
	cntReserved = "x"
	cntBuried   = "b"
	cntUrgent   = "u"
	cntTotal    = "t"
	cntDeletes  = "del"
	cntComp     = "cmp"
	cntSkipped  = "skp"
)

// counterShards is how many counter records a tube's counts are spread
// over, so that no one record takes every write of a busy tube.
const counterShards = 8

// Index kinds.
const (
	kindReady    = 'r' // key: priority, became ready, ID
	kindDelayed  = 'd' // key: due, ID
	kindReserved = 'x' // key: lease time, ID
	kindBuried   = 'b' // key: buried at, ID
)

// kindOf returns the index kind that holds the hints of jobs in state st.
func kindOf(st beanspike.State) byte {
	switch st {
	case beanspike.Ready:
		return kindReady
	case beanspike.Delayed:
		return kindDelayed
	case beanspike.Reserved:
		return kindReserved
	}
	return kindBuried
}

// ixRef names one index of one tube incarnation.
type ixRef struct {
	tube string
	ep   int64
	kind byte
}

// hint is an entry of an index: a pointer to a job, which readers check
// against the job record before they act on it.
type hint struct {
	pri uint32 // ready only
	t   int64  // became ready, due, lease time or buried at (ns)
	id  beanspike.ID
	ttr int64 // the job's TTR, the hint's value: Reserve needs it before it reads the job
}

// same tells whether two hints have the same key.
func (h hint) same(o hint) bool { return h.pri == o.pri && h.t == o.t && h.id == o.id }

// key encodes h as the key of its index: big-endian, fixed width, so
// that the server's byte order is the order of the index.
func (h hint) key(kind byte) []byte {
	if kind == kindReady {
		b := make([]byte, 20)
		binary.BigEndian.PutUint32(b, h.pri)
		binary.BigEndian.PutUint64(b[4:], uint64(h.t))
		binary.BigEndian.PutUint64(b[12:], uint64(h.id))
		return b
	}
	b := make([]byte, 16)
	binary.BigEndian.PutUint64(b, uint64(h.t))
	binary.BigEndian.PutUint64(b[8:], uint64(h.id))
	return b
}

// parseHint decodes the key of an index of kind.
func parseHint(kind byte, b []byte) (hint, bool) {
	if kind == kindReady {
		if len(b) != 20 {
			return hint{}, false
		}
		return hint{
			pri: binary.BigEndian.Uint32(b),
			t:   int64(binary.BigEndian.Uint64(b[4:])),
			id:  beanspike.ID(binary.BigEndian.Uint64(b[12:])),
		}, true
	}
	if len(b) != 16 {
		return hint{}, false
	}
	return hint{
		t:  int64(binary.BigEndian.Uint64(b)),
		id: beanspike.ID(binary.BigEndian.Uint64(b[8:])),
	}, true
}

// hintLess orders hints of one index.
func hintLess(a, b hint) int {
	switch {
	case a.pri != b.pri:
		return cmp64(int64(a.pri), int64(b.pri))
	case a.t != b.t:
		return cmp64(a.t, b.t)
	}
	return cmp64(int64(a.id), int64(b.id))
}

func cmp64(a, b int64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// jobRec is a job record as read.
type jobRec struct {
	id       beanspike.ID
	gen      uint32
	tube     string
	enc      bool
	size     int
	created  int64
	state    beanspike.State
	pri      uint32
	ttr      int64
	at       int64
	lease    int64
	owner    [2]int64
	reserves uint32
	timeouts uint32
	releases uint32
	buries   uint32
	kicks    uint32
	delay    int64
	reason   string
	changed  int64
	stored   int
	body     []byte // nil unless read
}

// parseJob decodes a job record.
func parseJob(id beanspike.ID, rec *as.Record) (jobRec, bool) {
	if rec == nil {
		return jobRec{}, false
	}
	b := rec.Bins
	i := func(name string) int64 { n, _ := lastInt(rec, name); return n }
	j := jobRec{
		id:       id,
		gen:      rec.Generation,
		size:     int(i(binSize)),
		created:  i(binCreated),
		state:    beanspike.State(i(binState)),
		pri:      uint32(i(binPri)),
		ttr:      i(binTTR),
		at:       i(binAt),
		lease:    i(binLease),
		owner:    [2]int64{i(binOwner1), i(binOwner2)},
		reserves: uint32(i(binReserves)),
		timeouts: uint32(i(binTimeouts)),
		releases: uint32(i(binReleases)),
		buries:   uint32(i(binBuries)),
		kicks:    uint32(i(binKicks)),
		delay:    i(binDelay),
		changed:  i(binChanged),
		stored:   int(i(binStored)),
		enc:      i(binEnc) == 1,
	}
	j.tube, _ = lastValue(rec, binTube).(string)
	j.reason, _ = lastValue(rec, binReason).(string)
	if body, ok := lastValue(rec, binBody).([]byte); ok {
		j.body = body
	} else if _, ok := b[binBody]; ok {
		j.body = []byte{}
	}
	if j.state < beanspike.Ready || j.state > beanspike.Buried || j.tube == "" {
		return jobRec{}, false
	}
	return j, true
}

// effective returns the state the job is in at now: a delayed job whose
// time came is ready, and so is a reserved job whose reservation lapsed,
// even before a sweep moved them.
func (j *jobRec) effective(now int64) beanspike.State {
	switch j.state {
	case beanspike.Delayed, beanspike.Reserved:
		if j.at <= now {
			return beanspike.Ready
		}
	}
	return j.state
}

// hint returns the hint by which the job is found in its state's index.
func (j *jobRec) hint() hint {
	switch j.state {
	case beanspike.Ready:
		return hint{pri: j.pri, t: j.at, id: j.id, ttr: j.ttr}
	case beanspike.Reserved:
		return hint{t: j.lease, id: j.id, ttr: j.ttr}
	}
	return hint{t: j.at, id: j.id, ttr: j.ttr}
}

// matches tells whether h, found in the index of kind, points at j as it
// stands.
func (j *jobRec) matches(kind byte, h hint) bool {
	return kindOf(j.state) == kind && j.hint().same(h)
}

// lastValue returns the last result for bin in rec.
func lastValue(rec *as.Record, bin string) any {
	r := results(rec.Bins, bin)
	if len(r) == 0 {
		return nil
	}
	return r[len(r)-1]
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

func toInt(v any) (int64, bool) {
	switch x := v.(type) {
	case int:
		return int64(x), true
	case int64:
		return x, true
	case int32:
		return int64(x), true
	case int16:
		return int64(x), true
	case int8:
		return int64(x), true
	case uint:
		return int64(x), true
	case uint64:
		return int64(x), true
	case uint32:
		return int64(x), true
	case uint16:
		return int64(x), true
	case uint8:
		return int64(x), true
	}
	return 0, false
}

// --- keys ------------------------------------------------------------------

func (q *Queue) jobKey(id beanspike.ID) *as.Key {
	if q.s.cfg.keyPrefix != "" {
		k, _ := as.NewKey(q.s.cfg.namespace, q.s.setJobs, q.s.keyPrefix()+strconv.FormatUint(uint64(id), 10))
		return k
	}
	k, _ := as.NewKey(q.s.cfg.namespace, q.s.setJobs, int64(id))
	return k
}

// metaRecordKey returns the key of the store's meta record name.
func (s *store) metaRecordKey(name string) (*as.Key, error) {
	return as.NewKey(s.cfg.namespace, s.setMeta, s.keyPrefix()+name)
}

// keyPrefix returns what starts the string keys of the store's records:
// nothing without a key prefix; with one, a byte that starts no key of a
// store without one (tube names are printable), the prefix and a NUL.
func (s *store) keyPrefix() string {
	if s.cfg.keyPrefix == "" {
		return ""
	}
	return "\x01" + s.cfg.keyPrefix + "\x00"
}

func (s *store) ixName(r ixRef) string {
	return s.keyPrefix() + r.tube + "\x00" + strconv.FormatInt(r.ep, 36) + "\x00" + string(r.kind)
}

// dirKey returns the key of an index's directory record.
func (s *store) dirKey(r ixRef) *as.Key {
	k, _ := as.NewKey(s.cfg.namespace, s.setIdx, "D"+s.ixName(r))
	return k
}

// segKey returns the key of segment seg of an index.
func (s *store) segKey(r ixRef, seg int64) *as.Key {
	k, _ := as.NewKey(s.cfg.namespace, s.setIdx, "S"+s.ixName(r)+"\x00"+strconv.FormatInt(seg, 36))
	return k
}

func (q *Queue) metaKey(tube string) *as.Key {
	k, _ := q.s.metaRecordKey("tube\x00" + tube)
	return k
}

// counterKey returns the key of counter record k of a tube incarnation.
func (q *Queue) counterKey(tube string, ep int64, k int) *as.Key {
	c, _ := q.s.metaRecordKey("cnt\x00" + tube + "\x00" + strconv.FormatInt(ep, 36) + "\x00" + strconv.Itoa(k))
	return c
}

func (q *Queue) listKey() *as.Key {
	k, _ := q.s.metaRecordKey("tubes")
	return k
}

func (q *Queue) idKey() *as.Key {
	k, _ := q.s.metaRecordKey("ids")
	return k
}

func dur(ns int64) time.Duration { return time.Duration(ns) }
