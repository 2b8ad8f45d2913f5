package chanserv_test

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/beanspike/beanspike/chanserv"
	"github.com/beanspike/beanspike/chanserv/internal/muxtest"
	"github.com/beanspike/beanspike/chanserv/internal/wire"
)

// recordingMux records everything its dialled connections read: the
// server's side of each request.
type recordingMux struct {
	chanserv.Multiplexer
	mu    sync.Mutex
	conns []*recordingConn
}

func (m *recordingMux) DialTimeout(network, address string, timeout time.Duration) (net.Conn, error) {
	c, err := m.Multiplexer.DialTimeout(network, address, timeout)
	if err != nil {
		return nil, err
	}
	rc := &recordingConn{Conn: c}
	m.mu.Lock()
	m.conns = append(m.conns, rc)
	m.mu.Unlock()
	return rc, nil
}

type recordingConn struct {
	net.Conn
	mu  sync.Mutex
	got bytes.Buffer
}

func (c *recordingConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	c.mu.Lock()
	c.got.Write(p[:n])
	c.mu.Unlock()
	return n, err
}

// kinds counts the frames of each kind in a server's stream.
func (c *recordingConn) kinds(t *testing.T) map[wire.Kind]int {
	t.Helper()
	c.mu.Lock()
	b := bytes.Clone(c.got.Bytes())
	c.mu.Unlock()
	rd := wire.NewReader(bufio.NewReader(bytes.NewReader(b)), 1<<20)
	if err := rd.ReadPreamble(); err != nil {
		t.Fatalf("server stream: %v", err)
	}
	n := make(map[wire.Kind]int)
	for {
		h, err := rd.ReadHeader()
		if err == io.EOF {
			return n
		}
		if err != nil {
			t.Fatalf("server stream: %v", err)
		}
		if err := rd.Discard(h.Len); err != nil {
			t.Fatalf("server stream: %v", err)
		}
		n[h.Kind]++
	}
}

// echoHandler answers each message with a frame holding it, on one
// source, until the client closes.
var echoHandler = chanserv.HandlerFunc(func(ctx context.Context, req *chanserv.Request, w chanserv.ResponseWriter) error {
	s, err := w.NewSource(ctx, nil)
	if err != nil {
		return err
	}
	defer s.Close(nil)
	for {
		msg, err := req.Recv(ctx)
		if err != nil {
			return nil
		}
		if string(msg) == "stop" {
			return nil
		}
		if err := s.WriteFrame(ctx, msg); err != nil {
			return err
		}
	}
})

// TestMessageCredit checks message flow control in request/response use
// and in bursts, with windows smaller than a message and with the
// default one: nothing stalls, the server (which fails the request on a
// message beyond credit) sees the client keep to its window, and credit
// comes back in batches rather than one frame per message.
func TestMessageCredit(t *testing.T) {
	for _, window := range []int{1, 2, 64, chanserv.DefaultMessageWindow} {
		t.Run(fmt.Sprint(window), func(t *testing.T) {
			forEachMux(t, func(t *testing.T, mk muxtest.Maker) {
				rec := &recordingMux{}
				e := newEnv(t, func(tb testing.TB) (chanserv.Multiplexer, chanserv.Multiplexer) {
					sm, cm := mk(tb)
					rec.Multiplexer = cm
					return sm, rec
				}, echoHandler, []chanserv.Option{chanserv.WithMessageWindow(window)}, nil)
				ctx := testCtx(t)
				r, err := e.cl.Post(ctx, "svc", nil)
				if err != nil {
					t.Fatal(err)
				}
				defer r.Close()
				src, err := r.Next(ctx)
				if err != nil {
					t.Fatal(err)
				}
				const calls, burst = 300, 100
				sent := 0
				for i := range calls {
					msg := bytes.Repeat([]byte{byte(i)}, 1+i%40)
					sent += len(msg)
					if err := r.Send(ctx, msg); err != nil {
						t.Fatalf("call %d: %v", i, err)
					}
					p, err := src.Next(ctx)
					if err != nil || !bytes.Equal(p, msg) {
						t.Fatalf("call %d: reply %q, %v", i, p, err)
					}
				}
				// A burst: the sender runs ahead of the handler, up to its
				// window, while the replies are read concurrently.
				errc := make(chan error, 1)
				go func() {
					for i := range burst {
						if err := r.Send(ctx, fmt.Appendf(nil, "burst %03d", i)); err != nil {
							errc <- err
							return
						}
					}
					errc <- nil
				}()
				for i := range burst {
					p, err := src.Next(ctx)
					if want := fmt.Sprintf("burst %03d", i); err != nil || string(p) != want {
						t.Fatalf("burst reply %d: %q, %v; want %q", i, p, err, want)
					}
				}
				if err := <-errc; err != nil {
					t.Fatal(err)
				}
				sent += burst * len("burst 000")
				if err := r.Send(ctx, []byte("stop")); err != nil {
					t.Fatal(err)
				}
				if _, err := src.Next(ctx); err != io.EOF {
					t.Fatalf("end of source: %v", err)
				}
				if _, err := r.Next(ctx); err != io.EOF {
					t.Fatalf("end of response: %v", err)
				}
				credits := rec.conns[0].kinds(t)[wire.KindMsgCredit]
				// The initial grant, then one per half window read at most.
				if max := 1 + sent/max(window/2, 1); credits > max {
					t.Fatalf("%d message credit frames for %d bytes in %d messages, want at most %d", credits, sent, calls+burst, max)
				}
				if window == chanserv.DefaultMessageWindow && credits != 1 {
					t.Fatalf("%d message credit frames for %d bytes, want only the initial grant", credits, sent)
				}
			})
		})
	}
}
