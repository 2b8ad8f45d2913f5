package conformance

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/beanspike/beanspike"
)

var tubeTests = []test{
	{"DeleteTube", testDeleteTube},
	{"DeleteTubeWithWaiter", testDeleteTubeWithWaiter},
	{"Tubes", testTubes},
	{"ValidTubeNames", testValidTubeNames},
}

func testDeleteTube(t *testing.T, e *env) {
	a, b := e.client(), e.client()
	re := e.putS(a, "d", "ready")
	de := e.putS(a, "d", "delayed", beanspike.WithDelay(time.Hour))
	rs := e.putS(a, "d", "reserved")
	bu := e.putS(a, "d", "buried")
	keep := e.putS(a, "keep", "kept")
	e.reserveID(a, re, "d")
	e.reserveID(a, rs, "d")
	e.reserveID(a, bu, "d")
	ok(t, a.Bury(e.ctx, bu, 1, ""), "Bury")
	ok(t, a.Release(e.ctx, re, 1, 0), "Release")
	ok(t, a.Delete(e.ctx, e.putS(a, "d", "deleted")), "Delete")

	n, err := b.DeleteTube(e.ctx, "d")
	ok(t, err, "DeleteTube")
	if n != 4 {
		t.Fatalf("DeleteTube of a tube with a ready, a delayed, a reserved and a buried job = %d, want 4", n)
	}
	for _, id := range []beanspike.ID{re, de, rs, bu} {
		e.wantGone(a, id)
		_, err := a.ReserveJob(e.ctx, id)
		wantErr(t, err, beanspike.ErrNotFound, "ReserveJob of a job of a deleted tube")
		wantErr(t, a.KickJob(e.ctx, id), beanspike.ErrNotFound, "KickJob of a job of a deleted tube")
	}
	// The holder of a deleted job learns it is gone.
	wantErr(t, a.Touch(e.ctx, rs), beanspike.ErrNotFound, "holder's Touch of a job of a deleted tube")
	wantErr(t, a.Release(e.ctx, rs, 1, 0), beanspike.ErrNotFound, "holder's Release of a job of a deleted tube")
	wantErr(t, a.Bury(e.ctx, rs, 1, ""), beanspike.ErrNotFound, "holder's Bury of a job of a deleted tube")
	wantErr(t, a.Delete(e.ctx, rs), beanspike.ErrNotFound, "holder's Delete of a job of a deleted tube")

	_, err = a.StatsTube(e.ctx, "d")
	wantErr(t, err, beanspike.ErrNotFound, "StatsTube of a deleted tube")
	tubes, err := a.Tubes(e.ctx)
	ok(t, err, "Tubes")
	if !slices.Equal(tubes, []string{"keep"}) {
		t.Fatalf("Tubes after DeleteTube(d) = %q, want [keep]", tubes)
	}
	_, err = b.DeleteTube(e.ctx, "d")
	wantErr(t, err, beanspike.ErrNotFound, "second DeleteTube")
	_, err = b.DeleteTube(e.ctx, "never")
	wantErr(t, err, beanspike.ErrNotFound, "DeleteTube of a tube that never existed")
	e.pollNone(a, "d")
	e.wantState(a, keep, beanspike.Ready)

	// A new Put makes a new tube with fresh counters.
	id := e.putS(b, "d", "new")
	if s := e.statsTube(a, "d"); s.TotalJobs != 1 || s.Ready != 1 || s.Deletes != 0 || s.Pauses != 0 {
		t.Fatalf("StatsTube of a re-made tube = %+v, want fresh counters", s)
	}
	e.reserveID(a, id, "d")
	if n, err := b.DeleteTube(e.ctx, "keep"); err != nil || n != 1 {
		t.Fatalf("DeleteTube(keep) = %d, %v; want 1", n, err)
	}
}

func testDeleteTubeWithWaiter(t *testing.T, e *env) {
	a, b := e.client(), e.client()
	ok(t, a.PauseTube(e.ctx, "d", time.Hour), "PauseTube")
	e.putS(a, "d", "x")
	ch := reserveAsync(e.ctx, a, "d")
	e.waitWaiting(b, "d", 1)
	n, err := b.DeleteTube(e.ctx, "d")
	if err != nil || n != 1 {
		t.Fatalf("DeleteTube = %d, %v; want 1", n, err)
	}
	e.notReturned(ch, "Reserve on a deleted tube")
	// The pause went with the tube: a new job is reserved at once.
	id := e.putS(b, "d", "y")
	r := e.await(ch, e.wakeBound(), "Reserve on a deleted and re-made tube")
	if r.err != nil || r.job.ID != id {
		t.Fatalf("Reserve = %v, %v; want job %d", r.job, r.err, id)
	}
}

func testTubes(t *testing.T, e *env) {
	q := e.client()
	tubes, err := q.Tubes(e.ctx)
	ok(t, err, "Tubes")
	if len(tubes) != 0 {
		t.Fatalf("Tubes of a new store = %q, want none", tubes)
	}
	for _, name := range []string{"b", "a", "c/x", "A", "a.b", "a", "_z"} {
		e.putS(q, name, "x")
	}
	tubes, err = q.Tubes(e.ctx)
	ok(t, err, "Tubes")
	want := []string{"A", "_z", "a", "a.b", "b", "c/x"}
	if !slices.Equal(tubes, want) {
		t.Fatalf("Tubes = %q, want %q", tubes, want)
	}
	// A client sees the tubes made by another.
	tubes, err = e.client().Tubes(e.ctx)
	ok(t, err, "Tubes")
	if !slices.Equal(tubes, want) {
		t.Fatalf("Tubes seen by another client = %q, want %q", tubes, want)
	}
}

func testValidTubeNames(t *testing.T, e *env) {
	q := e.client()
	for _, name := range []string{
		strings.Repeat("a", beanspike.MaxTubeNameLen),
		"a-+/;.$_()Z9",
		"0",
		"(", "$", ";x",
	} {
		id := e.putS(q, name, name)
		j := e.reserveID(q, id, name)
		if j.Tube != name {
			t.Fatalf("job put into %q reserved with Tube %q", name, j.Tube)
		}
		e.statsTube(q, name)
		ok(t, q.PauseTube(e.ctx, name, 0), "PauseTube(%q, 0)", name)
		_, err := q.PeekReady(e.ctx, name)
		wantErr(t, err, beanspike.ErrNotFound, "PeekReady(%q) of a tube with no ready job", name)
		n, err := q.Kick(e.ctx, name, 1)
		if err != nil || n != 0 {
			t.Fatalf("Kick(%q) = %d, %v", name, n, err)
		}
		if n, err := q.DeleteTube(e.ctx, name); err != nil || n != 1 {
			t.Fatalf("DeleteTube(%q) = %d, %v; want 1", name, n, err)
		}
	}
}
