package vnet_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/beanspike/beanspike/chanserv/vnet"
)

// recordHandler is a slog.Handler that keeps the records it is given.
type recordHandler struct {
	mu   sync.Mutex
	recs []slog.Record
}

func (h *recordHandler) Enabled(context.Context, slog.Level) bool { return true }
func (h *recordHandler) Handle(_ context.Context, r slog.Record) error {
	h.mu.Lock()
	h.recs = append(h.recs, r.Clone())
	h.mu.Unlock()
	return nil
}
func (h *recordHandler) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h *recordHandler) WithGroup(string) slog.Handler      { return h }

// lines returns the messages logged at level and above that contain s,
// with their attributes.
func (h *recordHandler) lines(level slog.Level, s string) []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	var out []string
	for _, r := range h.recs {
		if r.Level < level {
			continue
		}
		line := r.Message
		r.Attrs(func(a slog.Attr) bool {
			line += " " + a.String()
			return true
		})
		if strings.Contains(line, s) {
			out = append(out, line)
		}
	}
	return out
}

// waitLines waits up to 5 s for a line logged at level and above that
// contains s, and returns the lines that do.
func (h *recordHandler) waitLines(level slog.Level, s string) []string {
	deadline := time.Now().Add(5 * time.Second)
	for {
		lines := h.lines(level, s)
		if len(lines) > 0 || time.Now().After(deadline) {
			return lines
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// failingListener returns errs from Accept, one per call, before it
// accepts from the listener it wraps.
type failingListener struct {
	net.Listener
	mu    sync.Mutex
	errs  []error
	calls atomic.Int32
}

func (l *failingListener) Accept() (net.Conn, error) {
	l.calls.Add(1)
	l.mu.Lock()
	if len(l.errs) > 0 {
		err := l.errs[0]
		l.errs = l.errs[1:]
		l.mu.Unlock()
		return nil, err
	}
	l.mu.Unlock()
	return l.Listener.Accept()
}

func acceptErr(errno syscall.Errno) error {
	return &net.OpError{Op: "accept", Net: "tcp", Err: os.NewSyscallError("accept", errno)}
}

// echoOver connects a new node to addr, dials service and checks that a
// message comes back.
func echoOver(t *testing.T, addr, service string, timeout time.Duration) error {
	t.Helper()
	c, err := vnet.New()
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	if err := c.Connect(ctx, "tcp", addr); err != nil {
		return err
	}
	conn, err := c.DialContext(ctx, "", service)
	if err != nil {
		return err
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(timeout))
	if _, err := conn.Write([]byte("ping")); err != nil {
		return err
	}
	buf := make([]byte, 4)
	if _, err := io.ReadFull(conn, buf); err != nil {
		return err
	}
	if string(buf) != "ping" {
		return fmt.Errorf("echo %q", buf)
	}
	return nil
}

// serveEcho binds service on n and echoes every connection to it.
func serveEcho(tb testing.TB, n *vnet.Node, service string) {
	tb.Helper()
	l, err := n.Bind("", service)
	if err != nil {
		tb.Fatal(err)
	}
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go func() { io.Copy(c, c); c.Close() }()
		}
	}()
}

func TestServeSurvivesTemporaryErrors(t *testing.T) {
	for _, errno := range []syscall.Errno{syscall.EMFILE, syscall.ENFILE} {
		t.Run(errno.Error(), func(t *testing.T) {
			h := &recordHandler{}
			n, err := vnet.New(vnet.WithLogger(slog.New(h)))
			if err != nil {
				t.Fatal(err)
			}
			defer n.Close()
			serveEcho(t, n, "echo")
			tl, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			const failures = 7 // 5 ms doubling: 635 ms of waiting
			fl := &failingListener{Listener: tl}
			for range failures {
				fl.errs = append(fl.errs, acceptErr(errno))
			}
			served := make(chan error, 1)
			go func() { served <- n.Serve(fl) }()
			start := time.Now()
			if err := echoOver(t, tl.Addr().String(), "echo", 10*time.Second); err != nil {
				t.Fatalf("after %d accept errors: %v", failures, err)
			}
			elapsed := time.Since(start)
			if got := fl.calls.Load(); got < failures+1 {
				t.Fatalf("Accept called %d times, want more than %d", got, failures)
			}
			// The backoff waited 5+10+...+320 ms before the accept that
			// succeeded.
			if elapsed < 600*time.Millisecond {
				t.Fatalf("%d failures retried in %v: no backoff", failures, elapsed)
			}
			lines := h.lines(slog.LevelWarn, errno.Error())
			if len(lines) == 0 {
				t.Fatalf("accept errors not logged")
			}
			if max := int(elapsed/time.Second) + 1; len(lines) > max {
				t.Fatalf("%d lines logged in %v, want at most %d:\n%s", len(lines), elapsed, max, strings.Join(lines, "\n"))
			}
			n.Close()
			if err := <-served; !errors.Is(err, vnet.ErrClosed) {
				t.Fatalf("Serve after Close: %v, want ErrClosed", err)
			}
		})
	}
}

func TestServeStopsOnPermanentError(t *testing.T) {
	h := &recordHandler{}
	n, err := vnet.New(vnet.WithLogger(slog.New(h)))
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close()
	tl, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	permanent := errors.New("listener broken")
	fl := &failingListener{Listener: tl, errs: []error{permanent}}
	if err := n.Serve(fl); !errors.Is(err, permanent) {
		t.Fatalf("Serve: %v, want %v", err, permanent)
	}
	if lines := h.lines(slog.LevelError, "listener broken"); len(lines) != 1 {
		t.Fatalf("logged %q, want one error line", lines)
	}
	if _, err := net.Dial("tcp", tl.Addr().String()); err == nil {
		t.Fatal("listener still open after Serve returned")
	}
}

func TestServeCloseDuringBackoff(t *testing.T) {
	n, err := vnet.New()
	if err != nil {
		t.Fatal(err)
	}
	tl, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	fl := &failingListener{Listener: tl}
	for range 100 {
		fl.errs = append(fl.errs, acceptErr(syscall.EMFILE))
	}
	served := make(chan error, 1)
	go func() { served <- n.Serve(fl) }()
	for deadline := time.Now().Add(5 * time.Second); fl.calls.Load() < 8; { // then waiting a second
		if time.Now().After(deadline) {
			t.Fatalf("Accept called %d times in 5 s", fl.calls.Load())
		}
		time.Sleep(10 * time.Millisecond)
	}
	n.Close()
	select {
	case err := <-served:
		if !errors.Is(err, vnet.ErrClosed) {
			t.Fatalf("Serve: %v, want ErrClosed", err)
		}
	case <-time.After(500 * time.Millisecond):
		t.Fatal("Close did not stop Serve's backoff")
	}
}

// TestServeAtFileLimit runs a node in a child process whose file limit is
// 48, has it accept more connections than it can, and then checks that
// it serves again once they are gone.
func TestServeAtFileLimit(t *testing.T) {
	if os.Getenv("VNET_FDLIMIT_CHILD") == "1" {
		fdLimitChild()
		return
	}
	if testing.Short() {
		t.Skip("child process at its file limit: skipped in -short")
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestServeAtFileLimit$")
	cmd.Env = append(os.Environ(), "VNET_FDLIMIT_CHILD=1")
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		stdin.Close()
		cmd.Wait()
	}()
	addr, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil {
		t.Fatalf("child: %v", err)
	}
	addr = strings.TrimSpace(addr)
	var (
		logMu sync.Mutex
		log   []string
	)
	limited := make(chan struct{})
	go func() {
		sc := bufio.NewScanner(stderr)
		once := sync.Once{}
		for sc.Scan() {
			logMu.Lock()
			log = append(log, sc.Text())
			logMu.Unlock()
			if strings.Contains(sc.Text(), "too many open files") {
				once.Do(func() { close(limited) })
			}
		}
	}()

	var conns []net.Conn
	for range 80 {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		conns = append(conns, c)
	}
	select {
	case <-limited:
	case <-time.After(10 * time.Second):
		t.Fatal("the child never ran out of file descriptors")
	}
	start := time.Now()
	time.Sleep(1500 * time.Millisecond) // several failed accepts
	for _, c := range conns {
		c.Close()
	}
	if err := echoOver(t, addr, "echo", 10*time.Second); err != nil {
		logMu.Lock()
		t.Fatalf("after the file limit: %v; child's log:\n%s", err, strings.Join(log, "\n"))
	}
	elapsed := time.Since(start)
	logMu.Lock()
	defer logMu.Unlock()
	var failed int
	for _, l := range log {
		if strings.Contains(l, "too many open files") {
			failed++
		}
	}
	if max := int(elapsed/time.Second) + 2; failed > max {
		t.Fatalf("%d lines about the file limit in %v, want at most %d", failed, elapsed, max)
	}
}

// fdLimitChild serves an echo service with at most 48 open files, prints
// its address and runs until its standard input closes.
func fdLimitChild() {
	lim := syscall.Rlimit{Cur: 48, Max: 48}
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		fmt.Fprintln(os.Stderr, "setrlimit:", err)
		os.Exit(2)
	}
	n, err := vnet.New(vnet.WithLogger(slog.New(slog.NewTextHandler(os.Stderr, nil))))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	serveEcho(nopTB{}, n, "echo")
	addr, err := n.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	fmt.Println(addr)
	io.Copy(io.Discard, os.Stdin)
	n.Close()
	os.Exit(0)
}

// nopTB is a testing.TB for code run outside a test.
type nopTB struct{ testing.TB }

func (nopTB) Helper()           {}
func (nopTB) Fatal(args ...any) { fmt.Fprintln(os.Stderr, args...); os.Exit(2) }
