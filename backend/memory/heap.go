package memory

// jobHeap is a binary min-heap of jobs that keeps each job's index in
// job.hidx, so a job can be removed or re-positioned in O(log n).
//
// A ready heap orders by (priority, key, id), where key is the ready
// sequence; the delayed, reserved and buried heaps order by (key, id),
// where key is the due time, the reservation deadline or the bury
// sequence.
type jobHeap struct {
	byPri bool
	jobs  []*job
}

func (h *jobHeap) len() int { return len(h.jobs) }

// min returns the first job, or nil when the heap is empty.
func (h *jobHeap) min() *job {
	if len(h.jobs) == 0 {
		return nil
	}
	return h.jobs[0]
}

func (h *jobHeap) less(a, b *job) bool {
	if h.byPri && a.pri != b.pri {
		return a.pri < b.pri
	}
	if a.key != b.key {
		return a.key < b.key
	}
	return a.id < b.id
}

func (h *jobHeap) push(j *job) {
	j.hidx = int32(len(h.jobs))
	h.jobs = append(h.jobs, j)
	h.up(len(h.jobs) - 1)
}

// remove takes j out of the heap; j must be in it.
func (h *jobHeap) remove(j *job) {
	i := int(j.hidx)
	n := len(h.jobs) - 1
	if i != n {
		h.swap(i, n)
	}
	h.jobs[n] = nil
	h.jobs = h.jobs[:n]
	if i != n {
		if !h.down(i) {
			h.up(i)
		}
	}
	j.hidx = -1
	if n == 0 && cap(h.jobs) > 64 {
		h.jobs = nil // let a drained heap give its memory back
	}
}

// fix restores the order after j's key changed.
func (h *jobHeap) fix(j *job) {
	i := int(j.hidx)
	if !h.down(i) {
		h.up(i)
	}
}

func (h *jobHeap) swap(i, k int) {
	h.jobs[i], h.jobs[k] = h.jobs[k], h.jobs[i]
	h.jobs[i].hidx = int32(i)
	h.jobs[k].hidx = int32(k)
}

func (h *jobHeap) up(i int) {
	for i > 0 {
		p := (i - 1) / 2
		if !h.less(h.jobs[i], h.jobs[p]) {
			return
		}
		h.swap(i, p)
		i = p
	}
}

// down sifts the job at i down and reports whether it moved.
func (h *jobHeap) down(i0 int) bool {
	i, n := i0, len(h.jobs)
	for {
		l := 2*i + 1
		if l >= n {
			break
		}
		c := l
		if r := l + 1; r < n && h.less(h.jobs[r], h.jobs[l]) {
			c = r
		}
		if !h.less(h.jobs[c], h.jobs[i]) {
			break
		}
		h.swap(i, c)
		i = c
	}
	return i > i0
}

// tubeHeap is a min-heap of tubes by the time of their next timed event
// (a delayed job falling due, a reservation lapsing, a pause ending).
type tubeHeap []*tube

func (h tubeHeap) less(i, k int) bool { return h[i].next < h[k].next }

func (h tubeHeap) swap(i, k int) {
	h[i], h[k] = h[k], h[i]
	h[i].evIdx = i
	h[k].evIdx = k
}

func (h *tubeHeap) push(t *tube) {
	t.evIdx = len(*h)
	*h = append(*h, t)
	h.up(t.evIdx)
}

func (h *tubeHeap) remove(t *tube) {
	i, n := t.evIdx, len(*h)-1
	if i != n {
		h.swap(i, n)
	}
	(*h)[n] = nil
	*h = (*h)[:n]
	if i != n {
		h.fixAt(i)
	}
	t.evIdx = -1
}

func (h tubeHeap) fixAt(i int) {
	if !h.down(i) {
		h.up(i)
	}
}

func (h tubeHeap) up(i int) {
	for i > 0 {
		p := (i - 1) / 2
		if !h.less(i, p) {
			return
		}
		h.swap(i, p)
		i = p
	}
}

func (h tubeHeap) down(i0 int) bool {
	i, n := i0, len(h)
	for {
		l := 2*i + 1
		if l >= n {
			break
		}
		c := l
		if r := l + 1; r < n && h.less(r, l) {
			c = r
		}
		if !h.less(c, i) {
			break
		}
		h.swap(i, c)
		i = c
	}
	return i > i0
}
