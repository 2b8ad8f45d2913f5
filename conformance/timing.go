package conformance

import (
	"context"
	"errors"
	"fmt"
	"math"
	"sync"
	"testing"
	"time"

	"github.com/beanspike/beanspike"
)

var timeTests = []test{
	{"Delay", testDelay},
	{"ReadyAt", testReadyAt},
	{"ReleaseWithDelay", testReleaseWithDelay},
	{"TTRExpiry", testTTRExpiry},
	{"TouchExtendsTTR", testTouch},
	{"MinTTR", testMinTTR},
	{"HugeDurations", testHugeDurations},
}

// shortDelay is a delay long enough to observe a job as delayed before it
// becomes ready, given the declared slack.
func (e *env) shortDelay() time.Duration {
	return max(300*time.Millisecond, 3*e.slack())
}

// ttr is a time-to-run long enough to touch a job half-way and still tell
// the touched deadline from the old one, given the declared slack; whole
// seconds, at least MinTTR.
func (e *env) ttr() time.Duration {
	d := max(beanspike.MinTTR, 4*e.slack())
	return (d + time.Second - 1) / time.Second * time.Second
}

// reserveBy blocks in Reserve until at most deadline plus wakeBound, and
// returns the job with the time Reserve returned. It also sets a timer of
// its own for deadline and returns when that timer fired (zero if it had
// not when Reserve returned): on a loaded machine the suite's own timer is
// late too, and readyBetween does not blame the implementation for that.
func (e *env) reserveBy(q beanspike.Queue, deadline time.Time, tubes ...string) (*beanspike.Job, time.Time, time.Time) {
	e.t.Helper()
	var (
		mu    sync.Mutex
		fired time.Time
	)
	probe := time.AfterFunc(time.Until(deadline), func() {
		mu.Lock()
		fired = time.Now()
		mu.Unlock()
	})
	ctx, cancel := context.WithDeadline(e.ctx, deadline.Add(e.wakeBound()))
	defer cancel()
	j, err := q.Reserve(ctx, tubes...)
	at := time.Now()
	probe.Stop()
	if err != nil {
		e.t.Fatalf("Reserve(%q): %v (waited until %s past the expected time)", tubes, err, at.Sub(deadline))
	}
	checkJob(e.t, j)
	mu.Lock()
	defer mu.Unlock()
	return j, at, fired
}

// readyBetween checks that a job that had to become ready in [lo, hi] (hi
// not counting the slack) was reserved at in that window. probe is when
// the suite's own timer for hi fired, or zero if it had not fired when
// Reserve returned.
func (e *env) readyBetween(what string, at, lo, hi, probe time.Time) {
	e.t.Helper()
	if at.Before(lo) {
		e.t.Fatalf("%s: reserved %s too early", what, lo.Sub(at))
	}
	late := at.Sub(hi)
	if late <= e.slack() {
		return
	}
	if probe.IsZero() {
		e.t.Logf("%s: reserved %s late, but the machine is loaded: a timer of the suite's own had not fired yet", what, late)
		return
	}
	if at.Sub(probe) <= e.slack() {
		e.t.Logf("%s: reserved %s late, but the machine is loaded: a timer of the suite's own fired %s late", what, late, probe.Sub(hi))
		return
	}
	e.t.Fatalf("%s: reserved %s late, more than the declared TimeSlack of %s (a timer of the suite's own fired %s late)", what, late, e.slack(), probe.Sub(hi))
}

// settled waits until target and checks cond; when cond does not hold
// yet and the wait itself overran (a loaded machine), it gives the
// implementation as long again before failing with what.
func (e *env) settled(target time.Time, what string, cond func() (bool, string)) {
	e.t.Helper()
	e.sleepUntil(target)
	overrun := time.Since(target)
	good, got := cond()
	if good {
		return
	}
	if overrun > e.slack()/2 {
		e.sleep(overrun)
		if good, got = cond(); good {
			return
		}
	}
	e.t.Fatalf("%s: %s", what, got)
}

// testReadyAt: a job put WithReadyAt(t) is delayed until t; one whose t
// has passed is ready at once.
func testReadyAt(t *testing.T, e *env) {
	q := e.client()
	d := e.shortDelay()
	at := time.Now().Add(d)
	id := e.putS(q, "t", "at", beanspike.WithReadyAt(at))
	putEnd := time.Now()
	if time.Now().Before(at) {
		if s := e.statsJob(q, id); s.State != beanspike.Delayed {
			t.Fatalf("job put WithReadyAt %s ahead is %v, want delayed", d, s.State)
		}
	}
	past := e.putS(q, "p", "past", beanspike.WithReadyAt(time.Now().Add(-time.Hour)))
	if s := e.statsJob(q, past); s.State != beanspike.Ready || s.Delay != 0 {
		t.Fatalf("job put WithReadyAt an hour ago = %v with delay %s, want ready and no delay", s.State, s.Delay)
	}
	j, when, probe := e.reserveBy(q, putEnd.Add(d), "t")
	if j.ID != id {
		t.Fatalf("Reserve = job %d, want %d", j.ID, id)
	}
	e.readyBetween("job put WithReadyAt", when, at, putEnd.Add(d), probe)
}

func testDelay(t *testing.T, e *env) {
	q := e.client()
	d := e.shortDelay()
	start := time.Now()
	id := e.putS(q, "t", "later", beanspike.WithDelay(d), beanspike.WithPriority(3))
	putEnd := time.Now()

	s := e.statsJob(q, id)
	if elapsed := time.Since(start); elapsed < d {
		if s.State != beanspike.Delayed {
			t.Fatalf("job put with delay %s is %v after %s, want delayed", d, s.State, elapsed)
		}
		within(t, "StatsJob.TimeLeft of a delayed job", s.TimeLeft, d-elapsed-e.slack(), d+e.slack())
	} else {
		t.Logf("machine too slow to observe the delayed state (%s elapsed)", elapsed)
	}
	if s.Delay != d {
		t.Fatalf("StatsJob.Delay = %s, want %s", s.Delay, d)
	}
	if p, err := q.PeekDelayed(e.ctx, "t"); err != nil || p.ID != id {
		t.Fatalf("PeekDelayed = %v, %v; want job %d", p, err, id)
	}
	j, err := e.poll(q, "t")
	if elapsed := time.Since(start); elapsed < d {
		if err == nil {
			t.Fatalf("Reserve returned delayed job %d %s after its Put, before its delay of %s", j.ID, elapsed, d)
		}
		if _, err := q.PeekReady(e.ctx, "t"); !errors.Is(err, beanspike.ErrNotFound) {
			t.Fatalf("PeekReady with only a delayed job: err = %v, want ErrNotFound", err)
		}
		st := e.statsTube(q, "t")
		if st.Delayed != 1 || st.Ready != 0 || st.Urgent != 0 {
			t.Fatalf("StatsTube with one delayed job = %+v", st)
		}
	}

	j, at, probe := e.reserveBy(q, putEnd.Add(d), "t")
	if j.ID != id {
		t.Fatalf("Reserve = job %d, want %d", j.ID, id)
	}
	e.readyBetween("delayed job", at, start.Add(d), putEnd.Add(d), probe)
	s = e.wantState(q, id, beanspike.Reserved)
	if s.Reserves != 1 || s.Delay != d {
		t.Fatalf("StatsJob after the delay = %+v, want 1 reserve, delay %s", s, d)
	}
}

func testReleaseWithDelay(t *testing.T, e *env) {
	q := e.client()
	id := e.putS(q, "t", "again", beanspike.WithPriority(100))
	e.reserveID(q, id, "t")
	d := e.shortDelay()
	start := time.Now()
	ok(t, q.Release(e.ctx, id, 9, d), "Release(%d, 9, %s)", id, d)
	end := time.Now()

	s := e.statsJob(q, id)
	if elapsed := time.Since(start); elapsed < d {
		if s.State != beanspike.Delayed {
			t.Fatalf("job released with delay %s is %v after %s, want delayed", d, s.State, elapsed)
		}
		within(t, "StatsJob.TimeLeft of a released delayed job", s.TimeLeft, d-elapsed-e.slack(), d+e.slack())
	}
	if s.Delay != d || s.Priority != 9 || s.Releases != 1 || s.Reserves != 1 {
		t.Fatalf("StatsJob after Release(pri 9, delay %s) = %+v", d, s)
	}
	_, err := e.poll(q, "t")
	if elapsed := time.Since(start); elapsed < d && err == nil {
		t.Fatalf("Reserve returned a job released with delay %s after only %s", d, elapsed)
	}
	j, at, probe := e.reserveBy(q, end.Add(d), "t")
	if j.ID != id || j.Priority != 9 || j.Reserves != 2 {
		t.Fatalf("Reserve = %v (reserves %d), want job %d with priority 9, 2 reserves", j, j.Reserves, id)
	}
	e.readyBetween("released delayed job", at, start.Add(d), end.Add(d), probe)
}

func testTTRExpiry(t *testing.T, e *env) {
	a, b := e.client(), e.client()
	ttr := beanspike.MinTTR
	x := e.putS(a, "x", "x", beanspike.WithTTR(ttr))
	y := e.putS(a, "y", "y", beanspike.WithTTR(ttr))
	rs := time.Now()
	jx := e.reserveID(a, x, "x")
	e.reserveID(a, y, "y")
	re := time.Now()
	if jx.TTR != ttr {
		t.Fatalf("reserved job has TTR %s, want %s", jx.TTR, ttr)
	}
	s := e.statsJob(a, x)
	within(t, "StatsJob.TimeLeft of a reserved job", s.TimeLeft, ttr-time.Since(rs)-e.slack(), ttr+e.slack())

	// b waits for x, which returns to ready when a's reservation lapses.
	j, at, probe := e.reserveBy(b, re.Add(ttr), "x")
	if j.ID != x {
		t.Fatalf("b reserved job %d, want %d", j.ID, x)
	}
	e.readyBetween("job whose reservation lapsed", at, rs.Add(ttr), re.Add(ttr), probe)
	if j.Reserves != 2 {
		t.Fatalf("Job.Reserves = %d after a lapse and a new reservation, want 2", j.Reserves)
	}
	s = e.wantState(b, x, beanspike.Reserved)
	if s.Timeouts != 1 || s.Reserves != 2 {
		t.Fatalf("StatsJob after a lapse = %+v, want 1 timeout, 2 reserves", s)
	}
	// a lost x: every holder-only call is refused and changes nothing.
	wantErr(t, a.Touch(e.ctx, x), beanspike.ErrNotReserved, "old holder's Touch")
	wantErr(t, a.Release(e.ctx, x, 1, 0), beanspike.ErrNotReserved, "old holder's Release")
	wantErr(t, a.Bury(e.ctx, x, 1, "no"), beanspike.ErrNotReserved, "old holder's Bury")
	wantErr(t, a.Delete(e.ctx, x), beanspike.ErrNotReserved, "old holder's Delete of a job another client holds")
	e.wantState(b, x, beanspike.Reserved)
	ok(t, b.Touch(e.ctx, x), "new holder's Touch")
	ok(t, b.Delete(e.ctx, x), "new holder's Delete")

	// y lapsed with nobody waiting: it is ready again.
	e.settled(re.Add(ttr+e.slack()), "job whose reservation lapsed with nobody waiting", func() (bool, string) {
		s := e.statsJob(a, y)
		return s.State == beanspike.Ready && s.Timeouts == 1 && s.Reserves == 1 && s.TimeLeft == 0,
			fmt.Sprintf("StatsJob = %+v, want ready, 1 timeout, 1 reserve, no time left", *s)
	})
	wantErr(t, a.Touch(e.ctx, y), beanspike.ErrNotReserved, "Touch of a lapsed job")
	wantErr(t, a.Release(e.ctx, y, 1, 0), beanspike.ErrNotReserved, "Release of a lapsed job")
	wantErr(t, a.Bury(e.ctx, y, 1, "no"), beanspike.ErrNotReserved, "Bury of a lapsed job")
	s2 := e.wantState(a, y, beanspike.Ready)
	if s2.Releases != 0 || s2.Buries != 0 || s2.Priority != beanspike.DefaultPriority {
		t.Fatalf("refused calls changed the job: %+v", s2)
	}
	e.reserveID(b, y, "y")
}

func testTouch(t *testing.T, e *env) {
	a, b := e.client(), e.client()
	ttr := e.ttr()
	var (
		id             beanspike.ID
		rs, re, ts, te time.Time
	)
	for attempt := 1; ; attempt++ {
		id = e.putS(a, "t", "long", beanspike.WithTTR(ttr))
		rs = time.Now()
		e.reserveID(a, id, "t")
		re = time.Now()
		e.sleepUntil(rs.Add(ttr / 2))
		ts = time.Now()
		err := a.Touch(e.ctx, id)
		te = time.Now()
		if err == nil {
			break
		}
		if !errors.Is(err, beanspike.ErrNotReserved) || te.Before(rs.Add(ttr)) {
			t.Fatalf("Touch(%d) %s after reserving it, TTR %s: %v", id, ts.Sub(re), ttr, err)
		}
		// The machine is so loaded that the reservation lapsed before
		// the Touch: try again with a new job.
		t.Logf("attempt %d: the reservation lapsed before Touch, %s after Reserve (machine loaded)", attempt, te.Sub(rs))
		if attempt == 3 {
			t.Skipf("machine too loaded to touch a job within its TTR of %s", ttr)
		}
		ok(t, a.Delete(e.ctx, id), "Delete")
	}
	s := e.statsJob(a, id)
	within(t, "StatsJob.TimeLeft after Touch", s.TimeLeft, ttr-time.Since(ts)-e.slack(), ttr+e.slack())

	// Past the first deadline, the job is still a's.
	e.sleepUntil(re.Add(ttr + e.slack()))
	s = e.statsJob(a, id)
	if time.Since(ts) < ttr {
		if s.State != beanspike.Reserved || s.Timeouts != 0 {
			t.Fatalf("touched job is %v with %d timeouts %s after Touch (TTR %s), want reserved", s.State, s.Timeouts, time.Since(ts), ttr)
		}
	} else {
		t.Logf("machine too slow to check the touched reservation (%s since Touch)", time.Since(ts))
	}

	j, at, probe := e.reserveBy(b, te.Add(ttr), "t")
	if j.ID != id {
		t.Fatalf("b reserved job %d, want %d", j.ID, id)
	}
	e.readyBetween("touched job whose reservation lapsed", at, ts.Add(ttr), te.Add(ttr), probe)
	if s := e.statsJob(b, id); s.Timeouts != 1 || s.Reserves != 2 {
		t.Fatalf("StatsJob after the touched reservation lapsed = %+v, want 1 timeout, 2 reserves", s)
	}
}

func testMinTTR(t *testing.T, e *env) {
	q := e.client()
	for _, d := range []time.Duration{0, time.Nanosecond, 10 * time.Millisecond, beanspike.MinTTR - 1} {
		id := e.putS(q, "t", "x", beanspike.WithTTR(d))
		if s := e.statsJob(q, id); s.TTR != beanspike.MinTTR {
			t.Fatalf("StatsJob.TTR of a job put WithTTR(%s) = %s, want MinTTR %s", d, s.TTR, beanspike.MinTTR)
		}
		j, err := q.Peek(e.ctx, id)
		ok(t, err, "Peek(%d)", id)
		if j.TTR != beanspike.MinTTR {
			t.Fatalf("Peek(%d).TTR = %s, want %s", id, j.TTR, beanspike.MinTTR)
		}
		ok(t, q.Delete(e.ctx, id), "Delete(%d)", id)
	}
	id := e.putS(q, "t", "x", beanspike.WithTTR(90*time.Second))
	if s := e.statsJob(q, id); s.TTR != 90*time.Second {
		t.Fatalf("StatsJob.TTR of a job put WithTTR(90s) = %s", s.TTR)
	}
}

// testHugeDurations checks that the longest durations a caller can give
// are kept as given instead of wrapping around: a job put with the
// largest TTR stays reserved, jobs put or released with the largest delay
// stay delayed, and a tube paused for the largest duration stays paused.
func testHugeDurations(t *testing.T, e *env) {
	q := e.client()
	const huge = time.Duration(math.MaxInt64)
	held := e.putS(q, "h", "held", beanspike.WithTTR(huge), beanspike.WithPriority(1))
	if j := e.reserveID(q, held, "h"); j.TTR != huge {
		t.Fatalf("Job.TTR of a job put WithTTR(%d) = %d", huge, j.TTR)
	}
	delayed := e.putS(q, "h", "delayed", beanspike.WithDelay(huge))
	released := e.putS(q, "h", "released", beanspike.WithPriority(2))
	e.reserveID(q, released, "h")
	ok(t, q.Release(e.ctx, released, 2, huge), "Release with a delay of %d", huge)
	ok(t, q.PauseTube(e.ctx, "p", huge), "PauseTube(p, %d)", huge)
	e.putS(q, "p", "paused")
	ok(t, q.Touch(e.ctx, held), "Touch of a job with the largest TTR")

	// A deadline that wrapped into the past is due at once: give the
	// implementation time to act on it.
	e.sleep(2 * e.slack())
	if s := e.wantState(q, held, beanspike.Reserved); s.TTR != huge || s.Timeouts != 0 || s.TimeLeft <= 0 {
		t.Fatalf("StatsJob of a reserved job with TTR %d = %+v, want still reserved with time left", huge, s)
	}
	for _, id := range []beanspike.ID{delayed, released} {
		if s := e.wantState(q, id, beanspike.Delayed); s.Delay != huge || s.TimeLeft <= 0 {
			t.Fatalf("StatsJob of a job delayed by %d = %+v, want still delayed with time left", huge, s)
		}
	}
	if s := e.statsTube(q, "p"); s.Pause != huge || s.PauseLeft <= 0 {
		t.Fatalf("StatsTube of a tube paused for %d = %+v, want still paused", huge, s)
	}
	e.pollNone(q, "h", "p")
	ok(t, q.Delete(e.ctx, held), "holder's Delete")
}
