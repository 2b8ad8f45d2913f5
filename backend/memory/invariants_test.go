package memory

import (
	"fmt"

	"github.com/beanspike/beanspike"
)

// checkInvariants verifies the store's internal consistency. It takes the
// lock.
func (s *store) checkInvariants() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil
	}
	seen := 0
	for name, t := range s.tubes {
		if t.name != name {
			return fmt.Errorf("tube %q filed as %q", t.name, name)
		}
		if !t.listed && t.nwait == 0 {
			return fmt.Errorf("unlisted tube %q with no waiters kept", name)
		}
		urgent := 0
		for _, h := range []struct {
			h     *jobHeap
			state beanspike.State
		}{{&t.ready, beanspike.Ready}, {&t.delayed, beanspike.Delayed}, {&t.reserved, beanspike.Reserved}, {&t.buried, beanspike.Buried}} {
			for i, j := range h.h.jobs {
				if int(j.hidx) != i {
					return fmt.Errorf("job %d: hidx %d at %d", j.id, j.hidx, i)
				}
				if j.state != h.state || j.tube != t {
					return fmt.Errorf("job %d: state %s tube %q in %s heap of %q", j.id, j.state, j.tube.name, h.state, name)
				}
				if i > 0 && h.h.less(j, h.h.jobs[(i-1)/2]) {
					return fmt.Errorf("job %d: heap order broken in %s heap of %q", j.id, h.state, name)
				}
				if s.jobs.get(j.id) != j {
					return fmt.Errorf("job %d: in heap, not in map", j.id)
				}
				if (j.state == beanspike.Reserved) != (j.owner != nil) {
					return fmt.Errorf("job %d: state %s with owner %p", j.id, j.state, j.owner)
				}
				if j.owner != nil {
					if _, ok := j.owner.held[j]; !ok {
						return fmt.Errorf("job %d: owner does not hold it", j.id)
					}
				}
				if j.state == beanspike.Ready && j.pri < beanspike.UrgentPriority {
					urgent++
				}
				seen++
			}
		}
		if urgent != t.urgent {
			return fmt.Errorf("tube %q: urgent %d, counted %d", name, t.urgent, urgent)
		}
		n := 0
		for w := t.whead; w != nil; w = w.next {
			n++
			if w.next != nil && w.next.prev != w {
				return fmt.Errorf("tube %q: wait list links broken", name)
			}
		}
		if n != t.nwait {
			return fmt.Errorf("tube %q: nwait %d, listed %d", name, t.nwait, n)
		}
		if n > 0 && t.ready.len() > 0 && !t.paused() {
			return fmt.Errorf("tube %q: %d waiters and %d ready jobs", name, n, t.ready.len())
		}
		if t.evIdx >= 0 && s.events[t.evIdx] != t {
			return fmt.Errorf("tube %q: evIdx %d wrong", name, t.evIdx)
		}
		if (t.next != never) != (t.evIdx >= 0) {
			return fmt.Errorf("tube %q: next %d with evIdx %d", name, t.next, t.evIdx)
		}
	}
	if seen != s.jobs.len() {
		return fmt.Errorf("%d jobs in heaps, %d in index", seen, s.jobs.len())
	}
	for i, t := range s.events {
		if t.evIdx != i {
			return fmt.Errorf("events: tube %q at %d has evIdx %d", t.name, i, t.evIdx)
		}
		if i > 0 && t.next < s.events[(i-1)/2].next {
			return fmt.Errorf("events: heap order broken")
		}
	}
	if len(s.events) > 0 && s.armedAt > s.events[0].next {
		return fmt.Errorf("timer armed at %d, first event at %d", s.armedAt, s.events[0].next)
	}
	return nil
}
