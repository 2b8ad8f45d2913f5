package aerospiketest

import "time"

// parseBatchField parses the BATCH_INDEX field of m, if any.
func parseBatchField(m *message, buf *batchBuf) parsedBatch {
	var pb parsedBatch
	var b []byte
	if b, pb.has = m.field(fieldBatchIndex); pb.has {
		pb.entries, pb.err = parseBatchInto(b, buf, m.names)
	}
	return pb
}

// classify returns the kind, namespace and set of a data command; pb is
// its batch, parsed by parseBatchField.
func classify(m *message, pb parsedBatch) (CommandKind, []byte, []byte) {
	ns, _ := m.field(fieldNamespace)
	set, _ := m.field(fieldSet)
	if m.info1&info1Batch != 0 {
		if pb.has {
			ns, set = batchFirstNamespace(pb)
		}
		return BatchCommand, ns, set
	}
	if _, ok := m.field(fieldIndexRange); ok {
		return QueryCommand, ns, set
	}
	if _, ok := m.field(fieldDigest); !ok {
		return ScanCommand, ns, set
	}
	if m.info2&info2Write != 0 {
		return WriteCommand, ns, set
	}
	return ReadCommand, ns, set
}

// handleMessage serves one AS_MSG request; false closes the connection.
func (s *Server) handleMessage(cs *connState, body []byte) bool {
	m := &cs.msg
	if err := parseMessageInto(m, body); err != nil {
		return false
	}
	var pb parsedBatch
	if m.info1&info1Batch != 0 {
		pb = parseBatchField(m, &cs.batch)
	}
	kind, ns, set := classify(m, pb)
	var delay time.Duration
	closeAfter := false
	var f *Fault
	if s.faults.active.Load() > 0 {
		f = s.matchFault(kind, string(ns), string(set))
	}
	if f != nil {
		switch f.Action {
		case FaultCloseBefore:
			return false
		case FaultCloseAfter:
			closeAfter = true
		case FaultDelay:
			delay = f.Delay
		case FaultFail:
			return cs.cw.fail(byte(f.Code))
		}
	}
	if kind != ReadCommand && kind != WriteCommand && delay > 0 {
		s.sleep(delay)
		delay = 0
	}
	cw := &cs.cw
	cw.w, cw.err = cw.conn, nil
	if closeAfter {
		cw.w = discard{}
	}
	switch kind {
	case BatchCommand:
		s.handleBatch(m, pb, cw)
	case ScanCommand, QueryCommand:
		s.handleScanQuery(m, cw)
	default:
		res := s.execSingle(m, delay)
		w := cw.builder()
		appendResult(&w, res, 0)
		cw.send(&w)
		cw.release(&w)
	}
	return !closeAfter && cw.err == nil
}

type discard struct{}

func (discard) Write(b []byte) (int, error) { return len(b), nil }
