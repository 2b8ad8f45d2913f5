package aerospike

import (
	"context"
	"flag"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	as "github.com/aerospike/aerospike-client-go/v8"

	"github.com/beanspike/beanspike/backend/aerospike/aerospiketest"
)

var benchBody = make([]byte, 128)

var benchSegment = flag.Int("bench.segment", DefaultSegmentSize, "hints per index segment in the benchmarks")

// newBenchQueue returns a queue for a benchmark. On the in-process
// target each benchmark gets a server of its own, so that what one left
// in the heap the server shares with it does not weigh on the next.
func newBenchQueue(b *testing.B, opts ...Option) *Queue {
	q, _ := newBench(b, opts...)
	return q
}

// newBench is newBenchQueue that also returns the in-process server; nil
// on other targets.
func newBench(b *testing.B, opts ...Option) (*Queue, *aerospiketest.Server) {
	b.Helper()
	if tgt.srv == nil {
		return newTestQueue(b, append([]Option{WithSegmentSize(*benchSegment)}, opts...)...), nil
	}
	srv, err := aerospiketest.NewServer()
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(runtime.GC) // last: after the server and the queue are gone
	b.Cleanup(func() { _ = srv.Close() })
	q := newQueueAt(b, srv.Host(), srv.Port(), append([]Option{WithSegmentSize(*benchSegment)}, opts...)...)
	return q, srv
}

// benchPeer returns a client of q's store made by a New of its own, as
// another process would make it.
func benchPeer(b *testing.B, q *Queue, srv *aerospiketest.Server, opts ...Option) *Queue {
	b.Helper()
	all := append(append(sameStore(q), WithSegmentSize(*benchSegment)), opts...)
	if srv == nil {
		return newQueueAt(b, tgt.host, tgt.port, all...)
	}
	return newQueueAt(b, srv.Host(), srv.Port(), all...)
}

// BenchmarkRawPut is the yardstick: one single-record put of a record
// like a job record, with the client the queue uses. It cycles through
// 4096 keys, so that it does not leave the in-process server (and the
// heap it shares with the benchmarks that follow) ever larger.
func BenchmarkRawPut(b *testing.B) {
	q := newBenchQueue(b)
	wp := q.writePolicy(context.Background(), nil)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		k, _ := as.NewKey(q.s.cfg.namespace, q.s.setJobs, int64(i%4096+1))
		err := q.s.client.PutBins(wp, k, as.NewBin(binTube, "bench"), as.NewBin(binBody, benchBody),
			as.NewBin(binSize, len(benchBody)))
		if err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkPut puts jobs into a tube whose backlog stays under 512 jobs:
// index records are rewritten whole on every write, so the cost of a Put
// grows with the backlog of its index record.
func BenchmarkPut(b *testing.B) {
	q := newBenchQueue(b)
	ctx := context.Background()
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		if i%512 == 511 {
			b.StopTimer()
			if _, err := q.DeleteTube(ctx, "bench"); err != nil {
				b.Fatal(err)
			}
			b.StartTimer()
		}
		if _, err := q.Put(ctx, "bench", benchBody); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkReserveDelete reserves and deletes jobs from a backlog of 64
// to 320 jobs, refilled outside the timer every 256 jobs; on the
// in-process server it also reports the commands it served per job,
// refills left out.
func BenchmarkReserveDelete(b *testing.B) {
	q, srv := newBench(b)
	var cmds int64
	ctx := context.Background()
	fill := func(n int) {
		for range n {
			if _, err := q.Put(ctx, "bench", benchBody); err != nil {
				b.Fatal(err)
			}
		}
	}
	const refill = 256
	fill(64 + refill)
	b.ReportAllocs()
	b.ResetTimer()
	cmds = -srvCommands(srv)
	for i := 0; b.Loop(); i++ {
		if i%refill == refill-1 {
			b.StopTimer()
			c0 := srvCommands(srv)
			fill(refill)
			cmds -= srvCommands(srv) - c0
			b.StartTimer()
		}
		j, err := q.Reserve(ctx, "bench")
		if err != nil {
			b.Fatal(err)
		}
		if err := q.Delete(ctx, j.ID); err != nil {
			b.Fatal(err)
		}
	}
	if srv != nil {
		b.ReportMetric(float64(cmds+srvCommands(srv))/float64(b.N), "cmds/job")
	}
}

// srvCommands returns the commands srv served so far; 0 without one.
func srvCommands(srv *aerospiketest.Server) int64 {
	if srv == nil {
		return 0
	}
	return srv.Stats().Commands
}

// BenchmarkConcurrent runs 8 producers and 8 consumers, each a client of
// its own, on one tube, and reports the jobs put, reserved and deleted
// per second; on the in-process server also the commands it served per
// job (concurrent calls are merged) and the writes it refused as busy.
//
// "merged" is the default; "unmerged" sends every command at once
// (WithInFlight(MaxInFlight)), for comparison. In both, producers and
// consumers are clients of one New, as in one process: a consumer finds
// the records of jobs put in the process in hand. "apart" has the
// producers' clients and the consumers' made by two New calls, as in two
// processes.
func BenchmarkConcurrent(b *testing.B) {
	b.Run("merged", func(b *testing.B) { benchConcurrent(b, false) })
	b.Run("unmerged", func(b *testing.B) { benchConcurrent(b, false, WithInFlight(MaxInFlight)) })
	b.Run("apart", func(b *testing.B) { benchConcurrent(b, true) })
}

func benchConcurrent(b *testing.B, apart bool, opts ...Option) {
	base, srv := newBench(b, opts...)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	const producers, consumers = 8, 8
	from := base // of the consumers
	if apart {
		from = benchPeer(b, base, srv, opts...)
	}
	var clients []*Queue
	for i := range producers + consumers {
		if i < producers {
			c, err := base.NewClient()
			if err != nil {
				b.Fatal(err)
			}
			defer c.Close()
			clients = append(clients, c)
			continue
		}
		c, err := from.NewClient()
		if err != nil {
			b.Fatal(err)
		}
		defer c.Close()
		clients = append(clients, c)
	}
	n := int64(b.N)
	var st0 aerospiketest.Stats
	if srv != nil {
		st0 = srv.Stats()
	}
	var puts, dels atomic.Int64
	var wg sync.WaitGroup
	b.ResetTimer()
	start := time.Now()
	for i := range producers {
		wg.Add(1)
		go func(q *Queue) {
			defer wg.Done()
			for puts.Add(1) <= n {
				if _, err := q.Put(ctx, "bench", benchBody); err != nil {
					b.Error(err)
					return
				}
			}
		}(clients[i])
	}
	for i := range consumers {
		wg.Add(1)
		go func(q *Queue) {
			defer wg.Done()
			for dels.Load() < n && ctx.Err() == nil {
				rctx, rcancel := context.WithTimeout(ctx, 100*time.Millisecond)
				j, err := q.Reserve(rctx, "bench")
				rcancel()
				if err != nil {
					continue
				}
				if err := q.Delete(ctx, j.ID); err != nil {
					b.Error(err)
					return
				}
				dels.Add(1)
			}
		}(clients[producers+i])
	}
	wg.Wait()
	elapsed := time.Since(start)
	b.StopTimer()
	b.ReportMetric(float64(n)/elapsed.Seconds(), "jobs/s")
	if srv != nil {
		st := srv.Stats()
		b.ReportMetric(float64(st.Commands-st0.Commands)/float64(n), "cmds/job")
		b.ReportMetric(float64(st.KeyBusy-st0.KeyBusy)/float64(n), "busy/job")
	}
}
