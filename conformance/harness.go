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
	// background loop needs about its period. Defaults to 100ms.
	TimeSlack time.Duration
	// ExactWaiting tells that TubeStats.Waiting counts every blocked
	// Reserve on the store, not only those of one process.
	ExactWaiting bool
	// Concurrency is the number of goroutines the randomized concurrent
	// test runs. Defaults to 8.
	Concurrency int
}
