package aerospike

import (
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	as "github.com/aerospike/aerospike-client-go/v8"

	"github.com/beanspike/beanspike"
)

// The backlog benchmarks measure what one operation costs with a given
// number of jobs waiting in its tube.
//
// The backlog is ready jobs at backlogPriority, less urgent than the
// jobs the benchmarks put and reserve (beanspike.DefaultPriority): so a
// measured Reserve takes a measured job, never one of the backlog, and
// the backlog stays as it was, in the same index records as the
// measured jobs. Ready is the state of a backlog that is waiting to be
// worked off, and the one whose map Reserve reads.
const (
	// envBacklogMax names the environment variable that sets the largest
	// backlog BenchmarkBacklog runs: 10000000 adds the 10M backlog, which
	// wants time and memory; less leaves out the larger ones.
	envBacklogMax     = "BEANSPIKE_BACKLOG_MAX"
	defaultBacklogMax = 1_000_000

	backlogTube     = "bench"
	backlogPriority = 1 << 20
	backlogBodySize = 100

	fillBatch   = 1000 // jobs per PutBatch call of the fill
	fillWorkers = 4    // PutBatch calls of the fill at once
	keepAbove   = 256  // measured jobs put or held above the backlog at most
	rawKeys     = 4096 // keys a raw put cycles through
)

// backlogSizes are the backlogs BenchmarkBacklog measures, smallest
// first, with the names of their sub-benchmarks.
var backlogSizes = []struct {
	name string
	n    int
}{
	{"0", 0},
	{"100k", 100_000},
	{"1M", 1_000_000},
	{"10M", 10_000_000},
}

var backlogBody = make([]byte, backlogBodySize)

// backlogMax returns the largest backlog to run, from the environment
// value v ("" for the default).
func backlogMax(v string) (int, error) {
	if v == "" {
		return defaultBacklogMax, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 0 {
		return 0, fmt.Errorf("%s=%q is not a job count", envBacklogMax, v)
	}
	return n, nil
}

func TestBacklogMax(t *testing.T) {
	for _, c := range []struct {
		v    string
		want int
		ok   bool
	}{
		{"", defaultBacklogMax, true},
		{"0", 0, true},
		{"10000000", 10_000_000, true},
		{"-1", 0, false},
		{"1e7", 0, false},
	} {
		got, err := backlogMax(c.v)
		if got != c.want || (err == nil) != c.ok {
			t.Errorf("backlogMax(%q) = %d, %v; want %d, ok %v", c.v, got, err, c.want, c.ok)
		}
	}
}

// BenchmarkBacklog measures, for each backlog of jobs waiting in a tube,
// next to each other in one store:
//
//   - RawPut: one single-record put of a 100-byte bin with the Go client,
//     into the store's job set, as BenchmarkRawPut measures it: the
//     yardstick of the ratios (x-rawput).
//   - Put: one Put of a 100-byte job into the tube. Every 256 puts the
//     jobs put are deleted, timer stopped, so the tube holds the backlog
//     plus fewer than 256 jobs.
//   - ReserveDelete: one Reserve and one Delete of a job put beforehand,
//     timer stopped, 256 at a time (64 to 320 above the backlog), as
//     BenchmarkReserveDelete does.
//   - RawPut8: raw puts from 8 goroutines over the one client; ops/s.
//   - Concurrent: 8 producers and 8 consumers, each a client of one New,
//     as in BenchmarkConcurrent; jobs/s, and x-rawput8, the raw puts of
//     RawPut8 that fit in the time of one job. Consumers take the most
//     urgent job, which is a backlog job whenever the producers' jobs are
//     all taken; each deletes what it takes, and as many are deleted as
//     put, so the tube holds the backlog throughout, give or take the
//     jobs in flight.
//
// On a server that reports its namespace's counters, each also reports
// the record commands the server ran per operation while its timer ran
// (srv-ops/op) and the writes among them whose guard failed
// (cas-lost/op); -v logs the counters that moved.
//
// The backlog is put with PutBatch, 1000 jobs a call, 4 calls at once,
// before any of them and outside their timers, and checked with
// StatsTube. If the store refuses a job of the backlog (an index record
// over the server's max-record-size: a tube holds about 21,000 jobs per
// shard per MiB of it), the backlog's benchmarks fail, saying how many
// jobs were put and why: they do not measure a smaller backlog instead,
// and the run does not pass as if it had measured what it was asked to.
//
// Backlogs: 0, 100k and 1M; 10M too when BEANSPIKE_BACKLOG_MAX is at
// least 10000000 (the variable bounds the largest backlog run). Each
// backlog has a store of its own, deleted with DeleteTube at the end.
// Meant for a real server (AEROSPIKE_HOST); -bench.segment sets the
// segment size.
func BenchmarkBacklog(b *testing.B) {
	maxN, err := backlogMax(os.Getenv(envBacklogMax))
	if err != nil {
		b.Fatal(err)
	}
	for _, size := range backlogSizes {
		b.Run("backlog="+size.name, func(b *testing.B) {
			if size.n > maxN {
				b.Skipf("backlog %d is over %s=%d", size.n, envBacklogMax, maxN)
			}
			benchBacklog(b, size.n)
		})
	}
}

func benchBacklog(b *testing.B, n int) {
	q, _ := newBench(b)
	where := fmt.Sprintf("%s at %s:%d, max-record-size %s, %d hints per segment",
		tgt.kind, tgt.host, tgt.port, benchRecordSize(q), q.s.cfg.segSize)
	b.Log(where)
	b.Cleanup(func() { cleanBacklog(b, q) })

	start := time.Now()
	if err := fillBacklog(q, n); err != nil {
		b.Fatalf("backlog of %d jobs on %s, after %s: %v", n, where, time.Since(start).Round(time.Millisecond), err)
	}
	b.Logf("backlog of %d jobs put in %s", n, time.Since(start).Round(time.Millisecond))

	var rawNs, raw8 float64 // the yardsticks, as last measured
	b.Run("RawPut", func(b *testing.B) {
		m := newSrvMeter(q)
		benchRawPut(b, q)
		m.stop()
		m.report(b)
		rawNs = float64(b.Elapsed().Nanoseconds()) / float64(b.N)
	})
	ratio := func(b *testing.B) {
		if rawNs > 0 {
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/rawNs, "x-rawput")
		}
	}
	b.Run("Put", func(b *testing.B) {
		benchBacklogPut(b, q)
		ratio(b)
	})
	b.Run("ReserveDelete", func(b *testing.B) {
		benchBacklogReserveDelete(b, q)
		ratio(b)
	})
	b.Run("RawPut8", func(b *testing.B) {
		m := newSrvMeter(q)
		raw8 = benchRawPut8(b, q)
		m.stop()
		m.report(b)
		b.ReportMetric(raw8, "ops/s")
	})
	b.Run("Concurrent", func(b *testing.B) {
		m := newSrvMeter(q)
		jobs := benchBacklogConcurrent(b, q)
		m.stop()
		m.report(b)
		b.ReportMetric(jobs, "jobs/s")
		if raw8 > 0 {
			b.ReportMetric(raw8/jobs, "x-rawput8")
		}
	})
}

// fillBacklog puts n jobs at backlogPriority into backlogTube and checks
// that the tube holds them, ready. An error says how many were put.
func fillBacklog(q *Queue, n int) error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Minute)
	defer cancel()
	reqs := make([]beanspike.PutRequest, fillBatch)
	for i := range reqs {
		reqs[i] = beanspike.PutRequest{Tube: backlogTube, Body: backlogBody,
			Options: []beanspike.PutOption{beanspike.WithPriority(backlogPriority)}}
	}
	var (
		next, put atomic.Int64
		mu        sync.Mutex
		first     error
		wg        sync.WaitGroup
	)
	for range fillWorkers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				from := next.Add(fillBatch) - fillBatch
				if from >= int64(n) {
					return
				}
				k := min(fillBatch, n-int(from))
				ids, err := q.PutBatch(ctx, reqs[:k])
				put.Add(int64(len(ids)))
				if err != nil {
					mu.Lock()
					if first == nil {
						first = err
					}
					mu.Unlock()
					cancel()
					return
				}
			}
		}()
	}
	wg.Wait()
	if first != nil {
		return fmt.Errorf("the store refused a job after %d were put: %w", put.Load(), first)
	}
	if n == 0 {
		return nil
	}
	st, err := q.StatsTube(ctx, backlogTube)
	if err != nil {
		return fmt.Errorf("%d jobs put, then StatsTube: %w", put.Load(), err)
	}
	if others := st.Reserved + st.Delayed + st.Buried; st.Ready != n || others != 0 || st.TotalJobs != uint64(n) {
		return fmt.Errorf("%d jobs put, the tube has %d ready and %d others of %d put", put.Load(), st.Ready, others, st.TotalJobs)
	}
	return nil
}

// cleanBacklog deletes the backlog's tube and the records of the raw
// puts.
func cleanBacklog(b *testing.B, q *Queue) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Minute)
	defer cancel()
	start := time.Now()
	n, err := q.DeleteTube(ctx, backlogTube)
	switch {
	case errors.Is(err, beanspike.ErrNotFound):
	case err != nil:
		b.Errorf("DeleteTube: %v", err)
	default:
		b.Logf("DeleteTube: %d jobs in %s", n, time.Since(start).Round(time.Millisecond))
	}
	keys := make([]*as.Key, rawKeys)
	for i := range keys {
		keys[i] = rawKey(q, i)
	}
	if _, err := q.s.client.BatchDelete(nil, nil, keys); err != nil {
		b.Errorf("deleting the raw records: %v", err)
	}
}

// rawKey is the key of the i-th raw put: negative, where no job ID is.
func rawKey(q *Queue, i int) *as.Key {
	k, _ := as.NewKey(q.s.cfg.namespace, q.s.setJobs, -int64(i%rawKeys+1))
	return k
}

// rawPut is BenchmarkRawPut's put, with a 100-byte body, of the i-th raw
// key.
func rawPut(q *Queue, wp *as.WritePolicy, i int) error {
	return q.s.client.PutBins(wp, rawKey(q, i), as.NewBin(binTube, backlogTube),
		as.NewBin(binBody, backlogBody), as.NewBin(binSize, len(backlogBody)))
}

func benchRawPut(b *testing.B, q *Queue) {
	wp := q.writePolicy(context.Background(), nil)
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		if err := rawPut(q, wp, i); err != nil {
			b.Fatal(err)
		}
	}
}

func benchBacklogPut(b *testing.B, q *Queue) {
	ctx := context.Background()
	ids := make([]beanspike.ID, 0, keepAbove)
	drain := func() {
		for _, id := range ids {
			if err := q.Delete(ctx, id); err != nil {
				b.Fatalf("deleting job %d: %v", id, err)
			}
		}
		ids = ids[:0]
	}
	b.ReportAllocs()
	m := newSrvMeter(q)
	for b.Loop() {
		if len(ids) == keepAbove {
			b.StopTimer()
			m.stop()
			drain()
			m.start()
			b.StartTimer()
		}
		id, err := q.Put(ctx, backlogTube, backlogBody)
		if err != nil {
			b.Fatalf("Put with %d jobs above the backlog: %v", len(ids), err)
		}
		ids = append(ids, id)
	}
	m.stop()
	m.report(b)
	drain()
}

func benchBacklogReserveDelete(b *testing.B, q *Queue) {
	ctx := context.Background()
	above := map[beanspike.ID]bool{} // the measured jobs in the tube
	fill := func(k int) {
		for range k {
			id, err := q.Put(ctx, backlogTube, backlogBody)
			if err != nil {
				b.Fatalf("Put with %d jobs above the backlog: %v", len(above), err)
			}
			above[id] = true
		}
	}
	fill(64 + keepAbove)
	b.ReportAllocs()
	m := newSrvMeter(q)
	for i := 0; b.Loop(); i++ {
		if i%keepAbove == keepAbove-1 {
			b.StopTimer()
			m.stop()
			fill(keepAbove)
			m.start()
			b.StartTimer()
		}
		j, err := q.Reserve(ctx, backlogTube)
		if err != nil {
			b.Fatal(err)
		}
		if !above[j.ID] {
			b.Fatalf("Reserve took job %d of priority %d, not one of the %d put above the backlog",
				j.ID, j.Priority, len(above))
		}
		delete(above, j.ID)
		if err := q.Delete(ctx, j.ID); err != nil {
			b.Fatal(err)
		}
	}
	m.stop()
	m.report(b)
	for id := range above {
		if err := q.Delete(ctx, id); err != nil {
			b.Fatalf("deleting job %d: %v", id, err)
		}
	}
}

// benchRawPut8 runs b.N raw puts from 8 goroutines and returns how many
// went out per second.
func benchRawPut8(b *testing.B, q *Queue) float64 {
	wp := q.writePolicy(context.Background(), nil)
	n := int64(b.N)
	var next atomic.Int64
	var wg sync.WaitGroup
	b.ReportAllocs()
	b.ResetTimer()
	start := time.Now()
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := next.Add(1)
				if i > n {
					return
				}
				if err := rawPut(q, wp, int(i)); err != nil {
					b.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	b.StopTimer()
	return float64(n) / elapsed.Seconds()
}

// benchBacklogConcurrent runs b.N jobs through 8 producers and 8
// consumers, each a client of q's New, and returns the jobs put, reserved
// and deleted per second.
func benchBacklogConcurrent(b *testing.B, q *Queue) float64 {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	const producers, consumers = 8, 8
	clients := make([]*Queue, producers+consumers)
	for i := range clients {
		c, err := q.NewClient()
		if err != nil {
			b.Fatal(err)
		}
		defer c.Close()
		clients[i] = c
	}
	n := int64(b.N)
	var puts, dels, done atomic.Int64
	var wg sync.WaitGroup
	b.ReportAllocs()
	b.ResetTimer()
	start := time.Now()
	for _, c := range clients[:producers] {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for puts.Add(1) <= n {
				if _, err := c.Put(ctx, backlogTube, backlogBody); err != nil {
					b.Error(err)
					cancel()
					return
				}
			}
		}()
	}
	for _, c := range clients[producers:] {
		wg.Add(1)
		go func() {
			defer wg.Done()
			// Each consumer takes a turn before it reserves, and there are
			// as many turns as jobs put: every Reserve gets a job, and
			// none needs a deadline of its own (one that ran out while
			// its claim was on the way could leave the job reserved).
			for dels.Add(1) <= n {
				j, err := c.Reserve(ctx, backlogTube)
				if err == nil {
					err = c.Delete(ctx, j.ID)
				}
				if err != nil {
					if ctx.Err() == nil {
						b.Error(err)
						cancel()
					}
					return
				}
				done.Add(1)
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	b.StopTimer()
	if err := ctx.Err(); err != nil {
		b.Fatalf("%d jobs: %d put, %d reserved and deleted in %s: %v",
			n, min(puts.Load(), n), done.Load(), elapsed.Round(time.Millisecond), err)
	}
	return float64(n) / elapsed.Seconds()
}

// benchRecordSize returns the max-record-size of q's namespace as the
// server reports it, or "unknown".
func benchRecordSize(q *Queue) string {
	nodes := q.s.client.GetNodes()
	if len(nodes) == 0 {
		return "unknown"
	}
	key := "namespace/" + q.s.cfg.namespace
	m, err := nodes[0].RequestInfo(as.NewInfoPolicy(), key)
	if err != nil {
		return "unknown"
	}
	for _, kv := range strings.Split(m[key], ";") {
		if v, ok := strings.CutPrefix(kv, "max-record-size="); ok {
			if n, err := strconv.Atoi(v); err == nil {
				return fmt.Sprintf("%d (%.3g MiB)", n, float64(n)/(1<<20))
			}
			return v
		}
	}
	return "unknown"
}

// srvMeter counts the record commands the server runs while a
// benchmark's timer runs, from the namespace's counters (summed over the
// nodes). It counts nothing on a server that reports no counters, as the
// in-process one.
type srvMeter struct {
	q    *Queue
	ok   bool
	sum  map[string]int64 // counted so far
	from map[string]int64 // the counters when counting last started
}

// newSrvMeter returns a meter of q's server that has started counting.
func newSrvMeter(q *Queue) *srvMeter {
	m := &srvMeter{q: q, ok: true, sum: map[string]int64{}}
	m.start()
	return m
}

func (m *srvMeter) start() { m.from = serverCounts(m.q) }

func (m *srvMeter) stop() {
	c := serverCounts(m.q)
	if c == nil || m.from == nil {
		m.ok = false
		return
	}
	for k, v := range c {
		m.sum[k] += v - m.from[k]
	}
	m.from = nil
}

// report reports the record commands the server ran per operation
// (srv-ops/op), and the writes among them whose guard did not hold
// (cas-lost/op), and logs the counters that moved.
func (m *srvMeter) report(b *testing.B) {
	if !m.ok || b.N == 0 {
		return
	}
	names := make([]string, 0, len(m.sum))
	for k, v := range m.sum {
		if v != 0 && k != "ops" && k != "filtered" {
			names = append(names, k)
		}
	}
	slices.Sort(names)
	for _, k := range names {
		b.Logf("%s: %.2f/op", k, float64(m.sum[k])/float64(b.N))
	}
	b.ReportMetric(float64(m.sum["ops"])/float64(b.N), "srv-ops/op")
	b.ReportMetric(float64(m.sum["filtered"])/float64(b.N), "cas-lost/op")
}

// serverCounts returns the namespace's counters of record commands, by
// name and summed over the nodes, with two totals: "ops", every record
// command the server ran to an answer (the parts of batch commands
// included), and "filtered", the writes whose guard did not hold. nil
// when the server reports none.
func serverCounts(q *Queue) map[string]int64 {
	key := "namespace/" + q.s.cfg.namespace
	out := map[string]int64{}
	for _, node := range q.s.client.GetNodes() {
		m, err := node.RequestInfo(as.NewInfoPolicy(), key)
		if err != nil {
			return nil
		}
		for _, kv := range strings.Split(m[key], ";") {
			name, v, _ := strings.Cut(kv, "=")
			if !strings.HasPrefix(name, "client_") && !strings.HasPrefix(name, "batch_sub_") {
				continue
			}
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil {
				continue
			}
			out[name] += n
			switch {
			case strings.HasSuffix(name, "_filtered_out"):
				out["filtered"] += n
				out["ops"] += n
			case strings.HasSuffix(name, "_success"), strings.HasSuffix(name, "_not_found"),
				strings.HasSuffix(name, "_error"), strings.HasSuffix(name, "_complete"):
				out["ops"] += n
			}
		}
	}
	if out["ops"] == 0 {
		return nil
	}
	return out
}
