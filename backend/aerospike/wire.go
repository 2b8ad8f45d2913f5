package aerospike

import (
	"encoding/base64"
	"encoding/binary"
	"math"

	as "github.com/aerospike/aerospike-client-go/v8"
)

// The hot operations send entries and the guards that compare them as
// ready-made wire bytes, encoded here as the client would encode them:
// building the client's expression trees and value lists for every
// compare-and-swap costs more than the rest of the backend's work on
// the call. Tests check that the bytes match the client's own encoding.

// Wire codes of the filter expressions the guards use, as the client's
// expression encoder writes them.
const (
	expEq        = 1   // ExpEq
	expAnd       = 16  // ExpAnd
	expBin       = 81  // ExpMapBin
	expQuoted    = 126 // a list literal (ExpListValueVal)
	expCall      = 127 // a CDT read (ExpMapGetByKey)
	expTypeList  = 4   // ExpTypeLIST
	expTypeMap   = 5   // ExpTypeMAP
	mapGetByKey  = 97  // the map operation "get by key"
	mapRetValue  = 7   // MapReturnType.VALUE
	particleBlob = 4   // the particle type a blob carries in a list
)

// appendArray appends a msgpack array header of n elements.
func appendArray(b []byte, n int) []byte {
	switch {
	case n < 16:
		return append(b, 0x90|byte(n))
	case n <= math.MaxUint16:
		return binary.BigEndian.AppendUint16(append(b, 0xdc), uint16(n))
	}
	return binary.BigEndian.AppendUint32(append(b, 0xdd), uint32(n))
}

// appendStrHeader appends a msgpack string header of n bytes, which the
// client also uses for blobs.
func appendStrHeader(b []byte, n int) []byte {
	switch {
	case n < 32:
		return append(b, 0xa0|byte(n))
	case n < 1<<8:
		return append(b, 0xd9, byte(n))
	case n < 1<<16:
		return binary.BigEndian.AppendUint16(append(b, 0xda), uint16(n))
	}
	return binary.BigEndian.AppendUint32(append(b, 0xdb), uint32(n))
}

// appendInt appends v as the client packs an integer.
func appendInt(b []byte, v int64) []byte {
	if v >= 0 {
		switch {
		case v < 128:
			return append(b, byte(v))
		case v <= math.MaxUint8:
			return append(b, 0xcc, byte(v))
		case v <= math.MaxUint16:
			return binary.BigEndian.AppendUint16(append(b, 0xcd), uint16(v))
		case v <= math.MaxUint32:
			return binary.BigEndian.AppendUint32(append(b, 0xce), uint32(v))
		}
		return binary.BigEndian.AppendUint64(append(b, 0xd3), uint64(v))
	}
	switch {
	case v >= -32:
		return append(b, 0xe0|byte(v+32))
	case v >= math.MinInt8:
		return append(b, 0xd0, byte(v))
	case v >= math.MinInt16:
		return binary.BigEndian.AppendUint16(append(b, 0xd1), uint16(v))
	case v >= math.MinInt32:
		return binary.BigEndian.AppendUint32(append(b, 0xd2), uint32(v))
	}
	return binary.BigEndian.AppendUint64(append(b, 0xd3), uint64(v))
}

// appendRawString appends s as a msgpack string without a particle type,
// as expressions carry bin names.
func appendRawString(b []byte, s string) []byte {
	return append(appendStrHeader(b, len(s)), s...)
}

// appendElems appends the three elements of e as stored, without the
// list header: k1, k2 and the packed fields as a blob.
func (e *entry) appendElems(b []byte) []byte {
	b = appendInt(b, e.k1)
	b = appendInt(b, e.k2)
	b = appendStrHeader(b, e.packedLen()+1)
	b = append(b, particleBlob)
	return e.appendPacked(b)
}

// entryList is an entry ready to be sent as a list value: the client
// writes its encoded elements as they are.
type entryList struct{ elems []byte }

// value returns e as a value to send.
func (e *entry) value() *entryList {
	return &entryList{e.appendElems(make([]byte, 0, 32+e.packedLen()))}
}

// Len implements [as.ListIter].
func (l *entryList) Len() int { return 3 }

// PackList implements [as.ListIter]: it writes the encoded elements, or
// reports their size when buf is nil.
func (l *entryList) PackList(buf as.BufferEx) (int, error) {
	if buf == nil {
		return len(l.elems), nil
	}
	n, err := buf.Write(l.elems)
	if err != nil {
		return n, err
	}
	return n, nil
}

// guard returns the filter that holds when every move's entry is still
// as observed: the compare half of a compare-and-swap on map entries.
// Each move contributes
//
//	ExpEq(ExpMapGetByKey(VALUE, LIST, ExpIntVal(id), ExpMapBin(from)),
//	      ExpListValueVal(old...))
//
// and several are joined with ExpAnd.
func guard(moves []move) *as.Expression {
	b := make([]byte, 0, 64*len(moves))
	if len(moves) > 1 {
		b = appendArray(b, len(moves)+1)
		b = appendInt(b, expAnd)
	}
	for i := range moves {
		m := &moves[i]
		b = append(b, 0x93, expEq, 0x95, expCall, expTypeList, 0, 0x93, mapGetByKey, mapRetValue)
		b = appendInt(b, int64(m.id))
		b = append(b, 0x93, expBin, expTypeMap)
		b = appendRawString(b, m.from)
		b = append(b, 0x92, expQuoted, 0x93)
		b = m.old.appendElems(b)
	}
	// The client takes ready-made expression bytes only in base64.
	exp, err := as.ExpFromBase64(base64.StdEncoding.EncodeToString(b))
	if err != nil {
		// Not reached: the string was just encoded.
		return guardTree(moves)
	}
	return exp
}

// guardTree builds guard's filter with the client's expression builders.
func guardTree(moves []move) *as.Expression {
	conds := make([]*as.Expression, len(moves))
	for i, m := range moves {
		conds[i] = as.ExpEq(
			as.ExpMapGetByKey(as.MapReturnType.VALUE, as.ExpTypeLIST,
				as.ExpIntVal(int64(m.id)), as.ExpMapBin(m.from)),
			as.ExpListValueVal(m.old.list()...))
	}
	if len(conds) == 1 {
		return conds[0]
	}
	return as.ExpAnd(conds...)
}
