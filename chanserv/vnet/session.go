package vnet

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"io"
	"sync"
	"time"

	yamux "github.com/libp2p/go-yamux/v5"
)

const (
	opBound   = 1
	opUnbound = 2
)

// session is one yamux link to a peer.
type session struct {
	n    *Node
	ys   *yamux.Session
	done func() // called when the session ends, if not nil

	ctlMu sync.Mutex
	ctl   *yamux.Stream // our control stream; nil until opened

	mu     sync.Mutex
	remote map[string]struct{} // addresses the peer advertised
}

func (s *session) has(addr string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, ok := s.remote[addr]
	return ok
}

func (s *session) run() {
	n := s.n
	defer n.wg.Done()
	var wg sync.WaitGroup
	defer wg.Wait()
	defer func() {
		s.ys.Close()
		if s.done != nil {
			s.done()
		}
		n.mu.Lock()
		delete(n.sessions, s)
		n.notifyLocked()
		n.mu.Unlock()
	}()

	ctl, err := s.ys.OpenStream(context.Background())
	if err != nil {
		n.sessionEnded(err)
		return
	}
	// Under ctlMu, so that a concurrent Bind either is in this list or
	// advertises after it.
	s.ctlMu.Lock()
	buf := []byte{0, 0} // preamble: the empty address of a control stream
	n.mu.Lock()
	for name := range n.listeners {
		buf = appendRecord(buf, opBound, name)
	}
	n.mu.Unlock()
	s.ctl = ctl
	_, err = ctl.Write(buf)
	s.ctlMu.Unlock()
	if err != nil {
		n.sessionEnded(err)
		return
	}
	for {
		st, err := s.ys.AcceptStream()
		if err != nil {
			n.sessionEnded(err)
			return
		}
		// Here first, in the order the peer opened them: the budget
		// counts the streams go-yamux has queued for this loop too, so a
		// stream refused here makes room for one behind it. And again in
		// route, once the stream has named its target and counts its
		// whole window.
		if !s.admit(st) {
			continue
		}
		// Until it names its target, the stream counts pendingCharge
		// instead of its window, and the node lets a bounded number of
		// streams wait so: past the bound the oldest goes. The deadline
		// is set here, before add can move it.
		st.SetReadDeadline(time.Now().Add(preambleTimeout))
		n.buf.naming.Add(1)
		ps, evicted := n.pending.add(st)
		if evicted {
			n.warn("pending", "vnet: stream reset: too many streams awaiting their preamble; the oldest made room",
				"max_pending", n.pending.max)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			s.route(st, ps)
		}()
	}
}

// advertise tells the peer about a local address.
func (s *session) advertise(op byte, name string) {
	s.ctlMu.Lock()
	defer s.ctlMu.Unlock()
	if s.ctl == nil {
		return // run sends the full list when it opens the control stream
	}
	if _, err := s.ctl.Write(appendRecord(nil, op, name)); err != nil {
		s.ys.Close()
	}
}

func appendRecord(b []byte, op byte, name string) []byte {
	b = append(b, op, byte(len(name)>>8), byte(len(name)))
	return append(b, name...)
}

// route reads an accepted stream's preamble and hands it on.
func (s *session) route(st *yamux.Stream, ps *pendingStream) {
	n := s.n
	bp := n.pooled()
	name, err := readPreamble(st, *bp)
	*bp = name
	evicted := n.pending.remove(ps)
	if err != nil {
		n.bufs.Put(bp)
		if evicted {
			st.ResetWithError(resetRefused)
		} else {
			st.Reset()
		}
		// Counted as waiting until the reset has released its window.
		n.buf.naming.Add(-1)
		return
	}
	// From here the stream counts its whole window: one a peer held
	// unnamed while the budget filled is refused now.
	n.buf.naming.Add(-1)
	st.SetReadDeadline(time.Time{})
	if len(name) == 0 {
		n.bufs.Put(bp)
		if s.admit(st) {
			s.readControl(st)
		}
		return
	}
	n.mu.Lock()
	l := n.listeners[string(name)]
	n.mu.Unlock()
	n.bufs.Put(bp)
	if l == nil {
		// Reset, so that the stream's window and data go at once.
		st.ResetWithError(resetNoRoute)
		return
	}
	if !s.admit(st) {
		return
	}
	c := newConn(n, st, false, l.addr, remoteAddr)
	select {
	case l.ch <- c:
	case <-l.done:
		st.ResetWithError(resetNoRoute)
	case <-s.ys.CloseChan():
		st.Reset()
	}
}

// errLongAddr is a preamble's address over maxAddrLen bytes.
var errLongAddr = errors.New("vnet: address too long")

// readPreamble reads a stream's preamble into b[:0] and returns the
// address it names.
func readPreamble(st io.Reader, b []byte) ([]byte, error) {
	var hdr [2]byte
	if _, err := io.ReadFull(st, hdr[:]); err != nil {
		return b[:0], err
	}
	ln := int(binary.BigEndian.Uint16(hdr[:]))
	if ln > maxAddrLen {
		return b[:0], errLongAddr
	}
	b = append(b[:0], make([]byte, ln)...)
	_, err := io.ReadFull(st, b)
	return b, err
}

// admit reports whether the node's budget has room for a stream that has
// named its target, and resets it if not.
func (s *session) admit(st *yamux.Stream) bool {
	n := s.n
	if !n.buf.over() {
		return true
	}
	n.warn("buffer", "vnet: stream refused: buffer budget spent",
		"node_bytes", n.buf.used.Load(), "node_limit", n.buf.limit)
	st.ResetWithError(resetRefused)
	return false
}

// readControl applies the peer's advertisements until the stream ends.
func (s *session) readControl(st *yamux.Stream) {
	defer s.ys.Close()
	br := bufio.NewReader(st)
	var hdr [3]byte
	for {
		if _, err := io.ReadFull(br, hdr[:]); err != nil {
			return
		}
		ln := int(binary.BigEndian.Uint16(hdr[1:]))
		if ln == 0 || ln > maxAddrLen {
			return
		}
		name := make([]byte, ln)
		if _, err := io.ReadFull(br, name); err != nil {
			return
		}
		s.mu.Lock()
		switch hdr[0] {
		case opBound:
			s.remote[string(name)] = struct{}{}
		case opUnbound:
			delete(s.remote, string(name))
		default:
			s.mu.Unlock()
			return
		}
		s.mu.Unlock()
		s.n.mu.Lock()
		s.n.notifyLocked()
		s.n.mu.Unlock()
	}
}
