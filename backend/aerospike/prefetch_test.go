package aerospike

import (
	"bytes"
	"context"
	"fmt"
	"testing"
	"time"

	as "github.com/aerospike/aerospike-client-go/v8"

	"github.com/beanspike/beanspike"
)

func bodyRec(n int) *as.Record {
	return &as.Record{Bins: as.BinMap{binTube: "t", binBody: make([]byte, n)}}
}

// checkBytes checks the cache's count of bytes read ahead against the
// records its pictures hold.
func (c *readyCache) checkBytes(t *testing.T) {
	t.Helper()
	c.mu.Lock()
	defer c.mu.Unlock()
	sum := 0
	for _, tp := range c.tubes {
		held := 0
		for _, h := range tp.bodies {
			if h.rec != nil {
				held++
				sum += h.size
			}
		}
		if held != tp.held {
			t.Errorf("picture counts %d records held, holds %d", tp.held, held)
		}
	}
	if sum != c.bodyBytes {
		t.Errorf("cache counts %d bytes read ahead, pictures hold %d", c.bodyBytes, sum)
	}
}

func TestReadAheadLifecycle(t *testing.T) {
	var c readyCache
	now := int64(1e18)
	tubes := []string{"t"}
	c.store(pictureView("t", [][]kv{
		{readyKV(1, 0, 10), readyKV(3, 0, 30), readyKV(5, 0, 50)},
		{readyKV(2, 0, 20), readyKV(4, 0, 40)},
	}), now, 8, c.begin())
	// The most urgent jobs first, each index record's in turn; the job
	// being claimed is left out.
	w := c.wanting(tubes, []cand{{ref: shardRef{"t", 0}, kv: readyKV(1, 0, 10)}})
	var got []beanspike.ID
	for _, a := range w {
		got = append(got, a.kv.id)
	}
	if fmt.Sprint(got) != "[2 3 4 5]" {
		t.Fatalf("wanting = %v, want [2 3 4 5]", got)
	}
	// Records being read are not asked for again; a read that failed
	// may be tried again.
	if again := c.wanting(tubes, nil); len(again) != 1 || again[0].kv.id != 1 {
		t.Fatalf("wanting while reads are pending = %v, want only job 1", again)
	}
	c.keep(w[0], nil, false)
	if again := c.wanting(tubes, nil); len(again) != 1 || again[0].kv.id != 2 {
		t.Fatalf("wanting after a failed read = %v, want job 2 again", again)
	}
	for _, a := range w {
		switch a.kv.id {
		case 5:
			c.keep(a, nil, true) // a large body: marked, not held
		default:
			c.keep(a, bodyRec(int(a.kv.id)*100), false)
		}
	}
	c.checkBytes(t)
	if c.bodyBytes != 900 {
		t.Fatalf("%d bytes read ahead, want 900", c.bodyBytes)
	}
	// Nothing more is wanted but job 1, whose read failed: the rest are
	// held or marked.
	c.keep(ahead{shardRef{"t", 0}, readyKV(1, 0, 10)}, nil, false)
	if w := c.wanting(tubes, nil); len(w) != 1 || w[0].kv.id != 1 {
		t.Fatalf("wanting after keep = %v, want only job 1", w)
	}
	// take hands out the record with the job; done drops it.
	cs := c.take(tubes, now, 2, 0)
	if len(cs) != 2 || cs[0].id != 1 || cs[0].rec != nil || cs[1].id != 2 || cs[1].rec == nil {
		t.Fatalf("take = %+v, want job 1 without a record and job 2 with", cs)
	}
	c.done(cs)
	c.checkBytes(t)
	if c.bodyBytes != 700 {
		t.Fatalf("%d bytes after the claim of job 2, want 700", c.bodyBytes)
	}
	// A job that leaves ready takes its record along.
	c.moved(shardRef{"t", 0}, []move{{id: 3, from: binReady, old: readyKV(3, 0, 30).e, to: binBuried}})
	c.checkBytes(t)
	if c.bodyBytes != 400 {
		t.Fatalf("%d bytes after job 3 left ready, want 400", c.bodyBytes)
	}
	// A new picture keeps the records of the jobs it still shows with
	// the same entry: job 4 as it was, job 5 (marked) with a new one.
	c.store(pictureView("t", [][]kv{{readyKV(5, 1, 60)}, {readyKV(4, 0, 40)}}), now, 8, c.begin())
	c.checkBytes(t)
	if c.bodyBytes != 400 || c.tubes["t"].body(4) == nil {
		t.Fatalf("after a new picture: %d bytes, job 4's record %v; want 400, kept", c.bodyBytes, c.tubes["t"].body(4))
	}
	if w := c.wanting(tubes, nil); len(w) != 1 || w[0].kv.id != 5 {
		t.Fatalf("wanting after a new picture = %v, want job 5 again", w)
	}
	// A record read for an entry the picture no longer shows is not kept.
	c.keep(ahead{shardRef{"t", 0}, readyKV(5, 0, 50)}, bodyRec(10), false)
	c.checkBytes(t)
	c.forget("t")
	c.checkBytes(t)
	if c.bodyBytes != 0 {
		t.Fatalf("%d bytes after the picture was dropped, want 0", c.bodyBytes)
	}
}

// A picture that a failed claim showed wrong is not used, nor read ahead
// for, but its records go on to the next picture for the jobs it shows.
func TestReadAheadStalePicture(t *testing.T) {
	var c readyCache
	now := int64(1e18)
	tubes := []string{"t"}
	c.store(pictureView("t", [][]kv{{readyKV(1, 0, 10), readyKV(2, 0, 20)}}), now, 8, c.begin())
	for _, a := range c.wanting(tubes, nil) {
		c.keep(a, bodyRec(100), false)
	}
	c.stale("t")
	if got := c.take(tubes, now, 1, 0); got != nil {
		t.Fatalf("take from a stale picture = %v, want nil", ids(got))
	}
	if w := c.wanting(tubes, nil); w != nil {
		t.Fatalf("wanting from a stale picture = %v, want none", w)
	}
	// Job 1 was taken elsewhere: the new picture shows job 2 only.
	c.store(pictureView("t", [][]kv{{readyKV(2, 0, 20)}}), now, 8, c.begin())
	c.checkBytes(t)
	if c.bodyBytes != 100 || c.tubes["t"].body(2) == nil {
		t.Fatalf("after the next read: %d bytes, job 2's record %v; want 100, kept", c.bodyBytes, c.tubes["t"].body(2))
	}
	if got := c.take(tubes, now, 1, 0); len(got) != 1 || got[0].id != 2 || got[0].rec == nil {
		t.Fatalf("take after the next read = %+v, want job 2 with its record", got)
	}
}

func TestReadAheadBudget(t *testing.T) {
	var c readyCache
	now := int64(1e18)
	var ready []kv
	for i := range aheadJobs {
		ready = append(ready, readyKV(beanspike.ID(i+1), 0, int64(i)))
	}
	c.store(pictureView("t", [][]kv{ready}), now, 2*aheadJobs, c.begin())
	w := c.wanting([]string{"t"}, nil)
	if len(w) != aheadJobs {
		t.Fatalf("wanting %d, want %d", len(w), aheadJobs)
	}
	// Records being read count as held: while aheadLow or more are being
	// read, a concurrent claim reads none.
	for _, a := range w[aheadLow+2:] {
		c.keep(a, nil, false) // failed
	}
	if again := c.wanting([]string{"t"}, nil); again != nil {
		t.Fatalf("wanting while %d reads are pending = %d jobs, want none", aheadLow+2, len(again))
	}
	w = w[:aheadLow+2]
	size := aheadBudget / 4
	for _, a := range w {
		c.keep(a, bodyRec(size), false)
	}
	c.checkBytes(t)
	if c.bodyBytes != 4*size || c.tubes["t"].held != 4 {
		t.Fatalf("%d bytes in %d records, want the budget's 4 records", c.bodyBytes, c.tubes["t"].held)
	}
	if w := c.wanting([]string{"t"}, nil); w != nil {
		t.Fatalf("wanting over the budget = %v, want none", w)
	}
}

// A Reserve whose job's record was read ahead, or put by the same
// process, is one command; a job whose body is too large for that is read
// after its claim. Every job gets its own body, whatever path it took,
// and the caller's changes to the body it put do not show.
func TestReadAheadReserve(t *testing.T) {
	needInProcess(t, "counting commands")
	ctx := context.Background()
	q := newTestQueue(t, WithSweepInterval(time.Hour))
	q.s.ready.setTTL(time.Hour) // count the same on a slow machine
	other := newPeer(t, q)
	for _, c := range []struct {
		size     int
		put      *Queue
		compress bool
	}{
		{100, other, false}, {aheadBody + 1, other, false}, {2000, other, true},
		{100, q, false}, {aheadBody + 1, q, false}, {2000, q, true},
	} {
		tube := fmt.Sprintf("ra%d-%t-%t", c.size, c.put == q, c.compress)
		size := c.size
		var opts []beanspike.PutOption
		if c.compress {
			opts = append(opts, beanspike.WithCompression())
		}
		// A first job gives q a picture of the tube.
		if _, err := c.put.Put(ctx, tube, nil); err != nil {
			t.Fatal(err)
		}
		j, err := q.Reserve(ctx, tube)
		if err != nil {
			t.Fatal(err)
		}
		if err := q.Delete(ctx, j.ID); err != nil {
			t.Fatal(err)
		}
		const n = 200
		want := map[beanspike.ID][]byte{}
		for i := range n {
			body := bytes.Repeat([]byte{byte(i)}, size)
			id, err := c.put.Put(ctx, tube, body, opts...)
			if err != nil {
				t.Fatal(err)
			}
			want[id] = bytes.Clone(body)
			clear(body)
		}
		// What q put itself it holds from the start, up to aheadBody.
		q.s.ready.mu.Lock()
		held := q.s.ready.tubes[tube].held
		q.s.ready.mu.Unlock()
		if local := c.put == q && size <= aheadBody; local && held != n || !local && held != 0 {
			t.Errorf("%s: %d records held after the puts", tube, held)
		}
		c0 := tgt.srv.Stats().Commands
		for range n {
			j, err := q.Reserve(ctx, tube)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(j.Body, want[j.ID]) {
				t.Fatalf("job %d: body %d bytes, not the one put", j.ID, len(j.Body))
			}
			delete(want, j.ID)
			if err := q.Delete(ctx, j.ID); err != nil {
				t.Fatal(err)
			}
		}
		rd := float64(tgt.srv.Stats().Commands-c0) / n
		t.Logf("%s: %.2f commands per Reserve+Delete", tube, rd)
		if size <= aheadBody && rd > 2.2 || size > aheadBody && (rd < 2.8 || rd > 3.3) {
			t.Errorf("%s: %.2f commands per Reserve+Delete", tube, rd)
		}
		if q.s.ready.bodyBytes != 0 {
			t.Errorf("%d bytes read ahead after the tube was emptied", q.s.ready.bodyBytes)
		}
	}
}
