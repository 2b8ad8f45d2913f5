package conformance

import (
	"fmt"
	"testing"
	"time"

	"github.com/beanspike/beanspike"
)

var stateTests = []test{
	{"Release", testRelease},
	{"Bury", testBury},
	{"Kick", testKick},
	{"KickJob", testKickJob},
	{"ReserveJob", testReserveJob},
}

func testRelease(t *testing.T, e *env) {
	q := e.client()
	id := e.putS(q, "t", "x", beanspike.WithPriority(2000))
	e.reserveID(q, id, "t")
	ok(t, q.Release(e.ctx, id, 42, 0), "Release(%d, 42, 0)", id)
	s := e.wantState(q, id, beanspike.Ready)
	wantEqual(t, "StatsJob after Release(pri 42)", beanspike.JobStats{Priority: 42, Releases: 1, Reserves: 1}, *s,
		only[beanspike.JobStats]("Priority", "Releases", "Reserves", "TimeLeft"))
	wantEqual(t, "StatsTube after releasing an urgent job", beanspike.TubeStats{Urgent: 1, Ready: 1}, *e.statsTube(q, "t"),
		only[beanspike.TubeStats]("Urgent", "Ready", "Reserved"))
	j := e.reserveID(q, id, "t")
	wantEqual(t, "job after Release", beanspike.Job{Body: []byte("x"), Priority: 42, Reserves: 2}, *j,
		only[beanspike.Job]("Body", "Priority", "Reserves"))
	ok(t, q.Release(e.ctx, id, 3000, 0), "second Release")
	wantEqual(t, "StatsJob after a second Release(pri 3000)", beanspike.JobStats{Priority: 3000, Releases: 2},
		*e.wantState(q, id, beanspike.Ready), only[beanspike.JobStats]("Priority", "Releases"))
	wantEqual(t, "StatsTube with one non-urgent ready job", beanspike.TubeStats{Ready: 1}, *e.statsTube(q, "t"),
		only[beanspike.TubeStats]("Urgent", "Ready"))
}

func testBury(t *testing.T, e *env) {
	q := e.client()
	id := e.putS(q, "t", "x")
	e.reserveID(q, id, "t")
	ok(t, q.Bury(e.ctx, id, 11, "broken input"), "Bury")
	s := e.wantState(q, id, beanspike.Buried)
	wantEqual(t, `StatsJob after Bury(pri 11, "broken input")`, beanspike.JobStats{Priority: 11, Buries: 1, BuryReason: "broken input"}, *s,
		only[beanspike.JobStats]("Priority", "Buries", "BuryReason", "TimeLeft"))
	wantEqual(t, "StatsTube with one buried job", beanspike.TubeStats{Buried: 1}, *e.statsTube(q, "t"),
		only[beanspike.TubeStats]("Buried", "Ready", "Reserved", "Urgent"))
	e.pollNone(q, "t")
	p, err := q.PeekBuried(e.ctx, "t")
	ok(t, err, "PeekBuried")
	wantEqual(t, "PeekBuried", beanspike.Job{ID: id, Body: []byte("x"), Priority: 11}, *p,
		only[beanspike.Job]("ID", "Body", "Priority"))
	ok(t, q.KickJob(e.ctx, id), "KickJob")
	j := e.reserveID(q, id, "t")
	wantEqual(t, "job after Bury and Kick", beanspike.Job{Priority: 11, Reserves: 2}, *j,
		only[beanspike.Job]("Priority", "Reserves"))
	ok(t, q.Bury(e.ctx, id, 12, "again"), "second Bury")
	wantEqual(t, "StatsJob after a second Bury", beanspike.JobStats{Priority: 12, Buries: 2, Kicks: 1, BuryReason: "again"},
		*e.wantState(q, id, beanspike.Buried), only[beanspike.JobStats]("Priority", "Buries", "Kicks", "BuryReason"))
}

func testKick(t *testing.T, e *env) {
	q := e.client()
	var b [3]beanspike.ID
	for i := range b {
		b[i] = e.putS(q, "k", "buried")
		e.reserveID(q, b[i], "k")
	}
	// Buried in the order b2, b0, b1: Kick goes by bury time, not by ID.
	for _, i := range []int{2, 0, 1} {
		ok(t, q.Bury(e.ctx, b[i], 5, ""), "Bury(%d)", b[i])
	}
	late := e.putS(q, "k", "late", beanspike.WithDelay(2*time.Hour))
	soon := e.putS(q, "k", "soon", beanspike.WithDelay(time.Hour))
	ready := e.putS(q, "k", "ready", beanspike.WithPriority(9))
	ids := []beanspike.ID{b[0], b[1], b[2], late, soon, ready}

	kick := func(n, want int) {
		t.Helper()
		got, err := q.Kick(e.ctx, "k", n)
		ok(t, err, "Kick(k, %d)", n)
		if got != want {
			t.Fatalf("Kick(k, %d) = %d, want %d", n, got, want)
		}
	}
	counts := func(ready, delayed, buried int) {
		t.Helper()
		s := e.statsTube(q, "k")
		if s.Ready != ready || s.Delayed != delayed || s.Buried != buried || s.Reserved != 0 {
			t.Fatalf("StatsTube(k) = %+v, want %d ready, %d delayed, %d buried", s, ready, delayed, buried)
		}
	}
	counts(1, 2, 3)
	before := snapshot(t, e.ctx, q, ids)
	kick(0, 0)
	if after := snapshot(t, e.ctx, q, ids); !before.equal(after) {
		t.Fatalf("Kick(k, 0) changed the store:\nbefore %s\nafter  %s", before, after)
	}
	kick(2, 2)
	counts(3, 2, 1)
	for _, id := range []beanspike.ID{b[2], b[0]} {
		if s := e.wantState(q, id, beanspike.Ready); s.Kicks != 1 {
			t.Fatalf("kicked job %d: %+v, want 1 kick", id, s)
		}
	}
	e.wantState(q, b[1], beanspike.Buried)
	kick(10, 1) // buried jobs only, while there are any
	counts(4, 2, 0)
	e.wantState(q, b[1], beanspike.Ready)
	kick(1, 1) // then delayed jobs, due soonest first
	counts(5, 1, 0)
	if s := e.wantState(q, soon, beanspike.Ready); s.Kicks != 1 {
		t.Fatalf("kicked delayed job: %+v, want 1 kick", s)
	}
	e.wantState(q, late, beanspike.Delayed)
	kick(10, 1)
	counts(6, 0, 0)
	kick(10, 0)
	// Kicked jobs keep their priority and are reservable.
	j := e.reserve(q, "k")
	if j.Priority != 5 {
		t.Fatalf("first reserve after the kicks: %v, want a kicked job of priority 5", j)
	}
}

func testKickJob(t *testing.T, e *env) {
	q := e.client()
	bu := e.putS(q, "t", "buried")
	e.reserveID(q, bu, "t")
	ok(t, q.Bury(e.ctx, bu, 1, ""), "Bury")
	de := e.putS(q, "t", "delayed", beanspike.WithDelay(time.Hour), beanspike.WithPriority(2))
	re := e.putS(q, "t", "ready", beanspike.WithPriority(3))
	held := e.putS(q, "u", "held")
	e.reserveID(q, held, "u")
	gone := e.putS(q, "u", "gone")
	ok(t, q.Delete(e.ctx, gone), "Delete")

	for id, what := range map[beanspike.ID]string{re: "ready", held: "reserved", gone: "deleted"} {
		before := snapshot(t, e.ctx, q, []beanspike.ID{bu, de, re, held})
		wantErr(t, q.KickJob(e.ctx, id), beanspike.ErrNotFound, "KickJob of a %s job", what)
		if after := snapshot(t, e.ctx, q, []beanspike.ID{bu, de, re, held}); !before.equal(after) {
			t.Fatalf("refused KickJob changed the store:\nbefore %s\nafter  %s", before, after)
		}
	}
	ok(t, q.KickJob(e.ctx, de), "KickJob of a delayed job")
	if s := e.wantState(q, de, beanspike.Ready); s.Kicks != 1 || s.TimeLeft != 0 {
		t.Fatalf("kicked delayed job: %+v", s)
	}
	ok(t, q.KickJob(e.ctx, bu), "KickJob of a buried job")
	if s := e.wantState(q, bu, beanspike.Ready); s.Kicks != 1 {
		t.Fatalf("kicked buried job: %+v", s)
	}
	e.reserveID(q, bu, "t")
	e.reserveID(q, de, "t")
	e.reserveID(q, re, "t")
}

func testReserveJob(t *testing.T, e *env) {
	a, b := e.client(), e.client()
	urgent := e.putS(a, "t", "urgent", beanspike.WithPriority(0))
	re := e.putS(a, "t", "ready", beanspike.WithPriority(5))
	de := e.putS(a, "t", "delayed", beanspike.WithDelay(time.Hour))
	bu := e.putS(a, "u", "buried")
	e.reserveID(a, bu, "u")
	ok(t, a.Bury(e.ctx, bu, 1, "x"), "Bury")
	gone := e.putS(a, "u", "gone")
	ok(t, a.Delete(e.ctx, gone), "Delete")

	for _, c := range []struct {
		id       beanspike.ID
		tube     string
		body     string
		from     beanspike.State
		reserves uint32
	}{{re, "t", "ready", beanspike.Ready, 1}, {de, "t", "delayed", beanspike.Delayed, 1}, {bu, "u", "buried", beanspike.Buried, 2}} {
		j, err := b.ReserveJob(e.ctx, c.id)
		ok(t, err, "ReserveJob(%d) of a %v job", c.id, c.from)
		if j == nil {
			t.Fatalf("ReserveJob(%d) of a %v job returned no job", c.id, c.from)
		}
		wantEqual(t, fmt.Sprintf("ReserveJob(%d) of a %v job", c.id, c.from),
			beanspike.Job{ID: c.id, Tube: c.tube, Body: []byte(c.body), Reserves: c.reserves}, *j,
			only[beanspike.Job]("ID", "Tube", "Body", "Reserves"))
		e.wantState(a, c.id, beanspike.Reserved)
		_, err = a.ReserveJob(e.ctx, c.id)
		wantErr(t, err, beanspike.ErrNotFound, "ReserveJob of a job another client holds")
		_, err = b.ReserveJob(e.ctx, c.id)
		wantErr(t, err, beanspike.ErrNotFound, "ReserveJob of a job this client holds")
		wantErr(t, a.Touch(e.ctx, c.id), beanspike.ErrNotReserved, "Touch by another client")
		ok(t, b.Touch(e.ctx, c.id), "holder's Touch after ReserveJob")
	}
	_, err := b.ReserveJob(e.ctx, gone)
	wantErr(t, err, beanspike.ErrNotFound, "ReserveJob of a deleted job")
	if s := e.statsTube(a, "t"); s.Reserved != 2 || s.Ready != 1 || s.Delayed != 0 {
		t.Fatalf("StatsTube(t) after two ReserveJobs = %+v", s)
	}
	e.reserveID(a, urgent, "t")
	e.pollNone(a, "t", "u")
	ok(t, b.Release(e.ctx, de, 7, 0), "Release of a job reserved with ReserveJob")
	ok(t, b.Delete(e.ctx, bu), "Delete of a job reserved with ReserveJob")
	ok(t, b.Bury(e.ctx, re, 1, "y"), "Bury of a job reserved with ReserveJob")
	e.reserveID(a, de, "t")
}
