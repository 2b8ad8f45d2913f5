package metrics_test

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/beanspike/beanspike"
	"github.com/beanspike/beanspike/backend/memory"
	"github.com/beanspike/beanspike/metrics"
)

// BenchmarkConcurrent runs 8 producers and 8 consumers (Reserve, then
// Delete) on the memory backend, through plain clients and through
// wrapped ones, side by side in one run: the difference is the cost of
// the metrics.
//
//	go test -run '^$' -bench Concurrent -benchmem -count 5 ./metrics/
func BenchmarkConcurrent(b *testing.B) {
	for _, wrapped := range []bool{false, true} {
		name := "plain"
		if wrapped {
			name = "metrics"
		}
		b.Run(name, func(b *testing.B) {
			root, err := memory.New()
			if err != nil {
				b.Fatal(err)
			}
			defer root.Close()
			m, err := metrics.New(prometheus.NewRegistry(), metrics.WithBackend("memory"))
			if err != nil {
				b.Fatal(err)
			}
			client := func() beanspike.Queue {
				c, err := root.NewClient()
				if err != nil {
					b.Fatal(err)
				}
				if wrapped {
					return m.Wrap(c)
				}
				return c
			}
			const producers, consumers = 8, 8
			body := make([]byte, 100)
			ctx := context.Background()
			var left atomic.Int64
			left.Store(int64(b.N))
			var wg sync.WaitGroup
			b.ReportAllocs()
			b.ResetTimer()
			start := time.Now()
			for p := range producers {
				q := client()
				n := b.N / producers
				if p < b.N%producers {
					n++
				}
				wg.Go(func() {
					for range n {
						if _, err := q.Put(ctx, "bench", body); err != nil {
							b.Error(err)
							return
						}
					}
				})
			}
			for range consumers {
				q := client()
				wg.Go(func() {
					for left.Add(-1) >= 0 {
						j, err := q.Reserve(ctx, "bench")
						if err != nil {
							b.Error(err)
							return
						}
						if err := q.Delete(ctx, j.ID); err != nil {
							b.Error(err)
							return
						}
					}
				})
			}
			wg.Wait()
			b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "jobs/s")
		})
	}
}
