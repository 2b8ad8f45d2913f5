package aerospiketest_test

import (
	"bytes"
	"strings"
	"testing"
	"time"

	as "github.com/aerospike/aerospike-client-go/v8"
	"github.com/aerospike/aerospike-client-go/v8/types"
	"github.com/google/go-cmp/cmp"

	"github.com/beanspike/beanspike/backend/aerospike/aerospiketest"
)

// oneConnClient returns a client of srv that sends sequential commands over
// one pooled data connection, so that consecutive requests share the server's
// per-connection buffers.
func oneConnClient(t *testing.T, srv *aerospiketest.Server) *as.Client {
	t.Helper()
	policy := as.NewClientPolicy()
	policy.Timeout = 5 * time.Second
	policy.ConnectionQueueSize = 1
	policy.LimitConnectionsToQueueSize = false
	client, err := as.NewClientWithPolicy(policy, srv.Host(), srv.Port())
	if err != nil {
		t.Fatalf("NewClient: %v", err)
	}
	t.Cleanup(client.Close)
	return client
}

// TestStoredValuesOutliveRequestBuffers writes records of every value kind,
// then overwrites the connection's request buffers with other requests of
// smaller and larger sizes: the stored values must not change.
func TestStoredValuesOutliveRequestBuffers(t *testing.T) {
	srv, err := aerospiketest.NewServer()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = srv.Close() })
	client := oneConnClient(t, srv)

	wp := as.NewWritePolicy(0, 0)
	wp.SendKey = true
	value := func(c byte, n int) as.BinMap {
		s := strings.Repeat(string(c), n)
		return as.BinMap{
			"str":  s,
			"blob": bytes.Repeat([]byte{c}, n),
			"list": []any{s, bytes.Repeat([]byte{c}, 3), 7, []any{s[:1]}},
			"map":  map[any]any{s[:2]: []byte{c, c}, int64(c): s},
		}
	}
	keyA, _ := as.NewKey("test", "buf", "key-aaaa")
	want := value('a', 40)
	noErr(t, client.Put(wp, keyA, want))
	pol := as.NewMapPolicy(as.MapOrder.KEY_VALUE_ORDERED, as.MapWriteMode.UPDATE)
	_, err = client.Operate(wp, keyA, as.MapPutOp(pol, "kv", "job", []any{int64(1), "aaaa"}))
	noErr(t, err)

	// Other requests reuse the connection's buffers: smaller ones, a larger
	// one that outgrows them, smaller ones again, single and batched.
	for i, n := range []int{10, 40, 200 << 10, 3, 50} {
		k, _ := as.NewKey("test", "buf", i)
		noErr(t, client.Put(wp, k, value('z', n)))
		_, err := client.Operate(wp, k, as.MapPutOp(pol, "kv", "job", []any{int64(2), "zzzz"}))
		noErr(t, err)
		recs := []as.BatchRecordIfc{
			as.NewBatchWrite(nil, k, as.PutOp(as.NewBin("str", strings.Repeat("y", n)))),
			as.NewBatchReadOps(nil, keyA, as.GetBinOp("str")),
		}
		noErr(t, client.BatchOperate(nil, recs))
	}

	rec, err := client.Get(nil, keyA)
	noErr(t, err)
	for name, v := range want {
		if diff := cmp.Diff(normalize(v), normalize(rec.Bins[name])); diff != "" {
			t.Errorf("bin %s mismatch (-want +got):\n%s", name, diff)
		}
	}
	if diff := cmp.Diff([]as.MapPair{{Key: "job", Value: []any{1, "aaaa"}}}, rec.Bins["kv"]); diff != "" {
		t.Errorf("bin kv mismatch (-want +got):\n%s", diff)
	}
	// The stored user key, returned by scans, is intact too.
	rs, err := client.ScanAll(nil, "test", "buf")
	noErr(t, err)
	found := false
	for r := range rs.Results() {
		noErr(t, r.Err)
		if bytes.Equal(r.Record.Key.Digest(), keyA.Digest()) {
			found = true
			if r.Record.Key.Value() == nil || r.Record.Key.Value().String() != "key-aaaa" {
				t.Errorf("scanned key = %v", r.Record.Key.Value())
			}
		}
	}
	if !found {
		t.Error("scan did not return the first record")
	}
}

// normalize converts the client's integer types to int64 for comparison.
func normalize(v any) any {
	switch x := v.(type) {
	case int:
		return int64(x)
	case []any:
		out := make([]any, len(x))
		for i, it := range x {
			out[i] = normalize(it)
		}
		return out
	case map[any]any:
		out := make(map[any]any, len(x))
		for k, it := range x {
			out[normalize(k)] = normalize(it)
		}
		return out
	}
	return v
}

// TestBatchFiltersPerEntry mixes batch entries with different filters,
// repeated and not, over one connection: each entry is judged by its own.
func TestBatchFiltersPerEntry(t *testing.T) {
	srv, err := aerospiketest.NewServer()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = srv.Close() })
	client := oneConnClient(t, srv)
	var keys []*as.Key
	for i := range 6 {
		k, _ := as.NewKey("test", "bf", i)
		keys = append(keys, k)
		noErr(t, client.Put(nil, k, as.BinMap{"i": i}))
	}
	low := as.NewBatchWritePolicy()
	low.FilterExpression = as.ExpLess(as.ExpIntBin("i"), as.ExpIntVal(2))
	high := as.NewBatchWritePolicy()
	high.FilterExpression = as.ExpGreaterEq(as.ExpIntBin("i"), as.ExpIntVal(4))
	// Policies per key: low, low, high, high, low, high.
	pols := []*as.BatchWritePolicy{low, low, high, high, low, high}
	for round := range 2 {
		recs := make([]as.BatchRecordIfc, len(keys))
		for i, k := range keys {
			recs[i] = as.NewBatchWrite(pols[i], k, as.AddOp(as.NewBin("n", 1)))
		}
		noErr(t, client.BatchOperate(nil, recs))
		for i, r := range recs {
			pass := (pols[i] == low && i < 2) || (pols[i] == high && i >= 4)
			want := types.FILTERED_OUT
			if pass {
				want = types.OK
			}
			if got := r.BatchRec().ResultCode; got != want {
				t.Errorf("round %d: entry %d: code %v, want %v", round, i, got, want)
			}
		}
	}
}
