package aerospiketest_test

import (
	"fmt"
	"testing"

	as "github.com/aerospike/aerospike-client-go/v8"
	"github.com/aerospike/aerospike-client-go/v8/types"
)

func TestListBasicOps(t *testing.T) {
	tg := newTarget(t)
	k := tg.key(t, tg.set(t), "l")
	rec, err := tg.client.Operate(nil, k,
		as.ListAppendOp("l", 1),
		as.ListAppendOp("l", 2, 3),
		as.ListInsertOp("l", 0, "z"),
		as.ListSizeOp("l"),
		as.ListGetOp("l", 0),
		as.ListGetOp("l", -1),
		as.ListGetRangeOp("l", 1, 2),
		as.ListGetRangeFromOp("l", 2),
	)
	noErr(t, err)
	expectEqual(t, "results", rec.Bins["l"], as.OpResults{1, 3, 4, 4, "z", 3, []any{1, 2}, []any{2, 3}})

	rec, err = tg.client.Operate(nil, k,
		as.ListPopOp("l", 0),
		as.ListPopRangeOp("l", -2, 2),
		as.GetBinOp("l"),
	)
	noErr(t, err)
	expectEqual(t, "pops", rec.Bins["l"], as.OpResults{"z", []any{2, 3}, []any{1}})

	rec, err = tg.client.Operate(nil, k,
		as.ListAppendOp("l", 5, 4, 3, 4),
		as.ListSetOp("l", 0, 9),
		as.ListIncrementOp("l", 1, 10),
		as.ListRemoveOp("l", 2),
		as.ListRemoveRangeOp("l", 1, 1),
		as.GetBinOp("l"),
	)
	noErr(t, err)
	expectEqual(t, "modify", rec.Bins["l"], as.OpResults{5, 15, 1, 1, []any{9, 3, 4}})

	rec, err = tg.client.Operate(nil, k,
		as.ListAppendOp("l", 7, 1, 8),
		as.ListTrimOp("l", 1, 3),
		as.GetBinOp("l"),
		as.ListClearOp("l"),
		as.ListSizeOp("l"),
	)
	noErr(t, err)
	expectEqual(t, "trim/clear", rec.Bins["l"], as.OpResults{6, 3, []any{3, 4, 7}, 0})

	_, err = tg.client.Operate(nil, k, as.ListGetOp("l", 5))
	wantCode(t, err, types.OP_NOT_APPLICABLE)
	_, err = tg.client.Operate(nil, k, as.ListPopOp("l", 0))
	wantCode(t, err, types.OP_NOT_APPLICABLE)
}

func TestListByValueRankIndex(t *testing.T) {
	tg := newTarget(t)
	k := tg.key(t, tg.set(t), "l")
	noErr(t, tg.client.Put(nil, k, as.BinMap{"l": []any{5, 1, 4, 1, 9, 2}}))
	rec, err := tg.client.Operate(nil, k,
		as.ListGetByValueOp("l", 1, as.ListReturnTypeIndex),
		as.ListGetByValueOp("l", 1, as.ListReturnTypeCount),
		as.ListGetByValueRangeOp("l", 2, 5, as.ListReturnTypeValue),
		as.ListGetByRankOp("l", 0, as.ListReturnTypeValue),
		as.ListGetByRankOp("l", -1, as.ListReturnTypeIndex),
		as.ListGetByRankRangeCountOp("l", 0, 3, as.ListReturnTypeValue),
		as.ListGetByIndexOp("l", 2, as.ListReturnTypeValue),
		as.ListGetByIndexRangeCountOp("l", 1, 3, as.ListReturnTypeValue),
		as.ListGetByValueListOp("l", []any{9, 4}, as.ListReturnTypeValue),
		as.ListGetByValueRangeOp("l", 2, 5, as.ListReturnTypeValue|as.ListReturnTypeInverted),
		as.ListGetByValueOp("l", 7, as.ListReturnTypeExists),
		as.ListGetByValueRelativeRankRangeCountOp("l", 4, 1, 2, as.ListReturnTypeValue),
	)
	noErr(t, err)
	// Rank ranges of an unordered list come in the order a real server's
	// heap leaves them (TestListRankRangeOrder).
	expectEqual(t, "reads", rec.Bins["l"], as.OpResults{
		[]any{1, 3}, 2, []any{4, 2}, 1, 4, []any{2, 1, 1}, 4, []any{1, 4, 1}, []any{4, 9},
		[]any{5, 1, 1, 9}, false, []any{5, 9},
	})
	rec, err = tg.client.Operate(nil, k,
		as.ListRemoveByValueOp("l", 1, as.ListReturnTypeCount),
		as.ListRemoveByRankOp("l", -1, as.ListReturnTypeValue),
		as.ListRemoveByIndexOp("l", 0, as.ListReturnTypeValue),
		as.ListRemoveByValueRangeOp("l", as.ListReturnTypeValue, 3, 10),
		as.GetBinOp("l"),
	)
	noErr(t, err)
	expectEqual(t, "removes", rec.Bins["l"], as.OpResults{2, 9, 5, []any{4}, []any{2}})
}

// TestListRankRangeOrder checks what a real server returns for rank
// ranges of unordered lists: values from the highest rank of the range
// down when the range is nearer the low end, from the lowest up otherwise,
// and, among equal values, the elements its heap selects. Ordered lists
// return ranks in order.
func TestListRankRangeOrder(t *testing.T) {
	tg := newTarget(t)
	set := tg.set(t)
	cases := []struct {
		list []any
		ops  []*as.Operation
		want as.OpResults
	}{
		{
			list: []any{5, 1, 4, 1, 9, 2},
			ops: []*as.Operation{
				as.ListGetByRankRangeCountOp("l", 0, 3, as.ListReturnTypeValue),
				as.ListGetByRankRangeCountOp("l", 1, 4, as.ListReturnTypeValue),
				as.ListGetByRankRangeOp("l", 0, as.ListReturnTypeValue),
				as.ListGetByRankRangeCountOp("l", -3, 3, as.ListReturnTypeValue),
				as.ListGetByRankRangeCountOp("l", 0, 3, as.ListReturnTypeIndex),
				as.ListGetByRankRangeCountOp("l", 0, 3, as.ListReturnTypeRank),
				as.ListGetByValueRelativeRankRangeCountOp("l", 4, 0, 3, as.ListReturnTypeValue),
				as.ListGetByValueRelativeRankRangeOp("l", 2, -1, as.ListReturnTypeValue),
				as.ListGetByValueRangeOp("l", 2, 9, as.ListReturnTypeValue),
				as.ListGetByRankRangeCountOp("l", 0, 3, as.ListReturnTypeValue|as.ListReturnTypeInverted),
			},
			want: as.OpResults{[]any{2, 1, 1}, []any{5, 4, 2, 1}, []any{9, 5, 4, 2, 1, 1}, []any{4, 5, 9},
				[]any{1, 3, 5}, []any{0, 1, 2}, []any{4, 5, 9}, []any{1, 2, 4, 5, 9}, []any{5, 4, 2}, []any{5, 4, 9}},
		},
		{
			list: []any{3, 1, 2},
			ops: []*as.Operation{
				as.ListGetByRankRangeCountOp("l", 0, 3, as.ListReturnTypeValue),
				as.ListGetByRankRangeCountOp("l", 1, 4, as.ListReturnTypeValue),
			},
			want: as.OpResults{[]any{3, 2, 1}, []any{2, 3}},
		},
		{
			list: []any{10, 9, 8, 7, 6, 5, 4, 3, 2, 1},
			ops: []*as.Operation{
				as.ListGetByRankRangeCountOp("l", -3, 3, as.ListReturnTypeValue),
				as.ListGetByValueRelativeRankRangeCountOp("l", 4, 0, 3, as.ListReturnTypeValue),
				as.ListGetByRankRangeCountOp("l", 0, 3, as.ListReturnTypeIndex),
			},
			want: as.OpResults{[]any{8, 9, 10}, []any{6, 5, 4}, []any{7, 8, 9}},
		},
		{
			// Ties: the heap takes the 2 at index 8, not the one at index 0.
			list: []any{2, 7, 1, 8, 2, 8, 1, 8, 2, 8},
			ops: []*as.Operation{
				as.ListGetByRankRangeCountOp("l", 0, 3, as.ListReturnTypeIndex),
				as.ListGetByRankRangeCountOp("l", 1, 4, as.ListReturnTypeValue),
				as.ListRemoveByRankRangeCountOp("l", 0, 3, as.ListReturnTypeValue),
				as.GetBinOp("l"),
			},
			want: as.OpResults{[]any{2, 6, 8}, []any{2, 2, 2, 1}, []any{2, 1, 1}, []any{2, 7, 8, 2, 8, 8, 8}},
		},
	}
	for i, c := range cases {
		k := tg.key(t, set, i)
		noErr(t, tg.client.Put(nil, k, as.BinMap{"l": c.list}))
		rec, err := tg.client.Operate(nil, k, c.ops...)
		noErr(t, err)
		expectEqual(t, fmt.Sprint(c.list), rec.Bins["l"], c.want)
	}

	k := tg.key(t, set, "ordered")
	rec, err := tg.client.Operate(nil, k,
		as.ListAppendWithPolicyOp(as.NewListPolicy(as.ListOrderOrdered, as.ListWriteFlagsDefault), "l", 5, 1, 4, 1, 9, 2),
		as.ListGetByRankRangeCountOp("l", 0, 3, as.ListReturnTypeValue),
		as.ListGetByValueRelativeRankRangeCountOp("l", 4, 0, 3, as.ListReturnTypeValue))
	noErr(t, err)
	expectEqual(t, "ordered", rec.Bins["l"], as.OpResults{6, []any{1, 1, 2}, []any{4, 5, 9}})
}

func TestListSortAndOrdered(t *testing.T) {
	tg := newTarget(t)
	k := tg.key(t, tg.set(t), "l")
	noErr(t, tg.client.Put(nil, k, as.BinMap{"l": []any{3, "b", 1, 3, "a", 2.5, []any{1}, nil, true}}))
	rec, err := tg.client.Operate(nil, k,
		as.ListSortOp("l", as.ListSortFlagsDropDuplicates),
		as.GetBinOp("l"),
	)
	noErr(t, err)
	// Aerospike order: NIL < BOOL < INT < STRING < LIST < MAP < BYTES < DOUBLE.
	expectEqual(t, "sorted", rec.Bins["l"], []any{nil, true, 1, 3, "a", "b", []any{1}, 2.5})

	k2 := tg.key(t, tg.set(t), "o")
	ordered := as.NewListPolicy(as.ListOrderOrdered, as.ListWriteFlagsDefault)
	rec, err = tg.client.Operate(nil, k2,
		as.ListAppendWithPolicyOp(ordered, "l", 5, 1, 3),
		as.ListAppendWithPolicyOp(ordered, "l", 2),
		as.GetBinOp("l"),
	)
	noErr(t, err)
	expectEqual(t, "ordered", rec.Bins["l"], as.OpResults{3, 4, []any{1, 2, 3, 5}})

	unique := as.NewListPolicy(as.ListOrderUnordered, as.ListWriteFlagsAddUnique)
	_, err = tg.client.Operate(nil, k2, as.ListAppendWithPolicyOp(unique, "l", 3))
	wantCode(t, err, types.FAIL_ELEMENT_EXISTS)
	uniqueNoFail := as.NewListPolicy(as.ListOrderUnordered, as.ListWriteFlagsAddUnique|as.ListWriteFlagsNoFail|as.ListWriteFlagsPartial)
	rec, err = tg.client.Operate(nil, k2, as.ListAppendWithPolicyOp(uniqueNoFail, "l", 3, 7))
	noErr(t, err)
	expectEqual(t, "unique partial", rec.Bins["l"], 5)
	_, err = tg.client.Operate(nil, k2, as.ListInsertOp("l", 0, 1))
	wantCode(t, err, types.OP_NOT_APPLICABLE)
}

func TestListBinType(t *testing.T) {
	tg := newTarget(t)
	k := tg.key(t, tg.set(t), "l")
	noErr(t, tg.client.Put(nil, k, as.BinMap{"i": 1}))
	_, err := tg.client.Operate(nil, k, as.ListAppendOp("i", 1))
	wantCode(t, err, types.BIN_TYPE_ERROR)
	rec, err := tg.client.Operate(nil, k, as.ListSizeOp("none"))
	noErr(t, err)
	expectEqual(t, "size of missing bin", rec.Bins["none"], nil)
}
