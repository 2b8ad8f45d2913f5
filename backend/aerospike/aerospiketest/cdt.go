package aerospiketest

import (
	"math"
	"sort"
)

// CDT return types.
const (
	rtNone         = 0
	rtIndex        = 1
	rtRevIndex     = 2
	rtRank         = 3
	rtRevRank      = 4
	rtCount        = 5
	rtKey          = 6
	rtValue        = 7
	rtKeyValue     = 8
	rtExists       = 13
	rtUnorderedMap = 16
	rtOrderedMap   = 17
	rtInverted     = 0x10000
)

// Context types.
const (
	ctxListIndex = 0x10
	ctxListRank  = 0x11
	ctxListValue = 0x13
	ctxMapIndex  = 0x20
	ctxMapRank   = 0x21
	ctxMapKey    = 0x22
	ctxMapValue  = 0x23
	ctxCreate    = 0xc0
)

const cdtCtxMarker = 0xff

// cdtOp is a decoded CDT operation.
type cdtOp struct {
	code int
	args []any
	ctx  []any
}

// decodeCDT decodes [op, args...] or [0xff, [ctx...], [op, args...]].
func decodeCDT(payload []byte) (cdtOp, byte) {
	items, plain, err := unpackPlainList(payload)
	if err != nil {
		return cdtOp{}, rcParameter
	}
	if plain {
		return cdtFromItems(items)
	}
	v, err := unpackAll(payload)
	if err != nil {
		return cdtOp{}, rcParameter
	}
	return cdtFromList(v)
}

func cdtFromList(v any) (cdtOp, byte) {
	l, ok := v.(*listValue)
	if !ok {
		return cdtOp{}, rcParameter
	}
	return cdtFromItems(l.items)
}

func cdtFromItems(items []any) (cdtOp, byte) {
	if len(items) == 0 {
		return cdtOp{}, rcParameter
	}
	code, ok := items[0].(int64)
	if !ok {
		return cdtOp{}, rcParameter
	}
	if code == cdtCtxMarker {
		if len(items) != 3 {
			return cdtOp{}, rcParameter
		}
		ctx, ok := items[1].(*listValue)
		if !ok || len(ctx.items)%2 != 0 || len(ctx.items) == 0 {
			return cdtOp{}, rcParameter
		}
		inner, rc := cdtFromList(items[2])
		if rc != rcOK || inner.ctx != nil {
			return cdtOp{}, rcParameter
		}
		inner.ctx = ctx.items
		return inner, rcOK
	}
	return cdtOp{code: int(code), args: items[1:]}, rcOK
}

// cdtApply runs a CDT op payload on a bin. For modify ops it returns the
// new bin value (nil when the bin is unchanged and absent) and the op
// result.
func cdtApply(cur any, exists bool, payload []byte, modify bool) (any, any, byte) {
	o, rc := decodeCDT(payload)
	if rc != rcOK {
		return nil, nil, rc
	}
	return cdtExec(cur, exists, o, modify)
}

func cdtExec(cur any, exists bool, o cdtOp, modify bool) (any, any, byte) {
	isMap := o.code >= 64 && o.code < 128
	if !isMap && o.code >= 64 {
		return nil, nil, rcParameter
	}
	if modify != cdtIsModify(o.code) {
		return nil, nil, rcParameter
	}
	if exists {
		switch cur.(type) {
		case *listValue, *mapValue:
		default:
			return nil, nil, rcBinType
		}
	}
	if !exists && !modify && len(o.ctx) > 0 {
		// A read through a context of a missing bin reads nothing.
		return nil, nil, rcOK
	}
	// A modify op works on a copy of the bin value: the top level here, and
	// every container it descends into through its context (ctxStep). What
	// it does not descend into stays shared with the stored value.
	root := cur
	if modify && exists {
		root = shallowCopy(cur)
	}
	slot := &root
	var path []*mapValue // copied maps whose content changes below them
	var last ctxPlace    // where the last context step created an element
	for i := 0; i < len(o.ctx); i += 2 {
		id, ok := o.ctx[i].(int64)
		if !ok {
			return nil, nil, rcParameter
		}
		next, place, rc := ctxStep(slot, int(id), o.ctx[i+1], modify)
		if rc != rcOK {
			return nil, nil, rc
		}
		if m, ok := (*slot).(*mapValue); ok && modify {
			path = append(path, m)
		}
		slot, last = next, place
	}
	defer func() {
		for _, m := range path {
			m.invalidate()
		}
	}()
	op := listOp
	if isMap {
		op = mapOp
	}
	res, rc := op(slot, o.code, o.args)
	if rc != rcOK {
		return nil, nil, rc
	}
	if !modify {
		return nil, res, rcOK
	}
	if *slot == nil {
		// An element a context created stays only if the op put a value
		// in it.
		last.undo()
	}
	return root, res, rcOK
}

func cdtIsModify(code int) bool {
	if code >= 64 {
		switch {
		case code >= 64 && code <= 89:
			return true
		}
		return false
	}
	return code < 16 || (code >= 32 && code <= 40)
}

// ctxPlace records an element a context step created, to take it out again
// if the op leaves it empty.
type ctxPlace struct {
	m       *mapValue  // the map the element was put in, or nil
	key     any        // its key in m
	l       *listValue // the list the element was appended to, or nil
	prevLen int        // l's length before
}

// undo takes the created element out again.
func (p ctxPlace) undo() {
	switch {
	case p.m != nil:
		if i, ok := p.m.find(p.key); ok {
			p.m.removeAt([]int{i})
		}
	case p.l != nil:
		p.l.items = p.l.items[:p.prevLen]
	}
}

// ctxStep descends one context level from slot. As on a real server, every
// context that does not lead to an element answers OP_NOT_APPLICABLE (a
// missing key, index, rank or value, or a container of the other kind),
// except that a modify op whose context has a create flag creates what is
// missing: the container at this level, with the order the flag gives, if
// the slot is empty, and an empty element at the key or index, which the
// next context step or the op fills in.
func ctxStep(slot *any, id int, val any, modify bool) (*any, ctxPlace, byte) {
	base := id &^ ctxCreate
	create := id & ctxCreate
	if !modify {
		create = 0
	}
	var none ctxPlace
	switch base {
	case ctxListIndex, ctxListRank, ctxListValue:
		if *slot == nil && create != 0 {
			*slot = newContainerFor(create, true)
		}
		l, ok := (*slot).(*listValue)
		if !ok {
			return nil, none, rcOpNotApplicable
		}
		var i int
		place := none
		switch base {
		case ctxListIndex:
			idx, ok := val.(int64)
			if !ok {
				return nil, none, rcParameter
			}
			n := int64(len(l.items))
			if idx < 0 {
				idx += n
			}
			if idx < 0 {
				return nil, none, rcOpNotApplicable
			}
			if idx >= n {
				switch {
				case create == 0:
					return nil, none, rcOpNotApplicable
				case l.ordered():
					// An ordered list takes the new element at its end.
					idx = n
				case idx > n && (create != ctxCreatePad || idx-n > maxListPad):
					return nil, none, rcOpNotApplicable
				}
				place = ctxPlace{l: l, prevLen: len(l.items)}
				for int64(len(l.items)) <= idx {
					l.items = append(l.items, nil)
				}
			}
			i = int(idx)
		case ctxListRank:
			r, ok := val.(int64)
			if !ok {
				return nil, none, rcParameter
			}
			j, ok := singleIndex(r, len(l.items))
			if !ok {
				return nil, none, rcOpNotApplicable
			}
			if l.ordered() {
				i = j
			} else {
				i = heapRankRange(l.items, j, 1)[0]
			}
		case ctxListValue:
			i = -1
			for j, it := range l.items {
				if compare(it, val) == 0 {
					i = j
					break
				}
			}
			if i < 0 {
				return nil, none, rcOpNotApplicable
			}
		}
		if modify {
			l.items[i] = shallowCopy(l.items[i])
		}
		return &l.items[i], place, rcOK
	case ctxMapIndex, ctxMapRank, ctxMapKey, ctxMapValue:
		if *slot == nil && create != 0 {
			*slot = newContainerFor(create, false)
		}
		m, ok := (*slot).(*mapValue)
		if !ok {
			return nil, none, rcOpNotApplicable
		}
		var i int
		place := none
		switch base {
		case ctxMapIndex:
			idx, ok := val.(int64)
			if !ok {
				return nil, none, rcParameter
			}
			if i, ok = singleIndex(idx, len(m.entries)); !ok {
				return nil, none, rcOpNotApplicable
			}
		case ctxMapRank:
			r, ok := val.(int64)
			if !ok {
				return nil, none, rcParameter
			}
			j, ok := singleIndex(r, len(m.entries))
			if !ok {
				return nil, none, rcOpNotApplicable
			}
			if x := m.valueIndex(); x != nil {
				i = int(x.order[j])
			} else {
				i = rankOrder(len(m.entries), m.value)[j]
			}
		case ctxMapKey:
			j, found := m.find(val)
			if !found {
				if create == 0 {
					return nil, none, rcOpNotApplicable
				}
				m.insertAt(j, mapEntry{k: val})
				place = ctxPlace{m: m, key: val}
			}
			i = j
		case ctxMapValue:
			i = -1
			for j, e := range m.entries {
				if compare(e.v, val) == 0 {
					i = j
					break
				}
			}
			if i < 0 {
				return nil, none, rcOpNotApplicable
			}
		}
		if modify {
			m.ownEntries()
			m.entries[i].v = shallowCopy(m.entries[i].v)
		}
		return &m.entries[i].v, place, rcOK
	}
	return nil, none, rcParameter
}

// Create flags of a context, beside 0x40 for an unordered container: the
// order of the container created at its level. ctxCreatePad also lets a
// list index past the end pad the list with nils.
const (
	ctxCreatePad     = 0x80 // a key-ordered map, or an unordered list that pads
	ctxCreateOrdered = 0xc0 // a key/value-ordered map, or an ordered list
)

// newContainerFor creates the container a create context asks for at its
// level: a list or a map, of the order the flag gives.
func newContainerFor(create int, list bool) any {
	if list {
		if create == ctxCreateOrdered {
			return &listValue{flags: listOrdered}
		}
		return &listValue{}
	}
	switch create {
	case ctxCreatePad:
		return newMap(mapKeyOrdered)
	case ctxCreateOrdered:
		return newMap(mapKeyValueOrder)
	}
	return newMap(0)
}

// rankOrder returns element indexes sorted by value, ties by index.
func rankOrder(n int, val func(int) any) []int {
	idx := make([]int, n)
	for i := range idx {
		idx[i] = i
	}
	sort.SliceStable(idx, func(a, b int) bool { return compare(val(idx[a]), val(idx[b])) < 0 })
	return idx
}

// sortValues sorts values in Aerospike order.
func sortValues(vs []any) {
	sort.SliceStable(vs, func(i, j int) bool { return compare(vs[i], vs[j]) < 0 })
}

// sortDedupEntries sorts entries by key, keeping the last of equal keys.
func sortDedupEntries(es []mapEntry) []mapEntry {
	sort.SliceStable(es, func(i, j int) bool { return compare(es[i].k, es[j].k) < 0 })
	out := es[:0]
	for _, e := range es {
		if len(out) > 0 && compare(out[len(out)-1].k, e.k) == 0 {
			out[len(out)-1] = e
			continue
		}
		out = append(out, e)
	}
	return out
}

// find returns the position of key k, or where it would be inserted.
func (m *mapValue) find(k any) (int, bool) {
	i := sort.Search(len(m.entries), func(i int) bool { return compare(m.entries[i].k, k) >= 0 })
	return i, i < len(m.entries) && compare(m.entries[i].k, k) == 0
}

// indexRange resolves (index, count) against n elements like Aerospike's
// range ops: a negative index counts from the end; missing count means to
// the end; the range is clipped to the container.
func indexRange(index int64, count int64, hasCount bool, n int) (int, int) {
	nn := int64(n)
	if index < 0 {
		index += nn
	}
	end := nn
	if hasCount {
		if count < 0 {
			return 0, 0
		}
		if index > math.MaxInt64-count {
			end = nn
		} else {
			end = index + count
		}
	}
	if index < 0 {
		index = 0
	}
	if end > nn {
		end = nn
	}
	if index >= end {
		return 0, 0
	}
	return int(index), int(end)
}

// singleIndex resolves a single index; ok is false when out of range.
func singleIndex(index int64, n int) (int, bool) {
	if index < 0 {
		index += int64(n)
	}
	if index < 0 || index >= int64(n) {
		return 0, false
	}
	return int(index), true
}

// argInt returns args[i] as an integer.
func argInt(args []any, i int) (int64, bool) {
	if i >= len(args) {
		return 0, false
	}
	v, ok := args[i].(int64)
	return v, ok
}

// argOptInt returns args[i] as an integer if present.
func argOptInt(args []any, i int) (int64, bool, byte) {
	if i >= len(args) {
		return 0, false, rcOK
	}
	v, ok := args[i].(int64)
	if !ok {
		return 0, false, rcParameter
	}
	return v, true, rcOK
}

// selector describes the elements an op selects.
type selector struct {
	n         int
	sel       []int // selected element indexes in report order
	multi     bool
	rankOrder bool // sel is in rank order
	// rankRange reports that sel holds the ranks [rankStart,
	// rankStart+len(sel)), whatever their order, for rank results.
	rankRange bool
	rankStart int
}

// invert replaces the selection by its complement in index order.
func (s *selector) invert() {
	in := make([]bool, s.n)
	for _, i := range s.sel {
		in[i] = true
	}
	out := make([]int, 0, s.n-len(s.sel))
	for i := range in {
		if !in[i] {
			out = append(out, i)
		}
	}
	s.sel, s.multi, s.rankOrder, s.rankRange = out, true, false, false
}

// container abstracts lists and maps for result building.
type container interface {
	length() int
	value(i int) any
	key(i int) any
}

func (l *listValue) length() int     { return len(l.items) }
func (l *listValue) value(i int) any { return l.items[i] }
func (l *listValue) key(i int) any   { return nil }
func (m *mapValue) length() int      { return len(m.entries) }
func (m *mapValue) value(i int) any  { return m.entries[i].v }
func (m *mapValue) key(i int) any    { return m.entries[i].k }

// ranks returns the rank of every element.
func ranks(c container) []int {
	order := rankOrder(c.length(), c.value)
	r := make([]int, len(order))
	for rank, i := range order {
		r[i] = rank
	}
	return r
}

// buildResult renders a selection according to a return type. An
// inverted return type inverts the selection first.
func buildResult(c container, s *selector, rt int64, isMap bool) (any, byte) {
	if rt&rtInverted != 0 {
		s.invert()
	}
	rt &^= rtInverted
	switch rt {
	case rtNone:
		return nil, rcOK
	case rtCount:
		return int64(len(s.sel)), rcOK
	case rtExists:
		return len(s.sel) > 0, rcOK
	case rtIndex, rtRevIndex, rtRank, rtRevRank:
		rank := func(i int) int { return i }
		if (rt == rtRank || rt == rtRevRank) && s.rankRange {
			pos := make(map[int]int, len(s.sel))
			for j, i := range s.sel {
				pos[i] = s.rankStart + j
			}
			rank = func(i int) int { return pos[i] }
		} else if rt == rtRank || rt == rtRevRank {
			m, isMap := c.(*mapValue)
			var x *valueIndex
			if isMap {
				x = m.valueIndex()
			}
			if x != nil {
				rank = func(i int) int { return m.rankOf(x, i) }
			} else {
				rk := ranks(c)
				rank = func(i int) int { return rk[i] }
			}
		}
		vals := make([]int, len(s.sel))
		for j, i := range s.sel {
			vals[j] = rank(i)
		}
		if s.multi {
			sort.Ints(vals)
		}
		out := make([]any, len(vals))
		for j, v := range vals {
			if rt == rtRevIndex || rt == rtRevRank {
				v = s.n - 1 - v
			}
			out[j] = int64(v)
		}
		if !s.multi {
			if len(out) == 0 {
				return nil, rcOK
			}
			return out[0], rcOK
		}
		return &listValue{items: out}, rcOK
	case rtKey, rtValue:
		if rt == rtKey && !isMap {
			return nil, rcParameter
		}
		out := make([]any, len(s.sel))
		for j, i := range s.sel {
			if rt == rtKey {
				out[j] = c.key(i)
			} else {
				out[j] = c.value(i)
			}
		}
		if !s.multi {
			if len(out) == 0 {
				return nil, rcOK
			}
			return out[0], rcOK
		}
		return &listValue{items: out}, rcOK
	case rtKeyValue, rtUnorderedMap, rtOrderedMap:
		if !isMap {
			return nil, rcParameter
		}
		m := &mapValue{flags: mapPreserveOrder}
		switch rt {
		case rtUnorderedMap:
			m.flags = 0
		case rtOrderedMap:
			m.flags = mapKeyOrdered
		}
		for _, i := range s.sel {
			m.entries = append(m.entries, mapEntry{k: c.key(i), v: c.value(i)})
		}
		if rt != rtKeyValue {
			m.entries = sortDedupEntries(m.entries)
		}
		return m, rcOK
	}
	return nil, rcParameter
}

// selectIndexRange selects [start,end) by index.
func selectIndexRange(n, start, end int) []int {
	out := make([]int, 0, end-start)
	for i := start; i < end; i++ {
		out = append(out, i)
	}
	return out
}

// selectRankRange selects ranks [start,end) in rank order.
func selectRankRange(c container, start, end int) []int {
	order := rankOrder(c.length(), c.value)
	return append([]int{}, order[start:end]...)
}

// selectValueInterval selects elements with begin <= value < end, in index
// order. A nil end means no upper bound.
func selectValueInterval(c container, begin any, end any, hasEnd bool) []int {
	var out []int
	for i := 0; i < c.length(); i++ {
		v := c.value(i)
		if compare(v, begin) < 0 {
			continue
		}
		if hasEnd && compare(v, end) >= 0 {
			continue
		}
		out = append(out, i)
	}
	return out
}

// selectValues selects elements equal to any of vals, in index order.
func selectValues(c container, vals []any) []int {
	var out []int
	for i := 0; i < c.length(); i++ {
		v := c.value(i)
		for _, w := range vals {
			if compare(v, w) == 0 {
				out = append(out, i)
				break
			}
		}
	}
	return out
}

// selectRelRank selects by rank relative to value: the rank where value
// would be inserted, plus rank, for count elements.
func selectRelRank(c container, value any, rank, count int64, hasCount bool) []int {
	order := rankOrder(c.length(), c.value)
	base := sort.Search(len(order), func(i int) bool { return compare(c.value(order[i]), value) >= 0 })
	start, end := relRange(int64(base), rank, count, hasCount, len(order))
	return append([]int{}, order[start:end]...)
}

// relRange resolves a relative range: start at base+offset, count elements
// (to the end without count), clipped to [0,n).
func relRange(base, offset, count int64, hasCount bool, n int) (int, int) {
	start := base + offset
	end := int64(n)
	if hasCount {
		if count < 0 {
			return 0, 0
		}
		end = start + count
	}
	if start < 0 {
		start = 0
	}
	if end > int64(n) {
		end = int64(n)
	}
	if start >= end {
		return 0, 0
	}
	return int(start), int(end)
}

// keepMask marks the selected indexes among n elements.
func keepMask(n int, sel []int) []bool {
	rm := make([]bool, n)
	for _, i := range sel {
		rm[i] = true
	}
	return rm
}
