package conformance

import (
	"fmt"
	"testing"

	"github.com/beanspike/beanspike"
)

var orderTests = []test{
	{"PutReserveDelete", testPutReserveDelete},
	{"DefaultTube", testDefaultTube},
	{"PriorityOrder", testPriorityOrder},
	{"FIFOAmongEqualPriorities", testFIFO},
	{"FIFOAfterRelease", testFIFOAfterRelease},
	{"MultiTubeOrder", testMultiTubeOrder},
}

func testPutReserveDelete(t *testing.T, e *env) {
	q := e.client()
	id := e.putS(q, "work", "hello")
	s := e.wantState(q, id, beanspike.Ready)
	wantEqual(t, "StatsJob of a job put without options",
		beanspike.JobStats{Tube: "work", Priority: beanspike.DefaultPriority, TTR: beanspike.DefaultTTR}, *s,
		only[beanspike.JobStats]("Tube", "Priority", "TTR"))
	id2 := e.putS(q, "work", "world")
	if id2 == id {
		t.Fatalf("two Puts returned the same ID %d", id)
	}
	j := e.reserveID(q, id, "work")
	wantEqual(t, "Reserve",
		beanspike.Job{ID: id, Tube: "work", Body: []byte("hello"), Priority: beanspike.DefaultPriority, TTR: beanspike.DefaultTTR, Reserves: 1}, *j)
	e.wantState(q, id, beanspike.Reserved)
	ok(t, q.Delete(e.ctx, id), "Delete(%d) of a job this client reserved", id)
	e.wantGone(q, id)
	e.reserveID(q, id2, "work")
	ok(t, q.Delete(e.ctx, id2), "Delete(%d)", id2)
	e.pollNone(q, "work")
}

func testDefaultTube(t *testing.T, e *env) {
	q := e.client()
	id := e.putS(q, beanspike.DefaultTube, "x")
	e.putS(q, "other", "y")
	j := e.reserveID(q, id) // no tubes: the default tube
	if j.Tube != beanspike.DefaultTube {
		t.Fatalf("job reserved from the default tube has Tube %q", j.Tube)
	}
	e.pollNone(q)
}

func testPriorityOrder(t *testing.T, e *env) {
	q := e.client()
	pris := []uint32{500, 0, 4294967295, 1024, 1, 1023, 70000}
	ids := make(map[uint32]beanspike.ID)
	for _, p := range pris {
		ids[p] = e.putS(q, "t", fmt.Sprint(p), beanspike.WithPriority(p))
	}
	for _, p := range []uint32{0, 1, 500, 1023, 1024, 70000, 4294967295} {
		j := e.reserveID(q, ids[p], "t")
		if j.Priority != p {
			t.Fatalf("job %d has Priority %d, want %d", j.ID, j.Priority, p)
		}
	}
	e.pollNone(q, "t")
}

func testFIFO(t *testing.T, e *env) {
	q := e.client()
	var ids []beanspike.ID
	for i := range 20 {
		ids = append(ids, e.putS(q, "t", fmt.Sprint(i), beanspike.WithPriority(7)))
	}
	urgent := e.putS(q, "t", "urgent", beanspike.WithPriority(6))
	e.reserveID(q, urgent, "t")
	for _, id := range ids {
		e.reserveID(q, id, "t")
	}
}

// testFIFOAfterRelease checks that equal priorities go in the order the
// jobs became ready, not in ID order: a released job goes behind jobs that
// were already ready.
func testFIFOAfterRelease(t *testing.T, e *env) {
	q := e.client()
	a := e.putS(q, "t", "a", beanspike.WithPriority(3))
	b := e.putS(q, "t", "b", beanspike.WithPriority(3))
	c := e.putS(q, "t", "c", beanspike.WithPriority(3))
	e.reserveID(q, a, "t")
	ok(t, q.Release(e.ctx, a, 3, 0), "Release(%d)", a)
	e.reserveID(q, b, "t")
	e.reserveID(q, c, "t")
	e.reserveID(q, a, "t")

	// A kicked job, too, becomes ready when it is kicked.
	d := e.putS(q, "u", "d", beanspike.WithPriority(3))
	e.reserveID(q, d, "u")
	ok(t, q.Bury(e.ctx, d, 3, "later"), "Bury(%d)", d)
	f := e.putS(q, "u", "f", beanspike.WithPriority(3))
	ok(t, q.KickJob(e.ctx, d), "KickJob(%d)", d)
	e.reserveID(q, f, "u")
	e.reserveID(q, d, "u")
}

// testMultiTubeOrder checks the choice across tubes: lowest priority, and
// among the tubes' equally urgent heads the lower ID.
func testMultiTubeOrder(t *testing.T, e *env) {
	q := e.client()
	type put struct {
		tube string
		pri  uint32
	}
	puts := []put{
		{"a", 5}, {"b", 5}, {"a", 5}, {"c", 9}, {"b", 1}, {"c", 5}, {"a", 2}, {"b", 5}, {"d", 0},
	}
	type item struct {
		id   beanspike.ID
		tube string
		pri  uint32
	}
	var items []item
	for i, p := range puts {
		id := e.putS(q, p.tube, fmt.Sprint(i), beanspike.WithPriority(p.pri))
		items = append(items, item{id, p.tube, p.pri})
	}
	watched := map[string]bool{"a": true, "b": true, "c": true}
	for range 8 {
		// The head of each tube: lowest priority, then first put.
		heads := map[string]int{}
		for i, it := range items {
			if !watched[it.tube] {
				continue
			}
			if h, ok := heads[it.tube]; !ok || it.pri < items[h].pri {
				heads[it.tube] = i
			}
		}
		best := -1
		for _, h := range heads {
			if best < 0 || items[h].pri < items[best].pri || items[h].pri == items[best].pri && items[h].id < items[best].id {
				best = h
			}
		}
		e.reserveID(q, items[best].id, "c", "a", "b", "a")
		items = append(items[:best], items[best+1:]...)
	}
	e.pollNone(q, "a", "b", "c")
	if len(items) != 1 || items[0].tube != "d" {
		t.Fatalf("left over: %v", items)
	}
}
