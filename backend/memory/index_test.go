package memory

import (
	"fmt"
	"math/rand/v2"
	"testing"
)

// check verifies the index's structure: the directory, every subtable's
// count and limit, and that every job sits where a lookup finds it (no
// empty slot between its home and its slot).
func (x *jobIndex) check() error {
	if x.dir == nil {
		if x.n != 0 {
			return fmt.Errorf("no directory, %d jobs", x.n)
		}
		return nil
	}
	global := 64 - x.shift
	if len(x.dir) != 1<<global {
		return fmt.Errorf("directory of %d entries at depth %d", len(x.dir), global)
	}
	total := 0
	for i := 0; i < len(x.dir); {
		t := x.dir[i]
		if t.depth > global {
			return fmt.Errorf("subtable depth %d over directory depth %d", t.depth, global)
		}
		span := 1 << (global - t.depth)
		if i%span != 0 {
			return fmt.Errorf("subtable of depth %d starts at entry %d", t.depth, i)
		}
		for k := i; k < i+span; k++ {
			if x.dir[k] != t {
				return fmt.Errorf("entry %d: run of the subtable at %d broken", k, i)
			}
		}
		if t.limit >= len(t.slots) || t.limit != limitFor(len(t.slots)) {
			return fmt.Errorf("subtable at %d: limit %d of %d slots", i, t.limit, len(t.slots))
		}
		if t.n > t.limit {
			return fmt.Errorf("subtable at %d: %d jobs over limit %d", i, t.n, t.limit)
		}
		n := 0
		for pos, j := range t.slots {
			if j == nil {
				continue
			}
			n++
			h := hashID(j.id)
			if int(h>>x.shift)>>(global-t.depth) != i>>(global-t.depth) {
				return fmt.Errorf("job %d in the subtable at %d, not its own", j.id, i)
			}
			for k := t.home(h); k != pos; k = (k + 1) % len(t.slots) {
				if t.slots[k] == nil {
					return fmt.Errorf("job %d at slot %d: hole at %d after its home %d", j.id, pos, k, t.home(h))
				}
			}
		}
		if n != t.n {
			return fmt.Errorf("subtable at %d: count %d, holds %d", i, t.n, n)
		}
		total += n
		i += span
	}
	if total != x.n {
		return fmt.Errorf("count %d, holds %d", x.n, total)
	}
	return nil
}

// idWithHash returns the ID whose hash is h.
func idWithHash(h uint64) uint64 {
	const k = 0x9e3779b97f4a7c15
	inv := uint64(k) // Newton's iteration for the inverse modulo 2^64
	for range 6 {
		inv *= 2 - k*inv
	}
	return h * inv
}

func TestIdWithHash(t *testing.T) {
	for _, h := range []uint64{0, 1, 42, 1 << 63, ^uint64(0), 0x123456789abcdef} {
		if got := hashID(idWithHash(h)); got != h {
			t.Errorf("hashID(idWithHash(%#x)) = %#x", h, got)
		}
	}
}

// indexModel runs ops against a jobIndex and a Go map, checking that
// they agree.
type indexModel struct {
	t    *testing.T
	x    jobIndex
	m    map[uint64]*job
	keys []uint64 // the IDs in m, in no order
}

func newIndexModel(t *testing.T) *indexModel {
	return &indexModel{t: t, m: make(map[uint64]*job)}
}

func (im *indexModel) add(id uint64) {
	im.t.Helper()
	if _, ok := im.m[id]; ok {
		return
	}
	j := &job{id: id}
	im.x.add(j)
	im.m[id] = j
	im.keys = append(im.keys, id)
}

// del removes the ID at index k of keys.
func (im *indexModel) del(k int) {
	im.t.Helper()
	id := im.keys[k]
	j := im.m[id]
	if !im.x.remove(j) {
		im.t.Fatalf("remove(%d) = false, want true", id)
	}
	if im.x.remove(j) {
		im.t.Fatalf("second remove(%d) = true", id)
	}
	delete(im.m, id)
	im.keys[k] = im.keys[len(im.keys)-1]
	im.keys = im.keys[:len(im.keys)-1]
}

func (im *indexModel) verify(probes []uint64) {
	im.t.Helper()
	if err := im.x.check(); err != nil {
		im.t.Fatal(err)
	}
	if im.x.len() != len(im.m) {
		im.t.Fatalf("len = %d, want %d", im.x.len(), len(im.m))
	}
	for id, j := range im.m {
		if got := im.x.get(id); got != j {
			im.t.Fatalf("get(%d) = %p, want %p", id, got, j)
		}
	}
	for _, id := range probes {
		if got, want := im.x.get(id), im.m[id]; got != want {
			im.t.Fatalf("get(%d) = %p, want %p", id, got, want)
		}
	}
}

func TestIndexEmpty(t *testing.T) {
	var x jobIndex
	if j := x.get(1); j != nil {
		t.Fatalf("get on an empty index = %p", j)
	}
	if x.remove(&job{id: 1}) {
		t.Fatal("remove on an empty index = true")
	}
	x.add(&job{id: 1})
	if x.remove(&job{id: 1}) {
		t.Fatal("remove of another job with the same ID = true")
	}
	if x.get(1) == nil || x.get(2) != nil {
		t.Fatal("get after add wrong")
	}
	x.reset()
	if x.len() != 0 || x.get(1) != nil {
		t.Fatal("reset left jobs")
	}
}

// TestIndexRandom checks random sequences of adds and removes against a
// Go map, with IDs drawn in several ways: consecutive as the store makes
// them, random, and crowded into a few homes so that runs are long, wrap
// around the end of a subtable and shift back on delete.
func TestIndexRandom(t *testing.T) {
	gens := map[string]func(r *rand.Rand, next *uint64) uint64{
		"consecutive": func(_ *rand.Rand, next *uint64) uint64 { *next++; return *next },
		"random":      func(r *rand.Rand, _ *uint64) uint64 { return r.Uint64() },
		"crowded": func(r *rand.Rand, _ *uint64) uint64 {
			// Hashes in 4 narrow bands: at the start, at the end
			// (runs wrap around), and two in the middle.
			band := []uint64{0, 1 << 62, 3 << 62, ^uint64(0) - 1<<40}[r.IntN(4)]
			return idWithHash(band + r.Uint64N(1<<40))
		},
		"skewed": func(r *rand.Rand, _ *uint64) uint64 {
			// One hash prefix of 40 bits: splits cannot separate them
			// until deep, so the directory bound is reached.
			return idWithHash(0xabcdef1234<<24 | r.Uint64N(1<<24))
		},
	}
	for name, gen := range gens {
		t.Run(name, func(t *testing.T) {
			seed := rand.Uint64()
			t.Logf("seed %d", seed)
			r := rand.New(rand.NewPCG(seed, 1))
			im := newIndexModel(t)
			var next uint64
			probe := func() []uint64 {
				p := make([]uint64, 8)
				for i := range p {
					p[i] = gen(r, &next)
				}
				return p
			}
			steps := 60000
			if testing.Short() {
				steps = 15000
			}
			for step := range steps {
				// Phases: grow, churn, shrink, and again.
				phase := step * 6 / steps % 3
				switch {
				case phase == 0 && r.IntN(10) < 8, phase == 1 && r.IntN(2) == 0, len(im.keys) == 0:
					im.add(gen(r, &next))
				default:
					k := r.IntN(len(im.keys))
					if name == "consecutive" && r.IntN(4) != 0 {
						k = 0 // mostly the oldest, like a FIFO queue
					}
					im.del(k)
				}
				if step%997 == 0 {
					im.verify(probe())
				}
			}
			im.verify(probe())
			for len(im.keys) > 0 {
				im.del(r.IntN(len(im.keys)))
			}
			im.verify(probe())
		})
	}
}

// TestIndexBackwardShift removes from runs built by hand in the first
// subtable (8 slots): the middle of a run, its head, and a run that wraps
// around the end.
func TestIndexBackwardShift(t *testing.T) {
	home := func(slot uint64) uint64 { return idWithHash(slot<<61 | 12345) }
	cases := []struct {
		name  string
		homes []uint64 // the home slot of each job, added in order
		del   []int    // indexes into homes, removed in order
	}{
		{"middle", []uint64{2, 2, 2, 3}, []int{1}},
		{"head", []uint64{2, 2, 3, 5}, []int{0}},
		{"stays", []uint64{2, 3, 3, 6}, []int{0, 3}},
		{"wrap", []uint64{6, 6, 7, 7, 0}, []int{0}},
		{"wrap-all", []uint64{7, 7, 7, 0, 1}, []int{0, 1, 2}},
		{"wrap-stay", []uint64{7, 0, 0, 6}, []int{3, 0}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			im := newIndexModel(t)
			for i, s := range c.homes {
				// Distinct IDs with the same home differ in low bits.
				im.add(home(s) + uint64(i)*idWithHash(1))
			}
			if len(im.x.dir) != 1 || len(im.x.dir[0].slots) != minSlots {
				t.Fatalf("setup: %d subtables, %d slots", len(im.x.dir), len(im.x.dir[0].slots))
			}
			ids := append([]uint64(nil), im.keys...)
			for _, d := range c.del {
				for k, id := range im.keys {
					if id == ids[d] {
						im.del(k)
						break
					}
				}
				im.verify(ids)
			}
		})
	}
}

// TestIndexGrowth fills the index with consecutive IDs until the
// directory has doubled several times, then empties it and checks that
// every subtable shrank.
func TestIndexGrowth(t *testing.T) {
	const n = 200000
	im := newIndexModel(t)
	for id := uint64(1); id <= n; id++ {
		im.add(id)
	}
	im.verify([]uint64{0, n + 1, 1 << 40})
	if len(im.x.dir) < 32 {
		t.Errorf("%d directory entries for %d jobs, want at least 32", len(im.x.dir), n)
	}
	slots := 0
	for i := 0; i < len(im.x.dir); {
		tb := im.x.dir[i]
		if len(tb.slots) > maxSlots {
			t.Errorf("subtable of %d slots, more than %d", len(tb.slots), maxSlots)
		}
		slots += len(tb.slots)
		i += 1 << (64 - im.x.shift - tb.depth)
	}
	if load := float64(n) / float64(slots); load < 0.6 || load > float64(loadNum)/loadDen {
		t.Errorf("load %.3f after %d consecutive IDs", load, n)
	}
	for len(im.keys) > 0 {
		im.del(len(im.keys) - 1)
	}
	im.verify(nil)
	for _, tb := range im.x.dir {
		if len(tb.slots) != minSlots {
			t.Fatalf("emptied subtable keeps %d slots", len(tb.slots))
		}
	}
}

// TestIndexSkewBound checks that a set of IDs sharing a long hash prefix
// does not grow the directory past one entry per 256 jobs: the subtable
// grows past maxSlots instead.
func TestIndexSkewBound(t *testing.T) {
	im := newIndexModel(t)
	const n = 3 * maxSlots
	for i := range uint64(n) {
		im.add(idWithHash(0x5555<<48 | i<<8))
	}
	im.verify(nil)
	if len(im.x.dir) > max(1, n/256) {
		t.Errorf("directory of %d entries for %d jobs", len(im.x.dir), n)
	}
}

// BenchmarkIndexGet looks up random jobs among 1M consecutive IDs, in
// the index and, as its peer, in a Go map.
func BenchmarkIndexGet(b *testing.B) {
	const n = 1 << 20
	var x jobIndex
	m := make(map[uint64]*job)
	for id := uint64(1); id <= n; id++ {
		j := &job{id: id}
		x.add(j)
		m[id] = j
	}
	r := rand.New(rand.NewPCG(1, 2))
	ids := make([]uint64, 1<<16)
	for i := range ids {
		ids[i] = 1 + r.Uint64N(n)
	}
	// Both read the job found, as the store does.
	b.Run("index", func(b *testing.B) {
		i := 0
		for b.Loop() {
			id := ids[i&(len(ids)-1)]
			if j := x.get(id); j == nil || j.id != id {
				b.Fatal("missing")
			}
			i++
		}
	})
	b.Run("map", func(b *testing.B) {
		i := 0
		for b.Loop() {
			id := ids[i&(len(ids)-1)]
			if j := m[id]; j == nil || j.id != id {
				b.Fatal("missing")
			}
			i++
		}
	})
}

// BenchmarkIndexAddRemove adds 1M consecutive IDs, growing from empty,
// then removes them oldest first, in the index and, as its peer, in a Go
// map; it reports the cost per job.
func BenchmarkIndexAddRemove(b *testing.B) {
	const n = 1 << 20
	jobs := make([]job, n)
	for i := range jobs {
		jobs[i].id = uint64(i + 1)
	}
	b.Run("index", func(b *testing.B) {
		for b.Loop() {
			var x jobIndex
			for i := range jobs {
				x.add(&jobs[i])
			}
			for i := range jobs {
				x.remove(&jobs[i])
			}
		}
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/n, "ns/job")
	})
	b.Run("map", func(b *testing.B) {
		for b.Loop() {
			m := make(map[uint64]*job)
			for i := range jobs {
				m[jobs[i].id] = &jobs[i]
			}
			for i := range jobs {
				delete(m, jobs[i].id)
			}
		}
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/n, "ns/job")
	})
}
