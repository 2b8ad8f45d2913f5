package conformance

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/beanspike/beanspike"
)

var ownershipTests = []test{
	{"Ownership", testOwnership},
	{"HolderOnlyCallsOnUnreservedJobs", testHolderOnlyOnUnreserved},
	{"Close", testClose},
	{"CloseWakesReserve", testCloseWakesReserve},
	{"CloseWakesOtherClients", testCloseWakesOthers},
}

func testOwnership(t *testing.T, e *env) {
	a, b := e.client(), e.client()
	id := e.putS(a, "t", "mine", beanspike.WithPriority(1))
	other := e.putS(a, "t", "other", beanspike.WithPriority(2))
	e.reserveID(a, id, "t")

	wantErr(t, b.Delete(e.ctx, id), beanspike.ErrNotReserved, "another client's Delete of a reserved job")
	wantErr(t, b.Release(e.ctx, id, 5, 0), beanspike.ErrNotReserved, "another client's Release")
	wantErr(t, b.Bury(e.ctx, id, 5, "x"), beanspike.ErrNotReserved, "another client's Bury")
	wantErr(t, b.Touch(e.ctx, id), beanspike.ErrNotReserved, "another client's Touch")
	_, err := b.ReserveJob(e.ctx, id)
	wantErr(t, err, beanspike.ErrNotFound, "ReserveJob of a job another client holds")
	wantErr(t, b.KickJob(e.ctx, id), beanspike.ErrNotFound, "KickJob of a reserved job")
	s := e.wantState(b, id, beanspike.Reserved)
	wantEqual(t, "job after refused calls", beanspike.JobStats{Priority: 1, Reserves: 1}, *s,
		only[beanspike.JobStats]("Priority", "Releases", "Buries", "Reserves", "Kicks"))

	// b gets the next job, not a's.
	e.reserveID(b, other, "t")
	e.pollNone(b, "t")
	ok(t, b.Release(e.ctx, other, 2, 0), "Release by the holder")
	// Deleting a ready job needs no reservation.
	ok(t, a.Delete(e.ctx, other), "Delete of a ready job by a client that never reserved it")
	e.wantGone(b, other)

	// a's reservation is intact.
	ok(t, a.Touch(e.ctx, id), "holder's Touch")
	ok(t, a.Release(e.ctx, id, 3, 0), "holder's Release")
	j := e.reserveID(b, id, "t")
	wantEqual(t, "job after Release(pri 3) and a new reservation", beanspike.Job{Priority: 3, Reserves: 2}, *j,
		only[beanspike.Job]("Priority", "Reserves"))
	wantErr(t, a.Delete(e.ctx, id), beanspike.ErrNotReserved, "former holder's Delete")
	ok(t, b.Delete(e.ctx, id), "holder's Delete")
}

// testHolderOnlyOnUnreserved checks Release, Bury and Touch of jobs that
// nobody holds, and Delete of them by any client.
func testHolderOnlyOnUnreserved(t *testing.T, e *env) {
	a, b := e.client(), e.client()
	ready := e.putS(a, "t", "ready")
	delayed := e.putS(a, "t", "delayed", beanspike.WithDelay(time.Hour))
	buried := e.putS(a, "u", "buried")
	e.reserveID(a, buried, "u")
	ok(t, a.Bury(e.ctx, buried, 7, "why"), "Bury")

	states := map[beanspike.ID]beanspike.State{ready: beanspike.Ready, delayed: beanspike.Delayed, buried: beanspike.Buried}
	for id, st := range states {
		for _, q := range []beanspike.Queue{a, b} {
			wantErr(t, q.Release(e.ctx, id, 1, 0), beanspike.ErrNotReserved, "Release of a %v job", st)
			wantErr(t, q.Bury(e.ctx, id, 1, "x"), beanspike.ErrNotReserved, "Bury of a %v job", st)
			wantErr(t, q.Touch(e.ctx, id), beanspike.ErrNotReserved, "Touch of a %v job", st)
			e.wantState(q, id, st)
		}
	}
	for id, st := range states {
		ok(t, b.Delete(e.ctx, id), "Delete of a %v job by a client that never reserved it", st)
		e.wantGone(a, id)
	}
	if s := e.statsTube(a, "t"); s.Deletes != 2 || s.Ready != 0 || s.Delayed != 0 {
		t.Fatalf("StatsTube(t) after deleting its ready and delayed jobs = %+v, want 2 deletes, nothing left", s)
	}
	if s := e.statsTube(a, "u"); s.Deletes != 1 || s.Buried != 0 {
		t.Fatalf("StatsTube(u) after deleting its buried job = %+v, want 1 delete, nothing left", s)
	}
}

func testClose(t *testing.T, e *env) {
	a, b := e.client(), e.client()
	r1 := e.putS(b, "t", "r1")
	r2 := e.putS(b, "t", "r2")
	bu := e.putS(b, "t", "bu")
	ready := e.putS(b, "t", "ready")
	e.reserveID(a, r1, "t")
	e.reserveID(a, r2, "t")
	e.reserveID(a, bu, "t")
	ok(t, a.Bury(e.ctx, bu, 5, "kept"), "Bury")
	ok(t, a.Close(), "Close")

	// The reservations are back to ready at once; the buried job stays.
	for _, id := range []beanspike.ID{r1, r2} {
		s := e.wantState(b, id, beanspike.Ready)
		if s.Reserves != 1 || s.Releases != 0 || s.Timeouts != 0 || s.TimeLeft != 0 {
			t.Fatalf("job %d after its holder closed: %+v, want ready with 1 reserve, no release, no timeout", id, s)
		}
	}
	e.wantState(b, bu, beanspike.Buried)
	before := snapshot(t, e.ctx, b, []beanspike.ID{r1, r2, bu})

	ctx, cancel := context.WithTimeout(e.ctx, e.wakeBound())
	defer cancel()
	done, stop := context.WithCancel(e.ctx)
	stop()
	closedCalls := []struct {
		name string
		call func() error
	}{
		{"Put", func() error { _, err := a.Put(ctx, "t", []byte("x")); return err }},
		{"Reserve polling with ready jobs", func() error { _, err := a.Reserve(done, "t"); return err }},
		{"Reserve", func() error { _, err := a.Reserve(ctx, "t"); return err }},
		{"ReserveJob", func() error { _, err := a.ReserveJob(ctx, r1); return err }},
		{"Delete", func() error { return a.Delete(ctx, r1) }},
		{"Release", func() error { return a.Release(ctx, r1, 1, 0) }},
		{"Bury", func() error { return a.Bury(ctx, r1, 1, "x") }},
		{"Touch", func() error { return a.Touch(ctx, r1) }},
		{"Kick", func() error { _, err := a.Kick(ctx, "t", 10); return err }},
		{"KickJob", func() error { return a.KickJob(ctx, bu) }},
		{"Peek", func() error { _, err := a.Peek(ctx, r1); return err }},
		{"PeekReady", func() error { _, err := a.PeekReady(ctx, "t"); return err }},
		{"PeekDelayed", func() error { _, err := a.PeekDelayed(ctx, "t"); return err }},
		{"PeekBuried", func() error { _, err := a.PeekBuried(ctx, "t"); return err }},
		{"StatsJob", func() error { _, err := a.StatsJob(ctx, r1); return err }},
		{"StatsTube", func() error { _, err := a.StatsTube(ctx, "t"); return err }},
		{"Tubes", func() error { _, err := a.Tubes(ctx); return err }},
		{"PauseTube", func() error { return a.PauseTube(ctx, "t", time.Hour) }},
		{"DeleteTube", func() error { _, err := a.DeleteTube(ctx, "t"); return err }},
		{"PutBatch", func() error {
			_, err := beanspike.PutBatch(ctx, a, []beanspike.PutRequest{{Tube: "t", Body: []byte("x")}})
			return err
		}},
		{"ReserveBatch", func() error { _, err := beanspike.ReserveBatch(ctx, a, 2, "t"); return err }},
	}
	for _, c := range closedCalls {
		wantErr(t, c.call(), beanspike.ErrClosed, "%s on a closed client", c.name)
		if after := snapshot(t, e.ctx, b, []beanspike.ID{r1, r2, bu}); !before.equal(after) {
			t.Fatalf("%s on a closed client changed the store:\nbefore %s\nafter  %s", c.name, before, after)
		}
	}
	if err := a.Close(); err != nil && !errors.Is(err, beanspike.ErrClosed) {
		t.Fatalf("second Close: %v, want nil or ErrClosed", err)
	}
	// The job that stayed ready became ready before those returned by
	// Close.
	e.reserveID(b, ready, "t")
	ok(t, b.Delete(e.ctx, r1), "Delete of a ready job by another client after Close")
}

func testCloseWakesReserve(t *testing.T, e *env) {
	a, b := e.client(), e.client()
	e.putS(b, "t", "x")
	ok(t, b.Delete(e.ctx, e.reserve(b, "t").ID), "Delete")
	ch := reserveAsync(e.ctx, a, "t")
	e.waitWaiting(b, "t", 1)
	batch := make(chan error, 1)
	go func() { _, err := beanspike.ReserveBatch(e.ctx, a, 3, "t"); batch <- err }()
	e.sleep(50 * time.Millisecond)
	ok(t, a.Close(), "Close")
	r := e.await(ch, e.wakeBound(), "Reserve blocked in a client being closed")
	if !errors.Is(r.err, beanspike.ErrClosed) {
		t.Fatalf("blocked Reserve after Close = %v, %v; want ErrClosed", r.job, r.err)
	}
	tm := time.NewTimer(e.wakeBound())
	defer tm.Stop()
	select {
	case err := <-batch:
		wantErr(t, err, beanspike.ErrClosed, "blocked ReserveBatch after Close")
	case <-tm.C:
		t.Fatalf("ReserveBatch still blocked %s after Close", e.wakeBound())
	}
	// The closed client takes nothing any more.
	id := e.putS(b, "t", "y")
	e.reserveID(b, id, "t")
	if e.caps.ExactWaiting {
		if s := e.statsTube(b, "t"); s.Waiting != 0 {
			t.Fatalf("StatsTube.Waiting = %d after the waiting client closed", s.Waiting)
		}
	}
}

func testCloseWakesOthers(t *testing.T, e *env) {
	a, b := e.client(), e.client()
	id := e.putS(a, "t", "x")
	e.reserveID(a, id, "t")
	ch := reserveAsync(e.ctx, b, "t")
	e.waitWaiting(b, "t", 1)
	e.notReturned(ch, "Reserve while the only job is held")
	ok(t, a.Close(), "Close")
	r := e.await(ch, e.wakeBound(), "Reserve waiting for a job whose holder closed")
	if r.err != nil || r.job == nil || r.job.ID != id {
		t.Fatalf("Reserve after the holder closed = %v, %v; want job %d", r.job, r.err, id)
	}
	if r.job.Reserves != 2 {
		t.Fatalf("Job.Reserves = %d, want 2", r.job.Reserves)
	}
}
