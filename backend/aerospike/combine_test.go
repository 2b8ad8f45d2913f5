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
	c.await(t, func() bool { return c.inflight == c.lanes }, "lanes taken")
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
	idle    []bool // per command in ones: told nothing else was in flight
	groups  [][]*pending
}

// enqueue starts a command while the lanes are taken and waits until it
// is the n-th waiting.
func (c *combiner) enqueue(t *testing.T, wg *sync.WaitGroup, g *gate, recs []as.BatchRecordIfc, n int) {
	t.Helper()
	wg.Go(func() { c.run(context.Background(), recs, g.one, g.group) })
	c.queued(t, n)
}

// idle checks that c has nothing in flight and nothing waiting.
func (c *combiner) idle(t *testing.T) {
	t.Helper()
	if c.inflight != 0 || len(c.queue) != 0 {
		t.Fatalf("after the commands: %d in flight, %d queued", c.inflight, len(c.queue))
	}
}

// busyCombiner returns a combiner whose every lane is taken by a command
// that the returned gate holds until released; wg waits for them.
func busyCombiner(t *testing.T) (*combiner, *gate, *sync.WaitGroup) {
	t.Helper()
	c, g, wg := &combiner{lanes: testLanes}, &gate{release: make(chan struct{})}, &sync.WaitGroup{}
	for range testLanes {
		wg.Go(func() { c.run(context.Background(), readRecs(t, 1), g.one, g.group) })
	}
	c.busy(t)
	return c, g, wg
}

func (g *gate) one(_ context.Context, recs []as.BatchRecordIfc, idle bool) {
	g.mu.Lock()
	g.ones = append(g.ones, recs)
	g.idle = append(g.idle, idle)
	g.mu.Unlock()
	<-g.release
}

func (g *gate) group(p []*pending) {
	g.mu.Lock()
	g.groups = append(g.groups, p)
	g.mu.Unlock()
}

// testLanes is the lanes of the combiners under test.
const testLanes = 3

func TestCombinerAloneSendsAtOnce(t *testing.T) {
	c := combiner{lanes: testLanes}
	g := &gate{release: make(chan struct{})}
	close(g.release)
	recs := readRecs(t, 2)
	for range 3 {
		c.run(context.Background(), recs, g.one, g.group)
	}
	if len(g.ones) != 3 || len(g.groups) != 0 {
		t.Fatalf("sequential commands: %d sent alone, %d groups; want 3, 0", len(g.ones), len(g.groups))
	}
	for i, idle := range g.idle {
		if !idle {
			t.Errorf("sequential command %d: told another was in flight", i)
		}
	}
	c.idle(t)
}

// Only the command that finds nothing in flight is told so: the others
// that take a lane, and a waiting command sent alone, are not.
func TestCombinerTellsIdle(t *testing.T) {
	c, g, wg := busyCombiner(t)
	c.enqueue(t, wg, g, readRecs(t, 1), 1)
	close(g.release)
	wg.Wait()
	idle := 0
	for _, v := range g.idle {
		if v {
			idle++
		}
	}
	if len(g.ones) != testLanes+1 || idle != 1 {
		t.Fatalf("%d commands sent alone, %d told nothing else was in flight; want %d, 1", len(g.ones), idle, testLanes+1)
	}
	c.idle(t)
}

func TestCombinerMergesWaitingCommands(t *testing.T) {
	c, g, wg := busyCombiner(t)
	// The lanes are taken: the next commands wait, in arrival order.
	var waiting [][]as.BatchRecordIfc
	for i := range 5 {
		recs := readRecs(t, i+1)
		waiting = append(waiting, recs)
		c.enqueue(t, wg, g, recs, i+1)
	}
	close(g.release)
	wg.Wait()
	if len(g.ones) != testLanes {
		t.Errorf("%d commands sent alone, want %d", len(g.ones), testLanes)
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
	c.idle(t)
}

func TestCombinerBoundsGroups(t *testing.T) {
	c, g, wg := busyCombiner(t)
	// Three commands of half the bound each: two fit in a group.
	half := maxCombined / 2
	for i := range 3 {
		recs := readRecs(t, half)
		c.enqueue(t, wg, g, recs, i+1)
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
	if total+len(g.ones) != testLanes+3 {
		t.Errorf("%d commands in groups and %d alone; want %d in all", total, len(g.ones), testLanes+3)
	}
	if len(g.groups) != 1 || len(g.groups[0]) != 2 {
		t.Errorf("%d groups, want one of the first 2 waiting commands", len(g.groups))
	}
}

func TestWithInFlightSetsLanes(t *testing.T) {
	if got := newTestQueue(t).s.comb.lanes; got != DefaultInFlight {
		t.Errorf("default lanes %d, want %d", got, DefaultInFlight)
	}
	if got := newTestQueue(t, WithInFlight(5)).s.comb.lanes; got != 5 {
		t.Errorf("WithInFlight(5): lanes %d", got)
	}
}

// A combined command carries at most maxKeyWrites writes to one record;
// reads of it do not count.
func TestCombinerBoundsWritesPerRecord(t *testing.T) {
	c, g, wg := busyCombiner(t)
	k, err := as.NewKey("test", "c", "hot")
	if err != nil {
		t.Fatal(err)
	}
	const n = maxKeyWrites + 4
	for i := range n {
		recs := []as.BatchRecordIfc{as.NewBatchWrite(nil, k), as.NewBatchRead(nil, k, nil)}
		c.enqueue(t, wg, g, recs, i+1)
	}
	close(g.release)
	wg.Wait()
	sizes := map[int]int{}
	for _, grp := range g.groups {
		sizes[len(grp)]++
	}
	// The remaining 4 go as a group, or as fewer groups and single
	// commands, depending on which lane frees first.
	if sizes[maxKeyWrites] != 1 {
		t.Fatalf("group sizes %v, want one group of %d", sizes, maxKeyWrites)
	}
	for size := range sizes {
		if size > maxKeyWrites {
			t.Fatalf("a group of %d writes to one record", size)
		}
	}
	c.idle(t)
}
