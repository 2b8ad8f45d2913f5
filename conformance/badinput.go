package conformance

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/beanspike/beanspike"
)

var badInputTests = []test{
	{"BadInput", testBadInput},
}

// badCall is a call that must fail with want and change nothing.
type badCall struct {
	name string
	call func(ctx context.Context) error
	want error
}

// invalidTubes are names that break the tube naming rules.
var invalidTubes = map[string]string{
	"empty":         "",
	"too long":      strings.Repeat("a", beanspike.MaxTubeNameLen+1),
	"space":         "a b",
	"star":          "a*b",
	"newline":       "tube\n",
	"non-ASCII":     "tubé",
	"NUL":           "a\x00",
	"leading -":     "-tube",
	"only a hyphen": "-",
}

// tubeCalls are the calls of q that take a tube name, with the name tube.
func tubeCalls(q beanspike.Queue, tube string) []badCall {
	body := []byte("x")
	return []badCall{
		{"Put", func(ctx context.Context) error { _, err := q.Put(ctx, tube, body); return err }, nil},
		{"Reserve", func(ctx context.Context) error { _, err := q.Reserve(ctx, tube); return err }, nil},
		{"Reserve among valid tubes", func(ctx context.Context) error { _, err := q.Reserve(ctx, "t", tube, "u"); return err }, nil},
		{"PeekReady", func(ctx context.Context) error { _, err := q.PeekReady(ctx, tube); return err }, nil},
		{"PeekDelayed", func(ctx context.Context) error { _, err := q.PeekDelayed(ctx, tube); return err }, nil},
		{"PeekBuried", func(ctx context.Context) error { _, err := q.PeekBuried(ctx, tube); return err }, nil},
		{"StatsTube", func(ctx context.Context) error { _, err := q.StatsTube(ctx, tube); return err }, nil},
		{"PauseTube", func(ctx context.Context) error { return q.PauseTube(ctx, tube, time.Hour) }, nil},
		{"PauseTube 0", func(ctx context.Context) error { return q.PauseTube(ctx, tube, 0) }, nil},
		{"DeleteTube", func(ctx context.Context) error { _, err := q.DeleteTube(ctx, tube); return err }, nil},
		{"Kick", func(ctx context.Context) error { _, err := q.Kick(ctx, tube, 10); return err }, nil},
		{"PutBatch", func(ctx context.Context) error {
			_, err := beanspike.PutBatch(ctx, q, []beanspike.PutRequest{{Tube: tube, Body: body}})
			return err
		}, nil},
		{"ReserveBatch", func(ctx context.Context) error { _, err := beanspike.ReserveBatch(ctx, q, 2, "t", tube); return err }, nil},
	}
}

// idCalls are the calls of q that take a job ID, with the ID id.
func idCalls(q beanspike.Queue, id beanspike.ID) []badCall {
	return []badCall{
		{"ReserveJob", func(ctx context.Context) error { _, err := q.ReserveJob(ctx, id); return err }, nil},
		{"Delete", func(ctx context.Context) error { return q.Delete(ctx, id) }, nil},
		{"Release", func(ctx context.Context) error { return q.Release(ctx, id, 1, 0) }, nil},
		{"Bury", func(ctx context.Context) error { return q.Bury(ctx, id, 1, "x") }, nil},
		{"Touch", func(ctx context.Context) error { return q.Touch(ctx, id) }, nil},
		{"KickJob", func(ctx context.Context) error { return q.KickJob(ctx, id) }, nil},
		{"Peek", func(ctx context.Context) error { _, err := q.Peek(ctx, id); return err }, nil},
		{"StatsJob", func(ctx context.Context) error { _, err := q.StatsJob(ctx, id); return err }, nil},
	}
}

func testBadInput(t *testing.T, e *env) {
	a, b := e.client(), e.client()
	ready := e.putS(a, "t", "ready", beanspike.WithPriority(5))
	delayed := e.putS(a, "t", "delayed", beanspike.WithDelay(time.Hour))
	held := e.putS(a, "t", "held", beanspike.WithPriority(0), beanspike.WithTTR(time.Hour))
	e.reserveID(a, held, "t")
	buried := e.putS(a, "u", "buried")
	e.reserveID(a, buried, "u")
	ok(t, a.Bury(e.ctx, buried, 3, "reason"), "Bury")
	gone := e.putS(a, "u", "gone")
	ok(t, a.Delete(e.ctx, gone), "Delete")
	const unknown = beanspike.ID(1<<62 + 12345)
	ids := []beanspike.ID{ready, delayed, held, buried, gone, unknown}
	max := e.caps.MaxBodySize

	var calls []badCall
	add := func(prefix string, want error, cs []badCall) {
		for _, c := range cs {
			c.name = prefix + ": " + c.name
			c.want = want
			calls = append(calls, c)
		}
	}
	for what, name := range invalidTubes {
		add("tube name "+what, beanspike.ErrInvalidTube, tubeCalls(a, name))
	}
	add("ID 0", beanspike.ErrInvalidArgument, idCalls(a, 0))
	add("deleted ID", beanspike.ErrNotFound, idCalls(a, gone))
	add("unknown ID", beanspike.ErrNotFound, idCalls(b, unknown))
	tooBig := make([]byte, max+1)
	put := func(tube string, body []byte, opts ...beanspike.PutOption) func(context.Context) error {
		return func(ctx context.Context) error { _, err := a.Put(ctx, tube, body, opts...); return err }
	}
	calls = append(calls, []badCall{
		{"body too big", put("t", tooBig), beanspike.ErrJobTooBig},
		{"body too big, new tube", put("new", tooBig), beanspike.ErrJobTooBig},
		{"body too big, compressed", put("t", tooBig, beanspike.WithCompression()), beanspike.ErrJobTooBig},
		{"negative delay", put("t", []byte("x"), beanspike.WithDelay(-time.Nanosecond)), beanspike.ErrInvalidArgument},
		{"negative delay, new tube", put("new", []byte("x"), beanspike.WithDelay(-time.Hour)), beanspike.ErrInvalidArgument},
		{"negative TTR", put("t", []byte("x"), beanspike.WithTTR(-time.Second)), beanspike.ErrInvalidArgument},
		{"Release with a negative delay", func(ctx context.Context) error { return a.Release(ctx, held, 1, -time.Second) }, beanspike.ErrInvalidArgument},
		{"negative pause", func(ctx context.Context) error { return a.PauseTube(ctx, "t", -time.Second) }, beanspike.ErrInvalidArgument},
		{"negative pause, new tube", func(ctx context.Context) error { return a.PauseTube(ctx, "new", -time.Second) }, beanspike.ErrInvalidArgument},
		{"negative kick count", func(ctx context.Context) error { _, err := a.Kick(ctx, "u", -1); return err }, beanspike.ErrInvalidArgument},
		{"ReserveBatch of 0", func(ctx context.Context) error { _, err := beanspike.ReserveBatch(ctx, a, 0, "t"); return err }, beanspike.ErrInvalidArgument},
		{"double Delete", func(ctx context.Context) error { return a.Delete(ctx, gone) }, beanspike.ErrNotFound},

		{"Delete of a job another client holds", func(ctx context.Context) error { return b.Delete(ctx, held) }, beanspike.ErrNotReserved},
		{"Release of a job another client holds", func(ctx context.Context) error { return b.Release(ctx, held, 1, 0) }, beanspike.ErrNotReserved},
		{"Bury of a job another client holds", func(ctx context.Context) error { return b.Bury(ctx, held, 1, "x") }, beanspike.ErrNotReserved},
		{"Touch of a job another client holds", func(ctx context.Context) error { return b.Touch(ctx, held) }, beanspike.ErrNotReserved},
		{"Release of a ready job", func(ctx context.Context) error { return a.Release(ctx, ready, 1, 0) }, beanspike.ErrNotReserved},
		{"Bury of a ready job", func(ctx context.Context) error { return a.Bury(ctx, ready, 1, "x") }, beanspike.ErrNotReserved},
		{"Touch of a ready job", func(ctx context.Context) error { return a.Touch(ctx, ready) }, beanspike.ErrNotReserved},
		{"Touch of a delayed job", func(ctx context.Context) error { return a.Touch(ctx, delayed) }, beanspike.ErrNotReserved},
		{"Release of a buried job", func(ctx context.Context) error { return a.Release(ctx, buried, 1, 0) }, beanspike.ErrNotReserved},
		{"ReserveJob of a held job", func(ctx context.Context) error { _, err := b.ReserveJob(ctx, held); return err }, beanspike.ErrNotFound},
		{"ReserveJob of a job this client holds", func(ctx context.Context) error { _, err := a.ReserveJob(ctx, held); return err }, beanspike.ErrNotFound},
		{"KickJob of a ready job", func(ctx context.Context) error { return a.KickJob(ctx, ready) }, beanspike.ErrNotFound},
		{"KickJob of a reserved job", func(ctx context.Context) error { return a.KickJob(ctx, held) }, beanspike.ErrNotFound},
		{"StatsTube of an unknown tube", func(ctx context.Context) error { _, err := a.StatsTube(ctx, "nope"); return err }, beanspike.ErrNotFound},
		{"DeleteTube of an unknown tube", func(ctx context.Context) error { _, err := a.DeleteTube(ctx, "nope"); return err }, beanspike.ErrNotFound},
		{"PeekReady of an unknown tube", func(ctx context.Context) error { _, err := a.PeekReady(ctx, "nope"); return err }, beanspike.ErrNotFound},
		{"PeekBuried with none buried", func(ctx context.Context) error { _, err := a.PeekBuried(ctx, "t"); return err }, beanspike.ErrNotFound},
		{"PeekDelayed with none delayed", func(ctx context.Context) error { _, err := a.PeekDelayed(ctx, "u"); return err }, beanspike.ErrNotFound},
		{"PeekReady with none ready", func(ctx context.Context) error { _, err := a.PeekReady(ctx, "u"); return err }, beanspike.ErrNotFound},
	}...)

	before := snapshot(t, e.ctx, a, ids)
	for _, c := range calls {
		ctx, cancel := context.WithTimeout(e.ctx, e.wakeBound())
		err := c.call(ctx)
		cancel()
		wantErr(t, err, c.want, "%s", c.name)
		if after := snapshot(t, e.ctx, b, ids); !before.equal(after) {
			t.Fatalf("%s: the refused call changed the store:\nbefore %s\nafter  %s", c.name, before, after)
		}
	}
	// The fixture is intact: the holder still holds its job.
	ok(t, a.Touch(e.ctx, held), "holder's Touch after the refused calls")
	ok(t, a.Delete(e.ctx, held), "holder's Delete after the refused calls")
	e.reserveID(b, ready, "t")
}
