package aerospike

import (
	"context"
	"sync"
	"testing"
	"time"

	as "github.com/aerospike/aerospike-client-go/v8"
)

func readRecs(t *testing.T, n int) []as.BatchRecordIfc {
	t.Helper()
	recs := make([]as.BatchRecordIfc, n)
	for i := range recs {
		k, err := as.NewKey("test", "c", i)
		if err != nil {
			t.Fatal(err)
		}
		recs[i] = as.NewBatchRead(nil, k, nil)
	}
	return recs
}

// queued waits until n commands wait in c.
func (c *combiner) queued(t *testing.T, n int) {
	t.Helper()
	c.await(t, func() bool { return len(c.queue) == n }, "commands queued")
}

// busy waits until every lane of c is taken.
func (c *combiner) busy(t *testing.T) {
	t.Helper()
	c.await(t, func() bool { return c.inflight == combineLanes }, "lanes taken")
}

func (c *combiner) await(t *testing.T, cond func() bool, what string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		c.mu.Lock()
		ok := cond()
		c.mu.Unlock()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("waited in vain for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

// gate is a command executor that holds every single command until
// released and records what it was given.
type gate struct {
	mu      sync.Mutex
	release chan struct{}
	ones    [][]as.BatchRecordIfc
	groups  [][]*pending
}

func (g *gate) one(_ context.Context, recs []as.BatchRecordIfc) {
	g.mu.Lock()
	g.ones = append(g.ones, recs)
	g.mu.Unlock()
	<-g.release
}

func (g *gate) group(p []*pending) {
	g.mu.Lock()
	g.groups = append(g.groups, p)
	g.mu.Unlock()
}

func TestCombinerAloneSendsAtOnce(t *testing.T) {
	var c combiner
	g := &gate{release: make(chan struct{})}
	close(g.release)
	recs := readRecs(t, 2)
	for range 3 {
		c.run(context.Background(), recs, g.one, g.group)
	}
	if len(g.ones) != 3 || len(g.groups) != 0 {
		t.Fatalf("sequential commands: %d sent alone, %d groups; want 3, 0", len(g.ones), len(g.groups))
	}
	if c.inflight != 0 || len(c.queue) != 0 {
		t.Fatalf("after the commands: %d in flight, %d queued", c.inflight, len(c.queue))
	}
}

func TestCombinerMergesWaitingCommands(t *testing.T) {
	var c combiner
	g := &gate{release: make(chan struct{})}
	ctx := context.Background()
	var wg sync.WaitGroup
	for range combineLanes {
		wg.Go(func() { c.run(ctx, readRecs(t, 1), g.one, g.group) })
	}
	c.busy(t)
	// The lanes are taken: the next commands wait, in arrival order.
	var waiting [][]as.BatchRecordIfc
	for i := range 5 {
		recs := readRecs(t, i+1)
		waiting = append(waiting, recs)
		wg.Go(func() { c.run(ctx, recs, g.one, g.group) })
		c.queued(t, i+1)
	}
	close(g.release)
	wg.Wait()
	if len(g.ones) != combineLanes {
		t.Errorf("%d commands sent alone, want %d", len(g.ones), combineLanes)
	}
	if len(g.groups) != 1 {
		t.Fatalf("%d groups sent, want the 5 waiting commands as 1", len(g.groups))
	}
	grp := g.groups[0]
	if len(grp) != len(waiting) {
		t.Fatalf("group of %d commands, want %d", len(grp), len(waiting))
	}
	for i, p := range grp {
		if &p.recs[0] != &waiting[i][0] {
			t.Errorf("group member %d is not the command that waited %d-th", i, i)
		}
	}
	if c.inflight != 0 || len(c.queue) != 0 {
		t.Fatalf("after the commands: %d in flight, %d queued", c.inflight, len(c.queue))
	}
}

func TestCombinerBoundsGroups(t *testing.T) {
	var c combiner
	g := &gate{release: make(chan struct{})}
	ctx := context.Background()
	var wg sync.WaitGroup
	for range combineLanes {
		wg.Go(func() { c.run(ctx, readRecs(t, 1), g.one, g.group) })
	}
	c.busy(t)
	// Three commands of half the bound each: two fit in a group.
	half := maxCombined / 2
	for i := range 3 {
		recs := readRecs(t, half)
		wg.Go(func() { c.run(ctx, recs, g.one, g.group) })
		c.queued(t, i+1)
	}
	close(g.release)
	wg.Wait()
	total := 0
	for _, grp := range g.groups {
		n := 0
		for _, p := range grp {
			n += len(p.recs)
		}
		if n > maxCombined {
			t.Errorf("group of %d records, over the bound %d", n, maxCombined)
		}
		total += len(grp)
	}
	// The third command went alone (a group of one is sent as one).
	if total+len(g.ones) != combineLanes+3 {
		t.Errorf("%d commands in groups and %d alone; want %d in all", total, len(g.ones), combineLanes+3)
	}
	if len(g.groups) != 1 || len(g.groups[0]) != 2 {
		t.Errorf("%d groups, want one of the first 2 waiting commands", len(g.groups))
	}
}
