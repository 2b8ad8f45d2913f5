package memmux_test

import (
	"errors"
	"net"
	"testing"
	"time"

	"golang.org/x/net/nettest"

	"github.com/beanspike/beanspike/chanserv/memmux"
)

func TestConn(t *testing.T) {
	n := memmux.New()
	nettest.TestConn(t, func() (c1, c2 net.Conn, stop func(), err error) {
		l, err := n.Bind("", ":0")
		if err != nil {
			return nil, nil, nil, err
		}
		defer l.Close()
		ch := make(chan net.Conn, 1)
		go func() {
			c, _ := l.Accept()
			ch <- c
		}()
		c1, err = n.DialTimeout("", l.Addr().String(), time.Second)
		if err != nil {
			return nil, nil, nil, err
		}
		c2 = <-ch
		return c1, c2, func() { c1.Close(); c2.Close() }, nil
	})
}

func TestDialErrors(t *testing.T) {
	n := memmux.New()
	if _, err := n.DialTimeout("", "nobody", time.Second); !errors.Is(err, memmux.ErrNoListener) {
		t.Fatalf("dial unbound: %v", err)
	}
	l, err := n.Bind("", "svc")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := n.Bind("", "svc"); !errors.Is(err, memmux.ErrAddrInUse) {
		t.Fatalf("second bind: %v", err)
	}
	// Nobody accepts: the dial times out.
	start := time.Now()
	if _, err := n.DialTimeout("", "svc", 50*time.Millisecond); err == nil {
		t.Fatal("dial without accept succeeded")
	}
	if time.Since(start) < 50*time.Millisecond {
		t.Fatal("dial returned before its timeout")
	}
	l.Close()
	if _, err := l.Accept(); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("accept after close: %v", err)
	}
	if _, err := n.Bind("", "svc"); err != nil {
		t.Fatalf("rebind after close: %v", err)
	}
}
