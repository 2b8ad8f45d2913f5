package aerospiketest

import (
	"slices"
	"sort"
	"sync/atomic"
)

// mapCache holds what is derived from a map's entries: its packed size, its
// msgpack encoding and its value-order index. A stored map is never
// modified, so concurrent readers may fill the cache lazily (hence the
// atomics); the map operations that modify a map in place, always a copy
// owned by one command, keep the cache up to date or reset it.
type mapCache struct {
	// body is the packed size of the entries plus one; 0 when unknown.
	body atomic.Int64
	// packed is the msgpack encoding of the map; nil until built.
	packed atomic.Pointer[[]byte]
	// index is the value-order index; nil until built.
	index atomic.Pointer[valueIndex]
	// ownIndex reports that index belongs to this map alone and may be
	// modified in place; sharedEntries that the entries still belong to
	// the map this one was cloned from. Only the command that owns the map
	// reads them.
	ownIndex      bool
	sharedEntries bool
	// base is the position of entries[0] in their backing array, and
	// tail, shared by every map using that array, the array's high-water
	// mark: no map ever held a slot at or beyond it, so a copy that
	// appends may claim the next slot and write it in place, and one that
	// removes its first entries may slice them off, where a copy of the
	// entries would cost O(n). tail is nil until the map is first cloned.
	base int
	tail atomic.Pointer[atomic.Int64]
}

// valueIndex orders a map's entries by value, ties by key: the rank order
// Aerospike keeps for key/value-ordered maps. Rank and value lookups use it
// instead of sorting the map on every call. It holds entry positions, so
// that copying it is a plain memory move.
type valueIndex struct {
	order []int32
	// unusable reports that some key or value holds a NaN, under which
	// compare is not a total order; lookups then fall back to scanning.
	unusable bool
}

// newMap returns an empty map with the given order flags.
func newMap(flags byte) *mapValue {
	m := &mapValue{flags: flags}
	m.cache.body.Store(1)
	return m
}

// clone returns a copy of m that its caller may modify. The entries, the
// size and the index are carried over; the entries and the index are
// copied on their first modification, in the same pass.
func (m *mapValue) clone() *mapValue {
	c := &mapValue{flags: m.flags, entries: m.entries}
	c.cache.sharedEntries = true
	c.cache.base = m.cache.base
	c.cache.tail.Store(m.tailMark())
	c.cache.body.Store(m.cache.body.Load())
	c.cache.index.Store(m.cache.index.Load())
	return c
}

// tailMark returns the high-water mark of m's backing array. A map with
// none yet owns its array alone (it is fresh from a copy or a decode), so
// the mark is its end.
func (m *mapValue) tailMark() *atomic.Int64 {
	if t := m.cache.tail.Load(); t != nil {
		return t
	}
	t := new(atomic.Int64)
	t.Store(int64(m.cache.base + len(m.entries)))
	if m.cache.tail.CompareAndSwap(nil, t) {
		return t
	}
	return m.cache.tail.Load()
}

// owned notes that m's entries are a fresh array of its own.
func (m *mapValue) owned() {
	m.cache.sharedEntries = false
	m.cache.base = 0
	m.cache.tail.Store(nil)
}

// ownEntries makes m's entries its own before they are modified in place.
func (m *mapValue) ownEntries() {
	if m.cache.sharedEntries {
		m.entries = append(make([]mapEntry, 0, roomFor(len(m.entries))), m.entries...)
		m.owned()
	}
}

// roomFor is the capacity of a fresh copy of n entries: room to grow
// before the next copy.
func roomFor(n int) int { return n + n/4 + 4 }

// insertAt inserts e at position i of m's entries.
func (m *mapValue) insertAt(i int, e mapEntry) {
	if !m.cache.sharedEntries {
		m.entries = slices.Insert(m.entries, i, e)
		return
	}
	if n := len(m.entries); i == n && n < cap(m.entries) {
		if t := m.cache.tail.Load(); t != nil && t.CompareAndSwap(int64(m.cache.base+n), int64(m.cache.base+n+1)) {
			// The slot after the last entry was never part of a map.
			m.entries = append(m.entries, e)
			return
		}
	}
	m.entries = insertEntry(m.entries, true, i, e)
	m.owned()
}

// invalidate forgets everything derived from m's entries; callers that
// modify m (a copy they own) other than through its methods call it.
func (m *mapValue) invalidate() {
	m.cache.body.Store(0)
	m.cache.packed.Store(nil)
	m.cache.index.Store(nil)
	m.cache.ownIndex = false
}

// bodySize returns the packed size of m's entries.
func (m *mapValue) bodySize() int {
	if b := m.cache.body.Load(); b > 0 {
		return int(b - 1)
	}
	n := 0
	for _, e := range m.entries {
		n += packedSize(e.k) + packedSize(e.v)
	}
	m.cache.body.Store(int64(n) + 1)
	return n
}

// mapPackedSize returns len(packValue(nil, m)).
func (m *mapValue) mapPackedSize() int {
	if p := m.cache.packed.Load(); p != nil {
		return len(*p)
	}
	n := len(m.entries)
	if m.flags != 0 {
		return containerHeaderSize(n+1) + 4 + m.bodySize()
	}
	return containerHeaderSize(n) + m.bodySize()
}

// encoded returns the msgpack encoding of m, caching it.
func (m *mapValue) encoded() []byte {
	if p := m.cache.packed.Load(); p != nil {
		return *p
	}
	b := packValue(make([]byte, 0, m.mapPackedSize()), m)
	m.cache.packed.Store(&b)
	return b
}

// valueIndex returns m's value-order index, building it on first use, or
// nil when it cannot be used.
func (m *mapValue) valueIndex() *valueIndex {
	idx := m.cache.index.Load()
	if idx == nil {
		idx = &valueIndex{}
		for _, e := range m.entries {
			if containsNaN(e.k) || containsNaN(e.v) {
				idx.unusable = true
				break
			}
		}
		if !idx.unusable {
			idx.order = make([]int32, len(m.entries))
			for i := range idx.order {
				idx.order[i] = int32(i)
			}
			slices.SortFunc(idx.order, func(a, b int32) int { return cmpByValue(m.entries[a], m.entries[b]) })
		}
		if !m.cache.index.CompareAndSwap(nil, idx) {
			idx = m.cache.index.Load()
		}
	}
	if idx.unusable {
		return nil
	}
	return idx
}

// cmpByValue orders entries by value, ties by key.
func cmpByValue(a, b mapEntry) int {
	if c := compare(a.v, b.v); c != 0 {
		return c
	}
	return compare(a.k, b.k)
}

// entryAt returns the entry of rank r.
func (m *mapValue) entryAt(x *valueIndex, r int) mapEntry {
	return m.entries[x.order[r]]
}

// rankOf returns the rank of entry i, or where an entry e would rank
// (search reports whether entry i is at that rank).
func (m *mapValue) rankOf(x *valueIndex, i int) int {
	r, _ := m.searchRank(x, m.entries[i], i)
	return r
}

// searchRank returns the rank of e, and whether the entry there is entry i.
func (m *mapValue) searchRank(x *valueIndex, e mapEntry, i int) (int, bool) {
	r := sort.Search(len(x.order), func(r int) bool { return cmpByValue(m.entryAt(x, r), e) >= 0 })
	return r, r < len(x.order) && int(x.order[r]) == i
}

// lowerBound returns the first rank whose value is not below v.
func (m *mapValue) lowerBound(x *valueIndex, v any) int {
	return sort.Search(len(x.order), func(r int) bool { return compare(m.entryAt(x, r).v, v) >= 0 })
}

// upperBound returns the first rank whose value is above v.
func (m *mapValue) upperBound(x *valueIndex, v any) int {
	return sort.Search(len(x.order), func(r int) bool { return compare(m.entryAt(x, r).v, v) > 0 })
}

// positions returns the entry positions of ranks [start,end), in rank order.
func (m *mapValue) positions(x *valueIndex, start, end int) []int {
	out := make([]int, end-start)
	for j, p := range x.order[start:end] {
		out[j] = int(p)
	}
	return out
}

// ownedIndex returns m's index for modification, or nil when m has none.
// An index shared with other maps is replaced by a new one whose order
// slice is still shared: shared reports it, for the caller to copy it as it
// modifies it.
func (m *mapValue) ownedIndex() (idx *valueIndex, shared bool) {
	idx = m.cache.index.Load()
	if idx == nil || m.cache.ownIndex || idx.unusable {
		return idx, false
	}
	idx = &valueIndex{order: idx.order}
	m.cache.index.Store(idx)
	m.cache.ownIndex = true
	return idx, true
}

// dropIndex forgets an index found inconsistent; it is rebuilt on next use.
func (m *mapValue) dropIndex() {
	m.cache.index.Store(nil)
	m.cache.ownIndex = false
}

// addBody adjusts the cached body size by d, if known.
func (m *mapValue) addBody(d int) {
	if b := m.cache.body.Load(); b > 0 {
		m.cache.body.Store(b + int64(d))
	}
}

// put sets key k to v on a map the caller owns; i and exists are the
// result of m.find(k).
func (m *mapValue) put(i int, exists bool, k, v any) {
	m.cache.packed.Store(nil)
	e := mapEntry{k: k, v: v}
	if containsNaN(k) || containsNaN(v) {
		m.cache.index.Store(&valueIndex{unusable: true})
		m.cache.ownIndex = true
	}
	idx, shared := m.ownedIndex()
	if idx != nil && idx.unusable {
		idx = nil
	}
	if exists {
		old := m.entries[i]
		if idx != nil {
			// Take entry i out of the value order while it still holds its
			// old value, then put it back where its new value ranks.
			r, ok := m.searchRank(idx, old, i)
			if !ok {
				m.dropIndex()
				idx = nil
			} else {
				idx.order = deleteRanks(idx.order, shared, []int{r}, nil)
				shared = false
			}
		}
		m.ownEntries()
		m.entries[i].v = v
		if m.cache.body.Load() > 0 {
			m.addBody(packedSize(v) - packedSize(old.v))
		}
		if idx != nil {
			r := sort.Search(len(idx.order), func(r int) bool { return cmpByValue(m.entryAt(idx, r), e) >= 0 })
			idx.order = insertRank(idx.order, false, r, int32(i), -1)
		}
		return
	}
	m.insertAt(i, e)
	if m.cache.body.Load() > 0 {
		m.addBody(packedSize(k) + packedSize(v))
	}
	if idx != nil {
		// Positions from i on moved up by one: account for it while
		// searching, and shift them while inserting.
		at := func(r int) mapEntry {
			p := int(idx.order[r])
			if p >= i {
				p++
			}
			return m.entries[p]
		}
		r := sort.Search(len(idx.order), func(r int) bool { return cmpByValue(at(r), e) >= 0 })
		idx.order = insertRank(idx.order, shared, r, int32(i), i)
	}
}

// insertRank inserts position p at rank r of order, adding one to every
// position at or above from (none when from < 0): in place, or into a new
// slice when order is shared.
func insertRank(order []int32, shared bool, r int, p int32, from int) []int32 {
	dst := order
	if shared {
		dst = make([]int32, len(order)+1)
		copy(dst, order[:r])
		copy(dst[r+1:], order[r:])
	} else {
		dst = slices.Insert(order, r, 0)
	}
	dst[r] = p
	if from >= 0 {
		f := int32(from)
		for j, q := range dst {
			if q >= f && j != r {
				dst[j] = q + 1
			}
		}
	}
	return dst
}

// deleteRanks removes the given ranks (sorted, distinct) from order and,
// when removed lists the removed entry positions (sorted), renumbers the
// remaining positions: in place, or into a new slice when order is shared.
func deleteRanks(order []int32, shared bool, ranks []int, removed []int) []int32 {
	dst := order
	if shared {
		dst = make([]int32, 0, len(order)-len(ranks))
	} else {
		dst = dst[:0]
	}
	k := 0
	for r, p := range order {
		if k < len(ranks) && ranks[k] == r {
			k++
			continue
		}
		switch {
		case len(removed) == 1:
			// The usual single removal: no search per position.
			if int(p) > removed[0] {
				p--
			}
		case removed != nil:
			p -= int32(sort.SearchInts(removed, int(p)))
		}
		dst = append(dst, p)
	}
	return dst
}

// removeAt removes the entries at the given positions (sorted, distinct)
// from a map the caller owns.
func (m *mapValue) removeAt(sel []int) {
	if len(sel) == 0 {
		return
	}
	m.cache.packed.Store(nil)
	if idx, shared := m.ownedIndex(); idx != nil && !idx.unusable {
		ranks := make([]int, 0, len(sel))
		for _, i := range sel {
			r, ok := m.searchRank(idx, m.entries[i], i)
			if !ok {
				m.dropIndex()
				ranks = nil
				break
			}
			ranks = append(ranks, r)
		}
		if ranks != nil {
			slices.Sort(ranks)
			idx.order = deleteRanks(idx.order, shared, ranks, sel)
		}
	}
	if m.cache.body.Load() > 0 {
		d := 0
		for _, i := range sel {
			d += packedSize(m.entries[i].k) + packedSize(m.entries[i].v)
		}
		m.addBody(-d)
	}
	if m.cache.sharedEntries {
		if k := len(sel); sel[k-1] == k-1 {
			// The first k entries: slice them off.
			m.entries = m.entries[k:]
			m.cache.base += k
			return
		}
		if k := len(sel); sel[0] == len(m.entries)-k {
			// The last k entries: the high-water mark keeps their slots
			// from being claimed again.
			m.entries = m.entries[:sel[0]]
			return
		}
		m.entries = deleteSorted(m.entries, true, sel)
		m.owned()
		return
	}
	m.entries = deleteSorted(m.entries, false, sel)
}

// clear removes every entry from a map the caller owns.
func (m *mapValue) clear() {
	m.entries = nil
	m.owned()
	m.cache.body.Store(1)
	m.cache.packed.Store(nil)
	m.cache.index.Store(&valueIndex{})
	m.cache.ownIndex = true
}

// deleteSorted removes the elements at the given positions (sorted,
// distinct) from s: in place, or into a new slice when s is shared.
func deleteSorted(s []mapEntry, shared bool, pos []int) []mapEntry {
	dst := s
	if shared {
		dst = make([]mapEntry, len(s)-len(pos), roomFor(len(s)-len(pos)))
		copy(dst, s[:pos[0]])
	}
	w := pos[0]
	for j, p := range pos {
		next := len(s)
		if j+1 < len(pos) {
			next = pos[j+1]
		}
		w += copy(dst[w:], s[p+1:next])
	}
	if !shared {
		clear(s[w:])
	}
	return dst[:w]
}

// insertEntry inserts e at position i of s: in place, or into a new slice
// when s is shared.
func insertEntry(s []mapEntry, shared bool, i int, e mapEntry) []mapEntry {
	if !shared {
		return slices.Insert(s, i, e)
	}
	dst := make([]mapEntry, len(s)+1, roomFor(len(s)+1))
	copy(dst, s[:i])
	dst[i] = e
	copy(dst[i+1:], s[i:])
	return dst
}

// containsNaN reports whether v holds a NaN float.
func containsNaN(v any) bool {
	switch x := v.(type) {
	case float64:
		return x != x
	case *listValue:
		for _, it := range x.items {
			if containsNaN(it) {
				return true
			}
		}
	case *mapValue:
		for _, e := range x.entries {
			if containsNaN(e.k) || containsNaN(e.v) {
				return true
			}
		}
	}
	return false
}

// containsWild reports whether v holds a WILDCARD, against which a value
// search must scan: a wildcard compares equal to anything, so the values
// matching it need not be contiguous in value order.
func containsWild(v any) bool {
	switch x := v.(type) {
	case wildValue:
		return true
	case *listValue:
		for _, it := range x.items {
			if containsWild(it) {
				return true
			}
		}
	case *mapValue:
		for _, e := range x.entries {
			if containsWild(e.k) || containsWild(e.v) {
				return true
			}
		}
	}
	return false
}

// packedSize returns len(packValue(nil, v)) without encoding v.
func packedSize(v any) int {
	switch x := v.(type) {
	case nil, bool:
		return 1
	case int64:
		return intPackedSize(x)
	case float64:
		return 9
	case string:
		return strPackedSize(len(x))
	case []byte:
		return strPackedSize(len(x))
	case hllValue:
		return strPackedSize(len(x))
	case geoJSON:
		return strPackedSize(len(x))
	case infValue, wildValue:
		return 3
	case *listValue:
		n := len(x.items)
		size := 0
		if x.flags != 0 {
			size = containerHeaderSize(n+1) + 3
		} else {
			size = containerHeaderSize(n)
		}
		for _, it := range x.items {
			size += packedSize(it)
		}
		return size
	case *mapValue:
		return x.mapPackedSize()
	}
	return 1
}

func intPackedSize(x int64) int {
	switch {
	case x >= -32 && x <= 0x7f:
		return 1
	case x >= 0 && x <= 0xff, x < 0 && x >= -128:
		return 2
	case x >= 0 && x <= 0xffff, x < 0 && x >= -32768:
		return 3
	case x >= 0 && x <= 0xffffffff, x < 0 && x >= -1<<31:
		return 5
	}
	return 9
}

// strPackedSize is the packed size of a string or blob of n bytes, with its
// particle-type byte.
func strPackedSize(n int) int {
	n++
	switch {
	case n < 32:
		return 1 + n
	case n <= 0xff:
		return 2 + n
	case n <= 0xffff:
		return 3 + n
	}
	return 5 + n
}

func containerHeaderSize(n int) int {
	switch {
	case n < 16:
		return 1
	case n <= 0xffff:
		return 3
	}
	return 5
}
