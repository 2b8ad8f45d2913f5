// Package lograte keeps a peer that misbehaves from flooding a log: a
// Limiter lets through at most one line a second and counts the lines it
// held back.
package lograte

import (
	"sync"
	"time"
)

// Interval is the least time between two lines one Limiter lets through.
const Interval = time.Second

// Limiter lets through at most one line per Interval. The zero value is
// ready to use; its methods are safe for concurrent use.
type Limiter struct {
	mu   sync.Mutex
	last time.Time
	held int
}

// Allow reports whether a line may be logged at now, and if so how many
// lines were held back since the last one let through.
func (l *Limiter) Allow(now time.Time) (held int, ok bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if !l.last.IsZero() && now.Sub(l.last) < Interval {
		l.held++
		return 0, false
	}
	held, l.held, l.last = l.held, 0, now
	return held, true
}
