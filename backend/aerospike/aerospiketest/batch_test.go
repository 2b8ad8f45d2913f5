package aerospiketest_test

import (
	"fmt"
	"testing"

	as "github.com/aerospike/aerospike-client-go/v8"
	"github.com/aerospike/aerospike-client-go/v8/types"
)

func TestBatchGet(t *testing.T) {
	tg := newTarget(t)
	set := tg.set(t)
	var keys []*as.Key
	for i := range 10 {
		k := tg.key(t, set, i)
		keys = append(keys, k)
		if i%3 != 0 {
			noErr(t, tg.client.Put(nil, k, as.BinMap{"i": i, "s": "v"}))
		}
	}
	recs, err := tg.client.BatchGet(nil, keys)
	noErr(t, err)
	for i, r := range recs {
		if i%3 == 0 {
			if r != nil {
				t.Errorf("key %d: got %v, want nil", i, r)
			}
			continue
		}
		if r == nil {
			t.Errorf("key %d: no record", i)
			continue
		}
		expectEqual(t, fmt.Sprintf("key %d", i), r.Bins, as.BinMap{"i": i, "s": "v"})
	}
	recs, err = tg.client.BatchGet(nil, keys, "s")
	noErr(t, err)
	if recs[1] == nil {
		t.Fatal("BatchGet(s): no record for key 1")
	}
	expectEqual(t, "BatchGet(s)", recs[1].Bins, as.BinMap{"s": "v"})
	exists, err := tg.client.BatchExists(nil, keys)
	noErr(t, err)
	for i, e := range exists {
		if e != (i%3 != 0) {
			t.Errorf("BatchExists[%d] = %v", i, e)
		}
	}
	hdrs, err := tg.client.BatchGetHeader(nil, keys)
	noErr(t, err)
	if hdrs[1] == nil || hdrs[1].Generation != 1 || len(hdrs[1].Bins) != 0 {
		t.Errorf("BatchGetHeader[1] = %v", hdrs[1])
	}
}

func TestBatchOperateAndDelete(t *testing.T) {
	tg := newTarget(t)
	set := tg.set(t)
	k1, k2, k3 := tg.key(t, set, 1), tg.key(t, set, 2), tg.key(t, set, 3)
	noErr(t, tg.client.Put(nil, k1, as.BinMap{"n": 1}))
	pol := as.NewMapPolicy(as.MapOrder.KEY_ORDERED, as.MapWriteMode.UPDATE)
	wp := as.NewBatchWritePolicy()
	wp.RecordExistsAction = as.UPDATE_ONLY
	recs := []as.BatchRecordIfc{
		as.NewBatchWrite(nil, k1, as.AddOp(as.NewBin("n", 5)), as.GetBinOp("n")),
		as.NewBatchWrite(nil, k2, as.MapPutOp(pol, "m", "a", 1), as.PutOp(as.NewBin("n", 7))),
		as.NewBatchWrite(wp, k3, as.PutOp(as.NewBin("n", 1))),
		as.NewBatchRead(nil, k1, []string{"n"}),
		as.NewBatchReadOps(nil, k2, as.MapSizeOp("m")),
	}
	err := tg.client.BatchOperate(nil, recs)
	noErr(t, err)
	br := func(i int) *as.BatchRecord { return recs[i].BatchRec() }
	// Batch writes ask for a result per op.
	if br(0).ResultCode != types.OK {
		t.Errorf("batch add: %v", br(0).ResultCode)
	} else {
		expectEqual(t, "batch add", br(0).Record.Bins["n"], as.OpResults{nil, 6})
	}
	if br(1).ResultCode != types.OK {
		t.Errorf("batch map put: %v", br(1).ResultCode)
	} else {
		expectEqual(t, "batch map put", br(1).Record.Bins, as.BinMap{"m": 1, "n": nil})
	}
	if br(2).ResultCode != types.KEY_NOT_FOUND_ERROR {
		t.Errorf("batch update-only on missing key: %v", br(2).ResultCode)
	}
	for i, want := range map[int]as.BinMap{3: {"n": 6}, 4: {"m": 1}} {
		if br(i).Record == nil {
			t.Errorf("batch read %d: no record (%v)", i, br(i).ResultCode)
			continue
		}
		expectEqual(t, fmt.Sprintf("batch read %d", i), br(i).Record.Bins, want)
	}

	res, err := tg.client.BatchDelete(nil, nil, []*as.Key{k1, k2, k3})
	noErr(t, err)
	if res[0].ResultCode != types.OK || res[1].ResultCode != types.OK || res[2].ResultCode != types.KEY_NOT_FOUND_ERROR {
		t.Errorf("batch delete codes: %v %v %v", res[0].ResultCode, res[1].ResultCode, res[2].ResultCode)
	}
	ok, err := tg.client.Exists(nil, k1)
	noErr(t, err)
	if ok {
		t.Error("k1 exists after BatchDelete")
	}

	// Read ops on many keys.
	noErr(t, tg.client.Put(nil, k1, as.BinMap{"l": []any{3, 1, 2}}))
	got, err := tg.client.BatchGetOperate(nil, []*as.Key{k1, k2}, as.ListSizeOp("l"), as.ListGetByRankOp("l", 0, as.ListReturnTypeValue))
	noErr(t, err)
	if got[0] == nil || got[1] != nil {
		t.Fatalf("BatchGetOperate = %v, %v", got[0], got[1])
	}
	expectEqual(t, "BatchGetOperate", got[0].Bins["l"], as.OpResults{3, 1})
}

func TestBatchFilter(t *testing.T) {
	tg := newTarget(t)
	set := tg.set(t)
	var keys []*as.Key
	for i := range 6 {
		k := tg.key(t, set, i)
		keys = append(keys, k)
		noErr(t, tg.client.Put(nil, k, as.BinMap{"i": i}))
	}
	bp := as.NewBatchPolicy()
	bp.FilterExpression = as.ExpGreaterEq(as.ExpIntBin("i"), as.ExpIntVal(3))
	// The client reports filtered-out keys as ErrFilteredOut with the
	// records that passed.
	recs, err := tg.client.BatchGet(bp, keys)
	wantCode(t, err, types.FILTERED_OUT)
	for i, r := range recs {
		if (r != nil) != (i >= 3) {
			t.Errorf("filtered BatchGet[%d] = %v", i, r)
		}
	}
	brs := make([]as.BatchRecordIfc, len(keys))
	for i, k := range keys {
		brs[i] = as.NewBatchRead(nil, k, nil)
	}
	noErr(t, tg.client.BatchOperate(bp, brs))
	for i, r := range brs {
		want := types.OK
		if i < 3 {
			want = types.FILTERED_OUT
		}
		if r.BatchRec().ResultCode != want {
			t.Errorf("BatchOperate[%d] code %v, want %v", i, r.BatchRec().ResultCode, want)
		}
	}
}
