package conformance

import (
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/beanspike/beanspike"
)

var pauseTests = []test{
	{"Pause", testPause},
	{"Unpause", testUnpause},
	{"PauseMultiTube", testPauseMultiTube},
	{"PauseCreatesTube", testPauseCreatesTube},
}

func testPause(t *testing.T, e *env) {
	q := e.client()
	id := e.putS(q, "p", "x")
	d := e.shortDelay()
	ps := time.Now()
	ok(t, q.PauseTube(e.ctx, "p", d), "PauseTube(p, %s)", d)
	pe := time.Now()
	s := e.statsTube(q, "p")
	if elapsed := time.Since(ps); elapsed < d {
		within(t, "StatsTube.PauseLeft", s.PauseLeft, d-elapsed-e.slack(), d+e.slack())
		if _, err := e.poll(q, "p"); err == nil && time.Since(ps) < d {
			t.Fatalf("Reserve took a job of a tube paused for %s after %s", d, time.Since(ps))
		}
		if j, err := q.PeekReady(e.ctx, "p"); err != nil || j.ID != id {
			t.Fatalf("PeekReady of a paused tube = %v, %v; want job %d", j, err, id)
		}
	} else {
		t.Logf("machine too slow to observe the pause (%s elapsed)", elapsed)
	}
	if s.Pauses != 1 || s.Pause != d || s.Ready != 1 {
		t.Fatalf("StatsTube of a paused tube = %+v, want 1 pause of %s, 1 ready job", s, d)
	}
	j, at, probe := e.reserveBy(q, pe.Add(d), "p")
	if j.ID != id {
		t.Fatalf("Reserve = job %d, want %d", j.ID, id)
	}
	e.readyBetween("job of a paused tube", at, ps.Add(d), pe.Add(d), probe)
	e.settled(pe.Add(d+e.slack()), "tube whose pause ended", func() (bool, string) {
		s := e.statsTube(q, "p")
		return s.PauseLeft == 0 && s.Pauses == 1, fmt.Sprintf("StatsTube = %+v, want no pause left, 1 pause", *s)
	})
}

func testUnpause(t *testing.T, e *env) {
	q := e.client()
	ok(t, q.PauseTube(e.ctx, "p", time.Hour), "PauseTube(p, 1h)")
	id := e.putS(q, "p", "x")
	ch := reserveAsync(e.ctx, q, "p")
	e.waitWaiting(q, "p", 1)
	e.notReturned(ch, "Reserve on a paused tube")
	ok(t, q.PauseTube(e.ctx, "p", 0), "PauseTube(p, 0)")
	r := e.await(ch, e.slack()+e.wakeBound(), "Reserve on an unpaused tube")
	if r.err != nil || r.job.ID != id {
		t.Fatalf("Reserve after unpause = %v, %v; want job %d", r.job, r.err, id)
	}
	if s := e.statsTube(q, "p"); s.PauseLeft != 0 || s.Pauses != 2 || s.Pause != time.Hour {
		t.Fatalf("StatsTube after PauseTube(0) = %+v, want no pause left, 2 pauses, Pause still 1h", s)
	}
}

func testPauseMultiTube(t *testing.T, e *env) {
	q := e.client()
	e.putS(q, "paused", "urgent", beanspike.WithPriority(0))
	open := e.putS(q, "open", "normal", beanspike.WithPriority(100))
	ok(t, q.PauseTube(e.ctx, "paused", time.Hour), "PauseTube")
	e.reserveID(q, open, "paused", "open")
	e.pollNone(q, "paused", "open")
	e.pollNone(q, "paused")
	// A paused tube's jobs can still be peeked and counted.
	p, err := q.PeekReady(e.ctx, "paused")
	ok(t, err, "PeekReady")
	if s := e.statsTube(q, "paused"); s.Ready != 1 || s.Urgent != 1 {
		t.Fatalf("StatsTube of a paused tube = %+v", s)
	}
	if _, err := q.Peek(e.ctx, p.ID); err != nil {
		t.Fatalf("Peek: %v", err)
	}
}

func testPauseCreatesTube(t *testing.T, e *env) {
	q := e.client()
	ok(t, q.PauseTube(e.ctx, "fresh", time.Hour), "PauseTube of a tube that does not exist")
	tubes, err := q.Tubes(e.ctx)
	ok(t, err, "Tubes")
	if !slices.Contains(tubes, "fresh") {
		t.Fatalf("Tubes = %q after pausing a new tube, want it listed", tubes)
	}
	s := e.statsTube(q, "fresh")
	if s.Pauses != 1 || s.Pause != time.Hour || s.TotalJobs != 0 {
		t.Fatalf("StatsTube of a tube made by PauseTube = %+v", s)
	}
	n, err := q.DeleteTube(e.ctx, "fresh")
	if err != nil || n != 0 {
		t.Fatalf("DeleteTube of an empty paused tube = %d, %v", n, err)
	}
	if _, err := q.StatsTube(e.ctx, "fresh"); !errors.Is(err, beanspike.ErrNotFound) {
		t.Fatalf("StatsTube of a deleted tube: err = %v, want ErrNotFound", err)
	}
}
