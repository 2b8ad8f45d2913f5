package metrics

import (
	"github.com/prometheus/client_golang/prometheus"
)

// queueDescs describe the metrics of wrapped queues.
type queueDescs struct {
	calls, errs, jobs, lapsed, duration *prometheus.Desc
}

func newQueueDescs(ns string) queueDescs {
	desc := func(name, help string, labels ...string) *prometheus.Desc {
		return prometheus.NewDesc(prometheus.BuildFQName(ns, "", name), help, labels, nil)
	}
	return queueDescs{
		calls: desc("calls_total", "beanspike.Queue calls, by operation and backend.", "op", "backend"),
		errs: desc("call_errors_total", "Failed beanspike.Queue calls, by operation, backend and the sentinel error they wrap.",
			"op", "backend", "kind"),
		jobs: desc("jobs_total", "Jobs put, reserved, deleted, released, buried, kicked and touched through wrapped queues, and puts that asked for compression.",
			"event", "backend"),
		lapsed: desc("reservations_lapsed_total", "Reservations of this process found lapsed (their TTR ran out) when it went to settle or touch the job.",
			"backend"),
		duration: desc("call_duration_seconds", "Duration of beanspike.Queue calls, by operation and backend (a random sample of the calls, see WithSampling).",
			"op", "backend"),
	}
}

// eventOps are, for each job event, the operations whose calls that
// succeed are one event each.
var eventOps = [numEvents][]op{
	evPut:      {opPut},
	evReserved: {opReserve, opReserveJob},
	evDeleted:  {opDelete},
	evReleased: {opRelease},
	evBuried:   {opBury},
	evKicked:   {opKickJob},
	evTouched:  {opTouch},
}

// queueCollector reports the metrics of the queues wrapped by m: the sums
// of their counts. Every operation, error kind and event is reported,
// from 0.
type queueCollector struct{ m *Metrics }

// Describe sends the descriptors of the queue metrics.
func (c queueCollector) Describe(ch chan<- *prometheus.Desc) {
	d := &c.m.descs
	for _, d := range []*prometheus.Desc{d.calls, d.errs, d.jobs, d.lapsed, d.duration} {
		ch <- d
	}
}

// Collect sums the counts of the queues and sends the queue metrics.
func (c queueCollector) Collect(ch chan<- prometheus.Metric) {
	m := c.m
	var t totals
	m.mu.Lock()
	t.addTotals(&m.retired)
	for r := range m.queues {
		t.add(r.c, r.r)
	}
	m.mu.Unlock()

	d, be, ct := &m.descs, m.cfg.backend, m.created
	counter := func(desc *prometheus.Desc, v uint64, labels ...string) {
		ch <- prometheus.MustNewConstMetricWithCreatedTimestamp(desc, prometheus.CounterValue, float64(v), ct, labels...)
	}
	bounds := m.cfg.buckets
	n := len(bounds) + 2
	for o, name := range opNames {
		counter(d.calls, t.ok[o]+t.failed[o], name, be)
		for k := range numKinds {
			kn := "other"
			if k < len(kinds) {
				kn = kinds[k].name
			}
			counter(d.errs, t.errs[o][k], name, be, kn)
		}
		l := t.lat[o]
		if l == nil {
			l = make([]uint64, n)
		}
		cum := make(map[float64]uint64, len(bounds))
		var count uint64
		for i, b := range bounds {
			count += l[1+i]
			cum[b] = count
		}
		count += l[n-1]
		sum := float64(l[0]) / 1e9
		ch <- prometheus.MustNewConstHistogramWithCreatedTimestamp(d.duration, count, sum, cum, ct, name, be)
	}
	for e, name := range events {
		v := t.jobs[e]
		for _, o := range eventOps[e] {
			v += t.ok[o]
		}
		counter(d.jobs, v, name, be)
	}
	counter(d.lapsed, t.lapsed, be)
}
