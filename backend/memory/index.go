package memory

import "math/bits"

// jobIndex finds a job by its ID. It is an open-addressing hash table
// that stores only *job pointers, 8 bytes a slot, and reads each key from
// the job itself: a Go map of ID to *job costs about 35 bytes a job, this
// 10 to 13, as its subtables are between 13/16 and 5/8 full.
//
// An ID is hashed by multiplication with 2^64/φ (Fibonacci hashing),
// which spreads consecutive IDs, the common case, evenly over the table.
// The hash picks a subtable from a directory by its top bits
// (extendible hashing) and a home slot within the subtable by the rest
// (multiply-shift, so a subtable may have any number of slots). Each
// subtable is probed linearly, with wrap-around, and deletes by backward
// shift, so there are no tombstones and no probe sequence lengthens with
// churn.
//
// Growth is per subtable and so never one long pause: a subtable that
// reaches its load limit is rebuilt about 1.3 times larger or, once it
// has maxSlots slots, split into two by the next bit of the hash, the
// directory doubling when needed (it holds only pointers, one or more
// per subtable). A rebuild touches at most a few thousand jobs, unless
// the IDs are so skewed that the directory may not double (see
// maySplit).
// A subtable that falls below 1/8 full is rebuilt smaller; subtables are
// never merged, and the directory never shrinks.
//
// The keys are read through the job pointers, so a rebuild or a backward
// shift reads the IDs of the jobs it moves; a lookup compares the ID of
// each job on its probe path.
type jobIndex struct {
	dir   []*idxTable // 1<<(64-shift) entries; neighbours may share a table
	shift uint        // 64 less the directory's depth
	n     int
}

// idxTable is one subtable of a jobIndex: it holds the IDs whose hash
// begins with its depth-bit prefix.
type idxTable struct {
	slots []*job
	n     int
	limit int  // n at which it grows; always < len(slots)
	depth uint // the number of hash bits that select it
}

const (
	// minSlots is the size of the smallest subtable.
	minSlots = 8
	// maxSlots is the size beyond which a subtable splits instead of
	// growing: 32 KiB of slots.
	maxSlots = 4096
	// A subtable grows when it is 13/16 full, to be 5/8 full.
	loadNum, loadDen = 13, 16
	fillNum, fillDen = 5, 8
)

// hashID is the Fibonacci hash of id.
func hashID(id uint64) uint64 { return id * 0x9e3779b97f4a7c15 }

// limitFor is the number of jobs a subtable of size slots holds before
// it grows.
func limitFor(size int) int { return min(size*loadNum/loadDen, size-1) }

// sizeFor is the number of slots of a subtable rebuilt for n jobs.
func sizeFor(n int) int {
	return max((n*fillDen+fillNum-1)/fillNum, minSlots)
}

func newIdxTable(size int, depth uint) *idxTable {
	return &idxTable{slots: make([]*job, size), limit: limitFor(size), depth: depth}
}

// home returns the slot where a job of hash h belongs.
func (t *idxTable) home(h uint64) int {
	hi, _ := bits.Mul64(h<<t.depth, uint64(len(t.slots)))
	return int(hi)
}

// len returns the number of jobs in the index.
func (x *jobIndex) len() int { return x.n }

// table returns the subtable for hash h.
func (x *jobIndex) table(h uint64) *idxTable {
	if x.dir == nil {
		x.dir = []*idxTable{newIdxTable(minSlots, 0)}
		x.shift = 64
	}
	// A shift by 64 gives 0: a one-table directory.
	return x.dir[h>>x.shift]
}

// get returns the job id, or nil.
func (x *jobIndex) get(id uint64) *job {
	if x.n == 0 {
		return nil
	}
	h := hashID(id)
	t := x.dir[h>>x.shift]
	s := t.slots
	i := t.home(h)
	for {
		j := s[i]
		if j == nil || j.id == id {
			return j
		}
		if i++; i == len(s) {
			i = 0
		}
	}
}

// add puts j into the index. No job with j's ID may be in it.
func (x *jobIndex) add(j *job) {
	h := hashID(j.id)
	t := x.table(h)
	if t.n >= t.limit {
		x.grow(t, h)
		t = x.dir[h>>x.shift]
	}
	t.place(j, h)
	t.n++
	x.n++
}

// place puts j, of hash h, into the first free slot from its home.
func (t *idxTable) place(j *job, h uint64) {
	s := t.slots
	i := t.home(h)
	for s[i] != nil {
		if i++; i == len(s) {
			i = 0
		}
	}
	s[i] = j
}

// remove takes j out of the index and reports whether it was there.
func (x *jobIndex) remove(j *job) bool {
	if x.n == 0 {
		return false
	}
	h := hashID(j.id)
	t := x.dir[h>>x.shift]
	s := t.slots
	i := t.home(h)
	for s[i] != j {
		if s[i] == nil {
			return false
		}
		if i++; i == len(s) {
			i = 0
		}
	}
	// Backward shift: move each later job of the run that may live at
	// the hole into it, until the run ends.
	for k := i; ; {
		if k++; k == len(s) {
			k = 0
		}
		e := s[k]
		if e == nil {
			break
		}
		// e may move to i unless its home is cyclically in (i, k].
		home := t.home(hashID(e.id))
		if i < k && (home <= i || home > k) || k < i && home <= i && home > k {
			s[i] = e
			i = k
		}
	}
	s[i] = nil
	t.n--
	x.n--
	if len(s) > minSlots && t.n < len(s)/8 {
		t.resize(sizeFor(t.n))
	}
	return true
}

// resize rebuilds t with size slots.
func (t *idxTable) resize(size int) {
	old := t.slots
	t.slots = make([]*job, size)
	t.limit = limitFor(size)
	for _, j := range old {
		if j != nil {
			t.place(j, hashID(j.id))
		}
	}
}

// grow makes room in t for one more job, of hash h: it rebuilds t
// larger or splits it.
func (x *jobIndex) grow(t *idxTable, h uint64) {
	size := sizeFor(t.n + 1)
	if size <= maxSlots || !x.maySplit(t) {
		t.resize(size)
		return
	}
	if t.depth+x.shift == 64 {
		// Double the directory: entry i becomes 2i and 2i+1.
		dir := make([]*idxTable, 2*len(x.dir))
		for i, u := range x.dir {
			dir[2*i], dir[2*i+1] = u, u
		}
		x.dir = dir
		x.shift--
	}
	// Split by hash bit depth (from the top): count, then place.
	bit := uint(63 - t.depth)
	n1 := 0
	for _, j := range t.slots {
		if j != nil {
			n1 += int(hashID(j.id) >> bit & 1)
		}
	}
	n0 := t.n - n1
	t0 := newIdxTable(sizeFor(n0), t.depth+1)
	t1 := newIdxTable(sizeFor(n1), t.depth+1)
	t0.n, t1.n = n0, n1
	for _, j := range t.slots {
		if j == nil {
			continue
		}
		if jh := hashID(j.id); jh>>bit&1 == 0 {
			t0.place(j, jh)
		} else {
			t1.place(j, jh)
		}
	}
	// t's directory entries are a run of 1<<(global-local) entries; the
	// lower half goes to t0, the upper half to t1.
	span := 1 << (64 - x.shift - t.depth)
	first := int(h>>x.shift) &^ (span - 1)
	for i := first; i < first+span/2; i++ {
		x.dir[i] = t0
	}
	for i := first + span/2; i < first+span; i++ {
		x.dir[i] = t1
	}
}

// maySplit reports whether t may split: when the directory need not
// double, or when doubling keeps it under one entry per 256 jobs. The
// bound stops a skewed set of IDs from growing the directory without
// limit; the subtable then grows past maxSlots instead.
func (x *jobIndex) maySplit(t *idxTable) bool {
	return t.depth+x.shift < 64 || 2*len(x.dir) <= x.n/256
}

// reset empties the index and frees its memory.
func (x *jobIndex) reset() { *x = jobIndex{} }
