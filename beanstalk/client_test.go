package beanstalk

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	gb "github.com/beanstalkd/go-beanstalk"
)

// clientSession drives a server through the go-beanstalk client and
// returns a transcript of what the client saw, with job IDs normalised.
func clientSession(t *testing.T, addr string) []string {
	t.Helper()
	dial := func() *gb.Conn {
		c, err := gb.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		return c
	}
	producer, worker, other := dial(), dial(), dial()
	labels := map[uint64]string{}
	id := func(n uint64) string {
		if l, ok := labels[n]; ok {
			return l
		}
		l := fmt.Sprintf("$%d", len(labels)+1)
		labels[n] = l
		return l
	}
	var out []string
	log := func(format string, args ...any) { out = append(out, fmt.Sprintf(format, args...)) }
	errName := func(err error) string {
		if err == nil {
			return "ok"
		}
		var ce gb.ConnError
		if errors.As(err, &ce) {
			return ce.Op + ": " + ce.Err.Error()
		}
		return err.Error()
	}
	dict := func(m map[string]string, keys ...string) string {
		var b strings.Builder
		for _, k := range keys {
			fmt.Fprintf(&b, "%s=%s ", k, m[k])
		}
		return b.String()
	}

	jobs := gb.NewTube(producer, "jobs")
	var ids []uint64
	for i, pri := range []uint32{10, 5, 10, 0} {
		n, err := jobs.Put([]byte(fmt.Sprintf("body-%d", i)), pri, 0, 30*time.Second)
		log("put pri %d: %s %s", pri, id(n), errName(err))
		ids = append(ids, n)
	}
	n, err := jobs.Put([]byte("later"), 1, 10*time.Second, 30*time.Second)
	log("put delayed: %s %s", id(n), errName(err))
	ids = append(ids, n)

	ws := gb.NewTubeSet(worker, "jobs")
	for i := 0; i < 4; i++ {
		n, body, err := ws.Reserve(time.Second)
		log("reserve: %s %q %s", id(n), body, errName(err))
	}
	_, _, err = ws.Reserve(0)
	log("reserve empty: %s", errName(err))

	log("release by other: %s", errName(other.Release(ids[3], 0, 0)))
	log("delete by other: %s", errName(other.Delete(ids[3])))
	log("touch: %s", errName(worker.Touch(ids[3])))
	log("release: %s", errName(worker.Release(ids[3], 7, 0)))
	log("bury: %s", errName(worker.Bury(ids[1], 3)))
	log("bury again: %s", errName(worker.Bury(ids[1], 3)))

	n, body, err := jobs.PeekReady()
	log("peek-ready: %s %q %s", id(n), body, errName(err))
	n, body, err = jobs.PeekBuried()
	log("peek-buried: %s %q %s", id(n), body, errName(err))
	n, body, err = jobs.PeekDelayed()
	log("peek-delayed: %s %q %s", id(n), body, errName(err))
	body, err = producer.Peek(ids[0])
	log("peek: %q %s", body, errName(err))
	_, err = producer.Peek(99999)
	log("peek missing: %s", errName(err))

	k, err := jobs.Kick(10)
	log("kick: %d %s", k, errName(err))
	k, err = jobs.Kick(10)
	log("kick delayed: %d %s", k, errName(err))
	log("kick-job ready: %s", errName(producer.KickJob(ids[1])))

	st, err := producer.StatsJob(ids[1])
	log("stats-job: %s %s", dict(st, "tube", "state", "pri", "delay", "ttr", "reserves", "releases", "buries", "kicks", "timeouts"), errName(err))
	st, err = jobs.Stats()
	log("stats-tube: %s %s", dict(st, "name", "current-jobs-urgent", "current-jobs-ready", "current-jobs-reserved",
		"current-jobs-delayed", "current-jobs-buried", "total-jobs", "current-using", "current-watching", "cmd-delete"), errName(err))
	_, err = gb.NewTube(producer, "nope").Stats()
	log("stats-tube missing: %s", errName(err))
	log("pause missing: %s", errName(gb.NewTube(producer, "nope").Pause(time.Second)))
	log("pause: %s", errName(jobs.Pause(time.Second)))
	_, _, err = ws.Reserve(0)
	log("reserve paused: %s", errName(err))
	n, body, err = ws.Reserve(3 * time.Second)
	log("reserve after pause: %s %q %s", id(n), body, errName(err))

	body, err = worker.ReserveJob(ids[4])
	log("reserve-job: %q %s", body, errName(err))
	_, err = other.ReserveJob(ids[4])
	log("reserve-job reserved: %s", errName(err))

	tubes, err := producer.ListTubes()
	log("list-tubes: %d %s", len(tubes), errName(err))
	s, err := producer.Stats()
	log("stats: %s %s", dict(s, "current-jobs-ready", "current-jobs-reserved", "current-jobs-buried", "current-jobs-delayed",
		"cmd-put", "cmd-reserve-with-timeout", "cmd-release", "cmd-bury", "cmd-kick", "cmd-peek", "cmd-peek-ready",
		"cmd-stats-job", "cmd-pause-tube", "current-connections", "current-producers", "current-workers"), errName(err))

	for _, n := range ids {
		log("delete %s: %s", id(n), errName(worker.Delete(n)))
	}
	_, err = jobs.Put(make([]byte, 70000), 0, 0, time.Second)
	log("put too big: %s", errName(err))
	return out
}

func TestDifferentialClient(t *testing.T) {
	bd := startBeanstalkd(t)
	_, addr := startFrontEnd(t)
	want := clientSession(t, bd.addr)
	got := clientSession(t, addr)
	diffTranscripts(t, "step", want, got)
	if t.Failed() {
		t.Logf("beanstalkd:\n%s", strings.Join(want, "\n"))
	}
}
