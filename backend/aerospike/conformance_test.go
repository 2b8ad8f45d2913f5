package aerospike

import (
	"testing"
	"time"

	"github.com/beanspike/beanspike"
	"github.com/beanspike/beanspike/conformance"
)

// confStore is one isolated store for the conformance suite: a key prefix
// of its own on the target server.
type confStore struct {
	first *Queue
}

func (s *confStore) NewClient(t *testing.T) beanspike.Queue {
	t.Helper()
	c, err := s.first.NewClient()
	if err != nil {
		t.Fatalf("NewClient: %v", err)
	}
	return c
}

func TestConformance(t *testing.T) {
	t.Logf("aerospike target: %s at %s:%d", tgt.kind, tgt.host, tgt.port)
	probe := newTestQueue(t)
	conformance.Run(t, conformance.Harness{
		NewStore: func(t *testing.T) conformance.Store {
			return &confStore{first: newTestQueue(t, WithSegmentSize(8))}
		},
		Capabilities: conformance.Capabilities{
			TimeSlack:    250 * time.Millisecond,
			MaxBodySize:  probe.MaxBodySize(),
			ExactWaiting: false,
		},
	})
}
