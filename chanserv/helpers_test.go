package chanserv_test

import (
	"context"
	"testing"
	"time"

	"github.com/beanspike/beanspike/chanserv"
	"github.com/beanspike/beanspike/chanserv/internal/muxtest"
)

// env is a server serving h on "svc" and a client, over one multiplexer.
type env struct {
	srv *chanserv.Server
	cl  *chanserv.Client
}

func newEnv(tb testing.TB, mk muxtest.Maker, h chanserv.Handler, srvOpts, clOpts []chanserv.Option) env {
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
func forEachMux(t *testing.T, f func(t *testing.T, mk muxtest.Maker)) {
	for _, m := range muxtest.All() {
		t.Run(m.Name, func(t *testing.T) { f(t, m.Make) })
	}
}

func testCtx(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	return ctx
}
