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
//	    the calls, one in 8 by default (WithSampling)
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
// A wrapped call costs an atomic addition or two on metrics resolved when
// the wrapper is made (no label lookup per call), and, for the calls
// timed, two clock reads and a histogram observation. BenchmarkConcurrent
// measures it side by side with plain clients.
package metrics

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/beanspike/beanspike"
)

// op is a Queue operation.
type op int

// The operations, in the order of opNames.
const (
	opPut op = iota
	opReserve
	opReserveJob
	opDelete
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
	"put", "reserve", "reserve_job", "delete", "release", "bury", "touch", "kick", "kick_job", "peek", "peek_ready", "peek_delayed", "peek_buried", "stats_job", "stats_tube", "tubes", "pause_tube", "delete_tube", "put_batch", "reserve_batch",
}

// Error kinds, as the kind label names them, with their sentinels.
var kinds = []struct {
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
// histograms. Defaults to 50µs to 10s, about three per decade.
func WithBuckets(b ...float64) Option {
	return func(c *config) { c.buckets = append([]float64(nil), b...) }
}

// WithSampling times one call in n, at random, for the latency
// histograms; every call is counted all the same (calls_total, errors,
// jobs). Reading the clock twice per call is the largest part of the
// wrapper's cost. n = 1 times every call. Defaults to
// [DefaultSampling].
func WithSampling(n int) Option { return func(c *config) { c.sample = n } }

// DefaultSampling is the share of calls timed without [WithSampling]:
// one in 8.
const DefaultSampling = 8

// DefaultBuckets are the latency histograms' bounds without [WithBuckets].
var DefaultBuckets = []float64{
	50e-6, 100e-6, 250e-6, 500e-6, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10,
}

// Metrics is one set of beanspike metrics, registered once. It is safe
// for concurrent use; wrap any number of queues and handlers with it.
type Metrics struct {
	cfg config

	duration *prometheus.HistogramVec
	calls    *prometheus.CounterVec
	errs     *prometheus.CounterVec
	jobs     *prometheus.CounterVec
	lapsed   *prometheus.CounterVec
	handled  *prometheus.CounterVec
	handler  *prometheus.HistogramVec

	// Resolved for the configured backend: no label lookup per call.
	obs     [numOps]prometheus.Observer
	callCnt [numOps]prometheus.Counter
	errCnt  [numOps][]prometheus.Counter // by kind (last: other)
	jobCnt  [numEvents]prometheus.Counter
	lapsedC prometheus.Counter
}

// New makes the metrics and registers them with reg (a nil reg registers
// nothing, for tests or a registry of the caller's own). It fails when
// reg already holds metrics of the same names.
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
	m := &Metrics{cfg: c}
	m.duration = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Namespace: c.namespace, Name: "call_duration_seconds",
		Help:    "Duration of beanspike.Queue calls, by operation and backend (a random sample of the calls, see WithSampling).",
		Buckets: c.buckets,
	}, []string{"op", "backend"})
	m.calls = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: c.namespace, Name: "calls_total",
		Help: "beanspike.Queue calls, by operation and backend.",
	}, []string{"op", "backend"})
	m.errs = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: c.namespace, Name: "call_errors_total",
		Help: "Failed beanspike.Queue calls, by operation, backend and the sentinel error they wrap.",
	}, []string{"op", "backend", "kind"})
	m.jobs = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: c.namespace, Name: "jobs_total",
		Help: "Jobs put, reserved, deleted, released, buried, kicked and touched through wrapped queues, and puts that asked for compression.",
	}, []string{"event", "backend"})
	m.lapsed = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: c.namespace, Name: "reservations_lapsed_total",
		Help: "Reservations of this process found lapsed (their TTR ran out) when it went to settle or touch the job.",
	}, []string{"backend"})
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
		for _, col := range []prometheus.Collector{m.duration, m.calls, m.errs, m.jobs, m.lapsed, m.handled, m.handler} {
			if err := reg.Register(col); err != nil {
				return nil, err
			}
		}
	}
	for o, name := range opNames {
		m.obs[o] = m.duration.WithLabelValues(name, c.backend)
		m.callCnt[o] = m.calls.WithLabelValues(name, c.backend)
		cs := make([]prometheus.Counter, 0, len(kinds)+1)
		for _, k := range kinds {
			cs = append(cs, m.errs.WithLabelValues(name, c.backend, k.name))
		}
		m.errCnt[o] = append(cs, m.errs.WithLabelValues(name, c.backend, "other"))
	}
	for i, e := range events {
		m.jobCnt[i] = m.jobs.WithLabelValues(e, c.backend)
	}
	m.lapsedC = m.lapsed.WithLabelValues(c.backend)
	return m, nil
}

// begin starts a call: it returns the time, for a call that is timed,
// and the zero time otherwise.
func (m *Metrics) begin() time.Time {
	if m.cfg.sample == 1 || rand.Uint32N(uint32(m.cfg.sample)) == 0 {
		return time.Now()
	}
	return time.Time{}
}

// done records a call of o that began at start (see begin) and returned
// err.
func (m *Metrics) done(o op, start time.Time, err error) {
	m.callCnt[o].Inc()
	if !start.IsZero() {
		m.obs[o].Observe(time.Since(start).Seconds())
	}
	if err == nil {
		return
	}
	cs := m.errCnt[o]
	for i, k := range kinds {
		if errors.Is(err, k.err) {
			cs[i].Inc()
			return
		}
	}
	cs[len(cs)-1].Inc()
}

// Handler wraps h so that each run is counted, by the job's tube and its
// result, and timed.
func (m *Metrics) Handler(h beanspike.Handler) beanspike.Handler {
	return beanspike.HandlerFunc(func(ctx context.Context, job *beanspike.Job) (err error) {
		start := time.Now()
		returned := false
		defer func() { // also when h panics: the worker counts that a failure
			m.handler.WithLabelValues(job.Tube).Observe(time.Since(start).Seconds())
			result := "done"
			if err != nil || !returned {
				result = "failed"
			}
			m.handled.WithLabelValues(job.Tube, result).Inc()
		}()
		err = h.Handle(ctx, job)
		returned = true
		return err
	})
}
