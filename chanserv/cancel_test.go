package chanserv_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/beanspike/beanspike/chanserv"
	"github.com/beanspike/beanspike/chanserv/internal/muxtest"
)

// TestCancelReportsContext cancels requests whose handler then ends them
// with its own status: the client reports its context's error, not the
// server's status, on every multiplexer, including one whose Close does
// not unblock a pending Read, so that the server's status arrives after
// the cancellation.
func TestCancelReportsContext(t *testing.T) {
	forEachMux(t, func(t *testing.T, mk muxtest.Maker) {
		h := chanserv.HandlerFunc(func(ctx context.Context, req *chanserv.Request, w chanserv.ResponseWriter) error {
			s, err := w.NewSource(ctx, nil)
			if err != nil {
				return err
			}
			if err := s.WriteFrame(ctx, []byte("x")); err != nil {
				return err
			}
			<-ctx.Done()
			return errors.New("handler saw the cancellation")
		})
		e := newEnv(t, mk, h, nil, nil)
		for range 5 {
			ctx, cancel := context.WithCancel(testCtx(t))
			r, err := e.cl.Post(ctx, "svc", nil)
			if err != nil {
				t.Fatal(err)
			}
			s, err := r.Next(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := s.Next(ctx); err != nil {
				t.Fatal(err)
			}
			cancel()
			// Give the server's status time to arrive.
			time.Sleep(20 * time.Millisecond)
			if _, err := r.Next(testCtx(t)); err != context.Canceled {
				t.Fatalf("response after cancel: %v, want context.Canceled", err)
			}
			if _, err := s.Next(testCtx(t)); err != context.Canceled {
				t.Fatalf("source after cancel: %v, want context.Canceled", err)
			}
			r.Close()
		}
	})
}

// TestRequestBoundedByContext posts to a service whose listener never
// accepts: whatever the multiplexer does (fail the dial, dial lazily,
// block the first write), the request fails with the context's error by
// its deadline, though the dial timeout is far longer.
func TestRequestBoundedByContext(t *testing.T) {
	forEachMux(t, func(t *testing.T, mk muxtest.Maker) {
		sm, cm := mk(t)
		l, err := sm.Bind("", "deaf")
		if err != nil {
			t.Fatal(err)
		}
		defer l.Close()
		cl, err := chanserv.NewClient(cm, chanserv.WithDialTimeout(time.Minute))
		if err != nil {
			t.Fatal(err)
		}
		defer cl.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
		defer cancel()
		start := time.Now()
		r, err := cl.Post(ctx, "deaf", []byte("hello"))
		if err == nil {
			_, err = r.Next(ctx)
			r.Close()
		}
		if took := time.Since(start); took > 2*time.Second {
			t.Fatalf("request to a deaf service took %v with a 200ms deadline", took)
		}
		if err != context.DeadlineExceeded {
			t.Fatalf("request to a deaf service: %v, want context.DeadlineExceeded", err)
		}
	})
}
