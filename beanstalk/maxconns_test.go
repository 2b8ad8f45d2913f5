package beanstalk

import (
	"errors"
	"testing"
	"time"

	"github.com/beanspike/beanspike"
)

// Past WithMaxConns, a new connection is closed at once; the connections
// being served are not disturbed, and one that ends makes room.
func TestMaxConns(t *testing.T) {
	srv, addr := startFrontEnd(t, WithMaxConns(2))
	a, b := dial(t, addr), dial(t, addr)
	a.expect("use t\r\n", "USING t\r\n")
	b.expect("use t\r\n", "USING t\r\n")
	over := dial(t, addr)
	over.closed(5 * time.Second)
	a.expect("put 0 0 60 1\r\nx\r\n", "INSERTED 1\r\n")
	if n := srv.Conns(); n != 2 {
		t.Fatalf("Conns = %d, want 2", n)
	}
	b.nc.Close()
	deadline := time.Now().Add(5 * time.Second)
	for srv.Conns() > 1 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	c := dial(t, addr)
	c.expect("use t\r\n", "USING t\r\n")
}

func TestMaxConnsInvalid(t *testing.T) {
	for _, n := range []int{0, -1} {
		if _, err := NewServer(newStore(t), WithMaxConns(n)); !errors.Is(err, beanspike.ErrInvalidArgument) {
			t.Errorf("WithMaxConns(%d): %v, want ErrInvalidArgument", n, err)
		}
	}
}
