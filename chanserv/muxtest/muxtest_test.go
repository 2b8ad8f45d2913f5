package muxtest_test

import (
	"testing"

	"github.com/beanspike/beanspike/chanserv"
	imux "github.com/beanspike/beanspike/chanserv/internal/muxtest"
	"github.com/beanspike/beanspike/chanserv/muxtest"
)

// TestMultiplexers runs the suite against the multiplexers of this
// module: memmux and vnet, which are well-behaved net.Conns, and
// quirkmux, which has AstraNet's quirks.
func TestMultiplexers(t *testing.T) {
	full := muxtest.Features{CloseUnblocksRead: true, NetConn: true}
	for _, c := range []struct {
		name     string
		make     imux.Maker
		features muxtest.Features
	}{
		{"memmux", imux.Memmux, full},
		{"vnet", imux.Vnet, full},
		{"quirkmux", imux.Quirkmux, muxtest.Features{}},
	} {
		t.Run(c.name, func(t *testing.T) {
			muxtest.Run(t, muxtest.Harness{
				New: func(t *testing.T) (server, client chanserv.Multiplexer) {
					return c.make(t)
				},
				Features: c.features,
			})
		})
	}
}
