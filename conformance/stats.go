package conformance

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/beanspike/beanspike"
)

var statsTests = []test{
	{"StatsJob", testStatsJob},
	{"StatsTube", testStatsTube},
	{"StatsTubeWaiting", testStatsTubeWaiting},
}

func testStatsJob(t *testing.T, e *env) {
	q := e.client()
	body := []byte("twelve bytes")
	start := time.Now()
	id := e.put(q, "st", body, beanspike.WithPriority(7), beanspike.WithTTR(30*time.Second))
	end := time.Now()
	e.sleep(100 * time.Millisecond)
	s := e.statsJob(q, id)
	within(t, "StatsJob.Age", s.Age, time.Since(end)-e.slack(), time.Since(start)+e.slack())
	want := beanspike.JobStats{ID: id, Tube: "st", State: beanspike.Ready, Priority: 7, TTR: 30 * time.Second, Size: len(body), StoredSize: len(body)}
	s.Age = 0
	wantEqual(t, "StatsJob of a new job", want, *s)

	rs := time.Now()
	e.reserveID(q, id, "st")
	s = e.wantState(q, id, beanspike.Reserved)
	within(t, "StatsJob.TimeLeft of a reserved job", s.TimeLeft, 30*time.Second-time.Since(rs)-e.slack(), 30*time.Second+e.slack())
	if s.Reserves != 1 {
		t.Fatalf("StatsJob.Reserves = %d, want 1", s.Reserves)
	}
	ok(t, q.Release(e.ctx, id, 8, 0), "Release")
	e.reserveID(q, id, "st")
	ok(t, q.Bury(e.ctx, id, 9, "reason"), "Bury")
	ok(t, q.KickJob(e.ctx, id), "KickJob")
	e.reserveID(q, id, "st")
	ok(t, q.Bury(e.ctx, id, 10, "second"), "Bury")
	n, err := q.Kick(e.ctx, "st", 1)
	if err != nil || n != 1 {
		t.Fatalf("Kick = %d, %v; want 1", n, err)
	}
	s = e.wantState(q, id, beanspike.Ready)
	s.Age = 0
	want = beanspike.JobStats{ID: id, Tube: "st", State: beanspike.Ready, Priority: 10, TTR: 30 * time.Second,
		Reserves: 3, Releases: 1, Buries: 2, Kicks: 2, BuryReason: "second", Size: len(body), StoredSize: len(body)}
	wantEqual(t, "StatsJob after 3 reserves, 1 release, 2 buries and 2 kicks", want, *s)
}

func testStatsTube(t *testing.T, e *env) {
	q := e.client()
	_, err := q.StatsTube(e.ctx, "st")
	wantErr(t, err, beanspike.ErrNotFound, "StatsTube of a tube never used")

	urgent := e.putS(q, "st", "urgent", beanspike.WithPriority(beanspike.UrgentPriority-1))
	e.putS(q, "st", "normal", beanspike.WithPriority(beanspike.UrgentPriority))
	e.putS(q, "st", "delayed", beanspike.WithDelay(time.Hour), beanspike.WithPriority(0))
	held := e.putS(q, "st", "held", beanspike.WithPriority(0))
	bu := e.putS(q, "st", "buried", beanspike.WithPriority(0))
	e.putS(q, "other", "x", beanspike.WithPriority(0))
	e.reserveID(q, held, "st")
	e.reserveID(q, bu, "st")
	ok(t, q.Bury(e.ctx, bu, 0, ""), "Bury")
	want := beanspike.TubeStats{Name: "st", Urgent: 1, Ready: 2, Reserved: 1, Delayed: 1, Buried: 1, TotalJobs: 5}
	wantEqual(t, "StatsTube", want, *e.statsTube(q, "st"))
	ok(t, q.Delete(e.ctx, urgent), "Delete")
	ok(t, q.Delete(e.ctx, held), "Delete")
	ok(t, q.Delete(e.ctx, bu), "Delete")
	wantErr(t, q.Delete(e.ctx, bu), beanspike.ErrNotFound, "second Delete")
	want = beanspike.TubeStats{Name: "st", Ready: 1, Delayed: 1, TotalJobs: 5, Deletes: 3}
	wantEqual(t, "StatsTube after 3 deletes", want, *e.statsTube(q, "st"))
	e.putS(q, "st", "more")
	wantEqual(t, "StatsTube after another Put", beanspike.TubeStats{Ready: 2, TotalJobs: 6}, *e.statsTube(q, "st"),
		only[beanspike.TubeStats]("Ready", "TotalJobs"))
	// A tube outlives its jobs.
	for {
		j, err := e.poll(q, "st")
		if err != nil {
			break
		}
		ok(t, q.Delete(e.ctx, j.ID), "Delete")
	}
	_, err = q.Kick(e.ctx, "st", 10)
	ok(t, err, "Kick")
	for {
		j, err := e.poll(q, "st")
		if err != nil {
			break
		}
		ok(t, q.Delete(e.ctx, j.ID), "Delete")
	}
	want = beanspike.TubeStats{Name: "st", TotalJobs: 6, Deletes: 6}
	if s := e.statsTube(q, "st"); *s != want {
		t.Fatalf("StatsTube of an emptied tube = %+v\nwant %+v", *s, want)
	}
	if s := e.statsTube(q, "other"); s.Urgent != 1 || s.Ready != 1 || s.TotalJobs != 1 {
		t.Fatalf("StatsTube(other) = %+v", s)
	}
}

func testStatsTubeWaiting(t *testing.T, e *env) {
	if !e.caps.ExactWaiting {
		t.Skip("the implementation does not count every waiting Reserve (Capabilities.ExactWaiting is false)")
	}
	a, b := e.client(), e.client()
	for _, tube := range []string{"w", "other"} {
		e.putS(a, tube, "x")
		ok(t, a.Delete(e.ctx, e.reserve(a, tube).ID), "Delete")
	}
	if s := e.statsTube(a, "w"); s.Waiting != 0 {
		t.Fatalf("StatsTube.Waiting = %d with nobody waiting", s.Waiting)
	}
	ctx, cancel := context.WithCancel(e.ctx)
	defer cancel()
	ch1 := reserveAsync(ctx, a, "w")
	ch2 := reserveAsync(ctx, b, "w", "other")
	e.waitWaiting(a, "w", 2)
	e.waitWaiting(a, "other", 1)
	cancel()
	for _, ch := range []<-chan reserved{ch1, ch2} {
		if r := e.await(ch, e.wakeBound(), "cancelled Reserve"); !errors.Is(r.err, context.Canceled) {
			t.Fatalf("cancelled Reserve = %v, %v", r.job, r.err)
		}
	}
	e.waitWaiting(a, "w", 0)
	e.waitWaiting(a, "other", 0)
}
