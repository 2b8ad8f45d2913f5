package aerospike

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/beanspike/beanspike"
)

// errCrashed is what a test hook returns to stop an operation where a
// crash would.
var errCrashed = errors.New("crashed here (test)")

// crash stops q as a killed process would stop: its background loop
// ends, and nothing is released, written in the background or cleaned
// up. Other clients sharing its store die with it.
func (q *Queue) crash() {
	q.s.dead.Store(true)
	if q.closed.CompareAndSwap(false, true) {
		close(q.done)
		q.loop.Wait()
		q.s.release()
	}
}

// shift moves q's clock forward by d.
func (q *Queue) shift(d time.Duration) { q.skew.Add(int64(d)) }

// wantStats checks a tube's counts.
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

// crashPoints are the named points of the backend's multi-step
// operations.
var crashPoints = []string{
	"put", "insert", "claim", "claimed", "delete", "deleted", "own", "to-ready",
	"split-new", "split-fence", "split-dir", "split-trim", "merge-sealed", "merge-unfenced",
}

// A client that dies at any point of any operation loses no job: another
// client, later, gets every job out, after the reservations of the dead
// one lapse and the hints it left half-moved are repaired.
func TestCrashPointsLoseNoJob(t *testing.T) {
	for _, point := range crashPoints {
		t.Run(point, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			a := newTestQueue(t, WithSegmentSize(4))
			b := newPeer(t, a)
			var fired atomic.Bool // splits and merges run in the background
			f := func(p string) error {
				if p == point && fired.CompareAndSwap(false, true) {
					return errCrashed
				}
				return nil
			}
			a.hook.Store(&f)
			// The dying client works until the point fires.
			ttr := beanspike.WithTTR(time.Second)
			for i := 0; i < 200 && !fired.Load(); i++ {
				switch i % 5 {
				case 0, 1:
					_, _ = a.Put(ctx, "c", []byte("x"), ttr)
				case 2:
					pctx, pcancel := context.WithCancel(ctx)
					pcancel()
					if j, err := a.Reserve(pctx, "c"); err == nil {
						if i%2 == 0 {
							_ = a.Delete(ctx, j.ID)
						} else {
							_ = a.Bury(ctx, j.ID, 1, "x")
						}
					}
				case 3:
					_, _ = a.Put(ctx, "c", []byte("x"), ttr, beanspike.WithDelay(time.Millisecond))
				case 4:
					_, _ = a.Kick(ctx, "c", 2)
				}
			}
			if !fired.Load() {
				t.Skipf("point %q not reached by the workload", point)
			}
			a.crash()
			// Time passes: reservations lapse, repairs are due.
			b.shift(time.Duration(3 * staleGrace))
			for range 20 {
				if _, err := b.Put(ctx, "c", []byte("y")); err != nil {
					t.Fatalf("Put after the crash: %v", err)
				}
			}
			drain(t, ctx, b, "c")
			if left := jobsLeft(t, b); len(left) > 0 {
				t.Fatalf("jobs left after the drain (lost): %v", left)
			}
		})
	}
}

// drain takes every job out of tube with q: kicks, reserves and deletes,
// round after round, until a few rounds in a row find nothing.
func drain(t *testing.T, ctx context.Context, q *Queue, tube string) {
	t.Helper()
	idle := 0
	for round := 0; idle < 3 && round < 200; round++ {
		moved, err := q.Kick(ctx, tube, 1<<20)
		if err != nil {
			t.Fatalf("Kick: %v", err)
		}
		for {
			pctx, pcancel := context.WithCancel(ctx)
			pcancel()
			j, err := q.Reserve(pctx, tube)
			if err != nil {
				break
			}
			moved++
			if err := q.Delete(ctx, j.ID); err != nil {
				t.Fatalf("Delete: %v", err)
			}
		}
		q.s.flush(ctx) // checks of stale hints, repairs
		if moved == 0 {
			idle++
			time.Sleep(20 * time.Millisecond)
		} else {
			idle = 0
		}
	}
}

// jobsLeft returns the IDs of the store's job records.
func jobsLeft(t *testing.T, q *Queue) []beanspike.ID {
	t.Helper()
	rec, err := q.s.client.Get(nil, q.idKey(), binNextID)
	if err != nil {
		t.Fatal(err)
	}
	last, _ := toInt(rec.Bins[binNextID])
	var left []beanspike.ID
	for id := int64(1); id <= last; id++ {
		if _, ok, err := q.readJob(context.Background(), beanspike.ID(id), false); err != nil {
			t.Fatal(err)
		} else if ok {
			left = append(left, beanspike.ID(id))
		}
	}
	return left
}
