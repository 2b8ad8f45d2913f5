package aerospiketest

import (
	"encoding/binary"
	"math"
)

// Particle types.
const (
	ptNull    = 0
	ptInteger = 1
	ptFloat   = 2
	ptString  = 3
	ptBlob    = 4
	ptBool    = 17
	ptHLL     = 18
	ptMap     = 19
	ptList    = 20
	ptGeoJSON = 23
)

// Values are held as: nil, bool, int64, float64, string, []byte (blob),
// geoJSON, hllValue, *listValue, *mapValue, and, only as operation
// arguments, infValue and wildValue.

// geoJSON is a GeoJSON string value.
type geoJSON string

// hllValue is an opaque HyperLogLog particle.
type hllValue []byte

// infValue is the msgpack INF extension: greater than every value.
type infValue struct{}

// wildValue is the msgpack WILDCARD extension: equal to every value.
type wildValue struct{}

// listValue is a list; flags bit 0x01 marks an ordered list.
type listValue struct {
	flags byte
	items []any
}

func (l *listValue) ordered() bool { return l.flags&listOrdered != 0 }

// mapValue is a map. Entries are always kept sorted by key, which is the
// index order Aerospike uses for every map type; flags carry the declared
// order (0 unordered, 1 key ordered, 3 key/value ordered) and, for
// results, the preserve-order flag 0x08.
//
// Containers reachable from a stored record are never modified: a write
// modifies copies (see shallowCopy), so a map's cache stays valid for as
// long as the map is shared.
type mapValue struct {
	flags   byte
	entries []mapEntry
	cache   mapCache
}

type mapEntry struct {
	k, v any
}

const (
	listOrdered        = 0x01
	mapKeyOrdered      = 0x01
	mapKeyValueOrder   = 0x03
	mapPreserveOrder   = 0x08
	mapPersistIndex    = 0x10
	maxIntegerParticle = 8
)

// particleType returns the particle type of a bin value.
func particleType(v any) byte {
	switch v.(type) {
	case nil:
		return ptNull
	case bool:
		return ptBool
	case int64:
		return ptInteger
	case float64:
		return ptFloat
	case string:
		return ptString
	case []byte:
		return ptBlob
	case geoJSON:
		return ptGeoJSON
	case hllValue:
		return ptHLL
	case *listValue:
		return ptList
	case *mapValue:
		return ptMap
	}
	return ptNull
}

// decodeParticle decodes a bin value sent by a client.
func decodeParticle(pt byte, data []byte) (any, byte) {
	switch pt {
	case ptNull:
		return nil, rcOK
	case ptInteger:
		if len(data) == 0 || len(data) > maxIntegerParticle {
			return nil, rcParameter
		}
		var u uint64
		for _, c := range data {
			u = u<<8 | uint64(c)
		}
		shift := uint(64 - 8*len(data))
		return int64(u<<shift) >> shift, rcOK
	case ptFloat:
		if len(data) != 8 {
			return nil, rcParameter
		}
		return math.Float64frombits(binary.BigEndian.Uint64(data)), rcOK
	case ptString:
		return string(data), rcOK
	case ptBlob:
		return append([]byte{}, data...), rcOK
	case ptBool:
		if len(data) != 1 {
			return nil, rcParameter
		}
		return data[0] != 0, rcOK
	case ptHLL:
		return hllValue(append([]byte{}, data...)), rcOK
	case ptGeoJSON:
		if len(data) < 3 {
			return nil, rcParameter
		}
		ncells := int(binary.BigEndian.Uint16(data[1:]))
		if 3+8*ncells > len(data) {
			return nil, rcParameter
		}
		return geoJSON(data[3+8*ncells:]), rcOK
	case ptList, ptMap:
		v, err := unpackAll(data)
		if err != nil {
			return nil, rcParameter
		}
		switch v.(type) {
		case *listValue:
			if pt != ptList {
				return nil, rcParameter
			}
		case *mapValue:
			if pt != ptMap {
				return nil, rcParameter
			}
		default:
			return nil, rcParameter
		}
		if !storable(v) {
			return nil, rcParameter
		}
		return v, rcOK
	}
	return nil, rcParameter
}

// storable reports whether v contains no INF or WILDCARD elements.
func storable(v any) bool {
	switch x := v.(type) {
	case infValue, wildValue:
		return false
	case *listValue:
		for _, it := range x.items {
			if !storable(it) {
				return false
			}
		}
	case *mapValue:
		for _, e := range x.entries {
			if !storable(e.k) || !storable(e.v) {
				return false
			}
		}
	}
	return true
}

// appendParticle appends the particle encoding of v and returns its type.
func appendParticle(b []byte, v any) ([]byte, byte) {
	switch x := v.(type) {
	case nil:
		return b, ptNull
	case bool:
		if x {
			return append(b, 1), ptBool
		}
		return append(b, 0), ptBool
	case int64:
		return binary.BigEndian.AppendUint64(b, uint64(x)), ptInteger
	case float64:
		return binary.BigEndian.AppendUint64(b, math.Float64bits(x)), ptFloat
	case string:
		return append(b, x...), ptString
	case []byte:
		return append(b, x...), ptBlob
	case geoJSON:
		return append(append(b, 0, 0, 0), x...), ptGeoJSON
	case hllValue:
		return append(b, x...), ptHLL
	case *listValue:
		return packValue(b, x), ptList
	case *mapValue:
		if len(x.entries) >= minCachedEncoding {
			return append(b, x.encoded()...), ptMap
		}
		return packValue(b, x), ptMap
	}
	return b, ptNull
}

// minCachedEncoding is the number of entries from which a map bin keeps its
// encoding once sent, for the next read of the unchanged map.
const minCachedEncoding = 64

// particleSize is the size of a bin value in a record's storage image
// (see appendFlat).
func particleSize(v any) int {
	switch x := v.(type) {
	case nil:
		return 0
	case bool:
		return 1
	case int64:
		return 1 + flatIntSize(x)
	case float64:
		return 8
	case string:
		return 4 + len(x)
	case []byte:
		return 4 + len(x)
	case geoJSON:
		return 4 + 3 + len(x)
	case hllValue:
		return 4 + len(x)
	case *listValue, *mapValue:
		return 4 + packedSize(x)
	}
	return 0
}

// flatIntSize is the number of bytes an integer takes in a storage image:
// the fewest of 1, 2, 4 or 8 that hold it unsigned; 8 when negative.
func flatIntSize(x int64) int {
	switch {
	case x < 0 || x > 0xffffffff:
		return 8
	case x > 0xffff:
		return 4
	case x > 0xff:
		return 2
	}
	return 1
}

// appendFlatParticle appends v as it is kept in a storage image.
func appendFlatParticle(b []byte, v any) []byte {
	switch x := v.(type) {
	case bool:
		if x {
			return append(b, 1)
		}
		return append(b, 0)
	case int64:
		n := flatIntSize(x)
		b = append(b, byte(n))
		for i := n - 1; i >= 0; i-- {
			b = append(b, byte(uint64(x)>>(8*i)))
		}
		return b
	case float64:
		return binary.BigEndian.AppendUint64(b, math.Float64bits(x))
	case string:
		b = binary.BigEndian.AppendUint32(b, uint32(len(x)))
		return append(b, x...)
	case []byte:
		b = binary.BigEndian.AppendUint32(b, uint32(len(x)))
		return append(b, x...)
	case hllValue:
		b = binary.BigEndian.AppendUint32(b, uint32(len(x)))
		return append(b, x...)
	case geoJSON:
		b = binary.BigEndian.AppendUint32(b, uint32(3+len(x)))
		return append(append(b, 0, 0, 0), x...)
	case *listValue, *mapValue:
		at := len(b)
		b = append(b, 0, 0, 0, 0)
		if m, ok := x.(*mapValue); ok && len(m.entries) >= minCachedEncoding {
			b = append(b, m.encoded()...)
		} else {
			b = packValue(b, x)
		}
		binary.BigEndian.PutUint32(b[at:], uint32(len(b)-at-4))
		return b
	}
	return b
}

// shallowCopy copies the top level of a container so that it can be
// modified in place; nested containers stay shared and are copied in turn
// by whoever descends into them to modify them (ctxStep). Other values are
// returned as they are.
func shallowCopy(v any) any {
	switch x := v.(type) {
	case *listValue:
		items := make([]any, len(x.items), len(x.items)+1)
		copy(items, x.items)
		return &listValue{flags: x.flags, items: items}
	case *mapValue:
		return x.clone()
	}
	return v
}

// deepCopy copies containers so they can be modified in place.
func deepCopy(v any) any {
	switch x := v.(type) {
	case *listValue:
		items := make([]any, len(x.items))
		for i, it := range x.items {
			items[i] = deepCopy(it)
		}
		return &listValue{flags: x.flags, items: items}
	case *mapValue:
		es := make([]mapEntry, len(x.entries))
		for i, e := range x.entries {
			es[i] = mapEntry{k: e.k, v: deepCopy(e.v)}
		}
		return &mapValue{flags: x.flags, entries: es}
	}
	return v
}

// bin is a named bin value.
type bin struct {
	name string
	val  any
	// psize is the particle size plus one, 0 until computed. Every bin of
	// a stored record has it computed (writeRecord writes the record's
	// storage image before storing it), so readers never write it.
	psize int
}

// record is an immutable stored record; writers build a new one.
type record struct {
	bins     []bin
	gen      uint16
	voidTime uint32 // seconds since 2010-01-01, 0 = never expires
	lut      int64  // last update, Unix nanoseconds, whole milliseconds
	set      string
	key      []byte // particle type followed by the user key, nil if not stored
}

func (r *record) bin(name string) (any, bool) {
	for i := range r.bins {
		if r.bins[i].name == name {
			return r.bins[i].val, true
		}
	}
	return nil, false
}

// Storage image: what a real server writes for every write of a record,
// whole, and whose length max-record-size limits. Its layout, measured
// against Aerospike 8.1 at the max-record-size boundary: a fixed header
// (flatHeaderSize bytes: digest, generation, times and flags), the bin
// count (uvarint), the set name (length byte and name) if any, the stored
// key (uvarint length, particle type, value) if any, the void time (4
// bytes) if the record expires, then per bin its name (length byte and
// name), its particle type and its particle: an integer as a size byte and
// 1, 2, 4 or 8 bytes, a float in 8 bytes, a boolean in 1, a string, blob
// or HLL as a 4-byte length and its bytes, a list or map as a 4-byte
// length and its msgpack encoding.
const flatHeaderSize = 39

// size returns the length of r's storage image without building it.
func (r *record) size() int {
	n := flatHeaderSize + uvarintLen(uint64(len(r.bins)))
	if r.set != "" {
		n += 1 + len(r.set)
	}
	if r.key != nil {
		n += uvarintLen(uint64(len(r.key))) + len(r.key)
	}
	if r.voidTime != 0 {
		n += 4
	}
	for i := range r.bins {
		b := &r.bins[i]
		if b.psize == 0 {
			b.psize = particleSize(b.val) + 1
		}
		n += 1 + len(b.name) + 1 + b.psize - 1
	}
	return n
}

// appendFlat appends r's storage image to b.
func (r *record) appendFlat(b []byte) []byte {
	at := len(b)
	b = append(b, make([]byte, flatHeaderSize)...)
	binary.BigEndian.PutUint16(b[at:], r.gen)
	binary.BigEndian.PutUint64(b[at+2:], uint64(r.lut))
	b = binary.AppendUvarint(b, uint64(len(r.bins)))
	if r.set != "" {
		b = append(append(b, byte(len(r.set))), r.set...)
	}
	if r.key != nil {
		b = append(binary.AppendUvarint(b, uint64(len(r.key))), r.key...)
	}
	if r.voidTime != 0 {
		b = binary.BigEndian.AppendUint32(b, r.voidTime)
	}
	for i := range r.bins {
		bn := &r.bins[i]
		b = append(append(b, byte(len(bn.name))), bn.name...)
		b = append(b, particleType(bn.val))
		b = appendFlatParticle(b, bn.val)
	}
	return b
}

func uvarintLen(x uint64) int {
	n := 1
	for x >= 0x80 {
		x >>= 7
		n++
	}
	return n
}

// expired reports whether the record's void time has passed.
func (r *record) expired(now uint32) bool {
	return r.voidTime != 0 && r.voidTime < now
}
