package aerospike

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	as "github.com/aerospike/aerospike-client-go/v8"
	"github.com/aerospike/aerospike-client-go/v8/types"

	"github.com/beanspike/beanspike"
)

func TestResolveDefaultsAndEnv(t *testing.T) {
	t.Setenv(EnvHost, "")
	t.Setenv(EnvPort, "")
	c, err := resolve(nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(c.hosts) != 1 || c.hosts[0] != DefaultHost || c.port != DefaultPort || c.namespace != DefaultNamespace ||
		c.inFlight != DefaultInFlight {
		t.Fatalf("defaults: %+v", c)
	}
	t.Setenv(EnvHost, "h1,h2:4000")
	t.Setenv(EnvPort, "3100")
	c, err = resolve(nil)
	if err != nil {
		t.Fatal(err)
	}
	hosts, err := c.seedHosts()
	if err != nil {
		t.Fatal(err)
	}
	if len(hosts) != 2 || hosts[0].Name != "h1" || hosts[0].Port != 3100 || hosts[1].Name != "h2" || hosts[1].Port != 4000 {
		t.Fatalf("hosts from the environment: %v", hosts)
	}
	c, err = resolve([]Option{WithHosts("x"), WithPort(5000)})
	if err != nil || c.hosts[0] != "x" || c.port != 5000 {
		t.Fatalf("options over the environment: %+v, %v", c, err)
	}
}

func TestResolveRejects(t *testing.T) {
	t.Setenv(EnvPort, "")
	for name, o := range map[string]Option{
		"port":      WithPort(0),
		"namespace": WithNamespace(""),
		"prefix":    WithSetPrefix("a:b"),
		"long":      WithSetPrefix(string(make([]byte, 60))),
		"body":      WithMaxBodySize(MaxBodySizeLimit + 1),
		"body0":     WithMaxBodySize(0),
		"keyprefix": WithKeyPrefix("a\x00b"),
		"keylong":   WithKeyPrefix(strings.Repeat("k", 65)),
		"segment":   WithSegmentSize(0),
		"sweep":     WithSweepInterval(0),
		"timeout":   WithTimeout(0),
		"inflight":  WithInFlight(0),
		"inflight+": WithInFlight(MaxInFlight + 1),
	} {
		if _, err := resolve([]Option{o}); !errors.Is(err, beanspike.ErrInvalidArgument) {
			t.Errorf("%s: %v", name, err)
		}
	}
	t.Setenv(EnvPort, "x")
	if _, err := resolve(nil); !errors.Is(err, beanspike.ErrInvalidArgument) {
		t.Errorf("bad %s: %v", EnvPort, err)
	}
}

func TestNewUnreachable(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	// Port 1 on loopback refuses connections.
	_, err := New(ctx, WithHosts("127.0.0.1"), WithPort(1))
	if !errors.Is(err, beanspike.ErrUnavailable) && !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("New on a closed port: %v", err)
	}
}

func TestInterpretError(t *testing.T) {
	native := &as.AerospikeError{ResultCode: types.KEY_NOT_FOUND_ERROR}
	err := interpretError(native)
	var ae *as.AerospikeError
	if !errors.Is(err, beanspike.ErrNotFound) || !errors.As(err, &ae) || ae.ResultCode != types.KEY_NOT_FOUND_ERROR {
		t.Fatalf("KEY_NOT_FOUND: %v", err)
	}
	for _, code := range []types.ResultCode{types.KEY_BUSY, types.TIMEOUT, types.NETWORK_ERROR, types.PARAMETER_ERROR} {
		err := interpretError(&as.AerospikeError{ResultCode: code})
		if !errors.Is(err, beanspike.ErrUnavailable) || !errors.As(err, &ae) || ae.ResultCode != code {
			t.Errorf("%v: %v", code, err)
		}
	}
	// Only a job record over the limit is the body's fault; a full index
	// record is the store's.
	if err := interpretRecordError(&as.AerospikeError{ResultCode: types.RECORD_TOO_BIG}); !errors.Is(err, beanspike.ErrJobTooBig) {
		t.Errorf("RECORD_TOO_BIG of a job record: %v", err)
	}
	if err := interpretError(&as.AerospikeError{ResultCode: types.RECORD_TOO_BIG}); !errors.Is(err, beanspike.ErrUnavailable) || errors.Is(err, beanspike.ErrJobTooBig) {
		t.Errorf("RECORD_TOO_BIG of an index record: %v", err)
	}
	if err := interpretError(context.Canceled); err != context.Canceled {
		t.Errorf("context error wrapped: %v", err)
	}
	if interpretError(nil) != nil {
		t.Error("nil error translated")
	}
}

// The native client is reachable, and a client given with WithClient
// stays open after Close.
func TestWithClient(t *testing.T) {
	q := newTestQueue(t)
	var c *as.Client
	if !q.As(&c) || c == nil {
		t.Fatal("As(**Client) = false")
	}
	var other int
	if q.As(&other) {
		t.Fatal("As(*int) = true")
	}
	shared, err := New(context.Background(), append(sameStore(q), WithClient(c))...)
	if err != nil {
		t.Fatal(err)
	}
	if err := shared.Close(); err != nil {
		t.Fatal(err)
	}
	if !c.IsConnected() {
		t.Fatal("Close closed a client given with WithClient")
	}
	if _, err := shared.Put(context.Background(), "t", nil); !errors.Is(err, beanspike.ErrClosed) {
		t.Fatalf("Put after Close: %v", err)
	}
}
