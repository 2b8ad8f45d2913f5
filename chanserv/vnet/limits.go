package vnet

import (
	"context"
	"crypto/tls"
	"errors"
	"log/slog"
	"sync/atomic"
	"time"

	yamux "github.com/libp2p/go-yamux/v5"

	"github.com/beanspike/beanspike/internal/lograte"
)

// Codes of the resets vnet sends, carried in yamux's RST frame.
const (
	// resetRefused: over a stream limit or buffer budget (go-yamux
	// resets with code 0 past MaxIncomingStreams or the accept backlog).
	resetRefused uint32 = 2
	// resetNoRoute: no listener at the address named in the preamble.
	resetNoRoute uint32 = 1
	// goAwayBusy is the go-away code of a connection refused because the
	// listener has as many as it may serve.
	goAwayBusy uint32 = 0x76_6e_01 // "vn" 1
)

// budget counts bytes of receive window reserved against a limit.
type budget struct {
	used  atomic.Int64
	limit int64
	// naming counts the accepted streams reading their preamble: each
	// holds its whole window in used, but counts only pendingCharge.
	naming   atomic.Int64
	discount int64 // window - pendingCharge
}

func (b *budget) over() bool { return b.used.Load()-b.naming.Load()*b.discount > b.limit }

var errBudget = errors.New("vnet: buffer budget reached")

// span is one stream's reservation against the node's budget: go-yamux's
// MemoryManager. A stream opening (priority 255) reserves the whole
// window vnet grants it and is always let through, because go-yamux
// closes the session when it is refused; vnet resets the stream instead
// when it finds the budget spent (see session.run). Growing a window
// (lower priorities; vnet grants the whole window at once, so go-yamux
// does not ask) is refused past the budget.
type span struct {
	node   *budget
	window int64
	held   atomic.Int64
}

func (s *span) ReserveMemory(size int, prio uint8) error {
	n := int64(size)
	if prio == 255 {
		n = max(n, s.window)
	} else if s.node.used.Load()+n > s.node.limit {
		return errBudget
	}
	s.held.Add(n)
	s.node.used.Add(n)
	return nil
}

func (s *span) ReleaseMemory(size int) {
	n := int64(size)
	for {
		h := s.held.Load()
		n = min(n, h)
		if s.held.CompareAndSwap(h, h-n) {
			break
		}
	}
	s.node.used.Add(-n)
}

func (s *span) Done() { s.ReleaseMemory(int(s.held.Load())) }

// warn logs a warning, at most one a second for each key; the line says
// how many were held back since the last.
func (n *Node) warn(key, msg string, args ...any) {
	n.logLimited(slog.LevelWarn, key, msg, args...)
}

// logLimited logs a line at level, at most one a second for each key,
// with the number held back since the last.
func (n *Node) logLimited(level slog.Level, key, msg string, args ...any) {
	if !n.logger.Enabled(context.Background(), level) {
		return
	}
	n.logMu.Lock()
	lim := n.limiters[key]
	if lim == nil {
		lim = new(lograte.Limiter)
		n.limiters[key] = lim
	}
	n.logMu.Unlock()
	if held, ok := lim.Allow(time.Now()); ok {
		n.logger.Log(context.Background(), level, msg, append(args, "unlogged", held)...)
	}
}

// sessionEnded logs why a session ended: at Warn for a missed keepalive, a
// peer's refusal or a TLS alert, at Debug otherwise.
func (n *Node) sessionEnded(err error) {
	var (
		ga    *yamux.GoAwayError
		alert tls.AlertError
	)
	switch {
	case errors.Is(err, yamux.ErrKeepAliveTimeout):
		n.warn("keepalive", "vnet: peer missed a keepalive; session closed", "err", err)
	case errors.As(err, &ga) && ga.Remote && ga.ErrorCode == goAwayBusy:
		n.warn("busy", "vnet: peer refused the connection: it serves as many as it may")
	case errors.As(err, &alert):
		// With TLS 1.3 a server that rejects the client's certificate
		// says so after the client's handshake has ended.
		n.warn("tls", "vnet: peer ended the TLS connection", "err", err)
	default:
		n.logger.Debug("vnet: session ended", "err", err)
	}
}
