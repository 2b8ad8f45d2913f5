package beanstalk

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"flag"
	"io"
	"net"
	"os"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/beanspike/beanspike"
	"github.com/beanspike/beanspike/backend/memory"
	"github.com/beanspike/beanspike/internal/leaktest"
)

func TestMain(m *testing.M) {
	before := runtime.NumGoroutine()
	code := m.Run()
	// The fuzzing engine keeps goroutines of its own.
	if f := flag.Lookup("test.fuzz"); code == 0 && (f == nil || f.Value.String() == "") {
		if err := leaktest.Wait(before); err != nil {
			os.Stderr.WriteString("goroutines leaked: " + err.Error() + "\n")
			code = 1
		}
	}
	os.Exit(code)
}

// frontEndWithStore serves a memory store and returns a client of the
// same store for checks.
func frontEndWithStore(t *testing.T, opts ...Option) (*Server, string, beanspike.Queue) {
	t.Helper()
	root, err := memory.New()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { root.Close() })
	srv, err := NewServer(func() (beanspike.Queue, error) { return root.NewClient() }, opts...)
	if err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		srv.Serve(l)
		close(done)
	}()
	t.Cleanup(func() {
		srv.Close()
		<-done
	})
	return srv, l.Addr().String(), root
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); !cond(); time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
	}
}

func readyJobs(t *testing.T, q beanspike.Queue, tube string) int {
	t.Helper()
	st, err := q.StatsTube(context.Background(), tube)
	if errors.Is(err, beanspike.ErrNotFound) {
		return 0
	}
	if err != nil {
		t.Fatal(err)
	}
	return st.Ready
}

func TestNewServerOptions(t *testing.T) {
	newClient := newStore(t)
	for name, opts := range map[string][]Option{
		"negative job size": {WithMaxJobSize(-1)},
		"huge job size":     {WithMaxJobSize(MaxJobSizeLimit + 1)},
		"negative idle":     {WithIdleTimeout(-time.Second)},
	} {
		if _, err := NewServer(newClient, opts...); !errors.Is(err, beanspike.ErrInvalidArgument) {
			t.Errorf("%s: got %v, want ErrInvalidArgument", name, err)
		}
	}
	if _, err := NewServer(nil); !errors.Is(err, beanspike.ErrInvalidArgument) {
		t.Errorf("nil constructor: got %v", err)
	}
}

func TestClientConstructorFails(t *testing.T) {
	boom := errors.New("boom")
	srv, err := NewServer(func() (beanspike.Queue, error) { return nil, boom })
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	a, b := net.Pipe()
	defer a.Close()
	if err := srv.ServeConn(b); !errors.Is(err, boom) {
		t.Fatalf("ServeConn: %v, want boom", err)
	}
	if _, err := a.Read(make([]byte, 1)); err == nil {
		t.Fatal("connection still open")
	}
}

func TestServeAfterClose(t *testing.T) {
	srv, err := NewServer(newStore(t))
	if err != nil {
		t.Fatal(err)
	}
	srv.Close()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Serve(l); !errors.Is(err, ErrServerClosed) {
		t.Fatalf("Serve after Close: %v", err)
	}
	a, b := net.Pipe()
	defer a.Close()
	if err := srv.ServeConn(b); !errors.Is(err, ErrServerClosed) {
		t.Fatalf("ServeConn after Close: %v", err)
	}
}

// An overlong line is discarded as it arrives: a client sending megabytes
// without a line end gets one BAD_FORMAT and the connection still works.
func TestOverlongLineIsDiscarded(t *testing.T) {
	_, addr := startFrontEnd(t)
	c := dial(t, addr)
	chunk := strings.Repeat("x", 64<<10)
	for i := 0; i < 64; i++ { // 4 MiB
		c.send(chunk)
	}
	c.silent(50 * time.Millisecond)
	c.expect("\r\n", "BAD_FORMAT\r\n")
	c.expect("list-tube-used\r\n", "USING default\r\n")
}

// A refused put body is discarded without being stored, however large it
// claims to be.
func TestHugePutIsDiscarded(t *testing.T) {
	_, addr := startFrontEnd(t, WithMaxJobSize(1024))
	c := dial(t, addr)
	c.send("put 0 0 1 4294967295\r\n")
	chunk := strings.Repeat("b", 64<<10)
	for i := 0; i < 32; i++ {
		c.send(chunk)
	}
	c.silent(50 * time.Millisecond) // still discarding: no reply yet
	c.nc.Close()
	c2 := dial(t, addr)
	c2.expect("put 0 0 1 2000\r\n"+strings.Repeat("b", 2000)+"\r\nlist-tube-used\r\n", "JOB_TOO_BIG\r\n")
	c2.expect("", "USING default\r\n")
}

// A slow sender, one byte at a time, is served like any other.
func TestSlowSender(t *testing.T) {
	_, addr := startFrontEnd(t)
	c := dial(t, addr)
	msg := "put 1 0 10 5\r\nhello\r\nreserve\r\n"
	for i := 0; i < len(msg); i++ {
		c.send(msg[i : i+1])
		time.Sleep(time.Millisecond)
	}
	if got := c.reply(); got != "INSERTED 1\r\n" {
		t.Fatalf("put: %q", got)
	}
	if got := c.reply(); got != "RESERVED 1 5\r\nhello\r\n" {
		t.Fatalf("reserve: %q", got)
	}
}

// A peer that goes away in the middle of a put body stores nothing.
func TestTruncatedPut(t *testing.T) {
	_, addr, q := frontEndWithStore(t)
	c := dial(t, addr)
	c.send("put 0 0 10 10\r\nhalf")
	c.nc.Close()
	c2 := dial(t, addr)
	c2.expect("list-tube-used\r\n", "USING default\r\n")
	waitFor(t, "the truncated connection to end", func() bool {
		return !strings.Contains(c2.do("stats\r\n"), "current-connections: 2\n")
	})
	if n := readyJobs(t, q, "default"); n != 0 {
		t.Fatalf("%d jobs stored from a truncated put", n)
	}
}

// Pipelined commands are answered in order, and replies are coalesced.
func TestPipelining(t *testing.T) {
	_, addr := startFrontEnd(t)
	c := dial(t, addr)
	var b strings.Builder
	for i := 0; i < 100; i++ {
		b.WriteString("put 0 0 10 1\r\nx\r\n")
	}
	b.WriteString("reserve-with-timeout 0\r\n")
	c.send(b.String())
	for i := 1; i <= 100; i++ {
		if got, want := c.reply(), "INSERTED "+strconv.Itoa(i)+"\r\n"; got != want {
			t.Fatalf("reply %d: %q, want %q", i, got, want)
		}
	}
	if got := c.reply(); got != "RESERVED 1 1\r\nx\r\n" {
		t.Fatalf("reserve: %q", got)
	}
}

func TestIdleTimeout(t *testing.T) {
	_, addr, q := frontEndWithStore(t, WithIdleTimeout(200*time.Millisecond))
	idle := dial(t, addr)
	idle.eof(3 * time.Second)

	holder := dial(t, addr)
	holder.expect("put 0 0 100 1\r\na\r\n", "INSERTED 1\r\n")
	holder.expect("reserve\r\n", "RESERVED 1 1\r\na\r\n")
	holder.eof(3 * time.Second)
	waitFor(t, "the reservation to return", func() bool { return readyJobs(t, q, "default") == 1 })

	// A reserve waiting for a job is not idle.
	waiter := dial(t, addr)
	waiter.expect("reserve\r\n", "RESERVED 1 1\r\na\r\n")
	waiter.send("reserve-with-timeout 1\r\n")
	if got := waiter.replyWithin(3 * time.Second); got != "TIMED_OUT\r\n" {
		t.Fatalf("reserve: %q", got)
	}
}

func TestShutdown(t *testing.T) {
	srv, addr, q := frontEndWithStore(t)
	idle := dial(t, addr)
	idle.expect("list-tube-used\r\n", "USING default\r\n")
	holder := dial(t, addr)
	holder.expect("put 0 0 100 1\r\na\r\n", "INSERTED 1\r\n")
	holder.expect("reserve\r\n", "RESERVED 1 1\r\na\r\n")
	waiter := dial(t, addr)
	waiter.send("reserve\r\n")
	waitFor(t, "the waiter", func() bool {
		srv.mu.Lock()
		defer srv.mu.Unlock()
		return srv.waiting == 1
	})

	done := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		done <- srv.Shutdown(ctx)
	}()
	idle.eof(3 * time.Second)
	if got := waiter.reply(); got != "TIMED_OUT\r\n" {
		t.Fatalf("waiting reserve: %q", got)
	}
	waiter.eof(3 * time.Second)
	if _, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
		t.Error("the listener still accepts")
	}
	// The holder is still served until it lets go of its job.
	holder.expect("put 0 0 10 1\r\nb\r\n", "DRAINING\r\n")
	holder.expect("reserve-with-timeout 10\r\n", "TIMED_OUT\r\n")
	holder.expect("touch 1\r\n", "TOUCHED\r\n")
	select {
	case err := <-done:
		t.Fatalf("Shutdown returned %v while a job is reserved", err)
	case <-time.After(100 * time.Millisecond):
	}
	holder.expect("delete 1\r\n", "DELETED\r\n")
	holder.eof(3 * time.Second)
	if err := <-done; err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	if n := readyJobs(t, q, "default"); n != 0 {
		t.Fatalf("%d ready jobs", n)
	}
}

func TestShutdownDeadline(t *testing.T) {
	srv, addr, q := frontEndWithStore(t)
	holder := dial(t, addr)
	holder.expect("put 0 0 100 1\r\na\r\n", "INSERTED 1\r\n")
	holder.expect("reserve\r\n", "RESERVED 1 1\r\na\r\n")
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	if err := srv.Shutdown(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Shutdown: %v, want DeadlineExceeded", err)
	}
	holder.eof(3 * time.Second)
	if n := readyJobs(t, q, "default"); n != 1 {
		t.Fatalf("%d ready jobs, want the reserved one back", n)
	}
}

// A connection whose reservation lapses during a shutdown is closed then.
func TestShutdownReservationLapses(t *testing.T) {
	srv, addr, _ := frontEndWithStore(t)
	holder := dial(t, addr)
	holder.expect("put 0 0 1 1\r\na\r\n", "INSERTED 1\r\n")
	holder.expect("reserve\r\n", "RESERVED 1 1\r\na\r\n")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	start := time.Now()
	if err := srv.Shutdown(ctx); err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Fatalf("Shutdown took %s", d)
	}
	holder.eof(time.Second)
}

func TestCloseReturnsReservations(t *testing.T) {
	srv, addr, q := frontEndWithStore(t)
	c := dial(t, addr)
	c.expect("put 0 0 100 1\r\na\r\n", "INSERTED 1\r\n")
	c.expect("reserve\r\n", "RESERVED 1 1\r\na\r\n")
	w := dial(t, addr)
	w.send("reserve\r\n")
	srv.Close()
	c.closed(time.Second)
	w.closed(time.Second)
	if n := readyJobs(t, q, "default"); n != 1 {
		t.Fatalf("%d ready jobs after Close", n)
	}
}

// Replies to a connection that never reads stop at the socket's buffers;
// closing the server still ends it.
func TestUnreadReplies(t *testing.T) {
	srv, addr, _ := frontEndWithStore(t)
	c := dial(t, addr)
	c.expect("put 0 0 100 60000\r\n"+strings.Repeat("p", 60000)+"\r\n", "INSERTED 1\r\n")
	go func() {
		for i := 0; i < 500; i++ {
			if _, err := io.WriteString(c.nc, "peek 1\r\n"); err != nil {
				return
			}
		}
	}()
	time.Sleep(200 * time.Millisecond)
	done := make(chan struct{})
	go func() {
		srv.Close()
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Close hangs on a connection that does not read")
	}
}

func TestDrainingToggle(t *testing.T) {
	srv, addr := startFrontEnd(t)
	c := dial(t, addr)
	srv.SetDraining(true)
	if !srv.Draining() {
		t.Fatal("not draining")
	}
	c.expect("put 0 0 10 1\r\na\r\n", "DRAINING\r\n")
	srv.SetDraining(false)
	c.expect("put 0 0 10 1\r\na\r\n", "INSERTED 1\r\n")
}

// A connection keeps its reply buffer between commands only while it is
// small: a long list or stats document must not pin its memory for the
// rest of the connection.
func TestReplyBufferIsBounded(t *testing.T) {
	var out bytes.Buffer
	c := &conn{w: bufio.NewWriter(&out), line: make([]byte, 0, 64)}
	c.replyData(append(c.line[:0], "---\n- default\n"...))
	if cap(c.line) == 0 {
		t.Fatal("a small reply buffer was not kept")
	}
	names := make([]string, 1000)
	for i := range names {
		names[i] = strings.Repeat("t", 150) + strconv.Itoa(i)
	}
	big := appendList(c.line[:0], names)
	c.replyData(big)
	if cap(c.line) > keepBufSize {
		t.Fatalf("the connection keeps a reply buffer of %d bytes, more than %d", cap(c.line), keepBufSize)
	}
	if err := c.w.Flush(); err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(out.String(), "OK 14\r\n---\n- default\n\r\nOK ") {
		t.Fatalf("replies %.40q", out.String())
	}
}

// After DEADLINE_SOON the reservation still lapses at its deadline: the
// job returns to ready, counted as a timeout, and its old holder can no
// longer touch it. (beanstalkd times such a job out when its event loop
// gets to it, so the differential session stops short of the lapse.)
func TestDeadlineSoonLapse(t *testing.T) {
	_, addr := startFrontEnd(t)
	c := dial(t, addr)
	c.expect("put 0 0 2 1\r\nc\r\n", "INSERTED 1\r\n")
	c.expect("reserve\r\n", "RESERVED 1 1\r\nc\r\n")
	c.send("reserve-with-timeout 5\r\n")
	if got := c.replyWithin(3 * time.Second); got != "DEADLINE_SOON\r\n" {
		t.Fatalf("reserve-with-timeout while holding a job near its deadline = %q, want DEADLINE_SOON", got)
	}
	time.Sleep(1500 * time.Millisecond) // past the 2 s TTR
	c.expect("touch 1\r\n", "NOT_FOUND\r\n")
	stats := c.do("stats-job 1\r\n")
	for _, want := range []string{"state: ready\n", "timeouts: 1\n", "reserves: 1\n"} {
		if !strings.Contains(stats, want) {
			t.Errorf("stats-job after the lapse lacks %q:\n%s", want, stats)
		}
	}
}

// A client that pipelines commands and hangs up has them run only until a
// reply cannot be written, as beanstalkd does (it stops after one or two
// puts): not the whole pipeline.
func TestPipelinedAfterHangup(t *testing.T) {
	srv, addr, q := frontEndWithStore(t)
	nc, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	// The reserve holds the pipeline back until the client has gone.
	const puts = 500
	if _, err := io.WriteString(nc, "use gone\r\nreserve-with-timeout 1\r\n"+strings.Repeat("put 0 0 10 1\r\nx\r\n", puts)); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the connection to be served", func() bool {
		srv.mu.Lock()
		defer srv.mu.Unlock()
		return srv.totalConns > 0
	})
	nc.Close()
	var last int
	waitFor(t, "the connection to end", func() bool {
		srv.mu.Lock()
		defer srv.mu.Unlock()
		return len(srv.conns) == 0
	})
	last = readyJobs(t, q, "gone")
	if last >= 10 {
		t.Fatalf("%d of %d pipelined puts ran after their client hung up", last, puts)
	}
	t.Logf("%d puts ran", last)
}

// A client that announces a large body and sends a little of it makes the
// server allocate about what it sent, not what it announced.
func TestAnnouncedBodyNotAllocated(t *testing.T) {
	srv, addr, _ := frontEndWithStore(t, WithMaxJobSize(64<<20))
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	for range 4 {
		nc, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := io.WriteString(nc, "put 0 0 10 67108864\r\n"+strings.Repeat("x", 1<<20)); err != nil {
			t.Fatal(err)
		}
		nc.Close()
	}
	waitFor(t, "the connections to end", func() bool {
		srv.mu.Lock()
		defer srv.mu.Unlock()
		return srv.totalConns == 4 && len(srv.conns) == 0
	})
	runtime.ReadMemStats(&after)
	// 256 MiB if the announced bodies were allocated; about 8 MiB as
	// bodies grow with what arrives (the rest is other tests' noise).
	if got := after.TotalAlloc - before.TotalAlloc; got > 128<<20 {
		t.Fatalf("4 clients that sent 1 MiB of a 64 MiB body made the server allocate %d MiB", got>>20)
	}
	if srv.frees.Load() == 0 {
		t.Fatal("the memory of abandoned bodies was not given back")
	}
}
