package chanserv_test

import (
	"context"
	"runtime"
	"testing"
	"time"

	"github.com/beanspike/beanspike/chanserv"
	"github.com/beanspike/beanspike/chanserv/memmux"
	"github.com/beanspike/beanspike/chanserv/vnet"
)

// muxes are the multiplexers every test runs over.
var muxes = []struct {
	name string
	make func(testing.TB) (server, client chanserv.Multiplexer)
}{
	{"memmux", func(tb testing.TB) (chanserv.Multiplexer, chanserv.Multiplexer) {
		n := memmux.New()
		return n, n
	}},
	{"vnet", func(tb testing.TB) (chanserv.Multiplexer, chanserv.Multiplexer) {
		return vnetPair(tb)
	}},
}

// vnetPair links two vnet nodes over loopback TCP.
func vnetPair(tb testing.TB) (*vnet.Node, *vnet.Node) {
	tb.Helper()
	a, err := vnet.New()
	if err != nil {
		tb.Fatal(err)
	}
	b, err := vnet.New()
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		b.Close()
		a.Close()
	})
	addr, err := a.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := b.Connect(ctx, "tcp", addr.String()); err != nil {
		tb.Fatal(err)
	}
	return a, b
}

// env is a server serving h on "svc" and a client, over one multiplexer.
type env struct {
	srv *chanserv.Server
	cl  *chanserv.Client
}

func newEnv(tb testing.TB, mk func(testing.TB) (chanserv.Multiplexer, chanserv.Multiplexer), h chanserv.Handler, srvOpts, clOpts []chanserv.Option) env {
	tb.Helper()
	sm, cm := mk(tb)
	srv, err := chanserv.NewServer(sm, srvOpts...)
	if err != nil {
		tb.Fatal(err)
	}
	if err := srv.Handle("svc", h); err != nil {
		tb.Fatal(err)
	}
	cl, err := chanserv.NewClient(cm, clOpts...)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		cl.Close()
		srv.Close()
	})
	return env{srv, cl}
}

// forEachMux runs f as a subtest over every multiplexer.
func forEachMux(t *testing.T, f func(t *testing.T, mk func(testing.TB) (chanserv.Multiplexer, chanserv.Multiplexer))) {
	for _, m := range muxes {
		t.Run(m.name, func(t *testing.T) { f(t, m.make) })
	}
}

// waitGoroutines waits until at most n goroutines run, failing after a
// few seconds with a dump of the stacks.
func waitGoroutines(t testing.TB, n int) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		runtime.GC()
		got := runtime.NumGoroutine()
		if got <= n {
			return
		}
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<20)
			buf = buf[:runtime.Stack(buf, true)]
			t.Fatalf("%d goroutines, want at most %d:\n%s", got, n, buf)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func testCtx(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	return ctx
}
