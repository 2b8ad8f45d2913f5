package vnet_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/beanspike/beanspike/chanserv/vnet"
)

// pair links two nodes made with the given options over loopback TCP: a
// listens, b connects. Both are closed at the end of the test.
func pair(t *testing.T, aOpts, bOpts []vnet.Option) (a, b *vnet.Node) {
	t.Helper()
	a = newNode(t, aOpts...)
	b = newNode(t, bOpts...)
	addr, err := a.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	connect(t, b, addr.String())
	return a, b
}

func newNode(t *testing.T, opts ...vnet.Option) *vnet.Node {
	t.Helper()
	n, err := vnet.New(opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.Close() })
	return n
}

func connect(t *testing.T, n *vnet.Node, addr string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := n.Connect(ctx, "tcp", addr); err != nil {
		t.Fatal(err)
	}
}

// roundTrip dials service on n and checks that a byte comes back from
// an echo service. It returns the open connection or the error.
func roundTrip(n *vnet.Node, service string) (net.Conn, error) {
	c, err := n.DialTimeout("", service, 5*time.Second)
	if err != nil {
		return nil, err
	}
	c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := c.Write([]byte{7}); err != nil {
		c.Close()
		return nil, err
	}
	var b [1]byte
	if _, err := io.ReadFull(c, b[:]); err != nil {
		c.Close()
		return nil, err
	}
	c.SetDeadline(time.Time{})
	return c, nil
}

func TestOptionsValidated(t *testing.T) {
	for name, o := range map[string]vnet.Option{
		"window":          vnet.WithWindow(1024),
		"max conns":       vnet.WithMaxConns(0),
		"max streams":     vnet.WithMaxStreams(0),
		"accept backlog":  vnet.WithAcceptBacklog(0),
		"session buffer":  vnet.WithSessionBuffer(1024),
		"max buffer":      vnet.WithMaxBuffer(1024),
		"keepalive":       vnet.WithKeepAlive(time.Second, 0),
		"keepalive <0":    vnet.WithKeepAlive(-time.Second, time.Second),
		"nil logger":      vnet.WithLogger(nil),
		"buffer < window": vnet.WithSessionBuffer(512 << 10), // under the 1 MiB default window
	} {
		if _, err := vnet.New(o); !errors.Is(err, vnet.ErrInvalidOption) {
			t.Errorf("%s: %v, want ErrInvalidOption", name, err)
		}
	}
}

func TestMaxStreams(t *testing.T) {
	a, b := pair(t, []vnet.Option{vnet.WithMaxStreams(3)}, nil)
	serveEcho(t, a, "echo")
	var open []net.Conn
	for range 3 {
		c, err := roundTrip(b, "echo")
		if err != nil {
			t.Fatal(err)
		}
		open = append(open, c)
	}
	if _, err := roundTrip(b, "echo"); !errors.Is(err, vnet.ErrRefused) {
		t.Fatalf("fourth stream: %v, want ErrRefused", err)
	}
	// A closed stream makes room, once the echo has closed its end too.
	open[0].Close()
	deadline := time.Now().Add(5 * time.Second)
	for {
		c, err := roundTrip(b, "echo")
		if err == nil {
			c.Close()
			break
		}
		if !errors.Is(err, vnet.ErrRefused) || time.Now().After(deadline) {
			t.Fatalf("after a close: %v", err)
		}
		time.Sleep(10 * time.Millisecond)
	}
	for _, c := range open[1:] {
		c.Close()
	}
}

func TestSessionBuffer(t *testing.T) {
	const window = 256 << 10
	a, b := pair(t, []vnet.Option{vnet.WithWindow(window), vnet.WithSessionBuffer(2 * window)}, nil)
	serveEcho(t, a, "echo")
	for range 2 {
		c, err := roundTrip(b, "echo")
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
	}
	if _, err := roundTrip(b, "echo"); !errors.Is(err, vnet.ErrRefused) {
		t.Fatalf("third stream: %v, want ErrRefused", err)
	}
}

func TestMaxBuffer(t *testing.T) {
	const window = 256 << 10
	// The two control streams of each connection hold a window each, and
	// so do the service streams: room for three streams.
	h := &recordHandler{}
	a := newNode(t, vnet.WithWindow(window), vnet.WithMaxBuffer(7*window), vnet.WithLogger(slog.New(h)))
	serveEcho(t, a, "echo")
	addr, err := a.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	b1, b2 := newNode(t), newNode(t)
	connect(t, b1, addr.String())
	connect(t, b2, addr.String())
	c1, err := roundTrip(b1, "echo")
	if err != nil {
		t.Fatal(err)
	}
	c2, err := roundTrip(b2, "echo")
	if err != nil {
		t.Fatal(err)
	}
	defer c2.Close()
	c3, err := roundTrip(b1, "echo")
	if err != nil {
		t.Fatal(err)
	}
	defer c3.Close()
	if _, err := roundTrip(b2, "echo"); !errors.Is(err, vnet.ErrRefused) {
		t.Fatalf("stream past the node's budget: %v, want ErrRefused", err)
	}
	if lines := h.waitLines(slog.LevelWarn, "buffer budget"); len(lines) != 1 {
		t.Fatalf("logged %q, want one line", lines)
	}
	// One client's stream closing makes room for the other's.
	c1.Close()
	deadline := time.Now().Add(5 * time.Second)
	for {
		c, err := roundTrip(b2, "echo")
		if err == nil {
			c.Close()
			break
		}
		if !errors.Is(err, vnet.ErrRefused) || time.Now().After(deadline) {
			t.Fatalf("after a close: %v", err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestMaxConns(t *testing.T) {
	h := &recordHandler{}
	a := newNode(t, vnet.WithMaxConns(2), vnet.WithLogger(slog.New(h)))
	serveEcho(t, a, "echo")
	addr, err := a.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	b1, b2 := newNode(t), newNode(t)
	connect(t, b1, addr.String())
	connect(t, b2, addr.String())
	for _, b := range []*vnet.Node{b1, b2} {
		c, err := roundTrip(b, "echo")
		if err != nil {
			t.Fatal(err)
		}
		c.Close()
	}
	// The third connection is refused at once: the peer reads a go-away
	// and the connection's end.
	raw, err := net.Dial("tcp", addr.String())
	if err != nil {
		t.Fatal(err)
	}
	raw.SetReadDeadline(time.Now().Add(5 * time.Second))
	got, err := io.ReadAll(raw)
	raw.Close()
	if err != nil || len(got) != 12 || got[1] != 3 {
		t.Fatalf("refused connection read % x, %v; want a go-away and EOF", got, err)
	}
	if lines := h.waitLines(slog.LevelWarn, "at its limit"); len(lines) != 1 {
		t.Fatalf("logged %q, want one line", lines)
	}
	// A node that connects past the limit loses its session and logs why.
	h3 := &recordHandler{}
	b3 := newNode(t, vnet.WithLogger(slog.New(h3)))
	connect(t, b3, addr.String())
	if _, err := b3.DialTimeout("", "echo", 200*time.Millisecond); !errors.Is(err, vnet.ErrNoRoute) {
		t.Fatalf("dial past the limit: %v, want ErrNoRoute", err)
	}
	if lines := h3.waitLines(slog.LevelWarn, "refused the connection"); len(lines) != 1 {
		t.Fatalf("refused node logged %q, want one line", lines)
	}
	// A connection that ends makes room.
	b1.Close()
	b4 := newNode(t)
	deadline := time.Now().Add(5 * time.Second)
	for {
		connect(t, b4, addr.String())
		c, err := b4.DialTimeout("", "echo", 300*time.Millisecond)
		if err == nil {
			c.Close()
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after a connection ended: %v", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestUnknownAddressReset checks that a stream to an address nobody binds
// is reset at once: the opener's writes fail instead of filling the
// window and waiting.
func TestUnknownAddressReset(t *testing.T) {
	a, b := pair(t, nil, nil)
	l, err := a.Bind("", "svc")
	if err != nil {
		t.Fatal(err)
	}
	c, err := b.DialTimeout("", "svc", 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	l.Close() // before the stream reaches it
	c.SetWriteDeadline(time.Now().Add(5 * time.Second))
	big := make([]byte, 64<<10)
	var werr error
	for range 64 { // 4 MiB, four windows
		if _, werr = c.Write(big); werr != nil {
			break
		}
	}
	if !errors.Is(werr, vnet.ErrNoRoute) {
		t.Fatalf("write to an unbound address: %v, want ErrNoRoute", werr)
	}
}

// TestPeerNotReading checks that a service writing to a peer that reads
// nothing is held back by the stream window: it gets no further than the
// window, and the node holds no more.
func TestPeerNotReading(t *testing.T) {
	const window = 256 << 10
	a, b := pair(t, nil, []vnet.Option{vnet.WithWindow(window)})
	l, err := a.Bind("", "firehose")
	if err != nil {
		t.Fatal(err)
	}
	var (
		written atomic.Int64
		wg      sync.WaitGroup
	)
	wg.Add(1)
	go func() {
		defer wg.Done()
		c, err := l.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		buf := make([]byte, 16<<10)
		for {
			n, err := c.Write(buf)
			written.Add(int64(n))
			if err != nil {
				return
			}
		}
	}()
	c, err := b.DialTimeout("", "firehose", 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Write([]byte{1}); err != nil {
		t.Fatal(err)
	}
	var before runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	time.Sleep(500 * time.Millisecond)
	if w := written.Load(); w > window {
		t.Fatalf("the service wrote %d bytes to a peer that reads nothing, window %d", w, window)
	}
	if written.Load() == 0 {
		t.Fatal("the service wrote nothing")
	}
	var after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&after)
	if grew := int64(after.HeapAlloc) - int64(before.HeapAlloc); grew > 4*window {
		t.Fatalf("heap grew by %d bytes while the peer read nothing", grew)
	}
	c.Close()
	l.Close()
	a.Close()
	wg.Wait()
}

// stallProxy forwards between a client and addr until stalled, after
// which it moves no more bytes either way but keeps the connections open.
type stallProxy struct {
	l       net.Listener
	target  string
	stalled chan struct{}
	once    sync.Once
}

func newStallProxy(t *testing.T, target string) *stallProxy {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &stallProxy{l: l, target: target, stalled: make(chan struct{})}
	var conns []net.Conn
	var mu sync.Mutex
	t.Cleanup(func() {
		l.Close()
		mu.Lock()
		for _, c := range conns {
			c.Close()
		}
		mu.Unlock()
	})
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			u, err := net.Dial("tcp", target)
			if err != nil {
				c.Close()
				return
			}
			mu.Lock()
			conns = append(conns, c, u)
			mu.Unlock()
			go p.pipe(c, u)
			go p.pipe(u, c)
		}
	}()
	return p
}

func (p *stallProxy) pipe(dst, src net.Conn) {
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		select {
		case <-p.stalled:
			<-make(chan struct{}) // hold on; Cleanup closes the connections
		default:
		}
		if n > 0 {
			if _, err := dst.Write(buf[:n]); err != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}

func (p *stallProxy) stall() { p.once.Do(func() { close(p.stalled) }) }

func TestKeepAliveFailure(t *testing.T) {
	a := newNode(t)
	serveEcho(t, a, "echo")
	addr, err := a.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := newStallProxy(t, addr.String())
	h := &recordHandler{}
	b := newNode(t, vnet.WithKeepAlive(50*time.Millisecond, 200*time.Millisecond), vnet.WithLogger(slog.New(h)))
	connect(t, b, p.l.Addr().String())
	c, err := roundTrip(b, "echo")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	p.stall()
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	start := time.Now()
	_, err = c.Read(make([]byte, 1))
	if !errors.Is(err, vnet.ErrKeepAlive) {
		t.Fatalf("read over a stalled link: %v, want ErrKeepAlive", err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Fatalf("keepalive failure took %v", d)
	}
	if lines := h.waitLines(slog.LevelWarn, "missed a keepalive"); len(lines) != 1 {
		t.Fatalf("logged %q, want one line about the keepalive", lines)
	}
}

// TestPeerClosedIsNotKeepAlive checks that a session lost otherwise is
// not reported as a keepalive failure.
func TestPeerClosedIsNotKeepAlive(t *testing.T) {
	a, b := pair(t, nil, []vnet.Option{vnet.WithKeepAlive(50*time.Millisecond, 200*time.Millisecond)})
	serveEcho(t, a, "echo")
	c, err := roundTrip(b, "echo")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	a.Close()
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	_, err = c.Read(make([]byte, 1))
	if err == nil || errors.Is(err, vnet.ErrKeepAlive) || errors.Is(err, vnet.ErrRefused) {
		t.Fatalf("read after the peer closed: %v", err)
	}
}
