//go:build unix

package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/beanspike/beanspike"

	"github.com/beanspike/beanspike/internal/syncbuf"
)

// workScript handles a job by its body; "$BEANSPIKE_CLI" is the
// beanspike command.
const workScript = `body=$(cat)
echo "job $BEANSPIKE_JOB_ID of $BEANSPIKE_JOB_TUBE, priority $BEANSPIKE_JOB_PRIORITY, attempt $BEANSPIKE_JOB_RESERVES: $body"
case $body in
ok) exit 0 ;;
fail) exit 4 ;;
bury) "$BEANSPIKE_CLI" bury -reason "bad body" ;;
release) "$BEANSPIKE_CLI" touch && "$BEANSPIKE_CLI" release -delay 1h; exit 9 ;;
delete) "$BEANSPIKE_CLI" delete; exit 1 ;;
other) "$BEANSPIKE_CLI" touch "$OTHER"; echo "touch other: $?"; "$BEANSPIKE_CLI" release -pri 1; echo "release -pri: $?"; exit 0 ;;
esac`

// startWork runs "beanspike work args..." in process until the returned
// stop is called; stop returns its result.
func startWork(t *testing.T, addr string, extraEnv []string, args ...string) (stop func() result, stdout, stderr *syncbuf.Buffer) {
	t.Helper()
	a, out, errb := testApp(addr, "")
	env, _ := cliEnv(t, addr)
	a.environ = func() []string { return append(env, extraEnv...) }
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan int, 1)
	go func() { done <- a.run(ctx, append([]string{"work"}, args...)) }()
	stopped := false
	var res result
	stop = func() result {
		t.Helper()
		if stopped {
			return res
		}
		stopped = true
		cancel()
		select {
		case code := <-done:
			res = result{code, out.String(), errb.String()}
		case <-time.After(15 * time.Second):
			t.Fatalf("work did not stop 15s after its context ended:\n%s", errb.String())
		}
		return res
	}
	t.Cleanup(func() { stop() })
	return stop, out, errb
}

// eventually waits up to 20s for cond.
func eventually(t *testing.T, what string, cond func() bool, log func() string) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not after 20s\n%s", what, log())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// state returns the state of job id, 0 if it does not exist.
func state(q beanspike.Queue, id beanspike.ID) beanspike.State {
	s, err := q.StatsJob(context.Background(), id)
	if err != nil {
		return 0
	}
	return s.State
}

// work deletes a job whose command exits 0, releases one that fails,
// buries one that runs past -timeout, and does what the command asks
// for its own job.
func TestWork(t *testing.T) {
	addr, _ := server(t)
	q := dialQ(t, addr)
	other := put(t, q, "elsewhere", "not work's")
	ids := map[string]beanspike.ID{}
	for _, body := range []string{"ok", "fail", "bury", "release", "delete", "other"} {
		ids[body] = put(t, q, "w", body, beanspike.WithPriority(7))
	}
	stop, out, errb := startWork(t, addr, []string{"OTHER=" + other.String()},
		"-tube", "w", "-timeout", "1m", "-backoff", "1h", workScript)
	logs := func() string { return "stdout:\n" + out.String() + "stderr:\n" + errb.String() }
	eventually(t, "every job settled", func() bool {
		st, err := q.StatsTube(context.Background(), "w")
		return err == nil && st.Ready == 0 && st.Reserved == 0 && st.Deletes == 3
	}, logs)
	r := stop()
	if r.code != exitOK || !strings.HasSuffix(r.stderr, "beanspike work: stopped\n") {
		t.Fatalf("work stopped with %d\n%s", r.code, logs())
	}

	for _, body := range []string{"ok", "delete", "other"} {
		if s := state(q, ids[body]); s != 0 {
			t.Errorf("job %q is %s, want deleted", body, s)
		}
	}
	cases := []struct {
		body     string
		state    beanspike.State
		releases uint32
		reason   string
		minDelay time.Duration
	}{
		{"fail", beanspike.Delayed, 1, "", 25 * time.Minute},
		{"release", beanspike.Delayed, 1, "", 55 * time.Minute},
		{"bury", beanspike.Buried, 0, "bad body", 0},
	}
	for _, c := range cases {
		s := jobStats(t, q, ids[c.body])
		if s.State != c.state || s.Releases != c.releases || s.BuryReason != c.reason || s.TimeLeft < c.minDelay || s.Reserves != 1 || s.Priority != 7 {
			t.Errorf("job %q: %+v; want %s, %d releases, reason %q, at least %s left", c.body, s, c.state, c.releases, c.reason, c.minDelay)
		}
	}
	// The commands saw their job and what they asked for it.
	for _, s := range []string{
		"job " + ids["ok"].String() + " of w, priority 7, attempt 1: ok\n",
		"touched " + ids["release"].String() + "\n",
		"job " + ids["release"].String() + " will be released with a delay of 1h0m0s when this command exits\n",
		"job " + ids["bury"].String() + " will be buried when this command exits\n",
		"job " + ids["delete"].String() + " will be deleted when this command exits\n",
		"touch other: 3\n",
		"release -pri: 2\n",
	} {
		if !strings.Contains(r.stdout, s) {
			t.Errorf("stdout lacks %q", s)
		}
	}
	for _, s := range []string{
		"beanspike touch: job " + other.String() + " is not reserved by this client",
		"beanspike release: -pri is not available for the job of a work command",
		"job " + ids["fail"].String() + ": its command failed (exit status 4)",
	} {
		if !strings.Contains(r.stderr, s) {
			t.Errorf("stderr lacks %q", s)
		}
	}
	if t.Failed() {
		t.Log(logs())
	}
	if s := jobStats(t, q, other); s.State != beanspike.Ready || s.Reserves != 0 {
		t.Fatalf("the job of another tube, touched by a command of work: %+v", s)
	}
}

// A command that runs past -timeout is stopped, with the processes it
// started, and its job buried.
func TestWorkTimeout(t *testing.T) {
	addr, _ := server(t)
	q := dialQ(t, addr)
	id := put(t, q, "slow", "x")
	stop, out, errb := startWork(t, addr, nil, "-tube", "slow", "-timeout", "500ms", "sleep 30 & echo $!; wait")
	eventually(t, "job buried", func() bool { return state(q, id) == beanspike.Buried }, func() string { return out.String() + errb.String() })
	r := stop()
	s := jobStats(t, q, id)
	if r.code != exitOK || s.BuryReason != "the command ran past -timeout 500ms" || s.Reserves != 1 {
		t.Fatalf("work exit %d, job %+v\n%s", r.code, s, r.stderr)
	}
	if !strings.Contains(r.stderr, "its command ran past -timeout 500ms and was killed; burying the job") {
		t.Fatalf("stderr:\n%s", r.stderr)
	}
	var child int
	if _, err := fmt.Sscan(r.stdout, &child); err != nil {
		t.Fatalf("child PID %q: %v", r.stdout, err)
	}
	eventually(t, "the command's child gone", func() bool { return !alive(child) }, func() string { return "" })
}

// A job that has failed -max-attempts times is buried.
func TestWorkMaxAttempts(t *testing.T) {
	addr, _ := server(t)
	q := dialQ(t, addr)
	id := put(t, q, "m", "fail")
	stop, out, errb := startWork(t, addr, nil, "-tube", "m", "-backoff", "10ms", "-max-backoff", "20ms", "-max-attempts", "3", workScript)
	eventually(t, "job buried", func() bool { return state(q, id) == beanspike.Buried }, func() string { return out.String() + errb.String() })
	r := stop()
	s := jobStats(t, q, id)
	if r.code != exitOK || s.Reserves != 3 || s.Releases != 2 || !strings.Contains(s.BuryReason, "exit status 4") {
		t.Fatalf("work exit %d, job %+v\n%s", r.code, s, r.stderr)
	}
	if !strings.Contains(r.stderr, "on attempt 3 of -max-attempts 3; burying the job") {
		t.Fatalf("stderr:\n%s", r.stderr)
	}
}

// Stopping work stops its command and returns its job to ready at once.
func TestWorkStopReturnsJob(t *testing.T) {
	addr, _ := server(t)
	q := dialQ(t, addr)
	id := put(t, q, "s", "slow")
	stop, out, errb := startWork(t, addr, nil, "-tube", "s", "sleep 30")
	eventually(t, "job reserved", func() bool { return state(q, id) == beanspike.Reserved }, func() string { return out.String() + errb.String() })
	start := time.Now()
	r := stop()
	if took := time.Since(start); took > killGrace {
		t.Fatalf("work took %s to stop", took)
	}
	if r.code != exitOK || !strings.Contains(r.stderr, "its command was stopped; the job goes back to ready") {
		t.Fatalf("work stopped with %d\n%s", r.code, r.stderr)
	}
	if s := jobStats(t, q, id); s.State != beanspike.Ready || s.TimeLeft != 0 {
		t.Fatalf("job after work stopped: %+v", s)
	}
}

// SIGTERM and SIGINT stop a work process cleanly: exit status 0, its
// command and the command's children stopped, its job ready at once.
func TestWorkSignals(t *testing.T) {
	addr, _ := server(t)
	q := dialQ(t, addr)
	env, exe := cliEnv(t, addr)
	for _, sig := range []syscall.Signal{syscall.SIGTERM, syscall.SIGINT} {
		t.Run(sig.String(), func(t *testing.T) {
			id := put(t, q, "sig", "x")
			// The command's child writes its PID, so that the test can
			// see it gone.
			cmd := exec.Command(exe, "work", "-tube", "sig", `sleep 30 & echo $!; wait`)
			cmd.Env = env
			var stdout, stderr syncbuf.Buffer
			cmd.Stdout, cmd.Stderr = &stdout, &stderr
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			defer cmd.Process.Kill()
			eventually(t, "job reserved and its command started", func() bool {
				return state(q, id) == beanspike.Reserved && strings.HasSuffix(stdout.String(), "\n")
			}, stderr.String)
			var child int
			if _, err := fmt.Sscan(stdout.String(), &child); err != nil {
				t.Fatalf("child PID %q: %v", stdout.String(), err)
			}
			start := time.Now()
			if err := cmd.Process.Signal(sig); err != nil {
				t.Fatal(err)
			}
			err := cmd.Wait()
			if err != nil {
				t.Fatalf("work after %s: %v\n%s", sig, err, stderr.String())
			}
			if took := time.Since(start); took > killGrace {
				t.Fatalf("work took %s to stop", took)
			}
			if s := jobStats(t, q, id); s.State != beanspike.Ready {
				t.Fatalf("job after %s: %+v", sig, s)
			}
			// The command's own child was stopped too (it may linger a
			// moment as the process group goes).
			eventually(t, "the command's child gone", func() bool { return !alive(child) }, stderr.String)
			if !strings.Contains(stderr.String(), "beanspike work: stopped\n") {
				t.Fatalf("stderr:\n%s", stderr.String())
			}
			if err := q.Delete(context.Background(), id); err != nil && !errors.Is(err, beanspike.ErrNotFound) {
				t.Fatal(err)
			}
		})
	}
}

// alive tells whether process pid runs: it exists and, where /proc
// tells, is not a zombie waiting for a parent to reap it.
func alive(pid int) bool {
	if b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid)); err == nil {
		// pid (comm) state ...: the state follows the last ')'.
		f := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+1:]))
		return len(f) > 0 && f[0] != "Z"
	}
	return syscall.Kill(pid, 0) == nil
}

// work ends, with exit status 1, when its server goes away.
func TestWorkServerGone(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	srv, _, _ := testApp("", "")
	ready := make(chan string, 1)
	srv.ready = func(r, _ string) { ready <- r }
	served := make(chan int, 1)
	go func() { served <- srv.run(ctx, []string{"serve", "-listen", "127.0.0.1:0", "-grace", "1s"}) }()
	var addr string
	select {
	case addr = <-ready:
	case <-time.After(10 * time.Second):
		t.Fatal("serve did not start")
	}
	a, _, errb := testApp(addr, "")
	done := make(chan int, 1)
	go func() { done <- a.run(context.Background(), []string{"work", "-tube", "w", "true"}) }()
	eventually(t, "work waiting", func() bool { return strings.Contains(errb.String(), "taking jobs from") }, errb.String)
	time.Sleep(100 * time.Millisecond) // let its Reserve reach the server
	cancel()
	<-served
	select {
	case code := <-done:
		if code != exitError || !strings.Contains(errb.String(), "beanspike work: the server at "+addr+" is unavailable") {
			t.Fatalf("work exited with %d after its server went:\n%s", code, errb.String())
		}
	case <-time.After(20 * time.Second):
		t.Fatalf("work still runs 20s after its server went:\n%s", errb.String())
	}
}
