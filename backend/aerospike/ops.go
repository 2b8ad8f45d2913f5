package aerospike

import (
	"context"
	"fmt"
	"slices"
	"time"

	as "github.com/aerospike/aerospike-client-go/v8"

	"github.com/beanspike/beanspike"
)

// deletingPolicy writes the intent entries of deletes.
var deletingPolicy = as.NewMapPolicy(as.MapOrder.KEY_ORDERED, as.MapWriteMode.UPDATE)

// checkID runs the common checks of the calls that take a job ID.
func (q *Queue) checkID(ctx context.Context, id beanspike.ID) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := beanspike.ValidateID(id); err != nil {
		return err
	}
	return q.errClosed()
}

// mine returns this client's live reservation of id: from the cache when
// it has not lapsed there, otherwise from the index. It returns
// ErrNotFound when the job does not exist and ErrNotReserved when it is
// not reserved by this client.
func (q *Queue) mine(ctx context.Context, id beanspike.ID, fresh bool) (holding, error) {
	if h, ok := q.holdingOf(id); ok && !fresh && h.e.k1 > q.nowNs() {
		return h, nil
	}
	q.unhold(id)
	loc, _, err := q.locate(ctx, id, false)
	if err != nil {
		return holding{}, err
	}
	if loc.bin != binReserved || loc.e.owner != q.owner {
		return holding{}, errNotReserved(id)
	}
	h := holding{loc.ref, loc.e}
	q.hold(id, h)
	return h, nil
}

// ownMove applies to this client's reservation of id the move that next
// computes, with the extra operations. The move is a compare-and-swap on
// the job's index entry, so it fails, and is tried again on a fresh
// read, if the reservation lapsed or changed meanwhile.
func (q *Queue) ownMove(ctx context.Context, id beanspike.ID,
	next func(h holding, now int64) (string, entry, []*as.Operation)) (holding, entry, error) {
	fresh := false
	for range 4 {
		h, err := q.mine(ctx, id, fresh)
		if err != nil {
			return holding{}, entry{}, err
		}
		to, n, extra := next(h, q.nowNs())
		ok, err := q.apply(ctx, h.ref, []move{{id, binReserved, h.e, to, n}}, extra...)
		if err != nil {
			return holding{}, entry{}, err
		}
		if ok {
			return h, n, nil
		}
		fresh = true
	}
	return holding{}, entry{}, errUnavailable("job %d keeps changing", id)
}

// Delete removes a job reserved by this client, or one that is ready,
// delayed or buried; see [beanspike.Queue.Delete]. It takes one round
// trip: a guarded write that removes the index entry, recording the
// delete in the index record's deleting map and counting it. The job is
// deleted then; its record is deleted, and the deleting entry cleared,
// by the next tick of the client's background loop, batched with the
// client's other deletes.
func (q *Queue) Delete(ctx context.Context, id beanspike.ID) error {
	if err := q.checkID(ctx, id); err != nil {
		return err
	}
	for range 4 {
		var m move
		var ref shardRef
		if h, ok := q.holdingOf(id); ok && h.e.k1 > q.nowNs() {
			m, ref = move{id: id, from: binReserved, old: h.e}, h.ref
		} else {
			q.unhold(id)
			loc, _, err := q.locate(ctx, id, false)
			if err != nil {
				return err
			}
			if loc.bin == binReserved && loc.e.owner != q.owner {
				return errNotReserved(id)
			}
			m, ref = move{id: id, from: loc.bin, old: loc.e}, loc.ref
		}
		ok, err := q.apply(ctx, ref, []move{m},
			as.MapPutOp(deletingPolicy, binDeleting, int64(id), q.nowNs()),
			q.s.opDeleted)
		if err != nil {
			return err
		}
		q.unhold(id)
		if !ok {
			continue
		}
		if err := q.at("delete:index"); err != nil {
			return err
		}
		// The job is deleted: its entry is gone. The record goes with the
		// next tick; if the client dies first, the deleting entry leads
		// the repair pass to it.
		q.mu.Lock()
		q.doomed[ref] = append(q.doomed[ref], int64(id))
		q.mu.Unlock()
		return nil
	}
	return errUnavailable("job %d keeps changing", id)
}

// Release returns a job reserved by this client to ready, or to delayed;
// see [beanspike.Queue.Release]. One guarded write.
func (q *Queue) Release(ctx context.Context, id beanspike.ID, priority uint32, delay time.Duration) error {
	if err := q.checkID(ctx, id); err != nil {
		return err
	}
	if err := beanspike.ValidateDelay(delay); err != nil {
		return err
	}
	_, _, err := q.ownMove(ctx, id, func(h holding, now int64) (string, entry, []*as.Operation) {
		e := h.e
		e.pri = priority
		e.delay = int64(delay)
		e.releases++
		if delay > 0 {
			return binDelayed, e.asDelayed(deadline(now, int64(delay)), q.seq()), nil
		}
		return binReady, e.asReady(q.seq()), nil
	})
	if err != nil {
		return err
	}
	q.unhold(id)
	if delay == 0 {
		q.s.signal()
	}
	return nil
}

// Bury moves a job reserved by this client to buried; see
// [beanspike.Queue.Bury]. One guarded write.
func (q *Queue) Bury(ctx context.Context, id beanspike.ID, priority uint32, reason string) error {
	if err := q.checkID(ctx, id); err != nil {
		return err
	}
	_, _, err := q.ownMove(ctx, id, func(h holding, now int64) (string, entry, []*as.Operation) {
		e := h.e
		e.pri = priority
		e.buries++
		e.reason = reason
		return binBuried, e.asBuried(q.seq()), nil
	})
	if err != nil {
		return err
	}
	q.unhold(id)
	return nil
}

// Touch extends this client's reservation of a job by its TTR from now;
// see [beanspike.Queue.Touch]. One guarded write.
func (q *Queue) Touch(ctx context.Context, id beanspike.ID) error {
	if err := q.checkID(ctx, id); err != nil {
		return err
	}
	h, n, err := q.ownMove(ctx, id, func(h holding, now int64) (string, entry, []*as.Operation) {
		return binReserved, h.e.asReserved(q.owner, deadline(now, h.e.ttr)), nil
	})
	if err != nil {
		return err
	}
	q.hold(id, holding{h.ref, n})
	return nil
}

// Kick moves up to n buried jobs of tube to ready, or, when it has none,
// up to n delayed jobs; see [beanspike.Queue.Kick]. It reads the heads of
// the tube's index records in one batch command, then writes one guarded
// move per index record that holds jobs to kick.
func (q *Queue) Kick(ctx context.Context, tube string, n int) (int, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	if err := beanspike.ValidateTube(tube); err != nil {
		return 0, err
	}
	if n < 0 {
		return 0, fmt.Errorf("%w: kick count %d is negative", beanspike.ErrInvalidArgument, n)
	}
	if err := q.errClosed(); err != nil {
		return 0, err
	}
	kicked := 0
	from := "" // the first round picks buried, or delayed if none
	// A job moves at most once per call, even if it is buried again
	// while a later round runs, so that Kick stays one move per job.
	moved := map[beanspike.ID]bool{}
	for round := 0; kicked < n && round < 64; round++ {
		want := min(n-kicked, maxClaim)
		tvs, err := q.view(ctx, []string{tube}, viewSpec{delayed: want, buried: want})
		if err != nil {
			return kicked, err
		}
		var buried, delayed []cand
		for _, sv := range tvs[0].shards {
			for _, p := range sv.buried {
				buried = append(buried, cand{ref: sv.ref, kv: p})
			}
			for _, p := range sv.delayed {
				delayed = append(delayed, cand{ref: sv.ref, kv: p})
			}
		}
		if from == "" {
			from = binBuried
			if len(buried) == 0 {
				from = binDelayed
			}
		}
		list := buried
		if from == binDelayed {
			list = delayed
		}
		list = slices.DeleteFunc(list, func(c cand) bool { return moved[c.id] })
		if len(list) == 0 {
			break
		}
		slices.SortFunc(list, func(a, b cand) int { return keyLess(a.kv, b.kv) })
		list = list[:min(len(list), want)]
		groups := map[shardRef][]move{}
		var refs []shardRef
		for _, c := range list {
			e := c.e
			e.kicks++
			if groups[c.ref] == nil {
				refs = append(refs, c.ref)
			}
			groups[c.ref] = append(groups[c.ref], move{c.id, from, c.e, binReady, e.asReady(q.seq())})
		}
		for _, ref := range refs {
			ok, err := q.apply(ctx, ref, groups[ref])
			if err != nil {
				return kicked, err
			}
			if ok {
				kicked += len(groups[ref])
				for _, m := range groups[ref] {
					moved[m.id] = true
				}
			}
		}
		q.s.signal()
	}
	return kicked, nil
}

// KickJob moves one buried or delayed job to ready; see
// [beanspike.Queue.KickJob]. One guarded write after locating the job.
func (q *Queue) KickJob(ctx context.Context, id beanspike.ID) error {
	if err := q.checkID(ctx, id); err != nil {
		return err
	}
	for range 8 {
		loc, _, err := q.locate(ctx, id, false)
		if err != nil {
			return err
		}
		if loc.bin != binBuried && loc.bin != binDelayed {
			return fmt.Errorf("%w: job %d is %s, neither buried nor delayed", beanspike.ErrNotFound, id, loc.state())
		}
		e := loc.e
		e.kicks++
		ok, err := q.apply(ctx, loc.ref, []move{{id, loc.bin, loc.e, binReady, e.asReady(q.seq())}})
		if err != nil {
			return err
		}
		if ok {
			q.s.signal()
			return nil
		}
	}
	return errUnavailable("job %d keeps changing", id)
}
