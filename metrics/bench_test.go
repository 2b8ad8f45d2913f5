package metrics_test

import (
	"context"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/beanspike/beanspike"
	"github.com/beanspike/beanspike/backend/memory"
	"github.com/beanspike/beanspike/metrics"
)

// sides are the two ways the benchmarks run the same work: through plain
// clients and through wrapped ones.
var sides = []struct {
	name    string
	wrapped bool
}{{"plain", false}, {"metrics", true}}

// newMetrics makes a set of metrics on a registry of its own.
func newMetrics(b *testing.B) *metrics.Metrics {
	b.Helper()
	m, err := metrics.New(prometheus.NewRegistry(), metrics.WithBackend("memory"))
	if err != nil {
		b.Fatal(err)
	}
	return m
}

// run8p8c puts n jobs through 8 producers and takes them through 8
// consumers (Reserve, then Delete), each its own client of a fresh memory
// store, wrapped by m when m is not nil. It returns the time from the
// first Put to the last Delete.
func run8p8c(b *testing.B, n int, m *metrics.Metrics) time.Duration {
	b.Helper()
	root, err := memory.New()
	if err != nil {
		b.Fatal(err)
	}
	defer root.Close()
	const producers, consumers = 8, 8
	var qs []beanspike.Queue
	for range producers + consumers {
		c, err := root.NewClient()
		if err != nil {
			b.Fatal(err)
		}
		if m != nil {
			qs = append(qs, m.Wrap(c))
		} else {
			qs = append(qs, c)
		}
	}
	body := make([]byte, 100)
	ctx := context.Background()
	var left atomic.Int64
	left.Store(int64(n))
	var wg sync.WaitGroup
	start := time.Now()
	for p, q := range qs[:producers] {
		k := n / producers
		if p < n%producers {
			k++
		}
		wg.Go(func() {
			for range k {
				if _, err := q.Put(ctx, "bench", body); err != nil {
					b.Error(err)
					return
				}
			}
		})
	}
	for _, q := range qs[producers:] {
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
	return time.Since(start)
}

// BenchmarkConcurrent runs 8 producers and 8 consumers (Reserve, then
// Delete) on the memory backend, through plain clients and through
// wrapped ones. Its allocations per job show what the wrapper allocates
// (nothing); for the time the wrapper costs, BenchmarkOverhead is the
// steadier measure, as it alternates the two in one run.
//
//	go test -run '^$' -bench Concurrent -benchmem -count 5 ./metrics/
func BenchmarkConcurrent(b *testing.B) {
	for _, s := range sides {
		b.Run(s.name, func(b *testing.B) {
			var m *metrics.Metrics
			if s.wrapped {
				m = newMetrics(b)
			}
			b.ReportAllocs()
			b.ResetTimer()
			el := run8p8c(b, b.N, m)
			b.ReportMetric(float64(b.N)/el.Seconds(), "jobs/s")
		})
	}
}

// BenchmarkOverhead is BenchmarkConcurrent's workload, plain and wrapped
// alternately, in pairs of rounds of 10,000 jobs: each round on a fresh
// store after a garbage collection, the side going first alternating, so
// that both meet the same load of a shared machine. It reports each
// side's time per job over all its rounds, and the wrapper's overhead as
// the median over the pairs of the wrapped round's time over the plain
// one's, less 1, in percent: of the wall-clock time (overhead-%) and of
// the CPU time of the process (cpu-overhead-%). Its ns/op is the time of
// both sides, per job of one.
//
//	go test -run '^$' -bench Overhead -count 8 ./metrics/
func BenchmarkOverhead(b *testing.B) {
	const round = 10_000
	m := newMetrics(b)
	var plain, wrapped time.Duration
	var wall, cpu []float64
	for done, i := 0, 0; done < b.N; i++ {
		n := min(round, b.N-done)
		var el, cp [2]time.Duration // plain, wrapped
		for k := range 2 {
			side := (i + k) % 2
			b.StopTimer()
			runtime.GC()
			c0 := cpuTime(b)
			b.StartTimer()
			if side == 0 {
				el[side] = run8p8c(b, n, nil)
			} else {
				el[side] = run8p8c(b, n, m)
			}
			cp[side] = cpuTime(b) - c0
		}
		plain += el[0]
		wrapped += el[1]
		wall = append(wall, float64(el[1])/float64(el[0]))
		cpu = append(cpu, float64(cp[1])/float64(cp[0]))
		done += n
	}
	b.ReportMetric(float64(plain.Nanoseconds())/float64(b.N), "plain-ns/job")
	b.ReportMetric(float64(wrapped.Nanoseconds())/float64(b.N), "metrics-ns/job")
	b.ReportMetric(100*(median(wall)-1), "overhead-%")
	b.ReportMetric(100*(median(cpu)-1), "cpu-overhead-%")
}

// median returns the median of x, which it sorts.
func median(x []float64) float64 {
	slices.Sort(x)
	if n := len(x); n%2 == 0 {
		return (x[n/2-1] + x[n/2]) / 2
	}
	return x[len(x)/2]
}

// cpuTime returns the CPU time the process has used, user and system.
func cpuTime(b *testing.B) time.Duration {
	var u syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &u); err != nil {
		b.Fatal(err)
	}
	return time.Duration(u.Utime.Nano() + u.Stime.Nano())
}

// BenchmarkSerial runs the life of a job, Put, Reserve and Delete, in one
// goroutine, through a plain client and through a wrapped one.
func BenchmarkSerial(b *testing.B) {
	for _, s := range sides {
		b.Run(s.name, func(b *testing.B) {
			root, err := memory.New()
			if err != nil {
				b.Fatal(err)
			}
			defer root.Close()
			var q beanspike.Queue = root
			if s.wrapped {
				q = newMetrics(b).Wrap(root)
			}
			ctx := context.Background()
			body := make([]byte, 100)
			b.ReportAllocs()
			for b.Loop() {
				if _, err := q.Put(ctx, "bench", body); err != nil {
					b.Fatal(err)
				}
				j, err := q.Reserve(ctx, "bench")
				if err != nil {
					b.Fatal(err)
				}
				if err := q.Delete(ctx, j.ID); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// nopQueue answers Put, Reserve and Delete at once, so that a benchmark
// of it wrapped measures the wrapper alone.
type nopQueue struct {
	beanspike.Queue
	job beanspike.Job
}

func (q *nopQueue) Put(context.Context, string, []byte, ...beanspike.PutOption) (beanspike.ID, error) {
	return 1, nil
}

func (q *nopQueue) Reserve(context.Context, ...string) (*beanspike.Job, error) { return &q.job, nil }

func (q *nopQueue) Delete(context.Context, beanspike.ID) error { return nil }

// BenchmarkWrapper measures what the wrapper adds to a call, Put,
// Reserve and Delete in turn on a queue that does nothing, one goroutine
// per queue, as many as GOMAXPROCS (the plain side is the cost of the
// calls without the wrapper). Per op: one job's three calls.
func BenchmarkWrapper(b *testing.B) {
	for _, s := range sides {
		b.Run(s.name, func(b *testing.B) {
			m := newMetrics(b)
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				var q beanspike.Queue = &nopQueue{job: beanspike.Job{ID: 1}}
				if s.wrapped {
					q = m.Wrap(q)
				}
				ctx := context.Background()
				body := make([]byte, 100)
				for pb.Next() {
					if _, err := q.Put(ctx, "bench", body); err != nil {
						b.Error(err)
						return
					}
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
		})
	}
}
