// Package muxtest holds the multiplexers the transport's tests run over:
// the in-memory one, vnet on loopback TCP, and quirkmux, which behaves as
// AstraNet does.
package muxtest

import (
	"context"
	"testing"
	"time"

	"github.com/beanspike/beanspike/chanserv"
	"github.com/beanspike/beanspike/chanserv/memmux"
	"github.com/beanspike/beanspike/chanserv/quirkmux"
	"github.com/beanspike/beanspike/chanserv/vnet"
)

// Maker makes the server's and the client's side of one link, closed at
// the end of the test.
type Maker = func(testing.TB) (server, client chanserv.Multiplexer)

// Mux is a named Maker.
type Mux struct {
	Name string
	Make Maker
}

// All returns the multiplexers every test runs over.
func All() []Mux {
	return []Mux{{"memmux", Memmux}, {"vnet", Vnet}, {"quirkmux", Quirkmux}}
}

// Quirkmux returns one quirkmux network as both sides of the link,
// closed at the end of the test.
func Quirkmux(tb testing.TB) (server, client chanserv.Multiplexer) {
	n := quirkmux.New()
	tb.Cleanup(func() { n.Close() })
	return n, n
}

// Memmux returns one in-memory multiplexer as both sides of the link.
func Memmux(testing.TB) (server, client chanserv.Multiplexer) {
	n := memmux.New()
	return n, n
}

// Vnet returns two vnet nodes linked over loopback TCP; see VnetPair.
func Vnet(tb testing.TB) (server, client chanserv.Multiplexer) {
	return VnetPair(tb)
}

// VnetPair links two vnet nodes over loopback TCP: a listens, b
// connects. Both are closed at the end of the test.
func VnetPair(tb testing.TB) (a, b *vnet.Node) {
	tb.Helper()
	a, err := vnet.New()
	if err != nil {
		tb.Fatal(err)
	}
	b, err = vnet.New()
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		b.Close()
		a.Close()
	})
	addr, err := a.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := b.Connect(ctx, "tcp", addr.String()); err != nil {
		tb.Fatal(err)
	}
	return a, b
}
