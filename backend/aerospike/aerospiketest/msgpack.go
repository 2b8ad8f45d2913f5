package aerospiketest

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"strings"
)

// Aerospike's msgpack dialect: strings and blobs use the str/bin families
// with a leading particle-type byte (3 string, 4 blob, 23 GeoJSON); ordered
// lists and maps start with an ext header (c7 00 <flags>, plus a nil value
// for maps); INF and WILDCARD are the ext values d4 ff 01 and d4 ff 00.

var errMsgpack = errors.New("aerospiketest: malformed msgpack")

// maxMsgpackDepth bounds container nesting.
const maxMsgpackDepth = 64

type mpReader struct {
	b     []byte
	off   int
	depth int
}

func (r *mpReader) fail(format string, args ...any) error {
	return fmt.Errorf("%w at offset %d: %s", errMsgpack, r.off, fmt.Sprintf(format, args...))
}

func (r *mpReader) need(n int) error {
	if n < 0 || len(r.b)-r.off < n {
		return r.fail("truncated: need %d bytes", n)
	}
	return nil
}

func (r *mpReader) u8() (byte, error) {
	if err := r.need(1); err != nil {
		return 0, err
	}
	c := r.b[r.off]
	r.off++
	return c, nil
}

func (r *mpReader) bytesN(n int) ([]byte, error) {
	if err := r.need(n); err != nil {
		return nil, err
	}
	s := r.b[r.off : r.off+n]
	r.off += n
	return s, nil
}

func (r *mpReader) uintN(n int) (uint64, error) {
	s, err := r.bytesN(n)
	if err != nil {
		return 0, err
	}
	var u uint64
	for _, c := range s {
		u = u<<8 | uint64(c)
	}
	return u, nil
}

func (r *mpReader) done() bool { return r.off >= len(r.b) }

// peek returns the next type byte without consuming it.
func (r *mpReader) peek() (byte, bool) {
	if r.off >= len(r.b) {
		return 0, false
	}
	return r.b[r.off], true
}

// unpackAll decodes exactly one value filling b.
func unpackAll(b []byte) (any, error) {
	r := &mpReader{b: b}
	v, err := r.value()
	if err != nil {
		return nil, err
	}
	if !r.done() {
		return nil, r.fail("%d trailing bytes", len(b)-r.off)
	}
	return v, nil
}

// unpackPlainList decodes b as unpackAll does when b is a list without an
// order header, returning its items without the list around them; plain
// is false, and nothing is decoded, for any other value.
func unpackPlainList(b []byte) (items []any, plain bool, err error) {
	r := &mpReader{b: b}
	if c, ok := r.peek(); !ok || !isArrayByte(c) {
		return nil, false, nil
	}
	n, err := r.arrayHeader()
	if err != nil {
		return nil, true, err
	}
	if n > 0 && len(b)-r.off >= 2 && b[r.off] == 0xc7 && b[r.off+1] == 0 {
		return nil, false, nil
	}
	if err := r.enter(); err != nil {
		return nil, true, err
	}
	items = make([]any, 0, n)
	for range n {
		v, err := r.value()
		if err != nil {
			return nil, true, err
		}
		items = append(items, v)
	}
	if !r.done() {
		return nil, true, r.fail("%d trailing bytes", len(b)-r.off)
	}
	return items, true, nil
}

// arrayHeader reads an array header and returns its element count.
func (r *mpReader) arrayHeader() (int, error) {
	c, err := r.u8()
	if err != nil {
		return 0, err
	}
	var n uint64
	switch {
	case c&0xf0 == 0x90:
		n = uint64(c & 0x0f)
	case c == 0xdc:
		n, err = r.uintN(2)
	case c == 0xdd:
		n, err = r.uintN(4)
	default:
		r.off--
		return 0, r.fail("expected array, got 0x%02x", c)
	}
	return r.length("array count", n, err)
}

// rawString reads a str/bin value without interpreting a particle byte.
func (r *mpReader) rawString() (string, error) {
	c, err := r.u8()
	if err != nil {
		return "", err
	}
	n, err := r.strLen(c)
	if err != nil {
		return "", err
	}
	s, err := r.bytesN(n)
	return string(s), err
}

// strLen returns the length of a str/bin value whose type byte is c.
func (r *mpReader) strLen(c byte) (int, error) {
	var n uint64
	var err error
	switch {
	case c&0xe0 == 0xa0:
		n = uint64(c & 0x1f)
	case c == 0xd9 || c == 0xc4:
		n, err = r.uintN(1)
	case c == 0xda || c == 0xc5:
		n, err = r.uintN(2)
	case c == 0xdb || c == 0xc6:
		n, err = r.uintN(4)
	default:
		r.off--
		return 0, r.fail("expected string, got 0x%02x", c)
	}
	return r.length("string length", n, err)
}

// length returns n, a count or length just read with err, once it has
// checked that the input left could hold it.
func (r *mpReader) length(what string, n uint64, err error) (int, error) {
	if err != nil {
		return 0, err
	}
	if n > uint64(len(r.b)-r.off) {
		return 0, r.fail("%s %d exceeds input", what, n)
	}
	return int(n), nil
}

// extHeader reports whether the next value is a container ext header
// (c7 00 <flags>) and consumes it.
func (r *mpReader) extHeader() (byte, bool) {
	if len(r.b)-r.off >= 3 && r.b[r.off] == 0xc7 && r.b[r.off+1] == 0 {
		flags := r.b[r.off+2]
		r.off += 3
		return flags, true
	}
	return 0, false
}

// value decodes one value.
func (r *mpReader) value() (any, error) {
	c, err := r.u8()
	if err != nil {
		return nil, err
	}
	switch {
	case c <= 0x7f:
		return int64(c), nil
	case c >= 0xe0:
		return int64(int8(c)), nil
	case c&0xf0 == 0x80:
		return r.mapBody(int(c & 0x0f))
	case c&0xf0 == 0x90:
		return r.listBody(int(c & 0x0f))
	case c&0xe0 == 0xa0:
		return r.str(c)
	}
	switch c {
	case 0xc0:
		return nil, nil
	case 0xc2:
		return false, nil
	case 0xc3:
		return true, nil
	case 0xc4, 0xc5, 0xc6, 0xd9, 0xda, 0xdb:
		return r.str(c)
	case 0xca:
		u, err := r.uintN(4)
		return float64(math.Float32frombits(uint32(u))), err
	case 0xcb:
		u, err := r.uintN(8)
		return math.Float64frombits(u), err
	case 0xcc, 0xcd, 0xce, 0xcf:
		u, err := r.uintN(1 << (c - 0xcc))
		return int64(u), err
	case 0xd0, 0xd1, 0xd2, 0xd3:
		n := 1 << (c - 0xd0)
		u, err := r.uintN(n)
		shift := uint(64 - 8*n)
		return int64(u<<shift) >> shift, err
	case 0xdc, 0xdd, 0xde, 0xdf:
		u, err := r.uintN(2 << ((c - 0xdc) & 1))
		n, err := r.length("container count", u, err)
		if err != nil {
			return nil, err
		}
		if c <= 0xdd {
			return r.listBody(n)
		}
		return r.mapBody(n)
	case 0xd4:
		s, err := r.bytesN(2)
		if err != nil {
			return nil, err
		}
		if s[0] == 0xff && s[1] == 0x01 {
			return infValue{}, nil
		}
		if s[0] == 0xff && s[1] == 0x00 {
			return wildValue{}, nil
		}
		return nil, r.fail("unsupported ext type %d", int8(s[0]))
	}
	r.off--
	return nil, r.fail("unsupported type byte 0x%02x", c)
}

func (r *mpReader) str(c byte) (any, error) {
	n, err := r.strLen(c)
	if err != nil {
		return nil, err
	}
	s, err := r.bytesN(n)
	if err != nil {
		return nil, err
	}
	if n == 0 {
		return "", nil
	}
	switch s[0] {
	case ptString:
		return string(s[1:]), nil
	case ptBlob:
		return append([]byte{}, s[1:]...), nil
	case ptGeoJSON:
		return geoJSON(s[1:]), nil
	}
	return nil, r.fail("unknown string particle type %d", s[0])
}

func (r *mpReader) enter() error {
	r.depth++
	if r.depth > maxMsgpackDepth {
		return r.fail("nesting deeper than %d", maxMsgpackDepth)
	}
	return nil
}

func (r *mpReader) listBody(n int) (any, error) {
	if err := r.enter(); err != nil {
		return nil, err
	}
	defer func() { r.depth-- }()
	l := &listValue{}
	if n > 0 {
		if flags, ok := r.extHeader(); ok {
			l.flags = flags
			n--
		}
	}
	l.items = make([]any, 0, n)
	for range n {
		v, err := r.value()
		if err != nil {
			return nil, err
		}
		l.items = append(l.items, v)
	}
	if l.ordered() {
		sortValues(l.items)
	}
	return l, nil
}

func (r *mpReader) mapBody(n int) (any, error) {
	if err := r.enter(); err != nil {
		return nil, err
	}
	defer func() { r.depth-- }()
	m := &mapValue{}
	if n > 0 {
		if flags, ok := r.extHeader(); ok {
			if _, err := r.value(); err != nil {
				return nil, err
			}
			m.flags = flags
			n--
		}
	}
	m.entries = make([]mapEntry, 0, n)
	for range n {
		k, err := r.value()
		if err != nil {
			return nil, err
		}
		v, err := r.value()
		if err != nil {
			return nil, err
		}
		m.entries = append(m.entries, mapEntry{k: k, v: v})
	}
	m.entries = sortDedupEntries(m.entries)
	return m, nil
}

// packValue appends the msgpack encoding of v.
func packValue(b []byte, v any) []byte {
	switch x := v.(type) {
	case nil:
		return append(b, 0xc0)
	case bool:
		if x {
			return append(b, 0xc3)
		}
		return append(b, 0xc2)
	case int64:
		return packInt(b, x)
	case float64:
		return binary.BigEndian.AppendUint64(append(b, 0xcb), math.Float64bits(x))
	case string:
		return packStr(b, ptString, []byte(x))
	case []byte:
		return packStr(b, ptBlob, x)
	case hllValue:
		return packStr(b, ptBlob, x)
	case geoJSON:
		return packStr(b, ptGeoJSON, []byte(x))
	case infValue:
		return append(b, 0xd4, 0xff, 0x01)
	case wildValue:
		return append(b, 0xd4, 0xff, 0x00)
	case *listValue:
		n := len(x.items)
		if x.flags != 0 {
			b = packContainerHeader(b, 0x90, 0xdc, n+1)
			b = append(b, 0xc7, 0, x.flags)
		} else {
			b = packContainerHeader(b, 0x90, 0xdc, n)
		}
		for _, it := range x.items {
			b = packValue(b, it)
		}
		return b
	case *mapValue:
		if p := x.cache.packed.Load(); p != nil {
			return append(b, *p...)
		}
		n := len(x.entries)
		if x.flags != 0 {
			b = packContainerHeader(b, 0x80, 0xde, n+1)
			b = append(b, 0xc7, 0, x.flags, 0xc0)
		} else {
			b = packContainerHeader(b, 0x80, 0xde, n)
		}
		for _, e := range x.entries {
			b = packValue(b, e.k)
			b = packValue(b, e.v)
		}
		return b
	}
	return append(b, 0xc0)
}

func packInt(b []byte, x int64) []byte {
	switch {
	case x >= 0 && x <= 0x7f:
		return append(b, byte(x))
	case x < 0 && x >= -32:
		return append(b, byte(x))
	case x >= 0 && x <= math.MaxUint8:
		return append(b, 0xcc, byte(x))
	case x >= 0 && x <= math.MaxUint16:
		return binary.BigEndian.AppendUint16(append(b, 0xcd), uint16(x))
	case x >= 0 && x <= math.MaxUint32:
		return binary.BigEndian.AppendUint32(append(b, 0xce), uint32(x))
	case x >= 0:
		return binary.BigEndian.AppendUint64(append(b, 0xcf), uint64(x))
	case x >= math.MinInt8:
		return append(b, 0xd0, byte(x))
	case x >= math.MinInt16:
		return binary.BigEndian.AppendUint16(append(b, 0xd1), uint16(x))
	case x >= math.MinInt32:
		return binary.BigEndian.AppendUint32(append(b, 0xd2), uint32(x))
	}
	return binary.BigEndian.AppendUint64(append(b, 0xd3), uint64(x))
}

func packStr(b []byte, pt byte, s []byte) []byte {
	n := len(s) + 1
	switch {
	case n < 32:
		b = append(b, 0xa0|byte(n))
	case n <= math.MaxUint8:
		b = append(b, 0xd9, byte(n))
	case n <= math.MaxUint16:
		b = binary.BigEndian.AppendUint16(append(b, 0xda), uint16(n))
	default:
		b = binary.BigEndian.AppendUint32(append(b, 0xdb), uint32(n))
	}
	return append(append(b, pt), s...)
}

func packContainerHeader(b []byte, fix, c16 byte, n int) []byte {
	switch {
	case n < 16:
		return append(b, fix|byte(n))
	case n <= math.MaxUint16:
		return binary.BigEndian.AppendUint16(append(b, c16), uint16(n))
	}
	return binary.BigEndian.AppendUint32(append(b, c16+1), uint32(n))
}

// typeOrder is Aerospike's cross-type ordering:
// NIL < BOOL < INT < STRING < LIST < MAP < BYTES < DOUBLE < GEOJSON < INF.
func typeOrder(v any) int {
	switch v.(type) {
	case nil:
		return 1
	case bool:
		return 2
	case int64:
		return 3
	case string:
		return 4
	case *listValue:
		return 5
	case *mapValue:
		return 6
	case []byte, hllValue:
		return 7
	case float64:
		return 8
	case geoJSON:
		return 9
	case infValue:
		return 100
	}
	return 0
}

// compare orders two values; WILDCARD compares equal to anything.
func compare(a, b any) int {
	if _, ok := a.(wildValue); ok {
		return 0
	}
	if _, ok := b.(wildValue); ok {
		return 0
	}
	ta, tb := typeOrder(a), typeOrder(b)
	if ta != tb {
		if ta < tb {
			return -1
		}
		return 1
	}
	switch x := a.(type) {
	case bool:
		y := b.(bool)
		switch {
		case x == y:
			return 0
		case !x:
			return -1
		}
		return 1
	case int64:
		y := b.(int64)
		switch {
		case x < y:
			return -1
		case x > y:
			return 1
		}
		return 0
	case float64:
		y := b.(float64)
		switch {
		case x < y:
			return -1
		case x > y:
			return 1
		}
		return 0
	case string:
		return strings.Compare(x, b.(string))
	case geoJSON:
		return strings.Compare(string(x), string(b.(geoJSON)))
	case []byte:
		return bytes.Compare(x, blobBytes(b))
	case hllValue:
		return bytes.Compare(x, blobBytes(b))
	case *listValue:
		y := b.(*listValue)
		for i := 0; i < len(x.items) && i < len(y.items); i++ {
			if isWild(x.items[i]) || isWild(y.items[i]) {
				return 0
			}
			if c := compare(x.items[i], y.items[i]); c != 0 {
				return c
			}
		}
		return cmpInt(len(x.items), len(y.items))
	case *mapValue:
		y := b.(*mapValue)
		if c := cmpInt(len(x.entries), len(y.entries)); c != 0 {
			return c
		}
		for i := range x.entries {
			if c := compare(x.entries[i].k, y.entries[i].k); c != 0 {
				return c
			}
			if c := compare(x.entries[i].v, y.entries[i].v); c != 0 {
				return c
			}
		}
	}
	return 0
}

func blobBytes(v any) []byte {
	switch x := v.(type) {
	case []byte:
		return x
	case hllValue:
		return x
	}
	return nil
}

func isWild(v any) bool {
	_, ok := v.(wildValue)
	return ok
}

func cmpInt(a, b int) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}
