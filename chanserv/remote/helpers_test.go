package remote_test

import (
	"context"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/beanspike/beanspike"
	"github.com/beanspike/beanspike/backend/memory"
	"github.com/beanspike/beanspike/chanserv"
	"github.com/beanspike/beanspike/chanserv/internal/muxtest"
	"github.com/beanspike/beanspike/chanserv/remote"
	"github.com/beanspike/beanspike/internal/leaktest"
)

// fixture is a memory store served by a remote server, and the client
// side of the link to it.
type fixture struct {
	store *memory.Queue
	srv   *remote.Server
	cm    chanserv.Multiplexer
}

func newFixture(tb testing.TB, mk muxtest.Maker, opts ...remote.Option) *fixture {
	tb.Helper()
	return wrappedFixture(tb, mk, func(c beanspike.Queue) beanspike.Queue { return c }, opts...)
}

// wrappedFixture is newFixture whose server gives each session wrap of a
// client of the store.
func wrappedFixture(tb testing.TB, mk muxtest.Maker, wrap func(beanspike.Queue) beanspike.Queue, opts ...remote.Option) *fixture {
	tb.Helper()
	store, err := memory.New()
	if err != nil {
		tb.Fatal(err)
	}
	srv, err := remote.NewServer(func() (beanspike.Queue, error) {
		c, err := store.NewClient()
		return wrap(c), err
	}, opts...)
	if err != nil {
		tb.Fatal(err)
	}
	sm, cm := mk(tb)
	if err := srv.Listen(sm, remote.DefaultService); err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		srv.Close()
		store.Close()
	})
	return &fixture{store: store, srv: srv, cm: cm}
}

// dial opens a remote client closed at the end of the test.
func (f *fixture) dial(tb testing.TB, opts ...remote.Option) *remote.Queue {
	tb.Helper()
	return dialMux(tb, f.cm, opts...)
}

func dialMux(tb testing.TB, mpx chanserv.Multiplexer, opts ...remote.Option) *remote.Queue {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	q, err := remote.Dial(ctx, mpx, remote.DefaultService, opts...)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { q.Close() })
	return q
}

// cutMux wraps a multiplexer and can cut every connection it dialled, as
// a network failure or a killed process would.
type cutMux struct {
	chanserv.Multiplexer
	mu    sync.Mutex
	conns []net.Conn
}

func (m *cutMux) DialTimeout(network, address string, timeout time.Duration) (net.Conn, error) {
	c, err := m.Multiplexer.DialTimeout(network, address, timeout)
	if err == nil {
		m.mu.Lock()
		m.conns = append(m.conns, c)
		m.mu.Unlock()
	}
	return c, err
}

// cut breaks every connection dialled so far: it resets those that can
// be reset, as a lost link does, and closes the others.
func (m *cutMux) cut() {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, c := range m.conns {
		if r, ok := c.(interface{ Reset() }); ok {
			r.Reset()
		} else {
			c.Close()
		}
	}
	m.conns = nil
}

// testCtx is a context that ends with the test, bounded for safety.
func testCtx(tb testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	tb.Cleanup(cancel)
	return ctx
}

// eventually polls cond until it holds or a few seconds pass.
func eventually(tb testing.TB, what string, cond func() bool) {
	tb.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			tb.Fatalf("%s: still not so after 5s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// noLeaks fails the test if goroutines of the transport outlive it.
func noLeaks(tb testing.TB) {
	tb.Helper()
	leaktest.None(tb, func(g string) bool {
		return (strings.Contains(g, "beanspike/chanserv") || strings.Contains(g, "libp2p/go-yamux")) && !strings.Contains(g, "_test.")
	})
}
