package aerospiketest_test

import (
	"errors"
	"sort"
	"testing"

	as "github.com/aerospike/aerospike-client-go/v8"
	"github.com/aerospike/aerospike-client-go/v8/types"
	"github.com/google/go-cmp/cmp"
)

func opResults(t *testing.T, rec *as.Record, bin string) as.OpResults {
	t.Helper()
	v, ok := rec.Bins[bin].(as.OpResults)
	if !ok {
		t.Fatalf("bin %s = %#v, want OpResults", bin, rec.Bins[bin])
	}
	return v
}

func expectEqual(t *testing.T, what string, got, want any) {
	t.Helper()
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("%s mismatch (-want +got):\n%s", what, diff)
	}
}

// The expectations below follow the client's own tests against real servers
// (cdt_map_test.go in aerospike-client-go).
func TestMapPutItemsModes(t *testing.T) {
	tg := newTarget(t)
	k := tg.key(t, tg.set(t), "m")
	putMode := as.DefaultMapPolicy()
	addMode := as.NewMapPolicy(as.MapOrder.KEY_ORDERED, as.MapWriteMode.CREATE_ONLY)
	updateMode := as.NewMapPolicy(as.MapOrder.KEY_ORDERED, as.MapWriteMode.UPDATE_ONLY)
	rec, err := tg.client.Operate(nil, k,
		as.MapPutItemsOp(addMode, "m", map[any]any{12: "myValue", -8734: "str2", 1: "my default"}),
		as.MapPutItemsOp(putMode, "m", map[any]any{12: "myval12222", 13: "str13"}),
		as.MapPutItemsOp(updateMode, "m", map[any]any{13: "myval2"}),
		as.MapPutItemsOp(updateMode, "m", map[any]any{12: 23, -8734: "changed"}),
		as.MapGetByKeyOp("m", 1, as.MapReturnType.VALUE),
		as.MapGetByKeyOp("m", -8734, as.MapReturnType.VALUE),
		as.MapGetByKeyRangeOp("m", 12, 15, as.MapReturnType.KEY_VALUE),
	)
	noErr(t, err)
	expectEqual(t, "results", rec.Bins["m"], as.OpResults{3, 4, 4, 4, "my default", "changed",
		[]as.MapPair{{Key: 12, Value: 23}, {Key: 13, Value: "myval2"}}})
	rec, err = tg.client.Get(nil, k)
	noErr(t, err)
	expectEqual(t, "stored map", rec.Bins["m"], []as.MapPair{{Key: -8734, Value: "changed"},
		{Key: 1, Value: "my default"}, {Key: 12, Value: 23}, {Key: 13, Value: "myval2"}})
}

func TestMapKeyOrderedListValues(t *testing.T) {
	tg := newTarget(t)
	k := tg.key(t, tg.set(t), "m")
	pol := as.NewMapPolicy(as.MapOrder.KEY_ORDERED, as.MapWriteMode.UPDATE)
	_, err := tg.client.Operate(nil, k,
		as.MapPutOp(pol, "m", "mk2", []any{"v2.0", "v2.1"}),
		as.MapPutOp(pol, "m", "mk1", []any{"v1.0", "v1.1"}),
	)
	noErr(t, err)
	rec, err := tg.client.Get(nil, k)
	noErr(t, err)
	expectEqual(t, "map", rec.Bins["m"], []as.MapPair{{Key: "mk1", Value: []any{"v1.0", "v1.1"}}, {Key: "mk2", Value: []any{"v2.0", "v2.1"}}})
}

func TestMapSwitchOrder(t *testing.T) {
	tg := newTarget(t)
	k := tg.key(t, tg.set(t), "m")
	rec, err := tg.client.Operate(nil, k,
		as.MapPutOp(as.DefaultMapPolicy(), "m", 4, 1),
		as.MapPutOp(as.DefaultMapPolicy(), "m", 3, 2),
		as.MapPutOp(as.DefaultMapPolicy(), "m", 2, 3),
		as.MapPutOp(as.DefaultMapPolicy(), "m", 1, 4),
		as.MapGetByIndexOp("m", 2, as.MapReturnType.KEY_VALUE),
	)
	noErr(t, err)
	expectEqual(t, "results", rec.Bins["m"], as.OpResults{1, 2, 3, 4, []as.MapPair{{Key: 3, Value: 2}}})
	rec, err = tg.client.Get(nil, k)
	noErr(t, err)
	expectEqual(t, "unordered map", rec.Bins["m"], map[any]any{1: 4, 2: 3, 3: 2, 4: 1})
	rec, err = tg.client.Operate(nil, k,
		as.MapSetPolicyOp(as.NewMapPolicy(as.MapOrder.KEY_ORDERED, as.MapWriteMode.UPDATE), "m"),
		as.MapGetByKeyRangeOp("m", 3, 5, as.MapReturnType.COUNT),
		as.MapGetByKeyRangeOp("m", -5, 2, as.MapReturnType.KEY_VALUE),
		as.MapGetByIndexRangeCountOp("m", 0, 10, as.MapReturnType.KEY_VALUE),
	)
	noErr(t, err)
	expectEqual(t, "results", rec.Bins["m"], as.OpResults{nil, 2, []as.MapPair{{Key: 1, Value: 4}},
		[]as.MapPair{{Key: 1, Value: 4}, {Key: 2, Value: 3}, {Key: 3, Value: 2}, {Key: 4, Value: 1}}})
}

func TestMapRankValueOps(t *testing.T) {
	tg := newTarget(t)
	k := tg.key(t, tg.set(t), "m")
	items := map[any]any{"Charlie": 55, "Jim": 98, "John": 76, "Harry": 82}
	_, err := tg.client.Operate(nil, k, as.MapPutItemsOp(as.DefaultMapPolicy(), "m", items))
	noErr(t, err)
	_, err = tg.client.Operate(nil, k,
		as.MapIncrementOp(as.DefaultMapPolicy(), "m", "John", 5),
		as.MapDecrementOp(as.DefaultMapPolicy(), "m", "Jim", 4),
	)
	noErr(t, err)
	rec, err := tg.client.Operate(nil, k,
		as.MapGetByRankRangeCountOp("m", -2, 2, as.MapReturnType.KEY),
		as.MapGetByRankRangeCountOp("m", 0, 2, as.MapReturnType.KEY_VALUE),
		as.MapGetByRankOp("m", 0, as.MapReturnType.VALUE),
		as.MapGetByRankOp("m", 2, as.MapReturnType.KEY),
		as.MapGetByValueRangeOp("m", 90, 95, as.MapReturnType.RANK),
		as.MapGetByValueRangeOp("m", 90, 95, as.MapReturnType.COUNT),
		as.MapGetByValueRangeOp("m", 90, 95, as.MapReturnType.KEY_VALUE),
		as.MapGetByValueRangeOp("m", 81, 82, as.MapReturnType.KEY),
		as.MapGetByValueOp("m", 77, as.MapReturnType.KEY),
		as.MapGetByValueOp("m", 81, as.MapReturnType.RANK),
		as.MapGetByKeyOp("m", "Charlie", as.MapReturnType.RANK),
		as.MapGetByKeyOp("m", "Charlie", as.MapReturnType.REVERSE_RANK),
		as.MapGetByKeyListOp("m", []any{"Charlie", "Jim"}, as.MapReturnType.KEY),
		as.MapGetByValueListOp("m", []any{55, 94}, as.MapReturnType.KEY),
	)
	noErr(t, err)
	expectEqual(t, "results", rec.Bins["m"], as.OpResults{
		[]any{"Harry", "Jim"},
		[]as.MapPair{{Key: "Charlie", Value: 55}, {Key: "John", Value: 81}},
		55,
		"Harry",
		[]any{3}, 1, []as.MapPair{{Key: "Jim", Value: 94}},
		[]any{"John"},
		[]any{},
		[]any{1},
		0,
		3,
		[]any{"Charlie", "Jim"},
		[]any{"Charlie", "Jim"},
	})
}

func TestMapInverted(t *testing.T) {
	tg := newTarget(t)
	k := tg.key(t, tg.set(t), "m")
	items := map[any]any{"Charlie": 55, "Jim": 98, "John": 76, "Harry": 82}
	_, err := tg.client.Operate(nil, k, as.MapPutItemsOp(as.DefaultMapPolicy(), "m", items))
	noErr(t, err)
	inv := as.MapReturnType.INVERTED
	rec, err := tg.client.Operate(nil, k,
		as.MapGetByRankRangeCountOp("m", -2, 2, as.MapReturnType.KEY|inv),
		as.MapGetByRankRangeCountOp("m", 0, 2, as.MapReturnType.KEY_VALUE|inv),
		as.MapGetByValueRangeOp("m", 90, 95, as.MapReturnType.RANK|inv),
		as.MapGetByValueRangeOp("m", 90, 95, as.MapReturnType.COUNT|inv),
		as.MapGetByValueRangeOp("m", 90, 95, as.MapReturnType.KEY_VALUE|inv),
		as.MapGetByValueRangeOp("m", 81, 82, as.MapReturnType.KEY|inv),
		as.MapGetByValueOp("m", 77, as.MapReturnType.KEY|inv),
		as.MapGetByValueOp("m", 81, as.MapReturnType.RANK|inv),
	)
	noErr(t, err)
	expectEqual(t, "results", rec.Bins["m"], as.OpResults{
		[]any{"Charlie", "John"},
		[]as.MapPair{{Key: "Harry", Value: 82}, {Key: "Jim", Value: 98}},
		[]any{0, 1, 2, 3},
		4,
		[]as.MapPair{{Key: "Charlie", Value: 55}, {Key: "Harry", Value: 82}, {Key: "Jim", Value: 98}, {Key: "John", Value: 76}},
		[]any{"Charlie", "Harry", "Jim", "John"},
		[]any{"Charlie", "Harry", "Jim", "John"},
		[]any{0, 1, 2, 3},
	})
}

func TestMapRemoveOps(t *testing.T) {
	tg := newTarget(t)
	k := tg.key(t, tg.set(t), "m")
	items := map[any]any{"Charlie": 55, "Jim": 98, "John": 76, "Harry": 82, "Sally": 79, "Lenny": 84, "Abe": 88}
	rec, err := tg.client.Operate(nil, k,
		as.MapPutItemsOp(as.DefaultMapPolicy(), "m", items),
		as.MapRemoveByKeyOp("m", "NOTFOUND", as.MapReturnType.VALUE),
		as.MapRemoveByKeyOp("m", "Jim", as.MapReturnType.VALUE),
		as.MapRemoveByKeyListOp("m", []any{"Sally", "UNKNOWN", "Lenny"}, as.MapReturnType.VALUE),
		as.MapRemoveByValueOp("m", 55, as.MapReturnType.KEY),
		as.MapSizeOp("m"),
	)
	noErr(t, err)
	res := opResults(t, rec, "m")
	expectEqual(t, "put", res[0], 7)
	expectEqual(t, "remove NOTFOUND", res[1], nil)
	expectEqual(t, "remove Jim", res[2], 98)
	got := res[3].([]any)
	sort.Slice(got, func(i, j int) bool { return got[i].(int) < got[j].(int) })
	expectEqual(t, "remove key list", got, []any{79, 84})
	expectEqual(t, "remove by value", res[4], []any{"Charlie"})
	expectEqual(t, "size", res[5], 3)

	k2 := tg.key(t, tg.set(t), "m2")
	rec, err = tg.client.Operate(nil, k2,
		as.MapPutItemsOp(as.DefaultMapPolicy(), "m", items),
		as.MapRemoveByKeyRangeOp("m", "J", "K", as.MapReturnType.COUNT),
		as.MapRemoveByValueRangeOp("m", 80, 85, as.MapReturnType.COUNT),
		as.MapRemoveByIndexRangeCountOp("m", 0, 2, as.MapReturnType.COUNT),
		as.MapRemoveByRankRangeCountOp("m", 0, 2, as.MapReturnType.COUNT),
	)
	noErr(t, err)
	expectEqual(t, "remove ranges", rec.Bins["m"], as.OpResults{7, 2, 2, 2, 1})

	rec, err = tg.client.Operate(nil, k2, as.MapClearOp("m"), as.MapSizeOp("m"))
	noErr(t, err)
	expectEqual(t, "clear", rec.Bins["m"], as.OpResults{nil, 0})
}

func TestMapKeyValueOrderedRank(t *testing.T) {
	tg := newTarget(t)
	k := tg.key(t, tg.set(t), "m")
	pol := as.NewMapPolicy(as.MapOrder.KEY_VALUE_ORDERED, as.MapWriteMode.UPDATE)
	_, err := tg.client.Operate(nil, k, as.MapPutItemsOp(pol, "m", map[any]any{"p1": 0, "p2": 0, "p3": 0, "p4": 0}))
	noErr(t, err)
	_, err = tg.client.Operate(nil, k,
		as.MapIncrementOp(pol, "m", "p1", 10),
		as.MapIncrementOp(pol, "m", "p2", 20),
		as.MapIncrementOp(pol, "m", "p3", 1),
		as.MapIncrementOp(pol, "m", "p4", 20),
	)
	noErr(t, err)
	rec, err := tg.client.Operate(nil, k, as.MapGetByRankRangeCountOp("m", -3, 3, as.MapReturnType.KEY))
	noErr(t, err)
	expectEqual(t, "rank range", rec.Bins["m"], []any{"p1", "p2", "p4"})
	rec, err = tg.client.Operate(nil, k,
		as.MapRemoveByValueOp("m", 10, as.MapReturnType.KEY),
		as.MapGetByRankRangeCountOp("m", -3, 3, as.MapReturnType.KEY),
	)
	noErr(t, err)
	expectEqual(t, "after remove", rec.Bins["m"], as.OpResults{[]any{"p1"}, []any{"p3", "p2", "p4"}})
}

func TestMapWriteFlags(t *testing.T) {
	tg := newTarget(t)
	k := tg.key(t, tg.set(t), "m")
	items := map[any]any{0: 17, 4: 2, 5: 15, 9: 10}
	_, err := tg.client.Operate(nil, k,
		as.MapPutItemsOp(as.DefaultMapPolicy(), "a", items),
		as.MapPutItemsOp(as.DefaultMapPolicy(), "b", items),
	)
	noErr(t, err)
	partial := as.NewMapPolicyWithFlags(as.MapOrder.UNORDERED, as.MapWriteFlagsCreateOnly|as.MapWriteFlagsPartial|as.MapWriteFlagsNoFail)
	noFail := as.NewMapPolicyWithFlags(as.MapOrder.UNORDERED, as.MapWriteFlagsCreateOnly|as.MapWriteFlagsNoFail)
	rec, err := tg.client.Operate(nil, k,
		as.MapPutItemsOp(partial, "a", map[any]any{3: 3, 5: 15}),
		as.MapPutItemsOp(noFail, "b", map[any]any{3: 3, 5: 15}),
	)
	noErr(t, err)
	expectEqual(t, "partial", rec.Bins["a"], 5)
	expectEqual(t, "no-fail", rec.Bins["b"], 4)

	createOnly := as.NewMapPolicyWithFlags(as.MapOrder.KEY_ORDERED, as.MapWriteFlagsCreateOnly)
	updateOnly := as.NewMapPolicyWithFlags(as.MapOrder.KEY_ORDERED, as.MapWriteFlagsUpdateOnly)
	_, err = tg.client.Operate(nil, k, as.MapPutOp(createOnly, "a", 0, 1))
	wantCode(t, err, types.FAIL_ELEMENT_EXISTS)
	_, err = tg.client.Operate(nil, k, as.MapPutOp(updateOnly, "a", 100, 1))
	wantCode(t, err, types.FAIL_ELEMENT_NOT_FOUND)
	_, err = tg.client.Operate(nil, k, as.MapPutItemsOp(createOnly, "a", map[any]any{100: 1, 0: 1}))
	wantCode(t, err, types.FAIL_ELEMENT_EXISTS)
	// A failed op leaves the record unchanged.
	rec, err = tg.client.Operate(nil, k, as.MapSizeOp("a"))
	noErr(t, err)
	expectEqual(t, "size after failed put", rec.Bins["a"], 5)
	updNoFail := as.NewMapPolicyWithFlags(as.MapOrder.KEY_ORDERED, as.MapWriteFlagsUpdateOnly|as.MapWriteFlagsNoFail)
	rec, err = tg.client.Operate(nil, k, as.MapPutOp(updNoFail, "a", 100, 1))
	noErr(t, err)
	expectEqual(t, "update-only no-fail", rec.Bins["a"], 5)
}

func TestMapInfinityWildcard(t *testing.T) {
	tg := newTarget(t)
	k := tg.key(t, tg.set(t), "m")
	_, err := tg.client.Operate(nil, k,
		as.MapPutItemsOp(as.DefaultMapPolicy(), "m", map[any]any{0: 17, 4: 2, 5: 15, 9: 10}),
		as.MapPutItemsOp(as.DefaultMapPolicy(), "w", map[any]any{4: []any{"John", 55}, 5: []any{"Jim", 95}, 9: []any{"Joe", 80}}),
	)
	noErr(t, err)
	rec, err := tg.client.Operate(nil, k,
		as.MapGetByKeyRangeOp("m", 5, as.NewInfinityValue(), as.MapReturnType.KEY),
		as.MapGetByValueOp("w", []any{"Joe", as.NewWildCardValue()}, as.MapReturnType.KEY),
	)
	noErr(t, err)
	expectEqual(t, "infinity", rec.Bins["m"], []any{5, 9})
	expectEqual(t, "wildcard", rec.Bins["w"], []any{9})
}

// TestMapQueueShapes covers the ops a job queue uses on key-ordered maps
// with list values.
func TestMapQueueShapes(t *testing.T) {
	tg := newTarget(t)
	k := tg.key(t, tg.set(t), "q")
	pol := as.NewMapPolicyWithFlags(as.MapOrder.KEY_ORDERED, as.MapWriteFlagsDefault)
	items := map[any]any{
		"job-a": []any{30, "a"},
		"job-b": []any{10, "b"},
		"job-c": []any{20, "c"},
		"job-d": []any{10, "d"},
	}
	rec, err := tg.client.Operate(nil, k, as.MapPutItemsOp(pol, "m", items))
	noErr(t, err)
	expectEqual(t, "put items", rec.Bins["m"], 4)

	rec, err = tg.client.Operate(nil, k,
		as.MapGetByRankOp("m", 0, as.MapReturnType.KEY),
		as.MapGetByRankRangeCountOp("m", 0, 2, as.MapReturnType.KEY_VALUE),
		as.MapGetByValueRangeOp("m", []any{10}, []any{20}, as.MapReturnType.KEY),
		as.MapGetByValueRangeOp("m", []any{10, as.NewWildCardValue()}, []any{20, as.NewWildCardValue()}, as.MapReturnType.COUNT),
		as.MapGetByIndexOp("m", -1, as.MapReturnType.KEY),
		as.MapGetByIndexRangeCountOp("m", 1, 2, as.MapReturnType.VALUE),
		as.MapGetByKeyOp("m", "job-c", as.MapReturnType.INDEX),
		as.MapGetByKeyOp("m", "job-c", as.MapReturnType.REVERSE_INDEX),
		as.MapGetByKeyOp("m", "job-c", as.MapReturnType.EXISTS),
		as.MapGetByKeyOp("m", "nope", as.MapReturnType.EXISTS),
		as.MapGetByKeyOp("m", "nope", as.MapReturnType.COUNT),
		as.MapGetByKeyListOp("m", []any{"job-d", "job-a"}, as.MapReturnType.KEY_VALUE),
	)
	noErr(t, err)
	expectEqual(t, "reads", rec.Bins["m"], as.OpResults{
		"job-b",
		[]as.MapPair{{Key: "job-b", Value: []any{10, "b"}}, {Key: "job-d", Value: []any{10, "d"}}},
		[]any{"job-b", "job-d"},
		2,
		"job-d",
		[]any{[]any{10, "b"}, []any{20, "c"}},
		2,
		1,
		true,
		false,
		0,
		[]as.MapPair{{Key: "job-a", Value: []any{30, "a"}}, {Key: "job-d", Value: []any{10, "d"}}},
	})

	rec, err = tg.client.Operate(nil, k,
		as.MapRemoveByRankRangeCountOp("m", 0, 1, as.MapReturnType.KEY_VALUE),
		as.MapRemoveByValueRangeOp("m", []any{30}, nil, as.MapReturnType.KEY),
		as.MapRemoveByKeyOp("m", "job-c", as.MapReturnType.NONE),
		as.MapSizeOp("m"),
		as.MapGetByKeyOp("m", "job-d", as.MapReturnType.VALUE),
	)
	noErr(t, err)
	expectEqual(t, "removes", rec.Bins["m"], as.OpResults{
		[]as.MapPair{{Key: "job-b", Value: []any{10, "b"}}},
		[]any{"job-a"},
		nil,
		1,
		[]any{10, "d"},
	})

	// Map reads on a missing bin return nil; on a non-map bin BIN_TYPE_ERROR.
	noErr(t, tg.client.Put(nil, k, as.BinMap{"s": "str"}))
	rec, err = tg.client.Operate(nil, k, as.MapSizeOp("none"))
	noErr(t, err)
	expectEqual(t, "size of missing bin", rec.Bins["none"], nil)
	_, err = tg.client.Operate(nil, k, as.MapSizeOp("s"))
	wantCode(t, err, types.BIN_TYPE_ERROR)
	_, err = tg.client.Operate(nil, k, as.MapPutOp(pol, "s", 1, 1))
	wantCode(t, err, types.BIN_TYPE_ERROR)
}

func TestMapNestedContext(t *testing.T) {
	tg := newTarget(t)
	k := tg.key(t, tg.set(t), "n")
	noErr(t, tg.client.Put(nil, k, as.BinMap{"m": map[any]any{
		"key1": map[any]any{"key11": 9, "key12": 4},
		"key2": map[any]any{"key21": 3, "key22": 5},
	}}))
	rec, err := tg.client.Operate(nil, k,
		as.MapPutOp(as.DefaultMapPolicy(), "m", "key21", 11, as.CtxMapKey(as.StringValue("key2"))),
		as.MapGetByKeyOp("m", "key21", as.MapReturnType.VALUE, as.CtxMapKey(as.StringValue("key2"))),
		as.MapGetByRankOp("m", -1, as.MapReturnType.KEY, as.CtxMapRank(-1)),
	)
	noErr(t, err)
	expectEqual(t, "nested", rec.Bins["m"], as.OpResults{2, 11, "key21"})
	rec, err = tg.client.Operate(nil, k,
		as.MapPutOp(as.DefaultMapPolicy(), "m", "x", 1, as.CtxMapKeyCreate(as.StringValue("key3"), as.MapOrder.KEY_ORDERED)),
		as.MapGetByKeyOp("m", "key3", as.MapReturnType.VALUE),
	)
	noErr(t, err)
	// The create flag orders the map at its level, the top-level map here,
	// which exists; the new map at key3 is the put's, unordered.
	expectEqual(t, "created", rec.Bins["m"], as.OpResults{1, map[any]any{"x": 1}})
}

// TestMapContextCreate checks what a context with a create flag creates on
// a real server: the container at its own level, in the flag's order, when
// it is missing, and an element at its key or index that the op fills in
// (as the op's policy orders it) or, left empty, drops.
func TestMapContextCreate(t *testing.T) {
	tg := newTarget(t)
	k := tg.key(t, tg.set(t), "c")
	noErr(t, tg.client.Put(nil, k, as.BinMap{"m": map[any]any{"a": map[any]any{"z": 1}}}))
	keyOrdered := as.NewMapPolicy(as.MapOrder.KEY_ORDERED, as.MapWriteMode.UPDATE)
	rec, err := tg.client.Operate(nil, k,
		// The put's policy orders the new map.
		as.MapPutOp(keyOrdered, "m", "x", 1, as.CtxMapKeyCreate(as.StringValue("k1"), as.MapOrder.UNORDERED)),
		as.MapGetByKeyOp("m", "k1", as.MapReturnType.VALUE),
		// The second context's flag orders the map it creates at k2.
		as.MapPutOp(as.DefaultMapPolicy(), "m", "x", 1,
			as.CtxMapKeyCreate(as.StringValue("k2"), as.MapOrder.UNORDERED),
			as.CtxMapKeyCreate(as.StringValue("k3"), as.MapOrder.KEY_VALUE_ORDERED)),
		as.MapGetByKeyOp("m", "k2", as.MapReturnType.VALUE),
		// An existing map keeps its order.
		as.MapPutOp(as.DefaultMapPolicy(), "m", "x", 1, as.CtxMapKeyCreate(as.StringValue("a"), as.MapOrder.KEY_ORDERED)),
		// An element the op leaves empty is not kept.
		as.MapRemoveByKeyOp("m", "x", as.MapReturnType.VALUE, as.CtxMapKeyCreate(as.StringValue("k4"), as.MapOrder.KEY_ORDERED)),
		// Lists: padded, or at the end of an ordered list.
		as.ListAppendWithPolicyContextOp(as.DefaultListPolicy(), "m",
			[]*as.CDTContext{as.CtxMapKeyCreate(as.StringValue("k5"), as.MapOrder.KEY_ORDERED), as.CtxListIndexCreate(2, as.ListOrderUnordered, true)}, 5),
		as.ListAppendWithPolicyContextOp(as.DefaultListPolicy(), "m",
			[]*as.CDTContext{as.CtxMapKeyCreate(as.StringValue("k6"), as.MapOrder.KEY_ORDERED), as.CtxListIndexCreate(2, as.ListOrderOrdered, true)}, 5),
		as.GetBinOp("m"),
	)
	noErr(t, err)
	expectEqual(t, "created", rec.Bins["m"], as.OpResults{
		1, []as.MapPair{{Key: "x", Value: 1}},
		1, []as.MapPair{{Key: "k3", Value: map[any]any{"x": 1}}},
		2,
		nil,
		1, 1,
		map[any]any{
			"a":  map[any]any{"x": 1, "z": 1},
			"k1": []as.MapPair{{Key: "x", Value: 1}},
			"k2": []as.MapPair{{Key: "k3", Value: map[any]any{"x": 1}}},
			"k5": []any{nil, nil, []any{5}},
			"k6": []any{[]any{5}},
		},
	})
	// A read does not create.
	_, err = tg.client.Operate(nil, k, as.MapSizeOp("m", as.CtxMapKeyCreate(as.StringValue("k7"), as.MapOrder.KEY_ORDERED)))
	wantCode(t, err, types.OP_NOT_APPLICABLE)
	// A missing bin is created in the first context's order.
	rec, err = tg.client.Operate(nil, k,
		as.MapPutOp(as.DefaultMapPolicy(), "n", "x", 1, as.CtxMapKeyCreate(as.StringValue("k"), as.MapOrder.KEY_ORDERED)),
		as.GetBinOp("n"))
	noErr(t, err)
	expectEqual(t, "new bin", rec.Bins["n"], as.OpResults{1, []as.MapPair{{Key: "k", Value: map[any]any{"x": 1}}}})
}

// TestContextNotApplicable checks that, as on a real server, a context that
// leads to no element fails with OP_NOT_APPLICABLE, whatever is missing,
// and that a read through a context of a missing bin reads nothing.
func TestContextNotApplicable(t *testing.T) {
	tg := newTarget(t)
	k := tg.key(t, tg.set(t), "c")
	noErr(t, tg.client.Put(nil, k, as.BinMap{
		"m": map[any]any{"a": map[any]any{"x": 1}, "b": []any{1, 2}},
		"l": []any{[]any{1}, map[any]any{"z": 1}},
	}))
	cases := map[string]*as.Operation{
		"read, missing map key":        as.MapGetByKeyOp("m", "x", as.MapReturnType.VALUE, as.CtxMapKey(as.StringValue("nope"))),
		"exists, missing map key":      as.MapGetByKeyOp("m", "x", as.MapReturnType.EXISTS, as.CtxMapKey(as.StringValue("nope"))),
		"size, missing map key":        as.MapSizeOp("m", as.CtxMapKey(as.StringValue("nope"))),
		"modify, missing map key":      as.MapPutOp(as.DefaultMapPolicy(), "m", "x", 1, as.CtxMapKey(as.StringValue("nope"))),
		"second level, missing key":    as.MapSizeOp("m", as.CtxMapKey(as.StringValue("a")), as.CtxMapKey(as.StringValue("q"))),
		"missing map value":            as.MapSizeOp("m", as.CtxMapValue(as.IntegerValue(99))),
		"map index out of range":       as.MapSizeOp("m", as.CtxMapIndex(5)),
		"map rank out of range":        as.MapSizeOp("m", as.CtxMapRank(5)),
		"list index out of range":      as.ListSizeOp("l", as.CtxListIndex(5)),
		"missing list value":           as.ListSizeOp("l", as.CtxListValue(as.IntegerValue(99))),
		"list rank out of range":       as.ListSizeOp("l", as.CtxListRank(5)),
		"map context on a list":        as.MapSizeOp("m", as.CtxMapKey(as.StringValue("b")), as.CtxMapKey(as.StringValue("q"))),
		"list context on a map":        as.ListSizeOp("m", as.CtxListIndex(0)),
		"map context on a scalar":      as.MapSizeOp("m", as.CtxMapKey(as.StringValue("a")), as.CtxMapKey(as.StringValue("x")), as.CtxMapKey(as.StringValue("q"))),
		"modify through a missing bin": as.MapPutOp(as.DefaultMapPolicy(), "nobin", "x", 1, as.CtxMapKey(as.StringValue("a"))),
	}
	for name, o := range cases {
		_, err := tg.client.Operate(nil, k, o)
		if err == nil {
			t.Errorf("%s: no error, want OP_NOT_APPLICABLE", name)
			continue
		}
		var ae *as.AerospikeError
		if !errors.As(err, &ae) || ae.ResultCode != types.OP_NOT_APPLICABLE {
			t.Errorf("%s: %v, want OP_NOT_APPLICABLE", name, err)
		}
	}
	rec, err := tg.client.Operate(nil, k, as.MapSizeOp("nobin", as.CtxMapKey(as.StringValue("a"))))
	noErr(t, err)
	expectEqual(t, "read through a missing bin", rec.Bins, as.BinMap{"nobin": nil})
}
