package remote_test

import (
	"testing"
	"time"

	"github.com/beanspike/beanspike"
	"github.com/beanspike/beanspike/chanserv/internal/muxtest"
	"github.com/beanspike/beanspike/conformance"
)

// store is one memory store behind a remote server; its clients are
// remote clients, each its own session.
type store struct{ f *fixture }

func (s store) NewClient(t *testing.T) beanspike.Queue {
	t.Helper()
	return s.f.dial(t)
}

// TestConformance runs the whole contract against remote clients of a
// memory store, over the in-memory multiplexer and over vnet on loopback
// TCP.
func TestConformance(t *testing.T) {
	for _, m := range muxtest.All() {
		t.Run(m.Name, func(t *testing.T) {
			conformance.Run(t, conformance.Harness{
				NewStore: func(t *testing.T) conformance.Store {
					return store{newFixture(t, m.Make)}
				},
				Capabilities: conformance.Capabilities{
					// Every call is a round trip on a loaded machine
					// under -race.
					TimeSlack:    300 * time.Millisecond,
					ExactWaiting: true,
				},
			})
		})
	}
}
