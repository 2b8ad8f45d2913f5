package conformance_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/beanspike/beanspike"
	"github.com/beanspike/beanspike/backend/memory"
	"github.com/beanspike/beanspike/conformance"
)

// memStore is one isolated store of the implementation under test; here
// the memory backend stands for the user's own.
type memStore struct{ root *memory.Queue }

// NewClient returns another client of the store.
func (s memStore) NewClient(t *testing.T) beanspike.Queue {
	c, err := s.root.NewClient()
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// Testing a custom backend: its repository's tests build a Harness and
// call conformance.Run from a test function, with -race:
//
//	func TestConformance(t *testing.T) { conformance.Run(t, harness) }
func Example() {
	harness := conformance.Harness{
		NewStore: func(t *testing.T) conformance.Store {
			q, err := memory.New() // the backend's constructor, on a store of its own
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { q.Close() })
			return memStore{root: q}
		},
		Capabilities: conformance.Capabilities{
			TimeSlack:    200 * time.Millisecond, // how late a delayed job may become ready
			ExactWaiting: true,                   // StatsTube.Waiting counts every blocked Reserve
		},
	}
	fmt.Println(harness.NewStore != nil)
	// Output: true
}
