package quirkmux_test

import (
	"errors"
	"io"
	"net"
	"os"
	"testing"
	"time"

	"github.com/beanspike/beanspike/chanserv/quirkmux"
)

// returns runs f in a goroutine and reports whether it returns within d.
func returns(d time.Duration, f func()) bool {
	done := make(chan struct{})
	go func() {
		defer close(done)
		f()
	}()
	select {
	case <-done:
		return true
	case <-time.After(d):
		return false
	}
}

func TestDialReturnsBeforeAccept(t *testing.T) {
	n := quirkmux.New()
	defer n.Close()
	c, err := n.DialTimeout("", "nobody", time.Millisecond)
	if err != nil {
		t.Fatalf("dial of an unbound address: %v, want a connection", err)
	}
	c.SetDeadline(time.Now().Add(10 * time.Millisecond))
	c.Close()
	// Neither the deadline nor Close ends the first Write.
	wrote := make(chan error, 1)
	if returns(200*time.Millisecond, func() { _, err := c.Write([]byte("x")); wrote <- err }) {
		t.Fatalf("first Write to an unbound address returned: %v", <-wrote)
	}
	n.Close()
	if err := <-wrote; !errors.Is(err, quirkmux.ErrClosed) {
		t.Fatalf("first Write after the network closed: %v, want ErrClosed", err)
	}
}

func TestFirstWriteWaitsForAccept(t *testing.T) {
	n := quirkmux.New()
	defer n.Close()
	l, err := n.Bind("", "svc")
	if err != nil {
		t.Fatal(err)
	}
	c, err := n.DialTimeout("", "svc", time.Second)
	if err != nil {
		t.Fatal(err)
	}
	c.SetWriteDeadline(time.Now().Add(10 * time.Millisecond))
	wrote := make(chan error, 1)
	if returns(200*time.Millisecond, func() { _, err := c.Write([]byte("hi")); wrote <- err }) {
		t.Fatalf("first Write returned before Accept: %v", <-wrote)
	}
	s, err := l.Accept()
	if err != nil {
		t.Fatal(err)
	}
	if err := <-wrote; err != nil {
		t.Fatalf("first Write after Accept: %v", err)
	}
	// Later writes honour the deadline, which has passed.
	if _, err := c.Write([]byte("x")); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("second Write after its deadline: %v, want a timeout", err)
	}
	buf := make([]byte, 8)
	if k, err := s.Read(buf); err != nil || string(buf[:k]) != "hi" {
		t.Fatalf("server read %q, %v", buf[:k], err)
	}
}

func TestCloseDoesNotUnblockRead(t *testing.T) {
	n := quirkmux.New()
	defer n.Close()
	l, _ := n.Bind("", "svc")
	c, _ := n.DialTimeout("", "svc", time.Second)
	go c.Write([]byte("x"))
	s, err := l.Accept()
	if err != nil {
		t.Fatal(err)
	}
	io.ReadFull(s, make([]byte, 1))
	got := make(chan error, 1)
	go func() {
		_, err := c.Read(make([]byte, 1))
		got <- err
	}()
	time.Sleep(20 * time.Millisecond)
	c.Close()
	select {
	case err := <-got:
		t.Fatalf("pending Read returned after Close: %v", err)
	case <-time.After(200 * time.Millisecond):
	}
	if _, err := c.Read(make([]byte, 1)); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("Read after Close: %v, want net.ErrClosed", err)
	}
	// The peer sees the end and closes: the pending Read ends.
	if _, err := s.Read(make([]byte, 1)); err != io.EOF {
		t.Fatalf("peer Read after Close: %v, want io.EOF", err)
	}
	s.Close()
	if err := <-got; err != io.EOF {
		t.Fatalf("pending Read after the peer closed: %v, want io.EOF", err)
	}
}

func TestWindow(t *testing.T) {
	n := quirkmux.New()
	defer n.Close()
	l, _ := n.Bind("", "svc")
	c, _ := n.DialTimeout("", "svc", time.Second)
	go l.Accept()
	if _, err := c.Write(nil); err != nil { // the first Write ignores deadlines
		t.Fatal(err)
	}
	c.SetWriteDeadline(time.Now().Add(100 * time.Millisecond))
	k, err := c.Write(make([]byte, 2*quirkmux.Window))
	if k != quirkmux.Window || !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("Write beyond the window with nobody reading = %d, %v; want %d and a timeout", k, err, quirkmux.Window)
	}
}

func TestReset(t *testing.T) {
	n := quirkmux.New()
	defer n.Close()
	l, _ := n.Bind("", "svc")
	c, _ := n.DialTimeout("", "svc", time.Second)
	go l.Accept()
	got := make(chan error, 1)
	go func() {
		_, err := c.Read(make([]byte, 1))
		got <- err
	}()
	time.Sleep(20 * time.Millisecond)
	c.(*quirkmux.Conn).Reset()
	if err := <-got; err == nil || err == io.EOF {
		t.Fatalf("pending Read after Reset: %v, want an error", err)
	}
	if _, err := c.Write([]byte("x")); err == nil {
		t.Fatal("Write after Reset succeeded")
	}
}
