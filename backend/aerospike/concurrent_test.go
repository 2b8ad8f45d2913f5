package aerospike

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/beanspike/beanspike"
	"github.com/beanspike/beanspike/backend/aerospike/aerospiketest"
)

// workload runs producers and consumers, each a client with a connection
// of its own as separate processes would have, on one tube, and checks
// that every acknowledged job is processed, none by two consumers at
// once, and that the tube ends empty.
type workload struct {
	jobs      int
	producers int
	consumers int
	ttr       time.Duration
	// crashEvery, when set, makes consumer clients die at random points
	// (about one operation in crashEvery); a dead consumer is replaced.
	crashEvery int
	// strict checks that no job is held by two consumers at once; it
	// needs reservations that never lapse.
	strict bool
}

func (w workload) run(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	base := newTestQueue(t, WithSegmentSize(16), WithTimeout(500*time.Millisecond))
	const tube = "work"

	var mu sync.Mutex
	acked := map[beanspike.ID]bool{} // put acknowledged
	done := map[beanspike.ID]int{}   // successful deletes
	holder := map[beanspike.ID]int{} // consumer holding the job now
	seen := map[beanspike.ID]bool{}  // reserved at least once
	var putsLeft, crashes atomic.Int64
	putsLeft.Store(int64(w.jobs))

	var wg sync.WaitGroup
	errs := make(chan error, 100)
	fail := func(format string, args ...any) {
		select {
		case errs <- fmt.Errorf(format, args...):
		default:
		}
	}
	for p := range w.producers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			q := newPeer(t, base)
			for putsLeft.Add(-1) >= 0 {
				id, err := q.Put(ctx, tube, []byte(fmt.Sprintf("job from %d", p)), beanspike.WithTTR(w.ttr))
				if err != nil {
					if errors.Is(err, beanspike.ErrUnavailable) {
						continue // may or may not be put
					}
					fail("Put: %v", err)
					return
				}
				mu.Lock()
				acked[id] = true
				mu.Unlock()
			}
		}()
	}
	var producing sync.WaitGroup
	producing.Add(1)
	go func() { wg.Wait(); producing.Done() }()

	finished := func() bool {
		mu.Lock()
		defer mu.Unlock()
		if putsLeft.Load() >= 0 {
			return false
		}
		for id := range acked {
			if done[id] == 0 {
				return false
			}
		}
		return true
	}
	var cwg sync.WaitGroup
	for c := range w.consumers {
		cwg.Add(1)
		go func() {
			defer cwg.Done()
			for gen := 0; ctx.Err() == nil && !finished(); gen++ {
				q := newPeer(t, base)
				worker := c*1000 + gen
				var fired string // the crash point that fired
				if w.crashEvery > 0 {
					points := []string{"claimed", "delete", "deleted"}
					f := func(p string) error {
						for _, want := range points {
							if p == want && rand.IntN(w.crashEvery) == 0 {
								fired = p
								return errCrashed
							}
						}
						return nil
					}
					q.hook.Store(&f)
				}
				crashed := false
				for !crashed && ctx.Err() == nil && !finished() {
					rctx, rcancel := context.WithTimeout(ctx, 200*time.Millisecond)
					j, err := q.Reserve(rctx, tube)
					rcancel()
					switch {
					case errors.Is(err, errCrashed):
						crashed = true
						continue
					case errors.Is(err, context.DeadlineExceeded), errors.Is(err, beanspike.ErrUnavailable):
						continue
					case err != nil:
						fail("Reserve: %v", err)
						return
					}
					mu.Lock()
					if h, ok := holder[j.ID]; ok && w.strict {
						mu.Unlock()
						fail("job %d reserved by %d while %d holds it", j.ID, worker, h)
						return
					}
					holder[j.ID] = worker
					seen[j.ID] = true
					mu.Unlock()
					err = q.Delete(ctx, j.ID)
					mu.Lock()
					if holder[j.ID] == worker {
						delete(holder, j.ID)
					}
					switch {
					case err == nil:
						done[j.ID]++
					case errors.Is(err, errCrashed):
						crashed = true
						if fired == "deleted" {
							done[j.ID]++ // its record is gone: the job is deleted
						}
					case errors.Is(err, beanspike.ErrNotReserved), errors.Is(err, beanspike.ErrNotFound),
						errors.Is(err, beanspike.ErrUnavailable):
						// Lapsed, or the outcome is unknown: the job comes
						// back if it is not deleted.
					default:
						mu.Unlock()
						fail("Delete: %v", err)
						return
					}
					mu.Unlock()
				}
				if crashed {
					crashes.Add(1)
					q.crash()
				}
			}
		}()
	}
	producing.Wait()
	cwg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if t.Failed() {
		return
	}
	mu.Lock()
	defer mu.Unlock()
	for id := range acked {
		if done[id] == 0 {
			j, ok, err := base.readJob(context.Background(), id, false)
			t.Errorf("job %d was put but never deleted: record %v %v %+v", id, ok, err, j)
		}
	}
	// Counts can be off after crashes and writes in doubt (see the
	// package doc); the job records cannot.
	rec, err := base.s.client.Get(nil, base.idKey(), binNextID)
	if err != nil {
		t.Fatal(err)
	}
	last, _ := toInt(rec.Bins[binNextID])
	for id := int64(1); id <= last; id++ {
		if j, ok, err := base.readJob(context.Background(), beanspike.ID(id), false); err != nil || ok {
			t.Errorf("job %d left at the end: %+v, %v", id, j, err)
		}
	}
	if st, err := base.StatsTube(context.Background(), tube); err == nil {
		t.Logf("counts at the end: %+v", st)
	}
	t.Logf("%d jobs acknowledged, %d reserved, %d deleted, %d consumer crashes",
		len(acked), len(seen), len(done), crashes.Load())
	if w.crashEvery > 0 && crashes.Load() == 0 {
		t.Error("no consumer crashed")
	}
}

func TestManyClients(t *testing.T) {
	n := 400
	if testing.Short() {
		n = 100
	}
	workload{jobs: n, producers: 3, consumers: 4, ttr: time.Minute, strict: true}.run(t)
}

func TestManyClientsCrashing(t *testing.T) {
	n := 300
	if testing.Short() {
		n = 80
	}
	workload{jobs: n, producers: 2, consumers: 4, ttr: time.Second, crashEvery: 25}.run(t)
}

// TestManyClientsFaults runs the workload while the server fails
// commands: busy keys, timeouts, connections closed before or after
// executing a command (the latter leaves writes in doubt).
func TestManyClientsFaults(t *testing.T) {
	needInProcess(t, "fault injection")
	srv := tgt.srv
	faults := []aerospiketest.Fault{
		{Action: aerospiketest.FaultFail, Code: 14, Command: aerospiketest.WriteCommand, Nth: 7, Times: 3}, // KEY_BUSY
		{Action: aerospiketest.FaultFail, Code: 9, Command: aerospiketest.BatchCommand, Nth: 11, Times: 2}, // TIMEOUT
		{Action: aerospiketest.FaultCloseAfter, Command: aerospiketest.WriteCommand, Nth: 23, Times: 2},    // in doubt
		{Action: aerospiketest.FaultCloseAfter, Command: aerospiketest.BatchCommand, Nth: 31, Times: 1},    // in doubt
		{Action: aerospiketest.FaultCloseBefore, Command: aerospiketest.AnyCommand, Nth: 41, Times: 2},     // lost connection
		{Action: aerospiketest.FaultDelay, Delay: 20 * time.Millisecond, Command: aerospiketest.WriteCommand, Nth: 5, Times: 5},
	}
	stop := make(chan struct{})
	var fwg sync.WaitGroup
	fwg.Add(1)
	go func() {
		defer fwg.Done()
		tick := time.NewTicker(50 * time.Millisecond)
		defer tick.Stop()
		for {
			for _, f := range faults {
				if _, err := srv.Inject(f); err != nil {
					t.Errorf("Inject: %v", err)
					return
				}
			}
			select {
			case <-stop:
				srv.ClearFaults()
				return
			case <-tick.C:
				srv.ClearFaults()
			}
		}
	}()
	defer func() {
		close(stop)
		fwg.Wait()
	}()
	n := 300
	if testing.Short() {
		n = 80
	}
	workload{jobs: n, producers: 2, consumers: 4, ttr: 2 * time.Second}.run(t)
	s := srv.Stats()
	t.Logf("faults fired: %d, KEY_BUSY: %d", s.FaultsFired, s.KeyBusy)
	if s.FaultsFired == 0 {
		t.Error("no fault fired")
	}
}
