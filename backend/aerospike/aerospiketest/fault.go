package aerospiketest

import (
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"
)

// FaultAction is what an injected fault does.
type FaultAction int

const (
	// FaultCloseBefore closes the connection without executing the command,
	// as a crashed or partitioned server would.
	FaultCloseBefore FaultAction = iota + 1
	// FaultCloseAfter executes the command, then closes the connection
	// without responding: the client sees an in-doubt failure although the
	// write took effect.
	FaultCloseAfter
	// FaultDelay sleeps for Fault.Delay before executing the command. For
	// single-record writes the sleep happens while the record lock is held,
	// so concurrent writes to the key queue up behind it.
	FaultDelay
	// FaultFail answers with Fault.Code without executing the command.
	FaultFail
)

// CommandKind classifies commands for fault matching.
type CommandKind int

const (
	// AnyCommand matches every data command (not info requests).
	AnyCommand CommandKind = iota
	// InfoCommand matches info requests (tending, index and truncate
	// commands).
	InfoCommand
	// ReadCommand matches single-record commands without writes.
	ReadCommand
	// WriteCommand matches single-record commands with writes, deletes and
	// touches.
	WriteCommand
	// BatchCommand matches batch requests.
	BatchCommand
	// ScanCommand matches scans and queries without an index filter.
	ScanCommand
	// QueryCommand matches queries with an index filter.
	QueryCommand
)

// Fault describes an injected failure. The zero values of the match fields
// match everything.
type Fault struct {
	// Action is what happens when the fault fires. Required.
	Action FaultAction
	// Command restricts the fault to one kind of command. Defaults to
	// AnyCommand.
	Command CommandKind
	// Namespace restricts the fault to one namespace (batch requests match
	// on their first key). Defaults to any.
	Namespace string
	// Set restricts the fault to one set. Defaults to any.
	Set string
	// Nth fires the fault on the Nth matching command counted from
	// injection, 1-based. Defaults to 1.
	Nth int
	// Times is how many consecutive matching commands, from the Nth on, the
	// fault affects; negative means every one. Defaults to 1.
	Times int
	// Delay is the sleep of FaultDelay.
	Delay time.Duration
	// Code is the result code of FaultFail, e.g. CodeTimeout, CodeKeyBusy
	// or CodeDeviceOverload.
	Code int
}

// FaultHandle observes and removes an injected fault.
type FaultHandle struct {
	f     Fault
	seen  atomic.Int64
	fired atomic.Int64
	set   *faultSet
}

// Seen returns how many commands matched the fault.
func (h *FaultHandle) Seen() int64 { return h.seen.Load() }

// Fired returns how many times the fault took effect.
func (h *FaultHandle) Fired() int64 { return h.fired.Load() }

// Remove deactivates the fault.
func (h *FaultHandle) Remove() { h.set.remove(h) }

type faultSet struct {
	mu     sync.Mutex
	faults []*FaultHandle
	// active is len(faults), readable without mu: commands skip fault
	// matching while it is zero.
	active atomic.Int32
}

func (fs *faultSet) remove(h *FaultHandle) {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	for i, x := range fs.faults {
		if x == h {
			fs.faults = append(fs.faults[:i:i], fs.faults[i+1:]...)
			fs.active.Store(int32(len(fs.faults)))
			return
		}
	}
}

// ErrInvalidFault is returned by Inject for an invalid Fault.
var ErrInvalidFault = errors.New("aerospiketest: invalid fault")

// Inject activates a fault. Faults are checked in injection order; the
// first one that fires on a command applies.
func (s *Server) Inject(f Fault) (*FaultHandle, error) {
	switch f.Action {
	case FaultCloseBefore, FaultCloseAfter:
	case FaultDelay:
		if f.Delay <= 0 {
			return nil, fmt.Errorf("%w: FaultDelay needs a positive Delay", ErrInvalidFault)
		}
	case FaultFail:
		if f.Code <= 0 || f.Code > 255 {
			return nil, fmt.Errorf("%w: FaultFail needs a Code in 1..255", ErrInvalidFault)
		}
	default:
		return nil, fmt.Errorf("%w: unknown action %d", ErrInvalidFault, f.Action)
	}
	if f.Command < AnyCommand || f.Command > QueryCommand || f.Nth < 0 {
		return nil, fmt.Errorf("%w: bad Command or Nth", ErrInvalidFault)
	}
	if f.Nth == 0 {
		f.Nth = 1
	}
	if f.Times == 0 {
		f.Times = 1
	}
	h := &FaultHandle{f: f, set: &s.faults}
	s.faults.mu.Lock()
	s.faults.faults = append(s.faults.faults, h)
	s.faults.active.Store(int32(len(s.faults.faults)))
	s.faults.mu.Unlock()
	return h, nil
}

// ClearFaults removes every injected fault.
func (s *Server) ClearFaults() {
	s.faults.mu.Lock()
	s.faults.faults = nil
	s.faults.active.Store(0)
	s.faults.mu.Unlock()
}

// match returns the fault that fires for a command, if any.
func (s *Server) matchFault(kind CommandKind, ns, set string) *Fault {
	s.faults.mu.Lock()
	defer s.faults.mu.Unlock()
	var fired *Fault
	for _, h := range s.faults.faults {
		f := &h.f
		if f.Command == InfoCommand {
			if kind != InfoCommand {
				continue
			}
		} else if kind == InfoCommand || (f.Command != AnyCommand && f.Command != kind) {
			continue
		}
		if (f.Namespace != "" && f.Namespace != ns) || (f.Set != "" && f.Set != set) {
			continue
		}
		n := h.seen.Add(1)
		if fired == nil && n >= int64(f.Nth) && (f.Times < 0 || n < int64(f.Nth)+int64(f.Times)) {
			h.fired.Add(1)
			s.stFaults.Add(1)
			fired = f
		}
	}
	return fired
}

// infoFault applies a fault to an info request: it returns the reply to
// send, or nil to close the connection.
func (s *Server) infoFault(body string) []byte {
	f := s.matchFault(InfoCommand, "", "")
	if f == nil {
		return s.handleInfo(body)
	}
	switch f.Action {
	case FaultCloseBefore:
		return nil
	case FaultCloseAfter:
		s.handleInfo(body)
		return nil
	case FaultDelay:
		s.sleep(f.Delay)
	case FaultFail:
		var out []byte
		for _, cmd := range splitInfo(body) {
			out = fmt.Appendf(out, "%s\tERROR:%d:injected fault\n", cmd, f.Code)
		}
		return out
	}
	return s.handleInfo(body)
}
