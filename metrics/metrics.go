// Package metrics exposes what beanspike queues and workers do as
// Prometheus metrics: calls and their latencies, failures by kind, jobs
// by event, each tube's jobs by state, and the runs of a [beanspike.Worker]'s
// handlers.
//
//	m, _ := metrics.New(prometheus.DefaultRegisterer, metrics.WithBackend("memory"))
//	q := m.Wrap(client)                    // a beanspike.Queue that counts
//	w, _ := beanspike.NewWorker(q, m.Handler(h))
//	prometheus.MustRegister(m.Tubes(q))    // per-tube gauges, read on scrape
//	http.Handle("/metrics", promhttp.Handler())
//
// # Metrics
//
// Wrapped queues record:
//
//	beanspike_calls_total{op,backend}                 every call
//	beanspike_call_duration_seconds{op,backend}       histogram of a sample of
//	    the calls, one in 32 by default (WithSampling)
//	beanspike_call_errors_total{op,backend,kind}      failed calls; kind is the
//	    sentinel the error wraps: not_found, not_reserved, invalid_tube,
//	    invalid_argument, job_too_big, closed, unavailable, canceled,
//	    deadline, other
//	beanspike_jobs_total{event,backend}               put, reserved, deleted,
//	    released, buried, kicked, touched, compression_asked
//	beanspike_reservations_lapsed_total{backend}      a Delete, Release, Bury or
//	    Touch of a job this process reserved found the reservation gone
//	    (ErrNotReserved): its TTR ran out
//
// [Metrics.Tubes] reads, on each scrape, every tube's [beanspike.TubeStats]:
//
//	beanspike_tube_jobs{tube,state}                   ready, reserved, delayed,
//	    buried, urgent
//	beanspike_tube_waiting{tube}                      blocked Reserve calls
//	beanspike_tube_paused{tube}                       1 while paused
//	beanspike_tube_jobs_total{tube}                   jobs ever put
//	beanspike_tube_deletes_total{tube}
//	beanspike_tube_compressed_total{tube}             bodies stored compressed
//	beanspike_tube_compression_skipped_total{tube}    compression asked, not kept
//
// and [Metrics.Handler] records a worker's handlers:
//
//	beanspike_worker_jobs_total{tube,result}          done, failed
//	beanspike_worker_handler_duration_seconds{tube}   histogram
//
// Retried and buried jobs are the worker's Release and Bury calls, counted
// by the queue the worker runs on when it is wrapped.
//
// # Cost
//
// Each wrapped queue counts for itself, and a scrape sums the queues, so
// that goroutines using queues of their own do not contend for shared
// cache lines. A call that succeeds and is not timed costs one atomic
// addition, and the choice of whether to time it a hash of its queue's
// count of calls: no clock read, no label lookup, no allocation. Job
// events are derived on scrape from the calls that succeeded (a put is a
// Put that returned nil). A timed call, one in 32 by default, adds two
// reads of the monotonic clock and two atomic additions to its
// histogram. BenchmarkOverhead measures the cost side by side with plain
// clients.
package metrics

import (
	"context"
	"errors"
	"fmt"
	"math"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/beanspike/beanspike"
)

// op is a Queue operation.
type op int

// The operations, in the order of opNames.
const (
	opPut op = iota // Put, Reserve and Delete first: see core
	opReserve
	opDelete
	opReserveJob
	opRelease
	opBury
	opTouch
	opKick
	opKickJob
	opPeek
	opPeekReady
	opPeekDelayed
	opPeekBuried
	opStatsJob
	opStatsTube
	opTubes
	opPauseTube
	opDeleteTube
	opPutBatch
	opReserveBatch
	numOps
)

// opNames are the operations as the op label names them.
var opNames = [numOps]string{
	"put", "reserve", "delete", "reserve_job", "release", "bury", "touch", "kick", "kick_job", "peek", "peek_ready", "peek_delayed", "peek_buried", "stats_job", "stats_tube", "tubes", "pause_tube", "delete_tube", "put_batch", "reserve_batch",
}

// Error kinds, as the kind label names them, with their sentinels; a
// failed call whose error wraps none of them is of kind "other".
var kinds = [...]struct {
	name string
	err  error
}{
	{"not_found", beanspike.ErrNotFound},
	{"not_reserved", beanspike.ErrNotReserved},
	{"invalid_tube", beanspike.ErrInvalidTube},
	{"invalid_argument", beanspike.ErrInvalidArgument},
	{"job_too_big", beanspike.ErrJobTooBig},
	{"closed", beanspike.ErrClosed},
	{"unavailable", beanspike.ErrUnavailable},
	{"canceled", context.Canceled},
	{"deadline", context.DeadlineExceeded},
}

// numKinds counts the kinds, "other" included.
const numKinds = len(kinds) + 1

// kind returns the index of the kind of err, numKinds-1 for "other".
func kind(err error) int {
	for i, k := range kinds {
		if errors.Is(err, k.err) {
			return i
		}
	}
	return numKinds - 1
}

// Job events, as the event label names them.
const (
	evPut = iota
	evReserved
	evDeleted
	evReleased
	evBuried
	evKicked
	evTouched
	evCompress
	numEvents
)

var events = [numEvents]string{"put", "reserved", "deleted", "released", "buried", "kicked", "touched", "compression_asked"}

// Option configures [New].
type Option func(*config)

type config struct {
	backend   string
	namespace string
	buckets   []float64
	sample    int
}

// WithBackend sets the backend label of the queue metrics, e.g.
// "memory" or "aerospike". Defaults to "queue".
func WithBackend(name string) Option { return func(c *config) { c.backend = name } }

// WithNamespace sets the prefix of every metric name. Defaults to
// "beanspike".
func WithNamespace(ns string) Option { return func(c *config) { c.namespace = ns } }

// WithBuckets sets the upper bounds, in seconds, of the latency
// histograms, in increasing order (a last bound of +Inf is implied and
// may be left out). Defaults to 50µs to 10s, about three per decade;
// WithBuckets() with no bounds gives [prometheus.DefBuckets].
func WithBuckets(b ...float64) Option {
	return func(c *config) { c.buckets = append([]float64(nil), b...) }
}

// WithSampling times one call in n for the latency histograms; every
// call is counted all the same (calls_total, errors, jobs). Which calls
// are timed is decided before each call, without reading the clock, by a
// hash of the number of calls of its operation that the wrapped queue
// has made: a pseudo-random choice that no pattern of the workload falls
// in step with. Reading the clock twice is the largest part of the cost
// of a timed call. n = 1 times every call. Defaults to [DefaultSampling].
func WithSampling(n int) Option { return func(c *config) { c.sample = n } }

// DefaultSampling is the share of calls timed without [WithSampling]:
// one in 32: enough for the percentiles of a busy queue, and cheap.
const DefaultSampling = 32

// DefaultBuckets are the latency histograms' bounds without [WithBuckets].
var DefaultBuckets = []float64{
	50e-6, 100e-6, 250e-6, 500e-6, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10,
}

// Metrics is one set of beanspike metrics, registered once. It is safe
// for concurrent use; wrap any number of queues and handlers with it.
type Metrics struct {
	cfg     config
	created time.Time       // the start of the counts, and of the clock of timed calls
	limit   uint64          // a call is timed when the hash of its number is at most limit
	bounds  []time.Duration // the buckets' bounds, see nanoBounds

	// The queue metrics: each wrapped queue counts for itself, and a
	// scrape sums them.
	mu      sync.Mutex
	queues  map[wrapped]struct{} // the wrapped queues not yet collected
	retired totals               // the counts of the queues collected
	descs   queueDescs

	handled *prometheus.CounterVec
	handler *prometheus.HistogramVec
}

// New makes the metrics and registers them with reg (a nil reg registers
// nothing, for tests or a registry of the caller's own). It fails when
// reg already holds metrics of the same names, and on an invalid option.
func New(reg prometheus.Registerer, opts ...Option) (*Metrics, error) {
	c := config{backend: "queue", namespace: "beanspike", buckets: DefaultBuckets, sample: DefaultSampling}
	for _, o := range opts {
		if o != nil {
			o(&c)
		}
	}
	if c.backend == "" {
		return nil, fmt.Errorf("%w: empty backend label", beanspike.ErrInvalidArgument)
	}
	if c.sample < 1 {
		return nil, fmt.Errorf("%w: sampling one call in %d", beanspike.ErrInvalidArgument, c.sample)
	}
	b, err := bounds(c.buckets)
	if err != nil {
		return nil, err
	}
	c.buckets = b
	m := &Metrics{
		cfg:     c,
		created: time.Now(),
		limit:   math.MaxUint64 / uint64(c.sample),
		bounds:  nanoBounds(c.buckets),
		queues:  map[wrapped]struct{}{},
		descs:   newQueueDescs(c.namespace),
	}
	m.handled = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: c.namespace, Name: "worker_jobs_total",
		Help: "Jobs run by worker handlers, by tube and result (done or failed).",
	}, []string{"tube", "result"})
	m.handler = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Namespace: c.namespace, Name: "worker_handler_duration_seconds",
		Help:    "Duration of worker handler runs, by tube.",
		Buckets: c.buckets,
	}, []string{"tube"})
	if reg != nil {
		for _, col := range []prometheus.Collector{queueCollector{m}, m.handled, m.handler} {
			if err := reg.Register(col); err != nil {
				return nil, err
			}
		}
	}
	return m, nil
}

// bounds returns the upper bounds of histogram buckets as Prometheus
// takes them: without a last +Inf, [prometheus.DefBuckets] when none are
// given. It fails unless they increase strictly.
func bounds(b []float64) ([]float64, error) {
	if n := len(b); n > 0 && math.IsInf(b[n-1], 1) {
		b = b[:n-1]
	}
	if len(b) == 0 {
		return prometheus.DefBuckets, nil
	}
	for i := 1; i < len(b); i++ {
		if !(b[i-1] < b[i]) {
			return nil, fmt.Errorf("%w: histogram buckets %v do not increase", beanspike.ErrInvalidArgument, b)
		}
	}
	if math.IsNaN(b[0]) {
		return nil, fmt.Errorf("%w: histogram bucket NaN", beanspike.ErrInvalidArgument)
	}
	return b, nil
}

// Handler wraps h so that each run is counted, by the job's tube and its
// result, and timed.
func (m *Metrics) Handler(h beanspike.Handler) beanspike.Handler {
	// The metrics of the tube of the last job, resolved once for a run of
	// jobs of one tube, as a worker serving one tube has.
	var last atomic.Pointer[tubeMetrics]
	return beanspike.HandlerFunc(func(ctx context.Context, job *beanspike.Job) (err error) {
		t := last.Load()
		if t == nil || t.tube != job.Tube {
			t = &tubeMetrics{tube: job.Tube, duration: m.handler.WithLabelValues(job.Tube)}
			last.Store(t)
		}
		start := time.Since(m.created)
		returned := false
		defer func() { // also when h panics: the worker counts that a failure
			t.duration.Observe((time.Since(m.created) - start).Seconds())
			t.count(m, err != nil || !returned)
		}()
		err = h.Handle(ctx, job)
		returned = true
		return err
	})
}

// tubeMetrics are the handler metrics of one tube.
type tubeMetrics struct {
	tube     string
	duration prometheus.Observer
	results  [2]atomic.Pointer[prometheus.Counter] // done, failed: resolved on first use
}

// count counts a run that failed or not.
func (t *tubeMetrics) count(m *Metrics, failed bool) {
	i, result := 0, "done"
	if failed {
		i, result = 1, "failed"
	}
	c := t.results[i].Load()
	if c == nil {
		r := m.handled.WithLabelValues(t.tube, result)
		c = &r
		t.results[i].Store(c)
	}
	(*c).Inc()
}
