package remote

import (
	"context"
	"encoding/binary"
	"errors"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/beanspike/beanspike"
	"github.com/beanspike/beanspike/backend/memory"
	"github.com/beanspike/beanspike/chanserv"
	"github.com/beanspike/beanspike/chanserv/memmux"
)

func TestBudgetFirstComeFirstServed(t *testing.T) {
	b := newBudget(10)
	if !b.tryAcquire(8) {
		t.Fatal("tryAcquire(8) of a free budget of 10 failed")
	}
	ctx := context.Background()
	big := make(chan error, 1)
	go func() { big <- b.acquire(ctx, 6) }()
	waitWaiters(t, b, 1)
	// 2 bytes are free, but a waiter came first: a small share waits too.
	if b.tryAcquire(2) {
		t.Fatal("tryAcquire(2) passed over a waiter")
	}
	small := make(chan error, 1)
	go func() { small <- b.acquire(ctx, 2) }()
	waitWaiters(t, b, 2)
	b.release(8)
	for _, c := range []chan error{big, small} {
		if err := <-c; err != nil {
			t.Fatal(err)
		}
	}
	if held, peak := b.usage(); held != 8 || peak != 8 {
		t.Fatalf("held %d, peak %d; want 8 and 8", held, peak)
	}
}

func TestBudgetAcquireCancelled(t *testing.T) {
	b := newBudget(10)
	b.add(10)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- b.acquire(ctx, 4) }()
	next := make(chan error, 1)
	waitWaiters(t, b, 1)
	go func() { next <- b.acquire(context.Background(), 3) }()
	waitWaiters(t, b, 2)
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("acquire with its context cancelled: %v", err)
	}
	b.release(7)
	if err := <-next; err != nil {
		t.Fatal(err)
	}
	if held, _ := b.usage(); held != 6 {
		t.Fatalf("held %d after a cancelled wait, want 6", held)
	}
	if k := b.tryAcquireUnits(5, 2); k != 2 {
		t.Fatalf("tryAcquireUnits(5, 2) with 4 free took %d units, want 2", k)
	}
}

func waitWaiters(t *testing.T, b *budget, n int) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		b.mu.Lock()
		w := len(b.waiters)
		b.mu.Unlock()
		if w == n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d waiters, want %d", w, n)
		}
		time.Sleep(time.Millisecond)
	}
}

// budgetFixture is a server of a memory store on an in-memory network.
type budgetFixture struct {
	store *memory.Queue
	srv   *Server
	mux   *memmux.Network
}

func newBudgetFixture(t *testing.T, opts ...Option) *budgetFixture {
	t.Helper()
	store, err := memory.New()
	if err != nil {
		t.Fatal(err)
	}
	srv, err := NewServer(func() (beanspike.Queue, error) { return store.NewClient() }, opts...)
	if err != nil {
		t.Fatal(err)
	}
	mux := memmux.New()
	if err := srv.Listen(mux, DefaultService); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		srv.Close()
		store.Close()
	})
	return &budgetFixture{store: store, srv: srv, mux: mux}
}

// held returns the reply bytes the server holds, and the most it held.
func (f *budgetFixture) held() (held, peak int64) { return f.srv.budget.usage() }

// deafSession opens a session on the wire and returns a function that
// sends it calls; it reads nothing after the hello, so the server's
// replies wait. close ends it.
func (f *budgetFixture) deafSession(t *testing.T) (call func(op byte, id uint64, args []byte), close func()) {
	t.Helper()
	ctx := testContext(t)
	cl, err := chanserv.NewClient(f.mux)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := cl.Post(ctx, DefaultService, appendSession(nil, chanserv.DefaultMaxFrameSize, ""))
	if err != nil {
		t.Fatal(err)
	}
	// The reply stream, the hello its header: kept, never read (a
	// source dropped is closed).
	src, err := resp.Next(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var once sync.Once
	close = func() {
		once.Do(func() {
			src.Close()
			resp.Close()
			cl.Close()
		})
	}
	t.Cleanup(close)
	call = func(op byte, id uint64, args []byte) {
		msg := binary.AppendUvarint([]byte{op}, id)
		if err := resp.Send(ctx, append(msg, args...)); err != nil && ctx.Err() == nil {
			t.Errorf("send call %d: %v", id, err)
		}
	}
	return call, close
}

func testContext(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func dialBudget(t *testing.T, f *budgetFixture) *Queue {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	q, err := Dial(ctx, f.mux, DefaultService)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { q.Close() })
	return q
}

// eventuallyTrue polls cond until it holds, or fails t after 10 s.
func eventuallyTrue(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: still not so after 10s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// settle waits until the reply bytes the server holds have not changed
// for 200ms, at most 5 s.
func settle(t *testing.T, f *budgetFixture) {
	t.Helper()
	last, since := int64(-1), time.Now()
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		held, _ := f.held()
		if held != last {
			last, since = held, time.Now()
		} else if time.Since(since) >= 200*time.Millisecond {
			return
		}
	}
}

func liveHeap() uint64 {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapAlloc
}

// TestDeafSessionHoldsItsBudget has a session ask to peek at a job of
// 1 MiB 300 times and read no reply: the replies the server holds stay
// within the session's budget, in its count and in the heap; another
// session is served meanwhile; and when the session ends, the budget is
// free again.
func TestDeafSessionHoldsItsBudget(t *testing.T) {
	const (
		perSession = 4 << 20
		all        = 16 << 20
		peeks      = 300
	)
	f := newBudgetFixture(t, WithMaxReplyBytes(perSession, all))
	good := dialBudget(t, f)
	ctx := testContext(t)
	id, err := good.Put(ctx, "big", make([]byte, beanspike.DefaultMaxBodySize))
	if err != nil {
		t.Fatal(err)
	}
	before := liveHeap()

	call, closeDeaf := f.deafSession(t)
	// The session's calls are all sent once the server has read them
	// (the transport then takes more), or has stopped reading them.
	sent := make(chan struct{})
	go func() {
		defer close(sent)
		for i := range uint64(peeks) {
			call(opPeek, i+1, binary.AppendUvarint(nil, uint64(id)))
		}
	}()
	select {
	case <-sent:
	case <-time.After(time.Second):
	}
	settle(t, f)
	if grew := int64(liveHeap()) - int64(before); grew > 3*perSession {
		t.Fatalf("live heap grew by %d MiB with a session that reads nothing; its budget is %d MiB", grew>>20, perSession>>20)
	}
	// The replies written before the transport's window filled are
	// gone; the others wait for the client, holding the whole budget
	// but for less than a reply; the session's later calls are not read.
	perJob := replyCost(beanspike.DefaultMaxBodySize)
	full := perSession / perJob * perJob
	if held, peak := f.held(); held != full || peak > perSession {
		t.Fatalf("server holds %d bytes of replies, at most %d; want %d, never over the session's %d", held, peak, full, perSession)
	}

	// Another session is served meanwhile, its peeks at the big job too.
	for range 3 {
		j, err := good.Peek(ctx, id)
		if err != nil || len(j.Body) != beanspike.DefaultMaxBodySize {
			t.Fatalf("Peek by another session while one is deaf: %v", err)
		}
	}
	small, err := good.Put(ctx, "small", []byte("x"))
	if err != nil {
		t.Fatal(err)
	}
	if j, err := good.Reserve(ctx, "small"); err != nil || j.ID != small {
		t.Fatalf("Reserve by another session while one is deaf: %v", err)
	}
	if err := good.Delete(ctx, small); err != nil {
		t.Fatal(err)
	}

	closeDeaf()
	eventuallyTrue(t, "the deaf session ended", func() bool { return f.srv.Sessions() == 1 })
	if held, _ := f.held(); held != 0 {
		t.Fatalf("server holds %d bytes of replies once the deaf session ended, want 0", held)
	}
	if _, err := good.Peek(ctx, id); err != nil {
		t.Fatal(err)
	}
}

// TestDeafSessionEndedAfterReplyTimeout has a session read no reply: the
// server ends it after the reply timeout, which frees its budget.
func TestDeafSessionEndedAfterReplyTimeout(t *testing.T) {
	f := newBudgetFixture(t, WithReplyTimeout(200*time.Millisecond))
	good := dialBudget(t, f)
	ctx := testContext(t)
	id, err := good.Put(ctx, "big", make([]byte, 1<<20))
	if err != nil {
		t.Fatal(err)
	}
	call, _ := f.deafSession(t)
	for i := range uint64(50) {
		call(opPeek, i+1, binary.AppendUvarint(nil, uint64(id)))
	}
	eventuallyTrue(t, "the deaf session ended", func() bool { return f.srv.Sessions() == 1 })
	eventuallyTrue(t, "its budget freed", func() bool {
		held, _ := f.held()
		return held == 0
	})
	if _, err := good.Peek(ctx, id); err != nil {
		t.Fatalf("Peek by the session that reads: %v", err)
	}
}

// TestReserveHoldsNoJobWaitingForRoom has a session wait in Reserve,
// then fill its budget with replies it does not read: the job put then
// goes to another session's Reserve, instead of waiting with the first
// for room.
func TestReserveHoldsNoJobWaitingForRoom(t *testing.T) {
	f := newBudgetFixture(t, WithMaxReplyBytes(4<<20, 64<<20))
	good := dialBudget(t, f)
	ctx := testContext(t)
	big, err := good.Put(ctx, "big", make([]byte, 1<<20))
	if err != nil {
		t.Fatal(err)
	}
	// A job delayed for long makes the tube, whose waiters its stats
	// count.
	if _, err := good.Put(ctx, "work", []byte("later"), beanspike.WithDelay(time.Hour)); err != nil {
		t.Fatal(err)
	}
	call, _ := f.deafSession(t)
	var args []byte
	args = binary.AppendUvarint(args, 1) // one job
	args = append(args, 0)               // flags: wait
	args = binary.AppendUvarint(args, 1) // one tube
	args = appendString(args, "work")
	call(opReserve, 1, args)
	eventuallyTrue(t, "the deaf session waits in Reserve", func() bool {
		st, err := f.store.StatsTube(ctx, "work")
		return err == nil && st.Waiting == 1
	})
	for i := range uint64(20) {
		call(opPeek, i+2, binary.AppendUvarint(nil, uint64(big)))
	}
	full := (4 << 20) / replyCost(beanspike.DefaultMaxBodySize) * replyCost(beanspike.DefaultMaxBodySize)
	eventuallyTrue(t, "the deaf session's budget is spent", func() bool {
		held, _ := f.held()
		return held == full
	})

	got := make(chan error, 1)
	go func() {
		j, err := good.Reserve(ctx, "work")
		if err == nil && string(j.Body) != "job" {
			err = errors.New("the wrong job")
		}
		got <- err
	}()
	eventuallyTrue(t, "the other session waits in Reserve", func() bool {
		st, err := f.store.StatsTube(ctx, "work")
		return err == nil && st.Waiting == 2
	})
	if _, err := good.Put(ctx, "work", []byte("job")); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-got:
		if err != nil {
			t.Fatalf("Reserve by the session that reads: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the job put went to no session that reads within 10s")
	}
}

// TestSmallBudgetServesAll has a client that reads make many calls whose
// replies carry jobs of 1 MiB, at once, through a session whose budget
// holds two: they wait for each other, and all are served.
func TestSmallBudgetServesAll(t *testing.T) {
	f := newBudgetFixture(t, WithMaxReplyBytes(2*int(replyCost(beanspike.DefaultMaxBodySize)), 64<<20))
	q := dialBudget(t, f)
	ctx := testContext(t)
	const jobs = 12
	body := make([]byte, beanspike.DefaultMaxBodySize)
	ids := make([]beanspike.ID, jobs)
	for i := range ids {
		id, err := q.Put(ctx, "t", body)
		if err != nil {
			t.Fatal(err)
		}
		ids[i] = id
	}
	var wg sync.WaitGroup
	errs := make(chan error, 4*jobs)
	for _, id := range ids {
		for range 4 {
			wg.Go(func() {
				j, err := q.Peek(ctx, id)
				if err == nil && len(j.Body) != len(body) {
					err = errors.New("short body")
				}
				errs <- err
			})
		}
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	// A poll for all of them gets as many as the budget holds; the rest
	// follow in later calls.
	poll, cancel := context.WithCancel(ctx)
	cancel()
	got, err := q.ReserveBatch(poll, jobs, "t")
	if err != nil || len(got) != 2 {
		t.Fatalf("ReserveBatch poll of %d jobs under a budget of 2: %d jobs, %v", jobs, len(got), err)
	}
	n := len(got)
	for n < jobs {
		more, err := q.ReserveBatch(ctx, jobs, "t")
		if err != nil {
			t.Fatal(err)
		}
		n += len(more)
	}
	// A reply's bytes are freed once it is written, which may be just
	// after the client has it.
	eventuallyTrue(t, "the replies' bytes freed", func() bool {
		held, _ := f.held()
		return held == 0
	})
	if _, peak := f.held(); peak > 2*replyCost(beanspike.DefaultMaxBodySize) {
		t.Fatalf("server held up to %d bytes of replies, over the session's budget", peak)
	}
}

func TestReplyBudgetOptions(t *testing.T) {
	newClient := func() (beanspike.Queue, error) { return nil, errors.New("unused") }
	for _, o := range []Option{WithMaxReplyBytes(0, 1<<20), WithMaxReplyBytes(2<<20, 1<<20), WithReplyTimeout(0), WithReplyTimeout(-time.Second)} {
		if _, err := NewServer(newClient, o); !errors.Is(err, ErrInvalidOption) {
			t.Errorf("NewServer with an option out of range: %v, want ErrInvalidOption", err)
		}
	}
	s, err := NewServer(newClient)
	if err != nil {
		t.Fatal(err)
	}
	if s.cfg.maxSessionReplyBytes != DefaultMaxSessionReplyBytes || s.cfg.maxReplyBytes != DefaultMaxReplyBytes || s.cfg.replyTimeout != DefaultReplyTimeout {
		t.Errorf("defaults: %d, %d, %v", s.cfg.maxSessionReplyBytes, s.cfg.maxReplyBytes, s.cfg.replyTimeout)
	}
}
