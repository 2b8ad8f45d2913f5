package vnet

import (
	"bufio"
	"context"
	"encoding/binary"
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
		// Here, in the order the peer opened them, and not in route: the
		// budget counts the streams go-yamux has queued for this loop
		// too, so a stream refused here makes room for one behind it.
		if n.buf.over() {
			n.warn("buffer", "vnet: stream refused: buffer budget spent",
				"node_bytes", n.buf.used.Load(), "node_limit", n.buf.limit)
			st.ResetWithError(resetRefused)
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			s.route(st)
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
func (s *session) route(st *yamux.Stream) {
	n := s.n
	st.SetReadDeadline(time.Now().Add(preambleTimeout))
	var hdr [2]byte
	if _, err := io.ReadFull(st, hdr[:]); err != nil {
		st.Reset()
		return
	}
	ln := int(binary.BigEndian.Uint16(hdr[:]))
	if ln > maxAddrLen {
		st.Reset()
		return
	}
	bp := n.pooled()
	name := append((*bp)[:0], make([]byte, ln)...)
	_, err := io.ReadFull(st, name)
	*bp = name
	if err != nil {
		n.bufs.Put(bp)
		st.Reset()
		return
	}
	st.SetReadDeadline(time.Time{})
	if ln == 0 {
		n.bufs.Put(bp)
		s.readControl(st)
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
	c := newConn(n, st, false, l.addr, remoteAddr)
	select {
	case l.ch <- c:
	case <-l.done:
		st.ResetWithError(resetNoRoute)
	case <-s.ys.CloseChan():
		st.Reset()
	}
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
