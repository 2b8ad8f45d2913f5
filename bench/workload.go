package bench

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// Workload is one way of using a queue, measured per job.
type Workload struct {
	// Name names the workload in reports, e.g. "put/1KiB+lz4".
	Name string
	// Size is the body size in bytes.
	Size int
	// Compress asks targets that can to store bodies compressed.
	Compress bool
	// run measures j.n jobs.
	run func(j *job) (time.Duration, error)
}

// Kind is the workload's name without its body size.
func (w Workload) Kind() string {
	for i := 0; i < len(w.Name); i++ {
		if w.Name[i] == '/' {
			return w.Name[:i]
		}
	}
	return w.Name
}

// Producers and Consumers are the goroutines of the concurrent workload.
const (
	Producers = 8
	Consumers = 8
)

// Workloads returns the workloads of the comparison: sequential put,
// reserve+delete, put+reserve+delete and 8 producers with 8 consumers,
// on small bodies, and on 1 KiB and 64 KiB bodies with and without
// compression.
func Workloads() []Workload {
	var ws []Workload
	kinds := []struct {
		name string
		run  func(j *job) (time.Duration, error)
	}{
		{"put", runPut},
		{"reserve-delete", runReserveDelete},
		{"put-reserve-delete", runPutReserveDelete},
		{"8p8c", runConcurrent},
	}
	sizes := []struct {
		name     string
		size     int
		compress bool
	}{
		{"100B", 100, false},
		{"1KiB", 1 << 10, false},
		{"1KiB+lz4", 1 << 10, true},
		{"64KiB", 64 << 10, false},
		{"64KiB+lz4", 64 << 10, true},
	}
	for _, sz := range sizes {
		for _, k := range kinds {
			if k.name == "put-reserve-delete" && sz.size != 100 {
				continue
			}
			ws = append(ws, Workload{Name: k.name + "/" + sz.name, Size: sz.size, Compress: sz.compress, run: k.run})
		}
	}
	return ws
}

// Body returns a body of n bytes that compresses about as well as typical
// JSON: words drawn from a small vocabulary with random numbers between.
func Body(n int) []byte {
	words := []string{`{"id":`, `"user":`, `"email":"`, `@example.com",`, `"amount":`, `"status":"queued"}`, `"retry":`, "\n"}
	r := rand.New(rand.NewPCG(1, 2))
	b := make([]byte, 0, n+32)
	for len(b) < n {
		b = append(b, words[r.IntN(len(words))]...)
		b = fmt.Appendf(b, "%d", r.IntN(100000))
	}
	return b[:n]
}

// Timer is the part of *testing.B that workloads use to leave set-up
// out of the measurement.
type Timer interface {
	StartTimer()
	StopTimer()
	ResetTimer()
}

type noTimer struct{}

func (noTimer) StartTimer() {}
func (noTimer) StopTimer()  {}
func (noTimer) ResetTimer() {}

// job is one measured run: n jobs of body through tube of s.
type job struct {
	s        Session
	tube     string
	body     []byte
	compress bool
	n        int
	timer    Timer
}

// Run measures w on a new session of t, which it starts and stops, and
// reports jobs/s. It skips the benchmark when the target is missing here.
func Run(b *testing.B, t Target, w Workload) {
	s, err := t.Start()
	if err != nil {
		b.Skipf("%s: %v", t.Name, err)
	}
	defer s.Close()
	b.SetBytes(int64(w.Size))
	b.ReportAllocs()
	elapsed, err := w.Measure(s, t, b.N, b)
	if err != nil {
		b.Fatal(err)
	}
	if elapsed > 0 {
		b.ReportMetric(float64(b.N)/elapsed.Seconds(), "jobs/s")
	}
}

// Measure runs n jobs of w on s, a session of t, and returns the time the
// measured part took.
func (w Workload) Measure(s Session, t Target, n int, timer Timer) (time.Duration, error) {
	if timer == nil {
		timer = noTimer{}
	}
	j := &job{s: s, tube: fmt.Sprintf("bench-%d", rand.Uint32()), body: Body(w.Size), compress: w.Compress && t.Compresses, n: n, timer: timer}
	return w.run(j)
}

func (j *job) client() (Client, error) {
	c, err := j.s.NewClient()
	if err != nil {
		return nil, fmt.Errorf("connect: %w", err)
	}
	return c, nil
}

func runPut(j *job) (time.Duration, error) {
	c, err := j.client()
	if err != nil {
		return 0, err
	}
	defer c.Close()
	j.timer.ResetTimer()
	start := time.Now()
	if err := j.fill(c, j.n); err != nil {
		return 0, err
	}
	el := time.Since(start)
	j.timer.StopTimer()
	return el, drain(c, j.tube, j.n, len(j.body))
}

func runReserveDelete(j *job) (time.Duration, error) {
	c, err := j.client()
	if err != nil {
		return 0, err
	}
	defer c.Close()
	j.timer.StopTimer()
	if err := j.fill(c, j.n); err != nil {
		return 0, err
	}
	j.timer.ResetTimer()
	j.timer.StartTimer()
	start := time.Now()
	err = drain(c, j.tube, j.n, len(j.body))
	return time.Since(start), err
}

func runPutReserveDelete(j *job) (time.Duration, error) {
	c, err := j.client()
	if err != nil {
		return 0, err
	}
	defer c.Close()
	j.timer.ResetTimer()
	start := time.Now()
	for i := 0; i < j.n; i++ {
		if err := j.fill(c, 1); err != nil {
			return 0, err
		}
		if err := drain(c, j.tube, 1, len(j.body)); err != nil {
			return 0, err
		}
	}
	return time.Since(start), nil
}

// runConcurrent runs Producers goroutines putting n jobs between them and
// Consumers goroutines reserving and deleting them, each on its own client.
func runConcurrent(j *job) (time.Duration, error) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	clients := make([]Client, 0, Producers+Consumers)
	defer func() {
		for _, c := range clients {
			c.Close()
		}
	}()
	for i := 0; i < Producers+Consumers; i++ {
		c, err := j.client()
		if err != nil {
			return 0, err
		}
		clients = append(clients, c)
	}
	var (
		next, done atomic.Int64
		wg         sync.WaitGroup
		errOnce    sync.Once
		firstErr   error
	)
	fail := func(err error) {
		errOnce.Do(func() { firstErr = err; cancel() })
	}
	total := int64(j.n)
	j.timer.ResetTimer()
	start := time.Now()
	for i := 0; i < Producers; i++ {
		wg.Add(1)
		go func(c Client) {
			defer wg.Done()
			for next.Add(1) <= total {
				if err := c.Put(ctx, j.tube, j.body, j.compress); err != nil {
					fail(fmt.Errorf("put: %w", err))
					return
				}
			}
		}(clients[i])
	}
	for i := 0; i < Consumers; i++ {
		wg.Add(1)
		go func(c Client) {
			defer wg.Done()
			for done.Add(1) <= total {
				if err := drain(c, j.tube, 1, len(j.body)); err != nil {
					fail(err)
					return
				}
			}
		}(clients[Producers+i])
	}
	wg.Wait()
	return time.Since(start), firstErr
}

// fill puts n jobs of j's body into j's tube through c.
func (j *job) fill(c Client, n int) error {
	ctx := context.Background()
	for i := 0; i < n; i++ {
		if err := c.Put(ctx, j.tube, j.body, j.compress); err != nil {
			return fmt.Errorf("put: %w", err)
		}
	}
	return nil
}

// drain reserves and deletes n jobs of tube, checking each body's size.
func drain(c Client, tube string, n, size int) error {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for i := 0; i < n; i++ {
		got, err := c.ReserveDelete(ctx, tube)
		if err != nil {
			return fmt.Errorf("reserve+delete %d of %d: %w", i+1, n, err)
		}
		if got != size {
			return fmt.Errorf("reserve+delete %d of %d: body of %d bytes, want %d", i+1, n, got, size)
		}
	}
	return nil
}
