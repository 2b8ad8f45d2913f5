package main

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/beanspike/beanspike"
	"github.com/beanspike/beanspike/chanserv/remote"
	"github.com/beanspike/beanspike/chanserv/vnet"
	"github.com/beanspike/beanspike/internal/syncbuf"
	"github.com/google/go-cmp/cmp"
)

// TestMain runs the test binary as the beanspike command when
// $BEANSPIKE_TEST_CLI is 1, so that tests can run it as a process of its
// own (the commands of work, signals, /dev/full).
func TestMain(m *testing.M) {
	if os.Getenv("BEANSPIKE_TEST_CLI") == "1" {
		main()
	}
	os.Exit(m.Run())
}

// cliEnv is the environment in which the test binary runs as the
// beanspike command, and the path of that binary.
func cliEnv(t *testing.T, addr string) (env []string, exe string) {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	env = append(os.Environ(), "BEANSPIKE_TEST_CLI=1", "BEANSPIKE_CLI="+exe, EnvAddr+"="+addr)
	return env, exe
}

// errWriter fails every write, as a full disk does.
type errWriter struct{}

func (errWriter) Write([]byte) (int, error) { return 0, errors.New("no space left on device") }

// testApp returns an app reaching addr, with stdin and outputs that the
// caller may replace before running it.
func testApp(addr, stdin string) (*app, *syncbuf.Buffer, *syncbuf.Buffer) {
	var out, errb syncbuf.Buffer
	a := newApp(strings.NewReader(stdin), &out, &errb, func(k string) string {
		if k == EnvAddr {
			return addr
		}
		return ""
	})
	a.terminal = func(any) bool { return false }
	return a, &out, &errb
}

// runApp runs a with args and returns what it did.
func runApp(t *testing.T, a *app, args ...string) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	code := a.run(ctx, args)
	var stdout, stderr string
	if b, ok := a.stdout.(*syncbuf.Buffer); ok {
		stdout = b.String()
	}
	if b, ok := a.stderr.(*syncbuf.Buffer); ok {
		stderr = b.String()
	}
	return result{code, stdout, stderr}
}

// dialQ returns a client of the server at addr, closed when the test
// ends.
func dialQ(t *testing.T, addr string) beanspike.Queue {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	node, err := vnet.New()
	if err != nil {
		t.Fatal(err)
	}
	if err := node.Connect(ctx, "tcp", addr); err != nil {
		t.Fatal(err)
	}
	q, err := remote.Dial(ctx, node, remote.DefaultService)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		q.Close()
		node.Close()
	})
	return q
}

// jobStats returns the stats of job id, failing the test if it has none.
func jobStats(t *testing.T, q beanspike.Queue, id beanspike.ID) *beanspike.JobStats {
	t.Helper()
	s, err := q.StatsJob(context.Background(), id)
	if err != nil {
		t.Fatalf("stats of job %d: %v", id, err)
	}
	return s
}

func put(t *testing.T, q beanspike.Queue, tube, body string, opts ...beanspike.PutOption) beanspike.ID {
	t.Helper()
	id, err := q.Put(context.Background(), tube, []byte(body), opts...)
	if err != nil {
		t.Fatal(err)
	}
	return id
}

// oneError checks that a failed run printed exactly one message, on its
// first line of stderr, prefixed once with the command's name; usage
// errors add one line pointing to the help.
func oneError(t *testing.T, r result, cmd string) string {
	t.Helper()
	lines := strings.Split(strings.TrimSuffix(r.stderr, "\n"), "\n")
	if len(lines) == 2 && strings.HasPrefix(lines[1], "Run beanspike help ") {
		lines = lines[:1]
	}
	if len(lines) != 1 {
		t.Fatalf("stderr has %d lines, want one message:\n%s", len(lines), r.stderr)
	}
	prefix := "beanspike " + cmd + ": "
	if !strings.HasPrefix(lines[0], prefix) || strings.Contains(lines[0][len(prefix):], "beanspike:") {
		t.Fatalf("message %q does not start with %q once", lines[0], prefix)
	}
	return lines[0]
}

// Output that cannot be written fails the command, and a job whose
// output failed is not deleted.
func TestOutputFailure(t *testing.T) {
	addr, _ := server(t)
	q := dialQ(t, addr)
	id := put(t, q, "out", "keep me")
	cases := []struct {
		args []string
		msg  string
	}{
		{[]string{"reserve", "-tube", "out", "-delete"}, "job " + id.String() + " is not deleted and returns to ready"},
		{[]string{"reserve", "-tube", "out", "-delete", "-json"}, "is not deleted"},
		{[]string{"reserve", "-tube", "out", "-delete", "-body"}, "is not deleted"},
		{[]string{"reserve", "-tube", "out"}, "returns to ready"},
		{[]string{"peek", id.String()}, "cannot write to standard output"},
		{[]string{"peek", "-json", id.String()}, "cannot write to standard output"},
		{[]string{"stats"}, "cannot write to standard output"},
		{[]string{"stats", "-job", id.String()}, "cannot write to standard output"},
		{[]string{"tubes"}, "cannot write to standard output"},
		{[]string{"tubes", "-json"}, "cannot write to standard output"},
		{[]string{"put", "-tube", "other", "x"}, "was put"},
		{[]string{"pause", "-tube", "other", "0"}, "cannot write to standard output"},
		{[]string{"kick", "-tube", "other", "1"}, "cannot write to standard output"},
		{[]string{"demo"}, "cannot write to standard output"},
	}
	for _, c := range cases {
		t.Run(strings.Join(c.args, " "), func(t *testing.T) {
			a, _, _ := testApp(addr, "")
			a.stdout = errWriter{}
			r := runApp(t, a, c.args...)
			if r.code != exitError {
				t.Fatalf("exit status %d, want %d\n%s", r.code, exitError, r.stderr)
			}
			if msg := oneError(t, r, c.args[0]); !strings.Contains(msg, c.msg) || !strings.Contains(msg, "no space left on device") {
				t.Fatalf("message %q, want %q and the write's error", msg, c.msg)
			}
		})
	}
	s := jobStats(t, q, id)
	if s.State != beanspike.Ready || s.Reserves != 4 {
		t.Fatalf("job after four reserves whose output failed: %s, %d reserves; want ready, 4", s.State, s.Reserves)
	}
	// The job is whole: a reserve that can write gets it, and deletes it.
	want(t, runCmd(t, addr, "", "reserve", "-tube", "out", "-delete", "-body"), exitOK, "keep me")
	if _, err := q.Peek(context.Background(), id); !errors.Is(err, beanspike.ErrNotFound) {
		t.Fatalf("peek after reserve -delete: %v, want ErrNotFound", err)
	}
}

// reserve -delete > /dev/full, in a process of its own: the write fails
// with ENOSPC and the job stays.
func TestReserveToDevFull(t *testing.T) {
	full, err := os.OpenFile("/dev/full", os.O_WRONLY, 0)
	if err != nil {
		t.Skipf("no /dev/full on this system: %v", err)
	}
	defer full.Close()
	addr, _ := server(t)
	q := dialQ(t, addr)
	id := put(t, q, "full", "precious")
	env, exe := cliEnv(t, addr)
	cmd := exec.Command(exe, "reserve", "-tube", "full", "-delete")
	cmd.Env = env
	cmd.Stdout = full
	var stderr strings.Builder
	cmd.Stderr = &stderr
	err = cmd.Run()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != exitError {
		t.Fatalf("reserve -delete > /dev/full: %v, want exit status 1\n%s", err, stderr.String())
	}
	if !strings.Contains(stderr.String(), "no space left on device") || !strings.Contains(stderr.String(), "is not deleted") {
		t.Fatalf("stderr: %s", stderr.String())
	}
	if s := jobStats(t, q, id); s.State != beanspike.Ready {
		t.Fatalf("job is %s, want ready", s.State)
	}
}

// reserve waits as long as -wait says, even past -timeout, and then
// exits 3.
func TestReserveWaitOutlastsTimeout(t *testing.T) {
	addr, _ := server(t)
	start := time.Now()
	r := runCmd(t, addr, "", "reserve", "-tube", "empty", "-wait", "2500ms", "-timeout", "1s")
	took := time.Since(start)
	if r.code != exitNotFound {
		t.Fatalf("exit status %d, want %d\n%s", r.code, exitNotFound, r.stderr)
	}
	if msg := oneError(t, r, "reserve"); msg != `beanspike reserve: no job ready in "empty" within 2.5s` {
		t.Fatalf("message %q", msg)
	}
	if took < 2500*time.Millisecond || took > 15*time.Second {
		t.Fatalf("reserve -wait 2.5s returned after %s", took)
	}

	// A job put while reserve waits is taken.
	q := dialQ(t, addr)
	time.AfterFunc(1500*time.Millisecond, func() { q.Put(context.Background(), "later", []byte("late job")) })
	want(t, runCmd(t, addr, "", "reserve", "-tube", "later", "-wait", "10s", "-timeout", "1s", "-body"), exitOK, "late job")
}

// Every failure gives its exit status (1 error, 2 usage or bad input, 3
// not found, not held or nothing in time) and one message.
func TestExitStatusAndMessages(t *testing.T) {
	addr, _ := server(t, "-max-body", "2000")
	q := dialQ(t, addr)
	ready := put(t, q, "busy", "ready job")
	held := put(t, q, "held", "held job")
	if _, err := q.ReserveJob(context.Background(), held); err != nil {
		t.Fatal(err)
	}
	if err := q.PauseTube(context.Background(), "quiet", 0); err != nil {
		t.Fatal(err)
	}
	r, h := ready.String(), held.String()
	cases := []struct {
		args []string
		code int
		msg  string
	}{
		{[]string{"put", "-ttr", "-5s", "x"}, exitUsage, `invalid value "-5s" for flag -ttr: a duration must not be negative`},
		{[]string{"put", "-delay", "soon", "x"}, exitUsage, `invalid value "soon" for flag -delay: not a duration`},
		{[]string{"put", "-pri", "-1", "x"}, exitUsage, `invalid value "-1" for flag -pri: a priority is a whole number from 0 to 4294967295`},
		{[]string{"put", "-pri", "4294967296", "x"}, exitUsage, "a priority is a whole number"},
		{[]string{"put", "-tube", "héllo", "x"}, exitUsage, `tube name "héllo" has 'é' (U+00E9) at byte 1: tube names take ASCII letters`},
		{[]string{"put", "-tube", "a\xffb", "x"}, exitUsage, `tube name "a\xffb" has the byte '\xff', not UTF-8, at byte 1`},
		{[]string{"put", "-tube", "a b", "x"}, exitUsage, `tube name "a b" has ' ' (U+0020) at byte 1`},
		{[]string{"put", "-tube", "", "x"}, exitUsage, "the tube name is empty"},
		{[]string{"put", "-tube", strings.Repeat("t", 201), "x"}, exitUsage, "the tube name is 201 bytes, longer than 200"},
		{[]string{"put", strings.Repeat("b", 2001)}, exitUsage, "the body is 2001 bytes, over the server's limit of 2000 (serve -max-body sets it)"},
		{[]string{"reserve", "-tube", "ok,-bad"}, exitUsage, `tube name "-bad" starts with a hyphen`},
		{[]string{"reserve", "-json", "-body"}, exitUsage, "give -json or -body, not both"},
		{[]string{"reserve", "-wait", "-1s"}, exitUsage, "must not be negative"},
		{[]string{"reserve", "-timeout", "0"}, exitUsage, "a duration must be above zero"},
		{[]string{"stats", "héllo"}, exitUsage, `'é' (U+00E9)`},
		{[]string{"delete-tube", "no/good\x00"}, exitUsage, `'\x00' (U+0000) at byte 7`},
		{[]string{"kick"}, exitUsage, "give N, the most jobs to kick, or -job ID"},
		{[]string{"kick", "0"}, exitUsage, `"0" is not a count of jobs`},
		{[]string{"kick", "-job", "1", "5"}, exitUsage, "give either -job or N"},
		{[]string{"release"}, exitUsage, "give the ID of the job"},
		{[]string{"touch", "x"}, exitUsage, `"x" is not a job ID`},
		{[]string{"work"}, exitUsage, "wrong number of arguments"},
		{[]string{"work", "-max-backoff", "1s", "-backoff", "2s", "true"}, exitUsage, "-max-backoff 1s is below -backoff 2s"},
		{[]string{"work", "beanspike-no-such-program", "arg"}, exitUsage, "cannot run beanspike-no-such-program: executable file not found"},

		{[]string{"peek", "999"}, exitNotFound, "beanspike peek: job 999 not found"},
		{[]string{"peek", "-ready", "-tube", "nosuch"}, exitNotFound, `beanspike peek: no tube "nosuch"`},
		{[]string{"peek", "-ready", "-tube", "quiet"}, exitNotFound, `beanspike peek: tube "quiet" has no ready job`},
		{[]string{"peek", "-buried", "-tube", "busy"}, exitNotFound, `tube "busy" has no buried job`},
		{[]string{"peek", "-delayed"}, exitNotFound, `tube "default" has no delayed job`},
		{[]string{"stats", "nosuch"}, exitNotFound, `beanspike stats: no tube "nosuch"`},
		{[]string{"stats", "-job", "999"}, exitNotFound, "job 999 not found"},
		{[]string{"delete", "999"}, exitNotFound, "beanspike delete: job 999 not found"},
		{[]string{"delete", h}, exitNotFound, "job " + h + " is reserved by another client"},
		{[]string{"release", h}, exitNotFound, "job " + h + " is not reserved by this client"},
		{[]string{"release", r}, exitNotFound, "job " + r + " is not reserved by this client: each beanspike command is a client of its own"},
		{[]string{"release", "999"}, exitNotFound, "job 999 not found"},
		{[]string{"release", "-take", h}, exitNotFound, "job " + h + " not found, or reserved by another client"},
		{[]string{"bury", r}, exitNotFound, "job " + r + " is not reserved by this client"},
		{[]string{"bury", h}, exitNotFound, "job " + h + " is not reserved by this client"},
		{[]string{"touch", r}, exitNotFound, "job " + r + " is not reserved by this client"},
		{[]string{"touch", "999"}, exitNotFound, "job 999 not found"},
		{[]string{"reserve", "-tube", "quiet"}, exitNotFound, `no job ready in "quiet"`},
		{[]string{"reserve", "-tube", "a", "-tube", "b,c", "-wait", "10ms"}, exitNotFound, `no job ready in "a", "b", "c" within 10ms`},
		{[]string{"kick", "-tube", "nosuch", "1"}, exitNotFound, `no tube "nosuch"`},
		{[]string{"kick", "-job", "999"}, exitNotFound, "job 999 not found, or neither buried nor delayed"},
		{[]string{"delete-tube", "nosuch"}, exitNotFound, `no tube "nosuch"`},
	}
	for _, c := range cases {
		t.Run(strings.Join(c.args, " "), func(t *testing.T) {
			r := runCmd(t, addr, "", c.args...)
			if r.code != c.code {
				t.Fatalf("exit status %d, want %d\n%s", r.code, c.code, r.stderr)
			}
			if msg := oneError(t, r, c.args[0]); !strings.Contains(msg, c.msg) {
				t.Fatalf("message %q, want %q", msg, c.msg)
			}
		})
	}
	// Bad input and refusals changed nothing: no job was reserved,
	// released or buried by the commands above.
	for _, c := range []struct {
		id    beanspike.ID
		state beanspike.State
	}{{ready, beanspike.Ready}, {held, beanspike.Reserved}} {
		s := jobStats(t, q, c.id)
		if s.State != c.state || s.Reserves != uint32(c.state/beanspike.Reserved) || s.Releases != 0 || s.Buries != 0 {
			t.Fatalf("job %d after refused commands: %+v", c.id, s)
		}
	}
	tubes, err := q.Tubes(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if d := cmp.Diff([]string{"busy", "held", "quiet"}, tubes); d != "" {
		t.Fatalf("tubes (-want +got):\n%s", d)
	}

	// Several failures: one line each; the status is theirs when they
	// agree, 1 when they do not.
	res := runCmd(t, addr, "", "delete", "998", "999")
	if res.code != exitNotFound || res.stderr != "beanspike delete: job 998 not found\nbeanspike delete: job 999 not found\n" {
		t.Fatalf("delete 998 999: %d\n%s", res.code, res.stderr)
	}
}

// release and bury act only on a job the command holds: they do not
// reserve a job to release or bury it unless -take says so.
func TestReleaseAndBuryTakeOnlyWhenAsked(t *testing.T) {
	addr, _ := server(t)
	q := dialQ(t, addr)
	id := put(t, q, "t", "body", beanspike.WithPriority(9))
	for _, cmd := range []string{"release", "bury"} {
		r := runCmd(t, addr, "", cmd, id.String())
		if r.code != exitNotFound || !strings.Contains(r.stderr, "is not reserved by this client") {
			t.Fatalf("%s of a ready job: %d\n%s", cmd, r.code, r.stderr)
		}
	}
	if s := jobStats(t, q, id); s.State != beanspike.Ready || s.Reserves != 0 || s.Priority != 9 {
		t.Fatalf("job after refused release and bury: %s, %d reserves, priority %d", s.State, s.Reserves, s.Priority)
	}

	want(t, runCmd(t, addr, "", "release", "-take", "-delay", "1h", id.String()), exitOK, "released "+id.String()+" (priority 9, delay 1h0m0s)")
	s := jobStats(t, q, id)
	if s.State != beanspike.Delayed || s.Reserves != 1 || s.Releases != 1 || s.Priority != 9 {
		t.Fatalf("job after release -take -delay 1h: %+v", s)
	}
	want(t, runCmd(t, addr, "", "bury", "-take", "-pri", "3", "-reason", "later", id.String()), exitOK, "buried "+id.String())
	s = jobStats(t, q, id)
	if s.State != beanspike.Buried || s.Reserves != 2 || s.Priority != 3 || s.BuryReason != "later" {
		t.Fatalf("job after bury -take: %+v", s)
	}
}

// kick needs N, says "job" or "jobs", and a kick larger than a batch
// moves only what one Kick would: buried jobs while the tube has any.
func TestKick(t *testing.T) {
	addr, _ := server(t)
	q := dialQ(t, addr)
	ctx := context.Background()
	var buried []beanspike.ID
	for i := range 5 {
		id := put(t, q, "k", "b"+strconv.Itoa(i))
		if _, err := q.ReserveJob(ctx, id); err != nil {
			t.Fatal(err)
		}
		if err := q.Bury(ctx, id, 1, ""); err != nil {
			t.Fatal(err)
		}
		buried = append(buried, id)
	}
	for i := range 3 {
		put(t, q, "k", "d"+strconv.Itoa(i), beanspike.WithDelay(time.Hour))
	}
	kick := func(args ...string) result {
		a, _, _ := testApp(addr, "")
		a.kickBatch = 2
		return runApp(t, a, append([]string{"kick", "-tube", "k"}, args...)...)
	}
	want(t, kick("1"), exitOK, "kicked 1 job\n")
	want(t, kick("100"), exitOK, "kicked 4 jobs\n")
	for _, id := range buried {
		if s := jobStats(t, q, id); s.State != beanspike.Ready {
			t.Fatalf("job %d is %s after the kicks, want ready", id, s.State)
		}
	}
	st, err := q.StatsTube(ctx, "k")
	if err != nil {
		t.Fatal(err)
	}
	if st.Delayed != 3 {
		t.Fatalf("%d delayed jobs after kicking the buried ones, want 3", st.Delayed)
	}
	want(t, kick("100"), exitOK, "kicked 3 jobs\n")
	want(t, kick("100"), exitOK, "kicked 0 jobs\n")
	// The default tube exists for kick as for reserve, even unused.
	want(t, runCmd(t, addr, "", "kick", "1"), exitOK, "kicked 0 jobs\n")
}

// Every read command takes -json.
func TestJSON(t *testing.T) {
	addr, _ := server(t)
	q := dialQ(t, addr)
	decode := func(r result, v any) {
		t.Helper()
		if r.code != exitOK {
			t.Fatalf("exit status %d\n%s", r.code, r.stderr)
		}
		if strings.Count(r.stdout, "\n") != 1 {
			t.Fatalf("JSON output is not one line: %q", r.stdout)
		}
		if err := json.Unmarshal([]byte(r.stdout), v); err != nil {
			t.Fatalf("%v: %q", err, r.stdout)
		}
	}
	var putOut struct {
		ID   beanspike.ID
		Tube string
	}
	decode(runCmd(t, addr, "", "put", "-json", "-tube", "j", "-pri", "5", "-ttr", "90s", "héllo <&>"), &putOut)
	if putOut.ID == 0 || putOut.Tube != "j" {
		t.Fatalf("put -json: %+v", putOut)
	}
	bin := put(t, q, "bin", "\xff\x00\x01")

	type jobOut struct {
		ID         beanspike.ID
		Tube       string
		Priority   uint32
		TTR        float64
		Reserves   uint32
		Bytes      int
		Body       *string
		BodyBase64 []byte `json:"body_base64"`
	}
	body := "héllo <&>"
	wantJob := jobOut{ID: putOut.ID, Tube: "j", Priority: 5, TTR: 90, Bytes: len(body), Body: &body}
	var got jobOut
	decode(runCmd(t, addr, "", "peek", "-json", putOut.ID.String()), &got)
	if d := cmp.Diff(wantJob, got); d != "" {
		t.Fatalf("peek -json (-want +got):\n%s", d)
	}
	if !strings.Contains(runCmd(t, addr, "", "peek", "-json", putOut.ID.String()).stdout, `"body":"héllo <&>"`) {
		t.Fatal("peek -json escapes the body's text")
	}
	got = jobOut{}
	decode(runCmd(t, addr, "", "reserve", "-json", "-tube", "j"), &got)
	wantJob.Reserves = 1
	if d := cmp.Diff(wantJob, got); d != "" {
		t.Fatalf("reserve -json (-want +got):\n%s", d)
	}
	got = jobOut{}
	decode(runCmd(t, addr, "", "peek", "-json", "-ready", "-tube", "bin"), &got)
	if d := cmp.Diff(jobOut{ID: bin, Tube: "bin", Priority: beanspike.DefaultPriority, TTR: 60, Bytes: 3, BodyBase64: []byte("\xff\x00\x01")}, got); d != "" {
		t.Fatalf("peek -json of a binary body (-want +got):\n%s", d)
	}

	var tubes []string
	decode(runCmd(t, addr, "", "tubes", "-json"), &tubes)
	if d := cmp.Diff([]string{"bin", "j"}, tubes); d != "" {
		t.Fatalf("tubes -json (-want +got):\n%s", d)
	}

	if err := q.PauseTube(context.Background(), "j", time.Hour); err != nil {
		t.Fatal(err)
	}
	var stats []map[string]any
	decode(runCmd(t, addr, "", "stats", "-json", "j", "default"), &stats)
	if len(stats) != 2 {
		t.Fatalf("stats -json j default: %v", stats)
	}
	pauseLeft, _ := stats[0]["pause_left"].(float64)
	if stats[0]["name"] != "j" || stats[0]["ready"] != 1.0 || stats[0]["total_jobs"] != 1.0 || stats[0]["pause"] != 3600.0 || pauseLeft < 3500 {
		t.Fatalf("stats -json of j: %v", stats[0])
	}
	if stats[1]["name"] != "default" || stats[1]["total_jobs"] != 0.0 {
		t.Fatalf("stats -json of the unused default tube: %v", stats[1])
	}

	var js map[string]any
	decode(runCmd(t, addr, "", "stats", "-json", "-job", putOut.ID.String()), &js)
	for k, v := range map[string]any{"id": float64(putOut.ID), "tube": "j", "state": "ready", "priority": 5.0, "ttr": 90.0, "reserves": 1.0, "size": float64(len(body)), "bury_reason": ""} {
		if js[k] != v {
			t.Fatalf("stats -json -job: %s is %v, want %v\n%v", k, js[k], v, js)
		}
	}
}

// put says that it reads standard input when that is a terminal, and
// its help says so too.
func TestPutReadsStdin(t *testing.T) {
	addr, _ := server(t)
	a, out, errb := testApp(addr, "typed body")
	a.terminal = func(f any) bool { return f == a.stdin }
	want(t, runApp(t, a, "put", "-tube", "in"), exitOK, "1\n")
	if !strings.Contains(errb.String(), "reading the body from standard input; end it with Ctrl-D") {
		t.Fatalf("stderr:\n%s", errb.String())
	}
	if out.String() != "1\n" {
		t.Fatalf("stdout %q", out.String())
	}
	want(t, runCmd(t, addr, "", "peek", "-body", "1"), exitOK, "typed body")

	// Not at a terminal: not a word.
	a, _, errb = testApp(addr, "piped body")
	want(t, runApp(t, a, "put", "-tube", "in"), exitOK, "2\n")
	if errb.String() != "" {
		t.Fatalf("stderr of a piped put: %q", errb.String())
	}

	r := runCmd(t, addr, "", "help", "put")
	if r.code != exitOK || !strings.Contains(r.stderr, "standard\ninput when BODY is absent") {
		t.Fatalf("help put: %d\n%s", r.code, r.stderr)
	}
}

// slowReader gives its text after a delay.
type slowReader struct {
	delay time.Duration
	r     io.Reader
}

func (s *slowReader) Read(p []byte) (int, error) {
	time.Sleep(s.delay)
	s.delay = 0
	return s.r.Read(p)
}

// Long operations show their progress on stderr when it is a terminal,
// and clear it when they end.
func TestProgress(t *testing.T) {
	addr, _ := server(t)
	q := dialQ(t, addr)
	const clear = "\r\033[K"
	run := func(term bool, stdin io.Reader, args ...string) result {
		a, _, _ := testApp(addr, "")
		a.stdin = stdin
		a.progressDelay = 0
		a.kickBatch = 1
		a.terminal = func(f any) bool { return term && f == a.stderr }
		return runApp(t, a, args...)
	}
	r := run(true, nil, "reserve", "-tube", "idle", "-wait", "700ms")
	if r.code != exitNotFound || !strings.HasPrefix(r.stderr, clear+`waiting for a job in "idle": 0s of 700ms`) ||
		!strings.HasSuffix(r.stderr, clear+"beanspike reserve: no job ready in \"idle\" within 700ms\n") {
		t.Fatalf("reserve -wait at a terminal: %d\n%q", r.code, r.stderr)
	}
	r = run(false, nil, "reserve", "-tube", "idle", "-wait", "300ms")
	if r.stderr != "beanspike reserve: no job ready in \"idle\" within 300ms\n" {
		t.Fatalf("reserve -wait, stderr not a terminal: %q", r.stderr)
	}

	r = run(true, &slowReader{delay: 500 * time.Millisecond, r: strings.NewReader(strings.Repeat("x", 3000))}, "put", "-tube", "big")
	if r.code != exitOK || !strings.Contains(r.stderr, clear+"reading the body: 0 bytes") || !strings.HasSuffix(r.stderr, clear) {
		t.Fatalf("put at a terminal: %d\n%q", r.code, r.stderr)
	}

	ctx := context.Background()
	for range 300 {
		id := put(t, q, "many", "x")
		if _, err := q.ReserveJob(ctx, id); err != nil {
			t.Fatal(err)
		}
		if err := q.Bury(ctx, id, 0, ""); err != nil {
			t.Fatal(err)
		}
	}
	r = run(true, nil, "kick", "-tube", "many", "1000")
	if r.code != exitOK || r.stdout != "kicked 300 jobs\n" || !strings.Contains(r.stderr, "of up to 1000 buried jobs of \"many\"") || !strings.HasSuffix(r.stderr, clear) {
		t.Fatalf("kick at a terminal: %d\nstdout %q\nstderr %q", r.code, r.stdout, r.stderr)
	}
}

// stats shows the default tube even before it is used, as reserve
// watches it; delete-tube deletes tubes with their jobs.
func TestStatsDefaultAndDeleteTube(t *testing.T) {
	addr, _ := server(t)
	r := runCmd(t, addr, "", "stats", "default")
	want(t, r, exitOK)
	wantRow(t, r.stdout, "default", "0 0 0 0 0 0 0 0 -")

	q := dialQ(t, addr)
	held := put(t, q, "gone", "a")
	put(t, q, "gone", "b", beanspike.WithDelay(time.Hour))
	put(t, q, "kept", "c")
	if _, err := q.ReserveJob(context.Background(), held); err != nil {
		t.Fatal(err)
	}
	want(t, runCmd(t, addr, "", "delete-tube", "gone"), exitOK, "deleted tube gone and its 2 jobs\n")
	want(t, runCmd(t, addr, "", "tubes"), exitOK, "kept\n")
	if err := q.Delete(context.Background(), held); !errors.Is(err, beanspike.ErrNotFound) {
		t.Fatalf("delete of a job of a deleted tube: %v, want ErrNotFound", err)
	}
	r = runCmd(t, addr, "", "delete-tube", "kept", "gone")
	if r.code != exitNotFound || r.stdout != "deleted tube kept and its 1 job\n" || r.stderr != "beanspike delete-tube: no tube \"gone\"\n" {
		t.Fatalf("delete-tube kept gone: %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
}

// The usage lists every command, and help COMMAND shows its flags.
func TestHelp(t *testing.T) {
	r := runCmd(t, "", "", "help")
	for _, c := range commands() {
		if !strings.Contains(r.stderr, "\n  "+c.name+" ") {
			t.Errorf("usage lacks %s:\n%s", c.name, r.stderr)
		}
	}
	for _, c := range []struct{ cmd, text string }{
		{"work", "-max-attempts N"},
		{"work", "BEANSPIKE_JOB_ID"},
		{"kick", "usage: beanspike kick [flags] N | -job ID"},
		{"release", "-take"},
		{"touch", "work command"},
		{"reserve", "-json"},
		{"put", `-tube tube`},
	} {
		r := runCmd(t, "", "", "help", c.cmd)
		if r.code != exitOK || !strings.Contains(r.stderr, c.text) {
			t.Errorf("help %s lacks %q:\n%s", c.cmd, c.text, r.stderr)
		}
	}
}
