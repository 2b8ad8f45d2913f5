package memory_test

import (
	"testing"
	"time"

	"github.com/beanspike/beanspike"
	"github.com/beanspike/beanspike/backend/memory"
	"github.com/beanspike/beanspike/conformance"
)

// store is one in-memory store for the conformance suite. Its first
// client stays open until the test ends, so the store outlives the
// clients the suite closes.
type store struct{ root *memory.Queue }

func (s store) NewClient(t *testing.T) beanspike.Queue {
	t.Helper()
	q, err := s.root.NewClient()
	if err != nil {
		t.Fatalf("NewClient: %v", err)
	}
	return q
}

func harness(opts ...memory.Option) conformance.Harness {
	return conformance.Harness{
		NewStore: func(t *testing.T) conformance.Store {
			t.Helper()
			q, err := memory.New(opts...)
			if err != nil {
				t.Fatalf("memory.New: %v", err)
			}
			t.Cleanup(func() { _ = q.Close() })
			return store{root: q}
		},
		Capabilities: conformance.Capabilities{
			// The store is exact to the nanosecond; the slack covers
			// goroutine scheduling under -race on a loaded machine.
			TimeSlack:    200 * time.Millisecond,
			ExactWaiting: true,
		},
	}
}

func TestConformance(t *testing.T) {
	conformance.Run(t, harness())
}
