package aerospiketest_test

import (
	"errors"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	as "github.com/aerospike/aerospike-client-go/v8"
	"github.com/aerospike/aerospike-client-go/v8/types"

	"github.com/beanspike/beanspike/backend/aerospike/aerospiketest"
)

// testNodeNamespace is the namespace of the real test node
// (../shared/aerospike/start), which the in-repo target mirrors unless a
// test configures it otherwise: records may expire (nsup-period 1), and
// other settings keep their defaults.
var testNodeNamespace = aerospiketest.NamespaceConfig{Name: "test", NsupPeriod: time.Second, AllowTTLWithoutNsup: true}

// target is what a differential test runs against: the in-repo server, or
// a real Aerospike server when AEROSPIKE_HOST is set.
type target struct {
	client *as.Client
	srv    *aerospiketest.Server // nil against a real server
	ns     string
	sets   int // sets handed out by set
}

// real reports whether the target is a real Aerospike server.
func (tg *target) real() bool { return tg.srv == nil }

// needClock skips a test that advances the server clock when it runs
// against a real server, which has no controllable clock.
func (tg *target) needClock(t *testing.T) {
	t.Helper()
	if tg.real() {
		t.Skip("declared missing capability: a real server's clock cannot be advanced")
	}
}

// newTarget connects a client to the test target and registers cleanup.
func newTarget(t testing.TB, opts ...aerospiketest.Option) *target {
	t.Helper()
	tg := &target{ns: "test"}
	if ns := os.Getenv("AEROSPIKE_NAMESPACE"); ns != "" {
		tg.ns = ns
	}
	host := os.Getenv("AEROSPIKE_HOST")
	port := 3000
	if host == "" {
		if len(opts) == 0 {
			opts = []aerospiketest.Option{aerospiketest.WithNamespace(testNodeNamespace)}
		}
		srv, err := aerospiketest.NewServer(opts...)
		if err != nil {
			t.Fatalf("NewServer: %v", err)
		}
		t.Cleanup(func() {
			if err := srv.Close(); err != nil {
				t.Errorf("Close: %v", err)
			}
		})
		tg.srv = srv
		host, port = srv.Host(), srv.Port()
		t.Logf("target: aerospiketest server at %s", srv.Addr())
	} else {
		if p := os.Getenv("AEROSPIKE_PORT"); p != "" {
			n, err := strconv.Atoi(p)
			if err != nil {
				t.Fatalf("AEROSPIKE_PORT: %v", err)
			}
			port = n
		}
		t.Logf("target: real Aerospike server at %s:%d", host, port)
	}
	policy := as.NewClientPolicy()
	policy.Timeout = 5 * time.Second
	client, err := as.NewClientWithPolicy(policy, host, port)
	if err != nil {
		t.Fatalf("NewClient: %v", err)
	}
	t.Cleanup(client.Close)
	// Commands carry records of up to 8 MiB on a machine that may be
	// busy: a timeout must mean a hang, not a slow moment.
	for _, p := range []*as.BasePolicy{client.DefaultPolicy, &client.DefaultWritePolicy.BasePolicy,
		&client.DefaultBatchPolicy.BasePolicy, &client.DefaultScanPolicy.BasePolicy, &client.DefaultQueryPolicy.BasePolicy} {
		p.TotalTimeout, p.SocketTimeout = 30*time.Second, 30*time.Second
	}
	tg.client = client
	return tg
}

// set returns a set name for t: the test's name and how many sets it
// asked for so far. The names are the same on every run, so that runs
// against a long-lived server use a fixed number of set names (a
// namespace holds 4,095 until the server restarts). The set is truncated
// before the test uses it, removing what an interrupted earlier run left,
// and when the test ends.
func (tg *target) set(t testing.TB) string {
	t.Helper()
	tg.sets++
	name := strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' {
			return r
		}
		return '_'
	}, t.Name())
	if len(name) > 55 {
		name = name[len(name)-55:]
	}
	name += "_" + strconv.Itoa(tg.sets)
	tg.truncate(t, name)
	t.Cleanup(func() { tg.truncate(t, name) })
	return name
}

// truncate removes every record of set.
func (tg *target) truncate(t testing.TB, set string) {
	t.Helper()
	if err := tg.client.Truncate(nil, tg.ns, set, nil); err != nil {
		t.Fatalf("Truncate(%s): %v", set, err)
	}
}

func (tg *target) key(t testing.TB, set string, k any) *as.Key {
	t.Helper()
	key, err := as.NewKey(tg.ns, set, k)
	if err != nil {
		t.Fatalf("NewKey: %v", err)
	}
	return key
}

// wantCode fails unless err carries the result code.
func wantCode(t testing.TB, err error, code types.ResultCode) {
	t.Helper()
	if err == nil {
		t.Fatalf("got no error, want result code %d (%s)", code, types.ResultCodeToString(code))
	}
	var ae *as.AerospikeError
	if !errors.As(err, &ae) {
		t.Fatalf("error %v is not an AerospikeError, want code %d", err, code)
	}
	if !ae.Matches(code) {
		t.Fatalf("got %v (code %d), want code %d (%s)", err, ae.ResultCode, code, types.ResultCodeToString(code))
	}
}

func noErr(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// info returns the answer of a target to one info command.
func (tg *target) info(t testing.TB, cmd string) string {
	t.Helper()
	out, err := tg.client.GetNodes()[0].RequestInfo(as.NewInfoPolicy(), cmd)
	if err != nil {
		t.Fatalf("info %s: %v", cmd, err)
	}
	return out[cmd]
}

// infoField returns the value of name in a "k=v;k=v" info answer, and
// whether it is there.
func infoField(answer, name string) (string, bool) {
	for _, kv := range strings.Split(answer, ";") {
		if v, ok := strings.CutPrefix(kv, name+"="); ok {
			return v, true
		}
	}
	return "", false
}

// nodeConfig returns the value of a namespace setting in the real test
// node's configuration file ($AEROSPIKE_DIR/aerospike.conf), or def when
// the file does not set it. It skips the test when the file is not known.
func nodeConfig(t *testing.T, tg *target, setting, def string) string {
	t.Helper()
	dir := os.Getenv("AEROSPIKE_DIR")
	if dir == "" {
		t.Skip("declared missing capability: the real server's configuration is not known (set AEROSPIKE_DIR)")
	}
	b, err := os.ReadFile(dir + "/aerospike.conf")
	if err != nil {
		t.Skipf("declared missing capability: the real server's configuration is not readable: %v", err)
	}
	_, block, ok := strings.Cut(string(b), "namespace "+tg.ns+" {")
	if !ok {
		t.Fatalf("namespace %s not in %s/aerospike.conf", tg.ns, dir)
	}
	for _, line := range strings.Split(block, "\n") {
		f := strings.Fields(line)
		if len(f) == 2 && f[0] == setting {
			return f[1]
		}
		if len(f) > 0 && f[0] == "}" {
			break
		}
	}
	return def
}
