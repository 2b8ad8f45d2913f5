package remote_test

import (
	"bytes"
	"context"
	"errors"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/beanspike/beanspike"
	"github.com/beanspike/beanspike/chanserv"
	"github.com/beanspike/beanspike/chanserv/internal/muxtest"
	"github.com/beanspike/beanspike/chanserv/remote"
)

// hangMux wraps the server's multiplexer so that the server can be made
// to hang, as a stopped process does: its connections' reads and writes
// wait until it is resumed. The connections stay open.
type hangMux struct {
	chanserv.Multiplexer
	mu     sync.Mutex
	frozen chan struct{} // nil while running; closed to resume
}

func (m *hangMux) freeze() {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.frozen == nil {
		m.frozen = make(chan struct{})
	}
}

func (m *hangMux) resume() {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.frozen != nil {
		close(m.frozen)
		m.frozen = nil
	}
}

func (m *hangMux) gate() {
	m.mu.Lock()
	f := m.frozen
	m.mu.Unlock()
	if f != nil {
		<-f
	}
}

func (m *hangMux) Bind(network, laddr string) (net.Listener, error) {
	l, err := m.Multiplexer.Bind(network, laddr)
	if err != nil {
		return nil, err
	}
	return hangListener{l, m}, nil
}

type hangListener struct {
	net.Listener
	m *hangMux
}

func (l hangListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return hangConn{c, l.m}, nil
}

type hangConn struct {
	net.Conn
	m *hangMux
}

func (c hangConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	c.m.gate()
	return n, err
}

func (c hangConn) Write(p []byte) (int, error) {
	c.m.gate()
	return c.Conn.Write(p)
}

// TestCallsBoundedByContext makes the server hang with a session open:
// every call, a Put whose body cannot be written included, returns its
// context's error by its deadline, whatever the multiplexer does; Close
// returns within the call timeout.
func TestCallsBoundedByContext(t *testing.T) {
	for _, m := range muxtest.All() {
		t.Run(m.Name, func(t *testing.T) {
			hm := &hangMux{}
			f := newFixture(t, func(tb testing.TB) (chanserv.Multiplexer, chanserv.Multiplexer) {
				sm, cm := m.Make(tb)
				hm.Multiplexer = sm
				return hm, cm
			})
			t.Cleanup(hm.resume)
			q := f.dial(t, remote.WithCallTimeout(500*time.Millisecond))
			ctx := testCtx(t)
			if _, err := q.Put(ctx, "t", []byte("x")); err != nil {
				t.Fatal(err)
			}
			hm.freeze()
			big := bytes.Repeat([]byte("x"), 4<<20)
			calls := []struct {
				name string
				f    func(context.Context) error
			}{
				{"Put 4 MiB", func(ctx context.Context) error { _, err := q.Put(ctx, "t", big); return err }},
				{"Put", func(ctx context.Context) error { _, err := q.Put(ctx, "t", []byte("x")); return err }},
				{"Reserve", func(ctx context.Context) error { _, err := q.Reserve(ctx, "t"); return err }},
				{"Tubes", func(ctx context.Context) error { _, err := q.Tubes(ctx); return err }},
			}
			for _, c := range calls {
				ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
				start := time.Now()
				err := c.f(ctx)
				took := time.Since(start)
				cancel()
				if err != context.DeadlineExceeded {
					t.Fatalf("%s on a hung server: %v, want context.DeadlineExceeded", c.name, err)
				}
				if took > 2*time.Second {
					t.Fatalf("%s on a hung server took %v with a 200ms deadline", c.name, took)
				}
			}
			start := time.Now()
			q.Close()
			if took := time.Since(start); took > 3*time.Second {
				t.Fatalf("Close on a hung server took %v with a 500ms call timeout", took)
			}
			if _, err := q.Put(ctx, "t", nil); !errors.Is(err, beanspike.ErrClosed) {
				t.Fatalf("Put after Close: %v, want ErrClosed", err)
			}
		})
	}
}

// TestDialBoundedByContext dials a service whose listener never accepts:
// Dial fails with its context's error by its deadline, whatever the
// multiplexer does.
func TestDialBoundedByContext(t *testing.T) {
	for _, m := range muxtest.All() {
		t.Run(m.Name, func(t *testing.T) {
			sm, cm := m.Make(t)
			l, err := sm.Bind("", remote.DefaultService)
			if err != nil {
				t.Fatal(err)
			}
			defer l.Close()
			ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
			defer cancel()
			start := time.Now()
			q, err := remote.Dial(ctx, cm, remote.DefaultService)
			if err == nil {
				q.Close()
			}
			if took := time.Since(start); took > 2*time.Second {
				t.Fatalf("Dial took %v with a 200ms deadline", took)
			}
			if err != context.DeadlineExceeded {
				t.Fatalf("Dial of a service that never accepts: %v, want context.DeadlineExceeded", err)
			}
		})
	}
}
