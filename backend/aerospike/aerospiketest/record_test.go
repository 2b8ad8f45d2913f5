package aerospiketest_test

import (
	"bytes"
	"fmt"
	"maps"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	as "github.com/aerospike/aerospike-client-go/v8"
	"github.com/aerospike/aerospike-client-go/v8/types"

	"github.com/beanspike/beanspike/backend/aerospike/aerospiketest"
)

func TestPutGet(t *testing.T) {
	tg := newTarget(t)
	set := tg.set(t)
	k := tg.key(t, set, "k1")
	bins := as.BinMap{
		"int":   42,
		"neg":   -7,
		"float": 1.5,
		"str":   "hello",
		"blob":  []byte{1, 2, 3},
		"bool":  true,
		"list":  []any{1, "a", 2.5, []byte{9}},
		"map":   map[any]any{"x": 1, 2: "y"},
	}
	noErr(t, tg.client.Put(nil, k, bins))
	rec, err := tg.client.Get(nil, k)
	noErr(t, err)
	if rec.Generation != 1 {
		t.Errorf("generation = %d, want 1", rec.Generation)
	}
	expectEqual(t, "bins", rec.Bins, bins)
	rec, err = tg.client.Get(nil, k, "str", "missing")
	noErr(t, err)
	expectEqual(t, "Get(str, missing)", rec.Bins, as.BinMap{"str": "hello"})
	hdr, err := tg.client.GetHeader(nil, k)
	noErr(t, err)
	if len(hdr.Bins) != 0 || hdr.Generation != 1 {
		t.Errorf("GetHeader = %v gen %d", hdr.Bins, hdr.Generation)
	}
	ok, err := tg.client.Exists(nil, k)
	noErr(t, err)
	if !ok {
		t.Error("Exists = false")
	}
	ok, err = tg.client.Exists(nil, tg.key(t, set, "nope"))
	noErr(t, err)
	if ok {
		t.Error("Exists(missing) = true")
	}
	_, err = tg.client.Get(nil, tg.key(t, set, "nope"))
	wantCode(t, err, types.KEY_NOT_FOUND_ERROR)
}

func TestKeyTypesAndSendKey(t *testing.T) {
	tg := newTarget(t)
	set := tg.set(t)
	wp := as.NewWritePolicy(0, 0)
	wp.SendKey = true
	for _, kv := range []any{7, "seven", []byte("7")} {
		k := tg.key(t, set, kv)
		noErr(t, tg.client.Put(wp, k, as.BinMap{"v": 1}))
		rec, err := tg.client.Get(nil, k)
		noErr(t, err)
		if rec.Bins["v"] != 1 {
			t.Errorf("key %v: bins %v", kv, rec.Bins)
		}
	}
}

func TestGenerationAndUpdate(t *testing.T) {
	tg := newTarget(t)
	set := tg.set(t)
	k := tg.key(t, set, "g")
	noErr(t, tg.client.Put(nil, k, as.BinMap{"a": 1, "b": 2}))
	noErr(t, tg.client.Put(nil, k, as.BinMap{"a": 10, "c": 3}))
	rec, err := tg.client.Get(nil, k)
	noErr(t, err)
	expectEqual(t, "after update", rec.Bins, as.BinMap{"a": 10, "b": 2, "c": 3})
	if rec.Generation != 2 {
		t.Fatalf("after update: generation %d, want 2", rec.Generation)
	}

	wp := as.NewWritePolicy(1, 0)
	wp.GenerationPolicy = as.EXPECT_GEN_EQUAL
	wantCode(t, tg.client.Put(wp, k, as.BinMap{"a": 0}), types.GENERATION_ERROR)
	wp.Generation = 2
	noErr(t, tg.client.Put(wp, k, as.BinMap{"a": 0}))
	wantCode(t, tg.client.Put(wp, k, as.BinMap{"a": 0}), types.GENERATION_ERROR)

	wp = as.NewWritePolicy(3, 0)
	wp.GenerationPolicy = as.EXPECT_GEN_GT
	wantCode(t, tg.client.Put(wp, k, as.BinMap{"a": 0}), types.GENERATION_ERROR)
	wp.Generation = 4
	noErr(t, tg.client.Put(wp, k, as.BinMap{"a": 0}))

	// EXPECT_GEN_EQUAL with generation 0 creates a missing record.
	wp = as.NewWritePolicy(0, 0)
	wp.GenerationPolicy = as.EXPECT_GEN_EQUAL
	noErr(t, tg.client.Put(wp, tg.key(t, set, "new"), as.BinMap{"a": 1}))
	wp.Generation = 5
	wantCode(t, tg.client.Put(wp, tg.key(t, set, "new2"), as.BinMap{"a": 1}), types.GENERATION_ERROR)
}

func TestRecordExistsActions(t *testing.T) {
	tg := newTarget(t)
	set := tg.set(t)
	k := tg.key(t, set, "r")
	wp := as.NewWritePolicy(0, 0)

	wp.RecordExistsAction = as.UPDATE_ONLY
	wantCode(t, tg.client.Put(wp, k, as.BinMap{"a": 1}), types.KEY_NOT_FOUND_ERROR)
	wp.RecordExistsAction = as.REPLACE_ONLY
	wantCode(t, tg.client.Put(wp, k, as.BinMap{"a": 1}), types.KEY_NOT_FOUND_ERROR)

	wp.RecordExistsAction = as.CREATE_ONLY
	noErr(t, tg.client.Put(wp, k, as.BinMap{"a": 1, "b": 2}))
	wantCode(t, tg.client.Put(wp, k, as.BinMap{"a": 1}), types.KEY_EXISTS_ERROR)

	wp.RecordExistsAction = as.UPDATE_ONLY
	noErr(t, tg.client.Put(wp, k, as.BinMap{"c": 3}))
	rec, err := tg.client.Get(nil, k)
	noErr(t, err)
	expectEqual(t, "after UPDATE_ONLY", rec.Bins, as.BinMap{"a": 1, "b": 2, "c": 3})

	wp.RecordExistsAction = as.REPLACE
	noErr(t, tg.client.Put(wp, k, as.BinMap{"d": 4}))
	rec, err = tg.client.Get(nil, k)
	noErr(t, err)
	expectEqual(t, "after REPLACE", rec.Bins, as.BinMap{"d": 4})
	if rec.Generation != 3 {
		t.Fatalf("after REPLACE: generation %d, want 3", rec.Generation)
	}
	wp.RecordExistsAction = as.REPLACE_ONLY
	noErr(t, tg.client.Put(wp, k, as.BinMap{"e": 5}))
	rec, err = tg.client.Get(nil, k)
	noErr(t, err)
	expectEqual(t, "after REPLACE_ONLY", rec.Bins, as.BinMap{"e": 5})
	wp.RecordExistsAction = as.REPLACE
	noErr(t, tg.client.Put(wp, tg.key(t, set, "r2"), as.BinMap{"x": 1}))
}

func TestDeleteAndTouch(t *testing.T) {
	tg := newTarget(t)
	set := tg.set(t)
	k := tg.key(t, set, "d")
	existed, err := tg.client.Delete(nil, k)
	noErr(t, err)
	if existed {
		t.Error("Delete(missing) existed = true")
	}
	wantCode(t, tg.client.Touch(nil, k), types.KEY_NOT_FOUND_ERROR)
	noErr(t, tg.client.Put(nil, k, as.BinMap{"a": 1}))
	noErr(t, tg.client.Touch(nil, k))
	rec, err := tg.client.Get(nil, k)
	noErr(t, err)
	if rec.Generation != 2 {
		t.Errorf("generation after touch = %d, want 2", rec.Generation)
	}
	// Durable deletes are an Enterprise feature: refused, and the record
	// stays; other writes ignore the flag.
	wp := as.NewWritePolicy(0, 0)
	wp.DurableDelete = true
	_, err = tg.client.Delete(wp, k)
	wantCode(t, err, types.ENTERPRISE_ONLY)
	_, err = tg.client.Delete(wp, tg.key(t, set, "missing"))
	wantCode(t, err, types.ENTERPRISE_ONLY)
	_, err = tg.client.Operate(wp, k, as.DeleteOp())
	wantCode(t, err, types.ENTERPRISE_ONLY)
	noErr(t, tg.client.Put(wp, k, as.BinMap{"b": 2}))
	rec, err = tg.client.Get(nil, k)
	noErr(t, err)
	expectEqual(t, "after durable deletes", rec.Bins, as.BinMap{"a": 1, "b": 2})
	existed, err = tg.client.Delete(nil, k)
	noErr(t, err)
	if !existed {
		t.Error("Delete existed = false")
	}
	_, err = tg.client.Get(nil, k)
	wantCode(t, err, types.KEY_NOT_FOUND_ERROR)

	// Removing the last bin deletes the record.
	noErr(t, tg.client.Put(nil, k, as.BinMap{"a": 1}))
	noErr(t, tg.client.Put(nil, k, as.BinMap{"a": nil}))
	_, err = tg.client.Get(nil, k)
	wantCode(t, err, types.KEY_NOT_FOUND_ERROR)
}

func TestBinErrors(t *testing.T) {
	tg := newTarget(t)
	set := tg.set(t)
	k := tg.key(t, set, "e")
	wantCode(t, tg.client.Put(nil, k, as.BinMap{strings.Repeat("b", 16): 1}), types.BIN_NAME_TOO_LONG)
	noErr(t, tg.client.Put(nil, k, as.BinMap{strings.Repeat("b", 15): 1, "s": "str"}))
	wantCode(t, tg.client.AddBins(nil, k, as.NewBin("s", 1)), types.BIN_TYPE_ERROR)
	wantCode(t, tg.client.AppendBins(nil, k, as.NewBin(strings.Repeat("b", 15), "x")), types.BIN_TYPE_ERROR)

	big := bytes.Repeat([]byte{'x'}, 9<<20)
	wp := as.NewWritePolicy(0, 0)
	wp.TotalTimeout = 10 * time.Second
	wp.SocketTimeout = 10 * time.Second
	wantCode(t, tg.client.Put(wp, tg.key(t, set, "big"), as.BinMap{"b": big}), types.RECORD_TOO_BIG)
	_, err := tg.client.Get(nil, tg.key(t, set, "big"))
	wantCode(t, err, types.KEY_NOT_FOUND_ERROR)
}

func TestArithmetic(t *testing.T) {
	tg := newTarget(t)
	set := tg.set(t)
	k := tg.key(t, set, "a")
	noErr(t, tg.client.AddBins(nil, k, as.NewBin("n", 5), as.NewBin("f", 1.25)))
	noErr(t, tg.client.AddBins(nil, k, as.NewBin("n", -2), as.NewBin("f", 1.0)))
	noErr(t, tg.client.AppendBins(nil, k, as.NewBin("s", "mid")))
	noErr(t, tg.client.AppendBins(nil, k, as.NewBin("s", "-end")))
	noErr(t, tg.client.PrependBins(nil, k, as.NewBin("s", "start-")))
	rec, err := tg.client.Get(nil, k)
	noErr(t, err)
	want := as.BinMap{"n": 3, "f": 2.25, "s": "start-mid-end"}
	expectEqual(t, "bins", rec.Bins, want)
}

func TestOperateBasic(t *testing.T) {
	tg := newTarget(t)
	set := tg.set(t)
	k := tg.key(t, set, "o")
	rec, err := tg.client.Operate(nil, k,
		as.PutOp(as.NewBin("a", 1)),
		as.AddOp(as.NewBin("a", 4)),
		as.AppendOp(as.NewBin("s", "x")),
		as.PrependOp(as.NewBin("s", "w")),
		as.GetOp(),
	)
	noErr(t, err)
	expectEqual(t, "operate bins", rec.Bins, as.BinMap{"a": 5, "s": "wx"})
	if rec.Generation != 1 {
		t.Errorf("generation %d, want 1", rec.Generation)
	}
	rec, err = tg.client.Operate(nil, k, as.TouchOp(), as.GetHeaderOp())
	noErr(t, err)
	if rec.Generation != 2 {
		t.Errorf("generation after touch %d, want 2", rec.Generation)
	}
	_, err = tg.client.Operate(nil, k, as.DeleteOp())
	noErr(t, err)
	_, err = tg.client.Get(nil, k)
	wantCode(t, err, types.KEY_NOT_FOUND_ERROR)

	_, err = tg.client.Operate(nil, tg.key(t, set, "missing"), as.GetBinOp("a"))
	wantCode(t, err, types.KEY_NOT_FOUND_ERROR)
	_, err = tg.client.Operate(nil, tg.key(t, set, "missing"), as.TouchOp())
	wantCode(t, err, types.KEY_NOT_FOUND_ERROR)

	// RespondPerEachOp gives every op a result.
	wp := as.NewWritePolicy(0, 0)
	wp.RespondPerEachOp = true
	rec, err = tg.client.Operate(wp, k, as.PutOp(as.NewBin("a", 1)), as.AddOp(as.NewBin("a", 2)), as.GetBinOp("a"))
	noErr(t, err)
	expectEqual(t, "respond-all-ops results", rec.Bins["a"], as.OpResults{nil, nil, 3})
}

func TestTTL(t *testing.T) {
	tg := newTarget(t)
	set := tg.set(t)
	k := tg.key(t, set, "t")
	wp := as.NewWritePolicy(0, 100)
	noErr(t, tg.client.Put(wp, k, as.BinMap{"a": 1}))
	rec, err := tg.client.Get(nil, k)
	noErr(t, err)
	if rec.Expiration < 98 || rec.Expiration > 100 {
		t.Errorf("expiration %d, want ~100", rec.Expiration)
	}
	// -2: do not change the TTL.
	wp = as.NewWritePolicy(0, as.TTLDontUpdate)
	noErr(t, tg.client.Put(wp, k, as.BinMap{"a": 2}))
	rec, err = tg.client.Get(nil, k)
	noErr(t, err)
	if rec.Expiration < 98 || rec.Expiration > 100 {
		t.Errorf("expiration after TTLDontUpdate %d, want ~100", rec.Expiration)
	}
	// -1: never expire.
	wp = as.NewWritePolicy(0, as.TTLDontExpire)
	noErr(t, tg.client.Put(wp, k, as.BinMap{"a": 3}))
	rec, err = tg.client.Get(nil, k)
	noErr(t, err)
	if rec.Expiration != as.TTLDontExpire {
		t.Errorf("expiration after TTLDontExpire %d, want %d", rec.Expiration, uint32(as.TTLDontExpire))
	}
	wp = as.NewWritePolicy(0, 50)
	noErr(t, tg.client.Touch(wp, k))
	rec, err = tg.client.Get(nil, k)
	noErr(t, err)
	if rec.Expiration < 48 || rec.Expiration > 50 {
		t.Errorf("expiration after touch %d, want ~50", rec.Expiration)
	}
}

func TestTTLExpiry(t *testing.T) {
	tg := newTarget(t)
	tg.needClock(t)
	set := tg.set(t)
	k := tg.key(t, set, "x")
	noErr(t, tg.client.Put(as.NewWritePolicy(0, 10), k, as.BinMap{"a": 1}))
	noErr(t, tg.client.Put(nil, tg.key(t, set, "forever"), as.BinMap{"a": 1}))
	tg.srv.AdvanceClock(5 * time.Second)
	_, err := tg.client.Get(nil, k)
	noErr(t, err)
	tg.srv.AdvanceClock(7 * time.Second)
	_, err = tg.client.Get(nil, k)
	wantCode(t, err, types.KEY_NOT_FOUND_ERROR)
	_, err = tg.client.Get(nil, tg.key(t, set, "forever"))
	noErr(t, err)
	// An expired record can be created again.
	wp := as.NewWritePolicy(0, 0)
	wp.RecordExistsAction = as.CREATE_ONLY
	noErr(t, tg.client.Put(wp, k, as.BinMap{"a": 2}))
	rec, err := tg.client.Get(nil, k)
	noErr(t, err)
	if rec.Generation != 1 {
		t.Errorf("recreated generation %d, want 1", rec.Generation)
	}
}

// TestMaxRecordSize checks the namespace's max-record-size as a real server
// applies it: reported in bytes by namespace/<ns> (1 MiB unless
// configured), and compared with the record's storage image, whose size was
// measured on a real server: a blob bin named "b" of a record in a set,
// without a stored key or TTL, may hold max-record-size less 47 bytes less
// the set name and its length byte.
func TestMaxRecordSize(t *testing.T) {
	tg := newTarget(t)
	v, ok := infoField(tg.info(t, "namespace/"+tg.ns), "max-record-size")
	if !ok {
		t.Fatal("namespace info has no max-record-size")
	}
	limit, err := strconv.Atoi(v)
	noErr(t, err)
	if !tg.real() && limit != aerospiketest.DefaultMaxRecordSize {
		t.Errorf("max-record-size %d, want the default %d", limit, aerospiketest.DefaultMaxRecordSize)
	}
	t.Logf("max-record-size %d", limit)
	set := tg.set(t)
	wp := as.NewWritePolicy(0, 0)
	wp.TotalTimeout = 10 * time.Second
	wp.RecordExistsAction = as.REPLACE
	blob := limit - 47 - 1 - len(set)
	cases := []struct {
		name  string
		extra as.BinMap // beside "b"
		cost  int       // bytes the extra bins take
	}{
		{"blob", nil, 0},
		{"small int", as.BinMap{"i": 255}, 5},
		{"int", as.BinMap{"i": 65536}, 8},
		{"negative int", as.BinMap{"i": -1}, 12},
		{"float", as.BinMap{"f": 1.5}, 11},
		{"bool", as.BinMap{"t": true}, 4},
		{"string", as.BinMap{"s": "0123456789"}, 17},
		{"list", as.BinMap{"l": []any{}}, 8},
	}
	for i, c := range cases {
		bins := func(n int) as.BinMap {
			b := as.BinMap{"b": bytes.Repeat([]byte{1}, n)}
			maps.Copy(b, c.extra)
			return b
		}
		k := tg.key(t, set, i)
		noErr(t, tg.client.Put(wp, k, bins(blob-c.cost)))
		wantCode(t, tg.client.Put(wp, k, bins(blob-c.cost+1)), types.RECORD_TOO_BIG)
	}
	// A stored key and a TTL take room too.
	wk := as.NewWritePolicy(0, 100)
	wk.TotalTimeout = 10 * time.Second
	wk.SendKey = true
	k := tg.key(t, set, "kkkkkkkkkk")
	noErr(t, tg.client.Put(wk, k, as.BinMap{"b": bytes.Repeat([]byte{1}, blob-12-4)}))
	wantCode(t, tg.client.Put(wk, k, as.BinMap{"b": bytes.Repeat([]byte{1}, blob-12-4+1)}), types.RECORD_TOO_BIG)
}

// TestSetNameLength checks that, as on a real server, a write creating a
// record in a set whose name is over 63 bytes fails with PARAMETER_ERROR.
func TestSetNameLength(t *testing.T) {
	tg := newTarget(t)
	for _, n := range []int{63, 64} {
		k := tg.key(t, strings.Repeat("s", n), tg.set(t))
		err := tg.client.Put(nil, k, as.BinMap{"a": 1})
		_, getErr := tg.client.Get(nil, k)
		if n <= 63 {
			noErr(t, err)
			noErr(t, getErr)
			_, _ = tg.client.Delete(nil, k)
			continue
		}
		wantCode(t, err, types.PARAMETER_ERROR)
		wantCode(t, getErr, types.KEY_NOT_FOUND_ERROR)
	}
}

// TestSetNameCount checks that a namespace holds at most 4,095 set names:
// a write that would create a record in one more set fails with
// PARAMETER_ERROR, while the sets already named still take records. Set
// names are only released by a restart, so against a real server the test
// runs only when AEROSPIKE_EXHAUST_SETS=1 (restart the server after it).
func TestSetNameCount(t *testing.T) {
	tg := newTarget(t)
	if tg.real() && os.Getenv("AEROSPIKE_EXHAUST_SETS") != "1" {
		t.Skip("declared missing capability: exhausting a real server's set names needs AEROSPIKE_EXHAUST_SETS=1 and a restart after")
	}
	setsNow := func() int { return strings.Count(tg.info(t, "sets/"+tg.ns), "set=") }
	have := setsNow()
	prefix := tg.set(t)
	wp := as.NewWritePolicy(0, 0)
	wp.MaxRetries = 0
	var refused error
	created := 0
	for i := 0; i < 4096 && refused == nil; i++ {
		refused = tg.client.Put(wp, tg.key(t, fmt.Sprintf("%s_%d", prefix, i), 1), as.BinMap{"a": 1})
		if refused == nil {
			created++
		}
	}
	t.Logf("%d set names before, %d created", have, created)
	wantCode(t, refused, types.PARAMETER_ERROR)
	if n := setsNow(); n != 4095 || have+created != 4095 {
		t.Errorf("refused at %d set names (%d listed), want 4095", have+created, n)
	}
	noErr(t, tg.client.Put(wp, tg.key(t, prefix+"_0", 2), as.BinMap{"a": 1}))
}

// TestNsupPeriod checks that namespace/<ns> reports the namespace's
// nsup-period and allow-ttl-without-nsup as configured: on the in-repo
// server by NamespaceConfig, on a real one by its configuration file.
func TestNsupPeriod(t *testing.T) {
	want := aerospiketest.NamespaceConfig{Name: "test", NsupPeriod: 7 * time.Second}
	tg := newTarget(t, aerospiketest.WithNamespace(want))
	wantPeriod, wantAllow := "7", "false"
	if tg.real() {
		wantPeriod = nodeConfig(t, tg, "nsup-period", "0")
		wantAllow = nodeConfig(t, tg, "allow-ttl-without-nsup", "false")
	}
	answer := tg.info(t, "namespace/"+tg.ns)
	period, _ := infoField(answer, "nsup-period")
	allow, _ := infoField(answer, "allow-ttl-without-nsup")
	if period != wantPeriod || allow != wantAllow {
		t.Errorf("nsup-period=%s allow-ttl-without-nsup=%s, want %s and %s", period, allow, wantPeriod, wantAllow)
	}
}
