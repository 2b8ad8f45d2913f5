package conformance

import (
	"context"
	"testing"
	"time"

	"github.com/beanspike/beanspike"
)

var reserveTests = []test{
	{"ReserveWokenByPut", testReserveWokenByPut},
	{"ReserveWokenOnAnyTube", testReserveWokenOnAnyTube},
	{"ReserveManyWaiters", testReserveManyWaiters},
	{"ReservePollWithDoneContext", testReservePoll},
	{"ReserveCancel", testReserveCancel},
	{"ReserveDeadline", testReserveDeadline},
}

func testReserveWokenByPut(t *testing.T, e *env) {
	a, b := e.client(), e.client()
	ch := reserveAsync(e.ctx, a, "t")
	e.sleep(20 * time.Millisecond)
	e.notReturned(ch, "Reserve on an empty tube")
	id := e.putS(b, "t", "wake up")
	r := e.await(ch, e.wakeBound(), "Reserve waiting for a Put from another client")
	if r.err != nil || r.job == nil {
		t.Fatalf("woken Reserve = %v, %v; want job %d", r.job, r.err, id)
	}
	wantEqual(t, "woken Reserve", beanspike.Job{ID: id, Body: []byte("wake up")}, *r.job, only[beanspike.Job]("ID", "Body"))
	ok(t, a.Delete(e.ctx, id), "Delete by the client the woken Reserve belongs to")
}

func testReserveWokenOnAnyTube(t *testing.T, e *env) {
	a, b := e.client(), e.client()
	ch := reserveAsync(e.ctx, a, "x", "y", "z")
	e.sleep(20 * time.Millisecond)
	e.putS(b, "other", "not watched")
	e.sleep(20 * time.Millisecond)
	e.notReturned(ch, "Reserve on unwatched tubes")
	id := e.putS(b, "y", "y")
	r := e.await(ch, e.wakeBound(), "Reserve on several tubes")
	if r.err != nil || r.job == nil {
		t.Fatalf("Reserve(x, y, z) = %v, %v; want job %d of y", r.job, r.err, id)
	}
	wantEqual(t, "Reserve(x, y, z)", beanspike.Job{ID: id, Tube: "y"}, *r.job, only[beanspike.Job]("ID", "Tube"))
	// A job released by its holder wakes a waiter too.
	ch = reserveAsync(e.ctx, b, "y")
	e.waitWaiting(b, "y", 1)
	ok(t, a.Release(e.ctx, id, 1, 0), "Release")
	r = e.await(ch, e.wakeBound(), "Reserve waiting for a released job")
	if r.err != nil || r.job.ID != id {
		t.Fatalf("Reserve after Release = %v, %v; want job %d", r.job, r.err, id)
	}
	// And so does a kicked one.
	ok(t, b.Bury(e.ctx, id, 1, ""), "Bury")
	ch = reserveAsync(e.ctx, a, "y")
	e.waitWaiting(a, "y", 1)
	ok(t, b.KickJob(e.ctx, id), "KickJob")
	r = e.await(ch, e.wakeBound(), "Reserve waiting for a kicked job")
	if r.err != nil || r.job.ID != id {
		t.Fatalf("Reserve after KickJob = %v, %v; want job %d", r.job, r.err, id)
	}
}

func testReserveManyWaiters(t *testing.T, e *env) {
	const n = 4
	p := e.client()
	var chs []<-chan reserved
	var qs []beanspike.Queue
	for range n {
		q := e.client()
		qs = append(qs, q)
		chs = append(chs, reserveAsync(e.ctx, q, "t"))
	}
	e.sleep(50 * time.Millisecond)
	ids := make(map[beanspike.ID]bool)
	for range n {
		ids[e.putS(p, "t", "x")] = true
	}
	for i, ch := range chs {
		r := e.await(ch, e.wakeBound(), "one of several waiters")
		if r.err != nil {
			t.Fatalf("waiter %d: %v", i, r.err)
		}
		if !ids[r.job.ID] {
			t.Fatalf("waiter %d got job %d, which is not one of the jobs put or was given to another waiter", i, r.job.ID)
		}
		delete(ids, r.job.ID)
		ok(t, qs[i].Delete(e.ctx, r.job.ID), "Delete by waiter %d", i)
	}
}

func testReservePoll(t *testing.T, e *env) {
	q := e.client()
	id := e.putS(q, "t", "x")
	cancelled, cancel := context.WithCancel(e.ctx)
	cancel()
	expired, cancel2 := context.WithDeadline(e.ctx, time.Now().Add(-time.Second))
	defer cancel2()
	for _, ctx := range []context.Context{cancelled, expired} {
		j, err := q.Reserve(ctx, "t")
		if err != nil || j == nil || j.ID != id {
			t.Fatalf("Reserve with a done context and a ready job = %v, %v; want job %d", j, err, id)
		}
		j, err = q.Reserve(ctx, "t")
		if err != ctx.Err() {
			t.Fatalf("Reserve with a done context and no ready job: err = %v, want %v unwrapped", err, ctx.Err())
		}
		if j != nil {
			t.Fatalf("Reserve returned job %v with error %v", j, err)
		}
		ok(t, q.Release(e.ctx, id, 1, 0), "Release")
	}
	// A done context also polls several tubes and ignores paused ones.
	ok(t, q.PauseTube(e.ctx, "t", time.Hour), "PauseTube")
	e.pollNone(q, "t", "u")
	id2 := e.putS(q, "u", "y")
	if j, err := e.poll(q, "t", "u"); err != nil || j.ID != id2 {
		t.Fatalf("poll of t (paused) and u = %v, %v; want job %d", j, err, id2)
	}
}

func testReserveCancel(t *testing.T, e *env) {
	q := e.client()
	ctx, cancel := context.WithCancel(e.ctx)
	ch := reserveAsync(ctx, q, "t")
	e.sleep(20 * time.Millisecond)
	e.notReturned(ch, "Reserve on an empty tube")
	cancel()
	r := e.await(ch, e.wakeBound(), "cancelled Reserve")
	if r.err != context.Canceled {
		t.Fatalf("cancelled Reserve = %v, %v; want context.Canceled unwrapped", r.job, r.err)
	}
	if r.job != nil {
		t.Fatalf("cancelled Reserve returned job %v", r.job)
	}
	// The cancelled Reserve took nothing.
	id := e.putS(q, "t", "x")
	e.reserveID(q, id, "t")
	if s := e.statsJob(q, id); s.Reserves != 1 {
		t.Fatalf("StatsJob after a cancelled Reserve = %+v, want 1 reserve", s)
	}
}

func testReserveDeadline(t *testing.T, e *env) {
	q := e.client()
	start := time.Now()
	ctx, cancel := context.WithTimeout(e.ctx, 50*time.Millisecond)
	defer cancel()
	j, err := q.Reserve(ctx, "t")
	if err != context.DeadlineExceeded {
		t.Fatalf("Reserve past its deadline = %v, %v; want context.DeadlineExceeded unwrapped", j, err)
	}
	if el := time.Since(start); el < 50*time.Millisecond {
		t.Fatalf("Reserve returned the deadline error after %s, before the 50ms deadline", el)
	}
}
