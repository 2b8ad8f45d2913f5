package aerospike

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	as "github.com/aerospike/aerospike-client-go/v8"

	"github.com/beanspike/beanspike"
	"github.com/beanspike/beanspike/backend/aerospike/aerospiketest"
)

// crash stops q as a killed process would stop: its background loop
// ends and nothing is released or cleaned up.
func (q *Queue) crash() {
	if q.closed.CompareAndSwap(false, true) {
		close(q.done)
		q.loop.Wait()
		q.s.release()
	}
}

// crashAt makes q's operations stop at point, as if the process died
// there.
func (q *Queue) crashAt(point string) {
	f := func(p string) error {
		if p == point {
			return errCrashed
		}
		return nil
	}
	q.hook.Store(&f)
}

// later moves q's clock forward by d.
func (q *Queue) later(d time.Duration) { q.skew.Add(int64(d)) }

// repairNow runs q's background work, including a repair pass, once.
func (q *Queue) repairNow(ctx context.Context) {
	for range repairEvery {
		q.maintain(ctx)
	}
}

// recordExists tells whether job id's record is stored.
func recordExists(t *testing.T, q *Queue, id beanspike.ID) bool {
	t.Helper()
	ok, err := q.s.client.Exists(nil, q.jobKey(id))
	if err != nil {
		t.Fatalf("Exists: %v", err)
	}
	return ok
}

// deletingIDs returns the unfinished deletes recorded for job id's index
// record.
func deletingIDs(t *testing.T, q *Queue, tube string, id beanspike.ID) map[int64]int64 {
	t.Helper()
	rec, err := q.s.client.Get(nil, q.shardKey(shardRef{tube, q.shardOf(id)}), binDeleting)
	if err != nil {
		if errorIsNotFound(err) {
			return nil
		}
		t.Fatalf("Get: %v", err)
	}
	return intPairs(rec.Bins[binDeleting])
}

func wantStats(t *testing.T, q *Queue, tube string, ready, reserved, delayed, buried int) *beanspike.TubeStats {
	t.Helper()
	st, err := q.StatsTube(context.Background(), tube)
	if err != nil {
		t.Fatalf("StatsTube(%s): %v", tube, err)
	}
	if st.Ready != ready || st.Reserved != reserved || st.Delayed != delayed || st.Buried != buried {
		t.Fatalf("StatsTube(%s) = %+v, want ready %d reserved %d delayed %d buried %d",
			tube, st, ready, reserved, delayed, buried)
	}
	return st
}

// A client that dies holding a reservation, right after claiming it,
// loses it to the TTR: another client gets the job, counted as a timeout.
func TestCrashAfterClaim(t *testing.T) {
	ctx := context.Background()
	a := newTestQueue(t)
	b := newPeer(t, a)
	id, err := a.Put(ctx, "c", []byte("x"), beanspike.WithTTR(time.Second))
	if err != nil {
		t.Fatal(err)
	}
	a.crashAt("reserve:claimed")
	if _, err := a.Reserve(ctx, "c"); !errors.Is(err, errCrashed) {
		t.Fatalf("Reserve with crash hook: %v", err)
	}
	a.crash()
	wantStats(t, b, "c", 0, 1, 0, 0)
	b.later(1500 * time.Millisecond)
	j, err := b.Reserve(ctx, "c")
	if err != nil {
		t.Fatalf("Reserve after lapse: %v", err)
	}
	if j.ID != id || j.Reserves != 2 {
		t.Fatalf("got %+v, want job %d reserved twice", j, id)
	}
	s, err := b.StatsJob(ctx, id)
	if err != nil || s.Timeouts != 1 {
		t.Fatalf("StatsJob = %+v, %v; want 1 timeout", s, err)
	}
}

// A client that dies in Close, before returning its reservations, loses
// them to the TTR.
func TestCrashInClose(t *testing.T) {
	ctx := context.Background()
	a := newTestQueue(t)
	b := newPeer(t, a)
	if _, err := a.Put(ctx, "c", []byte("x"), beanspike.WithTTR(time.Second)); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Reserve(ctx, "c"); err != nil {
		t.Fatal(err)
	}
	a.crashAt("close")
	_ = a.Close()
	wantStats(t, b, "c", 0, 1, 0, 0)
	b.later(1500 * time.Millisecond)
	wantStats(t, b, "c", 1, 0, 0, 0)
}

// Close returns the client's reservations at once.
func TestCloseReleases(t *testing.T) {
	ctx := context.Background()
	a := newTestQueue(t)
	b := newPeer(t, a)
	for range 3 {
		if _, err := a.Put(ctx, "c", []byte("x")); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := a.ReserveBatch(ctx, 3, "c"); err != nil {
		t.Fatal(err)
	}
	wantStats(t, b, "c", 0, 3, 0, 0)
	if err := a.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	wantStats(t, b, "c", 3, 0, 0, 0)
}

// A Delete that dies between removing the index entry and deleting the
// job record leaves the record; the repair pass of another client deletes
// it and clears the deleting entry.
func TestCrashDeleteAfterIndex(t *testing.T) {
	ctx := context.Background()
	a := newTestQueue(t)
	b := newPeer(t, a)
	id, err := a.Put(ctx, "d", []byte("x"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := a.Reserve(ctx, "d"); err != nil {
		t.Fatal(err)
	}
	a.crashAt("delete:index")
	if err := a.Delete(ctx, id); !errors.Is(err, errCrashed) {
		t.Fatalf("Delete with crash hook: %v", err)
	}
	a.crash()
	if _, err := b.Peek(ctx, id); !errors.Is(err, beanspike.ErrNotFound) {
		t.Fatalf("Peek of deleted job: %v", err)
	}
	st := wantStats(t, b, "d", 0, 0, 0, 0)
	if st.Deletes != 1 {
		t.Fatalf("Deletes = %d, want 1", st.Deletes)
	}
	if !recordExists(t, b, id) || len(deletingIDs(t, b, "d", id)) != 1 {
		t.Fatal("the crash left no record or no deleting entry to repair")
	}
	b.touchTube("d")
	b.repairNow(ctx) // too early: the delete may still be in progress
	if !recordExists(t, b, id) {
		t.Fatal("repair finished a delete younger than the grace period")
	}
	b.later(deleteGrace + time.Second)
	b.repairNow(ctx)
	if recordExists(t, b, id) {
		t.Fatal("repair left the job record")
	}
	if n := len(deletingIDs(t, b, "d", id)); n != 0 {
		t.Fatalf("repair left %d deleting entries", n)
	}
}

// A client that dies after its background loop deleted the records of
// its deletes, before clearing the deleting entries, leaves only the
// entries, which the repair pass clears.
func TestCrashDeleteAfterRecord(t *testing.T) {
	ctx := context.Background()
	a := newTestQueue(t)
	b := newPeer(t, a)
	id, err := a.Put(ctx, "d", []byte("x"))
	if err != nil {
		t.Fatal(err)
	}
	a.crashAt("delete:record")
	if err := a.Delete(ctx, id); err != nil {
		t.Fatalf("Delete: %v", err)
	}
	a.maintain(ctx) // deletes the record, then stops at the hook
	a.crash()
	if recordExists(t, b, id) || len(deletingIDs(t, b, "d", id)) != 1 {
		t.Fatal("unexpected state after the crash")
	}
	b.touchTube("d")
	b.later(deleteGrace + time.Second)
	b.repairNow(ctx)
	if n := len(deletingIDs(t, b, "d", id)); n != 0 {
		t.Fatalf("repair left %d deleting entries", n)
	}
}

// A client's own deletes clear their deleting entries within a tick.
func TestDeleteCleansUp(t *testing.T) {
	ctx := context.Background()
	a := newTestQueue(t)
	id, err := a.Put(ctx, "d", []byte("x"))
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Delete(ctx, id); err != nil {
		t.Fatal(err)
	}
	a.maintain(ctx)
	if n := len(deletingIDs(t, a, "d", id)); n != 0 {
		t.Fatalf("%d deleting entries left", n)
	}
	if recordExists(t, a, id) {
		t.Fatal("job record left")
	}
}

// A client dying right after a Delete returned, before its background
// loop ran, leaves the record and the deleting entry; the repair pass of
// another client finishes the delete.
func TestCrashAfterDelete(t *testing.T) {
	ctx := context.Background()
	a := newTestQueue(t, WithSweepInterval(time.Hour))
	b := newPeer(t, a)
	id, err := a.Put(ctx, "d", []byte("x"))
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Delete(ctx, id); err != nil {
		t.Fatal(err)
	}
	a.crash()
	if _, err := b.Peek(ctx, id); !errors.Is(err, beanspike.ErrNotFound) {
		t.Fatalf("Peek of deleted job: %v", err)
	}
	if !recordExists(t, b, id) || len(deletingIDs(t, b, "d", id)) != 1 {
		t.Fatal("unexpected state after the crash")
	}
	b.touchTube("d")
	b.later(deleteGrace + time.Second)
	b.repairNow(ctx)
	if recordExists(t, b, id) || len(deletingIDs(t, b, "d", id)) != 0 {
		t.Fatal("repair left the record or the deleting entry")
	}
}

// Close finishes the client's deletes.
func TestCloseFinishesDeletes(t *testing.T) {
	ctx := context.Background()
	a := newTestQueue(t, WithSweepInterval(time.Hour))
	b := newPeer(t, a)
	id, err := a.Put(ctx, "d", []byte("x"))
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Delete(ctx, id); err != nil {
		t.Fatal(err)
	}
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	if recordExists(t, b, id) || len(deletingIDs(t, b, "d", id)) != 0 {
		t.Fatal("Close left the record or the deleting entry")
	}
}

// A Put that dies with its index entry written but not its job record
// leaves a dangling entry. Reserve parks it for a second while the
// record may still come, and drops it once it is older than the grace
// period. The Put failed, so no acknowledged job is lost.
func TestCrashPutIndexOnly(t *testing.T) {
	ctx := context.Background()
	a := newTestQueue(t)
	b := newPeer(t, a)
	if _, err := b.Put(ctx, "p", []byte("keep")); err != nil {
		t.Fatal(err)
	}
	a.crashAt("put:record")
	if _, err := a.Put(ctx, "p", []byte("x")); !errors.Is(err, errCrashed) {
		t.Fatalf("Put with crash hook: %v", err)
	}
	a.crash()
	wantStats(t, b, "p", 2, 0, 0, 0)
	// The dangling entry may come first; Reserve skips it and returns
	// the real job.
	for range 2 {
		done, cancel := context.WithCancel(ctx)
		cancel()
		j, err := b.Reserve(done, "p")
		if err == nil {
			if string(j.Body) != "keep" {
				t.Fatalf("reserved %+v", j)
			}
			if err := b.Delete(ctx, j.ID); err != nil {
				t.Fatal(err)
			}
		}
	}
	wantStats(t, b, "p", 0, 0, 1, 0) // parked
	b.later(danglingGrace + 2*time.Second)
	done, cancel := context.WithCancel(ctx)
	cancel()
	if j, err := b.Reserve(done, "p"); err == nil {
		t.Fatalf("reserved a job that was never put: %+v", j)
	}
	wantStats(t, b, "p", 0, 0, 0, 0)
}

// A Put that dies with its job record written but not its index entry
// leaves a record and no job: the Put failed. The orphan pass deletes the
// record once the ID counter passed its ID orphanLag ago and the record
// is as old, and leaves every job, whatever its state, as it was.
func TestCrashPutRecordOnly(t *testing.T) {
	ctx := context.Background()
	a := newTestQueue(t)
	b := newPeer(t, a)
	jobs := map[beanspike.ID]string{}
	put := func(body string, opts ...beanspike.PutOption) beanspike.ID {
		t.Helper()
		id, err := b.Put(ctx, "p", []byte(body), opts...)
		if err != nil {
			t.Fatal(err)
		}
		jobs[id] = body
		return id
	}
	reserved := put("reserved", beanspike.WithTTR(48*time.Hour))
	if j, err := b.Reserve(ctx, "p"); err != nil || j.ID != reserved {
		t.Fatalf("Reserve = %v, %v; want job %d", j, err, reserved)
	}
	put("ready")
	put("delayed", beanspike.WithDelay(48*time.Hour))
	buried := put("buried")
	if _, err := b.ReserveJob(ctx, buried); err != nil {
		t.Fatal(err)
	}
	if err := b.Bury(ctx, buried, 1, ""); err != nil {
		t.Fatal(err)
	}

	// Three orphans: one put with a's clock right, one with it five
	// minutes ahead (a put time the pass must wait for), one with it two
	// days ahead (a put time only a wrong clock writes: the horizon alone
	// decides).
	orphan := func(skew time.Duration) beanspike.ID {
		t.Helper()
		c := newPeer(t, a)
		c.later(skew)
		c.crashAt("put:index")
		if _, err := c.Put(ctx, "p", []byte("x")); !errors.Is(err, errCrashed) {
			t.Fatalf("Put with crash hook: %v", err)
		}
		c.crash()
		for id := beanspike.ID(1); id < 8*idBlock; id++ {
			if _, known := jobs[id]; !known && recordExists(t, b, id) {
				jobs[id] = "orphan"
				return id
			}
		}
		t.Fatal("the crashed Put left no record")
		return 0
	}
	now, ahead, far := orphan(0), orphan(5*time.Minute), orphan(48*time.Hour)
	wantStats(t, b, "p", 1, 1, 1, 1)
	exist := func(want ...bool) {
		t.Helper()
		for i, id := range []beanspike.ID{now, ahead, far} {
			if got := recordExists(t, b, id); got != want[i] {
				t.Fatalf("orphan %d (%d of 3): record stored %v, want %v", id, i+1, got, want[i])
			}
		}
	}

	pass := func(want int) {
		t.Helper()
		n, err := b.repairOrphans(ctx)
		if err != nil || n != want {
			t.Fatalf("orphan pass deleted %d, %v; want %d", n, err, want)
		}
	}
	pass(0) // marks the counter
	pass(0) // too early: the mark is not orphanLag old
	exist(true, true, true)

	// Another client's lease keeps the pass out.
	leaseTill := func(ns int64) {
		t.Helper()
		if err := b.s.client.PutBins(nil, b.repairKey(), as.NewBin(binLease, ns)); err != nil {
			t.Fatal(err)
		}
	}
	b.later(orphanLag + time.Second)
	leaseTill(b.nowNs() + int64(time.Hour))
	pass(0)
	exist(true, true, true)
	leaseTill(0)
	pass(1) // the second orphan's put time stops the pass at its block
	exist(false, true, true)
	pass(0)
	b.later(5 * time.Minute)
	pass(2)
	exist(false, false, false)

	// Every job is as it was.
	wantStats(t, b, "p", 1, 1, 1, 1)
	for id, body := range jobs {
		if body == "orphan" {
			continue
		}
		if !recordExists(t, b, id) {
			t.Fatalf("job %d (%s) lost its record", id, body)
		}
		j, err := b.Peek(ctx, id)
		if err != nil || string(j.Body) != body {
			t.Fatalf("Peek(%d) = %+v, %v; want %q", id, j, err, body)
		}
	}
}

// The orphan pass walks the ID space block by block, behind the counter,
// and never checks an ID the counter had not passed orphanLag before.
func TestOrphanPassHorizon(t *testing.T) {
	ctx := context.Background()
	q := newTestQueue(t, WithSweepInterval(time.Hour))
	for range 3 * idBlock {
		if _, err := q.Put(ctx, "h", benchBody); err != nil {
			t.Fatal(err)
		}
	}
	state := func() (cursor, horizon int64) {
		t.Helper()
		rec, err := q.s.client.Get(nil, q.repairKey())
		if err != nil {
			t.Fatal(err)
		}
		c, _ := toInt(rec.Bins[binCursor])
		h, _ := toInt(rec.Bins[binHorizon])
		return c, h
	}
	if _, err := q.repairOrphans(ctx); err != nil {
		t.Fatal(err)
	}
	if c, h := state(); c > 1 || h != 0 {
		t.Fatalf("first pass: cursor %d horizon %d; want nothing checked", c, h)
	}
	q.later(orphanLag)
	if _, err := q.repairOrphans(ctx); err != nil {
		t.Fatal(err)
	}
	c, h := state()
	if h < 3*idBlock || c != h {
		t.Fatalf("after orphanLag: cursor %d horizon %d; want both past the %d IDs put", c, h, 3*idBlock)
	}
	wantStats(t, q, "h", 3*idBlock, 0, 0, 0)
}

// A DeleteTube that dies part-way leaves the tube listed; calling it
// again finishes, and no job of the tube survives.
func TestCrashDeleteTube(t *testing.T) {
	for _, point := range []string{"deletetube:read", "deletetube:records", "deletetube:index"} {
		t.Run(point, func(t *testing.T) {
			ctx := context.Background()
			a := newTestQueue(t)
			b := newPeer(t, a)
			var ids []beanspike.ID
			for i := range 6 {
				var opts []beanspike.PutOption
				if i%3 == 1 {
					opts = append(opts, beanspike.WithDelay(time.Hour))
				}
				id, err := a.Put(ctx, "x", []byte("x"), opts...)
				if err != nil {
					t.Fatal(err)
				}
				ids = append(ids, id)
			}
			a.crashAt(point)
			if _, err := a.DeleteTube(ctx, "x"); !errors.Is(err, errCrashed) {
				t.Fatalf("DeleteTube with crash hook: %v", err)
			}
			a.crash()
			tubes, err := b.Tubes(ctx)
			if err != nil || len(tubes) != 1 {
				t.Fatalf("Tubes = %v, %v; want the half-deleted tube listed", tubes, err)
			}
			n, err := b.DeleteTube(ctx, "x")
			if err != nil {
				t.Fatalf("DeleteTube again: %v", err)
			}
			want := 6
			if point == "deletetube:index" {
				want = 0
			}
			if n != want {
				t.Fatalf("DeleteTube again = %d, want %d", n, want)
			}
			if tubes, _ := b.Tubes(ctx); len(tubes) != 0 {
				t.Fatalf("Tubes = %v after DeleteTube", tubes)
			}
			for _, id := range ids {
				if recordExists(t, b, id) {
					t.Fatalf("job record %d survived", id)
				}
				if _, err := b.Peek(ctx, id); !errors.Is(err, beanspike.ErrNotFound) {
					t.Fatalf("Peek(%d) = %v", id, err)
				}
			}
		})
	}
}

// Sweeps run by many clients at once move each lapsed reservation back
// to ready exactly once.
func TestConcurrentSweeps(t *testing.T) {
	ctx := context.Background()
	a := newTestQueue(t, WithShards(2))
	const n = 40
	for range n {
		if _, err := a.Put(ctx, "s", []byte("x"), beanspike.WithTTR(time.Second)); err != nil {
			t.Fatal(err)
		}
	}
	jobs, err := a.ReserveBatch(ctx, n, "s")
	if err != nil || len(jobs) != n {
		t.Fatalf("ReserveBatch = %d jobs, %v", len(jobs), err)
	}
	a.crash()
	var peers []*Queue
	for range 4 {
		p := newPeer(t, a)
		p.later(2 * time.Second)
		peers = append(peers, p)
	}
	var wg sync.WaitGroup
	for _, p := range peers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for s := range p.s.shards {
				if err := p.sweep(ctx, shardRef{"s", s}); err != nil {
					t.Errorf("sweep: %v", err)
				}
			}
		}()
	}
	wg.Wait()
	wantStats(t, peers[0], "s", n, 0, 0, 0)
	for _, j := range jobs {
		s, err := peers[0].StatsJob(ctx, j.ID)
		if err != nil || s.Timeouts != 1 || s.State != beanspike.Ready {
			t.Fatalf("StatsJob(%d) = %+v, %v; want ready with 1 timeout", j.ID, s, err)
		}
	}
}

// A move into an index record that no longer exists fails instead of
// creating it again.
func TestMoveIntoDeletedTube(t *testing.T) {
	ctx := context.Background()
	a := newTestQueue(t)
	b := newPeer(t, a)
	id, err := a.Put(ctx, "g", []byte("x"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := a.Reserve(ctx, "g"); err != nil {
		t.Fatal(err)
	}
	if _, err := b.DeleteTube(ctx, "g"); err != nil {
		t.Fatal(err)
	}
	if err := a.Release(ctx, id, 1, 0); !errors.Is(err, beanspike.ErrNotFound) {
		t.Fatalf("Release after DeleteTube: %v", err)
	}
	ok, err := b.s.client.Exists(nil, b.shardKey(shardRef{"g", b.shardOf(id)}))
	if err != nil || ok {
		t.Fatalf("index record exists = %v, %v", ok, err)
	}
}

// A process uses a block of IDs for at most idBlockLife: the orphan pass
// counts on it.
func TestIDBlockLife(t *testing.T) {
	ctx := context.Background()
	q := newTestQueue(t, WithSweepInterval(time.Hour))
	first, err := q.Put(ctx, "b", benchBody)
	if err != nil {
		t.Fatal(err)
	}
	next, err := q.Put(ctx, "b", benchBody)
	if err != nil || next != first+1 {
		t.Fatalf("second Put: %d, %v; want %d from the same block", next, err, first+1)
	}
	q.later(idBlockLife + time.Second)
	late, err := q.Put(ctx, "b", benchBody)
	if err != nil {
		t.Fatal(err)
	}
	if late <= first+idBlock-1 {
		t.Fatalf("Put after idBlockLife got %d, from the old block %d-%d", late, first, first+idBlock-1)
	}
}

// A Put whose index write was applied but not answered looks for its entries
// before it writes them again. If another client reserved and deleted
// the job meanwhile, the deleting map shows the entry landed: the job is
// not put a second time.
func TestPutInDoubtJobDeletedMeanwhile(t *testing.T) {
	needInProcess(t, "injecting faults")
	ctx := context.Background()
	a := newTestQueue(t, WithSweepInterval(time.Hour))
	b := newPeer(t, a)
	if _, err := a.Put(ctx, "d", []byte("first")); err != nil { // registers the tube
		t.Fatal(err)
	}
	j, err := b.Reserve(ctx, "d")
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Delete(ctx, j.ID); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(tgt.srv.ClearFaults)
	// Alone, a Put writes its record and then its entry, each as a
	// single-record command: the entry's write is applied, and its
	// connection closed before the answer.
	if _, err := tgt.srv.Inject(aerospiketest.Fault{Action: aerospiketest.FaultCloseAfter,
		Command: aerospiketest.WriteCommand, Set: a.s.setIdx}); err != nil {
		t.Fatal(err)
	}
	var taken beanspike.ID
	f := func(point string) error {
		if point != "put:recheck" || taken != 0 {
			return nil
		}
		j, err := b.Reserve(ctx, "d")
		if err != nil {
			t.Errorf("Reserve of the job whose Put is in doubt: %v", err)
			return nil
		}
		taken = j.ID
		if err := b.Delete(ctx, j.ID); err != nil {
			t.Errorf("Delete: %v", err)
		}
		return nil
	}
	a.hook.Store(&f)
	id, err := a.Put(ctx, "d", []byte("second"))
	if err != nil {
		t.Fatalf("Put: %v", err)
	}
	if taken == 0 || id != taken {
		t.Fatalf("Put returned job %d; the recheck hook took %d", id, taken)
	}
	done, cancel := context.WithCancel(ctx)
	cancel()
	if j, err := b.Reserve(done, "d"); err == nil {
		t.Fatalf("job %d reserved again after its delete: %+v", j.ID, j)
	}
	wantStats(t, b, "d", 0, 0, 0, 0)
}

// An orphan pass that dies before it commits keeps the lease until it
// runs out; the next pass then does the work again and commits it.
func TestCrashOrphanPass(t *testing.T) {
	ctx := context.Background()
	a := newTestQueue(t, WithSweepInterval(time.Hour))
	b := newPeer(t, a)
	c := newPeer(t, a)
	c.crashAt("put:index")
	if _, err := c.Put(ctx, "o", []byte("x")); !errors.Is(err, errCrashed) {
		t.Fatalf("Put with crash hook: %v", err)
	}
	c.crash()
	if _, err := a.repairOrphans(ctx); err != nil { // marks the counter
		t.Fatal(err)
	}
	a.later(orphanLag + time.Second)
	b.later(orphanLag + time.Second)
	a.crashAt("orphans:commit")
	if n, err := a.repairOrphans(ctx); !errors.Is(err, errCrashed) || n != 1 {
		t.Fatalf("pass with crash hook: %d, %v; want 1 deleted, then the crash", n, err)
	}
	a.crash()
	cursor := func() int64 {
		t.Helper()
		rec, err := b.s.client.Get(nil, b.repairKey(), binCursor)
		if err != nil {
			t.Fatal(err)
		}
		c, _ := toInt(rec.Bins[binCursor])
		return c
	}
	before := cursor()
	if n, err := b.repairOrphans(ctx); err != nil || n != 0 || cursor() != before {
		t.Fatalf("pass during the dead pass's lease: %d, %v, cursor %d -> %d; want nothing done", n, err, before, cursor())
	}
	b.later(orphanLease)
	if _, err := b.repairOrphans(ctx); err != nil {
		t.Fatal(err)
	}
	if after := cursor(); after <= before {
		t.Fatalf("cursor %d -> %d after the lease ran out; want it moved on", before, after)
	}
}
