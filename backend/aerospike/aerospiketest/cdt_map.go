package aerospiketest

import "slices"

// Map op codes.
const (
	mapSetType             = 64
	mapAdd                 = 65
	mapAddItems            = 66
	mapPut                 = 67
	mapPutItems            = 68
	mapReplace             = 69
	mapReplaceItems        = 70
	mapIncrement           = 73
	mapDecrement           = 74
	mapClear               = 75
	mapRemoveByKey         = 76
	mapRemoveByIndex       = 77
	mapRemoveByRank        = 79
	mapRemoveKeyList       = 81
	mapRemoveByValue       = 82
	mapRemoveValueList     = 83
	mapRemoveKeyInterval   = 84
	mapRemoveIndexRange    = 85
	mapRemoveValueInterval = 86
	mapRemoveRankRange     = 87
	mapRemoveKeyRelIndex   = 88
	mapRemoveValueRelRank  = 89
	mapSize                = 96
	mapGetByKey            = 97
	mapGetByIndex          = 98
	mapGetByRank           = 100
	mapGetByValue          = 102
	mapGetKeyInterval      = 103
	mapGetIndexRange       = 104
	mapGetValueInterval    = 105
	mapGetRankRange        = 106
	mapGetKeyList          = 107
	mapGetValueList        = 108
	mapGetKeyRelIndex      = 109
	mapGetValueRelRank     = 110
)

// Map write flags.
const (
	mapWriteCreateOnly = 1
	mapWriteUpdateOnly = 2
	mapWriteNoFail     = 4
	mapWritePartial    = 8
)

// mapGetOf returns the get op code equivalent to a remove op code, or 0
// when code is not a remove op.
func mapGetOf(code int) int {
	switch code {
	case mapRemoveByKey:
		return mapGetByKey
	case mapRemoveByIndex:
		return mapGetByIndex
	case mapRemoveByRank:
		return mapGetByRank
	case mapRemoveKeyList:
		return mapGetKeyList
	case mapRemoveByValue:
		return mapGetByValue
	case mapRemoveValueList:
		return mapGetValueList
	case mapRemoveKeyInterval:
		return mapGetKeyInterval
	case mapRemoveIndexRange:
		return mapGetIndexRange
	case mapRemoveValueInterval:
		return mapGetValueInterval
	case mapRemoveRankRange:
		return mapGetRankRange
	case mapRemoveKeyRelIndex:
		return mapGetKeyRelIndex
	case mapRemoveValueRelRank:
		return mapGetValueRelRank
	}
	return 0
}

// mapOrderFlags converts a map attribute to stored flags.
func mapOrderFlags(attr int64) byte {
	switch attr & 0x03 {
	case 1:
		return mapKeyOrdered
	case 3:
		return mapKeyValueOrder
	}
	return 0
}

// mapOp runs a map op on the value in slot.
func mapOp(slot *any, code int, args []any) (any, byte) {
	var m *mapValue
	switch x := (*slot).(type) {
	case nil:
	case *mapValue:
		m = x
	default:
		return nil, rcBinType
	}
	switch code {
	case mapSetType:
		attr, ok := argInt(args, 0)
		if !ok {
			return nil, rcParameter
		}
		if m == nil {
			*slot = newMap(mapOrderFlags(attr))
			return nil, rcOK
		}
		m.flags = mapOrderFlags(attr)
		m.cache.packed.Store(nil)
		return nil, rcOK
	case mapAdd, mapPut, mapReplace:
		if len(args) < 2 {
			return nil, rcParameter
		}
		items := []mapEntry{{k: args[0], v: args[1]}}
		return mapWrite(slot, m, code, items, args[2:])
	case mapAddItems, mapPutItems, mapReplaceItems:
		if len(args) < 1 {
			return nil, rcParameter
		}
		in, ok := args[0].(*mapValue)
		if !ok {
			return nil, rcParameter
		}
		return mapWrite(slot, m, code, in.entries, args[1:])
	case mapIncrement, mapDecrement:
		return mapIncr(slot, m, code, args)
	case mapClear:
		if m != nil {
			m.clear()
		}
		return nil, rcOK
	case mapSize:
		if m == nil {
			return nil, rcOK
		}
		return int64(len(m.entries)), rcOK
	}
	getCode, remove := mapGetOf(code), true
	if getCode == 0 {
		getCode, remove = code, false
	}
	rt, ok := argInt(args, 0)
	if !ok {
		return nil, rcParameter
	}
	if m == nil {
		return nil, rcOK
	}
	if !remove && (rt == rtCount || rt == rtExists) {
		if n, ok := mapCount(m, getCode, args[1:]); ok {
			if rt == rtExists {
				return n > 0, rcOK
			}
			return int64(n), rcOK
		}
	}
	s, rc := mapSelect(m, getCode, args[1:])
	if rc != rcOK {
		return nil, rc
	}
	res, rc := buildResult(m, s, rt, true)
	if rc != rcOK {
		return nil, rc
	}
	if remove && len(s.sel) > 0 {
		sel := s.sel
		if s.rankOrder || !slices.IsSorted(sel) {
			sel = slices.Clone(sel)
			slices.Sort(sel)
		}
		m.removeAt(sel)
	}
	return res, rcOK
}

// mapCount counts the elements a value-interval get selects, without
// listing them, when the map's value index allows it.
func mapCount(m *mapValue, code int, args []any) (int, bool) {
	if code != mapGetValueInterval || len(args) < 1 {
		return 0, false
	}
	lo, hi, ok := valueInterval(m, args)
	return hi - lo, ok
}

// valueInterval returns the ranks [lo,hi) of the values in the interval
// args[0] <= v < args[1] (no upper bound without args[1]), when the map's
// value index allows a binary search.
func valueInterval(m *mapValue, args []any) (int, int, bool) {
	x := m.valueIndex()
	if x == nil || containsWild(args[0]) || (len(args) > 1 && containsWild(args[1])) {
		return 0, 0, false
	}
	lo, hi := m.lowerBound(x, args[0]), len(x.order)
	if len(args) > 1 {
		hi = m.lowerBound(x, args[1])
	}
	return lo, max(lo, hi), true
}

// sortedPositions returns the entry positions of ranks [lo,hi) in index
// order.
func sortedPositions(m *mapValue, x *valueIndex, lo, hi int) []int {
	if lo >= hi {
		return nil
	}
	sel := m.positions(x, lo, hi)
	slices.Sort(sel)
	return sel
}

// mapSelect resolves the elements a get/remove op selects.
func mapSelect(m *mapValue, code int, args []any) (*selector, byte) {
	s := &selector{n: len(m.entries)}
	switch code {
	case mapGetByKey:
		if len(args) < 1 {
			return nil, rcParameter
		}
		if i, ok := m.find(args[0]); ok {
			s.sel = []int{i}
		}
	case mapGetByIndex, mapGetByRank:
		idx, ok := argInt(args, 0)
		if !ok {
			return nil, rcParameter
		}
		i, ok := singleIndex(idx, len(m.entries))
		if !ok {
			return nil, rcOpNotApplicable
		}
		if code == mapGetByIndex {
			s.sel = []int{i}
		} else if x := m.valueIndex(); x != nil {
			s.sel = m.positions(x, i, i+1)
		} else {
			s.sel = []int{rankOrder(len(m.entries), m.value)[i]}
		}
	case mapGetByValue:
		if len(args) < 1 {
			return nil, rcParameter
		}
		s.sel, s.multi = mapSelectValues(m, args[:1]), true
	case mapGetValueList:
		l, ok := listArg(args, 0)
		if !ok {
			return nil, rcParameter
		}
		s.sel, s.multi = mapSelectValues(m, l), true
	case mapGetKeyList:
		l, ok := listArg(args, 0)
		if !ok {
			return nil, rcParameter
		}
		for _, k := range l {
			if i, ok := m.find(k); ok {
				s.sel = append(s.sel, i)
			}
		}
		slices.Sort(s.sel)
		s.sel = slices.Compact(s.sel)
		s.multi = true
	case mapGetKeyInterval:
		if len(args) < 1 {
			return nil, rcParameter
		}
		begin := args[0]
		s.multi = true
		for i, e := range m.entries {
			if compare(e.k, begin) < 0 {
				continue
			}
			if len(args) > 1 && compare(e.k, args[1]) >= 0 {
				continue
			}
			s.sel = append(s.sel, i)
		}
	case mapGetValueInterval:
		if len(args) < 1 {
			return nil, rcParameter
		}
		s.multi = true
		if lo, hi, ok := valueInterval(m, args); ok {
			s.sel = sortedPositions(m, m.valueIndex(), lo, hi)
			break
		}
		var end any
		if len(args) > 1 {
			end = args[1]
		}
		s.sel = selectValueInterval(m, args[0], end, len(args) > 1)
	case mapGetIndexRange:
		idx, ok := argInt(args, 0)
		cnt, has, rc := argOptInt(args, 1)
		if !ok || rc != rcOK {
			return nil, rcParameter
		}
		start, end := indexRange(idx, cnt, has, len(m.entries))
		s.sel, s.multi = selectIndexRange(len(m.entries), start, end), true
	case mapGetRankRange:
		r, ok := argInt(args, 0)
		cnt, has, rc := argOptInt(args, 1)
		if !ok || rc != rcOK {
			return nil, rcParameter
		}
		start, end := indexRange(r, cnt, has, len(m.entries))
		s.multi, s.rankOrder = true, true
		if x := m.valueIndex(); x != nil {
			s.sel = m.positions(x, start, end)
		} else {
			s.sel = selectRankRange(m, start, end)
		}
	case mapGetKeyRelIndex:
		if len(args) < 2 {
			return nil, rcParameter
		}
		off, ok := args[1].(int64)
		cnt, has, rc := argOptInt(args, 2)
		if !ok || rc != rcOK {
			return nil, rcParameter
		}
		base, _ := m.find(args[0])
		start, end := relRange(int64(base), off, cnt, has, len(m.entries))
		s.sel, s.multi = selectIndexRange(len(m.entries), start, end), true
	case mapGetValueRelRank:
		if len(args) < 2 {
			return nil, rcParameter
		}
		off, ok := args[1].(int64)
		cnt, has, rc := argOptInt(args, 2)
		if !ok || rc != rcOK {
			return nil, rcParameter
		}
		s.multi, s.rankOrder = true, true
		if x := m.valueIndex(); x != nil {
			start, end := relRange(int64(m.lowerBound(x, args[0])), off, cnt, has, len(x.order))
			s.sel = m.positions(x, start, end)
		} else {
			s.sel = selectRelRank(m, args[0], off, cnt, has)
		}
	default:
		return nil, rcParameter
	}
	return s, rcOK
}

// mapSelectValues selects the entries whose value equals one of vals, in
// index order.
func mapSelectValues(m *mapValue, vals []any) []int {
	x := m.valueIndex()
	if x == nil || slices.ContainsFunc(vals, containsWild) {
		return selectValues(m, vals)
	}
	var out []int
	for _, v := range vals {
		out = append(out, m.positions(x, m.lowerBound(x, v), m.upperBound(x, v))...)
	}
	slices.Sort(out)
	return slices.Compact(out)
}

func listArg(args []any, i int) ([]any, bool) {
	if i >= len(args) {
		return nil, false
	}
	l, ok := args[i].(*listValue)
	if !ok {
		return nil, false
	}
	return l.items, true
}

// mapWrite implements add/put/replace of one or more items. opts holds the
// optional [attr, flags] arguments.
func mapWrite(slot *any, m *mapValue, code int, items []mapEntry, opts []any) (any, byte) {
	var attr, flags int64
	if len(opts) > 0 {
		a, ok := opts[0].(int64)
		if !ok {
			return nil, rcParameter
		}
		attr = a
	}
	if len(opts) > 1 {
		f, ok := opts[1].(int64)
		if !ok {
			return nil, rcParameter
		}
		flags = f
	}
	switch code {
	case mapAdd, mapAddItems:
		flags |= mapWriteCreateOnly
	case mapReplace, mapReplaceItems:
		flags |= mapWriteUpdateOnly
	}
	for _, it := range items {
		if !storable(it.k) || !storable(it.v) {
			return nil, rcParameter
		}
		switch it.k.(type) {
		case *listValue, *mapValue, nil:
			return nil, rcParameter
		}
	}
	created := false
	if m == nil {
		m = newMap(mapOrderFlags(attr))
		created = true
	}
	var apply []mapEntry
	failed := false
	var failRC byte
	for _, it := range items {
		_, exists := m.find(it.k)
		switch {
		case flags&mapWriteCreateOnly != 0 && exists:
			failed, failRC = true, rcElementExists
			continue
		case flags&mapWriteUpdateOnly != 0 && !exists:
			failed, failRC = true, rcElementNotFound
			continue
		}
		apply = append(apply, it)
	}
	if failed {
		if flags&mapWriteNoFail == 0 {
			return nil, failRC
		}
		if flags&mapWritePartial == 0 {
			apply = nil
		}
	}
	for _, it := range apply {
		i, exists := m.find(it.k)
		m.put(i, exists, it.k, it.v)
	}
	if created {
		*slot = m
	}
	return int64(len(m.entries)), rcOK
}

// mapIncr implements increment and decrement: [op, key, delta?, attr?].
func mapIncr(slot *any, m *mapValue, code int, args []any) (any, byte) {
	if len(args) < 1 {
		return nil, rcParameter
	}
	key := args[0]
	var delta any = int64(1)
	if len(args) > 1 && args[1] != nil {
		delta = args[1]
	}
	var attr int64
	if len(args) > 2 {
		a, ok := args[2].(int64)
		if !ok {
			return nil, rcParameter
		}
		attr = a
	}
	switch delta.(type) {
	case int64, float64:
	default:
		return nil, rcParameter
	}
	if m == nil {
		m = newMap(mapOrderFlags(attr))
		*slot = m
	}
	i, exists := m.find(key)
	var cur any = int64(0)
	if exists {
		cur = m.entries[i].v
	} else if _, ok := delta.(float64); ok {
		cur = float64(0)
	}
	nv, rc := numAdd(cur, delta, code == mapDecrement)
	if rc != rcOK {
		return nil, rc
	}
	m.put(i, exists, key, nv)
	return nv, rcOK
}

// numAdd adds (or subtracts) delta to a numeric value, converting delta to
// the value's type.
func numAdd(cur, delta any, sub bool) (any, byte) {
	switch c := cur.(type) {
	case int64:
		var d int64
		switch x := delta.(type) {
		case int64:
			d = x
		case float64:
			d = int64(x)
		}
		if sub {
			return c - d, rcOK
		}
		return c + d, rcOK
	case float64:
		var d float64
		switch x := delta.(type) {
		case int64:
			d = float64(x)
		case float64:
			d = x
		}
		if sub {
			return c - d, rcOK
		}
		return c + d, rcOK
	}
	return nil, rcBinType
}
