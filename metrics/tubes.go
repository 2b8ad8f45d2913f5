package metrics

import (
	"context"
	"errors"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/beanspike/beanspike"
)

// TubeOption configures [Metrics.Tubes].
type TubeOption func(*tubeConfig)

type tubeConfig struct {
	timeout  time.Duration
	maxTubes int
}

// WithScrapeTimeout bounds the reads of one scrape. Defaults to 5s.
func WithScrapeTimeout(d time.Duration) TubeOption {
	return func(c *tubeConfig) { c.timeout = d }
}

// WithMaxTubes bounds how many tubes one scrape reads, the first in the
// order Tubes returns them. Defaults to 1,000.
func WithMaxTubes(n int) TubeOption { return func(c *tubeConfig) { c.maxTubes = n } }

// Tubes returns a collector that, on each scrape, reads the tubes of q
// and their stats (one StatsTube call per tube) and reports them as the
// beanspike_tube_* metrics. A tube that disappears between the two reads
// is left out; a failed read is reported as an error of the scrape.
func (m *Metrics) Tubes(q beanspike.Queue, opts ...TubeOption) prometheus.Collector {
	c := tubeConfig{timeout: 5 * time.Second, maxTubes: 1000}
	for _, o := range opts {
		if o != nil {
			o(&c)
		}
	}
	ns := m.cfg.namespace
	desc := func(name, help string, labels ...string) *prometheus.Desc {
		return prometheus.NewDesc(prometheus.BuildFQName(ns, "tube", name), help, append([]string{"tube"}, labels...), nil)
	}
	return &tubeCollector{
		q:          q,
		cfg:        c,
		jobs:       desc("jobs", "Jobs of the tube by state (urgent: ready with a priority below 1024).", "state"),
		waiting:    desc("waiting", "Reserve calls blocked on the tube (those the store can see)."),
		paused:     desc("paused", "1 while the tube is paused."),
		total:      desc("jobs_total", "Jobs ever put into the tube (since it was last deleted)."),
		deletes:    desc("deletes_total", "Delete calls that removed a job of the tube."),
		compressed: desc("compressed_total", "Puts whose body was stored compressed."),
		skipped:    desc("compression_skipped_total", "Puts that asked for compression but stored the body raw."),
		scrapeErr:  prometheus.NewDesc(prometheus.BuildFQName(ns, "tube", "scrape_error"), "1 if the last read of the tubes failed.", nil, nil),
	}
}

type tubeCollector struct {
	q   beanspike.Queue
	cfg tubeConfig

	jobs, waiting, paused, total, deletes, compressed, skipped, scrapeErr *prometheus.Desc
}

// Describe sends the descriptors of the tube metrics.
func (c *tubeCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.jobs, c.waiting, c.paused, c.total, c.deletes, c.compressed, c.skipped, c.scrapeErr} {
		ch <- d
	}
}

// Collect reads the tubes and sends their metrics.
func (c *tubeCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), c.cfg.timeout)
	defer cancel()
	failed := 0.0
	tubes, err := c.q.Tubes(ctx)
	if err != nil {
		failed = 1
	}
	if len(tubes) > c.cfg.maxTubes {
		tubes = tubes[:c.cfg.maxTubes]
	}
	for _, t := range tubes {
		s, err := c.q.StatsTube(ctx, t)
		if err != nil {
			if !errorsIsNotFound(err) {
				failed = 1
			}
			continue
		}
		g := func(d *prometheus.Desc, v float64, labels ...string) {
			ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, append([]string{t}, labels...)...)
		}
		n := func(d *prometheus.Desc, v uint64) {
			ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), t)
		}
		g(c.jobs, float64(s.Ready), "ready")
		g(c.jobs, float64(s.Reserved), "reserved")
		g(c.jobs, float64(s.Delayed), "delayed")
		g(c.jobs, float64(s.Buried), "buried")
		g(c.jobs, float64(s.Urgent), "urgent")
		g(c.waiting, float64(s.Waiting))
		paused := 0.0
		if s.PauseLeft > 0 {
			paused = 1
		}
		g(c.paused, paused)
		n(c.total, s.TotalJobs)
		n(c.deletes, s.Deletes)
		n(c.compressed, s.Compressed)
		n(c.skipped, s.CompressionSkipped)
	}
	ch <- prometheus.MustNewConstMetric(c.scrapeErr, prometheus.GaugeValue, failed)
}

// Healthz answers 200 "ok" to every request: the process serves HTTP.
func Healthz() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		_, _ = w.Write([]byte("ok\n"))
	})
}

// Readyz answers 200 when q answers a Tubes call within timeout, and 503
// with the error otherwise: the store is reachable.
func Readyz(q beanspike.Queue, timeout time.Duration) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), timeout)
		defer cancel()
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		if _, err := q.Tubes(ctx); err != nil {
			w.WriteHeader(http.StatusServiceUnavailable)
			_, _ = w.Write([]byte("store not ready: " + err.Error() + "\n"))
			return
		}
		_, _ = w.Write([]byte("ok\n"))
	})
}

func errorsIsNotFound(err error) bool { return errors.Is(err, beanspike.ErrNotFound) }
