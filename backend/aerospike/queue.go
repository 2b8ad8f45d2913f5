package aerospike

import (
	"context"
	crand "crypto/rand"
	"encoding/binary"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	as "github.com/aerospike/aerospike-client-go/v8"
	"github.com/aerospike/aerospike-client-go/v8/types"

	"github.com/beanspike/beanspike"
	"github.com/beanspike/beanspike/codec"
)

var (
	_ beanspike.Queue   = (*Queue)(nil)
	_ beanspike.Batcher = (*Queue)(nil)
)

// idBlock is how many job IDs a process takes from the counter at once.
const idBlock = 256

// Queue is one client of a job store kept in an Aerospike namespace. It
// is safe for concurrent use by multiple goroutines. Each Queue, whether
// made by [New] or [Queue.NewClient], has its own random 128-bit identity:
// the reservations it makes belong to it.
type Queue struct {
	s     *store
	owner [2]int64

	// skew is added to the wall clock; tests use it to move a client in
	// time.
	skew atomic.Int64
	// hook, when set, is called at the named points of multi-step
	// operations; an error stops the operation there, as a crash would.
	hook atomic.Pointer[func(point string) error]

	closed    atomic.Bool
	releasing atomic.Bool // Close is returning the reservations
	done      chan struct{}
	loop      sync.WaitGroup

	mu     sync.Mutex
	held   map[beanspike.ID]holding // this client's reservations
	active map[string]int64         // tubes used lately, with the time
}

// store is what the clients made from one [New] share: the connection,
// the configuration, process-local caches and the background writer.
type store struct {
	client  *as.Client
	owns    bool
	cfg     config
	setJobs string
	setIdx  string
	setMeta string
	codec   *codec.LZ4
	seq     atomic.Int64
	dead    atomic.Bool // crashed (tests): background work is dropped

	// Policies that never change, shared by every call (the client only
	// reads them): the policies carry the configured timeout, and calls
	// whose context cuts it make their own.
	readPol  *as.BasePolicy
	writePol *as.WritePolicy
	batchPol *as.BatchPolicy
	bwPol    *as.BatchWritePolicy // never expire
	bwCreate *as.BatchWritePolicy // never expire, create only
	bwUpdate *as.BatchWritePolicy // never expire, update only

	idMu   sync.Mutex // serializes ID block allocation
	idNext uint64
	idEnd  uint64
	idAt   int64 // when the current block was taken (ns)

	mu     sync.Mutex
	refs   int
	dirs   map[ixRef]*dir
	tubes  map[string]*tubeInfo
	pics   map[string]*picture
	wait   map[string]int    // blocked Reserve calls by tube
	tended map[string]int64  // when a client last tended each tube (ns)
	work   map[workRef]bool  // splits and merges under way
	gone   map[goneRef]int   // ready hints the process is removing
	skips  map[goneRef]int64 // ready hints whose claim failed, until when to skip them
	wake   chan struct{}     // closed and replaced on local puts

	// The background writer's queue (under mu).
	moves    []pendingMove
	counts   map[tubeEp]delta
	checks   []staleHint
	queued   int64 // flush rounds asked for
	flushed  int64 // flush rounds done
	flushCh  chan struct{}
	flushReq chan struct{}
	flushNow chan struct{} // a call waits for the round

	bgCtx       context.Context
	bgCancel    context.CancelFunc
	bgWait      sync.WaitGroup
	bgSem       chan struct{}
	flusherDone chan struct{}

	health health // whether the store answers

	comb combiner // merges the commands of concurrent calls
}

// New connects to an Aerospike cluster and returns a client of the job
// store kept there under the configured namespace and set prefix. The
// store is created on first use. ctx bounds the connection.
//
// Errors: [beanspike.ErrInvalidArgument] for bad options,
// [beanspike.ErrUnavailable] when the cluster cannot be reached, ctx.Err().
func New(ctx context.Context, opts ...Option) (*Queue, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	cfg, err := resolve(opts)
	if err != nil {
		return nil, err
	}
	client, owns := cfg.client, false
	if client == nil {
		client, err = connect(ctx, &cfg)
		if err != nil {
			return nil, err
		}
		owns = true
	}
	fail := func(err error) (*Queue, error) {
		if owns {
			client.Close()
		}
		return nil, err
	}
	recLimit, err := maxRecordSize(ctx, client, cfg.namespace)
	if err != nil {
		return fail(err)
	}
	fits := recLimit - RecordOverhead
	switch {
	case !cfg.maxBodySet:
		cfg.maxBodySize = min(beanspike.DefaultMaxBodySize, fits)
	case cfg.maxBodySize > fits:
		return fail(fmt.Errorf("%w: max body size %d does not fit in a record of namespace %q, whose max-record-size %d takes bodies of up to %d bytes",
			beanspike.ErrInvalidArgument, cfg.maxBodySize, cfg.namespace, recLimit, fits))
	}
	// A segment's hints take about 32 bytes each; a segment must fit in
	// a record, with room to grow while a split is under way.
	cfg.segSize = max(min(cfg.segSize, (recLimit-RecordOverhead)/64), MinSegmentSize)
	lz, err := codec.NewLZ4(&codec.Options{MaxSize: cfg.maxBodySize})
	if err != nil {
		return fail(fmt.Errorf("%w: %w", beanspike.ErrInvalidArgument, err))
	}
	s := &store{
		client:      client,
		owns:        owns,
		cfg:         cfg,
		setJobs:     cfg.setPrefix + "_jobs",
		setIdx:      cfg.setPrefix + "_idx",
		setMeta:     cfg.setPrefix + "_meta",
		codec:       lz,
		dirs:        map[ixRef]*dir{},
		tubes:       map[string]*tubeInfo{},
		pics:        map[string]*picture{},
		wait:        map[string]int{},
		tended:      map[string]int64{},
		work:        map[workRef]bool{},
		gone:        map[goneRef]int{},
		skips:       map[goneRef]int64{},
		wake:        make(chan struct{}),
		counts:      map[tubeEp]delta{},
		flushCh:     make(chan struct{}),
		flushReq:    make(chan struct{}, 1),
		flushNow:    make(chan struct{}, 1),
		bgSem:       make(chan struct{}, 8),
		flusherDone: make(chan struct{}),
		comb:        combiner{lanes: cfg.inFlight},
		health:      health{log: cfg.logger},
	}
	s.bgCtx, s.bgCancel = context.WithCancel(context.Background())
	s.initPolicies()
	q := s.newClient()
	go q.flusher()
	q.start()
	return q, nil
}

// defaultMaxRecordSize is Aerospike's default max-record-size (since
// 7.1), assumed for a server that does not report its own.
const defaultMaxRecordSize = 1 << 20

// maxRecordSize returns the smallest max-record-size that the nodes of
// the cluster report for namespace ns, or Aerospike's default when none
// reports one (older servers, or a user not allowed info commands). It
// fails when no node knows the namespace.
func maxRecordSize(ctx context.Context, client *as.Client, ns string) (int, error) {
	pol := as.NewInfoPolicy()
	if dl, ok := ctx.Deadline(); ok {
		pol.Timeout = max(time.Until(dl), time.Millisecond)
	}
	limit, answered := 0, false
	for _, n := range client.GetNodes() {
		if err := ctx.Err(); err != nil {
			return 0, err
		}
		info, err := n.RequestInfo(pol, "namespace/"+ns)
		if err != nil {
			continue
		}
		answered = true
		v, ok := info["namespace/"+ns]
		if !ok || v == "" || strings.HasPrefix(v, "ERROR") || strings.HasPrefix(v, "type=unknown") {
			return 0, fmt.Errorf("%w: namespace %q is not configured on node %s", beanspike.ErrInvalidArgument, ns, n.GetName())
		}
		for _, kv := range strings.Split(v, ";") {
			if size, ok := strings.CutPrefix(kv, "max-record-size="); ok {
				if b, err := strconv.Atoi(size); err == nil && b > 0 && (limit == 0 || b < limit) {
					limit = b
				}
			}
		}
	}
	if limit == 0 {
		if !answered && len(client.GetNodes()) == 0 {
			return 0, errUnavailable("no cluster node to ask for namespace %q", ns)
		}
		limit = defaultMaxRecordSize
	}
	return limit, nil
}

// MaxBodySize returns the largest body, in bytes before compression, that
// Put accepts: the one set with [WithMaxBodySize], or
// [beanspike.DefaultMaxBodySize] or what the namespace's max-record-size
// allows, whichever is smaller. It implements [beanspike.BodyLimiter].
func (q *Queue) MaxBodySize() int { return q.s.cfg.maxBodySize }

// connect opens a client to the configured hosts within ctx.
func connect(ctx context.Context, cfg *config) (*as.Client, error) {
	hosts, err := cfg.seedHosts()
	if err != nil {
		return nil, err
	}
	pol := as.NewClientPolicy()
	if cfg.clientPolicy != nil {
		p := *cfg.clientPolicy
		pol = &p
	}
	if dl, ok := ctx.Deadline(); ok {
		if left := time.Until(dl); left < pol.Timeout {
			pol.Timeout = max(left, 10*time.Millisecond)
		}
	}
	type result struct {
		c   *as.Client
		err error
	}
	ch := make(chan result, 1)
	go func() {
		c, err := as.NewClientWithPolicyAndHost(pol, hosts...)
		if err != nil {
			ch <- result{nil, err}
			return
		}
		ch <- result{c, nil}
	}()
	select {
	case r := <-ch:
		if r.err != nil {
			return nil, interpretError(r.err)
		}
		return r.c, nil
	case <-ctx.Done():
		go func() {
			if r := <-ch; r.c != nil {
				r.c.Close()
			}
		}()
		return nil, ctx.Err()
	}
}

// newClient makes a client of s with a fresh identity.
func (s *store) newClient() *Queue {
	var b [16]byte
	_, _ = crand.Read(b[:])
	q := &Queue{
		s: s,
		owner: [2]int64{
			int64(binary.LittleEndian.Uint64(b[:8])),
			int64(binary.LittleEndian.Uint64(b[8:])) | 1, // never all zero
		},
		done:   make(chan struct{}),
		held:   map[beanspike.ID]holding{},
		active: map[string]int64{},
	}
	s.mu.Lock()
	s.refs++
	s.mu.Unlock()
	return q
}

// NewClient returns a new client of q's store with its own identity,
// sharing q's connection. The connection stays open until every client
// sharing it is closed.
//
// Errors: [beanspike.ErrClosed].
func (q *Queue) NewClient() (*Queue, error) {
	if q.closed.Load() {
		return nil, beanspike.ErrClosed
	}
	c := q.s.newClient()
	c.start()
	return c, nil
}

// As gives access to the native client: it sets *target to the
// *aerospike.Client when target is a **aerospike.Client and returns
// true; it returns false for anything else.
func (q *Queue) As(target any) bool {
	if p, ok := target.(**as.Client); ok {
		*p = q.s.client
		return true
	}
	return false
}

// start runs the client's background loop.
func (q *Queue) start() {
	q.loop.Add(1)
	go q.background()
}

// Close closes the client: its reservations return to ready at once (best
// effort: a reservation that cannot be returned lapses after its TTR),
// its blocked calls return [beanspike.ErrClosed], and so do later calls.
// Closing the last client made from a [New] call closes the connection,
// unless it was given with [WithClient]. Close is idempotent; it returns
// an error wrapping [beanspike.ErrUnavailable] when the reservations could
// not all be returned.
func (q *Queue) Close() error {
	if !q.closed.CompareAndSwap(false, true) {
		return nil
	}
	close(q.done)
	q.loop.Wait()
	var err error
	q.releasing.Store(true)
	if q.at("close") == nil {
		ctx, cancel := context.WithTimeout(context.Background(), 2*q.s.cfg.timeout)
		err = q.releaseAll(ctx)
		cancel()
	}
	q.s.release()
	return err
}

// release drops a client's reference to the store.
func (s *store) release() {
	s.mu.Lock()
	s.refs--
	last := s.refs == 0
	s.mu.Unlock()
	if !last {
		return
	}
	s.bgCancel() // the flusher makes a last round
	<-s.flusherDone
	s.bgWait.Wait()
	if s.owns {
		s.client.Close()
	}
}

// errClosed returns ErrClosed when q is closed.
func (q *Queue) errClosed() error {
	if q.closed.Load() {
		return beanspike.ErrClosed
	}
	return nil
}

// stopCh is closed when the client's calls should give up waiting: at
// Close, except for the work Close itself does.
func (q *Queue) stopCh() <-chan struct{} {
	if q.releasing.Load() {
		return nil
	}
	return q.done
}

// at runs the test hook for point.
func (q *Queue) at(point string) error {
	if h := q.hook.Load(); h != nil {
		return (*h)(point)
	}
	return nil
}

// now reads the client's clock.
func (q *Queue) now() time.Time { return time.Now().Add(time.Duration(q.skew.Load())) }

func (q *Queue) nowNs() int64 { return q.now().UnixNano() }

// seq returns a new sequence number: the current time in nanoseconds,
// strictly increasing within the process.
func (q *Queue) seq() int64 {
	for {
		last := q.s.seq.Load()
		n := q.nowNs()
		if n <= last {
			n = last + 1
		}
		if q.s.seq.CompareAndSwap(last, n) {
			return n
		}
	}
}

// --- policies --------------------------------------------------------------

// initPolicies makes the shared policies and operations.
func (s *store) initPolicies() {
	t := s.cfg.timeout
	rp := as.NewPolicy()
	rp.TotalTimeout, rp.SocketTimeout, rp.MaxRetries = t, t, 0
	s.readPol = rp
	wp := as.NewWritePolicy(0, as.TTLDontExpire)
	wp.TotalTimeout, wp.SocketTimeout, wp.MaxRetries = t, t, 0
	s.writePol = wp
	bp := as.NewBatchPolicy()
	bp.TotalTimeout, bp.SocketTimeout, bp.MaxRetries = t, t, 0
	s.batchPol = bp
	s.bwPol = batchWritePolicy(nil)
	s.bwCreate = batchWritePolicy(nil)
	s.bwCreate.RecordExistsAction = as.CREATE_ONLY
	s.bwUpdate = batchWritePolicy(nil)
	s.bwUpdate.RecordExistsAction = as.UPDATE_ONLY
}

// bwUpdateWith returns a batch write policy that updates a record
// under filter.
func (s *store) bwUpdateWith(filter *as.Expression) *as.BatchWritePolicy {
	p := batchWritePolicy(filter)
	p.RecordExistsAction = as.UPDATE_ONLY
	return p
}

// bwGen returns a batch write policy that updates a record of
// generation gen.
func (s *store) bwGen(gen uint32) *as.BatchWritePolicy {
	p := batchWritePolicy(nil)
	p.RecordExistsAction = as.UPDATE_ONLY
	p.GenerationPolicy = as.EXPECT_GEN_EQUAL
	p.Generation = gen
	return p
}

// timeout is the budget of one command: the configured timeout, cut by
// ctx's deadline, but never below a floor so that a poll with a done
// context still gets its answer. cut tells whether ctx cut it.
func (q *Queue) timeout(ctx context.Context) (t time.Duration, cut bool) {
	t = q.s.cfg.timeout
	if dl, ok := ctx.Deadline(); ok {
		if left := time.Until(dl); left < t {
			return max(left, 50*time.Millisecond), true
		}
	}
	return t, false
}

// readPolicy returns the policy of a read within ctx. The caller must not
// modify it: it may be shared.
func (q *Queue) readPolicy(ctx context.Context) *as.BasePolicy {
	t, cut := q.timeout(ctx)
	if !cut {
		return q.s.readPol
	}
	p := *q.s.readPol
	p.TotalTimeout, p.SocketTimeout = t, t
	return &p
}

// writePolicy returns a new policy for a write within ctx, with the
// filter; the caller may modify it.
func (q *Queue) writePolicy(ctx context.Context, filter *as.Expression) *as.WritePolicy {
	t, _ := q.timeout(ctx)
	p := *q.s.writePol
	p.TotalTimeout, p.SocketTimeout = t, t
	p.FilterExpression = filter
	return &p
}

// plainWritePolicy is writePolicy without a filter, which the caller must
// not modify: it may be shared.
func (q *Queue) plainWritePolicy(ctx context.Context) *as.WritePolicy {
	if _, cut := q.timeout(ctx); !cut {
		return q.s.writePol
	}
	return q.writePolicy(ctx, nil)
}

// batchPolicy returns the policy of a batch command within ctx. The
// caller must not modify it: it may be shared.
func (q *Queue) batchPolicy(ctx context.Context) *as.BatchPolicy {
	t, cut := q.timeout(ctx)
	if !cut {
		return q.s.batchPol
	}
	p := *q.s.batchPol
	p.TotalTimeout, p.SocketTimeout = t, t
	return &p
}

func batchWritePolicy(filter *as.Expression) *as.BatchWritePolicy {
	p := as.NewBatchWritePolicy()
	p.Expiration = as.TTLDontExpire
	p.FilterExpression = filter
	return p
}

// retry runs an idempotent command until it succeeds, fails for good or
// runs out of attempts, backing off with jitter after transient failures.
func (q *Queue) retry(ctx context.Context, f func() error) error {
	b := backoff{h: &q.s.health}
	for {
		err := f()
		if err == nil {
			if b.lost > 0 {
				q.s.health.up()
			}
			return nil
		}
		if !transient(resultCode(err)) {
			return interpretError(err)
		}
		if werr := b.wait(ctx, q.stopCh(), err); werr != nil {
			return werr
		}
	}
}

// batchRead runs a batch of reads, retrying transient failures, until
// every record is either read or known to be missing.
func (q *Queue) batchRead(ctx context.Context, recs []as.BatchRecordIfc) error {
	return q.retry(ctx, func() error {
		q.batch(ctx, recs)
		for _, r := range recs {
			if c := r.BatchRec().ResultCode; c != types.OK && c != types.KEY_NOT_FOUND_ERROR {
				return batchErr(r.BatchRec())
			}
		}
		return nil
	})
}

// batch runs one batch command and leaves every record with its own
// result, so callers read per-record results only. A failure of the
// whole command (a node's sub-batch timed out, its connections ran out,
// it refused the batch) is moved to the records it left unanswered, with
// InDoubt set for writes that may have been applied; the records that
// were answered keep their results, so a write that was applied on one
// node is never taken for failed because another node's part failed.
//
// A batch of one record is sent as a single-record command, which spares
// the client and the server the batch machinery; its result is set as a
// batch command would set it.
func (q *Queue) batch(ctx context.Context, recs []as.BatchRecordIfc) {
	if len(recs) == 0 {
		return
	}
	resetResults(recs)
	q.send(ctx, recs)
}

// foldBatchError gives the failure err of a whole batch command to the
// records it left unanswered.
func foldBatchError(recs []as.BatchRecordIfc, err as.Error) {
	code, doubt := resultCode(err), inDoubt(err)
	if code == noCode || code == types.OK {
		code = types.COMMON_ERROR
	}
	for _, r := range recs {
		br := r.BatchRec()
		if br.ResultCode != types.NO_RESPONSE {
			continue // answered, or refused before sending with its own error
		}
		br.ResultCode, br.Err, br.InDoubt, br.Record = code, err, isWrite(r) && doubt, nil
	}
}

// notSingle tells whether r cannot be sent as a single-record command.
func notSingle(r as.BatchRecordIfc) bool { return !single(r) }

// single tells whether r can be sent as a single-record command.
func single(r as.BatchRecordIfc) bool {
	switch x := r.(type) {
	case *as.BatchWrite:
		return true
	case *as.BatchRead:
		return x.Policy == nil
	case *as.BatchDelete:
		return x.Policy == nil
	}
	return false
}

// single sends the record r of a batch as a single-record command and sets
// its result as a batch command would.
func (q *Queue) single(ctx context.Context, r as.BatchRecordIfc) {
	var rec *as.Record
	var err as.Error
	switch x := r.(type) {
	case *as.BatchWrite:
		p := q.writePolicy(ctx, nil)
		if bp := x.Policy; bp != nil {
			p.FilterExpression = bp.FilterExpression
			p.RecordExistsAction = bp.RecordExistsAction
			p.CommitLevel = bp.CommitLevel
			p.GenerationPolicy = bp.GenerationPolicy
			p.Generation = bp.Generation
			p.Expiration = bp.Expiration
			p.DurableDelete = bp.DurableDelete
			p.SendKey = bp.SendKey
		}
		rec, err = q.s.client.Operate(p, x.Key, x.Ops...)
	case *as.BatchRead:
		switch {
		case len(x.Ops) > 0:
			rec, err = q.s.client.Operate(q.plainWritePolicy(ctx), x.Key, x.Ops...)
		case x.ReadAllBins:
			rec, err = q.s.client.Get(q.readPolicy(ctx), x.Key)
		case len(x.BinNames) > 0:
			rec, err = q.s.client.Get(q.readPolicy(ctx), x.Key, x.BinNames...)
		default:
			rec, err = q.s.client.GetHeader(q.readPolicy(ctx), x.Key)
		}
	case *as.BatchDelete:
		_, err = q.s.client.Delete(q.plainWritePolicy(ctx), x.Key)
	}
	br := r.BatchRec()
	if err != nil {
		br.Record, br.Err, br.ResultCode = nil, err, resultCode(err)
		br.InDoubt = err.IsInDoubt()
		return
	}
	br.Record, br.Err, br.ResultCode, br.InDoubt = rec, nil, types.OK, false
}

// --- process state -------------------------------------------------------

// signal wakes this process's blocked Reserve calls.
func (s *store) signal() {
	s.mu.Lock()
	if len(s.wait) > 0 {
		close(s.wake)
		s.wake = make(chan struct{})
	}
	s.mu.Unlock()
}

func (s *store) wakeChan() <-chan struct{} {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.wake
}

// addWait counts a blocked Reserve call on tubes.
func (s *store) addWait(tubes []string) {
	s.mu.Lock()
	for _, t := range tubes {
		s.wait[t]++
	}
	s.mu.Unlock()
}

func (s *store) unwait(tubes []string) {
	s.mu.Lock()
	for _, t := range tubes {
		if s.wait[t]--; s.wait[t] <= 0 {
			delete(s.wait, t)
		}
	}
	s.mu.Unlock()
}

// waiting returns the number of this process's blocked Reserve calls on
// tube.
func (s *store) waiting(tube string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.wait[tube]
}

// dropTube forgets what the process knows of a tube's indexes.
func (s *store) dropTube(tube string) {
	s.mu.Lock()
	for r := range s.dirs {
		if r.tube == tube {
			delete(s.dirs, r)
		}
	}
	delete(s.pics, tube)
	s.mu.Unlock()
}

// touchTube marks tube as used by q, so its background loop tends it.
func (q *Queue) touchTube(tube string) {
	now := q.nowNs()
	q.mu.Lock()
	q.active[tube] = now
	q.mu.Unlock()
}

func (q *Queue) hold(id beanspike.ID, h holding) {
	q.mu.Lock()
	q.held[id] = h
	q.mu.Unlock()
}

func (q *Queue) unhold(id beanspike.ID) {
	q.mu.Lock()
	delete(q.held, id)
	q.mu.Unlock()
}

func (q *Queue) holdingOf(id beanspike.ID) (holding, bool) {
	q.mu.Lock()
	h, ok := q.held[id]
	q.mu.Unlock()
	return h, ok
}
