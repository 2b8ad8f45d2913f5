package aerospiketest

import (
	"reflect"
	"testing"
	"time"
)

// TestMapGetByKeyShortcut checks the by-key shortcut of expression CALLs
// against the general CDT path for every return type and kind of key.
func TestMapGetByKeyShortcut(t *testing.T) {
	rec := sampleRecord()
	rec.bins = append(rec.bins, bin{name: "n", val: &mapValue{flags: mapKeyValueOrder, entries: []mapEntry{
		{"a", nil}, {"b", &listValue{items: []any{int64(1), "x"}}}, {"c", int64(7)},
	}}})
	env := &expEnv{rec: rec, now: time.Unix(100, 0), nowVoid: 5}
	rts := []any{int64(rtValue), int64(rtKey), int64(rtCount), int64(rtValue | rtInverted), int64(rtKeyValue),
		int64(rtIndex), int64(rtNone), int64(99), "value"}
	keys := []any{"a", "b", "c", "zz", int64(1), wildValue{}, nil}
	for _, binName := range []string{"m", "n", "l", "i"} {
		for _, rt := range rts {
			for _, k := range keys {
				n := &expNode{op: expCall, cdtCode: mapGetByKey, args: []*expNode{
					{val: rt}, {val: k}, {op: expBin, typ: etMap, name: binName},
				}}
				got, gotOK := n.evalCall(env)
				binVal, ok := rec.bin(binName)
				var want any
				wantOK := false
				if ok {
					want, wantOK = n.evalCallGeneric(binVal, []any{rt, k})
				}
				if _, isMap := binVal.(*mapValue); !isMap {
					// A bin of another type fails the typed bin read.
					want, wantOK = nil, false
				}
				if gotOK != wantOK || (gotOK && compare(got, want) != 0) || (!gotOK && !reflect.DeepEqual(got, want)) {
					t.Errorf("bin %s rt %v key %#v: got %#v %v, want %#v %v", binName, rt, k, got, gotOK, want, wantOK)
				}
			}
		}
	}
}
