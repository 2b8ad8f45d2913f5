package aerospiketest

import (
	"bufio"
	"bytes"
	"compress/zlib"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"reflect"
	"testing"
	"time"
)

// buildMsg builds an AS_MSG body for seeds and tests.
func buildMsg(info1, info2 byte, fields []field, ops []op) []byte {
	var w respBuilder
	w.begin(0, 0, 0, 0, 0, len(fields), len(ops))
	w.buf[1], w.buf[2] = info1, info2
	for _, f := range fields {
		w.field(f.typ, f.data)
	}
	for _, o := range ops {
		start := len(w.buf)
		w.buf = append(w.buf, 0, 0, 0, 0, o.typ, o.particle, 0, byte(len(o.name)))
		w.buf = append(w.buf, o.name...)
		w.buf = append(w.buf, o.value...)
		binary.BigEndian.PutUint32(w.buf[start:], uint32(len(w.buf)-start-4))
	}
	return w.buf
}

func seedMessages() [][]byte {
	d := bytes.Repeat([]byte{7}, digestLength)
	base := []field{{fieldNamespace, []byte("test")}, {fieldSet, []byte("s")}, {fieldDigest, d}}
	mapPut := packValue(nil, &listValue{items: []any{int64(mapPut), "k", int64(1), int64(1)}})
	batch := binary.BigEndian.AppendUint32(nil, 1)
	batch = append(batch, 5)
	batch = binary.BigEndian.AppendUint32(batch, 0)
	batch = append(batch, d...)
	batch = append(batch, batchMsgInfo|batchMsgTTL, info1Read|info1GetAll, 0, 0, 0, 0, 0, 0, 0, 2, 0, 0)
	batch = append(batch, 0, 0, 0, 5, fieldNamespace, 't', 'e', 's', 't', 0, 0, 0, 1, fieldSet)
	return [][]byte{
		buildMsg(info1Read|info1GetAll, 0, base, nil),
		buildMsg(0, info2Write, base, []op{{typ: opWrite, particle: ptInteger, name: "a", value: make([]byte, 8)}}),
		buildMsg(0, info2Write, base, []op{{typ: opCDTModify, particle: ptBlob, name: "m", value: mapPut}}),
		buildMsg(info1Batch, 0, []field{{fieldBatchIndex, batch}}, nil),
		buildMsg(info1Read, 0, []field{{fieldNamespace, []byte("test")}, {fieldPIDArray, []byte{1, 0, 2, 0}}, {fieldMaxRecords, make([]byte, 8)}}, nil),
	}
}

func FuzzParseMessage(f *testing.F) {
	for _, s := range seedMessages() {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := parseMessage(b)
		// Parsing into a message and batch buffers left by another request
		// gives the same result.
		reused := &message{names: nameTable{}}
		var buf batchBuf
		for _, prev := range seedMessages() {
			if parseMessageInto(reused, prev) == nil {
				if bf, ok := reused.field(fieldBatchIndex); ok {
					_, _ = parseBatchInto(bf, &buf, reused.names)
				}
			}
		}
		errReused := parseMessageInto(reused, b)
		if (err == nil) != (errReused == nil) {
			t.Fatalf("parseMessage: %v, into a used message: %v", err, errReused)
		}
		if err != nil {
			return
		}
		reused.names = nil
		if !reflect.DeepEqual(normalMessage(m), normalMessage(reused)) {
			t.Fatalf("parsed into a used message: %+v, want %+v", reused, m)
		}
		classify(m, parseBatchField(m, &batchBuf{}))
		if bf, ok := m.field(fieldBatchIndex); ok {
			es, err := parseBatch(bf)
			esReused, errReused := parseBatchInto(bf, &buf, nil)
			if (err == nil) != (errReused == nil) {
				t.Fatalf("parseBatch: %v, into used buffers: %v", err, errReused)
			}
			if err == nil {
				if len(es) != len(esReused) {
					t.Fatalf("parseBatch: %d entries, into used buffers: %d", len(es), len(esReused))
				}
				for i := range es {
					if es[i].index != esReused[i].index || es[i].d != esReused[i].d ||
						!reflect.DeepEqual(normalMessage(es[i].m), normalMessage(esReused[i].m)) {
						t.Fatalf("batch entry %d differs when parsed into used buffers", i)
					}
				}
			}
		}
		_, _ = scanPartitions(m)
	})
}

// normalMessage returns a copy of m without its name table and with
// empty slices as nil, for comparison.
func normalMessage(m *message) message {
	c := *m
	c.names = nil
	if len(c.fields) == 0 {
		c.fields = nil
	}
	if len(c.ops) == 0 {
		c.ops = nil
	}
	for i := range c.ops {
		if len(c.ops[i].value) == 0 {
			c.ops[i].value = nil
		}
	}
	return c
}

func FuzzReadFrame(f *testing.F) {
	for _, s := range seedMessages() {
		f.Add(frameProto(protoMsg, s))
		var z bytes.Buffer
		zw := zlib.NewWriter(&z)
		inner := frameProto(protoMsg, s)
		_, _ = zw.Write(inner)
		_ = zw.Close()
		c := binary.BigEndian.AppendUint64(nil, uint64(len(inner)))
		f.Add(frameProto(protoCompressed, append(c, z.Bytes()...)))
	}
	f.Add(frameProto(protoInfo, []byte("build\nnode\n")))
	f.Fuzz(func(t *testing.T, b []byte) {
		fr, err := readFrame(bytes.NewReader(b), 1<<20)
		if err == nil && len(fr.body) > 1<<20 {
			t.Fatalf("body of %d bytes exceeds the limit", len(fr.body))
		}
		// Reading into a used buffer, large or small, gives the same frame.
		for _, size := range []int{0, 16, 4 << 10} {
			buf := bytes.Repeat([]byte{0xee}, size)[:0]
			got, _, errInto := readFrameInto(bytes.NewReader(b), 1<<20, buf)
			if (err == nil) != (errInto == nil) {
				t.Fatalf("readFrame: %v, into a buffer of %d: %v", err, size, errInto)
			}
			if err == nil && (got.typ != fr.typ || !bytes.Equal(got.body, fr.body)) {
				t.Fatalf("frame read into a buffer of %d differs", size)
			}
		}
		// A connection's buffered reader, whose header is peeked, gives the
		// same frame and the same kind of error.
		got, _, errBuf := readFrameInto(bufio.NewReaderSize(bytes.NewReader(b), 16), 1<<20, nil)
		if (err == nil) != (errBuf == nil) || errors.Is(err, io.ErrUnexpectedEOF) != errors.Is(errBuf, io.ErrUnexpectedEOF) {
			t.Fatalf("readFrame: %v, from a bufio.Reader: %v", err, errBuf)
		}
		if err == nil && (got.typ != fr.typ || !bytes.Equal(got.body, fr.body)) {
			t.Fatal("frame read from a bufio.Reader differs")
		}
	})
}

func FuzzMsgpack(f *testing.F) {
	f.Add(packValue(nil, &mapValue{flags: 1, entries: []mapEntry{{"a", &listValue{items: []any{int64(1), "x"}}}}}))
	f.Add(packValue(nil, &listValue{flags: 1, items: []any{nil, true, int64(-5), 1.5, []byte{1}, "s"}}))
	f.Add([]byte{0xd4, 0xff, 0x01})
	f.Add([]byte{0xdd, 0xff, 0xff, 0xff, 0xff})
	f.Fuzz(func(t *testing.T, b []byte) {
		v, err := unpackAll(b)
		if err != nil {
			return
		}
		again, err := unpackAll(packValue(nil, v))
		if err != nil {
			t.Fatalf("re-decoding: %v", err)
		}
		if compare(v, again) != 0 && storable(v) && !hasNaN(v) {
			t.Fatalf("round trip changed %#v to %#v", v, again)
		}
	})
}

func hasNaN(v any) bool {
	switch x := v.(type) {
	case float64:
		return x != x
	case *listValue:
		for _, it := range x.items {
			if hasNaN(it) {
				return true
			}
		}
	case *mapValue:
		for _, e := range x.entries {
			if hasNaN(e.k) || hasNaN(e.v) {
				return true
			}
		}
	}
	return false
}

func sampleRecord() *record {
	return &record{
		bins: []bin{
			{name: "i", val: int64(3)}, {name: "s", val: "abc"},
			{name: "l", val: &listValue{items: []any{int64(3), int64(1), "x"}}},
			{name: "m", val: &mapValue{flags: 1, entries: []mapEntry{{"a", int64(1)}, {"b", &listValue{items: []any{int64(2)}}}}}},
		},
		gen: 1, lut: 1, set: "s", key: []byte{ptString, 'k'},
	}
}

func FuzzExpression(f *testing.F) {
	f.Add([]byte{0x93, 0x01, 0x93, 0x51, 0x02, 0xa1, 'i', 0x03})
	f.Add([]byte{0x92, 0x12, 0xc3})
	f.Fuzz(func(t *testing.T, b []byte) {
		n, err := parseExpression(b)
		if err != nil {
			return
		}
		env := &expEnv{rec: sampleRecord(), now: time.Unix(100, 0), nowVoid: 5}
		n.eval(env)
	})
}

func FuzzCDT(f *testing.F) {
	f.Add(packValue(nil, &listValue{items: []any{int64(mapPut), "k", int64(1), int64(1)}}), true)
	f.Add(packValue(nil, &listValue{items: []any{int64(mapGetRankRange), int64(rtKeyValue), int64(0), int64(2)}}), false)
	f.Add(packValue(nil, &listValue{items: []any{int64(listAppend), int64(5)}}), true)
	f.Add(packValue(nil, &listValue{items: []any{int64(cdtCtxMarker), &listValue{items: []any{int64(ctxMapKey), "b"}}, &listValue{items: []any{int64(listPop), int64(0)}}}}), true)
	f.Fuzz(func(t *testing.T, b []byte, modify bool) {
		// Decoding an op without its list wrapper gives the same op.
		o, rc := decodeCDT(b)
		var want cdtOp
		wantRC := byte(rcParameter)
		if v, err := unpackAll(b); err == nil {
			want, wantRC = cdtFromList(v)
		}
		if rc != wantRC || o.code != want.code || compare(&listValue{items: o.args}, &listValue{items: want.args}) != 0 ||
			compare(&listValue{items: o.ctx}, &listValue{items: want.ctx}) != 0 {
			t.Fatalf("decodeCDT = %+v, %d; want %+v, %d", o, rc, want, wantRC)
		}
		r := sampleRecord()
		for _, bn := range r.bins {
			before := packValue(nil, bn.val)
			_, _, _ = cdtApply(bn.val, true, b, modify)
			if !bytes.Equal(before, packValue(nil, bn.val)) {
				t.Fatalf("cdt op modified the stored value of %s", bn.name)
			}
		}
		_, _, _ = cdtApply(nil, false, b, modify)
	})
}

// TestMalformedFrames sends broken frames: the server closes the connection
// and keeps serving others.
func TestMalformedFrames(t *testing.T) {
	srv, err := NewServer()
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	bad := [][]byte{
		{9, 3, 0, 0, 0, 0, 0, 1, 0},                                   // bad version
		{2, 3, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff},                    // huge length
		frameProto(protoMsg, []byte{22, 0, 0}),                        // short header
		frameProto(protoMsg, append(seedMessages()[0][:22:22], 1, 2)), // trailing bytes
		frameProto(protoAdmin, []byte{0}),
	}
	for i, b := range bad {
		c, err := net.Dial("tcp", srv.Addr())
		if err != nil {
			t.Fatal(err)
		}
		_ = c.SetDeadline(time.Now().Add(2 * time.Second))
		_, _ = c.Write(b)
		// The server closes the connection (possibly with a reset when
		// unread bytes remain); a timeout means it kept it open.
		if _, err := io.ReadAll(c); err != nil {
			if ne, ok := err.(net.Error); ok && ne.Timeout() {
				t.Errorf("frame %d: connection left open", i)
			}
		}
		c.Close()
	}
	c, err := net.Dial("tcp", srv.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(2 * time.Second))
	// A compressed request, well formed or not, is answered ENTERPRISE_ONLY
	// on a connection that stays open.
	if _, err := c.Write(frameProto(protoCompressed, []byte{0, 0, 0, 0, 0, 0, 0, 30, 1, 2, 3})); err != nil {
		t.Fatal(err)
	}
	fr, err := readFrame(c, 1<<20)
	if err != nil || fr.typ != protoMsg || len(fr.body) < msgHeaderSize || fr.body[5] != rcEnterpriseOnly {
		t.Fatalf("compressed request answered %v %v, want ENTERPRISE_ONLY", fr, err)
	}
	if _, err := c.Write(frameProto(protoInfo, []byte("build\n"))); err != nil {
		t.Fatal(err)
	}
	fr, err = readFrame(c, 1<<20)
	if err != nil || string(fr.body) != "build\t"+DefaultBuild+"\n" {
		t.Fatalf("info after bad frames: %q %v", fr.body, err)
	}
}
