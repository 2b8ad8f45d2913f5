//go:build linux

package adversarial

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
	"unsafe"
)

// buildBeanspike builds the beanspike command, without the race
// detector, into a directory of the test's, and returns its path.
func buildBeanspike(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "beanspike")
	start := time.Now()
	cmd := exec.Command("go", "build", "-o", bin, "github.com/beanspike/beanspike/cmd/beanspike")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	t.Logf("built %s in %v", bin, time.Since(start).Round(time.Millisecond))
	return bin
}

// server is a `beanspike serve` child process on loopback, with the
// memory store, the remote port and the beanstalk port.
type server struct {
	pid       int
	remote    string // TCP address of the remote port
	beanstalk string // TCP address of the beanstalk port
	token     string // the token clients must give; "" if none
	maxFDs    int    // the process's file descriptor limit
	log       *logLines
	exited    chan struct{} // closed when the process has exited
	waitErr   error         // why it exited; set before exited is closed
}

// serverConfig says how to start a server.
type serverConfig struct {
	token  string // if set, serve with a token file holding it
	maxFDs int    // if positive, the process's file descriptor limit
}

// startServer starts `beanspike serve` and waits until it serves both
// ports. The caller stops it with stop or kill.
func startServer(bin string, cfg serverConfig, tmp string) (*server, error) {
	args := []string{"serve", "-listen", "127.0.0.1:0", "-beanstalk", "127.0.0.1:0", "-log-format", "json", "-grace", "2s"}
	if cfg.token != "" {
		f := filepath.Join(tmp, "tokens")
		if err := os.WriteFile(f, []byte(cfg.token+"\n"), 0o600); err != nil {
			return nil, err
		}
		args = append(args, "-token-file", f)
	}
	cmd := exec.Command(bin, args...)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	s := &server{pid: cmd.Process.Pid, token: cfg.token, log: &logLines{}, exited: make(chan struct{})}
	serving := make(chan map[string]any, 1)
	readDone := make(chan struct{})
	go func() {
		defer close(readDone)
		s.log.read(stderr, serving)
	}()
	go func() {
		<-readDone // Wait closes the pipe: read it all first
		s.waitErr = cmd.Wait()
		close(s.exited)
	}()
	if cfg.maxFDs > 0 {
		if err := setMaxFDs(s.pid, cfg.maxFDs); err != nil {
			s.kill()
			<-s.exited
			return nil, fmt.Errorf("limit the server's file descriptors: %w", err)
		}
	}
	s.maxFDs = maxFDsOf(s.pid)
	select {
	case m := <-serving:
		s.remote, _ = m["remote"].(string)
		s.beanstalk, _ = m["beanstalk"].(string)
	case <-s.exited:
		return nil, fmt.Errorf("beanspike serve exited at start: %v\n%s", s.waitErr, s.log.tail(20))
	case <-time.After(30 * time.Second):
		s.kill()
		<-s.exited
		return nil, fmt.Errorf("beanspike serve did not start in 30s:\n%s", s.log.tail(20))
	}
	if s.remote == "" || s.beanstalk == "" {
		s.kill()
		<-s.exited
		return nil, fmt.Errorf("beanspike serve did not say where it serves:\n%s", s.log.tail(20))
	}
	return s, nil
}

// stop stops the server as an operator does, with SIGTERM, and fails t
// if it does not exit within 10 s (it is killed then).
func (s *server) stop(t *testing.T) {
	syscall.Kill(s.pid, syscall.SIGTERM)
	select {
	case <-s.exited:
	case <-time.After(10 * time.Second):
		s.kill()
		<-s.exited
		t.Errorf("beanspike serve did not stop within 10s of SIGTERM")
	}
}

// alive reports whether the process still runs.
func (s *server) alive() bool {
	select {
	case <-s.exited:
		return false
	default:
		return true
	}
}

// rss returns the process's resident set in bytes, from
// /proc/<pid>/status, or 0 if it cannot be read.
func (s *server) rss() int64 {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(s.pid) + "/status")
	if err != nil {
		return 0
	}
	for line := range strings.Lines(string(b)) {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			return kb << 10
		}
	}
	return 0
}

// cpu returns the processor time process pid has used, user and
// system, from /proc/<pid>/stat ("self" for the test process).
func cpu(pid string) time.Duration {
	b, err := os.ReadFile("/proc/" + pid + "/stat")
	if err != nil {
		return 0
	}
	// The fields after the command name, which is in parentheses.
	f := strings.Fields(string(b[bytes.LastIndexByte(b, ')')+1:]))
	if len(f) < 13 {
		return 0
	}
	utime, _ := strconv.ParseInt(f[11], 10, 64)
	stime, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(utime+stime) * time.Second / 100 // USER_HZ
}

// kill ends the process at once: the memory guard's last resort, and
// how a server an attack left behind is replaced.
func (s *server) kill() {
	syscall.Kill(s.pid, syscall.SIGKILL)
}

// setMaxFDs sets both limits of a process's file descriptors to n: a Go
// program raises its soft limit to the hard one when it starts, so the
// hard one is what counts.
func setMaxFDs(pid, n int) error {
	lim := syscall.Rlimit{Cur: uint64(n), Max: uint64(n)}
	_, _, errno := syscall.RawSyscall6(syscall.SYS_PRLIMIT64, uintptr(pid), uintptr(syscall.RLIMIT_NOFILE),
		uintptr(unsafe.Pointer(&lim)), 0, 0, 0)
	if errno != 0 {
		return errno
	}
	return nil
}

// maxFDsOf reads the hard limit of a process's file descriptors from
// /proc/<pid>/limits, or returns 0.
func maxFDsOf(pid int) int {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/limits")
	if err != nil {
		return 0
	}
	for line := range strings.Lines(string(b)) {
		if f := strings.Fields(strings.TrimPrefix(line, "Max open files")); len(f) >= 2 && strings.HasPrefix(line, "Max open files") {
			n, _ := strconv.Atoi(f[1])
			return n
		}
	}
	return 0
}

// fdBudget returns how many more file descriptors the test process may
// open, keeping a margin for everything else it does.
func fdBudget() int {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		return 0
	}
	open, _ := os.ReadDir("/proc/self/fd")
	return max(int(lim.Cur)-len(open)-256, 0)
}

// logLine is one line the server wrote to stderr, and when it arrived.
type logLine struct {
	at   time.Time
	text string
}

// logLines holds what the server logs. Its methods are safe for
// concurrent use.
type logLines struct {
	mu    sync.Mutex
	lines []logLine
}

// maxKept bounds the lines kept; a server that logs more is failed on
// the rate long before.
const maxKept = 200_000

// read reads lines from r until it ends, and sends the fields of the
// "beanspike serving" line to serving.
func (l *logLines) read(r interface{ Read([]byte) (int, error) }, serving chan<- map[string]any) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	sent := false
	for sc.Scan() {
		text := sc.Text()
		if !sent && strings.Contains(text, `"beanspike serving"`) {
			var m map[string]any
			if json.Unmarshal([]byte(text), &m) == nil {
				serving <- m
				sent = true
			}
		}
		l.mu.Lock()
		if len(l.lines) < maxKept {
			l.lines = append(l.lines, logLine{at: time.Now(), text: text})
		}
		l.mu.Unlock()
	}
}

// between returns the lines that arrived in [from, to).
func (l *logLines) between(from, to time.Time) []logLine {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []logLine
	for _, ln := range l.lines {
		if !ln.at.Before(from) && ln.at.Before(to) {
			out = append(out, ln)
		}
	}
	return out
}

// tail returns the last n lines.
func (l *logLines) tail(n int) string {
	l.mu.Lock()
	defer l.mu.Unlock()
	var b bytes.Buffer
	for _, ln := range l.lines[max(len(l.lines)-n, 0):] {
		fmt.Fprintln(&b, ln.text)
	}
	return b.String()
}

// maxPerSecond returns the most lines that arrived within any one
// second, and the lines of that second.
func maxPerSecond(lines []logLine) (int, []logLine) {
	best, at := 0, 0
	j := 0
	for i := range lines {
		for lines[i].at.Sub(lines[j].at) >= time.Second {
			j++
		}
		if n := i - j + 1; n > best {
			best, at = n, j
		}
	}
	return best, lines[at : at+best]
}
