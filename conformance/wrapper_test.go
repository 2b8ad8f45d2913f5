package conformance_test

import (
	"testing"
	"time"

	"github.com/beanspike/beanspike"
	"github.com/beanspike/beanspike/backend/memory"
	"github.com/beanspike/beanspike/conformance"
)

// plain hides every optional interface of the Queue it wraps.
type plain struct{ beanspike.Queue }

type plainStore struct{ root *memory.Queue }

func (s plainStore) NewClient(t *testing.T) beanspike.Queue {
	c, err := s.root.NewClient()
	if err != nil {
		t.Fatal(err)
	}
	return plain{c}
}

// A wrapper that implements only beanspike.Queue passes the suite: the
// optional interfaces are tested only where they are implemented.
func TestPlainWrapper(t *testing.T) {
	if testing.Short() {
		t.Skip("the whole suite once more; run without -short")
	}
	conformance.Run(t, conformance.Harness{
		NewStore: func(t *testing.T) conformance.Store {
			q, err := memory.New()
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { q.Close() })
			if _, ok := beanspike.Queue(plain{q}).(beanspike.Batcher); ok {
				t.Fatal("the wrapper is a Batcher")
			}
			return plainStore{root: q}
		},
		Capabilities: conformance.Capabilities{ExactWaiting: true, TimeSlack: 200 * time.Millisecond},
	})
}
