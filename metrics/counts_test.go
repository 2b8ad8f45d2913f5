package metrics

import (
	"context"
	"math"
	"runtime"
	"testing"
	"time"
	"unsafe"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/beanspike/beanspike"
	"github.com/beanspike/beanspike/backend/memory"
)

// gather returns the value of every counter sample and the count of
// every histogram sample, by family and labels.
func gather(t *testing.T, reg *prometheus.Registry) map[string]float64 {
	t.Helper()
	fams, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]float64{}
	for _, f := range fams {
		for _, m := range f.GetMetric() {
			key := f.GetName()
			for _, l := range m.GetLabel() {
				key += "," + l.GetName() + "=" + l.GetValue()
			}
			switch f.GetType() {
			case dto.MetricType_COUNTER:
				got[key] = m.GetCounter().GetValue()
			case dto.MetricType_HISTOGRAM:
				got[key] = float64(m.GetHistogram().GetSampleCount())
				got[key+",sum"] = m.GetHistogram().GetSampleSum()
			}
		}
	}
	return got
}

// The counts of a wrapped queue outlive it: once it is collected they
// are folded into the totals, and it is dropped from the queues summed.
func TestRetire(t *testing.T) {
	reg := prometheus.NewRegistry()
	m, err := New(reg, WithSampling(1))
	if err != nil {
		t.Fatal(err)
	}
	root, _ := memory.New()
	defer root.Close()
	keep := m.Wrap(root)
	func() {
		ctx := context.Background()
		for range 3 {
			q := m.Wrap(root)
			id, err := q.Put(ctx, "t", []byte("x"))
			if err != nil {
				t.Fatal(err)
			}
			if err := q.Delete(ctx, id+100); err == nil {
				t.Fatal("Delete of an unknown job succeeded")
			}
			if _, err := keep.Put(ctx, "t", []byte("y")); err != nil {
				t.Fatal(err)
			}
		}
	}()
	before := gather(t, reg)
	if before["beanspike_calls_total,backend=queue,op=put"] != 6 || before["beanspike_call_errors_total,backend=queue,kind=not_found,op=delete"] != 3 {
		t.Fatalf("counts before: %v", before)
	}
	queues := func() int {
		m.mu.Lock()
		defer m.mu.Unlock()
		return len(m.queues)
	}
	for deadline := time.Now().Add(10 * time.Second); queues() > 1; {
		if time.Now().After(deadline) {
			t.Fatalf("%d queues left after all but one were dropped, want 1", queues())
		}
		runtime.GC()
		time.Sleep(time.Millisecond)
	}
	after := gather(t, reg)
	for k, v := range before {
		if after[k] != v {
			t.Errorf("%s: %v after the queues were collected, %v before", k, after[k], v)
		}
	}
	runtime.KeepAlive(keep)
}

// A timed call falls in the first bucket whose bound is at least its
// duration, as Prometheus's histograms count.
func TestObserve(t *testing.T) {
	m, err := New(nil, WithBuckets(50e-6, 1e-3))
	if err != nil {
		t.Fatal(err)
	}
	r := newRest(m)
	for _, d := range []time.Duration{0, 50 * time.Microsecond, 50*time.Microsecond + 1, time.Millisecond, time.Second, -time.Second} {
		r.observe(opPeek, d)
	}
	if r.lat[opPut].Load() != nil {
		t.Error("latencies of put made before any was timed")
	}
	l := r.lat[opPeek].Load().n
	var got []uint64
	for i := range l {
		got = append(got, l[i].Load())
	}
	want := []uint64{uint64(time.Second + time.Millisecond + 100*time.Microsecond + 1), 3, 2, 1}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("buckets and sum: %v, want %v", got, want)
		}
	}
}

// A wrapped queue's call that succeeds and is not timed costs no
// allocation.
func TestNoAllocs(t *testing.T) {
	m, _ := New(nil, WithSampling(1<<30))
	root, _ := memory.New()
	defer root.Close()
	q := m.Wrap(root)
	ctx := context.Background()
	if _, err := q.Put(ctx, "t", []byte("x")); err != nil {
		t.Fatal(err)
	}
	w := &q.(*batchLimitQueue).handle
	for _, timed := range []bool{false, true} {
		if timed {
			w.c.limit = ^uint64(0)
		}
		if n := testing.AllocsPerRun(100, func() {
			start := w.begin(opStatsJob)
			w.done(opStatsJob, start, nil)
			start = w.begin(opDelete)
			w.done(opDelete, start, beanspike.ErrNotReserved)
		}); n != 0 {
			t.Errorf("timed %v: %v allocations per call", timed, n)
		}
	}
}

// What an untimed call of Put, Reserve or Delete reads and writes of its
// queue's core is in one cache line, cores start on one, and the handles
// are 32 bytes.
func TestLayout(t *testing.T) {
	if n := unsafe.Sizeof(batchLimitQueue{}); n != 32 {
		t.Errorf("a handle takes %d bytes, want 32", n)
	}
	var c core
	for _, off := range []uintptr{unsafe.Offsetof(c.seed), unsafe.Offsetof(c.limit)} {
		if off >= 64 {
			t.Errorf("a field read by every call is at byte %d, off the first cache line", off)
		}
	}
	for _, o := range []op{opPut, opReserve, opDelete} {
		if off := unsafe.Offsetof(c.ops) + uintptr(o+1)*unsafe.Sizeof(c.ops[0]); off > 64 {
			t.Errorf("the counters of %s end at byte %d, off the first cache line", opNames[o], off)
		}
	}
	m, _ := New(nil)
	root, _ := memory.New()
	defer root.Close()
	for range 10 {
		h := m.Wrap(root).(*batchLimitQueue)
		if a := uintptr(unsafe.Pointer(h.c)); a%64 != 0 {
			t.Errorf("a core at %#x, not on a cache line's start", a)
		}
		if a := uintptr(unsafe.Pointer(h)); a%32 != 0 {
			t.Errorf("a handle at %#x, across two cache lines", a)
		}
	}
}

// A duration falls in the same bucket by the bounds in nanoseconds as by
// its seconds compared with the bounds in seconds, as Prometheus would.
func TestNanoBounds(t *testing.T) {
	bounds := append([]float64{-1, 0, 1e-9, 1.5e-9, 3e-7}, DefaultBuckets...)
	bounds = append(bounds, 1e10, 1e300)
	ns := nanoBounds(bounds)
	bucket := func(d time.Duration) (byNanos, bySeconds int) {
		for byNanos < len(ns) && ns[byNanos] < d {
			byNanos++
		}
		for bySeconds < len(bounds) && bounds[bySeconds] < d.Seconds() {
			bySeconds++
		}
		return byNanos, bySeconds
	}
	ds := []time.Duration{0, 1, 2, 299, 300, 301, math.MaxInt64}
	for _, b := range bounds {
		d := time.Duration(b * 1e9)
		for k := -3; k <= 3; k++ {
			ds = append(ds, d+time.Duration(k))
		}
	}
	for d := time.Duration(1); d < math.MaxInt64/3; d = d*3 + 7 {
		ds = append(ds, d)
	}
	for _, d := range ds {
		if d < 0 {
			continue
		}
		if n, s := bucket(d); n != s {
			t.Errorf("%d ns: bucket %d by the nanosecond bounds, %d by the seconds", int64(d), n, s)
		}
	}
}
