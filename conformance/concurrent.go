package conformance

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/anishathalye/porcupine"
	"github.com/google/go-cmp/cmp"

	"github.com/beanspike/beanspike"
)

var concurrentTests = []test{
	{"ConcurrentHistory", testConcurrentHistory},
}

// The randomized concurrent test records every call its clients make, with
// the times it was made and returned, and checks the history against a
// sequential model of one job: the history is correct when, for every job,
// the calls that touched it can be ordered, each inside its own time
// interval, so that the model accepts every outcome. This is per-job
// linearizability, checked with porcupine. Calls whose effect on a given
// job is unknown (Kick moves some jobs of its tube; a Reserve that timed
// out may have reserved something; Close returns its client's
// reservations) enter every overlapping job's history as calls that may or
// may not have moved it, so the check never fails a correct history.

type opKind uint8

const (
	opPut opKind = iota
	opReserve
	opMaybeReserve // a Reserve that returned a context error
	opReserveJob
	opDelete
	opRelease
	opBury
	opTouch
	opKick
	opKickJob
	opStatsJob
	opClose
)

var opNames = [...]string{"Put", "Reserve", "Reserve(timed out)", "ReserveJob", "Delete", "Release", "Bury", "Touch", "Kick", "KickJob", "StatsJob", "Close"}

// opInput is the input of a recorded call.
type opInput struct {
	kind    opKind
	client  int
	id      beanspike.ID // the job, for calls about one job
	tube    string       // for Put, Kick, and the tubes of a timed-out Reserve
	delayed bool         // Put or Release with a delay
}

// outcome is the sentinel a call returned.
type outcome uint8

const (
	outOK outcome = iota
	outNotFound
	outNotReserved
)

var outcomeNames = [...]string{"ok", "ErrNotFound", "ErrNotReserved"}

// opOutput is the output of a recorded call.
type opOutput struct {
	out   outcome
	state beanspike.State // StatsJob
	n     int             // Kick
}

// jobState is the model's state of one job.
type jobState struct {
	st     uint8 // one of the st constants
	holder int   // the client holding a reserved job
}

const (
	stAbsent uint8 = iota
	stReady
	stDelayed
	stReserved
	stBuried
	stDeleted
)

var stNames = [...]string{"absent", "ready", "delayed", "reserved", "buried", "deleted"}

func (s jobState) String() string {
	if s.st == stReserved {
		return fmt.Sprintf("reserved by client %d", s.holder)
	}
	return stNames[s.st]
}

// jobModel is the sequential model of one job.
var jobModel = porcupine.NondeterministicModel{
	Partition: partitionByJob,
	Init:      func() []any { return []any{jobState{}} },
	Step: func(state, input, output any) []any {
		next := stepJob(state.(jobState), input.(opInput), output.(opOutput))
		out := make([]any, len(next))
		for i, s := range next {
			out[i] = s
		}
		return out
	},
	DescribeOperation: func(input, output any) string {
		return describeOp(input.(opInput), output.(opOutput))
	},
	DescribeState: func(state any) string { return state.(jobState).String() },
}

// stepJob returns the states a job in state s can be in after the call in
// with outcome out; none when the call cannot have had that outcome.
func stepJob(s jobState, in opInput, out opOutput) []jobState {
	same := []jobState{s}
	c := in.client
	exists := s.st == stReady || s.st == stDelayed || s.st == stReserved || s.st == stBuried
	mine := s.st == stReserved && s.holder == c
	switch in.kind {
	case opPut:
		if s.st == stAbsent && out.out == outOK {
			if in.delayed {
				return []jobState{{st: stDelayed}}
			}
			return []jobState{{st: stReady}}
		}
	case opReserve:
		if s.st == stReady && out.out == outOK {
			return []jobState{{st: stReserved, holder: c}}
		}
	case opMaybeReserve:
		if s.st == stReady {
			return []jobState{s, {st: stReserved, holder: c}}
		}
		return same
	case opReserveJob:
		switch out.out {
		case outOK:
			if s.st == stReady || s.st == stDelayed || s.st == stBuried {
				return []jobState{{st: stReserved, holder: c}}
			}
		case outNotFound:
			if s.st == stReserved || s.st == stDeleted {
				return same
			}
		}
	case opDelete:
		switch out.out {
		case outOK:
			if exists && (s.st != stReserved || mine) {
				return []jobState{{st: stDeleted}}
			}
		case outNotReserved:
			if s.st == stReserved && !mine {
				return same
			}
		case outNotFound:
			if s.st == stDeleted {
				return same
			}
		}
	case opRelease, opBury, opTouch:
		switch out.out {
		case outOK:
			if mine {
				switch {
				case in.kind == opTouch:
					return same
				case in.kind == opBury:
					return []jobState{{st: stBuried}}
				case in.delayed:
					return []jobState{{st: stDelayed}}
				default:
					return []jobState{{st: stReady}}
				}
			}
		case outNotReserved:
			if exists && !mine {
				return same
			}
		case outNotFound:
			if s.st == stDeleted {
				return same
			}
		}
	case opKick:
		if s.st == stBuried || s.st == stDelayed {
			return []jobState{s, {st: stReady}}
		}
		return same
	case opKickJob:
		switch out.out {
		case outOK:
			if s.st == stBuried || s.st == stDelayed {
				return []jobState{{st: stReady}}
			}
		case outNotFound:
			if s.st == stReady || s.st == stReserved || s.st == stDeleted {
				return same
			}
		}
	case opStatsJob:
		switch out.out {
		case outOK:
			want := map[beanspike.State]uint8{beanspike.Ready: stReady, beanspike.Delayed: stDelayed, beanspike.Reserved: stReserved, beanspike.Buried: stBuried}
			if st, ok := want[out.state]; ok && st == s.st {
				return same
			}
		case outNotFound:
			if s.st == stDeleted {
				return same
			}
		}
	case opClose:
		if mine {
			return []jobState{{st: stReady}}
		}
		return same
	}
	return nil
}

func describeOp(in opInput, out opOutput) string {
	var b strings.Builder
	fmt.Fprintf(&b, "client %d: %s", in.client, opNames[in.kind])
	switch in.kind {
	case opKick:
		fmt.Fprintf(&b, "(%s) -> %d", in.tube, out.n)
		return b.String()
	case opMaybeReserve:
		fmt.Fprintf(&b, "(%s)", in.tube)
		return b.String()
	case opClose:
		return b.String()
	}
	fmt.Fprintf(&b, "(%d", in.id)
	if in.delayed {
		b.WriteString(", delayed")
	}
	fmt.Fprintf(&b, ") -> %s", outcomeNames[out.out])
	if in.kind == opStatsJob && out.out == outOK {
		fmt.Fprintf(&b, " %v", out.state)
	}
	return b.String()
}

// affectsMany tells the calls that may touch any job of their tube (or of
// their client) and so enter every overlapping job's history.
func affectsMany(k opKind) bool { return k == opKick || k == opMaybeReserve || k == opClose }

// partitionByJob splits a history into one history per job. A call that
// may touch many jobs joins the history of every job of its tube (or every
// job, for Close) whose life, from its Put to its last recorded call,
// overlaps the call: it cannot have touched a job that did not exist yet,
// and its effect on a job after the job's last call is never observed.
func partitionByJob(history []porcupine.Operation) [][]porcupine.Operation {
	type life struct {
		tube     string
		from, to int64
		ops      []porcupine.Operation
	}
	jobs := make(map[beanspike.ID]*life)
	var many []porcupine.Operation
	for _, op := range history {
		in := op.Input.(opInput)
		if affectsMany(in.kind) {
			many = append(many, op)
			continue
		}
		l := jobs[in.id]
		if l == nil {
			l = &life{from: op.Call, to: op.Return}
			jobs[in.id] = l
		}
		if in.kind == opPut {
			l.tube = in.tube
		}
		l.from = min(l.from, op.Call)
		l.to = max(l.to, op.Return)
		l.ops = append(l.ops, op)
	}
	// Sorted by start, with the longest duration, the calls that overlap
	// a life are found by binary search and a short scan.
	sort.Slice(many, func(i, j int) bool { return many[i].Call < many[j].Call })
	var longest int64
	for _, op := range many {
		longest = max(longest, op.Return-op.Call)
	}
	ids := make([]beanspike.ID, 0, len(jobs))
	for id := range jobs {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	out := make([][]porcupine.Operation, 0, len(ids))
	for _, id := range ids {
		l := jobs[id]
		lo := sort.Search(len(many), func(i int) bool { return many[i].Call >= l.from-longest })
		for _, op := range many[lo:] {
			if op.Call > l.to {
				break
			}
			in := op.Input.(opInput)
			if op.Return < l.from {
				continue
			}
			if in.kind != opClose && !strings.Contains(","+in.tube+",", ","+l.tube+",") {
				continue
			}
			l.ops = append(l.ops, op)
		}
		out = append(out, l.ops)
	}
	return out
}

// recorder collects the history of one client.
type recorder struct {
	start   time.Time
	client  int
	ops     []porcupine.Operation
	bodies  map[beanspike.ID]string // bodies seen by Reserve
	unknown []string                // unexpected errors
}

func (r *recorder) now() int64 { return int64(time.Since(r.start)) }

func (r *recorder) add(in opInput, out opOutput, call int64) {
	in.client = r.client
	r.ops = append(r.ops, porcupine.Operation{ClientId: r.client, Input: in, Output: out, Call: call, Return: r.now()})
}

// classify maps a call's error to its outcome; ok is false for an error
// the call may not return.
func classify(err error) (outcome, bool) {
	switch {
	case err == nil:
		return outOK, true
	case errors.Is(err, beanspike.ErrNotFound):
		return outNotFound, true
	case errors.Is(err, beanspike.ErrNotReserved):
		return outNotReserved, true
	}
	return 0, false
}

const stressTubes = "s1,s2"

// worker is one client of the concurrent test.
type worker struct {
	e     *env
	q     beanspike.Queue
	rec   *recorder
	rng   *rand.Rand
	held  []beanspike.ID
	known *knownJobs
	seq   int
}

// knownJobs are the IDs of the jobs put so far, shared by the workers.
type knownJobs struct {
	mu   sync.Mutex
	ids  []beanspike.ID
	live int
}

func (k *knownJobs) pick(rng *rand.Rand) (beanspike.ID, bool) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if len(k.ids) == 0 {
		return 0, false
	}
	// Favour recent jobs, which are more likely to exist.
	n := len(k.ids)
	i := n - 1 - rng.IntN(min(n, 64))
	return k.ids[i], true
}

func (w *worker) fail(format string, args ...any) {
	w.rec.unknown = append(w.rec.unknown, fmt.Sprintf("client %d: ", w.rec.client)+fmt.Sprintf(format, args...))
}

// idCall records a call about one job.
func (w *worker) idCall(kind opKind, id beanspike.ID, delayed bool, call func(context.Context) error) outcome {
	at := w.rec.now()
	err := call(w.e.ctx)
	o, ok := classify(err)
	if !ok {
		w.fail("%s(%d): unexpected error %v", opNames[kind], id, err)
		return outNotFound
	}
	w.rec.add(opInput{kind: kind, id: id, delayed: delayed}, opOutput{out: o}, at)
	return o
}

func (w *worker) dropHeld(id beanspike.ID) {
	if i := slices.Index(w.held, id); i >= 0 {
		w.held = slices.Delete(w.held, i, i+1)
	}
}

// target picks a job: mostly one this worker holds, else any known job.
func (w *worker) target() (beanspike.ID, bool) {
	if len(w.held) > 0 && w.rng.IntN(10) < 8 {
		return w.held[w.rng.IntN(len(w.held))], true
	}
	return w.known.pick(w.rng)
}

func (w *worker) step(bodies map[string]beanspike.ID, bodiesMu *sync.Mutex) {
	tubes := strings.Split(stressTubes, ",")
	ctx := w.e.ctx
	switch r := w.rng.IntN(100); {
	case r < 20: // Put
		w.known.mu.Lock()
		full := w.known.live >= 64
		w.known.mu.Unlock()
		if full {
			return
		}
		tube := tubes[w.rng.IntN(len(tubes))]
		delayed := w.rng.IntN(10) == 0
		opts := []beanspike.PutOption{beanspike.WithPriority(uint32(w.rng.IntN(4))), beanspike.WithTTR(time.Hour)}
		if delayed {
			opts = append(opts, beanspike.WithDelay(time.Hour))
		}
		w.seq++
		body := fmt.Sprintf("client %d job %d", w.rec.client, w.seq)
		at := w.rec.now()
		id, err := w.q.Put(ctx, tube, []byte(body), opts...)
		if err != nil {
			w.fail("Put: %v", err)
			return
		}
		w.rec.add(opInput{kind: opPut, id: id, tube: tube, delayed: delayed}, opOutput{}, at)
		bodiesMu.Lock()
		if prev, dup := bodies[body]; dup {
			w.fail("body %q put twice, as %d and %d", body, prev, id)
		}
		bodies[body] = id
		bodiesMu.Unlock()
		w.known.mu.Lock()
		w.known.ids = append(w.known.ids, id)
		w.known.live++
		w.known.mu.Unlock()
	case r < 45: // Reserve: mostly a poll, sometimes a short blocking wait
		rctx, cancel := context.WithCancel(ctx)
		if w.rng.IntN(10) == 0 {
			cancel()
			rctx, cancel = context.WithTimeout(ctx, time.Duration(1+w.rng.IntN(5))*time.Millisecond)
		} else {
			cancel()
		}
		at := w.rec.now()
		j, err := w.q.Reserve(rctx, tubes...)
		blocking := rctx.Err() == context.DeadlineExceeded
		cancel()
		switch {
		case err == nil:
			if j == nil || j.ID == 0 {
				w.fail("Reserve returned %v", j)
				return
			}
			w.rec.add(opInput{kind: opReserve, id: j.ID}, opOutput{}, at)
			w.rec.bodies[j.ID] = string(j.Body)
			w.held = append(w.held, j.ID)
		case err == context.Canceled || err == context.DeadlineExceeded:
			if blocking {
				w.rec.add(opInput{kind: opMaybeReserve, tube: stressTubes}, opOutput{}, at)
			}
		default:
			w.fail("Reserve: %v", err)
		}
	case r < 48: // ReserveJob
		id, ok := w.known.pick(w.rng)
		if !ok {
			return
		}
		at := w.rec.now()
		j, err := w.q.ReserveJob(ctx, id)
		o, known := classify(err)
		if !known || o == outNotReserved {
			w.fail("ReserveJob(%d): %v", id, err)
			return
		}
		if o == outOK {
			if j == nil || j.ID != id {
				w.fail("ReserveJob(%d) returned %v", id, j)
				return
			}
			w.rec.bodies[id] = string(j.Body)
			w.held = append(w.held, id)
		}
		w.rec.add(opInput{kind: opReserveJob, id: id}, opOutput{out: o}, at)
	case r < 63: // Delete
		id, ok := w.target()
		if !ok {
			return
		}
		if w.idCall(opDelete, id, false, func(ctx context.Context) error { return w.q.Delete(ctx, id) }) == outOK {
			w.known.mu.Lock()
			w.known.live--
			w.known.mu.Unlock()
			w.dropHeld(id)
		}
	case r < 73: // Release
		id, ok := w.target()
		if !ok {
			return
		}
		var delay time.Duration
		if w.rng.IntN(5) == 0 {
			delay = time.Hour
		}
		pri := uint32(w.rng.IntN(4))
		if w.idCall(opRelease, id, delay > 0, func(ctx context.Context) error { return w.q.Release(ctx, id, pri, delay) }) == outOK {
			w.dropHeld(id)
		}
	case r < 80: // Bury
		id, ok := w.target()
		if !ok {
			return
		}
		if w.idCall(opBury, id, false, func(ctx context.Context) error { return w.q.Bury(ctx, id, 1, "stress") }) == outOK {
			w.dropHeld(id)
		}
	case r < 85: // Touch
		id, ok := w.target()
		if !ok {
			return
		}
		w.idCall(opTouch, id, false, func(ctx context.Context) error { return w.q.Touch(ctx, id) })
	case r < 88: // Kick
		tube := tubes[w.rng.IntN(len(tubes))]
		n := 1 + w.rng.IntN(3)
		at := w.rec.now()
		got, err := w.q.Kick(ctx, tube, n)
		if err != nil || got < 0 || got > n {
			w.fail("Kick(%s, %d) = %d, %v", tube, n, got, err)
			return
		}
		w.rec.add(opInput{kind: opKick, tube: tube}, opOutput{n: got}, at)
	case r < 94: // KickJob
		id, ok := w.known.pick(w.rng)
		if !ok {
			return
		}
		w.idCall(opKickJob, id, false, func(ctx context.Context) error { return w.q.KickJob(ctx, id) })
	default: // StatsJob
		id, ok := w.known.pick(w.rng)
		if !ok {
			return
		}
		at := w.rec.now()
		s, err := w.q.StatsJob(ctx, id)
		o, known := classify(err)
		if !known || o == outNotReserved {
			w.fail("StatsJob(%d): %v", id, err)
			return
		}
		out := opOutput{out: o}
		if o == outOK {
			out.state = s.State
		}
		w.rec.add(opInput{kind: opStatsJob, id: id}, out, at)
	}
}

func testConcurrentHistory(t *testing.T, e *env) {
	n := e.caps.Concurrency
	// The call bound keeps the history small enough to check quickly.
	maxOps := 5000
	if testing.Short() {
		maxOps = 1000
	}
	start := time.Now()
	known := &knownJobs{}
	bodies := make(map[string]beanspike.ID)
	var bodiesMu sync.Mutex
	workers := make([]*worker, n)
	for i := range workers {
		workers[i] = &worker{
			e:     e,
			q:     e.client(),
			rec:   &recorder{start: start, client: i, bodies: make(map[beanspike.ID]string)},
			rng:   rand.New(rand.NewPCG(uint64(start.UnixNano()), uint64(i))),
			known: known,
		}
	}
	t.Logf("%d clients, up to %d calls each, for up to %s (seed %d)", n, maxOps, e.caps.Stress, start.UnixNano())
	stop := time.Now().Add(e.caps.Stress)
	var wg sync.WaitGroup
	for _, w := range workers {
		wg.Go(func() {
			for i := 0; i < maxOps && time.Now().Before(stop) && e.ctx.Err() == nil && len(w.rec.unknown) == 0; i++ {
				w.step(bodies, &bodiesMu)
			}
			// Give back what this client holds, then close it: Close
			// also returns a reservation that a timed-out Reserve may
			// have made.
			for _, id := range slices.Clone(w.held) {
				if w.idCall(opRelease, id, false, func(ctx context.Context) error { return w.q.Release(ctx, id, 2, 0) }) == outOK {
					w.dropHeld(id)
				}
			}
			at := w.rec.now()
			if err := w.q.Close(); err != nil {
				w.fail("Close: %v", err)
			}
			w.rec.add(opInput{kind: opClose}, opOutput{}, at)
		})
	}
	wg.Wait()
	if e.ctx.Err() != nil {
		t.Fatalf("interrupted: %v", e.ctx.Err())
	}

	// Drain the store with a new client, recording every call.
	d := &worker{e: e, q: e.client(), rec: &recorder{start: start, client: n, bodies: make(map[beanspike.ID]string)}, rng: rand.New(rand.NewPCG(1, 2)), known: known}
	workers = append(workers, d)
	tubes := strings.Split(stressTubes, ",")
	for round := 0; ; round++ {
		if round > 1000 {
			t.Fatal("drain: the store never emptied")
		}
		moved := 0
		for _, tube := range tubes {
			at := d.rec.now()
			got, err := d.q.Kick(e.ctx, tube, 1<<20)
			ok(t, err, "drain: Kick(%s)", tube)
			d.rec.add(opInput{kind: opKick, tube: tube}, opOutput{n: got}, at)
			moved += got
		}
		for {
			at := d.rec.now()
			j, err := e.poll(d.q, tubes...)
			if err != nil {
				break
			}
			moved++
			d.rec.add(opInput{kind: opReserve, id: j.ID}, opOutput{}, at)
			d.rec.bodies[j.ID] = string(j.Body)
			id := j.ID
			if o := d.idCall(opDelete, id, false, func(ctx context.Context) error { return d.q.Delete(ctx, id) }); o != outOK {
				t.Fatalf("drain: Delete(%d) of a job just reserved: %s", id, outcomeNames[o])
			}
		}
		if moved == 0 {
			break
		}
	}

	// Gather the history and check what needs no model.
	var history []porcupine.Operation
	puts := make(map[beanspike.ID]string) // ID -> tube
	deletes := make(map[beanspike.ID]int)
	calls := 0
	for _, w := range workers {
		for _, u := range w.rec.unknown {
			t.Error(u)
		}
		history = append(history, w.rec.ops...)
		for _, op := range w.rec.ops {
			in, out := op.Input.(opInput), op.Output.(opOutput)
			switch {
			case in.kind == opPut:
				if _, dup := puts[in.id]; dup {
					t.Errorf("Put returned ID %d twice", in.id)
				}
				puts[in.id] = in.tube
			case in.kind == opDelete && out.out == outOK:
				deletes[in.id]++
			}
		}
		calls += len(w.rec.ops)
	}
	if t.Failed() {
		t.FailNow()
	}
	idByBody := make(map[beanspike.ID]string, len(bodies))
	for body, id := range bodies {
		idByBody[id] = body
	}
	for _, w := range workers {
		for id, body := range w.rec.bodies {
			if want, ok := idByBody[id]; !ok {
				t.Errorf("client %d reserved job %d, which no Put returned", w.rec.client, id)
			} else if body != want {
				t.Errorf("client %d reserved job %d with body %q, but it was put with body %q", w.rec.client, id, body, want)
			}
		}
	}
	perTube := make(map[string]uint64)
	for id, tube := range puts {
		perTube[tube]++
		if deletes[id] != 1 {
			t.Errorf("job %d was deleted %d times, want exactly once (the drain deletes whatever is left)", id, deletes[id])
		}
	}
	for _, tube := range tubes {
		if perTube[tube] == 0 {
			continue
		}
		s := e.statsTube(d.q, tube)
		want := beanspike.TubeStats{Name: tube, TotalJobs: perTube[tube], Deletes: perTube[tube]}
		s.Pause, s.PauseLeft, s.Waiting = 0, 0, 0
		if diff := cmp.Diff(want, *s); diff != "" {
			t.Errorf("StatsTube(%s) after the drain mismatch (-want +got):\n%s", tube, diff)
		}
	}
	t.Logf("%d jobs, %d recorded calls in %s", len(puts), calls, time.Since(start).Round(time.Millisecond))
	if t.Failed() {
		t.FailNow()
	}

	// Check per-job linearizability.
	model := jobModel.ToModel()
	budget := min(30*time.Second, e.caps.Watchdog/3)
	checkStart := time.Now()
	res := porcupine.CheckOperationsTimeout(model, history, budget)
	switch res {
	case porcupine.Ok:
		t.Logf("history of %d calls is linearizable per job (checked in %s)", len(history), time.Since(checkStart).Round(time.Millisecond))
	case porcupine.Unknown:
		t.Logf("the linearizability check did not finish within %s: inconclusive, not a failure", budget)
	case porcupine.Illegal:
		reportIllegal(t, model, history)
	}
}

// reportIllegal finds a job whose history the model rejects and fails the
// test with that history.
func reportIllegal(t *testing.T, model porcupine.Model, history []porcupine.Operation) {
	t.Helper()
	single := model
	single.Partition = nil
	single.PartitionEvent = nil
	for _, part := range partitionByJob(history) {
		if porcupine.CheckOperationsTimeout(single, part, 10*time.Second) != porcupine.Illegal {
			continue
		}
		sort.Slice(part, func(i, j int) bool { return part[i].Call < part[j].Call })
		var b strings.Builder
		for _, op := range part {
			fmt.Fprintf(&b, "\n  [%9.3fms, %9.3fms] %s", float64(op.Call)/1e6, float64(op.Return)/1e6, describeOp(op.Input.(opInput), op.Output.(opOutput)))
		}
		t.Fatalf("the history of one job cannot be explained by any order of its calls (a job held twice, lost, resurrected or in a wrong state); its calls, by start time:%s", b.String())
	}
	t.Fatal("the history is not linearizable per job, but no single job's history could be singled out")
}
