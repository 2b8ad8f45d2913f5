package aerospiketest

import (
	"bytes"
	"sync"
	"time"
)

// reqKey identifies the record a single-record command targets.
type reqKey struct {
	ns     *namespace
	nsName string
	set    string
	d      digest
	key    []byte // KEY field (particle type + value), nil if not sent
}

// resolveKey extracts namespace, set, digest and key from m.
func (s *Server) resolveKey(m *message) (reqKey, byte) {
	var k reqKey
	nsName, ok := m.field(fieldNamespace)
	if !ok {
		return k, rcParameter
	}
	k.ns = s.namespaces[string(nsName)]
	if k.ns == nil {
		return k, rcInvalidNamespace
	}
	k.nsName = k.ns.cfg.Name
	if set, ok := m.field(fieldSet); ok {
		k.set = m.names.str(set)
	}
	d, ok := m.field(fieldDigest)
	if !ok || len(d) != digestLength {
		return k, rcParameter
	}
	copy(k.d[:], d)
	if key, ok := m.field(fieldKey); ok && len(key) > 0 {
		k.key = append([]byte{}, key...)
	}
	return k, rcOK
}

// unsupportedFields reports fields of features the server does not
// implement (UDF, multi-record transactions).
func unsupportedFields(m *message) bool {
	if m.info4 != 0 {
		return true
	}
	for _, f := range m.fields {
		switch f.typ {
		case fieldUDFPackage, fieldUDFFunction, fieldUDFArgs, fieldUDFOp, fieldMRTID, fieldMRTDeadline, fieldRecordVersion:
			return true
		}
	}
	return false
}

// opResult is one response op.
type opResult struct {
	name string
	val  any
}

// result is the outcome of a record command.
type result struct {
	rc       byte
	gen      uint16
	voidTime uint32
	ops      []opResult
}

// appendResult encodes r as an AS_MSG; txnTTL carries the batch index in
// batch responses.
func appendResult(w *respBuilder, r result, txnTTL uint32) {
	if r.rc != rcOK {
		w.begin(0, r.rc, uint32(r.gen), r.voidTime, txnTTL, 0, 0)
		return
	}
	w.begin(0, rcOK, uint32(r.gen), r.voidTime, txnTTL, 0, len(r.ops))
	for _, o := range r.ops {
		w.opValue(o.name, o.val)
	}
}

// execSingle runs a single-record command.
func (s *Server) execSingle(m *message, delay time.Duration) result {
	if unsupportedFields(m) {
		return result{rc: rcUnsupported}
	}
	k, rc := s.resolveKey(m)
	if rc != rcOK {
		return result{rc: rc}
	}
	var filter *expNode
	if b, ok := m.field(fieldFilterExp); ok {
		var err error
		if filter, err = parseExpression(b); err != nil {
			return result{rc: filterRC(err)}
		}
	}
	return s.execRecord(k, m, m.ops, filter, delay)
}

// execRecord runs ops on one record under its partition lock.
func (s *Server) execRecord(k reqKey, m *message, ops []op, filter *expNode, delay time.Duration) result {
	write := m.info2&info2Write != 0
	p := k.ns.partition(k.d)
	if write {
		if !k.ns.enter(k.d, s.cfg.pendingLimit) {
			s.stKeyBusy.Add(1)
			return result{rc: rcKeyBusy}
		}
		defer k.ns.leave(k.d, s.cfg.pendingLimit)
		p.mu.Lock()
		defer p.mu.Unlock()
	} else {
		p.mu.RLock()
		defer p.mu.RUnlock()
	}
	if delay > 0 {
		s.sleep(delay)
	}
	now := s.Now()
	nowVoid := s.nowVoid()
	r := p.live(k.d, nowVoid)
	if !write {
		return s.readRecord(k, m, ops, filter, r, now)
	}
	res, nr, del := s.writeRecord(k, m, ops, filter, r, now, nowVoid)
	if res.rc == rcOK {
		if del {
			delete(p.recs, k.d)
		} else if nr != nil {
			p.recs[k.d] = nr
		}
	}
	return res
}

func (s *Server) readRecord(k reqKey, m *message, ops []op, filter *expNode, r *record, now time.Time) result {
	if r == nil {
		return result{rc: rcKeyNotFound}
	}
	env := &expEnv{rec: r, d: k.d, now: now, nowVoid: s.nowVoid()}
	if filter != nil && !filter.matches(env) {
		return result{rc: rcFilteredOut}
	}
	res := result{gen: r.gen, voidTime: r.voidTime}
	respondAll := m.info2&info2RespondAllOps != 0
	if len(ops) == 0 {
		if m.info1&info1NoBinData == 0 {
			res.ops = make([]opResult, 0, len(r.bins))
			for _, b := range r.bins {
				res.ops = append(res.ops, opResult{b.name, b.val})
			}
		}
		return res
	}
	for _, o := range ops {
		switch o.typ {
		case opRead:
			if o.name == "" {
				if m.info1&info1GetAll != 0 {
					for _, b := range r.bins {
						res.ops = append(res.ops, opResult{b.name, b.val})
					}
				}
				continue
			}
			v, ok := r.bin(o.name)
			if ok || respondAll {
				res.ops = append(res.ops, opResult{o.name, v})
			}
		case opCDTRead:
			cur, ok := r.bin(o.name)
			_, out, rc := cdtApply(cur, ok, o.value, false)
			if rc != rcOK {
				return result{rc: rc}
			}
			if out != nil || respondAll {
				res.ops = append(res.ops, opResult{o.name, out})
			}
		case opExpRead:
			v, rc := evalExpOp(o.value, env, false)
			if rc != rcOK {
				return result{rc: rc}
			}
			res.ops = append(res.ops, opResult{o.name, v})
		case opBitRead, opHLLRead:
			return result{rc: rcUnsupported}
		default:
			return result{rc: rcParameter}
		}
	}
	return res
}

// writeRecord applies a write command to r (nil if absent). It returns the
// result, the new record, and whether the record is deleted.
func (s *Server) writeRecord(k reqKey, m *message, ops []op, filter *expNode, r *record, now time.Time, nowVoid uint32) (result, *record, bool) {
	var curGen uint16
	if r != nil {
		curGen = r.gen
	}
	durable := m.info2&info2DurableDelete != 0
	if durable && (m.info2&info2Delete != 0 || hasDelete(ops)) {
		// Durable deletes are an Enterprise feature.
		return result{rc: rcEnterpriseOnly}, nil, false
	}
	if k.ns.ttlDisallowed(m.ttl) {
		return result{rc: rcForbidden}, nil, false
	}
	switch {
	case m.info2&info2CreateOnly != 0 && r != nil:
		return result{rc: rcKeyExists}, nil, false
	case m.info3&(info3UpdateOnly|info3ReplaceOnly) != 0 && r == nil:
		return result{rc: rcKeyNotFound}, nil, false
	case m.info2&info2Generation != 0 && m.generation != uint32(curGen):
		return result{rc: rcGeneration}, nil, false
	case m.info2&info2GenerationGT != 0 && m.generation <= uint32(curGen):
		return result{rc: rcGeneration}, nil, false
	}
	if r != nil && filter != nil {
		if !filter.matches(&expEnv{rec: r, d: k.d, now: now, nowVoid: nowVoid}) {
			return result{rc: rcFilteredOut}, nil, false
		}
	}
	if m.info2&info2Delete != 0 && len(ops) == 0 {
		if r == nil {
			return result{rc: rcKeyNotFound}, nil, false
		}
		return result{}, nil, true
	}
	if r == nil {
		// Creating a record takes its set name into the namespace's set
		// names, even if the write then fails, as on a real server.
		if len(k.set) > maxSetName || !k.ns.useSet(k.set) {
			return result{rc: rcParameter}, nil, false
		}
	}

	// Update times have millisecond resolution, as on a real server.
	nr := &record{set: k.set, key: k.key, lut: now.UnixMilli() * int64(time.Millisecond)}
	replace := m.info3&(info3CreateOrReplace|info3ReplaceOnly) != 0
	if r != nil && !replace {
		nr.bins = append(make([]bin, 0, len(r.bins)+len(ops)), r.bins...)
	} else {
		nr.bins = make([]bin, 0, len(ops))
	}
	if r != nil && nr.key == nil {
		nr.key = r.key
	}
	respondAll := m.info2&info2RespondAllOps != 0
	res := result{}
	if respondAll {
		res.ops = make([]opResult, 0, len(ops))
	}
	existed := r != nil
	env := &expEnv{rec: nr, d: k.d, now: now, nowVoid: nowVoid}
	for _, o := range ops {
		var out any
		has := false
		switch o.typ {
		case opWrite:
			if rc := checkBinName(o.name); rc != rcOK {
				return result{rc: rc}, nil, false
			}
			v, rc := decodeParticle(o.particle, o.value)
			if rc != rcOK {
				return result{rc: rc}, nil, false
			}
			nr.setBin(o.name, v)
		case opAdd, opAppend, opPrepend:
			if rc := checkBinName(o.name); rc != rcOK {
				return result{rc: rc}, nil, false
			}
			v, rc := decodeParticle(o.particle, o.value)
			if rc != rcOK {
				return result{rc: rc}, nil, false
			}
			cur, ok := nr.bin(o.name)
			nv, rc := arith(o.typ, cur, ok, v)
			if rc != rcOK {
				return result{rc: rc}, nil, false
			}
			nr.setBin(o.name, nv)
		case opTouch:
			if !existed {
				return result{rc: rcKeyNotFound}, nil, false
			}
		case opDelete:
			nr.bins = nil
		case opRead:
			if o.name == "" {
				if m.info1&info1GetAll != 0 {
					for _, b := range nr.bins {
						res.ops = append(res.ops, opResult{b.name, b.val})
					}
				}
				continue
			}
			out, has = nr.bin(o.name)
		case opCDTRead, opCDTModify:
			if rc := checkBinName(o.name); rc != rcOK {
				return result{rc: rc}, nil, false
			}
			cur, ok := nr.bin(o.name)
			nv, v, rc := cdtApply(cur, ok, o.value, o.typ == opCDTModify)
			if rc != rcOK {
				return result{rc: rc}, nil, false
			}
			if o.typ == opCDTModify && nv != nil {
				nr.setBin(o.name, nv)
			}
			out, has = v, v != nil
		case opExpRead:
			v, rc := evalExpOp(o.value, env, false)
			if rc != rcOK {
				return result{rc: rc}, nil, false
			}
			out, has = v, true
		case opExpModify:
			if rc := checkBinName(o.name); rc != rcOK {
				return result{rc: rc}, nil, false
			}
			if rc := expWrite(nr, o, env); rc != rcOK {
				return result{rc: rc}, nil, false
			}
		case opBitRead, opBitModify, opHLLRead, opHLLModify:
			return result{rc: rcUnsupported}, nil, false
		default:
			return result{rc: rcParameter}, nil, false
		}
		if has || respondAll {
			res.ops = append(res.ops, opResult{o.name, out})
		}
	}
	if len(nr.bins) == 0 {
		// A record left without bins is deleted; a new one is not created.
		if !existed {
			return result{rc: rcKeyNotFound}, nil, false
		}
		if durable {
			return result{rc: rcEnterpriseOnly}, nil, false
		}
		return res, nil, true
	}
	nr.gen = 1
	if existed {
		nr.gen = nextGen(r.gen)
	}
	switch ttl := m.ttl; ttl {
	case ttlNeverExpire:
		nr.voidTime = 0
	case ttlDontUpdate:
		if existed {
			nr.voidTime = r.voidTime
		} else {
			nr.voidTime = defaultVoid(k.ns, nowVoid)
		}
	case 0:
		nr.voidTime = defaultVoid(k.ns, nowVoid)
	default:
		if ttl > maxTTLSeconds {
			return result{rc: rcParameter}, nil, false
		}
		nr.voidTime = nowVoid + ttl
	}
	// The record is written whole, as a real server writes it, and its
	// storage image is what max-record-size limits.
	nr.size() // fills in the bins' sizes, which readers then use
	if writeImage(nr) > int(k.ns.maxRecordSize.Load()) {
		return result{rc: rcRecordTooBig}, nil, false
	}
	res.gen, res.voidTime = nr.gen, nr.voidTime
	return res, nr, false
}

// hasDelete reports whether ops delete the record.
func hasDelete(ops []op) bool {
	for i := range ops {
		if ops[i].typ == opDelete {
			return true
		}
	}
	return false
}

// ttlDisallowed reports whether a write with TTL ttl is refused because the
// namespace removes no expired records (nsup-period 0) and does not allow
// TTLs without it: a TTL in seconds, or the namespace default when that is
// not zero. "Never expire" and "do not change" are always allowed.
func (n *namespace) ttlDisallowed(ttl uint32) bool {
	expires := (int32(ttl) > 0) || (ttl == 0 && n.cfg.DefaultTTL > 0)
	return expires && n.nsupPeriod.Load() == 0 && !n.allowTTL.Load()
}

// imagePool holds the buffers writes build storage images in.
var imagePool = sync.Pool{New: func() any { return new([]byte) }}

// maxPooledImage is the largest image buffer kept for another write.
const maxPooledImage = MaxMaxRecordSize + 1<<16

// writeImage builds r's storage image, as a real server does for every
// write, and returns its length.
func writeImage(r *record) int {
	buf := imagePool.Get().(*[]byte)
	b := r.appendFlat((*buf)[:0])
	n := len(b)
	if cap(b) <= maxPooledImage {
		*buf = b
		imagePool.Put(buf)
	}
	return n
}

func defaultVoid(ns *namespace, nowVoid uint32) uint32 {
	ttl := uint32(ns.cfg.DefaultTTL / time.Second)
	if ttl == 0 {
		return 0
	}
	return nowVoid + ttl
}

// nextGen increments a 16-bit generation, skipping 0 on wrap.
func nextGen(g uint16) uint16 {
	g++
	if g == 0 {
		g = 1
	}
	return g
}

func checkBinName(name string) byte {
	if len(name) > maxBinName {
		return rcBinNameTooLong
	}
	if name == "" {
		return rcParameter
	}
	return rcOK
}

// setBin sets or, for a nil value, removes a bin.
func (r *record) setBin(name string, v any) {
	for i := range r.bins {
		if r.bins[i].name == name {
			if v == nil {
				r.bins = append(r.bins[:i:i], r.bins[i+1:]...)
				return
			}
			r.bins[i].val, r.bins[i].psize = v, 0
			return
		}
	}
	if v != nil {
		r.bins = append(r.bins, bin{name: name, val: v})
	}
}

// arith applies ADD, APPEND or PREPEND.
func arith(typ byte, cur any, exists bool, v any) (any, byte) {
	switch typ {
	case opAdd:
		switch x := v.(type) {
		case int64:
			if !exists {
				return x, rcOK
			}
			c, ok := cur.(int64)
			if !ok {
				return nil, rcBinType
			}
			return c + x, rcOK
		case float64:
			if !exists {
				return x, rcOK
			}
			c, ok := cur.(float64)
			if !ok {
				return nil, rcBinType
			}
			return c + x, rcOK
		}
		return nil, rcParameter
	default:
		switch x := v.(type) {
		case string:
			if !exists {
				return x, rcOK
			}
			c, ok := cur.(string)
			if !ok {
				return nil, rcBinType
			}
			if typ == opAppend {
				return c + x, rcOK
			}
			return x + c, rcOK
		case []byte:
			if !exists {
				return x, rcOK
			}
			c, ok := cur.([]byte)
			if !ok {
				return nil, rcBinType
			}
			if typ == opAppend {
				return bytes.Join([][]byte{c, x}, nil), rcOK
			}
			return bytes.Join([][]byte{x, c}, nil), rcOK
		}
		return nil, rcParameter
	}
}
