package aerospiketest_test

import (
	"testing"

	as "github.com/aerospike/aerospike-client-go/v8"
)

// batchPathFixture is a guarded map write and a plain read, the job-queue
// backend's usual pair, on two records.
type batchPathFixture struct {
	client   *as.Client
	wkey     *as.Key
	rkey     *as.Key
	mapPol   *as.MapPolicy
	filter   *as.Expression
	writeOps []*as.Operation
}

func newBatchPathFixture(b *testing.B) *batchPathFixture {
	b.Helper()
	f := &batchPathFixture{client: benchClient(b),
		mapPol: as.NewMapPolicy(as.MapOrder.KEY_ORDERED, as.MapWriteMode.UPDATE)}
	f.wkey, _ = as.NewKey("test", "bench", "w")
	f.rkey, _ = as.NewKey("test", "bench", "r")
	if err := f.client.Put(nil, f.wkey, as.BinMap{"state": 1}); err != nil {
		b.Fatal(err)
	}
	if err := f.client.Put(nil, f.rkey, as.BinMap{"a": 1, "s": "hello"}); err != nil {
		b.Fatal(err)
	}
	f.filter = as.ExpEq(as.ExpIntBin("state"), as.ExpIntVal(1))
	f.writeOps = []*as.Operation{as.MapPutOp(f.mapPol, "m", 1, "job")}
	return f
}

// BenchmarkBatchPath compares a two-record BatchOperate (a filtered map
// write and a plain read) with single-record commands doing the same.
func BenchmarkBatchPath(b *testing.B) {
	b.Run("Operate", func(b *testing.B) {
		f := newBatchPathFixture(b)
		pol := as.NewWritePolicy(0, 0)
		pol.FilterExpression = f.filter
		b.ReportAllocs()
		for b.Loop() {
			if _, err := f.client.Operate(pol, f.wkey, f.writeOps...); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("BatchOperate2", func(b *testing.B) {
		f := newBatchPathFixture(b)
		wpol := as.NewBatchWritePolicy()
		wpol.FilterExpression = f.filter
		recs := []as.BatchRecordIfc{
			as.NewBatchWrite(wpol, f.wkey, f.writeOps...),
			as.NewBatchRead(nil, f.rkey, nil),
		}
		b.ReportAllocs()
		for b.Loop() {
			if err := f.client.BatchOperate(nil, recs); err != nil {
				b.Fatal(err)
			}
			for _, r := range recs {
				if err := r.BatchRec().Err; err != nil {
					b.Fatal(err)
				}
			}
		}
	})
}
