package chanserv_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/beanspike/beanspike/chanserv"
	"github.com/beanspike/beanspike/chanserv/internal/muxtest"
	"github.com/beanspike/beanspike/internal/leaktest"
)

// readAll reads every source of r: headers and frames in arrival order.
func readAll(ctx context.Context, r *chanserv.Response) (map[string][][]byte, error) {
	out := map[string][][]byte{}
	var mu sync.Mutex
	var wg sync.WaitGroup
	var firstErr error
	for src, err := range r.Sources(ctx) {
		if err != nil {
			wg.Wait()
			return out, err
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			var frames [][]byte
			for p, err := range src.Frames(ctx) {
				if err != nil {
					mu.Lock()
					if firstErr == nil {
						firstErr = fmt.Errorf("source %q: %w", src.Header(), err)
					}
					mu.Unlock()
					return
				}
				frames = append(frames, p)
			}
			mu.Lock()
			out[string(src.Header())] = frames
			mu.Unlock()
		}()
	}
	wg.Wait()
	return out, firstErr
}

func TestHappyPath(t *testing.T) {
	forEachMux(t, func(t *testing.T, mk muxtest.Maker) {
		h := chanserv.HandlerFunc(func(ctx context.Context, req *chanserv.Request, w chanserv.ResponseWriter) error {
			if req.Service != "svc" {
				return fmt.Errorf("service %q", req.Service)
			}
			s, err := w.NewSource(ctx, append([]byte("re:"), req.Body...))
			if err != nil {
				return err
			}
			for _, f := range []string{"one", "", "three"} {
				if err := s.WriteFrame(ctx, []byte(f)); err != nil {
					return err
				}
			}
			return s.Close(nil)
		})
		e := newEnv(t, mk, h, nil, nil)
		ctx := testCtx(t)
		r, err := e.cl.Post(ctx, "svc", []byte("hello"))
		if err != nil {
			t.Fatal(err)
		}
		got, err := readAll(ctx, r)
		if err != nil {
			t.Fatal(err)
		}
		frames := got["re:hello"]
		if len(got) != 1 || len(frames) != 3 || string(frames[0]) != "one" || len(frames[1]) != 0 || string(frames[2]) != "three" {
			t.Fatalf("got %q", got)
		}
		// The response stays ended.
		if _, err := r.Next(ctx); !errors.Is(err, io.EOF) {
			t.Fatalf("Next after end: %v", err)
		}
		if err := r.Close(); err != nil {
			t.Fatal(err)
		}
		// No sources at all is a clean, empty response.
		e2 := newEnv(t, mk, chanserv.HandlerFunc(func(context.Context, *chanserv.Request, chanserv.ResponseWriter) error { return nil }), nil, nil)
		r2, err := e2.cl.Post(ctx, "svc", nil)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := r2.Next(ctx); !errors.Is(err, io.EOF) {
			t.Fatalf("empty response: %v", err)
		}
	})
}

func TestManySources(t *testing.T) {
	const sources, frames = 200, 50
	forEachMux(t, func(t *testing.T, mk muxtest.Maker) {
		h := chanserv.HandlerFunc(func(ctx context.Context, req *chanserv.Request, w chanserv.ResponseWriter) error {
			var wg sync.WaitGroup
			errs := make(chan error, sources)
			for i := range sources {
				s, err := w.NewSource(ctx, fmt.Appendf(nil, "s%d", i))
				if err != nil {
					return err
				}
				wg.Add(1)
				go func() {
					defer wg.Done()
					for j := range frames {
						if err := s.WriteFrame(ctx, fmt.Appendf(nil, "s%d-f%d", i, j)); err != nil {
							errs <- err
							return
						}
					}
					s.Close(nil)
				}()
			}
			wg.Wait()
			close(errs)
			return <-errs
		})
		// Fewer slots than sources: NewSource must wait for the consumer.
		e := newEnv(t, mk, h, nil, []chanserv.Option{chanserv.WithMaxSources(16), chanserv.WithWindow(256)})
		ctx := testCtx(t)
		r, err := e.cl.Post(ctx, "svc", nil)
		if err != nil {
			t.Fatal(err)
		}
		got, err := readAll(ctx, r)
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != sources {
			t.Fatalf("%d sources, want %d", len(got), sources)
		}
		for i := range sources {
			fs := got[fmt.Sprintf("s%d", i)]
			if len(fs) != frames {
				t.Fatalf("source %d: %d frames", i, len(fs))
			}
			for j, f := range fs {
				if want := fmt.Sprintf("s%d-f%d", i, j); string(f) != want {
					t.Fatalf("frame %q, want %q", f, want)
				}
			}
		}
	})
}

func TestLargeFrames(t *testing.T) {
	forEachMux(t, func(t *testing.T, mk muxtest.Maker) {
		big := make([]byte, 4<<20)
		rand.Read(big)
		h := chanserv.HandlerFunc(func(ctx context.Context, req *chanserv.Request, w chanserv.ResponseWriter) error {
			s, err := w.NewSource(ctx, nil)
			if err != nil {
				return err
			}
			for i := range 3 {
				if err := s.WriteFrame(ctx, big[i:]); err != nil {
					return err
				}
			}
			return s.Close(nil)
		})
		e := newEnv(t, mk, h, nil, []chanserv.Option{chanserv.WithWindow(64 << 10)})
		ctx := testCtx(t)
		r, err := e.cl.Post(ctx, "svc", bytes.Repeat([]byte("b"), 1<<20))
		if err != nil {
			t.Fatal(err)
		}
		got, err := readAll(ctx, r)
		if err != nil {
			t.Fatal(err)
		}
		for i, f := range got[""] {
			if !bytes.Equal(f, big[i:]) {
				t.Fatalf("frame %d differs (%d bytes)", i, len(f))
			}
		}
		if len(got[""]) != 3 {
			t.Fatalf("%d frames", len(got[""]))
		}
	})
}

func TestFrameSizeLimits(t *testing.T) {
	forEachMux(t, func(t *testing.T, mk muxtest.Maker) {
		writeErr := make(chan error, 1)
		h := chanserv.HandlerFunc(func(ctx context.Context, req *chanserv.Request, w chanserv.ResponseWriter) error {
			s, err := w.NewSource(ctx, nil)
			if err != nil {
				return err
			}
			err = s.WriteFrame(ctx, make([]byte, 2048))
			writeErr <- err
			if err := s.WriteFrame(ctx, make([]byte, 1024)); err != nil {
				return err
			}
			return s.Close(nil)
		})
		e := newEnv(t, mk, h, []chanserv.Option{chanserv.WithMaxFrameSize(4096)}, []chanserv.Option{chanserv.WithMaxFrameSize(1024)})
		ctx := testCtx(t)
		r, err := e.cl.Post(ctx, "svc", nil)
		if err != nil {
			t.Fatal(err)
		}
		got, err := readAll(ctx, r)
		if err != nil {
			t.Fatal(err)
		}
		if err := <-writeErr; !errors.Is(err, chanserv.ErrFrameTooLarge) {
			t.Fatalf("oversized WriteFrame: %v", err)
		}
		if len(got[""]) != 1 || len(got[""][0]) != 1024 {
			t.Fatalf("got %d frames", len(got[""]))
		}

		// A request body over the server's limit fails the request.
		r, err = e.cl.Post(ctx, "svc", make([]byte, 5000))
		if err != nil {
			t.Fatal(err)
		}
		_, err = r.Next(ctx)
		var re *chanserv.RemoteError
		if !errors.As(err, &re) || re.Status != chanserv.StatusProtocol || !strings.Contains(re.Message, "too large") {
			t.Fatalf("oversized body: %v", err)
		}
	})
}

func TestSlowConsumer(t *testing.T) {
	const (
		frameSize = 1024
		window    = 16 * frameSize
		total     = 600
	)
	forEachMux(t, func(t *testing.T, mk muxtest.Maker) {
		var written atomic.Int64
		h := chanserv.HandlerFunc(func(ctx context.Context, req *chanserv.Request, w chanserv.ResponseWriter) error {
			s, err := w.NewSource(ctx, nil)
			if err != nil {
				return err
			}
			p := make([]byte, frameSize)
			for i := range total {
				p[0], p[1] = byte(i), byte(i>>8)
				if err := s.WriteFrame(ctx, p); err != nil {
					return err
				}
				written.Add(1)
			}
			return s.Close(nil)
		})
		e := newEnv(t, mk, h, nil, []chanserv.Option{chanserv.WithWindow(window)})
		ctx := testCtx(t)
		r, err := e.cl.Post(ctx, "svc", nil)
		if err != nil {
			t.Fatal(err)
		}
		src, err := r.Next(ctx)
		if err != nil {
			t.Fatal(err)
		}
		// Stall: the producer must stop within a window, not drop frames.
		time.Sleep(200 * time.Millisecond)
		stalled := written.Load()
		if stalled > window/frameSize+1 {
			t.Fatalf("producer got %d frames ahead of a stalled consumer, bound %d", stalled, window/frameSize+1)
		}
		time.Sleep(100 * time.Millisecond)
		if w := written.Load(); w != stalled {
			t.Fatalf("producer went on while the consumer stalled: %d -> %d", stalled, w)
		}
		var maxAhead int64
		for i := 0; ; i++ {
			p, err := src.Next(ctx)
			if errors.Is(err, io.EOF) {
				if i != total {
					t.Fatalf("%d frames, want %d", i, total)
				}
				break
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := int(p[0]) | int(p[1])<<8; got != i || len(p) != frameSize {
				t.Fatalf("frame %d is frame %d (%d bytes)", i, got, len(p))
			}
			maxAhead = max(maxAhead, written.Load()-int64(i+1))
			if i%50 == 0 {
				time.Sleep(5 * time.Millisecond)
			}
		}
		if maxAhead > window/frameSize+1 {
			t.Fatalf("producer ran %d frames ahead, bound %d", maxAhead, window/frameSize+1)
		}
		if _, err := r.Next(ctx); !errors.Is(err, io.EOF) {
			t.Fatal(err)
		}
	})
}

// streamer is a handler of n sources that write until cancelled and
// reports how each producer ended.
func streamer(n int, ended chan<- error) chanserv.Handler {
	return chanserv.HandlerFunc(func(ctx context.Context, req *chanserv.Request, w chanserv.ResponseWriter) error {
		var wg sync.WaitGroup
		for i := range n {
			s, err := w.NewSource(ctx, fmt.Appendf(nil, "%d", i))
			if err != nil {
				return err
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				for {
					if err := s.WriteFrame(ctx, make([]byte, 512)); err != nil {
						ended <- err
						s.Close(err)
						return
					}
				}
			}()
		}
		wg.Wait()
		return ctx.Err()
	})
}

func TestConsumerWalksAway(t *testing.T) {
	forEachMux(t, func(t *testing.T, mk muxtest.Maker) {
		ended := make(chan error, 16)
		e := newEnv(t, mk, streamer(3, ended), nil, nil)

		start := func(ctx context.Context) (*chanserv.Response, []*chanserv.RemoteSource) {
			r, err := e.cl.Post(ctx, "svc", nil)
			if err != nil {
				t.Fatal(err)
			}
			var srcs []*chanserv.RemoteSource
			for range 3 {
				s, err := r.Next(ctx)
				if err != nil {
					t.Fatal(err)
				}
				if _, err := s.Next(ctx); err != nil {
					t.Fatal(err)
				}
				srcs = append(srcs, s)
			}
			return r, srcs
		}
		expectEnded := func(want ...error) {
			t.Helper()
			for range 3 {
				select {
				case err := <-ended:
					ok := false
					for _, w := range want {
						ok = ok || errors.Is(err, w)
					}
					if !ok {
						t.Fatalf("producer ended with %v, want %v", err, want)
					}
				case <-time.After(5 * time.Second):
					t.Fatal("producer still running")
				}
			}
		}

		// Warm up, so that the multiplexer's own goroutines are counted.
		r, _ := start(testCtx(t))
		r.Close()
		// The producers learn it from the request's end or, first, from
		// their sources' (a multiplexer may deliver either first).
		expectEnded(context.Canceled, chanserv.ErrSourceClosed)
		time.Sleep(50 * time.Millisecond)
		base := runtime.NumGoroutine()

		t.Run("Close", func(t *testing.T) {
			r, srcs := start(testCtx(t))
			r.Close()
			expectEnded(context.Canceled, chanserv.ErrSourceClosed)
			if _, err := srcs[0].Next(testCtx(t)); !errors.Is(err, chanserv.ErrClosed) {
				t.Fatalf("source after Close: %v", err)
			}
			leaktest.AtMost(t, base+1) // +1: this subtest's goroutine
		})
		t.Run("CancelContext", func(t *testing.T) {
			ctx, cancel := context.WithCancel(context.Background())
			r, srcs := start(ctx)
			cancel()
			expectEnded(context.Canceled)
			if _, err := srcs[1].Next(testCtx(t)); !errors.Is(err, context.Canceled) {
				t.Fatalf("source after cancel: %v", err)
			}
			if _, err := r.Next(testCtx(t)); !errors.Is(err, context.Canceled) {
				t.Fatalf("response after cancel: %v", err)
			}
			leaktest.AtMost(t, base+1) // +1: this subtest's goroutine
		})
		t.Run("Abandon", func(t *testing.T) {
			// Dropped without Close: the garbage collector closes them.
			func() { start(testCtx(t)) }()
			for range 3 {
				runtime.GC()
			}
			// The sources or the response may be collected first.
			expectEnded(context.Canceled, chanserv.ErrSourceClosed)
			leaktest.AtMost(t, base+1) // +1: this subtest's goroutine
		})
		t.Run("CloseOneSource", func(t *testing.T) {
			ctx := testCtx(t)
			r, srcs := start(ctx)
			srcs[0].Close()
			select {
			case err := <-ended:
				if !errors.Is(err, chanserv.ErrSourceClosed) {
					t.Fatalf("closed source's producer ended with %v", err)
				}
			case <-time.After(5 * time.Second):
				t.Fatal("closed source's producer still running")
			}
			// The others go on.
			for range 100 {
				if _, err := srcs[1].Next(ctx); err != nil {
					t.Fatal(err)
				}
			}
			r.Close()
			for range 2 {
				<-ended
			}
			leaktest.AtMost(t, base+1) // +1: this subtest's goroutine
		})
	})
}

func TestServerFailure(t *testing.T) {
	forEachMux(t, func(t *testing.T, mk muxtest.Maker) {
		h := chanserv.HandlerFunc(func(ctx context.Context, req *chanserv.Request, w chanserv.ResponseWriter) error {
			ok, err := w.NewSource(ctx, []byte("ok"))
			if err != nil {
				return err
			}
			ok.WriteFrame(ctx, []byte("a"))
			ok.Close(nil)
			bad, err := w.NewSource(ctx, []byte("bad"))
			if err != nil {
				return err
			}
			bad.WriteFrame(ctx, []byte("b"))
			bad.Close(&chanserv.RemoteError{Status: chanserv.StatusError, Code: 42, Message: "disk on fire"})
			open, err := w.NewSource(ctx, []byte("open"))
			if err != nil {
				return err
			}
			_ = open // never closed: aborted when the handler returns
			switch string(req.Body) {
			case "panic":
				panic("handler bug")
			case "ok":
				return nil
			}
			return errors.New("boom")
		})
		e := newEnv(t, mk, h, nil, nil)
		ctx := testCtx(t)
		for _, body := range []string{"fail", "panic", "ok"} {
			r, err := e.cl.Post(ctx, "svc", []byte(body))
			if err != nil {
				t.Fatal(err)
			}
			check := func(wantHeader string, wantFrames int, want func(error) bool) {
				t.Helper()
				s, err := r.Next(ctx)
				if err != nil || string(s.Header()) != wantHeader {
					t.Fatalf("source %q: %v", s.Header(), err)
				}
				for range wantFrames {
					if _, err := s.Next(ctx); err != nil {
						t.Fatal(err)
					}
				}
				_, err = s.Next(ctx)
				if !want(err) {
					t.Fatalf("%s: source %s ended with %v", body, wantHeader, err)
				}
			}
			check("ok", 1, func(err error) bool { return errors.Is(err, io.EOF) })
			check("bad", 1, func(err error) bool {
				var re *chanserv.RemoteError
				return errors.As(err, &re) && re.Code == 42 && re.Message == "disk on fire" && errors.Is(err, chanserv.ErrRemote)
			})
			check("open", 0, func(err error) bool { return errors.Is(err, chanserv.ErrAborted) })
			_, err = r.Next(ctx)
			switch body {
			case "fail":
				var re *chanserv.RemoteError
				if !errors.As(err, &re) || re.Status != chanserv.StatusError || re.Message != "boom" {
					t.Fatalf("end: %v", err)
				}
			case "panic":
				if !errors.Is(err, chanserv.ErrRemote) || !strings.Contains(err.Error(), "handler bug") {
					t.Fatalf("end: %v", err)
				}
			case "ok":
				if !errors.Is(err, io.EOF) {
					t.Fatalf("end: %v", err)
				}
			}
		}
	})
}

func TestShutdown(t *testing.T) {
	forEachMux(t, func(t *testing.T, mk muxtest.Maker) {
		var release chan struct{}
		var started chan struct{}
		reset := func() {
			release = make(chan struct{})
			started = make(chan struct{}, 4)
		}
		h := chanserv.HandlerFunc(func(ctx context.Context, req *chanserv.Request, w chanserv.ResponseWriter) error {
			release, started := release, started
			s, err := w.NewSource(ctx, nil)
			if err != nil {
				return err
			}
			s.WriteFrame(ctx, []byte("first"))
			started <- struct{}{}
			select {
			case <-release:
			case <-ctx.Done():
				return ctx.Err()
			}
			if err := s.WriteFrame(ctx, []byte("second")); err != nil {
				return err
			}
			return s.Close(nil)
		})
		// start posts a request and waits until its handler has written
		// the first frame.
		start := func(t *testing.T) (env, context.Context, *chanserv.Response) {
			reset()
			e := newEnv(t, mk, h, nil, nil)
			ctx := testCtx(t)
			r, err := e.cl.Post(ctx, "svc", nil)
			if err != nil {
				t.Fatal(err)
			}
			<-started
			return e, ctx, r
		}
		t.Run("Drains", func(t *testing.T) {
			e, ctx, r := start(t)
			done := make(chan error, 1)
			go func() { done <- e.srv.Shutdown(ctx) }()
			time.Sleep(50 * time.Millisecond)
			select {
			case err := <-done:
				t.Fatalf("Shutdown returned with a request in flight: %v", err)
			default:
			}
			close(release)
			got, err := readAll(ctx, r)
			if err != nil || len(got[""]) != 2 {
				t.Fatalf("in-flight request: %q, %v", got, err)
			}
			if err := <-done; err != nil {
				t.Fatal(err)
			}
			if _, err := e.cl.Post(ctx, "svc", nil, chanserv.WithDialTimeout(100*time.Millisecond)); err == nil {
				t.Fatal("Post after Shutdown succeeded")
			}
		})
		t.Run("GraceExpires", func(t *testing.T) {
			e, ctx, r := start(t)
			sctx, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
			defer cancel()
			if err := e.srv.Shutdown(sctx); !errors.Is(err, context.DeadlineExceeded) {
				t.Fatalf("Shutdown: %v", err)
			}
			s, err := r.Next(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if p, err := s.Next(ctx); err != nil || string(p) != "first" {
				t.Fatalf("first frame %q, %v", p, err)
			}
			if _, err := s.Next(ctx); !errors.Is(err, chanserv.ErrShuttingDown) {
				t.Fatalf("source: %v", err)
			}
			if _, err := r.Next(ctx); !errors.Is(err, chanserv.ErrShuttingDown) {
				t.Fatalf("response: %v", err)
			}
		})
		t.Run("Close", func(t *testing.T) {
			e, ctx, r := start(t)
			e.srv.Close()
			_, err := readAll(ctx, r)
			if !errors.Is(err, chanserv.ErrTruncated) && !errors.Is(err, chanserv.ErrRemote) {
				t.Fatalf("after Close: %v", err)
			}
		})
	})
}

func TestCompression(t *testing.T) {
	random := make([]byte, 64<<10)
	rand.Read(random)
	frames := [][]byte{
		random,
		random[:13],
		bytes.Repeat([]byte("B"), 180<<10),
		append([]byte("lz4!"), bytes.Repeat([]byte{0}, 100)...),
		append([]byte("lz4!"), random[:100]...),
		{},
		bytes.Repeat([]byte("abcd"), 64),
	}
	forEachMux(t, func(t *testing.T, mk muxtest.Maker) {
		h := chanserv.HandlerFunc(func(ctx context.Context, req *chanserv.Request, w chanserv.ResponseWriter) error {
			s, err := w.NewSource(ctx, nil)
			if err != nil {
				return err
			}
			for _, f := range frames {
				if err := s.WriteFrame(ctx, f); err != nil {
					return err
				}
			}
			return s.Close(nil)
		})
		e := newEnv(t, mk, h, []chanserv.Option{chanserv.WithCompression(true)}, nil)
		ctx := testCtx(t)
		r, err := e.cl.Post(ctx, "svc", nil)
		if err != nil {
			t.Fatal(err)
		}
		got, err := readAll(ctx, r)
		if err != nil {
			t.Fatal(err)
		}
		if len(got[""]) != len(frames) {
			t.Fatalf("%d frames", len(got[""]))
		}
		for i, f := range got[""] {
			if !bytes.Equal(f, frames[i]) {
				t.Fatalf("frame %d: %d bytes, want %d", i, len(f), len(frames[i]))
			}
		}
	})
}

// TestMessages is the shape of a streamed reservation: the client grants
// credits with messages, the server sends one source per credit.
func TestMessages(t *testing.T) {
	forEachMux(t, func(t *testing.T, mk muxtest.Maker) {
		h := chanserv.HandlerFunc(func(ctx context.Context, req *chanserv.Request, w chanserv.ResponseWriter) error {
			for {
				msg, err := req.Recv(ctx)
				if err != nil {
					return err
				}
				if string(msg) == "stop" {
					return nil
				}
				s, err := w.NewSource(ctx, msg)
				if err != nil {
					return err
				}
				s.WriteFrame(ctx, append([]byte("job for "), msg...))
				s.Close(nil)
			}
		})
		e := newEnv(t, mk, h, []chanserv.Option{chanserv.WithMessageWindow(64)}, nil)
		ctx := testCtx(t)
		r, err := e.cl.Post(ctx, "svc", nil)
		if err != nil {
			t.Fatal(err)
		}
		for i := range 50 {
			msg := fmt.Appendf(nil, "credit %02d", i)
			if err := r.Send(ctx, msg); err != nil {
				t.Fatal(err)
			}
			s, err := r.Next(ctx)
			if err != nil || !bytes.Equal(s.Header(), msg) {
				t.Fatalf("source %q: %v", s.Header(), err)
			}
			p, err := s.Next(ctx)
			if err != nil || string(p) != "job for "+string(msg) {
				t.Fatalf("frame %q: %v", p, err)
			}
		}
		// Messages beyond the window wait for the handler, not fail.
		for range 20 {
			if err := r.Send(ctx, []byte("0123456789")); err != nil {
				t.Fatal(err)
			}
		}
		if err := r.Send(ctx, []byte("stop")); err != nil {
			t.Fatal(err)
		}
		n := 0
		for _, err := range r.Sources(ctx) {
			if err != nil {
				t.Fatal(err)
			}
			n++
		}
		if n != 20 {
			t.Fatalf("%d sources after the burst, want 20", n)
		}
		if err := r.Send(ctx, []byte("late")); !errors.Is(err, chanserv.ErrClosed) {
			t.Fatalf("Send after end: %v", err)
		}
	})
}

func TestRequestDeadline(t *testing.T) {
	forEachMux(t, func(t *testing.T, mk muxtest.Maker) {
		got := make(chan time.Duration, 1)
		h := chanserv.HandlerFunc(func(ctx context.Context, req *chanserv.Request, w chanserv.ResponseWriter) error {
			d, _ := ctx.Deadline()
			got <- time.Until(d)
			return nil
		})
		e := newEnv(t, mk, h, nil, nil)
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		defer cancel()
		r, err := e.cl.Post(ctx, "svc", nil)
		if err != nil {
			t.Fatal(err)
		}
		defer r.Close()
		if d := <-got; d <= 0 || d > 3*time.Second {
			t.Fatalf("server deadline in %v", d)
		}
	})
}

func TestOptionsValidated(t *testing.T) {
	if _, err := chanserv.NewClient(nil); !errors.Is(err, chanserv.ErrInvalidOption) {
		t.Fatal(err)
	}
	if _, err := chanserv.NewServer(nil, chanserv.WithWindow(0)); !errors.Is(err, chanserv.ErrInvalidOption) {
		t.Fatal(err)
	}
	if _, err := chanserv.NewServer(nil, chanserv.WithMaxFrameSize(-1)); !errors.Is(err, chanserv.ErrInvalidOption) {
		t.Fatal(err)
	}
}
