package conformance

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"

	"github.com/beanspike/beanspike"
)

// state is what the suite can see of a store: the stats of some jobs, the
// tube list and the stats of every tube, without the fields that change
// with the clock alone (Age, TimeLeft, PauseLeft).
type state struct {
	jobs  map[beanspike.ID]string
	tubes []string
	stats map[string]beanspike.TubeStats
}

// snapshot reads the state of the store through q, with the stats of
// the jobs ids (a missing job is recorded as such).
func snapshot(t *testing.T, ctx context.Context, q beanspike.Queue, ids []beanspike.ID) state {
	t.Helper()
	s := state{jobs: make(map[beanspike.ID]string), stats: make(map[string]beanspike.TubeStats)}
	for _, id := range ids {
		js, err := q.StatsJob(ctx, id)
		switch {
		case errors.Is(err, beanspike.ErrNotFound):
			s.jobs[id] = "not found"
		case err != nil:
			t.Fatalf("snapshot: StatsJob(%d): %v", id, err)
		default:
			c := *js
			c.Age, c.TimeLeft = 0, 0
			s.jobs[id] = fmt.Sprintf("%+v", c)
		}
	}
	tubes, err := q.Tubes(ctx)
	if err != nil {
		t.Fatalf("snapshot: Tubes: %v", err)
	}
	s.tubes = tubes
	for _, name := range tubes {
		ts, err := q.StatsTube(ctx, name)
		if err != nil {
			t.Fatalf("snapshot: StatsTube(%q): %v", name, err)
		}
		c := *ts
		c.PauseLeft = 0
		s.stats[name] = c
	}
	return s
}

func (s state) equal(o state) bool {
	return maps.Equal(s.jobs, o.jobs) && slices.Equal(s.tubes, o.tubes) && maps.Equal(s.stats, o.stats)
}

func (s state) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "tubes %q", s.tubes)
	for _, name := range s.tubes {
		fmt.Fprintf(&b, "\n  %+v", s.stats[name])
	}
	for _, id := range slices.Sorted(maps.Keys(s.jobs)) {
		fmt.Fprintf(&b, "\n  job %d: %s", id, s.jobs[id])
	}
	return b.String()
}
