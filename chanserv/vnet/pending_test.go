package vnet_test

import (
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/beanspike/beanspike/chanserv/vnet"
)

// stallingPeer is a yamux client on a raw TCP connection that opens
// streams and sends each the start of a preamble and no more, and
// records what the node answers.
type stallingPeer struct {
	c    net.Conn
	next uint32 // the next stream's id
	done chan struct{}

	mu     sync.Mutex
	acked  int               // streams the node accepted
	resets map[uint32]uint32 // stream id: reset code
	order  []uint32          // stream ids in the order they were reset
}

func newStallingPeer(t *testing.T, addr string) *stallingPeer {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	p := &stallingPeer{c: c, next: 1, done: make(chan struct{}), resets: make(map[uint32]uint32)}
	go p.read()
	t.Cleanup(func() {
		c.Close()
		<-p.done
	})
	return p
}

// open opens n streams, each with a data frame that carries the first 2
// of the 4 bytes of the address "echo".
func (p *stallingPeer) open(n int) error {
	b := make([]byte, 0, n*16)
	for range n {
		b = append(b, 0, 0) // version, type data
		b = binary.BigEndian.AppendUint16(b, 1)
		b = binary.BigEndian.AppendUint32(b, p.next)
		b = binary.BigEndian.AppendUint32(b, 4)
		b = append(b, 0, 4, 'e', 'c')
		p.next += 2
	}
	p.c.SetWriteDeadline(time.Now().Add(5 * time.Second))
	_, err := p.c.Write(b)
	return err
}

// name sends the rest of the preamble of each of the streams ids.
func (p *stallingPeer) name(ids ...uint32) error {
	var b []byte
	for _, id := range ids {
		b = append(b, 0, 0, 0, 0)
		b = binary.BigEndian.AppendUint32(b, id)
		b = binary.BigEndian.AppendUint32(b, 2)
		b = append(b, 'h', 'o')
	}
	p.c.SetWriteDeadline(time.Now().Add(5 * time.Second))
	_, err := p.c.Write(b)
	return err
}

// read records the node's answers to the peer's streams until the
// connection fails.
func (p *stallingPeer) read() {
	defer close(p.done)
	var h [12]byte
	for {
		if _, err := io.ReadFull(p.c, h[:]); err != nil {
			return
		}
		typ, flags := h[1], binary.BigEndian.Uint16(h[2:])
		id, length := binary.BigEndian.Uint32(h[4:]), binary.BigEndian.Uint32(h[8:])
		if typ == 0 { // data: the node's control stream
			if _, err := io.CopyN(io.Discard, p.c, int64(length)); err != nil {
				return
			}
		}
		if id%2 == 0 || typ > 1 {
			continue
		}
		p.mu.Lock()
		if flags&2 != 0 { // ACK
			p.acked++
		}
		if flags&8 != 0 { // RST, the code in the length
			p.resets[id] = length
			p.order = append(p.order, id)
		}
		p.mu.Unlock()
	}
}

// counts returns how many streams the node accepted, and how many it
// reset as refused (code 2), which the waiting streams the node gives up
// on are not.
func (p *stallingPeer) counts() (acked, refused int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, code := range p.resets {
		if code == 2 {
			refused++
		}
	}
	return p.acked, refused
}

// waitFor waits up to 5 s for cond over all the peers.
func waitFor(t *testing.T, peers []*stallingPeer, what string, cond func(acked, refused int) bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		acked, refused := 0, 0
		for _, p := range peers {
			a, r := p.counts()
			acked, refused = acked+a, refused+r
		}
		if cond(acked, refused) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("waiting for %s: %d streams accepted, %d refused", what, acked, refused)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// stallStreams opens streams per connection on conns connections to
// addr, each stream with a preamble cut short, and waits until the node
// has accepted them all. It returns the peers.
func stallStreams(t *testing.T, addr string, conns, streams int) []*stallingPeer {
	t.Helper()
	peers := make([]*stallingPeer, conns)
	for i := range peers {
		peers[i] = newStallingPeer(t, addr)
		if err := peers[i].open(streams); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, peers, "the stalled streams to be accepted", func(acked, _ int) bool { return acked == conns*streams })
	return peers
}

// TestStalledPreamblesDoNotLockOut holds streams whose preamble is cut
// short, from several connections, whose windows together would be five
// times the node's buffer budget, and checks that fresh sessions and an
// established one are still served.
func TestStalledPreamblesDoNotLockOut(t *testing.T) {
	const (
		window  = 256 << 10
		conns   = 5
		streams = vnet.DefaultMaxStreams
	)
	a, b := pair(t, []vnet.Option{vnet.WithWindow(window), vnet.WithMaxBuffer(conns * streams / 5 * window)}, nil)
	serveEcho(t, a, "echo")
	addr, err := a.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	peers := stallStreams(t, addr.String(), conns, streams)
	for i := range 3 {
		if err := echoOver(t, addr.String(), "echo", 5*time.Second); err != nil {
			t.Fatalf("fresh session %d with %d streams held unnamed: %v", i, conns*streams, err)
		}
	}
	c, err := roundTrip(b, "echo")
	if err != nil {
		t.Fatalf("new stream of an established session with %d streams held unnamed: %v", conns*streams, err)
	}
	c.Close()
	// The node let no more than its bound wait: the oldest were reset.
	waitFor(t, peers, "the streams past the bound to be reset", func(_, refused int) bool {
		return refused >= conns*streams-vnet.DefaultMaxPending
	})
	for _, p := range peers {
		p.mu.Lock()
		for id, code := range p.resets {
			if code != 2 {
				t.Errorf("stream %d reset with code %d, want 2 (refused)", id, code)
			}
		}
		p.mu.Unlock()
	}
}

// TestNamedStreamsNotEvicted checks that, while peers hold as many
// unnamed streams as the node lets wait, and open more, streams that name
// their target at once are served, each making room by resetting a held
// one, and that an established stream is left alone.
func TestNamedStreamsNotEvicted(t *testing.T) {
	const (
		conns   = 5
		streams = vnet.DefaultMaxStreams
		dials   = 50
	)
	held := conns*streams - vnet.DefaultMaxPending
	if held < 1 {
		t.Fatalf("%d held streams do not pass the bound of %d", conns*streams, vnet.DefaultMaxPending)
	}
	a, b := pair(t, nil, nil)
	serveEcho(t, a, "echo")
	addr, err := a.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	established, err := roundTrip(b, "echo")
	if err != nil {
		t.Fatal(err)
	}
	defer established.Close()
	peers := stallStreams(t, addr.String(), conns, streams)
	waitFor(t, peers, "the streams past the bound to be reset", func(_, refused int) bool { return refused >= held })
	// Before each stream of b's, one more unnamed stream fills the bound
	// again (taking the place b's last stream left when it named its
	// target).
	more := newStallingPeer(t, addr.String())
	peers = append(peers, more)
	for i := range dials {
		if err := more.open(1); err != nil {
			t.Fatal(err)
		}
		waitFor(t, peers, "another unnamed stream to be accepted", func(acked, _ int) bool { return acked == conns*streams+i+1 })
		c, err := roundTrip(b, "echo")
		if err != nil {
			t.Fatalf("stream %d, named at once: %v", i, err)
		}
		c.Close()
	}
	// Each of b's streams came to a full bound, and made room.
	waitFor(t, peers, "a held stream reset for each of b's", func(_, refused int) bool { return refused >= held+dials })
	established.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := established.Write([]byte{9}); err != nil {
		t.Fatalf("established stream: %v", err)
	}
	var got [1]byte
	if _, err := io.ReadFull(established, got[:]); err != nil || got[0] != 9 {
		t.Fatalf("established stream read %v, %v", got, err)
	}
}

// TestOldestPendingEvicted checks that the stream reset to make room is
// the one that has waited longest.
func TestOldestPendingEvicted(t *testing.T) {
	const max = 4
	a := newNode(t, vnet.WithMaxPending(max))
	serveEcho(t, a, "echo")
	addr, err := a.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := newStallingPeer(t, addr.String())
	peers := []*stallingPeer{p}
	for i := range max + 3 {
		if err := p.open(1); err != nil {
			t.Fatal(err)
		}
		waitFor(t, peers, fmt.Sprintf("stream %d to be accepted", i), func(acked, _ int) bool { return acked == i+1 })
	}
	waitFor(t, peers, "three resets", func(_, refused int) bool { return refused >= 3 })
	time.Sleep(20 * time.Millisecond) // for a reset too many
	p.mu.Lock()
	defer p.mu.Unlock()
	if want := []uint32{1, 3, 5}; fmt.Sprint(p.order) != fmt.Sprint(want) {
		t.Fatalf("streams reset in the order %v, want %v", p.order, want)
	}
}

// TestNamingCountsWholeWindow checks that streams let in while unnamed,
// each counting far less than its window, are refused when they name
// their target if their windows do not fit the node's budget.
func TestNamingCountsWholeWindow(t *testing.T) {
	const (
		window  = 256 << 10
		streams = 10
		fit     = 3 // with the node's control stream to the peer
	)
	a := newNode(t, vnet.WithWindow(window), vnet.WithMaxBuffer((fit+1)*window))
	l, err := a.Bind("", "echo")
	if err != nil {
		t.Fatal(err)
	}
	var accepted atomic.Int64
	go func() {
		var conns []net.Conn // held, with their windows
		defer func() {
			for _, c := range conns {
				c.Close()
			}
		}()
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			accepted.Add(1)
			conns = append(conns, c)
		}
	}()
	addr, err := a.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	// One at a time: streams go-yamux has queued for the node count
	// their whole windows until the node takes them up.
	p := newStallingPeer(t, addr.String())
	peers := []*stallingPeer{p}
	for i := range streams {
		if err := p.open(1); err != nil {
			t.Fatal(err)
		}
		waitFor(t, peers, fmt.Sprintf("stream %d to be accepted", i), func(acked, _ int) bool { return acked == i+1 })
	}
	if _, refused := p.counts(); refused != 0 {
		t.Fatalf("%d of %d unnamed streams refused", refused, streams)
	}
	var ids []uint32
	for i := range streams {
		ids = append(ids, uint32(1+2*i))
	}
	if err := p.name(ids...); err != nil {
		t.Fatal(err)
	}
	waitFor(t, peers, "the streams past the budget to be refused", func(_, refused int) bool { return refused >= streams-fit })
	time.Sleep(20 * time.Millisecond) // for the accepts
	// Streams named at once may each see the others' windows: fewer may
	// fit, never more.
	if n := accepted.Load(); n > fit {
		t.Fatalf("%d of %d streams accepted, room for %d", n, streams, fit)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	for id, code := range p.resets {
		if code != 2 {
			t.Errorf("stream %d reset with code %d, want 2 (refused)", id, code)
		}
	}
}
