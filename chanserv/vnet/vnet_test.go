package vnet_test

import (
	"errors"
	"io"
	"net"
	"sync"
	"testing"
	"time"

	"golang.org/x/net/nettest"

	"github.com/beanspike/beanspike/chanserv/internal/muxtest"
	"github.com/beanspike/beanspike/chanserv/vnet"
)

func TestConn(t *testing.T) {
	a, b := muxtest.VnetPair(t)
	nettest.TestConn(t, func() (c1, c2 net.Conn, stop func(), err error) {
		l, err := a.Bind("", ":0")
		if err != nil {
			return nil, nil, nil, err
		}
		type res struct {
			c   net.Conn
			err error
		}
		ch := make(chan res, 1)
		go func() {
			c, err := l.Accept()
			ch <- res{c, err}
		}()
		c1, err = b.DialTimeout("", l.Addr().String(), 5*time.Second)
		if err != nil {
			l.Close()
			return nil, nil, nil, err
		}
		// The stream reaches the acceptor with the opener's first bytes.
		if _, err := c1.Write(nil); err != nil {
			return nil, nil, nil, err
		}
		r := <-ch
		l.Close()
		if r.err != nil {
			c1.Close()
			return nil, nil, nil, r.err
		}
		return c1, r.c, func() { c1.Close(); r.c.Close() }, nil
	})
}

func TestDialWaitsForAdvertisement(t *testing.T) {
	a, b := muxtest.VnetPair(t)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		time.Sleep(50 * time.Millisecond)
		l, err := a.Bind("", "late")
		if err != nil {
			t.Error(err)
			return
		}
		defer l.Close()
		c, err := l.Accept()
		if err != nil {
			t.Error(err)
			return
		}
		defer c.Close()
		io.Copy(c, c)
	}()
	c, err := b.DialTimeout("", "late", 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Write([]byte("ping")); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 4)
	if _, err := io.ReadFull(c, buf); err != nil || string(buf) != "ping" {
		t.Fatalf("read %q, %v", buf, err)
	}
	c.Close()
	wg.Wait()
}

func TestDialUnknown(t *testing.T) {
	_, b := muxtest.VnetPair(t)
	start := time.Now()
	_, err := b.DialTimeout("", "nobody", 100*time.Millisecond)
	if !errors.Is(err, vnet.ErrNoRoute) {
		t.Fatalf("err = %v, want ErrNoRoute", err)
	}
	if time.Since(start) < 100*time.Millisecond {
		t.Fatalf("returned before the timeout")
	}
}

func TestUnboundAfterAdvertise(t *testing.T) {
	a, b := muxtest.VnetPair(t)
	l, err := a.Bind("", "svc")
	if err != nil {
		t.Fatal(err)
	}
	c, err := b.DialTimeout("", "svc", 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	// Close the listener before accepting: the opener learns on Read.
	l.Close()
	c.Write([]byte("x"))
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	_, err = c.Read(make([]byte, 1))
	if !errors.Is(err, vnet.ErrNoRoute) {
		t.Fatalf("err = %v, want ErrNoRoute", err)
	}
}

func TestManyStreams(t *testing.T) {
	if testing.Short() {
		t.Skip("many streams: skipped in -short")
	}
	a, b := pair(t, []vnet.Option{vnet.WithMaxStreams(2000)}, nil)
	l, err := a.Bind("", "echo")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go func() { io.Copy(c, c); c.Close() }()
		}
	}()
	const n = 1500
	conns := make([]net.Conn, n)
	for i := range conns {
		c, err := b.DialTimeout("", "echo", 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := c.Write([]byte{byte(i)}); err != nil {
			t.Fatal(err)
		}
		conns[i] = c
	}
	for i, c := range conns {
		var buf [1]byte
		c.SetReadDeadline(time.Now().Add(10 * time.Second))
		if _, err := io.ReadFull(c, buf[:]); err != nil || buf[0] != byte(i) {
			t.Fatalf("stream %d: %v %v", i, buf, err)
		}
		c.Close()
	}
}

func TestCloseNodeFailsStreams(t *testing.T) {
	a, b := muxtest.VnetPair(t)
	l, err := a.Bind("", "svc")
	if err != nil {
		t.Fatal(err)
	}
	go func() {
		c, err := l.Accept()
		if err == nil {
			c.Write([]byte{1})
		}
	}()
	c, err := b.DialTimeout("", "svc", 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	buf := make([]byte, 1)
	if _, err := c.Read(buf); err != nil {
		t.Fatal(err)
	}
	a.Close()
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := c.Read(buf); err == nil {
		t.Fatal("read after the peer closed succeeded")
	} else if errors.Is(err, ErrTimeoutSentinel) {
		t.Fatal("read timed out instead of failing")
	}
}

// ErrTimeoutSentinel is os.ErrDeadlineExceeded under a local name.
var ErrTimeoutSentinel = func() error {
	c1, c2 := net.Pipe()
	defer c1.Close()
	defer c2.Close()
	c1.SetReadDeadline(time.Now())
	_, err := c1.Read(make([]byte, 1))
	return errors.Unwrap(err)
}()
