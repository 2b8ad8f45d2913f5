package aerospike

import (
	"context"
	"log/slog"
	"sync"
	"time"
)

// health is what the clients of one [New] know of the store's reach: it
// reports, once each, the store going out of reach and coming back.
type health struct {
	log *slog.Logger

	mu    sync.Mutex
	lost  bool
	since time.Time
	fails int
}

// down notes a failure that says the store is out of reach, and reports
// the first of a run.
func (h *health) down(err error) {
	h.mu.Lock()
	first := !h.lost
	if first {
		h.lost, h.since, h.fails = true, time.Now(), 0
	}
	h.fails++
	h.mu.Unlock()
	if first {
		h.log.Warn("aerospike store unreachable: calls fail with ErrUnavailable until it answers again",
			"err", err)
	}
}

// isDown tells whether the store was last seen out of reach.
func (h *health) isDown() bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.lost
}

// up notes that the store answered, and reports it if it was out of reach.
func (h *health) up() {
	h.mu.Lock()
	was, since, fails := h.lost, h.since, h.fails
	h.lost = false
	h.mu.Unlock()
	if was {
		h.log.Info("aerospike store reachable again",
			"down", time.Since(since).Round(time.Millisecond), "failures", fails)
	}
}

// probe asks the store, once it was seen out of reach, whether it answers
// again: one read of the ID counter's record. The background loop calls
// it every tick.
func (q *Queue) probe(ctx context.Context) {
	h := &q.s.health
	if !h.isDown() {
		return
	}
	key := q.idKey()
	pol := *q.readPolicy(ctx)
	pol.MaxRetries = 0
	if _, err := q.s.client.Exists(&pol, key); err == nil {
		h.up()
	}
}
