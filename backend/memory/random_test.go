package memory

import (
	"context"
	"errors"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/beanspike/beanspike"
)

// randomOp applies one random operation through c; it fails the test only
// on errors that no call sequence can explain.
func randomOp(t *testing.T, rng *rand.Rand, c *Queue, maxID uint64) {
	ctx := context.Background()
	tubes := []string{"a", "b", "c"}
	tube := tubes[rng.IntN(len(tubes))]
	id := beanspike.ID(1 + rng.Uint64N(maxID+1))
	var err error
	switch rng.IntN(12) {
	case 0, 1:
		opts := []beanspike.PutOption{beanspike.WithPriority(uint32(rng.IntN(3)))}
		if rng.IntN(3) == 0 {
			opts = append(opts, beanspike.WithDelay(time.Duration(rng.IntN(3))*time.Millisecond))
		}
		if rng.IntN(4) == 0 {
			opts = append(opts, beanspike.WithCompression())
		}
		_, err = c.Put(ctx, tube, []byte("body body body body body"), opts...)
	case 2:
		done, cancel := context.WithTimeout(ctx, time.Duration(rng.IntN(2))*time.Millisecond)
		_, err = c.Reserve(done, tubes[:1+rng.IntN(3)]...)
		cancel()
	case 3:
		_, err = c.ReserveJob(ctx, id)
	case 4:
		err = c.Release(ctx, id, uint32(rng.IntN(3)), time.Duration(rng.IntN(2))*time.Millisecond)
	case 5:
		err = c.Bury(ctx, id, 1, "r")
	case 6:
		_, err = c.Kick(ctx, tube, rng.IntN(3))
	case 7:
		err = c.KickJob(ctx, id)
	case 8:
		err = c.Delete(ctx, id)
	case 9:
		err = c.Touch(ctx, id)
	case 10:
		err = c.PauseTube(ctx, tube, time.Duration(rng.IntN(2))*time.Millisecond)
	case 11:
		if rng.IntN(10) == 0 {
			_, err = c.DeleteTube(ctx, tube)
		} else {
			done, cancel := context.WithTimeout(ctx, time.Duration(rng.IntN(2))*time.Millisecond)
			_, err = c.ReserveBatch(done, 1+rng.IntN(3), tubes...)
			cancel()
		}
	}
	switch {
	case err == nil, errors.Is(err, beanspike.ErrNotFound), errors.Is(err, beanspike.ErrNotReserved),
		errors.Is(err, context.DeadlineExceeded), errors.Is(err, beanspike.ErrClosed):
	default:
		t.Errorf("unexpected error: %v", err)
	}
}

func TestRandomOpsKeepInvariants(t *testing.T) {
	q := newQueue(t)
	clients := []*Queue{q, newClientT(t, q), newClientT(t, q)}
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range 20000 {
		c := clients[rng.IntN(len(clients))]
		if rng.IntN(500) == 0 && c != q {
			c.Close()
			nc := newClientT(t, q)
			for k := range clients {
				if clients[k] == c {
					clients[k] = nc
				}
			}
			continue
		}
		q.s.mu.Lock()
		maxID := q.s.lastID
		q.s.mu.Unlock()
		randomOp(t, rng, c, maxID)
		if err := q.s.checkInvariants(); err != nil {
			t.Fatalf("after op %d: %v", i, err)
		}
	}
}

func TestConcurrentRandomOps(t *testing.T) {
	q := newQueue(t)
	var wg sync.WaitGroup
	stop := make(chan struct{})
	for g := range 6 {
		c := newClientT(t, q)
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(g), 7))
			for {
				select {
				case <-stop:
					return
				default:
				}
				q.s.mu.Lock()
				maxID := q.s.lastID
				q.s.mu.Unlock()
				randomOp(t, rng, c, maxID)
			}
		}()
	}
	deadline := time.Now().Add(time.Second)
	for time.Now().Before(deadline) {
		if err := q.s.checkInvariants(); err != nil {
			close(stop)
			wg.Wait()
			t.Fatal(err)
		}
		time.Sleep(5 * time.Millisecond)
	}
	close(stop)
	wg.Wait()
}
