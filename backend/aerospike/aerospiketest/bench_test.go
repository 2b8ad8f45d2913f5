package aerospiketest_test

import (
	"fmt"
	"testing"

	as "github.com/aerospike/aerospike-client-go/v8"

	"github.com/beanspike/beanspike/backend/aerospike/aerospiketest"
)

func benchClient(b *testing.B) *as.Client {
	b.Helper()
	srv, err := aerospiketest.NewServer()
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = srv.Close() })
	client, err := as.NewClient(srv.Host(), srv.Port())
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(client.Close)
	return client
}

func BenchmarkPut(b *testing.B) {
	client := benchClient(b)
	key, _ := as.NewKey("test", "bench", "k")
	bins := as.BinMap{"a": 1, "s": "hello"}
	b.ReportAllocs()
	for b.Loop() {
		if err := client.Put(nil, key, bins); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkGet(b *testing.B) {
	client := benchClient(b)
	key, _ := as.NewKey("test", "bench", "k")
	if err := client.Put(nil, key, as.BinMap{"a": 1, "s": "hello"}); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := client.Get(nil, key); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkMapPutGetByRank(b *testing.B) {
	client := benchClient(b)
	key, _ := as.NewKey("test", "bench", "m")
	pol := as.NewMapPolicy(as.MapOrder.KEY_ORDERED, as.MapWriteMode.UPDATE)
	for i := range 100 {
		if _, err := client.Operate(nil, key, as.MapPutOp(pol, "m", i, []any{i % 7, "job"})); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		i++
		if _, err := client.Operate(nil, key,
			as.MapPutOp(pol, "m", i%100, []any{i % 7, "job"}),
			as.MapGetByRankRangeCountOp("m", 0, 5, as.MapReturnType.KEY_VALUE),
		); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkParallelGet(b *testing.B) {
	client := benchClient(b)
	key, _ := as.NewKey("test", "bench", "k")
	if err := client.Put(nil, key, as.BinMap{"a": 1}); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := client.Get(nil, key); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

// shardBench is a shard-like record: key/value-ordered maps of job id to
// [rank1, rank2, rest] lists, as the job-queue backend keeps them.
type shardBench struct {
	client *as.Client
	key    *as.Key
	pol    *as.MapPolicy
	n      int
}

// shardEntry is the map value of job id: it ranks by (id%97, id).
func shardEntry(id int) []any {
	return []any{int64(id % 97), int64(id), []byte("0123456789abcdefghij")}
}

func newShardBench(b *testing.B, n int) *shardBench {
	b.Helper()
	client := benchClient(b)
	key, _ := as.NewKey("test", "bench", "shard")
	sb := &shardBench{client: client, key: key, n: n,
		pol: as.NewMapPolicy(as.MapOrder.KEY_VALUE_ORDERED, as.MapWriteMode.UPDATE)}
	const chunk = 500
	for start := 0; start < n; start += chunk {
		ready, delayed := map[any]any{}, map[any]any{}
		for id := start; id < min(start+chunk, n); id++ {
			ready[int64(id)] = shardEntry(id)
			delayed[int64(n+id)] = shardEntry(n + id)
		}
		if _, err := client.Operate(nil, key,
			as.MapPutItemsOp(sb.pol, "ready", ready),
			as.MapPutItemsOp(sb.pol, "delayed", delayed),
			as.MapPutItemsOp(sb.pol, "reserved", map[any]any{int64(-1): shardEntry(0)}),
		); err != nil {
			b.Fatal(err)
		}
	}
	return sb
}

// BenchmarkShardMap measures the backend's hot map operations on a record
// holding key/value-ordered maps of 1k and 10k entries.
func BenchmarkShardMap(b *testing.B) {
	for _, n := range []int{1000, 10000} {
		b.Run(fmt.Sprintf("top1/n=%d", n), func(b *testing.B) {
			sb := newShardBench(b, n)
			b.ReportAllocs()
			for b.Loop() {
				rec, err := sb.client.Operate(nil, sb.key,
					as.MapGetByRankRangeCountOp("ready", 0, 1, as.MapReturnType.KEY_VALUE))
				if err != nil {
					b.Fatal(err)
				}
				if got := rec.Bins["ready"].([]as.MapPair); len(got) != 1 {
					b.Fatalf("top-1 returned %d entries", len(got))
				}
			}
		})
		b.Run(fmt.Sprintf("move/n=%d", n), func(b *testing.B) {
			sb := newShardBench(b, n)
			// The backend ranks these maps all the time.
			if _, err := sb.client.Operate(nil, sb.key,
				as.MapGetByRankRangeCountOp("ready", 0, 1, as.MapReturnType.KEY_VALUE),
				as.MapGetByRankRangeCountOp("reserved", 0, 1, as.MapReturnType.KEY_VALUE),
			); err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				// Move job id from ready to reserved and back, guarded by the
				// entry's current value as the backend's compare-and-swap.
				id := i / 2 % n
				from, to := "ready", "reserved"
				if i%2 == 1 {
					from, to = to, from
				}
				i++
				e := shardEntry(id)
				pol := as.NewWritePolicy(0, 0)
				pol.FilterExpression = as.ExpEq(
					as.ExpMapGetByKey(as.MapReturnType.VALUE, as.ExpTypeLIST,
						as.ExpIntVal(int64(id)), as.ExpMapBin(from)),
					as.ExpListValueVal(e...))
				if _, err := sb.client.Operate(pol, sb.key,
					as.MapRemoveByKeyOp(from, int64(id), as.MapReturnType.NONE),
					as.MapPutOp(sb.pol, to, int64(id), e),
				); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(fmt.Sprintf("valueRange/n=%d", n), func(b *testing.B) {
			sb := newShardBench(b, n)
			begin := as.NewListValue([]any{int64(3)})
			end := as.NewListValue([]any{int64(4)})
			b.ReportAllocs()
			for b.Loop() {
				rec, err := sb.client.Operate(nil, sb.key,
					as.MapGetByValueRangeOp("delayed", begin, end, as.MapReturnType.KEY_VALUE),
					as.MapGetByValueRangeOp("ready", nil, end, as.MapReturnType.COUNT))
				if err != nil {
					b.Fatal(err)
				}
				if got := rec.Bins["delayed"].([]as.MapPair); len(got) == 0 {
					b.Fatal("value range returned no entries")
				}
			}
		})
		b.Run(fmt.Sprintf("batchTop1/n=%d", n), func(b *testing.B) {
			sb := newShardBench(b, n)
			recs := make([]as.BatchRecordIfc, 4)
			for i := range recs {
				recs[i] = as.NewBatchReadOps(nil, sb.key,
					as.MapGetByRankRangeCountOp("ready", 0, 1, as.MapReturnType.KEY_VALUE),
					as.MapGetByRankRangeCountOp("delayed", 0, 1, as.MapReturnType.KEY_VALUE))
			}
			b.ReportAllocs()
			for b.Loop() {
				if err := sb.client.BatchOperate(nil, recs); err != nil {
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
}
