package aerospiketest_test

import (
	"testing"
	"time"

	as "github.com/aerospike/aerospike-client-go/v8"
	"github.com/aerospike/aerospike-client-go/v8/types"
)

func TestFilterExpressions(t *testing.T) {
	tg := newTarget(t)
	set := tg.set(t)
	k := tg.key(t, set, "f")
	wp := as.NewWritePolicy(0, 1000)
	wp.SendKey = true
	noErr(t, tg.client.Put(wp, k, as.BinMap{
		"i": 10, "s": "abc", "f": 2.5, "b": []byte{1, 2},
		"l": []any{1, 2, 3}, "m": map[any]any{"x": 1, "y": []any{5}},
	}))
	pass := []*as.Expression{
		as.ExpEq(as.ExpIntBin("i"), as.ExpIntVal(10)),
		as.ExpGreater(as.ExpIntBin("i"), as.ExpIntVal(9)),
		as.ExpAnd(as.ExpLess(as.ExpIntBin("i"), as.ExpIntVal(11)), as.ExpEq(as.ExpStringBin("s"), as.ExpStringVal("abc"))),
		as.ExpOr(as.ExpEq(as.ExpIntBin("i"), as.ExpIntVal(0)), as.ExpEq(as.ExpFloatBin("f"), as.ExpFloatVal(2.5))),
		as.ExpNot(as.ExpEq(as.ExpIntBin("i"), as.ExpIntVal(0))),
		as.ExpBinExists("b"),
		as.ExpNot(as.ExpBinExists("zz")),
		as.ExpEq(as.ExpBlobBin("b"), as.ExpBlobVal([]byte{1, 2})),
		as.ExpKeyExists(),
		as.ExpEq(as.ExpKey(as.ExpTypeSTRING), as.ExpStringVal("f")),
		as.ExpEq(as.ExpSetName(), as.ExpStringVal(set)),
		as.ExpGreater(as.ExpTTL(), as.ExpIntVal(900)),
		as.ExpGreater(as.ExpVoidTime(), as.ExpIntVal(time.Now().UnixNano())),
		as.ExpLess(as.ExpLastUpdate(), as.ExpIntVal(time.Now().Add(time.Minute).UnixNano())),
		as.ExpGreater(as.ExpRecordSize(), as.ExpIntVal(0)),
		as.ExpEq(as.ExpListSize(as.ExpListBin("l")), as.ExpIntVal(3)),
		as.ExpEq(as.ExpMapSize(as.ExpMapBin("m")), as.ExpIntVal(2)),
		as.ExpEq(as.ExpMapGetByKey(as.MapReturnType.VALUE, as.ExpTypeINT, as.ExpStringVal("x"), as.ExpMapBin("m")), as.ExpIntVal(1)),
		as.ExpEq(as.ExpListGetByIndex(as.ListReturnTypeValue, as.ExpTypeINT, as.ExpIntVal(0), as.ExpListBin("l")), as.ExpIntVal(1)),
		as.ExpRegexCompare("^a.c$", as.ExpRegexFlagNONE, as.ExpStringBin("s")),
		as.ExpEq(as.ExpNumAdd(as.ExpIntBin("i"), as.ExpIntVal(5)), as.ExpIntVal(15)),
		as.ExpLet(as.ExpDef("x", as.ExpIntBin("i")), as.ExpEq(as.ExpVar("x"), as.ExpIntVal(10))),
		as.ExpEq(as.ExpCond(as.ExpEq(as.ExpIntBin("i"), as.ExpIntVal(10)), as.ExpIntVal(1), as.ExpIntVal(2)), as.ExpIntVal(1)),
		as.ExpEq(as.ExpBinType("s"), as.ExpIntVal(3)),
		as.ExpGreaterEq(as.ExpDigestModulo(3), as.ExpIntVal(0)),
		as.ExpEq(as.ExpListBin("l"), as.ExpListVal(as.NewValue(1), as.NewValue(2), as.NewValue(3))),
	}
	for i, e := range pass {
		p := as.NewPolicy()
		p.FilterExpression = e
		if _, err := tg.client.Get(p, k); err != nil {
			t.Errorf("filter %d: %v", i, err)
		}
	}
	fail := []*as.Expression{
		as.ExpEq(as.ExpIntBin("i"), as.ExpIntVal(11)),
		as.ExpEq(as.ExpIntBin("missing"), as.ExpIntVal(10)),
		as.ExpEq(as.ExpIntBin("s"), as.ExpIntVal(10)),
		as.ExpAnd(as.ExpEq(as.ExpIntBin("i"), as.ExpIntVal(10)), as.ExpEq(as.ExpStringBin("s"), as.ExpStringVal("x"))),
	}
	for i, e := range fail {
		p := as.NewPolicy()
		p.FilterExpression = e
		_, err := tg.client.Get(p, k)
		if err == nil {
			t.Errorf("failing filter %d passed", i)
			continue
		}
		wantCode(t, err, types.FILTERED_OUT)
	}
	// Filters on writes and deletes.
	wp = as.NewWritePolicy(0, 0)
	wp.FilterExpression = as.ExpEq(as.ExpIntBin("i"), as.ExpIntVal(0))
	wantCode(t, tg.client.Put(wp, k, as.BinMap{"i": 1}), types.FILTERED_OUT)
	_, err := tg.client.Delete(wp, k)
	wantCode(t, err, types.FILTERED_OUT)
	_, err = tg.client.Operate(wp, k, as.AddOp(as.NewBin("i", 1)))
	wantCode(t, err, types.FILTERED_OUT)
	wp.FilterExpression = as.ExpEq(as.ExpIntBin("i"), as.ExpIntVal(10))
	rec, err := tg.client.Operate(wp, k, as.AddOp(as.NewBin("i", 1)), as.GetBinOp("i"))
	noErr(t, err)
	expectEqual(t, "filtered operate", rec.Bins["i"], 11)
}

func TestExpressionOps(t *testing.T) {
	tg := newTarget(t)
	k := tg.key(t, tg.set(t), "e")
	noErr(t, tg.client.Put(nil, k, as.BinMap{"a": 5, "b": 7}))
	rec, err := tg.client.Operate(nil, k,
		as.ExpReadOp("sum", as.ExpNumAdd(as.ExpIntBin("a"), as.ExpIntBin("b")), as.ExpReadFlagDefault),
		as.ExpWriteOp("c", as.ExpNumMul(as.ExpIntBin("a"), as.ExpIntVal(3)), as.ExpWriteFlagDefault),
		as.GetBinOp("c"),
	)
	noErr(t, err)
	expectEqual(t, "sum", rec.Bins["sum"], 12)
	expectEqual(t, "c", rec.Bins["c"], as.OpResults{nil, 15})
	_, err = tg.client.Operate(nil, k, as.ExpWriteOp("c", as.ExpIntVal(1), as.ExpWriteFlagCreateOnly))
	wantCode(t, err, types.BIN_EXISTS_ERROR)
	_, err = tg.client.Operate(nil, k, as.ExpWriteOp("zz", as.ExpIntVal(1), as.ExpWriteFlagUpdateOnly))
	wantCode(t, err, types.BIN_NOT_FOUND)
}
