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

// particleSize is the stored size of a bin value, used for record sizes.
func particleSize(v any) int {
	switch x := v.(type) {
	case nil:
		return 0
	case bool:
		return 1
	case int64, float64:
		return 8
	case string:
		return len(x)
	case []byte:
		return len(x)
	case geoJSON:
		return len(x) + 3
	case hllValue:
		return len(x)
	case *listValue, *mapValue:
		return packedSize(x)
	}
	return 0
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
	// a stored record has it computed (writeRecord checks the record size
	// before storing it), so readers never write it.
	psize int
}

// record is an immutable stored record; writers build a new one.
type record struct {
	bins     []bin
	gen      uint16
	voidTime uint32 // seconds since 2010-01-01, 0 = never expires
	lut      int64  // last update, Unix nanoseconds
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

// Record size model: a fixed 16-byte header (generation, void time, last
// update time, bin count), the set name and stored key, and per bin its name,
// a 2-byte type/length header and the particle size. It tracks the real
// storage format closely enough for write-block limits and size expressions.
const recordOverhead = 16

func (r *record) size() int {
	n := recordOverhead + len(r.set) + len(r.key)
	for i := range r.bins {
		b := &r.bins[i]
		if b.psize == 0 {
			b.psize = particleSize(b.val) + 1
		}
		n += len(b.name) + 2 + b.psize - 1
	}
	return n
}

// expired reports whether the record's void time has passed.
func (r *record) expired(now uint32) bool {
	return r.voidTime != 0 && r.voidTime < now
}
