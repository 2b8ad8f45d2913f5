package remote_test

import (
	"context"
	"crypto/subtle"
	"errors"
	"log/slog"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/beanspike/beanspike"
	"github.com/beanspike/beanspike/backend/memory"
	"github.com/beanspike/beanspike/chanserv"
	"github.com/beanspike/beanspike/chanserv/internal/muxtest"
	"github.com/beanspike/beanspike/chanserv/remote"
	"github.com/beanspike/beanspike/internal/syncbuf"
)

// TestSessionDropReturnsReservations cuts a worker's connection while it
// holds a job: the server closes its session's client, so the job is
// ready again at once, long before its TTR, and was not timed out. The
// worker goes on with a new session, which does not hold the job.
func TestSessionDropReturnsReservations(t *testing.T) {
	for _, m := range muxtest.All() {
		t.Run(m.Name, func(t *testing.T) {
			ctx := testCtx(t)
			f := newFixture(t, m.Make)
			cm := &cutMux{Multiplexer: f.cm}
			worker := dialMux(t, cm)
			other := f.dial(t)
			id, err := other.Put(ctx, "t", []byte("x"), beanspike.WithTTR(time.Hour))
			if err != nil {
				t.Fatal(err)
			}
			j, err := worker.Reserve(ctx, "t")
			if err != nil || j.ID != id {
				t.Fatalf("Reserve = %v, %v; want job %d", j, err, id)
			}
			cm.cut()
			rctx, cancel := context.WithTimeout(ctx, 5*time.Second)
			defer cancel()
			j, err = other.Reserve(rctx, "t")
			if err != nil || j.ID != id {
				t.Fatalf("Reserve by another client after the holder's connection was cut = %v, %v; want job %d", j, err, id)
			}
			st, err := other.StatsJob(ctx, id)
			if err != nil {
				t.Fatal(err)
			}
			if st.Timeouts != 0 || st.Reserves != 2 {
				t.Fatalf("job after the drop: %+v; want 2 reserves and no timeout", st)
			}
			// The dropped client goes on with a new session, which
			// does not hold the job.
			if err := worker.Delete(ctx, id); !errors.Is(err, beanspike.ErrNotReserved) {
				t.Fatalf("Delete of a job reserved by a dropped session = %v, want ErrNotReserved", err)
			}
			if err := worker.Close(); err != nil {
				t.Fatalf("Close of a dropped session = %v", err)
			}
		})
	}
}

// slowQueue delays Reserve and then reserves even if the call was
// cancelled meanwhile, as a store that answers late would.
type slowQueue struct {
	beanspike.Queue
	delay    time.Duration
	reserved chan beanspike.ID
}

func (q slowQueue) Reserve(ctx context.Context, tubes ...string) (*beanspike.Job, error) {
	time.Sleep(q.delay)
	j, err := q.Queue.Reserve(context.WithoutCancel(ctx), tubes...)
	if err == nil && q.reserved != nil {
		q.reserved <- j.ID
	}
	return j, err
}

func slowFixture(t *testing.T, mk muxtest.Maker, delay time.Duration, reserved chan beanspike.ID) (*memory.Queue, chanserv.Multiplexer) {
	t.Helper()
	f := wrappedFixture(t, mk, func(c beanspike.Queue) beanspike.Queue {
		return slowQueue{Queue: c, delay: delay, reserved: reserved}
	})
	return f.store, f.cm
}

// TestAbandonedReservationReleased gives up on a Reserve before the
// server answers: the job the server reserves afterwards reaches no
// caller, so the client releases it at once.
func TestAbandonedReservationReleased(t *testing.T) {
	for _, m := range muxtest.All() {
		t.Run(m.Name, func(t *testing.T) {
			ctx := testCtx(t)
			store, cm := slowFixture(t, m.Make, 300*time.Millisecond, nil)
			q := dialMux(t, cm, remote.WithCallTimeout(20*time.Millisecond))
			id, err := store.Put(ctx, "t", []byte("x"), beanspike.WithTTR(time.Hour))
			if err != nil {
				t.Fatal(err)
			}
			rctx, cancel := context.WithTimeout(ctx, 20*time.Millisecond)
			defer cancel()
			if j, err := q.Reserve(rctx, "t"); err != context.DeadlineExceeded {
				t.Fatalf("Reserve cut short = %v, %v; want context.DeadlineExceeded unwrapped", j, err)
			}
			eventually(t, "the undelivered job released", func() bool {
				st, err := store.StatsJob(ctx, id)
				return err == nil && st.State == beanspike.Ready && st.Releases == 1
			})
			if st, _ := store.StatsJob(ctx, id); st.Reserves != 1 || st.Timeouts != 0 || st.Priority != beanspike.DefaultPriority {
				t.Fatalf("released job: %+v; want 1 reserve, no timeout, priority kept", st)
			}
		})
	}
}

// TestDeliveryFailureReleases loses the connection while the server is
// reserving a job for it: the job cannot be delivered, and is ready
// again at once rather than after its TTR.
func TestDeliveryFailureReleases(t *testing.T) {
	for _, m := range muxtest.All() {
		t.Run(m.Name, func(t *testing.T) {
			ctx := testCtx(t)
			reserved := make(chan beanspike.ID, 1)
			store, cm := slowFixture(t, m.Make, 100*time.Millisecond, reserved)
			cut := &cutMux{Multiplexer: cm}
			q := dialMux(t, cut)
			id, err := store.Put(ctx, "t", []byte("x"), beanspike.WithTTR(time.Hour))
			if err != nil {
				t.Fatal(err)
			}
			res := make(chan error, 1)
			go func() {
				_, err := q.Reserve(ctx, "t")
				res <- err
			}()
			time.Sleep(20 * time.Millisecond) // the server is in Reserve
			cut.cut()
			if err := <-res; !errors.Is(err, beanspike.ErrUnavailable) {
				t.Fatalf("Reserve over a cut connection = %v, want ErrUnavailable", err)
			}
			select {
			case got := <-reserved:
				if got != id {
					t.Fatalf("server reserved job %d, want %d", got, id)
				}
			case <-ctx.Done():
				t.Fatal("the server never reserved the job")
			}
			eventually(t, "the undelivered job back to ready", func() bool {
				st, err := store.StatsJob(ctx, id)
				return err == nil && st.State == beanspike.Ready
			})
			if st, _ := store.StatsJob(ctx, id); st.Timeouts != 0 {
				t.Fatalf("job: %+v; want no timeout", st)
			}
		})
	}
}

// TestErrorsCrossTheWire checks that failures keep their sentinel.
func TestErrorsCrossTheWire(t *testing.T) {
	ctx := testCtx(t)
	f := newFixture(t, muxtest.Memmux)
	q := f.dial(t)
	if err := q.Delete(ctx, 12345); !errors.Is(err, beanspike.ErrNotFound) {
		t.Errorf("Delete of an unknown job = %v, want ErrNotFound", err)
	}
	if _, err := q.Put(ctx, "-bad", nil); !errors.Is(err, beanspike.ErrInvalidTube) {
		t.Errorf("Put to a bad tube = %v, want ErrInvalidTube", err)
	}
	if _, err := q.Put(ctx, "t", make([]byte, beanspike.DefaultMaxBodySize+1)); !errors.Is(err, beanspike.ErrJobTooBig) {
		t.Errorf("Put of a big body = %v, want ErrJobTooBig", err)
	}
	if _, err := q.Put(ctx, "t", make([]byte, 17<<20)); !errors.Is(err, beanspike.ErrJobTooBig) {
		t.Errorf("Put of a body over the transport's limit = %v, want ErrJobTooBig", err)
	}
	if err := q.PauseTube(ctx, "t", -time.Second); !errors.Is(err, beanspike.ErrInvalidArgument) {
		t.Errorf("PauseTube(-1s) = %v, want ErrInvalidArgument", err)
	}
	id, err := q.Put(ctx, "t", nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := q.Touch(ctx, id); !errors.Is(err, beanspike.ErrNotReserved) {
		t.Errorf("Touch of a ready job = %v, want ErrNotReserved", err)
	}
	if err := q.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := q.Tubes(ctx); !errors.Is(err, beanspike.ErrClosed) {
		t.Errorf("Tubes after Close = %v, want ErrClosed", err)
	}
}

// TestLargeBodies sends bodies that travel in frames, not inline.
func TestLargeBodies(t *testing.T) {
	for _, m := range muxtest.All() {
		t.Run(m.Name, func(t *testing.T) {
			ctx := testCtx(t)
			f := newFixture(t, m.Make)
			q := f.dial(t)
			var reqs []beanspike.PutRequest
			for _, n := range []int{64<<10 - 1, 64 << 10, 64<<10 + 1, 300 << 10, 1 << 20} {
				b := make([]byte, n)
				for i := range b {
					b[i] = byte(i * 7 / 3)
				}
				reqs = append(reqs, beanspike.PutRequest{Tube: "big", Body: b})
			}
			ids, err := q.PutBatch(ctx, reqs)
			if err != nil {
				t.Fatal(err)
			}
			jobs, err := q.ReserveBatch(ctx, len(reqs)+1, "big")
			if err != nil || len(jobs) != len(reqs) {
				t.Fatalf("ReserveBatch = %d jobs, %v; want %d", len(jobs), err, len(reqs))
			}
			for i, j := range jobs {
				if j.ID != ids[i] || string(j.Body) != string(reqs[i].Body) {
					t.Fatalf("job %d: id %d, %d bytes; want id %d, %d bytes, same content", i, j.ID, len(j.Body), ids[i], len(reqs[i].Body))
				}
				p, err := q.Peek(ctx, j.ID)
				if err != nil || string(p.Body) != string(j.Body) {
					t.Fatalf("Peek %d: %v", j.ID, err)
				}
			}
		})
	}
}

// TestShutdown shuts the server down under a client blocked in Reserve:
// the Reserve fails with ErrUnavailable, and Shutdown returns.
func TestShutdown(t *testing.T) {
	for _, m := range muxtest.All() {
		t.Run(m.Name, func(t *testing.T) {
			ctx := testCtx(t)
			f := newFixture(t, m.Make)
			q := f.dial(t)
			if err := q.PauseTube(ctx, "t", 0); err != nil { // makes the tube
				t.Fatal(err)
			}
			res := make(chan error, 1)
			go func() {
				_, err := q.Reserve(ctx, "t")
				res <- err
			}()
			eventually(t, "Reserve waiting on the server", func() bool {
				st, err := f.store.StatsTube(ctx, "t")
				return err == nil && st.Waiting == 1
			})
			sctx, cancel := context.WithTimeout(ctx, 5*time.Second)
			defer cancel()
			if err := f.srv.Shutdown(sctx); err != nil {
				t.Fatalf("Shutdown = %v", err)
			}
			if err := <-res; !errors.Is(err, beanspike.ErrUnavailable) {
				t.Fatalf("Reserve during shutdown = %v, want ErrUnavailable", err)
			}
			// vnet waits for a node to advertise the service again; memmux
			// refuses at once.
			dctx, cancel2 := context.WithTimeout(ctx, 200*time.Millisecond)
			defer cancel2()
			if _, err := remote.Dial(dctx, f.cm, remote.DefaultService); !errors.Is(err, beanspike.ErrUnavailable) && err != context.DeadlineExceeded {
				t.Fatalf("Dial after Shutdown = %v, want ErrUnavailable or the context's deadline", err)
			}
		})
	}
}

// TestNoGoroutineLeaks runs clients through every kind of end — Close
// with a blocked Reserve, a cut connection, the server's Close — and
// checks that no goroutine of the transport survives.
func TestNoGoroutineLeaks(t *testing.T) {
	for _, m := range muxtest.All() {
		t.Run(m.Name, func(t *testing.T) {
			t.Run("run", func(t *testing.T) {
				ctx := testCtx(t)
				f := newFixture(t, m.Make)
				var n atomic.Int32
				for i := range 3 {
					cm := &cutMux{Multiplexer: f.cm}
					q := dialMux(t, cm)
					if _, err := q.Put(ctx, "t", []byte("x")); err != nil {
						t.Fatal(err)
					}
					if _, err := q.Reserve(ctx, "t"); err != nil {
						t.Fatal(err)
					}
					done := make(chan struct{})
					go func() {
						defer close(done)
						q.Reserve(ctx, "empty")
						n.Add(1)
					}()
					time.Sleep(10 * time.Millisecond)
					switch i {
					case 0:
						q.Close()
					case 1:
						cm.cut()
					case 2:
						f.srv.Close()
					}
					<-done
				}
				if n.Load() != 3 {
					t.Fatalf("%d blocked Reserve calls returned, want 3", n.Load())
				}
			})
			noLeaks(t)
		})
	}
}

// Sessions counts the sessions a server holds open.
func TestServerSessions(t *testing.T) {
	f := newFixture(t, muxtest.All()[0].Make)
	if n := f.srv.Sessions(); n != 0 {
		t.Fatalf("Sessions before any client = %d", n)
	}
	a, b := f.dial(t), f.dial(t)
	if n := f.srv.Sessions(); n != 2 {
		t.Fatalf("Sessions with two clients = %d, want 2", n)
	}
	a.Close()
	b.Close()
	deadline := time.Now().Add(10 * time.Second)
	for f.srv.Sessions() != 0 {
		if time.Now().After(deadline) {
			t.Fatalf("Sessions after both clients closed = %d, want 0", f.srv.Sessions())
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// A server refuses a Reserve over too many tubes and a batch over its
// limit, reserving nothing.
func TestServerReserveBounds(t *testing.T) {
	f := newFixture(t, muxtest.All()[0].Make, remote.WithMaxReserve(3, 2))
	q := f.dial(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for range 5 {
		if _, err := q.Put(ctx, "a", []byte("x")); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := q.Reserve(ctx, "a", "b", "c"); !errors.Is(err, beanspike.ErrInvalidArgument) {
		t.Fatalf("Reserve on 3 tubes, limit 2: %v, want ErrInvalidArgument", err)
	}
	if _, err := q.ReserveBatch(ctx, 4, "a"); !errors.Is(err, beanspike.ErrInvalidArgument) {
		t.Fatalf("ReserveBatch of 4, limit 3: %v, want ErrInvalidArgument", err)
	}
	if st, err := q.StatsTube(ctx, "a"); err != nil || st.Ready != 5 {
		t.Fatalf("after refused reserves: %+v, %v; want 5 ready", st, err)
	}
	jobs, err := q.ReserveBatch(ctx, 3, "a", "b")
	if err != nil || len(jobs) != 3 {
		t.Fatalf("ReserveBatch of 3 on 2 tubes: %d jobs, %v", len(jobs), err)
	}
	newClient := func() (beanspike.Queue, error) { return f.store.NewClient() }
	if _, err := remote.NewServer(newClient, remote.WithMaxReserve(0, 1)); !errors.Is(err, remote.ErrInvalidOption) {
		t.Fatalf("WithMaxReserve(0, 1): %v", err)
	}
}

// A server with a token check serves only clients with a token it takes;
// the others get ErrUnauthorized and nothing is served.
func TestTokens(t *testing.T) {
	check := func(tok string) bool { return subtle.ConstantTimeCompare([]byte(tok), []byte("s3cret")) == 1 }
	for _, m := range muxtest.All() {
		t.Run(m.Name, func(t *testing.T) {
			f := newFixture(t, m.Make, remote.WithTokenCheck(check))
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			for _, c := range []struct {
				name string
				opts []remote.Option
			}{
				{"no token", nil},
				{"wrong token", []remote.Option{remote.WithToken("s3cre")}},
				{"longer token", []remote.Option{remote.WithToken("s3cret!")}},
			} {
				q, err := remote.Dial(ctx, f.cm, remote.DefaultService, c.opts...)
				if err == nil {
					q.Close()
					t.Fatalf("%s: Dial succeeded", c.name)
				}
				if !errors.Is(err, remote.ErrUnauthorized) || !errors.Is(err, beanspike.ErrUnavailable) {
					t.Fatalf("%s: Dial: %v, want ErrUnauthorized", c.name, err)
				}
			}
			if n := f.srv.Sessions(); n != 0 {
				t.Fatalf("%d sessions open after refusals", n)
			}
			q := f.dial(t, remote.WithToken("s3cret"))
			if _, err := q.Put(ctx, "t", []byte("x")); err != nil {
				t.Fatalf("Put with the token: %v", err)
			}
		})
	}
	if _, err := remote.NewServer(func() (beanspike.Queue, error) { return nil, nil }, remote.WithTokenCheck(nil)); !errors.Is(err, remote.ErrInvalidOption) {
		t.Fatalf("WithTokenCheck(nil): %v", err)
	}
}

// Refused sessions are logged at most about once a second.
func TestRefusalsLogRateLimited(t *testing.T) {
	var logs syncbuf.Buffer
	check := func(string) bool { return false }
	f := newFixture(t, muxtest.All()[0].Make, remote.WithTokenCheck(check),
		remote.WithLogger(slog.New(slog.NewTextHandler(&logs, nil))))
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	start := time.Now()
	for range 50 {
		if q, err := remote.Dial(ctx, f.cm, remote.DefaultService); err == nil {
			q.Close()
			t.Fatal("Dial succeeded against a check that refuses all")
		}
	}
	n := strings.Count(logs.String(), "session refused")
	if limit := int(time.Since(start)/time.Second) + 2; n < 1 || n > limit {
		t.Fatalf("50 refusals in %s logged %d lines, want 1 to %d:\n%s", time.Since(start), n, limit, logs.String())
	}
}
