package vnet_test

import (
	"encoding/binary"
	"net"
	"runtime"
	"testing"
	"time"

	"github.com/beanspike/beanspike/chanserv/vnet"
)

// yamuxFrames returns n yamux frame headers of one type and flags, for
// streams (or ping ids) first, first+step, ...
func yamuxFrames(n int, typ byte, flags uint16, first, step uint32) []byte {
	b := make([]byte, 0, 12*n)
	for i := range n {
		id := first + uint32(i)*step
		b = append(b, 0, typ)
		b = binary.BigEndian.AppendUint16(b, flags)
		if typ == 2 { // ping: stream 0, the id in the length field
			b = binary.BigEndian.AppendUint32(b, 0)
			b = binary.BigEndian.AppendUint32(b, id)
		} else {
			b = binary.BigEndian.AppendUint32(b, id)
			b = binary.BigEndian.AppendUint32(b, 0)
		}
	}
	return b
}

// checkFlood floods a node with frames from a connection that reads
// nothing, and checks that its goroutines stay within extra of what it
// had (the flood stops early if they do not), and that another client is
// served afterwards.
func checkFlood(t *testing.T, frames []byte, extra int, opts ...vnet.Option) {
	a, b := pair(t, opts, nil)
	serveEcho(t, a, "echo")
	addr, err := a.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	if c, err := roundTrip(b, "echo"); err != nil {
		t.Fatal(err)
	} else {
		c.Close()
	}
	time.Sleep(50 * time.Millisecond)
	base := runtime.NumGoroutine()
	c, err := net.Dial("tcp", addr.String())
	if err != nil {
		t.Fatal(err)
	}
	const chunk = 64 << 10
	peak := base
	for off := 0; off < len(frames); off += chunk {
		c.SetWriteDeadline(time.Now().Add(3 * time.Second))
		if _, err := c.Write(frames[off:min(off+chunk, len(frames))]); err != nil {
			break // the node closed the connection or stopped reading
		}
		if peak = max(peak, runtime.NumGoroutine()); peak > base+extra {
			break
		}
	}
	time.Sleep(50 * time.Millisecond)
	peak = max(peak, runtime.NumGoroutine())
	c.Close()
	if peak > base+extra {
		t.Fatalf("goroutines went from %d to %d under the flood", base, peak)
	}
	rc, err := roundTrip(b, "echo")
	if err != nil {
		t.Fatalf("another client after the flood: %v", err)
	}
	rc.Close()
}

// TestPingFlood sends 12 MB of pings (1,048,576), more than the socket
// buffers hold, and reads no reply.
func TestPingFlood(t *testing.T) {
	checkFlood(t, yamuxFrames(12<<20/12, 2, 1, 1, 1), 100)
}

// TestStreamOpenFlood opens 20,000 streams (window updates with SYN) and
// names no target in any of them.
func TestStreamOpenFlood(t *testing.T) {
	const streams = 64
	checkFlood(t, yamuxFrames(20000, 1, 1, 1, 2), streams+20, vnet.WithMaxStreams(streams))
}
