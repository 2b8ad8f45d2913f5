package aerospike

import (
	"context"
	"slices"
	"sync"
	"time"

	as "github.com/aerospike/aerospike-client-go/v8"
	"github.com/aerospike/aerospike-client-go/v8/types"
)

// Group commit. The clients of one store send their writes and record
// reads through a combiner: while c.lanes commands are in flight, a new
// command waits, and when one finishes, every waiting command goes out
// together as one batch command. Alone, a command goes out at once: as a
// single-record command when it has one record, as single-record commands
// one after the other when it has two and nothing else is in flight (see
// seqMax), as a batch command otherwise. Each record keeps its
// own policy (guard, exists action) and gets its own result, so a caller
// reads its records exactly as if it had sent them alone; a batch that
// fails as a whole gives its failure to the records it left unanswered,
// as it does unmerged. Bulk commands go out on their own.
const (
	// maxCombined bounds the records of one combined command.
	maxCombined = 256
	// maxKeyWrites bounds the writes to one record in a combined command:
	// a server that runs a batch's parts in parallel (as Aerospike does
	// for namespaces on devices) queues them on the record, and more than
	// its transaction-pending-limit (20 by default) fail with KEY_BUSY.
	maxKeyWrites = 16
	// bulkRecords is the size from which a command goes out on its own,
	// without a lane: bulk work (the background loop's record deletes,
	// DeleteTube) does not hold up the calls behind it.
	bulkRecords = 64
	// seqMax is the most records that a command goes out as one after
	// the other, as single-record commands, when nothing else is in
	// flight. The client runs a batch command in a goroutine of its own
	// per node, even for one node; the hand-off wakes an idle processor,
	// and for two records that costs more time and far more CPU than a
	// second round trip (measured: BenchmarkReserveDelete). Under
	// concurrent load the single round trip of a batch wins.
	seqMax = 2
)

// combiner merges the commands sent at the same time by the clients of
// one store.
type combiner struct {
	lanes    int // commands in flight at most
	mu       sync.Mutex
	inflight int
	queue    []*pending
}

// pending is a command waiting for a lane.
type pending struct {
	ctx  context.Context
	recs []as.BatchRecordIfc
	// turn receives nil when another command sent this one, or the
	// group this one is to send (itself first).
	turn chan []*pending
}

// send sends recs, merged with whatever other clients of the store send
// meanwhile, and sets each record's result.
func (q *Queue) send(ctx context.Context, recs []as.BatchRecordIfc) {
	if len(recs) >= bulkRecords {
		q.exec(ctx, recs, false)
		return
	}
	q.s.comb.run(ctx, recs, q.exec, q.execGroup)
}

// run sends recs with one, or as part of a group with group, when a lane
// is free. one is told whether nothing else was in flight.
func (c *combiner) run(ctx context.Context, recs []as.BatchRecordIfc,
	one func(ctx context.Context, recs []as.BatchRecordIfc, idle bool), group func([]*pending)) {
	c.mu.Lock()
	if c.inflight < c.lanes {
		idle := c.inflight == 0
		c.inflight++
		c.mu.Unlock()
		one(ctx, recs, idle)
		c.next()
		return
	}
	p := &pending{ctx: ctx, recs: recs, turn: make(chan []*pending, 1)}
	c.queue = append(c.queue, p)
	c.mu.Unlock()
	g := <-p.turn
	if g == nil {
		return
	}
	if len(g) == 1 {
		one(ctx, recs, false)
	} else {
		group(g)
	}
	for _, o := range g[1:] {
		o.turn <- nil
	}
	c.next()
}

// next gives the lane of a finished command to the commands waiting, as
// one group led by the first of them, or frees it.
func (c *combiner) next() {
	c.mu.Lock()
	if len(c.queue) == 0 {
		c.inflight--
		c.mu.Unlock()
		return
	}
	n, i := 0, 0
	writes := map[string]int{}
	for i < len(c.queue) {
		p := c.queue[i]
		if i > 0 && (n+len(p.recs) > maxCombined || !fitsWrites(writes, p.recs)) {
			break
		}
		addWrites(writes, p.recs)
		n += len(p.recs)
		i++
	}
	g := make([]*pending, i)
	copy(g, c.queue)
	rest := copy(c.queue, c.queue[i:])
	clear(c.queue[rest:])
	c.queue = c.queue[:rest]
	c.mu.Unlock()
	g[0].turn <- g
}

// fitsWrites tells whether recs can join a command whose writes per
// record are counted in writes without any record taking more than
// maxKeyWrites.
func fitsWrites(writes map[string]int, recs []as.BatchRecordIfc) bool {
	add := map[string]int{}
	for _, r := range recs {
		if isWrite(r) {
			d := string(r.BatchRec().Key.Digest())
			add[d]++
			if writes[d]+add[d] > maxKeyWrites {
				return false
			}
		}
	}
	return true
}

// addWrites counts the writes of recs per record in writes.
func addWrites(writes map[string]int, recs []as.BatchRecordIfc) {
	for _, r := range recs {
		if isWrite(r) {
			writes[string(r.BatchRec().Key.Digest())]++
		}
	}
}

// isWrite tells whether r writes its record.
func isWrite(r as.BatchRecordIfc) bool {
	switch r.(type) {
	case *as.BatchWrite, *as.BatchDelete:
		return true
	}
	return false
}

// exec sends one caller's records: one record as a single-record
// command; up to seqMax records, when nothing else is in flight (idle),
// as single-record commands one after the other; more as a batch command.
func (q *Queue) exec(ctx context.Context, recs []as.BatchRecordIfc, idle bool) {
	if len(recs) == 1 || idle && len(recs) <= seqMax {
		if !slices.ContainsFunc(recs, notSingle) {
			for _, r := range recs {
				q.single(ctx, r)
			}
			return
		}
	}
	err := q.s.client.BatchOperate(q.batchPolicy(ctx), recs)
	if err != nil {
		foldBatchError(recs, err)
	}
}

// execGroup sends the records of several callers as one batch command,
// with the longest of their time budgets.
func (q *Queue) execGroup(group []*pending) {
	var all []as.BatchRecordIfc
	var budget time.Duration
	for _, p := range group {
		all = append(all, p.recs...)
		t, _ := q.timeout(p.ctx)
		budget = max(budget, t)
	}
	pol := *q.s.batchPol
	pol.TotalTimeout, pol.SocketTimeout = budget, budget
	pol.ConcurrentNodes = 0 // the parts for different nodes in parallel
	if err := q.s.client.BatchOperate(&pol, all); err != nil {
		foldBatchError(all, err)
	}
}

// resetResults clears the results of recs before they are sent.
// BatchOperate resets them too, except when it fails before sending
// anything.
func resetResults(recs []as.BatchRecordIfc) {
	for _, r := range recs {
		br := r.BatchRec()
		br.Record, br.ResultCode, br.Err, br.InDoubt = nil, types.NO_RESPONSE, nil, false
	}
}
