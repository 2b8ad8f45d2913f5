package beanstalk

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/beanspike/beanspike"
	"github.com/beanspike/beanspike/backend/memory"
)

// beanstalkdPath finds the beanstalkd binary. Without it the test fails
// when CI is set (CI installs it) and is skipped otherwise.
func beanstalkdPath(tb testing.TB) string {
	tb.Helper()
	if p, err := exec.LookPath("beanstalkd"); err == nil {
		return p
	}
	if _, err := os.Stat("/usr/bin/beanstalkd"); err == nil {
		return "/usr/bin/beanstalkd"
	}
	if os.Getenv("CI") != "" {
		tb.Fatal("beanstalkd is not installed, and CI is set: the differential tests need it")
	}
	tb.Skip("beanstalkd is not installed: skipping the comparison with it (install the beanstalkd package to run it)")
	return ""
}

// beanstalkd is a running beanstalkd process.
type beanstalkd struct {
	addr string
	cmd  *exec.Cmd
}

// startBeanstalkd starts a fresh beanstalkd on a free port of 127.0.0.1.
// It is stopped when the test ends.
func startBeanstalkd(tb testing.TB, args ...string) beanstalkd {
	tb.Helper()
	bin := beanstalkdPath(tb)
	for attempt := 0; attempt < 5; attempt++ {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			tb.Fatal(err)
		}
		port := strconv.Itoa(l.Addr().(*net.TCPAddr).Port)
		l.Close()
		cmd := exec.Command(bin, append([]string{"-l", "127.0.0.1", "-p", port}, args...)...)
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		if err := cmd.Start(); err != nil {
			tb.Fatal(err)
		}
		exited := make(chan struct{})
		go func() {
			cmd.Wait()
			close(exited)
		}()
		addr := "127.0.0.1:" + port
		deadline := time.Now().Add(5 * time.Second)
		for time.Now().Before(deadline) {
			select {
			case <-exited:
				deadline = time.Time{} // the port was taken: try another
				continue
			default:
			}
			c, err := net.DialTimeout("tcp", addr, 100*time.Millisecond)
			if err == nil {
				c.Close()
				tb.Cleanup(func() {
					cmd.Process.Kill()
					<-exited
				})
				return beanstalkd{addr: addr, cmd: cmd}
			}
			time.Sleep(5 * time.Millisecond)
		}
		cmd.Process.Kill()
		<-exited
		tb.Logf("beanstalkd did not start on %s: %s", addr, stderr.String())
	}
	tb.Fatal("could not start beanstalkd")
	return beanstalkd{}
}

// newStore makes a memory store whose root client lives until the test
// ends, and a constructor of more clients of it.
func newStore(tb testing.TB) func() (beanspike.Queue, error) {
	tb.Helper()
	root, err := memory.New()
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { root.Close() })
	return func() (beanspike.Queue, error) {
		q, err := root.NewClient()
		if err != nil {
			return nil, err
		}
		return q, nil
	}
}

// startFrontEnd serves a fresh memory store on a free port of 127.0.0.1
// and returns the server and its address. The server is closed when the
// test ends.
func startFrontEnd(tb testing.TB, opts ...Option) (*Server, string) {
	tb.Helper()
	srv, err := NewServer(newStore(tb), opts...)
	if err != nil {
		tb.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(l) }()
	// Probe it as startBeanstalkd probes beanstalkd, so that both count
	// one connection before the test's.
	c, err := net.Dial("tcp", l.Addr().String())
	if err != nil {
		tb.Fatal(err)
	}
	c.Close()
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(time.Millisecond) {
		srv.mu.Lock()
		n, total := len(srv.conns), srv.totalConns
		srv.mu.Unlock()
		if n == 0 && total == 1 {
			break
		}
		if time.Now().After(deadline) {
			tb.Fatal("the probe connection did not end")
		}
	}
	tb.Cleanup(func() {
		srv.Close()
		if err := <-served; !errors.Is(err, ErrServerClosed) {
			tb.Errorf("Serve returned %v, want ErrServerClosed", err)
		}
	})
	return srv, l.Addr().String()
}

// client is a raw protocol connection for tests.
type client struct {
	tb testing.TB
	nc net.Conn
	r  *bufio.Reader
}

func dial(tb testing.TB, addr string) *client {
	tb.Helper()
	nc, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { nc.Close() })
	return &client{tb: tb, nc: nc, r: bufio.NewReader(nc)}
}

func (c *client) send(s string) {
	c.tb.Helper()
	c.nc.SetWriteDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(c.nc, s); err != nil {
		c.tb.Fatalf("send %q: %v", s, err)
	}
}

// readReply reads one reply: its line and, for OK, RESERVED and FOUND,
// its body. It returns the reply without the body's trailing CRLF split
// off, exactly as sent.
func readReply(r *bufio.Reader) (string, error) {
	line, err := r.ReadString('\n')
	if err != nil {
		return line, err
	}
	f := strings.Fields(line)
	n := -1
	switch {
	case len(f) == 2 && f[0] == "OK":
		n, err = strconv.Atoi(f[1])
	case len(f) == 3 && (f[0] == "RESERVED" || f[0] == "FOUND"):
		n, err = strconv.Atoi(f[2])
	}
	if err != nil {
		return line, fmt.Errorf("bad size in %q: %w", line, err)
	}
	if n < 0 {
		return line, nil
	}
	body := make([]byte, n+2)
	if _, err := io.ReadFull(r, body); err != nil {
		return line, err
	}
	return line + string(body), nil
}

// reply reads one reply, waiting at most d.
func (c *client) replyWithin(d time.Duration) string {
	c.tb.Helper()
	c.nc.SetReadDeadline(time.Now().Add(d))
	s, err := readReply(c.r)
	if err != nil {
		c.tb.Fatalf("reading reply (got %q): %v", s, err)
	}
	return s
}

func (c *client) reply() string {
	c.tb.Helper()
	return c.replyWithin(10 * time.Second)
}

// do sends a command and returns its reply.
func (c *client) do(s string) string {
	c.tb.Helper()
	c.send(s)
	return c.reply()
}

// expect sends a command and checks its reply.
func (c *client) expect(s, want string) {
	c.tb.Helper()
	if got := c.do(s); got != want {
		c.tb.Fatalf("%q: got %q, want %q", s, got, want)
	}
}

// silent checks that nothing arrives for d.
func (c *client) silent(d time.Duration) {
	c.tb.Helper()
	c.nc.SetReadDeadline(time.Now().Add(d))
	if b, err := c.r.Peek(1); err == nil {
		c.tb.Fatalf("unexpected input %q", b)
	} else if !errors.Is(err, os.ErrDeadlineExceeded) {
		c.tb.Fatalf("connection failed while expecting silence: %v", err)
	}
}

// eof checks that the server closes the connection within d, after any
// input it still sends.
func (c *client) eof(d time.Duration) {
	c.tb.Helper()
	c.nc.SetReadDeadline(time.Now().Add(d))
	rest, err := io.ReadAll(c.r)
	if err != nil {
		c.tb.Fatalf("want the connection closed: %v (after %q)", err, rest)
	}
	if len(rest) > 0 {
		c.tb.Fatalf("unexpected input before EOF: %q", rest)
	}
}

// closed checks that the connection ends within d, by EOF or reset.
func (c *client) closed(d time.Duration) {
	c.tb.Helper()
	c.nc.SetReadDeadline(time.Now().Add(d))
	_, err := io.ReadAll(c.r)
	if errors.Is(err, os.ErrDeadlineExceeded) {
		c.tb.Fatal("the connection is still open")
	}
}
