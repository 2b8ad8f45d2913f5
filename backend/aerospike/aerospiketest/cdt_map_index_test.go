package aerospiketest

import (
	"bytes"
	"fmt"
	"math"
	"math/rand/v2"
	"testing"
)

// randMapValue returns a small value with many ties: ints, [int, int]
// lists, strings and, rarely, a NaN.
func randMapValue(rng *rand.Rand, nan bool) any {
	switch rng.IntN(8) {
	case 0:
		return int64(rng.IntN(5))
	case 1:
		return fmt.Sprint("s", rng.IntN(4))
	case 2:
		if nan && rng.IntN(4) == 0 {
			return math.NaN()
		}
		return float64(rng.IntN(3))
	case 3:
		return &mapValue{entries: []mapEntry{{int64(rng.IntN(2)), int64(rng.IntN(2))}}}
	}
	return &listValue{items: []any{int64(rng.IntN(4)), int64(rng.IntN(50))}}
}

func randKey(rng *rand.Rand, n int) any {
	if rng.IntN(10) == 0 {
		return fmt.Sprint("k", rng.IntN(n))
	}
	return int64(rng.IntN(n))
}

// randMapOp returns a random map CDT op, modifying or not.
func randMapOp(rng *rand.Rand, n int, nan bool) (cdtOp, bool) {
	rt := []int64{rtNone, rtIndex, rtRevIndex, rtRank, rtRevRank, rtCount, rtKey, rtValue, rtKeyValue, rtExists}[rng.IntN(10)]
	if rng.IntN(5) == 0 {
		rt |= rtInverted
	}
	val := func() any { return randMapValue(rng, nan) }
	idx := func() any { return int64(rng.IntN(n+4) - 2) }
	cnt := func() any { return int64(rng.IntN(5)) }
	switch rng.IntN(16) {
	case 0:
		return cdtOp{code: mapPut, args: []any{randKey(rng, n), val(), int64(mapKeyValueOrder)}}, true
	case 1:
		items := &mapValue{}
		for range rng.IntN(4) + 1 {
			items.entries = append(items.entries, mapEntry{randKey(rng, n), val()})
		}
		items.entries = sortDedupEntries(items.entries)
		return cdtOp{code: mapPutItems, args: []any{items}}, true
	case 2:
		return cdtOp{code: mapIncrement, args: []any{randKey(rng, n), int64(rng.IntN(3))}}, true
	case 3:
		return cdtOp{code: mapRemoveByKey, args: []any{rt, randKey(rng, n)}}, true
	case 4:
		return cdtOp{code: mapRemoveRankRange, args: []any{rt, idx(), cnt()}}, true
	case 5:
		return cdtOp{code: mapRemoveValueInterval, args: []any{rt, val(), val()}}, true
	case 6:
		keys := &listValue{items: []any{randKey(rng, n), randKey(rng, n), randKey(rng, n)}}
		return cdtOp{code: mapRemoveKeyList, args: []any{rt, keys}}, true
	case 7:
		return cdtOp{code: mapRemoveByValue, args: []any{rt, val()}}, true
	case 8:
		return cdtOp{code: mapGetByRank, args: []any{rt, idx()}}, false
	case 9:
		return cdtOp{code: mapGetRankRange, args: []any{rt, idx(), cnt()}}, false
	case 10:
		if rng.IntN(2) == 0 {
			return cdtOp{code: mapGetValueInterval, args: []any{rt, val()}}, false
		}
		return cdtOp{code: mapGetValueInterval, args: []any{rt, val(), val()}}, false
	case 11:
		vals := &listValue{items: []any{val(), val(), val()}}
		return cdtOp{code: mapGetValueList, args: []any{rt, vals}}, false
	case 12:
		return cdtOp{code: mapGetValueRelRank, args: []any{rt, val(), idx(), cnt()}}, false
	case 13:
		return cdtOp{code: mapGetByValue, args: []any{rt, val()}}, false
	case 14:
		return cdtOp{code: mapRemoveValueRelRank, args: []any{rt, val(), idx()}}, true
	}
	return cdtOp{code: mapGetByKey, args: []any{rt, randKey(rng, n)}}, false
}

// withoutIndex returns a copy of m that answers rank and value lookups by
// scanning, as the server did before it kept value indexes.
func withoutIndex(m *mapValue) *mapValue {
	c := &mapValue{flags: m.flags, entries: append([]mapEntry(nil), m.entries...)}
	c.cache.index.Store(&valueIndex{unusable: true})
	return c
}

// checkCaches verifies that what m caches matches its entries.
func checkCaches(t *testing.T, m *mapValue) {
	t.Helper()
	fresh := &mapValue{flags: m.flags, entries: m.entries}
	want := packValue(nil, fresh)
	if got := packedSize(m); got != len(want) {
		t.Fatalf("cached packed size %d, encoding has %d bytes", got, len(want))
	}
	if p := m.cache.packed.Load(); p != nil && !bytes.Equal(*p, want) {
		t.Fatal("cached encoding differs from the entries")
	}
	for i := 1; i < len(m.entries); i++ {
		if compare(m.entries[i-1].k, m.entries[i].k) >= 0 {
			t.Fatalf("entries not sorted by key at %d", i)
		}
	}
	x := m.cache.index.Load()
	if x == nil || x.unusable {
		return
	}
	order := rankOrder(len(m.entries), m.value)
	if len(order) != len(x.order) {
		t.Fatalf("index holds %d entries, map %d", len(x.order), len(order))
	}
	for r, i := range order {
		if int(x.order[r]) != i {
			t.Fatalf("index rank %d holds entry %d, want %d", r, x.order[r], i)
		}
	}
}

// TestMapIndexMatchesScan runs random map ops on values that keep caches
// and value indexes, and checks every result and resulting map against
// the same op on a copy that scans, and that the stored value is never
// modified.
func TestMapIndexMatchesScan(t *testing.T) {
	for seed := range uint64(40) {
		rng := rand.New(rand.NewPCG(seed, seed*7+1))
		n := []int{3, 10, 40, 200}[seed%4]
		nan := seed%5 == 4
		var stored any = newMap(mapKeyValueOrder)
		for step := range 300 {
			o, modify := randMapOp(rng, n, nan)
			before := packValue(nil, stored)
			m := stored.(*mapValue)
			if rng.IntN(3) == 0 {
				m.valueIndex()
			}
			gotVal, gotRes, gotRC := cdtExec(stored, true, o, modify)
			wantVal, wantRes, wantRC := cdtExec(withoutIndex(m), true, o, modify)
			where := fmt.Sprintf("seed %d step %d op %d %v", seed, step, o.code, o.args)
			if !bytes.Equal(before, packValue(nil, stored)) {
				t.Fatalf("%s: the stored value was modified", where)
			}
			if gotRC != wantRC || !bytes.Equal(packValue(nil, gotRes), packValue(nil, wantRes)) {
				t.Fatalf("%s: got %v rc %d, want %v rc %d", where, packValue(nil, gotRes), gotRC, packValue(nil, wantRes), wantRC)
			}
			if !modify || gotRC != rcOK {
				continue
			}
			if !bytes.Equal(packValue(nil, gotVal), packValue(nil, wantVal)) {
				t.Fatalf("%s: map differs from the scanning result", where)
			}
			checkCaches(t, gotVal.(*mapValue))
			// Store as a write does: the size is computed before the record is
			// published.
			r := &record{bins: []bin{{name: "m", val: gotVal}}}
			if got, want := r.size(), len(r.appendFlat(nil)); got != want || want != flatHeaderSize+1+1+1+1+4+len(packValue(nil, gotVal)) {
				t.Fatalf("%s: record size %d, want %d", where, got, want)
			}
			stored = gotVal
		}
	}
}

// TestMapCopyOnWriteNested checks that a modify op through a context
// copies the containers it descends into and leaves the stored ones, and
// their caches, as they were.
func TestMapCopyOnWriteNested(t *testing.T) {
	inner := newMap(mapKeyValueOrder)
	for i := range 100 {
		inner.put(i, false, int64(i), &listValue{items: []any{int64(100 - i)}})
	}
	outer := newMap(mapKeyOrdered)
	outer.put(0, false, "a", inner)
	outer.put(1, false, "b", int64(1))
	before := packValue(nil, outer)
	_ = outer.encoded()
	innerSize := packedSize(inner)
	o := cdtOp{code: mapPut, args: []any{int64(1000), int64(-1)}, ctx: []any{int64(ctxMapKey), "a"}}
	nv, _, rc := cdtExec(outer, true, o, true)
	if rc != rcOK {
		t.Fatalf("rc %d", rc)
	}
	if !bytes.Equal(before, packValue(nil, outer)) || !bytes.Equal(before, outer.encoded()) {
		t.Fatal("the stored map was modified")
	}
	if packedSize(inner) != innerSize || len(inner.entries) != 100 {
		t.Fatal("the stored inner map was modified")
	}
	got := nv.(*mapValue)
	checkCaches(t, got)
	checkCaches(t, got.entries[0].v.(*mapValue))
	_, res, _ := cdtExec(got, true, cdtOp{code: mapGetByRank, args: []any{int64(rtKey), int64(0)},
		ctx: []any{int64(ctxMapKey), "a"}}, false)
	if res != int64(1000) {
		t.Fatalf("lowest-ranked key %v, want 1000", res)
	}
}

// TestMapSharedArrayVersions checks the in-place appends and slices of
// copies that share their entries' array: from versions taken at random
// in a history, as a discarded write or a stale read would, ops that
// append, remove the first or last entries, or anything else never change
// a version already made, and each result matches the same op on a map
// of its own.
func TestMapSharedArrayVersions(t *testing.T) {
	for seed := range uint64(20) {
		rng := rand.New(rand.NewPCG(seed, seed*13+5))
		first := newMap(mapKeyOrdered)
		for i := range 8 {
			first.put(i, false, int64(i), int64(i))
		}
		versions := []*mapValue{first}
		packed := [][]byte{packValue(nil, first)}
		next := int64(8)
		for step := range 400 {
			parent := versions[len(versions)-1]
			if rng.IntN(3) == 0 {
				parent = versions[rng.IntN(len(versions))]
			}
			var o cdtOp
			switch rng.IntN(6) {
			case 0, 1, 2:
				o = cdtOp{code: mapPut, args: []any{next, next, int64(mapKeyOrdered)}}
				next++
			case 3:
				o = cdtOp{code: mapRemoveIndexRange, args: []any{int64(rtNone), int64(0), int64(rng.IntN(3) + 1)}}
			case 4:
				o = cdtOp{code: mapRemoveIndexRange, args: []any{int64(rtNone), int64(-1 - rng.IntN(2))}}
			default:
				o, _ = randMapOp(rng, int(next), false)
				if !cdtIsModify(o.code) {
					continue
				}
			}
			got, _, rc := cdtExec(parent, true, o, true)
			want, _, wantRC := cdtExec(ownCopy(parent), true, o, true)
			where := fmt.Sprintf("seed %d step %d op %d %v", seed, step, o.code, o.args)
			if rc != wantRC {
				t.Fatalf("%s: rc %d, want %d", where, rc, wantRC)
			}
			if rc != rcOK {
				continue
			}
			if !bytes.Equal(packValue(nil, got), packValue(nil, want)) {
				t.Fatalf("%s: result differs from the op on a map of its own", where)
			}
			m := got.(*mapValue)
			checkCaches(t, m)
			versions = append(versions, m)
			packed = append(packed, packValue(nil, m))
			for i, v := range versions {
				if !bytes.Equal(packValue(nil, v), packed[i]) {
					t.Fatalf("%s: version %d changed after it was made", where, i)
				}
			}
		}
	}
}

// ownCopy returns a copy of m with an array of its own.
func ownCopy(m *mapValue) *mapValue {
	return &mapValue{flags: m.flags, entries: append([]mapEntry(nil), m.entries...)}
}
