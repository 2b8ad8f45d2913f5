package aerospiketest

import (
	"net"
	"time"
)

// classify returns the kind, namespace and set of a data command.
func classify(m *message) (CommandKind, string, string) {
	ns, _ := m.field(fieldNamespace)
	set, _ := m.field(fieldSet)
	if m.info1&info1Batch != 0 {
		if b, ok := m.field(fieldBatchIndex); ok {
			ns, set = batchFirstNamespace(b)
		}
		return BatchCommand, string(ns), string(set)
	}
	if _, ok := m.field(fieldIndexRange); ok {
		return QueryCommand, string(ns), string(set)
	}
	if _, ok := m.field(fieldDigest); !ok {
		return ScanCommand, string(ns), string(set)
	}
	if m.info2&info2Write != 0 {
		return WriteCommand, string(ns), string(set)
	}
	return ReadCommand, string(ns), string(set)
}

// handleMessage serves one AS_MSG request; false closes the connection.
func (s *Server) handleMessage(c net.Conn, body []byte) bool {
	m, err := parseMessage(body)
	if err != nil {
		return false
	}
	kind, ns, set := classify(m)
	var delay time.Duration
	closeAfter := false
	if f := s.matchFault(kind, ns, set); f != nil {
		switch f.Action {
		case FaultCloseBefore:
			return false
		case FaultCloseAfter:
			closeAfter = true
		case FaultDelay:
			delay = f.Delay
		case FaultFail:
			var w respBuilder
			w.begin(info3Last, byte(f.Code), 0, 0, 0, 0, 0)
			_, err := c.Write(frameProto(protoMsg, w.buf))
			return err == nil
		}
	}
	if kind != ReadCommand && kind != WriteCommand && delay > 0 {
		s.sleep(delay)
		delay = 0
	}
	cw := &connWriter{w: c}
	if closeAfter {
		cw.w = discard{}
	}
	switch kind {
	case BatchCommand:
		s.handleBatch(m, cw)
	case ScanCommand, QueryCommand:
		s.handleScanQuery(m, cw)
	default:
		res := s.execSingle(m, delay)
		var w respBuilder
		appendResult(&w, res, 0)
		cw.write(frameProto(protoMsg, w.buf))
	}
	return !closeAfter && cw.err == nil
}

type discard struct{}

func (discard) Write(b []byte) (int, error) { return len(b), nil }
