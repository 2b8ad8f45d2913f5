package aerospiketest_test

import (
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
