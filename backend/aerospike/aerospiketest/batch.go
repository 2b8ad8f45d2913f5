package aerospiketest

import (
	"encoding/binary"
	"fmt"
)

// flushSize is the response size at which streamed responses are flushed
// as a frame.
const flushSize = 128 << 10

// batchEntry is one key of a batch request.
type batchEntry struct {
	index uint32
	d     digest
	m     *message // shared with repeated entries
}

// parseBatch parses the BATCH_INDEX field.
func parseBatch(b []byte) ([]batchEntry, error) {
	if len(b) < 5 {
		return nil, fmt.Errorf("%w: short batch field", errFrame)
	}
	count := binary.BigEndian.Uint32(b)
	b = b[5:]
	// Each entry takes at least 25 bytes.
	if uint64(count) > uint64(len(b))/25 || count > maxBatchKeys {
		return nil, fmt.Errorf("%w: batch count %d", errFrame, count)
	}
	out := make([]batchEntry, 0, count)
	var prev *message
	for range count {
		if len(b) < 25 {
			return nil, fmt.Errorf("%w: truncated batch entry", errFrame)
		}
		e := batchEntry{index: binary.BigEndian.Uint32(b)}
		copy(e.d[:], b[4:24])
		typ := b[24]
		b = b[25:]
		if typ&batchMsgRepeat != 0 {
			if prev == nil {
				return nil, fmt.Errorf("%w: batch repeat without a previous entry", errFrame)
			}
			e.m = prev
			out = append(out, e)
			continue
		}
		m := &message{}
		need := 4
		if typ&batchMsgInfo != 0 {
			need += 3
			if typ&batchMsgInfo4 != 0 {
				need++
			}
		} else {
			need++
		}
		if typ&batchMsgGen != 0 {
			need += 2
		}
		if typ&batchMsgTTL != 0 {
			need += 4
		}
		if len(b) < need {
			return nil, fmt.Errorf("%w: truncated batch entry header", errFrame)
		}
		if typ&batchMsgInfo != 0 {
			m.info1, m.info2, m.info3 = b[0], b[1], b[2]
			b = b[3:]
			if typ&batchMsgInfo4 != 0 {
				m.info4 = b[0]
				b = b[1:]
			}
		} else {
			m.info1 = b[0]
			b = b[1:]
		}
		if typ&batchMsgGen != 0 {
			m.generation = uint32(binary.BigEndian.Uint16(b))
			b = b[2:]
		}
		if typ&batchMsgTTL != 0 {
			m.ttl = binary.BigEndian.Uint32(b)
			b = b[4:]
		}
		nFields := int(binary.BigEndian.Uint16(b))
		nOps := int(binary.BigEndian.Uint16(b[2:]))
		rest, err := parseFieldsOps(b[4:], nFields, nOps, m)
		if err != nil {
			return nil, err
		}
		b = rest
		prev = m
		e.m = m
		out = append(out, e)
	}
	return out, nil
}

// batchFirstNamespace returns the namespace and set of a batch's first
// entry, for fault matching.
func batchFirstNamespace(b []byte) ([]byte, []byte) {
	es, err := parseBatch(b)
	if err != nil || len(es) == 0 {
		return nil, nil
	}
	ns, _ := es[0].m.field(fieldNamespace)
	set, _ := es[0].m.field(fieldSet)
	return ns, set
}

// handleBatch serves a batch request: one response per key, then LAST.
func (s *Server) handleBatch(m *message, cw *connWriter) {
	var w respBuilder
	finish := func(rc byte) {
		w.begin(info3Last, rc, 0, 0, 0, 0, 0)
		cw.write(frameProto(protoMsg, w.buf))
	}
	if unsupportedFields(m) {
		finish(rcUnsupported)
		return
	}
	field, ok := m.field(fieldBatchIndex)
	if !ok {
		finish(rcParameter)
		return
	}
	entries, err := parseBatch(field)
	if err != nil {
		finish(rcParameter)
		return
	}
	var topFilter *expNode
	if b, ok := m.field(fieldFilterExp); ok {
		if topFilter, err = parseExpression(b); err != nil {
			finish(filterRC(err))
			return
		}
	}
	filters := map[*message]*expNode{}
	for _, e := range entries {
		res := s.execBatchEntry(e, topFilter, filters)
		appendResult(&w, res, e.index)
		if len(w.buf) >= flushSize {
			if !cw.write(frameProto(protoMsg, w.buf)) {
				return
			}
			w.buf = w.buf[:0]
		}
	}
	finish(rcOK)
}

func (s *Server) execBatchEntry(e batchEntry, topFilter *expNode, filters map[*message]*expNode) result {
	m := e.m
	if unsupportedFields(m) {
		return result{rc: rcUnsupported}
	}
	nsName, _ := m.field(fieldNamespace)
	ns := s.namespaces[string(nsName)]
	if ns == nil {
		return result{rc: rcInvalidNamespace}
	}
	k := reqKey{ns: ns, nsName: string(nsName), d: e.d}
	if set, ok := m.field(fieldSet); ok {
		k.set = string(set)
	}
	if key, ok := m.field(fieldKey); ok && len(key) > 0 {
		k.key = append([]byte{}, key...)
	}
	filter := topFilter
	if b, ok := m.field(fieldFilterExp); ok {
		f, cached := filters[m]
		if !cached {
			var err error
			if f, err = parseExpression(b); err != nil {
				return result{rc: filterRC(err)}
			}
			filters[m] = f
		}
		filter = f
	}
	return s.execRecord(k, m, m.ops, filter, 0)
}
