package metrics_test

import (
	"context"
	"errors"
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/beanspike/beanspike"
	"github.com/beanspike/beanspike/backend/memory"
	"github.com/beanspike/beanspike/conformance"
	"github.com/beanspike/beanspike/metrics"
)

type store struct {
	m    *metrics.Metrics
	root *memory.Queue
}

func (s store) NewClient(t *testing.T) beanspike.Queue {
	c, err := s.root.NewClient()
	if err != nil {
		t.Fatal(err)
	}
	return s.m.Wrap(c)
}

// The wrapper passes the contract's suite over the memory backend.
func TestConformance(t *testing.T) {
	m, err := metrics.New(nil, metrics.WithBackend("memory"))
	if err != nil {
		t.Fatal(err)
	}
	conformance.Run(t, conformance.Harness{
		NewStore: func(t *testing.T) conformance.Store {
			q, err := memory.New()
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { q.Close() })
			return store{m: m, root: q}
		},
		Capabilities: conformance.Capabilities{ExactWaiting: true, TimeSlack: 200 * time.Millisecond},
	})
}

// The wrapper keeps the optional interfaces of what it wraps.
func TestWrapKeepsInterfaces(t *testing.T) {
	m, _ := metrics.New(nil)
	q, _ := memory.New()
	defer q.Close()
	w := m.Wrap(q)
	if _, ok := w.(beanspike.Batcher); !ok {
		t.Error("the wrapped memory queue is not a Batcher")
	}
	if _, ok := w.(beanspike.BodyLimiter); !ok {
		t.Error("the wrapped memory queue is not a BodyLimiter")
	}
	plain := m.Wrap(struct{ beanspike.Queue }{q})
	if _, ok := plain.(beanspike.Batcher); ok {
		t.Error("a wrapped plain queue is a Batcher")
	}
}

// scrape serves reg over HTTP and parses the answer with the Prometheus
// text parser.
func scrape(t *testing.T, reg *prometheus.Registry) map[string]*dto.MetricFamily {
	t.Helper()
	srv := httptest.NewServer(promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	defer srv.Close()
	resp, err := http.Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatalf("/metrics does not parse: %v", err)
	}
	return fams
}

// value returns the value of the sample of family name whose labels
// include want.
func value(t *testing.T, fams map[string]*dto.MetricFamily, name string, want map[string]string) float64 {
	t.Helper()
	f := fams[name]
	if f == nil {
		t.Fatalf("no metric %s", name)
	}
next:
	for _, m := range f.GetMetric() {
		got := map[string]string{}
		for _, l := range m.GetLabel() {
			got[l.GetName()] = l.GetValue()
		}
		for k, v := range want {
			if got[k] != v {
				continue next
			}
		}
		switch {
		case m.Counter != nil:
			return m.GetCounter().GetValue()
		case m.Gauge != nil:
			return m.GetGauge().GetValue()
		case m.Histogram != nil:
			return float64(m.GetHistogram().GetSampleCount())
		}
	}
	t.Fatalf("no sample of %s with labels %v", name, want)
	return 0
}

// Every counter the package names is reported, with the right counts.
func TestMetricsCount(t *testing.T) {
	reg := prometheus.NewRegistry()
	m, err := metrics.New(reg, metrics.WithBackend("memory"), metrics.WithSampling(1))
	if err != nil {
		t.Fatal(err)
	}
	root, _ := memory.New()
	defer root.Close()
	reg.MustRegister(m.Tubes(root))
	q := m.Wrap(root)
	ctx := context.Background()
	var ids []beanspike.ID
	for i := range 6 {
		var opts []beanspike.PutOption
		if i == 0 {
			opts = append(opts, beanspike.WithCompression())
		}
		id, err := q.Put(ctx, "t", []byte(strings.Repeat("body ", 40)), opts...)
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, id)
	}
	reserve := func() *beanspike.Job {
		j, err := q.Reserve(ctx, "t")
		if err != nil {
			t.Fatal(err)
		}
		return j
	}
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	j := reserve()
	must(q.Touch(ctx, j.ID))
	must(q.Delete(ctx, j.ID))
	j = reserve()
	must(q.Release(ctx, j.ID, 0, time.Hour))
	j = reserve()
	must(q.Bury(ctx, j.ID, 0, "bad"))
	if _, err := q.Kick(ctx, "t", 5); err != nil {
		t.Fatal(err)
	}
	if err := q.Delete(ctx, ids[len(ids)-1]+100); !errors.Is(err, beanspike.ErrNotFound) {
		t.Fatalf("Delete of an unknown job: %v", err)
	}
	j = reserve()
	must(q.Delete(ctx, j.ID))

	fams := scrape(t, reg)
	for _, c := range []struct {
		event string
		want  float64
	}{
		{"put", 6}, {"reserved", 4}, {"deleted", 2}, {"released", 1}, {"buried", 1},
		{"kicked", 1}, {"touched", 1}, {"compression_asked", 1},
	} {
		if got := value(t, fams, "beanspike_jobs_total", map[string]string{"event": c.event, "backend": "memory"}); got != c.want {
			t.Errorf("beanspike_jobs_total{event=%q} = %v, want %v", c.event, got, c.want)
		}
	}
	if got := value(t, fams, "beanspike_call_duration_seconds", map[string]string{"op": "put", "backend": "memory"}); got != 6 {
		t.Errorf("put latencies observed: %v, want 6", got)
	}
	if got := value(t, fams, "beanspike_calls_total", map[string]string{"op": "delete", "backend": "memory"}); got != 3 {
		t.Errorf("delete calls: %v, want 3", got)
	}
	if got := value(t, fams, "beanspike_call_errors_total", map[string]string{"op": "delete", "kind": "not_found"}); got != 1 {
		t.Errorf("delete not_found errors: %v, want 1", got)
	}
	value(t, fams, "beanspike_reservations_lapsed_total", map[string]string{"backend": "memory"})
	st, _ := root.StatsTube(ctx, "t")
	for state, want := range map[string]int{"ready": st.Ready, "delayed": st.Delayed, "buried": st.Buried, "reserved": st.Reserved} {
		if got := value(t, fams, "beanspike_tube_jobs", map[string]string{"tube": "t", "state": state}); got != float64(want) {
			t.Errorf("beanspike_tube_jobs{state=%q} = %v, want %d", state, got, want)
		}
	}
	if got := value(t, fams, "beanspike_tube_jobs_total", map[string]string{"tube": "t"}); got != 6 {
		t.Errorf("beanspike_tube_jobs_total = %v, want 6", got)
	}
	for _, name := range []string{"beanspike_tube_waiting", "beanspike_tube_paused", "beanspike_tube_deletes_total",
		"beanspike_tube_compressed_total", "beanspike_tube_compression_skipped_total"} {
		value(t, fams, name, map[string]string{"tube": "t"})
	}
	if got := value(t, fams, "beanspike_tube_scrape_error", nil); got != 0 {
		t.Errorf("scrape error = %v", got)
	}
}

// A reservation that lapsed is counted when its holder finds it gone.
func TestLapsedReservation(t *testing.T) {
	reg := prometheus.NewRegistry()
	m, _ := metrics.New(reg)
	root, _ := memory.New()
	defer root.Close()
	c, _ := root.NewClient()
	q := m.Wrap(c)
	ctx := context.Background()
	if _, err := q.Put(ctx, "t", []byte("x"), beanspike.WithTTR(time.Second)); err != nil {
		t.Fatal(err)
	}
	j, err := q.Reserve(ctx, "t")
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(1100 * time.Millisecond)
	if err := q.Touch(ctx, j.ID); !errors.Is(err, beanspike.ErrNotReserved) {
		t.Fatalf("Touch after the TTR: %v, want ErrNotReserved", err)
	}
	if got := value(t, scrape(t, reg), "beanspike_reservations_lapsed_total", nil); got != 1 {
		t.Fatalf("lapsed reservations: %v, want 1", got)
	}
}

// The worker's handler runs are counted by result and timed.
func TestHandler(t *testing.T) {
	reg := prometheus.NewRegistry()
	m, _ := metrics.New(reg)
	root, _ := memory.New()
	defer root.Close()
	q := m.Wrap(root)
	ctx := context.Background()
	for _, b := range []string{"ok", "fail", "panic"} {
		if _, err := q.Put(ctx, "w", []byte(b)); err != nil {
			t.Fatal(err)
		}
	}
	ran := make(chan struct{}, 3)
	w, err := beanspike.NewWorker(q, m.Handler(beanspike.HandlerFunc(func(_ context.Context, j *beanspike.Job) error {
		defer func() { ran <- struct{}{} }()
		switch string(j.Body) {
		case "fail":
			return errors.New("fail")
		case "panic":
			panic("boom")
		}
		return nil
	})), beanspike.WithTubes("w"), beanspike.WithBackoff(time.Hour, time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx) }()
	for range 3 {
		<-ran
	}
	sctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := w.Shutdown(sctx); err != nil {
		t.Fatal(err)
	}
	<-done
	fams := scrape(t, reg)
	if got := value(t, fams, "beanspike_worker_jobs_total", map[string]string{"tube": "w", "result": "done"}); got != 1 {
		t.Errorf("done: %v, want 1", got)
	}
	if got := value(t, fams, "beanspike_worker_jobs_total", map[string]string{"tube": "w", "result": "failed"}); got != 2 {
		t.Errorf("failed: %v, want 2 (an error and a panic)", got)
	}
	if got := value(t, fams, "beanspike_worker_handler_duration_seconds", map[string]string{"tube": "w"}); got != 3 {
		t.Errorf("handler runs timed: %v, want 3", got)
	}
	if got := value(t, fams, "beanspike_jobs_total", map[string]string{"event": "released"}); got != 2 {
		t.Errorf("jobs released by the worker: %v, want 2", got)
	}
}

// Healthz always answers; Readyz answers 503 once the store is closed.
func TestHealth(t *testing.T) {
	root, _ := memory.New()
	get := func(h http.Handler) (int, string) {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest("GET", "/", nil))
		b, _ := io.ReadAll(rec.Result().Body)
		return rec.Code, string(b)
	}
	if code, _ := get(metrics.Healthz()); code != 200 {
		t.Fatalf("healthz: %d", code)
	}
	if code, body := get(metrics.Readyz(root, time.Second)); code != 200 {
		t.Fatalf("readyz of an open store: %d %s", code, body)
	}
	root.Close()
	if code, body := get(metrics.Readyz(root, time.Second)); code != 503 || !strings.Contains(body, "closed") {
		t.Fatalf("readyz of a closed store: %d %s", code, body)
	}
}

// By default one call in DefaultSampling is timed; every call is counted.
func TestSampling(t *testing.T) {
	reg := prometheus.NewRegistry()
	m, _ := metrics.New(reg)
	root, _ := memory.New()
	defer root.Close()
	q := m.Wrap(root)
	const n = 1600
	for range n {
		if _, err := q.Tubes(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	fams := scrape(t, reg)
	if got := value(t, fams, "beanspike_calls_total", map[string]string{"op": "tubes"}); got != n {
		t.Fatalf("calls counted: %v, want %d", got, n)
	}
	timed := value(t, fams, "beanspike_call_duration_seconds", map[string]string{"op": "tubes"})
	if want := float64(n / metrics.DefaultSampling); timed < want/2 || timed > want*2 {
		t.Fatalf("calls timed: %v of %d, want about %v", timed, n, want)
	}
	if _, err := metrics.New(nil, metrics.WithSampling(0)); !errors.Is(err, beanspike.ErrInvalidArgument) {
		t.Fatalf("WithSampling(0): %v, want ErrInvalidArgument", err)
	}
}

// patterned answers Tubes at once, except that the calls whose number (from
// 0) is a multiple of every are slow: a workload with a period that a
// sampler of every so many calls would fall in step with.
type patterned struct {
	beanspike.Queue
	every int
	calls int
}

func (q *patterned) Tubes(context.Context) ([]string, error) {
	if q.calls%q.every == 0 {
		for t := time.Now(); time.Since(t) < 300*time.Microsecond; {
		}
	}
	q.calls++
	return nil, nil
}

// The calls timed are not every so many: a workload whose slow calls come
// at the sampling's period has them timed in their share, not all or none.
func TestSamplingPattern(t *testing.T) {
	for _, every := range []int{2, metrics.DefaultSampling} {
		reg := prometheus.NewRegistry()
		m, _ := metrics.New(reg)
		q := m.Wrap(&patterned{every: every})
		// Enough calls that about 40 timed ones are slow.
		n := max(3200, 40*every*metrics.DefaultSampling)
		for range n {
			if _, err := q.Tubes(context.Background()); err != nil {
				t.Fatal(err)
			}
		}
		h := histogram(t, scrape(t, reg), "beanspike_call_duration_seconds", "tubes")
		timed := float64(h.GetSampleCount())
		var fast float64
		for _, b := range h.GetBucket() {
			if b.GetUpperBound() == 250e-6 {
				fast = float64(b.GetCumulativeCount())
			}
		}
		want := float64(n) / metrics.DefaultSampling
		if timed < want/2 || timed > want*2 {
			t.Fatalf("calls timed: %v of %d, want about %v", timed, n, want)
		}
		// The slow calls take at least 300µs; some fast ones may too, on
		// a busy machine, so the bound above is generous.
		share := (timed - fast) / timed
		if want := 1 / float64(every); share < want/2 || share > want*2 {
			t.Errorf("slow calls every %d: %.0f%% of the calls timed are slow, want about %.0f%%", every, 100*share, 100*want)
		}
	}
}

// Calls that fail are timed in their share too.
func TestSamplingFailures(t *testing.T) {
	reg := prometheus.NewRegistry()
	m, _ := metrics.New(reg, metrics.WithBackend("memory"))
	root, _ := memory.New()
	defer root.Close()
	q := m.Wrap(root)
	const n = 1600
	for i := range n {
		if err := q.Delete(context.Background(), beanspike.ID(i+1)); !errors.Is(err, beanspike.ErrNotFound) {
			t.Fatalf("Delete of an unknown job: %v", err)
		}
	}
	fams := scrape(t, reg)
	if got := value(t, fams, "beanspike_call_errors_total", map[string]string{"op": "delete", "kind": "not_found"}); got != n {
		t.Fatalf("not_found errors: %v, want %d", got, n)
	}
	timed := value(t, fams, "beanspike_call_duration_seconds", map[string]string{"op": "delete"})
	if want := float64(n / metrics.DefaultSampling); timed < want/2 || timed > want*2 {
		t.Fatalf("failed calls timed: %v of %d, want about %v", timed, n, want)
	}
}

// histogram returns the histogram of family name for op.
func histogram(t *testing.T, fams map[string]*dto.MetricFamily, name, op string) *dto.Histogram {
	t.Helper()
	for _, m := range fams[name].GetMetric() {
		for _, l := range m.GetLabel() {
			if l.GetName() == "op" && l.GetValue() == op {
				return m.GetHistogram()
			}
		}
	}
	t.Fatalf("no histogram %s{op=%q}", name, op)
	return nil
}

// Queues wrapped by one Metrics, used by goroutines at once, add up.
func TestConcurrentQueues(t *testing.T) {
	reg := prometheus.NewRegistry()
	m, _ := metrics.New(reg, metrics.WithBackend("memory"), metrics.WithSampling(2))
	root, _ := memory.New()
	defer root.Close()
	ctx := context.Background()
	const clients, jobs = 4, 200
	shared := m.Wrap(root)
	var wg sync.WaitGroup
	for range clients {
		c, _ := root.NewClient()
		q := m.Wrap(c)
		wg.Go(func() {
			for j := range jobs {
				p := q
				if j%2 == 0 {
					p = shared
				}
				if _, err := p.Put(ctx, "t", []byte("x")); err != nil {
					t.Error(err)
					return
				}
				job, err := q.Reserve(ctx, "t")
				if err != nil {
					t.Error(err)
					return
				}
				if err := q.Delete(ctx, job.ID); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	fams := scrape(t, reg)
	const n = clients * jobs
	for _, op := range []string{"put", "reserve", "delete"} {
		if got := value(t, fams, "beanspike_calls_total", map[string]string{"op": op}); got != n {
			t.Errorf("%s calls: %v, want %d", op, got, n)
		}
		timed := value(t, fams, "beanspike_call_duration_seconds", map[string]string{"op": op})
		if timed < n/4 || timed > n {
			t.Errorf("%s calls timed: %v of %d, want about %d", op, timed, n, n/2)
		}
	}
	for _, ev := range []string{"put", "reserved", "deleted"} {
		if got := value(t, fams, "beanspike_jobs_total", map[string]string{"event": ev}); got != n {
			t.Errorf("jobs %s: %v, want %d", ev, got, n)
		}
	}
}

// Jobs put and reserved by batches, reserved and kicked by ID, are counted.
func TestJobEvents(t *testing.T) {
	reg := prometheus.NewRegistry()
	m, _ := metrics.New(reg, metrics.WithBackend("memory"))
	root, _ := memory.New()
	defer root.Close()
	q := m.Wrap(root)
	b := q.(beanspike.Batcher)
	ctx := context.Background()
	ids, err := b.PutBatch(ctx, []beanspike.PutRequest{{Tube: "t", Body: []byte("a")}, {Tube: "t", Body: []byte("b")}, {Tube: "t", Body: []byte("c")}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := q.Put(ctx, "t", []byte("d")); err != nil {
		t.Fatal(err)
	}
	if _, err := b.PutBatch(ctx, []beanspike.PutRequest{{Tube: "bad tube name!", Body: []byte("a")}}); err == nil {
		t.Fatal("PutBatch of an invalid tube succeeded")
	}
	jobs, err := b.ReserveBatch(ctx, 2, "t")
	if err != nil || len(jobs) != 2 {
		t.Fatalf("ReserveBatch: %d jobs, %v", len(jobs), err)
	}
	j, err := q.ReserveJob(ctx, ids[2])
	if err != nil {
		t.Fatal(err)
	}
	if err := q.Bury(ctx, j.ID, 0, "x"); err != nil {
		t.Fatal(err)
	}
	if err := q.KickJob(ctx, j.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := q.ReserveJob(ctx, ids[0]); !errors.Is(err, beanspike.ErrNotFound) {
		t.Fatalf("ReserveJob of a reserved job: %v", err)
	}
	fams := scrape(t, reg)
	for ev, want := range map[string]float64{"put": 4, "reserved": 3, "buried": 1, "kicked": 1, "deleted": 0} {
		if got := value(t, fams, "beanspike_jobs_total", map[string]string{"event": ev}); got != want {
			t.Errorf("jobs %s: %v, want %v", ev, got, want)
		}
	}
	for op, want := range map[string]float64{"put_batch": 2, "reserve_batch": 1, "reserve_job": 2, "kick_job": 1} {
		if got := value(t, fams, "beanspike_calls_total", map[string]string{"op": op}); got != want {
			t.Errorf("%s calls: %v, want %v", op, got, want)
		}
	}
	if got := value(t, fams, "beanspike_call_errors_total", map[string]string{"op": "put_batch", "kind": "invalid_tube"}); got != 1 {
		t.Errorf("put_batch invalid_tube errors: %v, want 1", got)
	}
}

// Every operation, error kind and event is reported from the start, with
// the types, labels and buckets the package documents.
func TestFamilies(t *testing.T) {
	reg := prometheus.NewRegistry()
	if _, err := metrics.New(reg, metrics.WithBackend("b"), metrics.WithBuckets(.001, .01, math.Inf(1))); err != nil {
		t.Fatal(err)
	}
	fams := scrape(t, reg)
	const ops, kinds, events = 20, 10, 8
	for _, c := range []struct {
		name   string
		typ    dto.MetricType
		series int
		labels string
	}{
		{"beanspike_calls_total", dto.MetricType_COUNTER, ops, "backend,op"},
		{"beanspike_call_errors_total", dto.MetricType_COUNTER, ops * kinds, "backend,kind,op"},
		{"beanspike_jobs_total", dto.MetricType_COUNTER, events, "backend,event"},
		{"beanspike_reservations_lapsed_total", dto.MetricType_COUNTER, 1, "backend"},
		{"beanspike_call_duration_seconds", dto.MetricType_HISTOGRAM, ops, "backend,op"},
	} {
		f := fams[c.name]
		if f == nil {
			t.Errorf("no %s", c.name)
			continue
		}
		if f.GetType() != c.typ || len(f.GetMetric()) != c.series || f.GetHelp() == "" {
			t.Errorf("%s: %v, %d series, help %q; want %v, %d series", c.name, f.GetType(), len(f.GetMetric()), f.GetHelp(), c.typ, c.series)
		}
		for _, m := range f.GetMetric() {
			var names []string
			for _, l := range m.GetLabel() {
				names = append(names, l.GetName())
				if l.GetName() == "backend" && l.GetValue() != "b" {
					t.Errorf("%s: backend %q", c.name, l.GetValue())
				}
			}
			if got := strings.Join(names, ","); got != c.labels {
				t.Errorf("%s: labels %s, want %s", c.name, got, c.labels)
			}
			if h := m.GetHistogram(); h != nil {
				var bounds []float64
				for _, b := range h.GetBucket() {
					bounds = append(bounds, b.GetUpperBound())
				}
				if len(bounds) != 3 || bounds[0] != .001 || bounds[1] != .01 || !math.IsInf(bounds[2], 1) {
					t.Errorf("%s: buckets %v, want [0.001 0.01] and +Inf", c.name, bounds)
				}
			}
		}
	}
	for _, b := range [][]float64{{.1, .01}, {.1, .1}, {math.NaN()}} {
		if _, err := metrics.New(nil, metrics.WithBuckets(b...)); !errors.Is(err, beanspike.ErrInvalidArgument) {
			t.Errorf("WithBuckets(%v): %v, want ErrInvalidArgument", b, err)
		}
	}
}

// Handler runs are counted by their job's tube, also when the tubes
// alternate, and a result is reported once it has happened.
func TestHandlerTubes(t *testing.T) {
	reg := prometheus.NewRegistry()
	m, _ := metrics.New(reg)
	h := m.Handler(beanspike.HandlerFunc(func(_ context.Context, j *beanspike.Job) error {
		if string(j.Body) == "fail" {
			return errors.New("fail")
		}
		return nil
	}))
	runs := []struct{ tube, body string }{{"a", "ok"}, {"a", "ok"}, {"b", "ok"}, {"a", "fail"}, {"b", "ok"}, {"c", "fail"}}
	for _, r := range runs {
		_ = h.Handle(context.Background(), &beanspike.Job{ID: 1, Tube: r.tube, Body: []byte(r.body)})
	}
	fams := scrape(t, reg)
	for _, c := range []struct {
		tube, result string
		want         float64
	}{{"a", "done", 2}, {"a", "failed", 1}, {"b", "done", 2}, {"c", "failed", 1}} {
		if got := value(t, fams, "beanspike_worker_jobs_total", map[string]string{"tube": c.tube, "result": c.result}); got != c.want {
			t.Errorf("worker_jobs_total{tube=%q,result=%q} = %v, want %v", c.tube, c.result, got, c.want)
		}
	}
	if n := len(fams["beanspike_worker_jobs_total"].GetMetric()); n != 4 {
		t.Errorf("%d worker_jobs_total series, want 4 (b never failed, c never succeeded)", n)
	}
	for tube, want := range map[string]float64{"a": 3, "b": 2, "c": 1} {
		if got := value(t, fams, "beanspike_worker_handler_duration_seconds", map[string]string{"tube": tube}); got != want {
			t.Errorf("handler runs of %s timed: %v, want %v", tube, got, want)
		}
	}
}
