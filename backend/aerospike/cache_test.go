package aerospike

import (
	"testing"

	"github.com/beanspike/beanspike"
)

// picture makes a view of one tube with the given ready entries per
// index record, each read with depth entries.
func pictureView(tube string, shards [][]kv) []tubeView {
	tv := tubeView{name: tube, exists: true}
	for i, r := range shards {
		tv.shards = append(tv.shards, shardView{ref: shardRef{tube, i}, ready: r, next: noDue})
	}
	return []tubeView{tv}
}

func readyKV(id beanspike.ID, pri uint32, seq int64) kv {
	e := entry{pri: pri}
	return kv{id, e.asReady(seq)}
}

func ids(cs []cand) []beanspike.ID {
	var out []beanspike.ID
	for _, c := range cs {
		out = append(out, c.id)
	}
	return out
}

func TestReadyCacheTake(t *testing.T) {
	var c readyCache
	now := int64(1e18)
	c.store(pictureView("t", [][]kv{
		{readyKV(1, 5, 10), readyKV(3, 5, 30)},
		{readyKV(2, 1, 20)},
	}), now, 2, c.begin())
	// Index record 0 was read in part (2 of depth 2): once its known
	// entries are gone, the picture cannot tell.
	got := ids(c.take([]string{"t"}, now, 2, 0))
	if len(got) != 2 || got[0] != 2 || got[1] != 1 {
		t.Fatalf("take = %v, want [2 1]", got)
	}
	// A local put of a more urgent job into the complete record shows.
	c.add(shardRef{"t", 1}, readyKV(4, 0, 40))
	if got := ids(c.take([]string{"t"}, now, 1, 0)); len(got) != 1 || got[0] != 4 {
		t.Fatalf("take after add = %v, want [4]", got)
	}
	// A put beyond what the partial record 0 shows is not added.
	c.add(shardRef{"t", 0}, readyKV(5, 9, 50))
	if got := ids(c.take([]string{"t"}, now, 1, 0)); len(got) != 1 || got[0] != 3 {
		t.Fatalf("take = %v, want [3]", got)
	}
	if got := c.take([]string{"t"}, now, 1, 0); got != nil {
		t.Fatalf("take from an exhausted partial record = %v, want nil", ids(got))
	}
	// Too old, or past a due time: no answer.
	c.store(pictureView("t", [][]kv{{readyKV(6, 1, 60)}}), now, 2, c.begin())
	if got := c.take([]string{"t"}, now+int64(cacheTTL), 1, 0); got != nil {
		t.Fatalf("take from an old picture = %v", ids(got))
	}
	c.due(shardRef{"t", 0}, now)
	if got := c.take([]string{"t"}, now, 1, 0); got != nil {
		t.Fatalf("take past a due time = %v", ids(got))
	}
	if got := c.take([]string{"u"}, now, 1, 0); got != nil {
		t.Fatalf("take from a tube never read = %v", ids(got))
	}
}

// A view read that began before a claim ended must not bring the claimed
// job back.
func TestReadyCacheInFlight(t *testing.T) {
	var c readyCache
	now := int64(1e18)
	view := pictureView("t", [][]kv{{readyKV(1, 1, 10), readyKV(2, 1, 20)}})
	c.store(view, now, 8, c.begin())
	gen := c.begin() // a read begins
	taken := c.take([]string{"t"}, now, 1, 0)
	if got := ids(taken); len(got) != 1 || got[0] != 1 {
		t.Fatalf("take = %v, want [1]", got)
	}
	c.store(view, now, 8, gen) // in flight: kept out
	taken2 := c.take([]string{"t"}, now, 2, 0)
	if got := ids(taken2); len(got) != 1 || got[0] != 2 {
		t.Fatalf("take = %v, want [2]", got)
	}
	c.done(taken)
	c.done(taken2)
	c.store(view, now, 8, gen) // began before the claims ended: kept out
	if got := c.take([]string{"t"}, now, 2, 0); got != nil {
		t.Fatalf("take = %v, want nothing", ids(got))
	}
	c.store(view, now, 8, c.begin()) // began after: shows the job again
	if got := ids(c.take([]string{"t"}, now, 2, 0)); len(got) != 2 {
		t.Fatalf("take = %v, want both jobs", got)
	}
}
