package aerospike

import (
	"cmp"
	"encoding/binary"
	"math/bits"
	"time"

	as "github.com/aerospike/aerospike-client-go/v8"

	"github.com/beanspike/beanspike"
)

// Bin names. Aerospike limits them to 15 bytes.
const (
	// Index (shard) records.
	binReady    = "ready"    // map id -> entry, ranked by [pri, seq]
	binDelayed  = "delayed"  // map id -> entry, ranked by [due, seq]
	binReserved = "reserved" // map id -> entry, ranked by [deadline, seq]
	binBuried   = "buried"   // map id -> entry, ranked by [bury seq]
	binDeleting = "deleting" // map id -> time the delete began (ns)
	binTotal    = "total"    // jobs ever put into the shard
	binDeletes  = "deletes"  // Delete calls that removed a job
	binComp     = "comp"     // puts stored compressed
	binSkip     = "skip"     // puts that asked for compression in vain

	// Job records.
	binTube = "tube"
	binBody = "body"
	binEnc  = "enc"  // 1 when body is codec-encoded (compressed)
	binSize = "size" // original body length
	binPut  = "put"  // put time (ns)

	// Tube meta records.
	binName      = "name"
	binPauses    = "pauses"
	binPause     = "pause"     // duration of the current or last pause (ns)
	binPauseTill = "pausetill" // end of the current pause (ns); 0 when none

	// Store records.
	binTubes  = "tubes"  // tube list: map name -> creation time (ms)
	binShards = "shards" // store configuration: shard count
	binNext   = "next"   // job ID counter
)

// stateBins lists the index maps that hold live jobs, in State order.
var stateBins = [...]string{binReady, binDelayed, binReserved, binBuried}

func binState(bin string) beanspike.State {
	switch bin {
	case binReady:
		return beanspike.Ready
	case binDelayed:
		return beanspike.Delayed
	case binReserved:
		return beanspike.Reserved
	case binBuried:
		return beanspike.Buried
	}
	return 0
}

// entry is a job's index entry: everything about a job that changes.
// It is stored as a three-element list [k1, k2, rest]: k1 and k2 rank the
// entry in its map, and rest packs the other fields as varints followed
// by the bury reason, which keeps entries small and cheap to copy. Times
// are nanoseconds since the Unix epoch, durations nanoseconds.
type entry struct {
	// k1, k2 rank the entry in its map: ready [priority, ready seq],
	// delayed [due, seq], reserved [deadline, seq], buried [bury seq, 0].
	k1, k2 int64
	pri    uint32
	ttr    int64
	// Counters, as in beanspike.JobStats.
	reserves, timeouts, releases, buries, kicks uint32
	// delay is the delay the job was last put or released with.
	delay int64
	// owner is the client holding a reserved job; zero otherwise.
	owner [2]int64
	// put is when the job was put.
	put    int64
	reason string
}

// list returns e as stored, as the client's generic values.
func (e *entry) list() []any {
	return []any{e.k1, e.k2, e.appendPacked(make([]byte, 0, e.packedLen()))}
}

// fields returns the fields of e that do not rank it, in packed order.
func (e *entry) fields() [11]int64 {
	return [...]int64{
		int64(e.pri), e.ttr, int64(e.reserves), int64(e.timeouts), int64(e.releases),
		int64(e.buries), int64(e.kicks), e.delay, e.owner[0], e.owner[1], e.put,
	}
}

// appendPacked appends the fields of e that do not rank it, as varints
// followed by the bury reason.
func (e *entry) appendPacked(b []byte) []byte {
	for _, v := range e.fields() {
		b = binary.AppendVarint(b, v)
	}
	return append(b, e.reason...)
}

// packedLen is the length of what appendPacked appends.
func (e *entry) packedLen() int {
	n := len(e.reason)
	for _, v := range e.fields() {
		ux := uint64(v) << 1
		if v < 0 {
			ux = ^ux
		}
		n += (bits.Len64(ux|1) + 6) / 7
	}
	return n
}

// parseEntry decodes a stored entry.
func parseEntry(v any) (entry, bool) {
	l, ok := v.([]any)
	if !ok || len(l) != 3 {
		return entry{}, false
	}
	k1, ok1 := toInt(l[0])
	k2, ok2 := toInt(l[1])
	b, ok3 := l[2].([]byte)
	if !ok1 || !ok2 || !ok3 {
		return entry{}, false
	}
	var n [11]int64
	for i := range n {
		x, w := binary.Varint(b)
		if w <= 0 {
			return entry{}, false
		}
		n[i] = x
		b = b[w:]
	}
	return entry{
		k1: k1, k2: k2, pri: uint32(n[0]), ttr: n[1],
		reserves: uint32(n[2]), timeouts: uint32(n[3]), releases: uint32(n[4]),
		buries: uint32(n[5]), kicks: uint32(n[6]),
		delay: n[7], owner: [2]int64{n[8], n[9]}, put: n[10], reason: string(b),
	}, true
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

// asReady returns e as a ready entry that became ready at seq.
func (e entry) asReady(seq int64) entry {
	e.k1, e.k2 = int64(e.pri), seq
	e.owner = [2]int64{}
	return e
}

// asDelayed returns e as a delayed entry due at due.
func (e entry) asDelayed(due, seq int64) entry {
	e.k1, e.k2 = due, seq
	e.owner = [2]int64{}
	return e
}

// asReserved returns e reserved by owner until deadline.
func (e entry) asReserved(owner [2]int64, deadline int64) entry {
	e.k1 = deadline
	e.owner = owner
	return e
}

// asBuried returns e buried at seq.
func (e entry) asBuried(seq int64) entry {
	e.k1, e.k2 = seq, 0
	e.owner = [2]int64{}
	return e
}

// kv is one entry of an index map.
type kv struct {
	id beanspike.ID
	e  entry
}

// pairs decodes the result of a KEY_VALUE map read.
func pairs(v any) []kv {
	var out []kv
	add := func(k, val any) {
		id, ok := toInt(k)
		if !ok {
			return
		}
		e, ok := parseEntry(val)
		if !ok {
			return
		}
		out = append(out, kv{beanspike.ID(id), e})
	}
	switch m := v.(type) {
	case []as.MapPair:
		for _, p := range m {
			add(p.Key, p.Value)
		}
	case map[any]any:
		for k, val := range m {
			add(k, val)
		}
	case []any:
		// Some servers return key/value ranges as a flat list.
		for i := 0; i+1 < len(m); i += 2 {
			add(m[i], m[i+1])
		}
	}
	return out
}

// intPairs decodes a KEY_VALUE read of a map of integers.
func intPairs(v any) map[int64]int64 {
	out := map[int64]int64{}
	add := func(k, val any) {
		a, ok1 := toInt(k)
		b, ok2 := toInt(val)
		if ok1 && ok2 {
			out[a] = b
		}
	}
	switch m := v.(type) {
	case []as.MapPair:
		for _, p := range m {
			add(p.Key, p.Value)
		}
	case map[any]any:
		for k, val := range m {
			add(k, val)
		}
	}
	return out
}

// readyLess orders ready jobs of one tube: priority, then the order they
// became ready, then ID.
func readyLess(a, b kv) int {
	if c := cmp.Compare(a.e.pri, b.e.pri); c != 0 {
		return c
	}
	if c := cmp.Compare(a.e.k2, b.e.k2); c != 0 {
		return c
	}
	return cmp.Compare(a.id, b.id)
}

// keyLess orders delayed, reserved and buried jobs by their map rank.
func keyLess(a, b kv) int {
	if c := cmp.Compare(a.e.k1, b.e.k1); c != 0 {
		return c
	}
	if c := cmp.Compare(a.e.k2, b.e.k2); c != 0 {
		return c
	}
	return cmp.Compare(a.id, b.id)
}

func dur(ns int64) time.Duration { return time.Duration(ns) }
