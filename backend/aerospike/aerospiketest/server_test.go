package aerospiketest_test

import (
	"bytes"
	"errors"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	as "github.com/aerospike/aerospike-client-go/v8"
	"github.com/aerospike/aerospike-client-go/v8/types"

	"github.com/beanspike/beanspike/backend/aerospike/aerospiketest"
)

// serverOnly returns a target on the in-repo server; these tests exercise
// its test-only API (faults, clock, configuration).
func serverOnly(t *testing.T, opts ...aerospiketest.Option) *target {
	t.Helper()
	srv, err := aerospiketest.NewServer(opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = srv.Close() })
	client, err := as.NewClient(srv.Host(), srv.Port())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(client.Close)
	return &target{client: client, srv: srv, ns: "test"}
}

func TestConnectTime(t *testing.T) {
	srv, err := aerospiketest.NewServer()
	noErr(t, err)
	defer srv.Close()
	start := time.Now()
	client, err := as.NewClient(srv.Host(), srv.Port())
	elapsed := time.Since(start)
	noErr(t, err)
	defer client.Close()
	t.Logf("NewClient connected in %v", elapsed)
	if elapsed > 2*time.Second {
		t.Errorf("NewClient took %v", elapsed)
	}
	if !client.IsConnected() {
		t.Error("client not connected")
	}
}

// serverGoroutines counts goroutines running server code.
func serverGoroutines() int {
	buf := make([]byte, 1<<20)
	n := runtime.Stack(buf, true)
	count := 0
	for _, g := range strings.Split(string(buf[:n]), "\n\n") {
		if strings.Contains(g, "aerospiketest.(*Server)") {
			count++
		}
	}
	return count
}

func TestCloseNoLeaks(t *testing.T) {
	srv, err := aerospiketest.NewServer()
	noErr(t, err)
	client, err := as.NewClient(srv.Host(), srv.Port())
	noErr(t, err)
	k, _ := as.NewKey("test", "s", 1)
	noErr(t, client.Put(nil, k, as.BinMap{"a": 1}))
	if serverGoroutines() == 0 {
		t.Fatal("no server goroutines while running")
	}
	// Close with the client still connected.
	noErr(t, srv.Close())
	noErr(t, srv.Close())
	// Goroutines that returned may take a moment to leave the stack dump.
	deadline := time.Now().Add(time.Second)
	for serverGoroutines() != 0 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if n := serverGoroutines(); n != 0 {
		t.Errorf("%d server goroutines after Close", n)
	}
	p := as.NewPolicy()
	p.MaxRetries = 0
	p.TotalTimeout = 500 * time.Millisecond
	if _, err := client.Get(p, k); err == nil {
		t.Error("Get succeeded after server Close")
	}
	client.Close()
}

func TestNamespaces(t *testing.T) {
	tg := serverOnly(t,
		aerospiketest.WithNamespace(aerospiketest.NamespaceConfig{Name: "test"}),
		aerospiketest.WithNamespace(aerospiketest.NamespaceConfig{Name: "small", MaxRecordSize: 1024, DefaultTTL: time.Hour, NsupPeriod: time.Minute}),
	)
	k1, _ := as.NewKey("test", "s", 1)
	k2, _ := as.NewKey("small", "s", 1)
	noErr(t, tg.client.Put(nil, k1, as.BinMap{"a": 1}))
	noErr(t, tg.client.Put(nil, k2, as.BinMap{"a": 2}))
	r1, err := tg.client.Get(nil, k1)
	noErr(t, err)
	r2, err := tg.client.Get(nil, k2)
	noErr(t, err)
	if r1.Bins["a"] != 1 || r2.Bins["a"] != 2 {
		t.Errorf("bins %v %v", r1.Bins, r2.Bins)
	}
	if r1.Expiration != as.TTLDontExpire || r2.Expiration < 3590 || r2.Expiration > 3600 {
		t.Errorf("expirations %d %d", r1.Expiration, r2.Expiration)
	}
	wantCode(t, tg.client.Put(nil, k2, as.BinMap{"b": bytes.Repeat([]byte{1}, 2048)}), types.RECORD_TOO_BIG)
	k3, _ := as.NewKey("nope", "s", 1)
	_, err = tg.client.Get(nil, k3)
	wantCode(t, err, types.INVALID_NAMESPACE)
	if tg.srv.RecordCount("small") != 1 || tg.srv.RecordCount("nope") != -1 {
		t.Errorf("RecordCount small=%d nope=%d", tg.srv.RecordCount("small"), tg.srv.RecordCount("nope"))
	}

	node := tg.client.GetNodes()[0]
	info, err := node.RequestInfo(as.NewInfoPolicy(), "namespaces", "namespace/small", "build")
	noErr(t, err)
	if info["namespaces"] != "test;small" || !strings.HasPrefix(info["build"], "8.") {
		t.Errorf("info %v", info)
	}
	for field, want := range map[string]string{"objects": "1", "max-record-size": "1024", "default-ttl": "3600", "nsup-period": "60", "allow-ttl-without-nsup": "false"} {
		if got, _ := infoField(info["namespace/small"], field); got != want {
			t.Errorf("namespace/small %s = %q, want %q", field, got, want)
		}
	}
}

// TestSetConfig changes namespace settings at run time, as set-config does
// on a real server.
func TestSetConfig(t *testing.T) {
	tg := serverOnly(t)
	k, _ := as.NewKey("test", "s", 1)
	big := as.BinMap{"b": bytes.Repeat([]byte{1}, 2<<20)}
	wantCode(t, tg.client.Put(nil, k, big), types.RECORD_TOO_BIG)
	for _, cmd := range []string{
		"set-config:context=namespace;id=test;max-record-size=8388608",
		"set-config:context=namespace;id=test;nsup-period=10",
		"set-config:context=namespace;id=test;allow-ttl-without-nsup=true",
	} {
		if got := tg.info(t, cmd); got != "ok" {
			t.Fatalf("%s: %q", cmd, got)
		}
	}
	wp := as.NewWritePolicy(0, 0)
	wp.TotalTimeout = 10 * time.Second
	noErr(t, tg.client.Put(wp, k, big))
	answer := tg.info(t, "namespace/test")
	for field, want := range map[string]string{"max-record-size": "8388608", "nsup-period": "10", "allow-ttl-without-nsup": "true"} {
		if got, _ := infoField(answer, field); got != want {
			t.Errorf("%s = %q, want %q", field, got, want)
		}
	}
	for _, cmd := range []string{
		"set-config:context=namespace;id=test;max-record-size=8388609",
		"set-config:context=namespace;id=test;nsup-period=-1",
		"set-config:context=namespace;id=nope;nsup-period=1",
		"set-config:context=namespace;id=test;replication-factor=2",
	} {
		if got := tg.info(t, cmd); !strings.HasPrefix(got, "ERROR") {
			t.Errorf("%s: %q, want an error", cmd, got)
		}
	}
}

// TestTTLWithoutNsup checks that a namespace with nsup-period 0, the
// default, refuses writes that set a TTL with FORBIDDEN (22), as a real
// server does, unless allow-ttl-without-nsup is set; never-expire and
// unchanged TTLs, and reads, are accepted.
func TestTTLWithoutNsup(t *testing.T) {
	tg := serverOnly(t)
	k, _ := as.NewKey("test", "s", 1)
	wantCode(t, tg.client.Put(as.NewWritePolicy(0, 100), k, as.BinMap{"a": 1}), types.FAIL_FORBIDDEN)
	for _, ttl := range []uint32{0, as.TTLDontExpire, as.TTLDontUpdate} {
		noErr(t, tg.client.Put(as.NewWritePolicy(0, ttl), k, as.BinMap{"a": 1}))
	}
	wantCode(t, tg.client.Touch(as.NewWritePolicy(0, 50), k), types.FAIL_FORBIDDEN)
	_, err := tg.client.Operate(as.NewWritePolicy(0, 50), k, as.GetBinOp("a"))
	noErr(t, err)

	tg = serverOnly(t, aerospiketest.WithNamespace(aerospiketest.NamespaceConfig{Name: "test", AllowTTLWithoutNsup: true}))
	noErr(t, tg.client.Put(as.NewWritePolicy(0, 100), k, as.BinMap{"a": 1}))
}

func TestOptionsValidation(t *testing.T) {
	bad := []aerospiketest.Option{
		aerospiketest.WithNamespace(aerospiketest.NamespaceConfig{Name: "t", MaxRecordSize: aerospiketest.MaxMaxRecordSize + 1}),
		aerospiketest.WithNamespace(aerospiketest.NamespaceConfig{Name: "t", NsupPeriod: 1500 * time.Millisecond}),
		aerospiketest.WithNamespace(aerospiketest.NamespaceConfig{Name: "t", NsupPeriod: -time.Second}),
		aerospiketest.WithNamespace(aerospiketest.NamespaceConfig{Name: "t", DefaultTTL: time.Hour}),
		aerospiketest.WithNamespace(aerospiketest.NamespaceConfig{Name: ""}),
		aerospiketest.WithNamespace(aerospiketest.NamespaceConfig{Name: strings.Repeat("n", 32)}),
		aerospiketest.WithNamespace(aerospiketest.NamespaceConfig{Name: "a:b"}),
		aerospiketest.WithBuild("5.0"),
		aerospiketest.WithPendingLimit(-1),
		aerospiketest.WithNodeName(""),
	}
	for i, o := range bad {
		if srv, err := aerospiketest.NewServer(o); err == nil {
			srv.Close()
			t.Errorf("option %d accepted", i)
		}
	}
}

func TestOldBuild(t *testing.T) {
	tg := serverOnly(t, aerospiketest.WithBuild("7.2.0.1"))
	k, _ := as.NewKey("test", "s", 1)
	noErr(t, tg.client.Put(nil, k, as.BinMap{"i": 5}))
	task, err := tg.client.CreateIndex(nil, "test", "s", "idx_old", "i", as.NUMERIC)
	noErr(t, err)
	noErr(t, <-task.OnComplete())
	stmt := as.NewStatement("test", "s")
	noErr(t, stmt.SetFilter(as.NewEqualFilter("i", 5)))
	rs, err := tg.client.QueryPartitions(nil, stmt, as.NewPartitionFilterAll())
	noErr(t, err)
	n := 0
	for res := range rs.Results() {
		noErr(t, res.Err)
		n++
	}
	if n != 1 {
		t.Errorf("query returned %d records", n)
	}
	noErr(t, tg.client.DropIndex(nil, "test", "s", "idx_old"))
}

// TestCompressedRequests checks that, as on a Community Edition server, a
// compressed request is refused with ENTERPRISE_ONLY and not executed,
// while the connection goes on serving; asking for compressed responses is
// not an error (they come uncompressed).
func TestCompressedRequests(t *testing.T) {
	tg := newTarget(t)
	set := tg.set(t)
	k := tg.key(t, set, "c")
	wp := as.NewWritePolicy(0, 0)
	wp.UseCompression = true
	wp.MaxRetries = 0
	payload := strings.Repeat("compressible ", 200) // over the client's compression threshold
	wantCode(t, tg.client.Put(wp, k, as.BinMap{"s": payload}), types.ENTERPRISE_ONLY)
	ok, err := tg.client.Exists(nil, k)
	noErr(t, err)
	if ok {
		t.Fatal("a refused compressed write was executed")
	}
	bp := as.NewBatchPolicy()
	bp.UseCompression = true
	bp.MaxRetries = 0
	var keys []*as.Key
	for i := range 50 {
		keys = append(keys, tg.key(t, set, i))
	}
	_, err = tg.client.BatchGet(bp, keys)
	wantCode(t, err, types.ENTERPRISE_ONLY)

	noErr(t, tg.client.Put(nil, k, as.BinMap{"s": payload}))
	p := as.NewPolicy()
	p.UseCompression = true
	rec, err := tg.client.Get(p, k)
	noErr(t, err)
	if rec.Bins["s"] != payload {
		t.Error("payload mismatch")
	}
}

func TestFaultFail(t *testing.T) {
	tg := serverOnly(t)
	set := tg.set(t)
	h, err := tg.srv.Inject(aerospiketest.Fault{Action: aerospiketest.FaultFail, Command: aerospiketest.WriteCommand, Set: set, Nth: 2, Code: aerospiketest.CodeDeviceOverload})
	noErr(t, err)
	wp := as.NewWritePolicy(0, 0)
	wp.MaxRetries = 0
	k, _ := as.NewKey("test", set, 1)
	noErr(t, tg.client.Put(wp, k, as.BinMap{"a": 1}))
	wantCode(t, tg.client.Put(wp, k, as.BinMap{"a": 2}), types.DEVICE_OVERLOAD)
	noErr(t, tg.client.Put(wp, k, as.BinMap{"a": 3}))
	// Reads and other sets do not match.
	_, err = tg.client.Get(nil, k)
	noErr(t, err)
	if h.Seen() != 3 || h.Fired() != 1 {
		t.Errorf("seen %d fired %d, want 3 and 1", h.Seen(), h.Fired())
	}
	rec, err := tg.client.Get(nil, k)
	noErr(t, err)
	if rec.Bins["a"] != 3 || rec.Generation != 2 {
		t.Errorf("record %v gen %d", rec.Bins, rec.Generation)
	}
	if tg.srv.Stats().FaultsFired != 1 {
		t.Errorf("FaultsFired %d", tg.srv.Stats().FaultsFired)
	}

	h, err = tg.srv.Inject(aerospiketest.Fault{Action: aerospiketest.FaultFail, Command: aerospiketest.BatchCommand, Code: aerospiketest.CodeTimeout, Times: -1})
	noErr(t, err)
	bp := as.NewBatchPolicy()
	bp.MaxRetries = 0
	k2, _ := as.NewKey("test", set, 2)
	_, err = tg.client.BatchGet(bp, []*as.Key{k, k2})
	wantCode(t, err, types.TIMEOUT)
	h.Remove()
	_, err = tg.client.BatchGet(bp, []*as.Key{k, k2})
	noErr(t, err)

	if _, err := tg.srv.Inject(aerospiketest.Fault{Action: aerospiketest.FaultFail}); !errors.Is(err, aerospiketest.ErrInvalidFault) {
		t.Errorf("invalid fault accepted: %v", err)
	}
}

func TestFaultClose(t *testing.T) {
	tg := serverOnly(t)
	set := tg.set(t)
	k, _ := as.NewKey("test", set, 1)
	noErr(t, tg.client.Put(nil, k, as.BinMap{"a": 1}))
	_, err := tg.srv.Inject(aerospiketest.Fault{Action: aerospiketest.FaultCloseBefore, Command: aerospiketest.ReadCommand, Set: set})
	noErr(t, err)
	p := as.NewPolicy()
	p.MaxRetries = 0
	_, err = tg.client.Get(p, k)
	if err == nil {
		t.Fatal("Get succeeded on a closed connection")
	}
	_, err = tg.client.Get(p, k)
	noErr(t, err)

	// Close after executing: the write happened although the client failed.
	_, err = tg.srv.Inject(aerospiketest.Fault{Action: aerospiketest.FaultCloseAfter, Command: aerospiketest.WriteCommand, Set: set})
	noErr(t, err)
	wp := as.NewWritePolicy(0, 0)
	wp.MaxRetries = 0
	err = tg.client.Put(wp, k, as.BinMap{"a": 2})
	if err == nil {
		t.Fatal("Put succeeded although the connection was closed")
	}
	rec, err := tg.client.Get(nil, k)
	noErr(t, err)
	if rec.Bins["a"] != 2 {
		t.Errorf("in-doubt write not applied: %v", rec.Bins)
	}
}

func TestFaultDelayTimeout(t *testing.T) {
	tg := serverOnly(t)
	set := tg.set(t)
	k, _ := as.NewKey("test", set, 1)
	noErr(t, tg.client.Put(nil, k, as.BinMap{"a": 1}))
	_, err := tg.srv.Inject(aerospiketest.Fault{Action: aerospiketest.FaultDelay, Command: aerospiketest.ReadCommand, Delay: 300 * time.Millisecond})
	noErr(t, err)
	p := as.NewPolicy()
	p.MaxRetries = 0
	p.TotalTimeout = 100 * time.Millisecond
	_, err = tg.client.Get(p, k)
	wantCode(t, err, types.TIMEOUT)
}

func TestKeyBusy(t *testing.T) {
	tg := serverOnly(t, aerospiketest.WithPendingLimit(2))
	set := tg.set(t)
	k, _ := as.NewKey("test", set, 1)
	_, err := tg.srv.Inject(aerospiketest.Fault{Action: aerospiketest.FaultDelay, Command: aerospiketest.WriteCommand, Set: set, Delay: 200 * time.Millisecond, Times: -1})
	noErr(t, err)
	wp := as.NewWritePolicy(0, 0)
	wp.MaxRetries = 0
	wp.TotalTimeout = 5 * time.Second
	var wg sync.WaitGroup
	var mu sync.Mutex
	codes := map[types.ResultCode]int{}
	for i := range 6 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			err := tg.client.AddBins(wp, k, as.NewBin("n", 1))
			mu.Lock()
			defer mu.Unlock()
			if err == nil {
				codes[types.OK]++
				return
			}
			var ae *as.AerospikeError
			if errors.As(err, &ae) {
				codes[ae.ResultCode]++
			} else {
				t.Errorf("write %d: %v", i, err)
			}
		}()
	}
	wg.Wait()
	if codes[types.KEY_BUSY] == 0 || codes[types.OK] == 0 || codes[types.OK]+codes[types.KEY_BUSY] != 6 {
		t.Errorf("result codes %v", codes)
	}
	rec, err := tg.client.Get(nil, k)
	noErr(t, err)
	if rec.Bins["n"] != codes[types.OK] {
		t.Errorf("n = %v, want %d successful adds", rec.Bins["n"], codes[types.OK])
	}
	if tg.srv.Stats().KeyBusy != int64(codes[types.KEY_BUSY]) {
		t.Errorf("Stats.KeyBusy %d", tg.srv.Stats().KeyBusy)
	}
}

func TestConcurrentGenerationCAS(t *testing.T) {
	tg := newTarget(t)
	k := tg.key(t, tg.set(t), "cas")
	noErr(t, tg.client.Put(nil, k, as.BinMap{"n": 0}))
	var wg sync.WaitGroup
	var mu sync.Mutex
	wins := 0
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 20 {
				rec, err := tg.client.Get(nil, k)
				if err != nil {
					t.Error(err)
					return
				}
				wp := as.NewWritePolicy(rec.Generation, 0)
				wp.GenerationPolicy = as.EXPECT_GEN_EQUAL
				wp.MaxRetries = 0
				err = tg.client.Put(wp, k, as.BinMap{"n": rec.Bins["n"].(int) + 1})
				if err == nil {
					mu.Lock()
					wins++
					mu.Unlock()
					continue
				}
				var ae *as.AerospikeError
				if !errors.As(err, &ae) || (ae.ResultCode != types.GENERATION_ERROR && ae.ResultCode != types.KEY_BUSY) {
					t.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	rec, err := tg.client.Get(nil, k)
	noErr(t, err)
	if rec.Bins["n"] != wins {
		t.Errorf("n = %v after %d successful CAS writes", rec.Bins["n"], wins)
	}
}

func TestCloseInterruptsDelay(t *testing.T) {
	srv, err := aerospiketest.NewServer()
	noErr(t, err)
	client, err := as.NewClient(srv.Host(), srv.Port())
	noErr(t, err)
	defer client.Close()
	_, err = srv.Inject(aerospiketest.Fault{Action: aerospiketest.FaultDelay, Command: aerospiketest.WriteCommand, Delay: time.Minute})
	noErr(t, err)
	k, _ := as.NewKey("test", "s", 1)
	wp := as.NewWritePolicy(0, 0)
	wp.MaxRetries = 0
	wp.TotalTimeout = 200 * time.Millisecond
	_ = client.Put(wp, k, as.BinMap{"a": 1})
	start := time.Now()
	noErr(t, srv.Close())
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("Close took %v while a delayed command was pending", d)
	}
}
