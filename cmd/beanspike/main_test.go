package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/beanspike/beanspike/internal/syncbuf"
)

// result is one run of the command.
type result struct {
	code           int
	stdout, stderr string
}

// runCmd runs the command with args in process, with stdin and the
// environment variable BEANSPIKE_ADDR set to addr.
func runCmd(t *testing.T, addr, stdin string, args ...string) result {
	t.Helper()
	var out, errb bytes.Buffer
	a := newApp(strings.NewReader(stdin), &out, &errb, func(k string) string {
		if k == EnvAddr {
			return addr
		}
		return ""
	})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	code := a.run(ctx, args)
	return result{code, out.String(), errb.String()}
}

// want checks a run's exit status and that its stdout contains every
// one of subs.
func want(t *testing.T, r result, code int, subs ...string) {
	t.Helper()
	if r.code != code {
		t.Fatalf("exit status %d, want %d\nstdout:\n%s\nstderr:\n%s", r.code, code, r.stdout, r.stderr)
	}
	for _, s := range subs {
		if !strings.Contains(r.stdout, s) {
			t.Fatalf("stdout lacks %q:\n%s\nstderr:\n%s", s, r.stdout, r.stderr)
		}
	}
}

// server runs "beanspike serve" on loopback until the test ends, and
// returns the addresses of its remote and beanstalk listeners.
func server(t *testing.T, extra ...string) (remoteAddr, bsAddr string) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	var out, errb syncbuf.Buffer
	a := newApp(strings.NewReader(""), &out, &errb, func(string) string { return "" })
	ready := make(chan [2]string, 1)
	a.ready = func(r, b string) { ready <- [2]string{r, b} }
	done := make(chan int, 1)
	args := append([]string{"serve", "-listen", "127.0.0.1:0", "-grace", "5s"}, extra...)
	go func() { done <- a.run(ctx, args) }()
	t.Cleanup(func() {
		cancel()
		select {
		case code := <-done:
			if code != exitOK {
				t.Errorf("serve exited with %d after its context ended:\n%s", code, errb.String())
			}
		case <-time.After(10 * time.Second):
			t.Errorf("serve did not stop 10s after its context ended:\n%s", errb.String())
		}
	})
	select {
	case addrs := <-ready:
		return addrs[0], addrs[1]
	case code := <-done:
		t.Fatalf("serve exited with %d:\n%s", code, errb.String())
	case <-time.After(10 * time.Second):
		t.Fatalf("serve did not start:\n%s", errb.String())
	}
	return "", ""
}

func TestClientCommands(t *testing.T) {
	addr, _ := server(t)

	r := runCmd(t, addr, "", "put", "-tube", "work", "-pri", "7", "first job")
	want(t, r, exitOK, "1\n")
	want(t, runCmd(t, addr, "from stdin", "put", "-tube", "work", "-pri", "9", "-compress"), exitOK, "2\n")
	want(t, runCmd(t, addr, "", "put", "-tube", "later", "-delay", "1h", "x"), exitOK, "3\n")
	want(t, runCmd(t, addr, "", "tubes"), exitOK, "later\nwork\n")
	want(t, runCmd(t, addr, "", "peek", "1"), exitOK, "id 1\n", "tube work\n", "priority 7\n", "first job")
	want(t, runCmd(t, addr, "", "peek", "-delayed", "-tube", "later", "-body"), exitOK, "x")

	// A reservation ends with the command: the job is ready again.
	want(t, runCmd(t, addr, "", "reserve", "-tube", "work", "-body"), exitOK, "first job")
	want(t, runCmd(t, addr, "", "reserve", "-tube", "work", "-delete"), exitOK, "id 1\n", "reserves 2\n")
	want(t, runCmd(t, addr, "", "peek", "1"), exitNotFound)

	want(t, runCmd(t, addr, "", "release", "-take", "-pri", "1", "-delay", "1h", "2"), exitOK, "released 2 (priority 1, delay 1h0m0s)")
	want(t, runCmd(t, addr, "", "stats", "-job", "2"), exitOK, "state        delayed", "priority     1\n", "releases     1\n")
	want(t, runCmd(t, addr, "", "bury", "-take", "-reason", "broken", "2"), exitOK, "buried 2")
	want(t, runCmd(t, addr, "", "stats", "-job", "2"), exitOK, "bury-reason  broken")
	r = runCmd(t, addr, "", "stats")
	want(t, r, exitOK, "TUBE", "READY", "BURIED")
	// READY URGENT RESERVED DELAYED BURIED WAITING TOTAL DELETES PAUSED
	wantRow(t, r.stdout, "work", "0 0 0 0 1 0 2 1 -")
	want(t, runCmd(t, addr, "", "kick", "-tube", "work", "5"), exitOK, "kicked 1 job\n")
	want(t, runCmd(t, addr, "", "kick", "-job", "3"), exitOK, "kicked job 3")
	want(t, runCmd(t, addr, "", "pause", "-tube", "work", "1m"), exitOK, "tube work paused for 1m0s")
	want(t, runCmd(t, addr, "", "reserve", "-tube", "work"), exitNotFound)
	want(t, runCmd(t, addr, "", "pause", "-tube", "work", "0"), exitOK, "unpaused")
	want(t, runCmd(t, addr, "", "delete", "2", "3"), exitOK, "deleted 2\ndeleted 3\n")
	r = runCmd(t, addr, "", "stats", "work")
	wantRow(t, r.stdout, "work", "0 0 0 0 0 0 2 2 -")
	// -addr beats the environment.
	want(t, runCmd(t, "127.0.0.1:1", "", "tubes", "-addr", addr), exitOK, "work")
}

// wantRow checks the row of tube in a stats table.
func wantRow(t *testing.T, table, tube, cells string) {
	t.Helper()
	for _, l := range strings.Split(table, "\n") {
		f := strings.Fields(l)
		if len(f) > 0 && f[0] == tube {
			if got := strings.Join(f[1:], " "); got != cells {
				t.Fatalf("stats row of %s = %q, want %q\n%s", tube, got, cells, table)
			}
			return
		}
	}
	t.Fatalf("stats table has no row for %s:\n%s", tube, table)
}

func TestExitCodes(t *testing.T) {
	addr, _ := server(t)
	cases := []struct {
		args   []string
		code   int
		stderr string
	}{
		{nil, exitUsage, "usage: beanspike"},
		{[]string{"help"}, exitOK, "commands:"},
		{[]string{"frobnicate"}, exitUsage, `unknown command "frobnicate"`},
		{[]string{"put", "-bogus"}, exitUsage, "flag provided but not defined"},
		{[]string{"put", "a", "b"}, exitUsage, "wrong number of arguments"},
		{[]string{"delete"}, exitUsage, "give the IDs of the jobs to delete"},
		{[]string{"delete", "x"}, exitUsage, `"x" is not a job ID`},
		{[]string{"pause", "soon"}, exitUsage, "is not a duration"},
		{[]string{"peek"}, exitUsage, "give a job ID or one of"},
		{[]string{"put", "-h"}, exitOK, "-tube"},
		{[]string{"serve", "-aerospike", "nohost"}, exitUsage, "not host:port/namespace"},
		{[]string{"delete", "999"}, exitNotFound, "job 999 not found"},
		{[]string{"peek", "-ready", "-tube", "empty"}, exitNotFound, `no tube "empty"`},
		{[]string{"reserve", "-tube", "empty", "-wait", "50ms"}, exitNotFound, `no job ready in "empty" within 50ms`},
		{[]string{"stats", "nosuchtube"}, exitNotFound, `no tube "nosuchtube"`},
		{[]string{"put", "-tube", "-bad", "x"}, exitUsage, `tube name "-bad" starts with a hyphen`},
		{[]string{"release", "999"}, exitNotFound, "job 999 not found"},
	}
	for _, c := range cases {
		t.Run(strings.Join(c.args, " "), func(t *testing.T) {
			r := runCmd(t, addr, "", c.args...)
			if r.code != c.code || !strings.Contains(r.stderr, c.stderr) {
				t.Fatalf("exit status %d, stderr:\n%s\nwant %d and %q", r.code, r.stderr, c.code, c.stderr)
			}
		})
	}
	t.Run("no server", func(t *testing.T) {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		dead := l.Addr().String()
		l.Close()
		r := runCmd(t, dead, "", "tubes", "-timeout", "2s")
		if r.code != exitError || !strings.Contains(r.stderr, "cannot reach a server at "+dead) {
			t.Fatalf("exit status %d, stderr:\n%s", r.code, r.stderr)
		}
	})
}

// TestBeanstalkFrontEnd serves beanstalkd's protocol next to the remote
// clients, on the same store.
func TestBeanstalkFrontEnd(t *testing.T) {
	addr, bs := server(t, "-beanstalk", "127.0.0.1:0")
	c, err := net.DialTimeout("tcp", bs, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	fmt.Fprintf(c, "use mixed\r\nput 5 0 60 5\r\nhello\r\n")
	br := bufio.NewReader(c)
	var lines []string
	for range 2 {
		l, err := br.ReadString('\n')
		if err != nil {
			t.Fatal(err)
		}
		lines = append(lines, strings.TrimSpace(l))
	}
	if lines[0] != "USING mixed" || !strings.HasPrefix(lines[1], "INSERTED ") {
		t.Fatalf("beanstalk replies %q", lines)
	}
	id := strings.TrimPrefix(lines[1], "INSERTED ")
	want(t, runCmd(t, addr, "", "reserve", "-tube", "mixed", "-delete"), exitOK, "id "+id+"\n", "priority 5\n", "hello")
}

func TestDemo(t *testing.T) {
	r := runCmd(t, "", "", "demo")
	want(t, r, exitOK,
		`put job 3 "charge card 7" (priority 5), delayed 1s`,
		`reserve: job 1 "resize photo 42"`,
		"release job 1 with a 500ms delay: it is delayed",
		`bury job 2: it is buried (reason "mail server down")`,
		"kick demo: 1 buried job back to ready",
		`worker: job 3 "charge card 7" fails on reservation 1`,
		`worker: job 3 "charge card 7" done on reservation 2`,
		"tube demo: 0 ready, 0 reserved, 0 delayed, 0 buried, 3 put, 3 deleted",
	)
}
