package aerospiketest

import "sort"

// List op codes.
const (
	listSetType              = 0
	listAppend               = 1
	listAppendItems          = 2
	listInsert               = 3
	listInsertItems          = 4
	listPop                  = 5
	listPopRange             = 6
	listRemove               = 7
	listRemoveRange          = 8
	listSet                  = 9
	listTrim                 = 10
	listClear                = 11
	listIncrement            = 12
	listSort                 = 13
	listSize                 = 16
	listGet                  = 17
	listGetRange             = 18
	listGetByIndex           = 19
	listGetByRank            = 21
	listGetByValue           = 22
	listGetByValueList       = 23
	listGetByIndexRange      = 24
	listGetByValueInterval   = 25
	listGetByRankRange       = 26
	listGetByValueRelRank    = 27
	listRemoveByIndex        = 32
	listRemoveByRank         = 34
	listRemoveByValue        = 35
	listRemoveByValueList    = 36
	listRemoveByIndexRange   = 37
	listRemoveByValueInterva = 38
	listRemoveByRankRange    = 39
	listRemoveByValueRelRank = 40
)

// maxListPad bounds how far past the end a set, insert or increment may
// pad a list with nils; the padding would exceed any record size anyway.
const maxListPad = 1 << 20

// List write flags.
const (
	listWriteAddUnique     = 1
	listWriteInsertBounded = 2
	listWriteNoFail        = 4
	listWritePartial       = 8
)

// List sort flags.
const (
	listSortDescending     = 1
	listSortDropDuplicates = 2
)

// listOp runs a list op on the value in slot.
func listOp(slot *any, code int, args []any) (any, byte) {
	var l *listValue
	switch x := (*slot).(type) {
	case nil:
	case *listValue:
		l = x
	default:
		return nil, rcBinType
	}
	create := func(attr int64) *listValue {
		if l == nil {
			l = &listValue{}
			if attr&listOrdered != 0 {
				l.flags = listOrdered
			}
			*slot = l
		}
		return l
	}
	switch code {
	case listSetType:
		attr, ok := argInt(args, 0)
		if !ok {
			return nil, rcParameter
		}
		create(attr)
		if attr&listOrdered != 0 {
			l.flags = listOrdered
			sortValues(l.items)
		} else {
			l.flags = 0
		}
		return nil, rcOK
	case listAppend, listAppendItems:
		if len(args) < 1 {
			return nil, rcParameter
		}
		items := args[:1]
		if code == listAppendItems {
			var ok bool
			if items, ok = listArg(args, 0); !ok {
				return nil, rcParameter
			}
		}
		attr, _, rc := argOptInt(args, 1)
		if rc != rcOK {
			return nil, rc
		}
		flags, _, rc := argOptInt(args, 2)
		if rc != rcOK {
			return nil, rc
		}
		if rc := checkStorable(items); rc != rcOK {
			return nil, rc
		}
		create(attr)
		return listAdd(l, len(l.items), items, flags)
	case listInsert, listInsertItems:
		idx, ok := argInt(args, 0)
		if !ok || len(args) < 2 {
			return nil, rcParameter
		}
		items := args[1:2]
		if code == listInsertItems {
			if items, ok = listArg(args, 1); !ok {
				return nil, rcParameter
			}
		}
		flags, _, rc := argOptInt(args, 2)
		if rc != rcOK {
			return nil, rc
		}
		if rc := checkStorable(items); rc != rcOK {
			return nil, rc
		}
		create(0)
		if l.ordered() {
			return nil, rcOpNotApplicable
		}
		n := int64(len(l.items))
		if idx < 0 {
			idx += n
			if idx < 0 {
				if flags&listWriteNoFail != 0 {
					return n, rcOK
				}
				return nil, rcOpNotApplicable
			}
		}
		if idx > n && flags&listWriteInsertBounded != 0 {
			if flags&listWriteNoFail != 0 {
				return n, rcOK
			}
			return nil, rcOpNotApplicable
		}
		if idx-n > maxListPad {
			return nil, rcParameter
		}
		return listAdd(l, int(idx), items, flags)
	case listSet:
		idx, ok := argInt(args, 0)
		if !ok || len(args) < 2 {
			return nil, rcParameter
		}
		flags, _, rc := argOptInt(args, 2)
		if rc != rcOK {
			return nil, rc
		}
		if rc := checkStorable(args[1:2]); rc != rcOK {
			return nil, rc
		}
		create(0)
		if l.ordered() {
			return nil, rcOpNotApplicable
		}
		n := int64(len(l.items))
		if idx < 0 {
			idx += n
			if idx < 0 {
				return nil, rcOpNotApplicable
			}
		}
		if idx >= n && flags&listWriteInsertBounded != 0 {
			if flags&listWriteNoFail != 0 {
				return nil, rcOK
			}
			return nil, rcOpNotApplicable
		}
		if idx-n > maxListPad {
			return nil, rcParameter
		}
		if flags&listWriteAddUnique != 0 {
			for i, it := range l.items {
				if int64(i) != idx && compare(it, args[1]) == 0 {
					if flags&listWriteNoFail != 0 {
						return nil, rcOK
					}
					return nil, rcElementExists
				}
			}
		}
		for int64(len(l.items)) <= idx {
			l.items = append(l.items, nil)
		}
		l.items[idx] = args[1]
		return nil, rcOK
	case listIncrement:
		idx, ok := argInt(args, 0)
		if !ok {
			return nil, rcParameter
		}
		var delta any = int64(1)
		if len(args) > 1 && args[1] != nil {
			delta = args[1]
		}
		switch delta.(type) {
		case int64, float64:
		default:
			return nil, rcParameter
		}
		create(0)
		n := int64(len(l.items))
		if idx < 0 {
			idx += n
			if idx < 0 {
				return nil, rcOpNotApplicable
			}
		}
		if idx-n > maxListPad {
			return nil, rcParameter
		}
		var cur any = int64(0)
		if _, ok := delta.(float64); ok {
			cur = float64(0)
		}
		if idx < n {
			cur = l.items[idx]
			if cur == nil {
				cur = int64(0)
			}
		}
		nv, rc := numAdd(cur, delta, false)
		if rc != rcOK {
			return nil, rc
		}
		if l.ordered() {
			if idx < n {
				l.items = append(l.items[:idx:idx], l.items[idx+1:]...)
			}
			return nv, listInsertSorted(l, nv)
		}
		for int64(len(l.items)) <= idx {
			l.items = append(l.items, nil)
		}
		l.items[idx] = nv
		return nv, rcOK
	case listClear:
		if l != nil {
			l.items = nil
		}
		return nil, rcOK
	case listSort:
		flags, _, rc := argOptInt(args, 0)
		if rc != rcOK {
			return nil, rc
		}
		if l == nil {
			return nil, rcOK
		}
		sortValues(l.items)
		if flags&listSortDropDuplicates != 0 {
			out := l.items[:0]
			for _, it := range l.items {
				if len(out) > 0 && compare(out[len(out)-1], it) == 0 {
					continue
				}
				out = append(out, it)
			}
			l.items = out
		}
		if flags&listSortDescending != 0 {
			for i, j := 0, len(l.items)-1; i < j; i, j = i+1, j-1 {
				l.items[i], l.items[j] = l.items[j], l.items[i]
			}
		}
		return nil, rcOK
	case listSize:
		if l == nil {
			return nil, rcOK
		}
		return int64(len(l.items)), rcOK
	case listGet, listPop, listRemove:
		idx, ok := argInt(args, 0)
		if !ok {
			return nil, rcParameter
		}
		if l == nil {
			return nil, rcOK
		}
		i, ok := singleIndex(idx, len(l.items))
		if !ok {
			if code == listRemove {
				return int64(0), rcOK
			}
			return nil, rcOpNotApplicable
		}
		v := l.items[i]
		if code == listGet {
			return v, rcOK
		}
		l.items = append(l.items[:i:i], l.items[i+1:]...)
		if code == listRemove {
			return int64(1), rcOK
		}
		return v, rcOK
	case listGetRange, listPopRange, listRemoveRange, listTrim:
		idx, ok := argInt(args, 0)
		cnt, has, rc := argOptInt(args, 1)
		if !ok || rc != rcOK {
			return nil, rcParameter
		}
		if l == nil {
			return nil, rcOK
		}
		start, end := indexRange(idx, cnt, has, len(l.items))
		sel := append([]any{}, l.items[start:end]...)
		switch code {
		case listGetRange:
			return &listValue{items: sel}, rcOK
		case listTrim:
			removed := len(l.items) - len(sel)
			l.items = sel
			return int64(removed), rcOK
		}
		l.items = append(l.items[:start:start], l.items[end:]...)
		if code == listRemoveRange {
			return int64(len(sel)), rcOK
		}
		return &listValue{items: sel}, rcOK
	}
	getCode, remove := code, false
	if code >= listRemoveByIndex && code <= listRemoveByValueRelRank {
		getCode, remove = code-13, true
	}
	rt, ok := argInt(args, 0)
	if !ok {
		return nil, rcParameter
	}
	if l == nil {
		return nil, rcOK
	}
	s, rc := listSelect(l, getCode, args[1:])
	if rc != rcOK {
		return nil, rc
	}
	res, rc := buildResult(l, s, rt, false)
	if rc != rcOK {
		return nil, rc
	}
	if remove && len(s.sel) > 0 {
		rm := keepMask(len(l.items), s.sel)
		out := l.items[:0]
		for i, it := range l.items {
			if !rm[i] {
				out = append(out, it)
			}
		}
		l.items = out
	}
	return res, rcOK
}

func checkStorable(items []any) byte {
	for _, it := range items {
		if !storable(it) {
			return rcParameter
		}
	}
	return rcOK
}

// listAdd appends or inserts items at idx (padding with nil when beyond the
// end), honouring the add-unique, no-fail and partial flags. It returns the
// new size.
func listAdd(l *listValue, idx int, items []any, flags int64) (any, byte) {
	var add []any
	if flags&listWriteAddUnique != 0 {
		failed := false
		for _, it := range items {
			dup := false
			for _, have := range l.items {
				if compare(have, it) == 0 {
					dup = true
					break
				}
			}
			for _, have := range add {
				if !dup && compare(have, it) == 0 {
					dup = true
				}
			}
			if dup {
				failed = true
				continue
			}
			add = append(add, it)
		}
		if failed {
			if flags&listWriteNoFail == 0 {
				return nil, rcElementExists
			}
			if flags&listWritePartial == 0 {
				add = nil
			}
		}
	} else {
		add = items
	}
	if l.ordered() {
		for _, it := range add {
			if rc := listInsertSorted(l, it); rc != rcOK {
				return nil, rc
			}
		}
		return int64(len(l.items)), rcOK
	}
	if len(add) == 0 {
		return int64(len(l.items)), rcOK
	}
	for len(l.items) < idx {
		l.items = append(l.items, nil)
	}
	tail := append([]any{}, l.items[idx:]...)
	l.items = append(append(l.items[:idx], add...), tail...)
	return int64(len(l.items)), rcOK
}

// listInsertSorted inserts v into an ordered list after equal values.
func listInsertSorted(l *listValue, v any) byte {
	i := sort.Search(len(l.items), func(i int) bool { return compare(l.items[i], v) > 0 })
	l.items = append(l.items, nil)
	copy(l.items[i+1:], l.items[i:])
	l.items[i] = v
	return rcOK
}

// listSelect resolves the elements a get/remove-by op selects.
func listSelect(l *listValue, code int, args []any) (*selector, byte) {
	s := &selector{n: len(l.items)}
	switch code {
	case listGetByIndex, listGetByRank:
		idx, ok := argInt(args, 0)
		if !ok {
			return nil, rcParameter
		}
		i, ok := singleIndex(idx, len(l.items))
		if !ok {
			return nil, rcOpNotApplicable
		}
		if code == listGetByRank && !l.ordered() {
			i = heapRankRange(l.items, i, 1)[0]
		}
		s.sel = []int{i}
	case listGetByValue:
		if len(args) < 1 {
			return nil, rcParameter
		}
		s.sel, s.multi = selectValues(l, args[:1]), true
	case listGetByValueList:
		vals, ok := listArg(args, 0)
		if !ok {
			return nil, rcParameter
		}
		s.sel, s.multi = selectValues(l, vals), true
	case listGetByIndexRange, listGetByRankRange:
		idx, ok := argInt(args, 0)
		cnt, has, rc := argOptInt(args, 1)
		if !ok || rc != rcOK {
			return nil, rcParameter
		}
		start, end := indexRange(idx, cnt, has, len(l.items))
		s.multi = true
		if code == listGetByRankRange {
			l.selectRanks(s, start, end)
		} else {
			s.sel = selectIndexRange(len(l.items), start, end)
		}
	case listGetByValueInterval:
		if len(args) < 1 {
			return nil, rcParameter
		}
		var end any
		if len(args) > 1 {
			end = args[1]
		}
		s.sel, s.multi = selectValueInterval(l, args[0], end, len(args) > 1), true
	case listGetByValueRelRank:
		if len(args) < 2 {
			return nil, rcParameter
		}
		off, ok := args[1].(int64)
		cnt, has, rc := argOptInt(args, 2)
		if !ok || rc != rcOK {
			return nil, rcParameter
		}
		below := 0
		for _, it := range l.items {
			if compare(it, args[0]) < 0 {
				below++
			}
		}
		start, end := relRange(int64(below), off, cnt, has, len(l.items))
		s.multi = true
		l.selectRanks(s, start, end)
	default:
		return nil, rcParameter
	}
	return s, rcOK
}

// selectRanks selects the elements of ranks [start,end) as a real server
// does: an ordered list by index; an unordered one through heapRankRange,
// whose order the values are reported in.
func (l *listValue) selectRanks(s *selector, start, end int) {
	s.rankOrder, s.rankRange, s.rankStart = true, true, start
	if l.ordered() {
		s.sel = selectIndexRange(len(l.items), start, end)
		return
	}
	s.sel = heapRankRange(l.items, start, end-start)
}

// heapRankRange returns the positions of the elements of ranks
// [start,start+count) of an unordered list, found as Aerospike finds them:
// a binary heap over all positions, a min-heap when the range is nearer the
// low end and a max-heap otherwise, pops its top count+discard times to
// the end of its array, where discard is the number of ranks between the
// range and that end. The positions come in the order they are left in the
// array, which is the order a real server reports the values in: from the
// highest rank down for a min-heap, from the lowest up for a max-heap.
// Among equal values, the heap decides which are selected.
func heapRankRange(items []any, start, count int) []int {
	n := len(items)
	want, discard := -1, start // min-heap
	if tail := n - start - count; start > tail {
		want, discard = 1, tail // max-heap
	}
	heap := make([]int, n)
	for i := range heap {
		heap[i] = i
	}
	filled := n
	cmp := func(a, b int) int {
		c := compare(items[a], items[b])
		switch {
		case c < 0:
			return -1
		case c > 0:
			return 1
		}
		return 0
	}
	heapify := func(i int) {
		for {
			c1, c2 := 2*i+1, 2*i+2
			if c1 >= filled {
				return
			}
			child := c1
			if c2 < filled {
				if c := cmp(heap[c1], heap[c2]); c != want && c != 0 {
					child = c2
				}
			}
			if cmp(heap[child], heap[i]) != want {
				return
			}
			heap[i], heap[child] = heap[child], heap[i]
			i = child
		}
	}
	for i := filled/2 - 1; i >= 0; i-- {
		heapify(i)
	}
	for end := n - 1; end >= n-count-discard; end-- {
		top := heap[0]
		filled--
		heap[0] = heap[filled]
		heapify(0)
		heap[end] = top
	}
	return heap[filled : filled+count]
}
