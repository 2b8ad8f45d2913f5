package aerospiketest_test

import (
	"fmt"
	"sort"
	"testing"
	"time"

	as "github.com/aerospike/aerospike-client-go/v8"
	"github.com/aerospike/aerospike-client-go/v8/types"
)

// collect returns a function draining a recordset, to be called as
// collect(t)(client.ScanPartitions(...)).
func collect(t *testing.T) func(*as.Recordset, as.Error) []*as.Record {
	return func(rs *as.Recordset, err as.Error) []*as.Record {
		t.Helper()
		noErr(t, err)
		var out []*as.Record
		for res := range rs.Results() {
			noErr(t, res.Err)
			out = append(out, res.Record)
		}
		return out
	}
}

func intsOf(recs []*as.Record, bin string) []int {
	out := make([]int, 0, len(recs))
	for _, r := range recs {
		out = append(out, r.Bins[bin].(int))
	}
	sort.Ints(out)
	return out
}

func seq(from, to int) []int {
	var out []int
	for i := from; i < to; i++ {
		out = append(out, i)
	}
	return out
}

func putN(t *testing.T, tg *target, set string, n int) {
	t.Helper()
	wp := as.NewWritePolicy(0, 0)
	wp.SendKey = true
	for i := range n {
		noErr(t, tg.client.Put(wp, tg.key(t, set, i), as.BinMap{"i": i, "s": fmt.Sprintf("v%d", i%3), "l": []any{i, i + 100}}))
	}
}

func TestScanPartitions(t *testing.T) {
	tg := newTarget(t)
	set := tg.set(t)
	putN(t, tg, set, 30)
	noErr(t, tg.client.Put(nil, tg.key(t, tg.set(t), "other"), as.BinMap{"i": -1}))

	recs := collect(t)(tg.client.ScanPartitions(nil, as.NewPartitionFilterAll(), tg.ns, set))
	expectEqual(t, "scan", intsOf(recs, "i"), seq(0, 30))
	if recs[0].Key.Value() == nil {
		t.Error("scan record has no user key")
	}

	sp := as.NewScanPolicy()
	sp.FilterExpression = as.ExpLess(as.ExpIntBin("i"), as.ExpIntVal(10))
	recs = collect(t)(tg.client.ScanPartitions(sp, as.NewPartitionFilterAll(), tg.ns, set, "i"))
	expectEqual(t, "filtered scan", intsOf(recs, "i"), seq(0, 10))
	if len(recs[0].Bins) != 1 {
		t.Errorf("scan bins %v, want only i", recs[0].Bins)
	}

	sp = as.NewScanPolicy()
	sp.IncludeBinData = false
	recs = collect(t)(tg.client.ScanPartitions(sp, as.NewPartitionFilterAll(), tg.ns, set))
	if len(recs) != 30 || len(recs[0].Bins) != 0 {
		t.Errorf("no-bin scan: %d records, bins %v", len(recs), recs[0].Bins)
	}
}

func TestScanPaging(t *testing.T) {
	tg := newTarget(t)
	set := tg.set(t)
	putN(t, tg, set, 23)
	pf := as.NewPartitionFilterAll()
	sp := as.NewScanPolicy()
	sp.MaxRecords = 7
	var all []*as.Record
	for page := 0; !pf.IsDone(); page++ {
		if page > 10 {
			t.Fatal("paging did not finish")
		}
		recs := collect(t)(tg.client.ScanPartitions(sp, pf, tg.ns, set))
		if len(recs) > 7 {
			t.Fatalf("page %d has %d records", page, len(recs))
		}
		all = append(all, recs...)
	}
	expectEqual(t, "paged scan", intsOf(all, "i"), seq(0, 23))
}

func TestQueryPartitionsIndex(t *testing.T) {
	tg := newTarget(t)
	set := tg.set(t)
	putN(t, tg, set, 40)
	idxI, idxS := set+"_i", set+"_s"
	task, err := tg.client.CreateIndex(nil, tg.ns, set, idxI, "i", as.NUMERIC)
	noErr(t, err)
	noErr(t, <-task.OnComplete())
	t.Cleanup(func() { _ = tg.client.DropIndex(nil, tg.ns, set, idxI) })
	task, err = tg.client.CreateIndex(nil, tg.ns, set, idxS, "s", as.STRING)
	noErr(t, err)
	noErr(t, <-task.OnComplete())
	t.Cleanup(func() { _ = tg.client.DropIndex(nil, tg.ns, set, idxS) })
	// Creating an index again with the same definition is not an error;
	// with another definition it is.
	task, err = tg.client.CreateIndex(nil, tg.ns, set, idxI, "i", as.NUMERIC)
	noErr(t, err)
	noErr(t, <-task.OnComplete())
	_, err = tg.client.CreateIndex(nil, tg.ns, set, idxI, "i", as.STRING)
	wantCode(t, err, types.INDEX_FOUND)

	stmt := as.NewStatement(tg.ns, set)
	noErr(t, stmt.SetFilter(as.NewRangeFilter("i", 10, 19)))
	recs := collect(t)(tg.client.QueryPartitions(nil, stmt, as.NewPartitionFilterAll()))
	expectEqual(t, "range", intsOf(recs, "i"), seq(10, 20))

	stmt = as.NewStatement(tg.ns, set, "i")
	noErr(t, stmt.SetFilter(as.NewEqualFilter("s", "v1")))
	recs = collect(t)(tg.client.QueryPartitions(nil, stmt, as.NewPartitionFilterAll()))
	var want []int
	for i := range 40 {
		if i%3 == 1 {
			want = append(want, i)
		}
	}
	expectEqual(t, "equal", intsOf(recs, "i"), want)

	qp := as.NewQueryPolicy()
	qp.FilterExpression = as.ExpGreater(as.ExpIntBin("i"), as.ExpIntVal(15))
	stmt = as.NewStatement(tg.ns, set)
	noErr(t, stmt.SetFilter(as.NewRangeFilter("i", 10, 19)))
	recs = collect(t)(tg.client.QueryPartitions(qp, stmt, as.NewPartitionFilterAll()))
	expectEqual(t, "range+filter", intsOf(recs, "i"), seq(16, 20))

	// Paging through an index query.
	stmt = as.NewStatement(tg.ns, set)
	noErr(t, stmt.SetFilter(as.NewRangeFilter("i", 5, 34)))
	pf := as.NewPartitionFilterAll()
	qp = as.NewQueryPolicy()
	qp.MaxRecords = 8
	var all []*as.Record
	for page := 0; !pf.IsDone(); page++ {
		if page > 10 {
			t.Fatal("paging did not finish")
		}
		all = append(all, collect(t)(tg.client.QueryPartitions(qp, stmt, pf))...)
	}
	expectEqual(t, "paged query", intsOf(all, "i"), seq(5, 35))

	// Primary-index query (no filter).
	recs = collect(t)(tg.client.QueryPartitions(nil, as.NewStatement(tg.ns, set), as.NewPartitionFilterAll()))
	if len(recs) != 40 {
		t.Errorf("primary-index query: %d records", len(recs))
	}
}

// TestIndexCreate checks what a real server answers to creating an index
// whose name exists: OK for the same definition, INDEX_FOUND for any other
// (another type, bin, set or collection type); and that an index created
// under a new name with an existing definition replaces the old name, and
// dropping a missing index is not an error.
func TestIndexCreate(t *testing.T) {
	tg := newTarget(t)
	set := tg.set(t)
	putN(t, tg, set, 3)
	name := set + "_i"
	task, err := tg.client.CreateIndex(nil, tg.ns, set, name, "i", as.NUMERIC)
	noErr(t, err)
	noErr(t, <-task.OnComplete())
	t.Cleanup(func() { _ = tg.client.DropIndex(nil, tg.ns, set, name) })
	_, err = tg.client.CreateIndex(nil, tg.ns, set, name, "i", as.NUMERIC)
	noErr(t, err)
	_, err = tg.client.CreateIndex(nil, tg.ns, set, name, "i", as.STRING)
	wantCode(t, err, types.INDEX_FOUND)
	_, err = tg.client.CreateIndex(nil, tg.ns, set, name, "s", as.NUMERIC)
	wantCode(t, err, types.INDEX_FOUND)
	_, err = tg.client.CreateIndex(nil, tg.ns, set+"x", name, "i", as.NUMERIC)
	wantCode(t, err, types.INDEX_FOUND)
	_, err = tg.client.CreateComplexIndex(nil, tg.ns, set, name, "i", as.NUMERIC, as.ICT_LIST)
	wantCode(t, err, types.INDEX_FOUND)

	renamed := name + "2"
	task, err = tg.client.CreateIndex(nil, tg.ns, set, renamed, "i", as.NUMERIC)
	noErr(t, err)
	noErr(t, <-task.OnComplete())
	t.Cleanup(func() { _ = tg.client.DropIndex(nil, tg.ns, set, renamed) })
	exists := func(n string) string { return tg.info(t, "sindex-exists:namespace="+tg.ns+";indexname="+n) }
	if got := exists(name) + "," + exists(renamed); got != "false,true" {
		t.Errorf("after a create under a new name: old, new exist = %s, want false,true", got)
	}
	noErr(t, tg.client.DropIndex(nil, tg.ns, set, name+"-missing"))
}

func TestQueryMissingIndex(t *testing.T) {
	tg := newTarget(t)
	set := tg.set(t)
	putN(t, tg, set, 3)
	stmt := as.NewStatement(tg.ns, set)
	noErr(t, stmt.SetFilter(as.NewRangeFilter("nobin", 1, 2)))
	qp := as.NewQueryPolicy()
	qp.MaxRetries = 1
	qp.SleepBetweenRetries = time.Millisecond
	rs, err := tg.client.QueryPartitions(qp, stmt, as.NewPartitionFilterAll())
	if err == nil {
		for res := range rs.Results() {
			if res.Err != nil {
				err = res.Err
			}
		}
	}
	wantCode(t, err, types.INDEX_NOTFOUND)
}

func TestTruncate(t *testing.T) {
	tg := newTarget(t)
	set, other := tg.set(t), tg.set(t)
	putN(t, tg, set, 5)
	noErr(t, tg.client.Put(nil, tg.key(t, other, 1), as.BinMap{"a": 1}))
	// Records updated in the truncation's millisecond survive it
	// (TestTruncateMillisecond): let the clock move on.
	time.Sleep(5 * time.Millisecond)
	noErr(t, tg.client.Truncate(nil, tg.ns, set, nil))
	// Truncation is asynchronous on a real server; poll briefly.
	deadline := time.Now().Add(5 * time.Second)
	for {
		recs := collect(t)(tg.client.ScanPartitions(nil, as.NewPartitionFilterAll(), tg.ns, set))
		if len(recs) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d records left after truncate", len(recs))
		}
		time.Sleep(50 * time.Millisecond)
	}
	ok, err := tg.client.Exists(nil, tg.key(t, other, 1))
	noErr(t, err)
	if !ok {
		t.Error("truncate removed a record of another set")
	}
	// Records written after the truncation survive.
	noErr(t, tg.client.Put(nil, tg.key(t, set, 1), as.BinMap{"a": 1}))
	ok, err = tg.client.Exists(nil, tg.key(t, set, 1))
	noErr(t, err)
	if !ok {
		t.Error("record written after truncate is missing")
	}
}

// TestTruncateMillisecond checks that, as on a real server, truncation
// removes the records last updated strictly before its time, taken to the
// millisecond: update times are whole milliseconds, and a record updated
// in the truncation's millisecond survives.
func TestTruncateMillisecond(t *testing.T) {
	tg := newTarget(t)
	set := tg.set(t)
	k := tg.key(t, set, 1)
	noErr(t, tg.client.Put(nil, k, as.BinMap{"a": 1}))
	rec, err := tg.client.Operate(nil, k, as.ExpReadOp("lut", as.ExpLastUpdate(), as.ExpReadFlagDefault))
	noErr(t, err)
	lut := int64(rec.Bins["lut"].(int))
	if lut%int64(time.Millisecond) != 0 {
		t.Fatalf("last update %d ns is not a whole millisecond", lut)
	}
	time.Sleep(5 * time.Millisecond)
	exists := func(cutoff int64) bool {
		t.Helper()
		at := time.Unix(0, cutoff)
		noErr(t, tg.client.Truncate(nil, tg.ns, set, &at))
		// Truncation is asynchronous on a real server; wait for it to settle.
		deadline := time.Now().Add(time.Second)
		for {
			ok, err := tg.client.Exists(nil, k)
			noErr(t, err)
			if !ok || time.Now().After(deadline) {
				return ok
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	if !exists(lut) {
		t.Fatal("truncating at the record's update time removed it")
	}
	if !exists(lut + int64(time.Millisecond) - 1) {
		t.Fatal("truncating within the record's update millisecond removed it")
	}
	if exists(lut + int64(time.Millisecond)) {
		t.Fatal("truncating a millisecond after the record's update kept it")
	}
	future := time.Now().Add(time.Hour)
	wantCode(t, tg.client.Truncate(nil, tg.ns, set, &future), types.PARAMETER_ERROR)
}

func TestQueryCollectionAndExpressionIndex(t *testing.T) {
	tg := newTarget(t)
	set := tg.set(t)
	putN(t, tg, set, 12)
	idxL, idxE := set+"_l", set+"_e"
	task, err := tg.client.CreateComplexIndex(nil, tg.ns, set, idxL, "l", as.NUMERIC, as.ICT_LIST)
	noErr(t, err)
	noErr(t, <-task.OnComplete())
	t.Cleanup(func() { _ = tg.client.DropIndex(nil, tg.ns, set, idxL) })

	stmt := as.NewStatement(tg.ns, set)
	noErr(t, stmt.SetFilter(as.NewContainsRangeFilter("l", as.ICT_LIST, 105, 107)))
	recs := collect(t)(tg.client.QueryPartitions(nil, stmt, as.NewPartitionFilterAll()))
	expectEqual(t, "list index", intsOf(recs, "i"), seq(5, 8))

	exp := as.ExpNumMul(as.ExpIntBin("i"), as.ExpIntVal(10))
	task, err = tg.client.CreateIndexWithExpression(nil, tg.ns, set, idxE, as.NUMERIC, as.ICT_DEFAULT, exp)
	if err != nil {
		t.Fatalf("CreateIndexUsingExpression: %v", err)
	}
	noErr(t, <-task.OnComplete())
	t.Cleanup(func() { _ = tg.client.DropIndex(nil, tg.ns, set, idxE) })
	stmt = as.NewStatement(tg.ns, set)
	noErr(t, stmt.SetFilter(as.NewRangeWithExpressionFilter(exp, 30, 50)))
	recs = collect(t)(tg.client.QueryPartitions(nil, stmt, as.NewPartitionFilterAll()))
	expectEqual(t, "expression index", intsOf(recs, "i"), seq(3, 6))
}
