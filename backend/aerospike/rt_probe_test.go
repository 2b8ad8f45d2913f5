package aerospike

import (
	"context"
	"testing"
	"time"
)

// TestRoundTrips checks the number of commands the hot operations send:
// one per Put, two per Reserve and Delete (the claim with the read of the
// job record, and the delete's compare-and-swap; the view read that now
// and then refreshes the ready cache, and the batched record deletes of
// the background loop, add a little), whatever the backlog.
func TestRoundTrips(t *testing.T) {
	needInProcess(t, "counting commands")
	q := newTestQueue(t, WithSweepInterval(time.Hour))
	q.s.ready.setTTL(time.Hour) // count the same on a slow machine
	ctx := context.Background()
	var first [2]float64
	for _, backlog := range []int{10, 1000} {
		if _, err := q.DeleteTube(ctx, "p"); err != nil && backlog != 10 {
			t.Fatal(err)
		}
		for range backlog {
			if _, err := q.Put(ctx, "p", benchBody); err != nil {
				t.Fatal(err)
			}
		}
		const n = 50
		c0 := tgt.srv.Stats().Commands
		for range n {
			if _, err := q.Put(ctx, "p", benchBody); err != nil {
				t.Fatal(err)
			}
		}
		c1 := tgt.srv.Stats().Commands
		for range n {
			j, err := q.Reserve(ctx, "p")
			if err != nil {
				t.Fatal(err)
			}
			if err := q.Delete(ctx, j.ID); err != nil {
				t.Fatal(err)
			}
		}
		c2 := tgt.srv.Stats().Commands
		put, rd := float64(c1-c0)/n, float64(c2-c1)/n
		t.Logf("backlog %d: %.2f commands per Put, %.2f per Reserve+Delete", backlog, put, rd)
		// Alone, a Put writes the job record and then its entry; a
		// Reserve claims a job whose record was read ahead, a Delete
		// writes the entry. A block of IDs costs one more command every
		// 256 puts; the ready cache reads the index, and a claim reads
		// records ahead, now and then.
		if put > 2.1 || rd > 2.3 {
			t.Errorf("backlog %d: %.2f commands per Put (want 2), %.2f per Reserve+Delete (want 2)", backlog, put, rd)
		}
		if backlog == 10 {
			first = [2]float64{put, rd}
		} else if put > first[0]+0.1 || rd > first[1]+0.1 {
			t.Errorf("backlog %d: %.2f commands per Put, %.2f per Reserve+Delete; with a backlog of 10: %.2f, %.2f",
				backlog, put, rd, first[0], first[1])
		}
	}
}

// A tick skips the view read of a tube that another client of the
// process viewed in the last half tick; a repair tick never does.
func TestTickSkipsViewedTubes(t *testing.T) {
	needInProcess(t, "counting commands")
	ctx := context.Background()
	q := newTestQueue(t, WithSweepInterval(time.Hour))
	q.s.ready.setTTL(time.Hour) // count the same on a slow machine
	c, err := q.NewClient()
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := q.Put(ctx, "v", benchBody); err != nil {
		t.Fatal(err)
	}
	tick := func() int64 {
		t.Helper()
		c0 := tgt.srv.Stats().Commands
		q.maintain(ctx)
		return tgt.srv.Stats().Commands - c0
	}
	tick() // flushes what the Put left
	if _, err := c.view(ctx, []string{"v"}, viewSpec{ready: 1}); err != nil {
		t.Fatal(err)
	}
	if n := tick(); n != 0 {
		t.Errorf("tick after another client's view: %d commands, want 0", n)
	}
	q.s.mu.Lock()
	q.s.viewed["v"] -= int64(q.s.cfg.sweepInterval)
	q.s.mu.Unlock()
	if n := tick(); n != 1 {
		t.Errorf("tick a whole interval after the view: %d commands, want 1", n)
	}
	q.mu.Lock()
	q.ticks = repairEvery - 1
	q.mu.Unlock()
	if _, err := c.view(ctx, []string{"v"}, viewSpec{ready: 1}); err != nil {
		t.Fatal(err)
	}
	if n := tick(); n != 1 {
		t.Errorf("repair tick after another client's view: %d commands, want 1", n)
	}
}

// setTTL makes the pictures of c last d.
func (c *readyCache) setTTL(d time.Duration) {
	c.mu.Lock()
	c.ttl = d
	c.mu.Unlock()
}
