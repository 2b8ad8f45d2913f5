package aerospiketest

import (
	"bytes"
	"encoding/binary"
	"sort"
)

// scanPart is one partition to walk, with an optional resume point.
type scanPart struct {
	pid     int
	after   *digest
	bval    int64
	hasBVal bool
}

// indexFilter is a parsed INDEX_RANGE.
type indexFilter struct {
	bin        string
	particle   byte
	begin, end any
	coll       string
	idx        *sindex
	ctx        []any
}

// handleScanQuery streams the records of a scan or query, then LAST.
func (s *Server) handleScanQuery(m *message, cw *connWriter) {
	w := cw.builder()
	defer cw.release(&w)
	finish := func(rc byte) {
		w.begin(info3Last, rc, 0, 0, 0, 0, 0)
		cw.send(&w)
	}
	if unsupportedFields(m) || m.info2&info2Write != 0 {
		finish(rcUnsupported)
		return
	}
	nsName, _ := m.field(fieldNamespace)
	ns := s.namespaces[string(nsName)]
	if ns == nil {
		finish(rcInvalidNamespace)
		return
	}
	setb, _ := m.field(fieldSet)
	set := string(setb)
	parts, rc := scanPartitions(m)
	if rc != rcOK {
		finish(rc)
		return
	}
	var maxRecords uint64
	if b, ok := m.field(fieldMaxRecords); ok {
		if len(b) != 8 {
			finish(rcParameter)
			return
		}
		maxRecords = binary.BigEndian.Uint64(b)
	}
	var filter *expNode
	if b, ok := m.field(fieldFilterExp); ok {
		var err error
		if filter, err = parseExpression(b); err != nil {
			finish(filterRC(err))
			return
		}
	}
	var ixf *indexFilter
	if b, ok := m.field(fieldIndexRange); ok {
		if ixf, rc = s.parseIndexFilter(ns, set, m, b); rc != rcOK {
			finish(rc)
			return
		}
	}
	binNames := make([]string, 0, len(m.ops))
	for _, o := range m.ops {
		if o.typ != opRead {
			finish(rcUnsupported)
			return
		}
		binNames = append(binNames, o.name)
	}
	noBins := m.info1&info1NoBinData != 0
	now := s.Now()
	nowVoid := s.nowVoid()
	var sent uint64
	for _, p := range parts {
		entries := ns.snapshot(p.pid, set, nowVoid)
		if ixf != nil {
			entries = ixf.apply(entries)
		}
		for _, e := range entries {
			if p.after != nil {
				if ixf != nil && ixf.particle == ptInteger && p.hasBVal {
					if e.bval < p.bval || (e.bval == p.bval && bytes.Compare(e.d[:], p.after[:]) <= 0) {
						continue
					}
				} else if bytes.Compare(e.d[:], p.after[:]) <= 0 {
					continue
				}
			}
			if filter != nil && !filter.matches(&expEnv{rec: e.rec, d: e.d, now: now, nowVoid: nowVoid}) {
				continue
			}
			appendStreamRecord(&w, string(nsName), e, binNames, noBins, ixf != nil && ixf.particle == ptInteger)
			sent++
			if w.size() >= flushSize {
				if !cw.send(&w) {
					return
				}
			}
			if maxRecords > 0 && sent >= maxRecords {
				finish(rcOK)
				return
			}
		}
	}
	finish(rcOK)
}

// scanPartitions returns the partitions a request covers, in partition
// order.
func scanPartitions(m *message) ([]scanPart, byte) {
	var parts []scanPart
	pids, hasPIDs := m.field(fieldPIDArray)
	digests, hasDigests := m.field(fieldDigestArray)
	bvals, hasBVals := m.field(fieldBValArray)
	if !hasPIDs && !hasDigests {
		for pid := range partitionCount {
			parts = append(parts, scanPart{pid: pid})
		}
		return parts, rcOK
	}
	if len(pids)%2 != 0 || len(digests)%digestLength != 0 {
		return nil, rcParameter
	}
	nd := len(digests) / digestLength
	if hasBVals && len(bvals) != nd*8 {
		return nil, rcParameter
	}
	seen := map[int]bool{}
	for i := 0; i+1 < len(pids); i += 2 {
		pid := int(binary.LittleEndian.Uint16(pids[i:]))
		if pid >= partitionCount || seen[pid] {
			return nil, rcParameter
		}
		seen[pid] = true
		parts = append(parts, scanPart{pid: pid})
	}
	for i := range nd {
		var d digest
		copy(d[:], digests[i*digestLength:])
		pid := partitionID(d[:])
		if seen[pid] {
			return nil, rcParameter
		}
		seen[pid] = true
		p := scanPart{pid: pid, after: &d}
		if hasBVals {
			p.bval, p.hasBVal = int64(binary.LittleEndian.Uint64(bvals[i*8:])), true
		}
		parts = append(parts, p)
	}
	sort.Slice(parts, func(i, j int) bool { return parts[i].pid < parts[j].pid })
	return parts, rcOK
}

// appendStreamRecord writes one scan/query record message.
func appendStreamRecord(w *respBuilder, ns string, e entry, binNames []string, noBins, withBVal bool) {
	r := e.rec
	nFields := 2
	if r.set != "" {
		nFields++
	}
	if r.key != nil {
		nFields++
	}
	if withBVal {
		nFields++
	}
	var bins []bin
	if !noBins {
		if len(binNames) == 0 {
			bins = r.bins
		} else {
			for _, name := range binNames {
				if v, ok := r.bin(name); ok {
					bins = append(bins, bin{name: name, val: v})
				}
			}
		}
	}
	w.begin(0, rcOK, uint32(r.gen), r.voidTime, 0, nFields, len(bins))
	w.field(fieldDigest, e.d[:])
	w.field(fieldNamespace, []byte(ns))
	if r.set != "" {
		w.field(fieldSet, []byte(r.set))
	}
	if r.key != nil {
		w.field(fieldKey, r.key)
	}
	if withBVal {
		var b [8]byte
		binary.LittleEndian.PutUint64(b[:], uint64(e.bval))
		w.field(fieldBValArray, b[:])
	}
	for _, b := range bins {
		w.opValue(b.name, b.val)
	}
}

// parseIndexFilter parses INDEX_RANGE and finds the index serving it.
func (s *Server) parseIndexFilter(ns *namespace, set string, m *message, b []byte) (*indexFilter, byte) {
	if len(b) < 2 || b[0] != 1 {
		return nil, rcParameter
	}
	nameLen := int(b[1])
	b = b[2:]
	if len(b) < nameLen+1+4 {
		return nil, rcParameter
	}
	f := &indexFilter{bin: string(b[:nameLen]), particle: b[nameLen]}
	b = b[nameLen+1:]
	readVal := func() ([]byte, bool) {
		if len(b) < 4 {
			return nil, false
		}
		n := binary.BigEndian.Uint32(b)
		if uint64(n) > uint64(len(b)-4) {
			return nil, false
		}
		v := b[4 : 4+n]
		b = b[4+n:]
		return v, true
	}
	begin, ok1 := readVal()
	end, ok2 := readVal()
	if !ok1 || !ok2 || len(b) != 0 {
		return nil, rcParameter
	}
	var typ string
	switch f.particle {
	case ptInteger:
		typ = "NUMERIC"
	case ptString:
		typ = "STRING"
	case ptBlob:
		typ = "BLOB"
	case ptGeoJSON:
		return nil, rcUnsupported
	default:
		return nil, rcParameter
	}
	var rc byte
	if f.begin, rc = decodeParticle(f.particle, begin); rc != rcOK {
		return nil, rc
	}
	if f.end, rc = decodeParticle(f.particle, end); rc != rcOK {
		return nil, rc
	}
	f.coll = "DEFAULT"
	if t, ok := m.field(fieldIndexType); ok && len(t) == 1 {
		switch t[0] {
		case 1:
			f.coll = "LIST"
		case 2:
			f.coll = "MAPKEYS"
		case 3:
			f.coll = "MAPVALUES"
		}
	}
	var ctx []byte
	if c, ok := m.field(fieldIndexContext); ok {
		ctx = c
	}
	exp, hasExp := m.field(fieldIndexExp)
	if name, ok := m.field(fieldIndexName); ok && len(name) > 0 {
		idx := ns.index(string(name))
		if idx == nil || idx.typ != typ {
			return nil, rcIndexNotFound
		}
		f.idx = idx
	} else {
		for _, idx := range ns.indexes() {
			same := idx.bin == f.bin && f.bin != "" && bytes.Equal(idx.ctx, ctx)
			if hasExp {
				same = idx.exp != nil && bytes.Equal(idx.exp, exp)
			}
			if same && idx.typ == typ && idx.coll == f.coll && (idx.set == "" || idx.set == set) {
				f.idx = idx
				break
			}
		}
		if f.idx == nil {
			return nil, rcIndexNotFound
		}
	}
	if f.idx.ctx != nil {
		v, err := unpackAll(f.idx.ctx)
		l, ok := v.(*listValue)
		if err != nil || !ok || len(l.items)%2 != 0 {
			return nil, rcParameter
		}
		f.ctx = l.items
	}
	f.coll = f.idx.coll
	return f, rcOK
}

// apply keeps the entries whose indexed value matches, setting bval, and
// orders them by (bval, digest) for numeric indexes.
func (f *indexFilter) apply(entries []entry) []entry {
	out := entries[:0]
	var exp *expNode
	if f.idx.exp != nil {
		exp, _ = parseExpression(f.idx.exp)
	}
	for _, e := range entries {
		if f.idx.set != "" && e.rec.set != f.idx.set {
			continue
		}
		var v any
		var ok bool
		if exp != nil {
			v, ok = exp.eval(&expEnv{rec: e.rec, d: e.d})
		} else {
			v, ok = e.rec.bin(f.idx.bin)
		}
		if !ok {
			continue
		}
		if len(f.ctx) > 0 {
			if v, ok = ctxRead(v, f.ctx); !ok {
				continue
			}
		}
		if bval, ok := f.match(v); ok {
			e.bval = bval
			out = append(out, e)
		}
	}
	if f.particle == ptInteger {
		sort.SliceStable(out, func(i, j int) bool {
			if out[i].bval != out[j].bval {
				return out[i].bval < out[j].bval
			}
			return bytes.Compare(out[i].d[:], out[j].d[:]) < 0
		})
	}
	return out
}

// ctxRead follows a read-only context path.
func ctxRead(v any, ctx []any) (any, bool) {
	slot := &v
	for i := 0; i+1 < len(ctx); i += 2 {
		id, ok := ctx[i].(int64)
		if !ok {
			return nil, false
		}
		next, _, rc := ctxStep(slot, int(id), ctx[i+1], false)
		if rc != rcOK {
			return nil, false
		}
		slot = next
	}
	return *slot, true
}

// match tests an indexed value against the range and returns the matching
// integer for numeric indexes.
func (f *indexFilter) match(v any) (int64, bool) {
	var cands []any
	switch f.coll {
	case "LIST":
		if l, ok := v.(*listValue); ok {
			cands = l.items
		}
	case "MAPKEYS", "MAPVALUES":
		if m, ok := v.(*mapValue); ok {
			for _, e := range m.entries {
				if f.coll == "MAPKEYS" {
					cands = append(cands, e.k)
				} else {
					cands = append(cands, e.v)
				}
			}
		}
	default:
		cands = []any{v}
	}
	for _, c := range cands {
		if typeOrder(c) != typeOrder(f.begin) {
			continue
		}
		if compare(c, f.begin) >= 0 && compare(c, f.end) <= 0 {
			if i, ok := c.(int64); ok {
				return i, true
			}
			return 0, true
		}
	}
	return 0, false
}
