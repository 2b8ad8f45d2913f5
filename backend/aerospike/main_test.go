package aerospike

import (
	"context"
	crand "crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	as "github.com/aerospike/aerospike-client-go/v8"
	"github.com/aerospike/aerospike-client-go/v8/types"
	"github.com/ory/dockertest/v3"
	"github.com/ory/dockertest/v3/docker"

	"github.com/beanspike/beanspike"
	"github.com/beanspike/beanspike/backend/aerospike/aerospiketest"
)

// dockerImage is the server the tests run in a container when a Docker
// engine answers: Aerospike Community Edition 8.0.
const (
	dockerRepo = "aerospike/aerospike-server"
	dockerTag  = "8.0.0.7"
)

// target is the Aerospike server the tests run against.
type target struct {
	kind string // "real server", "docker" or "aerospiketest"
	host string
	port int
	srv  *aerospiketest.Server // the in-process server, when it is the target
}

// tgt is set once by TestMain before any test runs and read only after.
var tgt target

func TestMain(m *testing.M) {
	t, cleanup, err := pickTarget()
	if err != nil {
		fmt.Fprintln(os.Stderr, "aerospike tests: no server:", err)
		os.Exit(1)
	}
	tgt = t
	code := m.Run()
	cleanup()
	os.Exit(code)
}

// pickTarget chooses the server: a real one when AEROSPIKE_HOST is set, a
// container where a Docker engine answers, otherwise the in-process
// Aerospike-compatible server.
func pickTarget() (target, func(), error) {
	if h := os.Getenv(EnvHost); h != "" {
		port := DefaultPort
		if p := os.Getenv(EnvPort); p != "" {
			n, err := strconv.Atoi(p)
			if err != nil {
				return target{}, nil, fmt.Errorf("%s=%q: %w", EnvPort, p, err)
			}
			port = n
		}
		return target{kind: "real server", host: strings.Split(h, ",")[0], port: port}, func() {}, nil
	}
	if t, cleanup, err := dockerTarget(); err == nil {
		return t, cleanup, nil
	} else {
		fmt.Fprintln(os.Stderr, "aerospike tests: no Docker engine, using aerospiketest:", err)
	}
	srv, err := aerospiketest.NewServer()
	if err != nil {
		return target{}, nil, err
	}
	return target{kind: "aerospiketest", host: srv.Host(), port: srv.Port(), srv: srv}, func() { _ = srv.Close() }, nil
}

// dockerTarget starts an Aerospike CE container, if a Docker engine
// answers within two seconds, and waits until it serves.
func dockerTarget() (target, func(), error) {
	pool, err := dockertest.NewPool("")
	if err != nil {
		return target{}, nil, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	err = pool.Client.PingWithContext(ctx)
	cancel()
	if err != nil {
		return target{}, nil, err
	}
	res, err := pool.RunWithOptions(&dockertest.RunOptions{
		Repository: dockerRepo,
		Tag:        dockerTag,
	}, func(hc *docker.HostConfig) {
		hc.AutoRemove = true
		hc.RestartPolicy = docker.RestartPolicy{Name: "no"}
	})
	if err != nil {
		return target{}, nil, err
	}
	_ = res.Expire(600)
	host, portStr, err := net.SplitHostPort(res.GetHostPort("3000/tcp"))
	if err != nil {
		_ = pool.Purge(res)
		return target{}, nil, err
	}
	port, _ := strconv.Atoi(portStr)
	pool.MaxWait = 2 * time.Minute
	err = pool.Retry(func() error {
		c, err := as.NewClient(host, port)
		if err != nil {
			return err
		}
		defer c.Close()
		k, _ := as.NewKey(DefaultNamespace, "ready", "probe")
		return c.PutBins(nil, k, as.NewBin("x", 1))
	})
	if err != nil {
		_ = pool.Purge(res)
		return target{}, nil, err
	}
	return target{kind: "docker", host: host, port: port}, func() { _ = pool.Purge(res) }, nil
}

// uniquePrefix returns a set prefix of its own for t: its name and a
// random suffix.
func uniquePrefix(t testing.TB) string {
	var b [4]byte
	_, _ = crand.Read(b[:])
	name := strings.Map(func(r rune) rune {
		switch {
		case 'a' <= r && r <= 'z', 'A' <= r && r <= 'Z', '0' <= r && r <= '9':
			return r
		}
		return '_'
	}, t.Name())
	if len(name) > 40 {
		name = name[len(name)-40:]
	}
	return name + "_" + hex.EncodeToString(b[:])
}

// testSetPrefix is the set prefix of every store the tests make on the
// target: they tell their stores apart by key prefix, so that a run adds
// no set names to a long-lived server (a namespace holds 4,095 until it
// restarts).
const testSetPrefix = "beanspiketest"

// newTestQueue makes a queue of a fresh store on the target, whose
// records are deleted when t ends.
func newTestQueue(t testing.TB, opts ...Option) *Queue {
	t.Helper()
	t.Logf("aerospike target: %s at %s:%d", tgt.kind, tgt.host, tgt.port)
	store := []Option{WithSetPrefix(testSetPrefix), WithKeyPrefix(uniquePrefix(t))}
	q := newQueueAt(t, tgt.host, tgt.port, append(store, opts...)...)
	t.Cleanup(func() {
		if err := purgeStore(tgt.host, tgt.port, sameStore(q)...); err != nil {
			t.Errorf("deleting the test's store: %v", err)
		}
	})
	return q
}

// purgeStore deletes every record of the store opts name, through a
// connection of its own (the test's clients may have been crashed): its
// tubes with their jobs, the job records of every ID it handed out,
// and its meta records.
func purgeStore(host string, port int, opts ...Option) error {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	q, err := New(ctx, append([]Option{WithHosts(host), WithPort(port)}, opts...)...)
	if err != nil {
		return err
	}
	defer q.Close()
	tubes, err := q.Tubes(ctx)
	if err != nil {
		return err
	}
	for _, tube := range tubes {
		if _, err := q.DeleteTube(ctx, tube); err != nil && !errors.Is(err, beanspike.ErrNotFound) {
			return fmt.Errorf("DeleteTube(%q): %w", tube, err)
		}
	}
	c := q.s.client
	rec, err := c.Get(nil, q.idKey(), binNextID)
	if err != nil && !errorIsNotFound(err) {
		return err
	}
	var last int64
	if rec != nil {
		last, _ = toInt(rec.Bins[binNextID])
	}
	for lo := int64(1); lo <= last; lo += 256 {
		keys := make([]*as.Key, 0, 256)
		for id := lo; id <= last && id < lo+256; id++ {
			keys = append(keys, q.jobKey(beanspike.ID(id)))
		}
		if _, err := c.BatchDelete(nil, nil, keys); err != nil && !errorIsNotFound(err) {
			return err
		}
	}
	// Index records no directory names (left by crashes) carry the key
	// prefix in a bin.
	if q.s.cfg.keyPrefix != "" {
		sp := as.NewScanPolicy()
		sp.FilterExpression = as.ExpEq(as.ExpStringBin(binKeyPrefix), as.ExpStringVal(q.s.cfg.keyPrefix))
		rs, err := c.ScanAll(sp, q.s.cfg.namespace, q.s.setIdx)
		if err != nil {
			return err
		}
		var keys []*as.Key
		for r := range rs.Results() {
			if r.Err != nil {
				return r.Err
			}
			keys = append(keys, r.Record.Key)
		}
		if len(keys) > 0 {
			if _, err := c.BatchDelete(nil, nil, keys); err != nil && !errorIsNotFound(err) {
				return err
			}
		}
	}
	var keys []*as.Key
	for _, tube := range tubes {
		keys = append(keys, q.metaKey(tube))
	}
	for _, name := range []string{"tubes", "ids"} {
		k, err := q.s.metaRecordKey(name)
		if err != nil {
			return err
		}
		keys = append(keys, k)
	}
	if _, err := c.BatchDelete(nil, nil, keys); err != nil && !errorIsNotFound(err) {
		return err
	}
	return nil
}

// errorIsNotFound tells whether err says that a record, or a job, is
// not found.
func errorIsNotFound(err error) bool {
	return resultCode(err) == types.KEY_NOT_FOUND_ERROR || errors.Is(err, beanspike.ErrNotFound)
}

// needInProcess skips t, which does what, unless the target is the
// in-process server.
func needInProcess(t testing.TB, what string) {
	t.Helper()
	if tgt.srv == nil {
		t.Skipf("%s needs the in-process server; target is %s", what, tgt.kind)
	}
}

// newQueueAt makes a queue on the server at host:port, closed when t ends.
func newQueueAt(t testing.TB, host string, port int, opts ...Option) *Queue {
	t.Helper()
	all := append([]Option{WithHosts(host), WithPort(port)}, opts...)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	q, err := New(ctx, all...)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() { _ = q.Close() })
	return q
}

// newPeer makes another client of q's store with a connection of its
// own, as another process would.
func newPeer(t testing.TB, q *Queue) *Queue {
	t.Helper()
	return newQueueAt(t, tgt.host, tgt.port, sameStore(q)...)
}

// sameStore returns the options that name q's store.
func sameStore(q *Queue) []Option {
	return []Option{WithSetPrefix(q.s.cfg.setPrefix), WithKeyPrefix(q.s.cfg.keyPrefix), WithNamespace(q.s.cfg.namespace)}
}
