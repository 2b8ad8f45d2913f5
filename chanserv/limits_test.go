package chanserv_test

import (
	"context"
	"errors"
	"io"
	"net"
	"runtime"
	"testing"
	"time"

	"github.com/beanspike/beanspike/chanserv"
	"github.com/beanspike/beanspike/chanserv/internal/wire"
	"github.com/beanspike/beanspike/chanserv/memmux"
)

// fakeServer binds svc on a new in-memory network and hands each stream
// it accepts to serve, after reading the client's request away in the
// background.
func fakeServer(t *testing.T, serve func(c net.Conn)) *memmux.Network {
	t.Helper()
	mux := memmux.New()
	l, err := mux.Bind("", "svc")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				go io.Copy(io.Discard, c)
				serve(c)
			}()
		}
	}()
	return mux
}

func frame(k wire.Kind, id uint32, n int, p []byte) []byte {
	return append(wire.AppendHeader(nil, k, id, n), p...)
}

// totalAlloc returns the bytes allocated so far by the process.
func totalAlloc() uint64 {
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.TotalAlloc
}

// TestClientRejectsUnnegotiatedLengths has a server announce lengths of
// 1 TiB and just over the client's limit in each kind of frame: the
// client fails the response with ErrProtocol before allocating anything.
func TestClientRejectsUnnegotiatedLengths(t *testing.T) {
	const limit = 1 << 20
	pre := wire.AppendPreamble(nil)
	src := frame(wire.KindSource, 1, 0, nil)
	for _, tc := range []struct {
		name string
		in   []byte
	}{
		{"source header 1 TiB", frame(wire.KindSource, 1, 1<<40, nil)},
		{"source header over the limit", frame(wire.KindSource, 1, limit+1, nil)},
		{"data 1 TiB", append(src, frame(wire.KindData, 1, 1<<40, nil)...)},
		{"data over the limit", append(src, frame(wire.KindData, 1, limit+1, nil)...)},
		{"encoded data 1 TiB", append(src, frame(wire.KindDataCodec, 1, 1<<40, nil)...)},
		{"end status 1 TiB", frame(wire.KindEnd, 0, 1<<40, nil)},
		{"length of 2^64-1", append(wire.AppendHeader(nil, wire.KindData, 1, 0)[:2], 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			mux := fakeServer(t, func(c net.Conn) {
				c.Write(append(append([]byte{}, pre...), tc.in...))
				<-t.Context().Done() // never end: only the length may fail the client
			})
			cl, err := chanserv.NewClient(mux, chanserv.WithMaxFrameSize(limit))
			if err != nil {
				t.Fatal(err)
			}
			defer cl.Close()
			ctx := testCtx(t)
			before := totalAlloc()
			r, err := cl.Post(ctx, "svc", nil)
			if err != nil {
				t.Fatal(err)
			}
			defer r.Close()
			var got error
			for s, err := range r.Sources(ctx) {
				if err != nil {
					got = err
					break
				}
				_, got = s.Next(ctx)
				if got != nil {
					break
				}
			}
			if !errors.Is(got, chanserv.ErrProtocol) {
				t.Fatalf("response error = %v, want ErrProtocol", got)
			}
			if d := totalAlloc() - before; d > 16<<20 {
				t.Fatalf("client allocated %d bytes for an announced length", d)
			}
		})
	}
}

// TestClientAllocatesAsBytesArrive has a server announce a data frame of
// 512 MiB, within the client's limit, and send 200 bytes of it: the
// client allocates for what arrived, not for what was announced.
func TestClientAllocatesAsBytesArrive(t *testing.T) {
	sent := make(chan struct{})
	mux := fakeServer(t, func(c net.Conn) {
		b := wire.AppendPreamble(nil)
		b = append(b, frame(wire.KindSource, 1, 0, nil)...)
		b = append(b, frame(wire.KindData, 1, 512<<20, make([]byte, 100))...)
		c.Write(b)
		// memmux is synchronous: this second write returns once the
		// client reads into the memory it allocated for the frame.
		c.Write(make([]byte, 100))
		close(sent)
		time.Sleep(200 * time.Millisecond)
	})
	cl, err := chanserv.NewClient(mux, chanserv.WithMaxFrameSize(1<<30))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx := testCtx(t)
	before := totalAlloc()
	r, err := cl.Post(ctx, "svc", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	s, err := r.Next(ctx)
	if err != nil {
		t.Fatal(err)
	}
	<-sent
	if d := totalAlloc() - before; d > 32<<20 {
		t.Fatalf("client allocated %d bytes for 200 bytes of a 512 MiB frame", d)
	}
	if _, err := s.Next(ctx); !errors.Is(err, chanserv.ErrTruncated) {
		t.Fatalf("source cut inside a frame: %v, want ErrTruncated", err)
	}
}

// TestServerAllocatesAsBytesArrive has a client announce a request of
// 512 MiB, within the server's limit, and send 200 bytes of it: the
// server allocates for what arrived. A request announced longer than the
// limit is refused with a protocol status before anything is allocated.
func TestServerAllocatesAsBytesArrive(t *testing.T) {
	mux := memmux.New()
	srv, err := chanserv.NewServer(mux, chanserv.WithMaxFrameSize(1<<30))
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	if err := srv.Handle("svc", chanserv.HandlerFunc(func(context.Context, *chanserv.Request, chanserv.ResponseWriter) error {
		return nil
	})); err != nil {
		t.Fatal(err)
	}

	t.Run("within the limit", func(t *testing.T) {
		c, err := mux.DialTimeout("", "svc", time.Second)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		before := totalAlloc()
		b := wire.AppendPreamble(nil)
		b = append(b, frame(wire.KindRequest, 0, 512<<20, make([]byte, 100))...)
		if _, err := c.Write(b); err != nil {
			t.Fatal(err)
		}
		if _, err := c.Write(make([]byte, 100)); err != nil {
			t.Fatal(err)
		}
		if d := totalAlloc() - before; d > 32<<20 {
			t.Fatalf("server allocated %d bytes for 200 bytes of a 512 MiB request", d)
		}
	})

	t.Run("1 TiB", func(t *testing.T) {
		cl, err := chanserv.NewClient(&rawRequestMux{mux, 1 << 40})
		if err != nil {
			t.Fatal(err)
		}
		defer cl.Close()
		ctx := testCtx(t)
		r, err := cl.Post(ctx, "svc", nil)
		if err != nil {
			t.Fatal(err)
		}
		defer r.Close()
		var re *chanserv.RemoteError
		_, err = r.Next(ctx)
		if !errors.As(err, &re) || re.Status != chanserv.StatusProtocol {
			t.Fatalf("request of 1 TiB: %v, want a StatusProtocol RemoteError", err)
		}
	})
}

// rawRequestMux dials connections that replace the client's request by a
// request header announcing n bytes.
type rawRequestMux struct {
	*memmux.Network
	n int
}

func (m *rawRequestMux) DialContext(ctx context.Context, network, address string) (net.Conn, error) {
	c, err := m.Network.DialContext(ctx, network, address)
	if err != nil {
		return nil, err
	}
	return &rawRequestConn{Conn: c, n: m.n}, nil
}

type rawRequestConn struct {
	net.Conn
	n    int
	sent bool
}

func (c *rawRequestConn) Write(p []byte) (int, error) {
	if c.sent {
		return len(p), nil
	}
	c.sent = true
	b := wire.AppendPreamble(nil)
	b = wire.AppendHeader(b, wire.KindRequest, 0, c.n)
	if _, err := c.Conn.Write(b); err != nil {
		return 0, err
	}
	return len(p), nil
}
