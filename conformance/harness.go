package conformance

import (
	"testing"
	"time"

	"github.com/beanspike/beanspike"
)

// Harness tells the suite how to make stores of the implementation under
// test and what they can do.
type Harness struct {
	// NewStore makes a new store, isolated from every other store the
	// harness makes, and registers its cleanup with t.Cleanup.
	NewStore func(t *testing.T) Store
	// Capabilities declares what the implementation can do.
	Capabilities Capabilities
}

// Store is one isolated store of the implementation under test.
type Store interface {
	// NewClient returns a new client of the store: a Queue with its own
	// identity. The suite closes the clients it makes.
	NewClient(t *testing.T) beanspike.Queue
}

// Capabilities declares the precision and optional abilities of an
// implementation, so the suite can skip what is missing (with a message)
// and allow for coarse clocks.
type Capabilities struct {
	// TimeSlack is how late a time-driven move may happen: a delayed job
	// becoming ready, a reservation lapsing, a pause ending. The memory
	// backend needs a few milliseconds; a store that promotes jobs in a
	// background loop needs about its period. It also bounds how far the
	// durations that StatsJob and StatsTube report (age, time left, pause
	// left) may be off. Defaults to 100ms.
	TimeSlack time.Duration
	// ExactWaiting tells that TubeStats.Waiting counts every blocked
	// Reserve on the store, not only those of one process.
	ExactWaiting bool
	// Concurrency is the number of goroutines the randomized concurrent
	// test runs. Defaults to 8.
	Concurrency int
	// MaxBodySize is the largest body the stores accept, before
	// compression. Defaults to [beanspike.DefaultMaxBodySize].
	MaxBodySize int
	// Watchdog is how long one subtest may run before the suite declares
	// it hung: it then fails the subtest with a dump of every goroutine,
	// cancels the subtest's context and closes its clients. If the
	// subtest still has not returned a while later, the suite panics
	// with the dump, so a hang stops the test binary instead of stalling
	// CI. Defaults to 1 minute.
	Watchdog time.Duration
	// Stress is how long the randomized concurrent test runs. Defaults
	// to 3 seconds, and to a third of that under -short.
	Stress time.Duration
}

// withDefaults returns c with every zero field set to its default.
func (c Capabilities) withDefaults() Capabilities {
	if c.TimeSlack <= 0 {
		c.TimeSlack = 100 * time.Millisecond
	}
	if c.Concurrency <= 0 {
		c.Concurrency = 8
	}
	if c.MaxBodySize <= 0 {
		c.MaxBodySize = beanspike.DefaultMaxBodySize
	}
	if c.Watchdog <= 0 {
		c.Watchdog = time.Minute
	}
	if c.Stress <= 0 {
		c.Stress = 3 * time.Second
		if testing.Short() {
			c.Stress /= 3
		}
	}
	return c
}
