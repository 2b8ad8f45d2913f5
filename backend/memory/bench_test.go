package memory

import (
	"context"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/beanspike/beanspike"
)

func benchQueue(b *testing.B) *Queue {
	b.Helper()
	q, err := New()
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { q.Close() })
	return q
}

// BenchmarkPut puts small jobs into one tube.
func BenchmarkPut(b *testing.B) {
	q := benchQueue(b)
	ctx := context.Background()
	body := []byte("a small job body")
	b.ReportAllocs()
	for b.Loop() {
		if _, err := q.Put(ctx, "bench", body); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkReserveDelete runs the life of a job sequentially: put,
// reserve, delete.
func BenchmarkReserveDelete(b *testing.B) {
	q := benchQueue(b)
	ctx := context.Background()
	body := []byte("a small job body")
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
}

// BenchmarkConcurrent runs 8 producers and 8 consumers, each its own
// client, through one tube; consumers block in Reserve when it is empty.
func BenchmarkConcurrent(b *testing.B) {
	const producers, consumers = 8, 8
	q := benchQueue(b)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	body := []byte("a small job body")
	var done atomic.Int64
	total := int64(b.N)
	finished := make(chan struct{})
	var wg sync.WaitGroup
	b.ReportAllocs()
	b.ResetTimer()
	start := time.Now()
	for i := range consumers {
		c, err := q.NewClient()
		if err != nil {
			b.Fatal(err)
		}
		defer c.Close()
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				j, err := c.Reserve(ctx, "bench")
				if err != nil {
					return
				}
				if err := c.Delete(ctx, j.ID); err != nil {
					b.Error(err)
					return
				}
				if done.Add(1) == total {
					close(finished)
				}
			}
		}()
		_ = i
	}
	per := b.N / producers
	for i := range producers {
		n := per
		if i == 0 {
			n += b.N % producers
		}
		c, err := q.NewClient()
		if err != nil {
			b.Fatal(err)
		}
		defer c.Close()
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range n {
				if _, err := c.Put(ctx, "bench", body); err != nil {
					b.Error(err)
					return
				}
			}
		}()
	}
	<-finished
	el := time.Since(start)
	b.StopTimer()
	cancel()
	wg.Wait()
	b.ReportMetric(float64(b.N)/el.Seconds(), "jobs/s")
}

// BenchmarkMemoryPerJob measures the memory a stored job costs beyond its
// body: it puts 1M jobs with an 8-byte body and reports the heap growth
// per job, less the body's allocation.
func BenchmarkMemoryPerJob(b *testing.B) {
	const jobs = 1 << 20
	const bodyLen = 8 // an 8-byte string allocation takes exactly 8 bytes
	body := []byte("12345678")
	ctx := context.Background()
	var perJob float64
	for b.Loop() {
		q, err := New()
		if err != nil {
			b.Fatal(err)
		}
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		for range jobs {
			if _, err := q.Put(ctx, "bench", body, beanspike.WithPriority(1)); err != nil {
				b.Fatal(err)
			}
		}
		runtime.GC()
		runtime.ReadMemStats(&after)
		perJob = float64(after.HeapAlloc-before.HeapAlloc)/jobs - bodyLen
		runtime.KeepAlive(q)
		q.Close()
	}
	b.ReportMetric(perJob, "bytes/job")
}
