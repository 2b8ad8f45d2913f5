// Package muxtest checks that a [chanserv.Multiplexer] does what chanserv
// and its remote queue need of one. Run it against any multiplexer, an
// AstraNet instance included, from a test of your own:
//
//	func TestMyMux(t *testing.T) {
//		muxtest.Run(t, muxtest.Harness{
//			New: func(t *testing.T) (server, client chanserv.Multiplexer) {
//				srv := astranet.New().Server()
//				addr := listen(t, srv) // srv.ListenAndServe("tcp4", ...)
//				cl := astranet.New().Client()
//				cl.Join("tcp4", addr)
//				return srv, cl
//			},
//			Features: muxtest.Features{}, // AstraNet's Close does not unblock Read
//		})
//	}
//
// The suite binds services, dials them and moves data both ways, over
// many connections at once; it checks ephemeral addresses (Bind "" or
// ":0"), the end of a connection on either side, closed listeners, dials
// of addresses nobody bound, and read deadlines. What a multiplexer may
// lack — Close unblocking a pending Read, a connection that passes
// golang.org/x/net/nettest's full net.Conn suite — is declared in
// [Features]; the checks of a missing feature are skipped with a message,
// never failed. chanserv works without those features: it never waits on
// a Read it has given up, and bounds every wait by a context.
//
// Each check has a watchdog, so that a multiplexer that hangs fails
// instead of stalling the test run. The suite cannot prove a multiplexer
// right: it may miss bugs, notably races; run it with -race.
//
// [chanserv.Multiplexer]: https://pkg.go.dev/github.com/beanspike/beanspike/chanserv#Multiplexer
package muxtest

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/beanspike/beanspike/chanserv"
	"golang.org/x/net/nettest"
)

// Harness describes the multiplexer under test.
type Harness struct {
	// New returns the two sides of a fresh link: the suite binds on
	// server and dials from client (they may be the same value). New
	// must arrange, with t.Cleanup, for both to be released at the end
	// of the test. It is called once per check.
	New func(t *testing.T) (server, client chanserv.Multiplexer)

	// Features are the optional behaviours the multiplexer has.
	Features Features

	// Timeout bounds each check. Defaults to 30 seconds.
	Timeout time.Duration
}

// Features are optional behaviours of a multiplexer. The checks of a
// feature not declared are skipped.
type Features struct {
	// CloseUnblocksRead: Close ends a Read waiting on the same
	// connection, as net.Conn's contract says. AstraNet's Close does
	// not.
	CloseUnblocksRead bool

	// NetConn: the connections pass golang.org/x/net/nettest.TestConn,
	// net.Conn's conformance suite (deadlines on every call, Close
	// unblocking everything, concurrent use).
	NetConn bool
}

// Run runs the suite as subtests of t.
func Run(t *testing.T, h Harness) {
	if h.New == nil {
		t.Fatal("muxtest: Harness.New is nil")
	}
	if h.Timeout <= 0 {
		h.Timeout = 30 * time.Second
	}
	checks := []struct {
		name string
		f    func(*testing.T, Harness)
	}{
		{"RoundTrip", testRoundTrip},
		{"LargeTransfer", testLargeTransfer},
		{"ManyConnections", testManyConnections},
		{"Ephemeral", testEphemeral},
		{"PeerClose", testPeerClose},
		{"ListenerClose", testListenerClose},
		{"Unbound", testUnbound},
		{"ReadDeadline", testReadDeadline},
		{"CloseUnblocksRead", testCloseUnblocksRead},
		{"NetConn", testNetConn},
	}
	for _, c := range checks {
		t.Run(c.name, func(t *testing.T) {
			done := make(chan struct{})
			timer := time.AfterFunc(h.Timeout, func() {
				select {
				case <-done:
				default:
					panic(fmt.Sprintf("muxtest: %s still running after %v: the multiplexer hangs", t.Name(), h.Timeout))
				}
			})
			defer func() {
				close(done)
				timer.Stop()
			}()
			c.f(t, h)
		})
	}
}

// serviceName returns a service name unique to the check.
func serviceName() string {
	return fmt.Sprintf("muxtest-%x", rand.Uint64())
}

// link binds a service on a fresh link and returns the listener and the
// client side.
func link(t *testing.T, h Harness) (net.Listener, chanserv.Multiplexer, string) {
	t.Helper()
	server, client := h.New(t)
	name := serviceName()
	l, err := server.Bind("", name)
	if err != nil {
		t.Fatalf("Bind(%q): %v", name, err)
	}
	t.Cleanup(func() { l.Close() })
	return l, client, name
}

// pair dials addr from client and accepts the connection on l. Accept
// runs while the dial does, since a multiplexer may wait for it to
// return the connection; and the first bytes are written before Accept
// returns, since a multiplexer may dial lazily.
func pair(t *testing.T, l net.Listener, client chanserv.Multiplexer, addr string) (c, s net.Conn) {
	t.Helper()
	c, s, err := connect(l, client, addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		c.Close()
		s.Close()
	})
	return c, s
}

// connect is pair without a test: the connection is opened by one byte
// that the server side reads.
func connect(l net.Listener, client chanserv.Multiplexer, addr string) (c, s net.Conn, err error) {
	type accepted struct {
		conn net.Conn
		err  error
	}
	ch := make(chan accepted, 1)
	go func() {
		s, err := l.Accept()
		ch <- accepted{s, err}
	}()
	c, err = client.DialTimeout("", addr, 10*time.Second)
	if err != nil {
		return nil, nil, fmt.Errorf("dial %q: %w", addr, err)
	}
	wrote := make(chan error, 1)
	go func() {
		_, err := c.Write([]byte{'!'})
		wrote <- err
	}()
	a := <-ch
	if a.err != nil {
		c.Close()
		return nil, nil, fmt.Errorf("accept: %w", a.err)
	}
	s = a.conn
	var b [1]byte
	if _, err := io.ReadFull(s, b[:]); err != nil || b[0] != '!' {
		c.Close()
		s.Close()
		return nil, nil, fmt.Errorf("first byte: %q, %v", b[:], err)
	}
	if err := <-wrote; err != nil {
		c.Close()
		s.Close()
		return nil, nil, fmt.Errorf("first Write: %w", err)
	}
	return c, s, nil
}

func testRoundTrip(t *testing.T, h Harness) {
	l, client, name := link(t, h)
	c, s := pair(t, l, client, name)
	// Writes run beside the reads: a multiplexer may be unbuffered.
	go c.Write([]byte("hello"))
	got := make([]byte, 5)
	if _, err := io.ReadFull(s, got); err != nil || string(got) != "hello" {
		t.Fatalf("server read %q, %v; want hello", got, err)
	}
	go s.Write([]byte("world"))
	if _, err := io.ReadFull(c, got); err != nil || string(got) != "world" {
		t.Fatalf("client read %q, %v; want world", got, err)
	}
}

func testLargeTransfer(t *testing.T, h Harness) {
	l, client, name := link(t, h)
	c, s := pair(t, l, client, name)
	up := randomBytes(4 << 20)
	down := randomBytes(4 << 20)
	// Both directions at once: a multiplexer must not need either side
	// to read before the other's writes go through.
	var wg sync.WaitGroup
	errs := make(chan error, 4)
	transfer := func(w, r net.Conn, p []byte) {
		defer wg.Done()
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := w.Write(p); err != nil {
				errs <- fmt.Errorf("write: %w", err)
			}
		}()
		got := make([]byte, len(p))
		if _, err := io.ReadFull(r, got); err != nil {
			errs <- fmt.Errorf("read: %w", err)
			return
		}
		if !bytes.Equal(got, p) {
			errs <- errors.New("bytes differ")
		}
	}
	wg.Add(2)
	go transfer(c, s, up)
	go transfer(s, c, down)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

func testManyConnections(t *testing.T, h Harness) {
	const n = 64
	l, client, name := link(t, h)
	go func() {
		for {
			s, err := l.Accept()
			if err != nil {
				return
			}
			go func() {
				defer s.Close()
				io.Copy(s, s)
			}()
		}
	}()
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, err := client.DialTimeout("", name, 10*time.Second)
			if err != nil {
				errs <- fmt.Errorf("dial %d: %w", i, err)
				return
			}
			defer c.Close()
			msg := fmt.Appendf(nil, "connection %d", i)
			for range 10 {
				if _, err := c.Write(msg); err != nil {
					errs <- fmt.Errorf("write %d: %w", i, err)
					return
				}
				got := make([]byte, len(msg))
				if _, err := io.ReadFull(c, got); err != nil || !bytes.Equal(got, msg) {
					errs <- fmt.Errorf("connection %d echoed %q, %v", i, got, err)
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

func testEphemeral(t *testing.T, h Harness) {
	server, client := h.New(t)
	var ls []net.Listener
	for _, laddr := range []string{"", ":0", ":0"} {
		l, err := server.Bind("", laddr)
		if err != nil {
			t.Fatalf("Bind(%q): %v", laddr, err)
		}
		t.Cleanup(func() { l.Close() })
		for _, o := range ls {
			if o.Addr().String() == l.Addr().String() {
				t.Fatalf("two ephemeral binds got the address %q", l.Addr())
			}
		}
		ls = append(ls, l)
	}
	for i, l := range ls {
		c, s := pair(t, l, client, l.Addr().String())
		msg := fmt.Appendf(nil, "to %d", i)
		go c.Write(msg)
		got := make([]byte, len(msg))
		if _, err := io.ReadFull(s, got); err != nil || !bytes.Equal(got, msg) {
			t.Fatalf("listener %d read %q, %v; want %q", i, got, err, msg)
		}
	}
}

func testPeerClose(t *testing.T, h Harness) {
	l, client, name := link(t, h)
	c, s := pair(t, l, client, name)
	go func() {
		c.Write([]byte("last"))
		c.Close()
	}()
	got, err := io.ReadAll(s)
	if string(got) != "last" {
		t.Fatalf("server read %q before the end (%v), want %q", got, err, "last")
	}
	// The other way round: the client sees the end.
	c2, s2 := pair(t, l, client, name)
	s2.Close()
	c2.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := c2.Read(make([]byte, 1)); err == nil {
		t.Fatal("client Read after the server closed returned no error")
	} else if ne, ok := err.(net.Error); ok && ne.Timeout() {
		t.Fatal("client Read after the server closed timed out: the end never arrived")
	}
}

func testListenerClose(t *testing.T, h Harness) {
	server, _ := h.New(t)
	name := serviceName()
	l, err := server.Bind("", name)
	if err != nil {
		t.Fatal(err)
	}
	accepted := make(chan error, 1)
	go func() {
		_, err := l.Accept()
		accepted <- err
	}()
	time.Sleep(10 * time.Millisecond)
	l.Close()
	if err := <-accepted; err == nil {
		t.Fatal("Accept on a closed listener returned a connection")
	}
	l2, err := server.Bind("", name)
	if err != nil {
		t.Fatalf("Bind of an address whose listener was closed: %v", err)
	}
	l2.Close()
}

func testUnbound(t *testing.T, h Harness) {
	_, client := h.New(t)
	const wait = 500 * time.Millisecond
	start := time.Now()
	c, err := client.DialTimeout("", serviceName(), wait)
	if err != nil {
		return // refused at once, or after the timeout: both fine
	}
	defer c.Close()
	// A multiplexer that dials lazily reports nothing at the dial; the
	// connection must then carry nothing: a Read fails, by its deadline
	// at the latest.
	c.SetReadDeadline(time.Now().Add(wait))
	if n, err := c.Read(make([]byte, 1)); err == nil {
		t.Fatalf("Read on a connection to an unbound address returned %d bytes", n)
	}
	if took := time.Since(start); took > 10*wait {
		t.Fatalf("a dial to an unbound address took %v to fail with a %v timeout", took, wait)
	}
}

func testReadDeadline(t *testing.T, h Harness) {
	l, client, name := link(t, h)
	c, _ := pair(t, l, client, name)
	c.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
	_, err := c.Read(make([]byte, 1))
	var ne net.Error
	if !errors.As(err, &ne) || !ne.Timeout() {
		t.Fatalf("Read past its deadline: %v, want a net.Error that times out", err)
	}
}

func testCloseUnblocksRead(t *testing.T, h Harness) {
	if !h.Features.CloseUnblocksRead {
		t.Skip("muxtest: the multiplexer does not declare Features.CloseUnblocksRead")
	}
	l, client, name := link(t, h)
	c, _ := pair(t, l, client, name)
	got := make(chan error, 1)
	go func() {
		_, err := c.Read(make([]byte, 1))
		got <- err
	}()
	time.Sleep(20 * time.Millisecond)
	c.Close()
	select {
	case err := <-got:
		if err == nil {
			t.Fatal("Read ended by Close returned no error")
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Close did not unblock a pending Read")
	}
}

func testNetConn(t *testing.T, h Harness) {
	if !h.Features.NetConn {
		t.Skip("muxtest: the multiplexer does not declare Features.NetConn")
	}
	nettest.TestConn(t, func() (c1, c2 net.Conn, stop func(), err error) {
		server, client := h.New(t)
		name := serviceName()
		l, err := server.Bind("", name)
		if err != nil {
			return nil, nil, nil, err
		}
		c, s, err := connect(l, client, name)
		l.Close()
		if err != nil {
			return nil, nil, nil, err
		}
		return c, s, func() { c.Close(); s.Close() }, nil
	})
}

func randomBytes(n int) []byte {
	p := make([]byte, n)
	for i := 0; i < n; i += 8 {
		v := rand.Uint64()
		for j := 0; j < 8 && i+j < n; j++ {
			p[i+j] = byte(v >> (8 * j))
		}
	}
	return p
}
