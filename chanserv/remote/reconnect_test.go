package remote_test

import (
	"context"
	"errors"
	"net"
	"testing"
	"time"

	"github.com/beanspike/beanspike"
	"github.com/beanspike/beanspike/backend/memory"
	"github.com/beanspike/beanspike/chanserv"
	"github.com/beanspike/beanspike/chanserv/internal/muxtest"
	"github.com/beanspike/beanspike/chanserv/remote"
	"github.com/beanspike/beanspike/chanserv/vnet"
)

// reserveAsync starts a Reserve of tube with ctx and returns where its
// error arrives.
func reserveAsync(ctx context.Context, q beanspike.Queue, tube string) <-chan error {
	ch := make(chan error, 1)
	go func() {
		_, err := q.Reserve(ctx, tube)
		ch <- err
	}()
	return ch
}

func within(t *testing.T, ch <-chan error, d time.Duration, what string) error {
	t.Helper()
	select {
	case err := <-ch:
		return err
	case <-time.After(d):
		t.Fatalf("%s: still waiting after %v", what, d)
		return nil
	}
}

// TestReconnect restarts the server under a client: the call in flight
// fails with ErrUnavailable, and later calls use a new session without
// anything done by the caller.
func TestReconnect(t *testing.T) {
	for _, m := range muxtest.All() {
		t.Run(m.Name, func(t *testing.T) {
			ctx := testCtx(t)
			store, err := memory.New()
			if err != nil {
				t.Fatal(err)
			}
			defer store.Close()
			sm, cm := m.Make(t)
			serve := func() *remote.Server {
				srv, err := remote.NewServer(func() (beanspike.Queue, error) { return store.NewClient() })
				if err != nil {
					t.Fatal(err)
				}
				if err := srv.Listen(sm, remote.DefaultService); err != nil {
					t.Fatal(err)
				}
				return srv
			}
			srv := serve()
			q := dialMux(t, cm, remote.WithBackoff(10*time.Millisecond, 100*time.Millisecond))
			if _, err := q.Put(ctx, "t", []byte("before")); err != nil {
				t.Fatal(err)
			}
			inFlight := reserveAsync(ctx, q, "empty")
			time.Sleep(50 * time.Millisecond) // the Reserve waits on the server
			srv.Close()
			err = within(t, inFlight, 5*time.Second, "Reserve in flight when the server stopped")
			if !errors.Is(err, beanspike.ErrUnavailable) {
				t.Fatalf("Reserve in flight when the server stopped: %v, want ErrUnavailable", err)
			}
			srv = serve()
			defer srv.Close()
			// The next calls reach the new server, once the client has
			// reopened its session.
			var id beanspike.ID
			eventually(t, "a Put through the reopened session", func() bool {
				cctx, cancel := context.WithTimeout(ctx, time.Second)
				defer cancel()
				id, err = q.Put(cctx, "t", []byte("after"))
				return err == nil
			})
			j, err := q.ReserveJob(ctx, id)
			if err != nil || string(j.Body) != "after" {
				t.Fatalf("ReserveJob after the restart = %v, %v", j, err)
			}
			if err := q.Delete(ctx, id); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// TestOutcomeUnknown cuts the connection under calls in flight: they
// fail with ErrUnavailable and ErrOutcomeUnknown, since the server may
// have carried them out; a call made after goes through a new session.
func TestOutcomeUnknown(t *testing.T) {
	for _, m := range muxtest.All() {
		t.Run(m.Name, func(t *testing.T) {
			ctx := testCtx(t)
			f := newFixture(t, m.Make)
			cut := &cutMux{Multiplexer: f.cm}
			q := dialMux(t, cut, remote.WithBackoff(10*time.Millisecond, 100*time.Millisecond))
			inFlight := reserveAsync(ctx, q, "empty")
			time.Sleep(50 * time.Millisecond) // the Reserve waits on the server
			cut.cut()
			err := within(t, inFlight, 5*time.Second, "Reserve in flight when the connection was cut")
			if !errors.Is(err, beanspike.ErrUnavailable) || !errors.Is(err, remote.ErrOutcomeUnknown) {
				t.Fatalf("Reserve in flight when the connection was cut: %v, want ErrUnavailable and ErrOutcomeUnknown", err)
			}
			if _, err := q.Put(ctx, "t", []byte("x")); err != nil {
				t.Fatalf("Put after the cut: %v", err)
			}
		})
	}
}

// TestReconnectWaitsForServer has the server away for a while: calls made
// meanwhile fail with ErrUnavailable or their context's error, none hangs
// past its deadline, and once the server is back calls succeed.
func TestReconnectWaitsForServer(t *testing.T) {
	ctx := testCtx(t)
	store, err := memory.New()
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	sm, cm := muxtest.Memmux(t)
	serve := func() *remote.Server {
		srv, err := remote.NewServer(func() (beanspike.Queue, error) { return store.NewClient() })
		if err != nil {
			t.Fatal(err)
		}
		if err := srv.Listen(sm, remote.DefaultService); err != nil {
			t.Fatal(err)
		}
		return srv
	}
	srv := serve()
	q := dialMux(t, cm, remote.WithBackoff(10*time.Millisecond, 50*time.Millisecond))
	srv.Close()
	for range 5 {
		cctx, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
		start := time.Now()
		_, err := q.Put(cctx, "t", []byte("x"))
		cancel()
		if took := time.Since(start); took > time.Second {
			t.Fatalf("Put with the server away took %v with a 100ms deadline", took)
		}
		if !errors.Is(err, beanspike.ErrUnavailable) && err != context.DeadlineExceeded {
			t.Fatalf("Put with the server away: %v, want ErrUnavailable or DeadlineExceeded", err)
		}
	}
	srv = serve()
	defer srv.Close()
	eventually(t, "a Put once the server is back", func() bool {
		cctx, cancel := context.WithTimeout(ctx, time.Second)
		defer cancel()
		_, err := q.Put(cctx, "t", []byte("x"))
		return err == nil
	})
	if err := q.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := q.Put(ctx, "t", nil); !errors.Is(err, beanspike.ErrClosed) {
		t.Fatalf("Put after Close: %v, want ErrClosed", err)
	}
}

// TestKeepalive hangs the server: a call without a deadline fails with
// an error saying the server stopped answering, within about twice the
// keepalive, not after the transport's own timeouts; once the server
// answers again, the client goes on with a new session.
func TestKeepalive(t *testing.T) {
	for _, m := range muxtest.All() {
		t.Run(m.Name, func(t *testing.T) {
			hm := &hangMux{}
			f := newFixture(t, func(tb testing.TB) (chanserv.Multiplexer, chanserv.Multiplexer) {
				sm, cm := m.Make(tb)
				hm.Multiplexer = sm
				return hm, cm
			})
			t.Cleanup(hm.resume)
			const every = 200 * time.Millisecond
			q := f.dial(t, remote.WithKeepalive(every), remote.WithCallTimeout(500*time.Millisecond),
				remote.WithBackoff(10*time.Millisecond, 100*time.Millisecond))
			ctx := testCtx(t)
			if _, err := q.Put(ctx, "t", []byte("x")); err != nil {
				t.Fatal(err)
			}
			hm.freeze()
			start := time.Now()
			err := within(t, reserveAsync(context.Background(), q, "empty"), 5*time.Second, "Reserve on a hung server")
			if !errors.Is(err, beanspike.ErrUnavailable) || !errors.Is(err, remote.ErrNotAnswering) {
				t.Fatalf("Reserve on a hung server: %v, want ErrUnavailable and ErrNotAnswering", err)
			}
			if took := time.Since(start); took > 10*every {
				t.Fatalf("hung server found out after %v with a keepalive of %v", took, every)
			}
			hm.resume()
			eventually(t, "a Put once the server answers again", func() bool {
				cctx, cancel := context.WithTimeout(ctx, time.Second)
				defer cancel()
				_, err := q.Put(cctx, "t", []byte("x"))
				return err == nil
			})
		})
	}
}

// TestDialTCP serves a store on loopback TCP, dials it with DialTCP, and
// restarts the server process's node on the same port: the client
// reconnects by itself.
func TestDialTCP(t *testing.T) {
	ctx := testCtx(t)
	store, err := memory.New()
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	serve := func(addr string) (*remote.Server, *vnet.Node, string) {
		srv, err := remote.NewServer(func() (beanspike.Queue, error) { return store.NewClient() })
		if err != nil {
			t.Fatal(err)
		}
		node, err := vnet.New()
		if err != nil {
			t.Fatal(err)
		}
		if err := srv.Listen(node, remote.DefaultService); err != nil {
			t.Fatal(err)
		}
		var a net.Addr
		for range 50 { // the old listener's port may take a moment to free
			if a, err = node.Listen("tcp", addr); err == nil {
				break
			}
			time.Sleep(20 * time.Millisecond)
		}
		if err != nil {
			t.Fatal(err)
		}
		return srv, node, a.String()
	}
	srv, node, addr := serve("127.0.0.1:0")
	q, err := remote.DialTCP(ctx, addr, remote.WithBackoff(10*time.Millisecond, 100*time.Millisecond), remote.WithCallTimeout(time.Second))
	if err != nil {
		t.Fatal(err)
	}
	defer q.Close()
	if _, err := q.Put(ctx, "t", []byte("one")); err != nil {
		t.Fatal(err)
	}
	srv.Close()
	node.Close()
	srv, node, _ = serve(addr)
	defer func() {
		srv.Close()
		node.Close()
	}()
	eventually(t, "a Put through the reconnected client", func() bool {
		cctx, cancel := context.WithTimeout(ctx, time.Second)
		defer cancel()
		_, err := q.Put(cctx, "t", []byte("two"))
		return err == nil
	})
	if st, err := q.StatsTube(ctx, "t"); err != nil || st.Ready != 2 {
		t.Fatalf("StatsTube after the restart = %+v, %v; want 2 ready", st, err)
	}
	if _, err := remote.DialTCP(ctx, "127.0.0.1:1"); !errors.Is(err, beanspike.ErrUnavailable) {
		t.Fatalf("DialTCP of a closed port: %v, want ErrUnavailable", err)
	}
}
