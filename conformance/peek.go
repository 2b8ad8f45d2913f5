package conformance

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/beanspike/beanspike"
)

var peekTests = []test{
	{"Peek", testPeek},
	{"PeekStates", testPeekStates},
	{"PeekEmpty", testPeekEmpty},
}

func testPeek(t *testing.T, e *env) {
	a, b := e.client(), e.client()
	re := e.putS(a, "t", "ready", beanspike.WithPriority(3), beanspike.WithTTR(5*time.Second))
	de := e.putS(a, "t", "delayed", beanspike.WithDelay(time.Hour))
	rs := e.putS(a, "u", "reserved", beanspike.WithPriority(4))
	bu := e.putS(a, "v", "buried")
	e.reserveID(a, rs, "u")
	e.reserveID(a, bu, "v")
	ok(t, a.Bury(e.ctx, bu, 8, ""), "Bury")

	for _, c := range []struct {
		id         beanspike.ID
		tube, body string
		pri        uint32
		reserves   uint32
		state      beanspike.State
	}{
		{re, "t", "ready", 3, 0, beanspike.Ready},
		{de, "t", "delayed", beanspike.DefaultPriority, 0, beanspike.Delayed},
		{rs, "u", "reserved", 4, 1, beanspike.Reserved},
		{bu, "v", "buried", 8, 1, beanspike.Buried},
	} {
		for _, q := range []beanspike.Queue{a, b} {
			j, err := q.Peek(e.ctx, c.id)
			ok(t, err, "Peek(%d) of a %v job", c.id, c.state)
			checkJob(t, j)
			wantEqual(t, fmt.Sprintf("Peek(%d) of a %v job", c.id, c.state),
				beanspike.Job{ID: c.id, Tube: c.tube, Body: []byte(c.body), Priority: c.pri, Reserves: c.reserves}, *j,
				only[beanspike.Job]("ID", "Tube", "Body", "Priority", "Reserves"))
			e.wantState(q, c.id, c.state)
		}
	}
	if j, _ := a.Peek(e.ctx, re); j.TTR != 5*time.Second {
		t.Fatalf("Peek.TTR = %s, want 5s", j.TTR)
	}
	// Peeking reserved nothing.
	if s := e.statsJob(a, re); s.Reserves != 0 {
		t.Fatalf("Peek counted a reserve: %+v", s)
	}
	e.reserveID(b, re, "t")
}

func testPeekStates(t *testing.T, e *env) {
	q := e.client()
	wantPeek := func(name string, peek func(context.Context, string) (*beanspike.Job, error), tube string, id beanspike.ID) {
		t.Helper()
		j, err := peek(e.ctx, tube)
		if err != nil || j == nil || j.ID != id {
			t.Fatalf("%s(%q) = %v, %v; want job %d", name, tube, j, err, id)
		}
	}
	r1 := e.putS(q, "t", "r1", beanspike.WithPriority(9))
	r2 := e.putS(q, "t", "r2", beanspike.WithPriority(9))
	wantPeek("PeekReady", q.PeekReady, "t", r1)
	r3 := e.putS(q, "t", "r3", beanspike.WithPriority(8))
	wantPeek("PeekReady", q.PeekReady, "t", r3)
	e.reserveID(q, r3, "t")
	ok(t, q.Release(e.ctx, r3, 9, 0), "Release")
	wantPeek("PeekReady", q.PeekReady, "t", r1) // r3 is now last of the 9s
	ok(t, q.PauseTube(e.ctx, "t", time.Hour), "PauseTube")
	wantPeek("PeekReady on a paused tube", q.PeekReady, "t", r1)
	ok(t, q.PauseTube(e.ctx, "t", 0), "PauseTube(0)")
	e.reserveID(q, r1, "t")
	e.reserveID(q, r2, "t")

	d1 := e.putS(q, "t", "d1", beanspike.WithDelay(3*time.Hour))
	d2 := e.putS(q, "t", "d2", beanspike.WithDelay(time.Hour))
	d3 := e.putS(q, "t", "d3", beanspike.WithDelay(2*time.Hour))
	wantPeek("PeekDelayed", q.PeekDelayed, "t", d2)
	ok(t, q.KickJob(e.ctx, d2), "KickJob")
	wantPeek("PeekDelayed", q.PeekDelayed, "t", d3)
	ok(t, q.KickJob(e.ctx, d3), "KickJob")
	wantPeek("PeekDelayed", q.PeekDelayed, "t", d1)

	var bs []beanspike.ID
	for range 3 {
		bs = append(bs, e.putS(q, "b", "x"))
	}
	for _, id := range bs {
		e.reserveID(q, id, "b")
	}
	for _, i := range []int{1, 2, 0} {
		ok(t, q.Bury(e.ctx, bs[i], uint32(10-i), ""), "Bury")
	}
	wantPeek("PeekBuried", q.PeekBuried, "b", bs[1])
	ok(t, q.KickJob(e.ctx, bs[1]), "KickJob")
	wantPeek("PeekBuried", q.PeekBuried, "b", bs[2])
	wantEqual(t, "job after PeekBuried", beanspike.JobStats{State: beanspike.Buried, Reserves: 1}, *e.statsJob(q, bs[2]),
		only[beanspike.JobStats]("State", "Reserves"))
}

func testPeekEmpty(t *testing.T, e *env) {
	q := e.client()
	id := e.putS(q, "t", "x")
	e.reserveID(q, id, "t")
	for _, tube := range []string{"t", "never-used"} {
		for name, peek := range map[string]func(context.Context, string) (*beanspike.Job, error){
			"PeekReady": q.PeekReady, "PeekDelayed": q.PeekDelayed, "PeekBuried": q.PeekBuried,
		} {
			j, err := peek(e.ctx, tube)
			wantErr(t, err, beanspike.ErrNotFound, "%s(%q) with no job in that state (got %v)", name, tube, j)
		}
	}
}
