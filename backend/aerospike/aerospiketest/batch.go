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

// batchBuf keeps a connection's batch entries and messages for its next
// batch request.
type batchBuf struct {
	entries []batchEntry
	msgs    []message
	idx     []int // message index of each entry, while parsing
}

// maxKeptBatch is the largest batch whose buffers a connection keeps.
const maxKeptBatch = 1 << 10

// parseBatch parses the BATCH_INDEX field.
func parseBatch(b []byte) ([]batchEntry, error) {
	return parseBatchInto(b, &batchBuf{}, nil)
}

// parseBatchInto parses the BATCH_INDEX field into buf's slices, reusing
// them; names interns the op names. The entries are valid until the next
// call with buf.
func parseBatchInto(b []byte, buf *batchBuf, names nameTable) ([]batchEntry, error) {
	if len(b) < 5 {
		return nil, fmt.Errorf("%w: short batch field", errFrame)
	}
	count := binary.BigEndian.Uint32(b)
	b = b[5:]
	// Each entry takes at least 25 bytes.
	if uint64(count) > uint64(len(b))/25 || count > maxBatchKeys {
		return nil, fmt.Errorf("%w: batch count %d", errFrame, count)
	}
	if cap(buf.entries) < int(count) || cap(buf.entries) > maxKeptBatch {
		buf.entries = make([]batchEntry, 0, count)
		buf.idx = make([]int, 0, count)
	}
	if cap(buf.msgs) > maxKeptBatch {
		buf.msgs = nil
	}
	out, idx, msgs := buf.entries[:0], buf.idx[:0], buf.msgs[:0]
	for range count {
		if len(b) < 25 {
			return nil, fmt.Errorf("%w: truncated batch entry", errFrame)
		}
		e := batchEntry{index: binary.BigEndian.Uint32(b)}
		copy(e.d[:], b[4:24])
		typ := b[24]
		b = b[25:]
		if typ&batchMsgRepeat != 0 {
			if len(msgs) == 0 {
				return nil, fmt.Errorf("%w: batch repeat without a previous entry", errFrame)
			}
			out = append(out, e)
			idx = append(idx, len(msgs)-1)
			continue
		}
		// Reuse the next message of the slab, with its slices, if any.
		if len(msgs) < cap(msgs) {
			msgs = msgs[:len(msgs)+1]
		} else {
			msgs = append(msgs, message{})
		}
		m := &msgs[len(msgs)-1]
		*m = message{fields: m.fields[:0], ops: m.ops[:0], names: names}
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
		out = append(out, e)
		idx = append(idx, len(msgs)-1)
	}
	// The slab no longer grows: point the entries at their messages.
	for i := range out {
		out[i].m = &msgs[idx[i]]
	}
	buf.entries, buf.idx, buf.msgs = out, idx, msgs
	return out, nil
}

// parsedBatch is a batch request's entries, parsed once for fault
// matching and execution.
type parsedBatch struct {
	entries []batchEntry
	err     error
	has     bool // the request has a BATCH_INDEX field
}

// batchFirstNamespace returns the namespace and set of a batch's first
// entry, for fault matching.
func batchFirstNamespace(pb parsedBatch) ([]byte, []byte) {
	if pb.err != nil || len(pb.entries) == 0 {
		return nil, nil
	}
	ns, _ := pb.entries[0].m.field(fieldNamespace)
	set, _ := pb.entries[0].m.field(fieldSet)
	return ns, set
}

// filterCache remembers the filter parsed for the last batch message:
// repeated entries share the message before them, so one slot catches
// every reuse.
type filterCache struct {
	m *message
	f *expNode
}

// handleBatch serves a batch request: one response per key, then LAST.
func (s *Server) handleBatch(m *message, pb parsedBatch, cw *connWriter) {
	w := cw.builder()
	defer cw.release(&w)
	finish := func(rc byte) {
		w.begin(info3Last, rc, 0, 0, 0, 0, 0)
		cw.send(&w)
	}
	if unsupportedFields(m) {
		finish(rcUnsupported)
		return
	}
	if !pb.has {
		finish(rcParameter)
		return
	}
	if pb.err != nil {
		finish(rcParameter)
		return
	}
	var topFilter *expNode
	if b, ok := m.field(fieldFilterExp); ok {
		var err error
		if topFilter, err = parseExpression(b); err != nil {
			finish(filterRC(err))
			return
		}
	}
	var filters filterCache
	for _, e := range pb.entries {
		res := s.execBatchEntry(e, topFilter, &filters)
		appendResult(&w, res, e.index)
		if w.size() >= flushSize {
			if !cw.send(&w) {
				return
			}
		}
	}
	finish(rcOK)
}

func (s *Server) execBatchEntry(e batchEntry, topFilter *expNode, filters *filterCache) result {
	m := e.m
	if unsupportedFields(m) {
		return result{rc: rcUnsupported}
	}
	nsName, _ := m.field(fieldNamespace)
	ns := s.namespaces[string(nsName)]
	if ns == nil {
		return result{rc: rcInvalidNamespace}
	}
	k := reqKey{ns: ns, nsName: ns.cfg.Name, d: e.d}
	if set, ok := m.field(fieldSet); ok {
		k.set = m.names.str(set)
	}
	if key, ok := m.field(fieldKey); ok && len(key) > 0 {
		k.key = append([]byte{}, key...)
	}
	filter := topFilter
	if b, ok := m.field(fieldFilterExp); ok {
		if filters.m != m {
			f, err := parseExpression(b)
			if err != nil {
				return result{rc: filterRC(err)}
			}
			filters.m, filters.f = m, f
		}
		filter = filters.f
	}
	return s.execRecord(k, m, m.ops, filter, 0)
}
