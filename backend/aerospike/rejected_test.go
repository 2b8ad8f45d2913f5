package aerospike

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/beanspike/beanspike"
	"github.com/beanspike/beanspike/backend/aerospike/aerospiketest"
)

// codeRecordTooBig is Aerospike's RECORD_TOO_BIG result code.
const codeRecordTooBig = 13

// A Put whose job record the server refuses as too big, while its index
// entry was written, fails with ErrJobTooBig and leaves the store as it
// was: no ready job, no count.
func TestPutRefusedRecordChangesNothing(t *testing.T) {
	needInProcess(t, "refusing one record")
	ctx := context.Background()
	q := newTestQueue(t)
	if _, err := q.Put(ctx, "t", []byte("keep")); err != nil {
		t.Fatal(err)
	}
	before := wantStats(t, q, "t", 1, 0, 0, 0)
	t.Cleanup(tgt.srv.ClearFaults)
	// Alone, a Put writes its record and then its entry as two
	// single-record commands; merged, as one batch command.
	for _, kind := range []aerospiketest.CommandKind{aerospiketest.WriteCommand, aerospiketest.BatchCommand} {
		if _, err := tgt.srv.Inject(aerospiketest.Fault{Action: aerospiketest.FaultFail, Code: codeRecordTooBig,
			Command: kind, Set: q.s.setJobs}); err != nil {
			t.Fatal(err)
		}
	}
	for _, opts := range [][]beanspike.PutOption{nil, {beanspike.WithCompression()}} {
		if _, err := q.Put(ctx, "t", bytes.Repeat([]byte("x"), 100), opts...); !errors.Is(err, beanspike.ErrJobTooBig) {
			t.Fatalf("Put whose record is refused: %v, want ErrJobTooBig", err)
		}
		tgt.srv.ClearFaults()
		if _, err := tgt.srv.Inject(aerospiketest.Fault{Action: aerospiketest.FaultFail, Code: codeRecordTooBig,
			Command: aerospiketest.WriteCommand, Set: q.s.setJobs}); err != nil {
			t.Fatal(err)
		}
	}
	tgt.srv.ClearFaults()
	after := wantStats(t, q, "t", 1, 0, 0, 0)
	if after.TotalJobs != before.TotalJobs || after.Compressed != before.Compressed ||
		after.CompressionSkipped != before.CompressionSkipped {
		t.Fatalf("StatsTube after refused Puts = %+v, before %+v", after, before)
	}
	j, err := q.PeekReady(ctx, "t")
	if err != nil || string(j.Body) != "keep" {
		t.Fatalf("PeekReady after refused Puts = %+v, %v", j, err)
	}
}

// PeekReady and PeekDelayed pass over a hint whose job record is
// missing (a Put whose record write failed, and whose process died before
// it took the hint back) and return the next job, or ErrNotFound when
// there is none.
func TestPeekPassesOverEntryWithoutRecord(t *testing.T) {
	ctx := context.Background()
	a := newTestQueue(t)
	b := newPeer(t, a)
	for _, c := range []struct {
		state beanspike.State
		kind  byte
		opts  []beanspike.PutOption
		peek  func(context.Context, string) (*beanspike.Job, error)
	}{
		{beanspike.Ready, kindReady, nil, b.PeekReady},
		{beanspike.Delayed, kindDelayed, []beanspike.PutOption{beanspike.WithDelay(time.Hour)}, b.PeekDelayed},
	} {
		tube := "t" + c.state.String()
		if err := a.PauseTube(ctx, tube, 0); err != nil { // make the tube
			t.Fatal(err)
		}
		ti, err := a.tube(ctx, tube, 0, false)
		if err != nil {
			t.Fatal(err)
		}
		ids, err := a.newIDs(ctx, 3)
		if err != nil {
			t.Fatal(err)
		}
		at := a.nowNs()
		if c.kind == kindDelayed {
			at += int64(time.Hour)
		}
		for i, id := range ids { // three dangling hints ahead of the job
			if err := a.insert(ctx, ti.ix(c.kind), hint{t: at + int64(i), id: id, ttr: int64(time.Minute)}); err != nil {
				t.Fatal(err)
			}
		}
		if j, err := c.peek(ctx, tube); !errors.Is(err, beanspike.ErrNotFound) {
			t.Fatalf("peek %s of only dangling hints = %+v, %v; want ErrNotFound", c.state, j, err)
		}
		id, err := a.Put(ctx, tube, []byte("real"), c.opts...)
		if err != nil {
			t.Fatal(err)
		}
		j, err := c.peek(ctx, tube)
		if err != nil || j.ID != id || string(j.Body) != "real" {
			t.Fatalf("peek %s behind dangling hints = %+v, %v; want job %d", c.state, j, err, id)
		}
	}
}

// The body limit comes from the namespace's max-record-size: a body of
// exactly the limit is stored (with the longest tube name), one byte
// more is refused before anything is written, and a WithMaxBodySize over
// what the namespace holds fails New.
func TestBodyLimitFollowsNamespace(t *testing.T) {
	ctx := context.Background()
	tube := strings.Repeat("t", beanspike.MaxTubeNameLen)
	check := func(t *testing.T, q *Queue, want int) {
		t.Helper()
		if got := q.MaxBodySize(); got != want {
			t.Fatalf("MaxBodySize = %d, want %d", got, want)
		}
		body := bytes.Repeat([]byte{0xa5}, want)
		id, err := q.Put(ctx, tube, body)
		if err != nil {
			t.Fatalf("Put of a body of the limit, %d bytes: %v", want, err)
		}
		j, err := q.Peek(ctx, id)
		if err != nil || !bytes.Equal(j.Body, body) {
			t.Fatalf("Peek of the body of the limit: %v", err)
		}
		before := wantStats(t, q, tube, 1, 0, 0, 0)
		if _, err := q.Put(ctx, tube, append(body, 0)); !errors.Is(err, beanspike.ErrJobTooBig) {
			t.Fatalf("Put of a body one byte over the limit: %v, want ErrJobTooBig", err)
		}
		if after := wantStats(t, q, tube, 1, 0, 0, 0); after.TotalJobs != before.TotalJobs {
			t.Fatalf("refused Put counted: %+v", after)
		}
	}
	t.Run("target", func(t *testing.T) {
		q := newTestQueue(t)
		limit, err := maxRecordSize(ctx, q.s.client, q.s.cfg.namespace)
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("max-record-size %d", limit)
		check(t, q, min(beanspike.DefaultMaxBodySize, limit-RecordOverhead))
	})
	t.Run("small", func(t *testing.T) {
		const rec = 64 << 10
		check(t, newSmallServer(t, rec), rec-RecordOverhead)
		check(t, newSmallServer(t, rec, WithMaxBodySize(1000)), 1000)
	})
	t.Run("too big for the namespace", func(t *testing.T) {
		srv, err := aerospiketest.NewServer(aerospiketest.WithNamespace(aerospiketest.NamespaceConfig{
			Name: DefaultNamespace, MaxRecordSize: 64 << 10,
		}))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = srv.Close() })
		_, err = New(ctx, WithHosts(srv.Host()), WithPort(srv.Port()), WithMaxBodySize(64<<10))
		if !errors.Is(err, beanspike.ErrInvalidArgument) || !strings.Contains(err.Error(), "max-record-size") {
			t.Fatalf("New with a body limit over the namespace's records: %v, want ErrInvalidArgument naming max-record-size", err)
		}
	})
}

// Stores that share a set prefix and differ by key prefix do not see
// each other's tubes or jobs.
func TestKeyPrefixIsolates(t *testing.T) {
	ctx := context.Background()
	a := newTestQueue(t)
	b := newQueueAt(t, tgt.host, tgt.port, WithSetPrefix(a.s.cfg.setPrefix), WithKeyPrefix(a.s.cfg.keyPrefix+"b"))
	t.Cleanup(func() {
		if err := purgeStore(tgt.host, tgt.port, sameStore(b)...); err != nil {
			t.Error(err)
		}
	})
	id, err := a.Put(ctx, "shared", []byte("a's"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.StatsTube(ctx, "shared"); !errors.Is(err, beanspike.ErrNotFound) {
		t.Fatalf("StatsTube of the other store's tube: %v, want ErrNotFound", err)
	}
	if _, err := b.Peek(ctx, id); !errors.Is(err, beanspike.ErrNotFound) {
		t.Fatalf("Peek of the other store's job: %v, want ErrNotFound", err)
	}
	idB, err := b.Put(ctx, "shared", []byte("b's"))
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("IDs: a's %d, b's %d", id, idB) // each store counts its own
	ja, err := a.Peek(ctx, id)
	if err != nil || string(ja.Body) != "a's" {
		t.Fatalf("a's job after b's Put: %+v, %v", ja, err)
	}
	tubes, err := b.Tubes(ctx)
	if err != nil || len(tubes) != 1 || tubes[0] != "shared" {
		t.Fatalf("b's tubes = %v, %v", tubes, err)
	}
	wantStats(t, a, "shared", 1, 0, 0, 0)
	wantStats(t, b, "shared", 1, 0, 0, 0)
}
