package vnet

import (
	"container/list"
	"sync"
	"time"

	yamux "github.com/libp2p/go-yamux/v5"
)

// Streams awaiting their preamble.
const (
	// defaultMaxPending is how many accepted streams the node lets await
	// their preamble at a time, unless WithMaxStreams allows a peer more
	// streams than that.
	defaultMaxPending = 1024
	// pendingCharge is what a stream awaiting its preamble counts against
	// the node's buffer budget instead of its window: it cannot hold more
	// than its preamble (at most 2+maxAddrLen bytes; a peer that sends
	// more has named its target) and go-yamux's bookkeeping.
	pendingCharge = 4 << 10
)

// pendingStreams are the accepted streams whose preamble the node has
// not read yet, oldest first. There are at most max: a stream accepted
// when there are max resets the oldest, which is the one most likely
// held on purpose, since a well-behaved peer's preamble follows its
// stream's opening at once.
type pendingStreams struct {
	mu  sync.Mutex
	l   list.List // of *pendingStream
	max int
}

// pendingStream is one stream in pendingStreams.
type pendingStream struct {
	st      *yamux.Stream
	e       *list.Element // nil once out of the list
	evicted bool          // taken out of the list by add; under mu
}

// add appends st, whose preamble deadline is set, and, if there are more
// than max, takes the oldest out of the list and sets its read deadline
// in the past, which ends its route's wait. It returns st's entry and
// whether it evicted one.
func (p *pendingStreams) add(st *yamux.Stream) (*pendingStream, bool) {
	ps := &pendingStream{st: st}
	p.mu.Lock()
	defer p.mu.Unlock()
	ps.e = p.l.PushBack(ps)
	if p.l.Len() <= p.max {
		return ps, false
	}
	old := p.l.Remove(p.l.Front()).(*pendingStream)
	old.e, old.evicted = nil, true
	// Under mu, so that the deadline cannot land after the route has
	// taken its stream out of the list and cleared the deadline.
	old.st.SetReadDeadline(time.Unix(1, 0))
	return ps, true
}

// remove takes ps out of the list, if add has not, and reports whether
// add evicted it.
func (p *pendingStreams) remove(ps *pendingStream) (evicted bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if ps.e != nil {
		p.l.Remove(ps.e)
		ps.e = nil
	}
	return ps.evicted
}
