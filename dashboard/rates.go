package dashboard

import (
	"sync"
	"time"

	"github.com/beanspike/beanspike"
)

// minRateInterval is the shortest time between two samples of a tube's
// count of jobs put: refreshes closer together show the last rate again.
const minRateInterval = time.Second

// rateTracker computes how many jobs per second are put into each tube,
// from [beanspike.TubeStats.TotalJobs] at two refreshes, by any viewer, at
// least minRateInterval apart.
type rateTracker struct {
	mu   sync.Mutex
	last map[string]sample
}

type sample struct {
	total uint64
	at    time.Time
	rate  float64
	known bool
}

func (t *rateTracker) init() { t.last = make(map[string]sample) }

// observe records the counts of stats, taken at now, and returns each
// tube's rate in jobs per second, or nil while it is not known yet. When
// all is set, stats holds every tube of the store, and tubes not in it
// are forgotten.
func (t *rateTracker) observe(now time.Time, stats []*beanspike.TubeStats, all bool) []*float64 {
	t.mu.Lock()
	defer t.mu.Unlock()
	rates := make([]*float64, len(stats))
	var seen map[string]bool
	if all {
		seen = make(map[string]bool, len(stats))
	}
	for i, st := range stats {
		if all {
			seen[st.Name] = true
		}
		prev, ok := t.last[st.Name]
		switch {
		case !ok || st.TotalJobs < prev.total || now.Before(prev.at):
			// A new tube, or one deleted and made again: start over.
			t.last[st.Name] = sample{total: st.TotalJobs, at: now}
		case now.Sub(prev.at) >= minRateInterval:
			r := float64(st.TotalJobs-prev.total) / now.Sub(prev.at).Seconds()
			t.last[st.Name] = sample{total: st.TotalJobs, at: now, rate: r, known: true}
			rates[i] = &r
		case prev.known:
			r := prev.rate
			rates[i] = &r
		}
	}
	if all {
		for name := range t.last {
			if !seen[name] {
				delete(t.last, name)
			}
		}
	}
	return rates
}
