package aerospike

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/beanspike/beanspike"
)

// checkReachable checks the invariant of the data model: every job
// record of the store is reachable, its hint in the index its state
// calls for, in a segment its directory names. It returns the problems
// found.
func checkReachable(ctx context.Context, q *Queue, tubes []string) ([]string, error) {
	// Background sweeps may move jobs while the indexes are walked: a job
	// found without its hint is looked at again after a second walk, and
	// reported only if its record did not change meanwhile.
	first, err := unreachableJobs(ctx, q, tubes, nil)
	if err != nil || len(first) == 0 {
		return nil, err
	}
	again, err := unreachableJobs(ctx, q, tubes, first)
	if err != nil {
		return nil, err
	}
	var bad []string
	for id, j := range again {
		if f, ok := first[id]; ok && f.gen == j.gen {
			bad = append(bad, fmt.Sprintf("job %d (%s, %+v) has no hint %+v in index %c", id, j.state, j, j.hint(), kindOf(j.state)))
		}
	}
	return bad, nil
}

// unreachableJobs returns the jobs, among only if not nil, whose hint is not
// in the index of their state.
func unreachableJobs(ctx context.Context, q *Queue, tubes []string, only map[beanspike.ID]jobRec) (map[beanspike.ID]jobRec, error) {
	q.s.flush(ctx)
	hints := map[ixRef]map[hint]bool{}
	for _, tube := range tubes {
		t, err := q.readTube(ctx, tube)
		if err != nil {
			return nil, err
		}
		if t.ep == 0 {
			continue
		}
		for _, kind := range []byte{kindReady, kindDelayed, kindReserved, kindBuried} {
			r := t.ix(kind)
			hints[r] = map[hint]bool{}
			segs, err := q.segments(ctx, r)
			if err != nil {
				return nil, err
			}
			for _, seg := range segs {
				hs, err := q.segmentKeys(ctx, r, seg)
				if err != nil {
					return nil, err
				}
				for _, h := range hs {
					h.ttr = 0
					hints[r][h] = true
				}
			}
		}
	}
	rec, err := q.s.client.Get(nil, q.idKey(), binNextID)
	if err != nil {
		return nil, err
	}
	last, _ := toInt(rec.Bins[binNextID])
	bad := map[beanspike.ID]jobRec{}
	for id := int64(1); id <= last; id++ {
		if _, ok := only[beanspike.ID(id)]; only != nil && !ok {
			continue
		}
		j, ok, err := q.readJob(ctx, beanspike.ID(id), false)
		if err != nil {
			return nil, err
		}
		if !ok {
			continue
		}
		t, err := q.readTube(ctx, j.tube)
		if err != nil {
			return nil, err
		}
		h := j.hint()
		h.ttr = 0
		if !hints[t.ix(kindOf(j.state))][h] {
			bad[j.id] = j
		}
	}
	return bad, nil
}

// Random operations by several clients, with small segments so that
// splits and merges happen all the time, leave every job reachable.
func TestEveryJobReachable(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	base := newTestQueue(t, WithSegmentSize(4))
	tubes := []string{"a", "b"}
	var wg sync.WaitGroup
	var peers []*Queue
	for c := range 4 {
		q := newPeer(t, base)
		peers = append(peers, q)
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(c), 7))
			var held []beanspike.ID
			for range 300 {
				tube := tubes[rng.IntN(len(tubes))]
				switch rng.IntN(13) {
				case 0, 1, 2:
					opts := []beanspike.PutOption{beanspike.WithPriority(uint32(rng.IntN(3)))}
					if rng.IntN(4) == 0 {
						opts = append(opts, beanspike.WithDelay(time.Duration(rng.IntN(30))*time.Millisecond))
					}
					_, _ = q.Put(ctx, tube, []byte("x"), opts...)
				case 3, 4:
					pctx, pcancel := context.WithCancel(ctx)
					pcancel()
					if j, err := q.Reserve(pctx, tube); err == nil {
						held = append(held, j.ID)
					} else if !errors.Is(err, context.Canceled) {
						t.Errorf("Reserve: %v", err)
					}
				case 5:
					if len(held) > 0 {
						_ = q.Delete(ctx, held[0])
						held = held[1:]
					}
				case 6:
					if len(held) > 0 {
						_ = q.Release(ctx, held[0], uint32(rng.IntN(3)), time.Duration(rng.IntN(2))*time.Millisecond)
						held = held[1:]
					}
				case 7:
					if len(held) > 0 {
						_ = q.Bury(ctx, held[0], 1, "x")
						held = held[1:]
					}
				case 8:
					if _, err := q.Kick(ctx, tube, 1+rng.IntN(3)); err != nil {
						t.Errorf("Kick: %v", err)
					}
				case 9:
					if j, err := q.ReserveJob(ctx, beanspike.ID(1+rng.IntN(1200))); err == nil {
						held = append(held, j.ID)
					}
				case 10:
					if len(held) > 0 {
						_ = q.Touch(ctx, held[0])
					}
				case 11:
					_ = q.KickJob(ctx, beanspike.ID(1+rng.IntN(1200)))
				case 12:
					_ = q.Delete(ctx, beanspike.ID(1+rng.IntN(1200)))
				}
			}
		}()
	}
	wg.Wait()
	bad, err := checkReachable(ctx, base, tubes)
	if err != nil {
		t.Fatal(err)
	}
	for _, b := range bad {
		t.Error(b)
	}
	// Drain: kick everything, then reserve and delete until nothing is
	// left; every job must come out.
	d, err := base.NewClient()
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	for _, c := range peers {
		c.Close()
	}
	for round := 0; round < 100; round++ {
		moved := 0
		for _, tube := range tubes {
			n, err := d.Kick(ctx, tube, 1<<20)
			if err != nil {
				t.Fatal(err)
			}
			moved += n
		}
		for {
			pctx, pcancel := context.WithCancel(ctx)
			pcancel()
			j, err := d.Reserve(pctx, tubes...)
			if err != nil {
				break
			}
			moved++
			if err := d.Delete(ctx, j.ID); err != nil {
				t.Fatal(err)
			}
		}
		if moved == 0 {
			break
		}
	}
	left, err := unreachableJobs(ctx, base, tubes, nil)
	if err != nil {
		t.Fatal(err)
	}
	rec, _ := base.s.client.Get(nil, base.idKey(), binNextID)
	last, _ := toInt(rec.Bins[binNextID])
	for id := int64(1); id <= last; id++ {
		if j, ok, _ := base.readJob(ctx, beanspike.ID(id), false); ok {
			_, unreach := left[j.id]
			t.Errorf("job %d left after the drain: %s %+v (hint missing: %v)", id, j.state, j, unreach)
		}
	}
}
