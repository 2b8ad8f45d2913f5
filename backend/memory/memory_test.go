package memory

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"runtime"
	"sync"
	"testing"
	"time"
	"unsafe"

	"github.com/beanspike/beanspike"
)

func newQueue(t *testing.T, opts ...Option) *Queue {
	t.Helper()
	q, err := New(opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := q.s.checkInvariants(); err != nil {
			t.Error(err)
		}
		q.Close()
	})
	return q
}

func newClientT(t *testing.T, q *Queue) *Queue {
	t.Helper()
	c, err := q.NewClient()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func put(t *testing.T, q *Queue, tube, body string, opts ...beanspike.PutOption) beanspike.ID {
	t.Helper()
	id, err := q.Put(context.Background(), tube, []byte(body), opts...)
	if err != nil {
		t.Fatal(err)
	}
	return id
}

func reserve(t *testing.T, q *Queue, tubes ...string) *beanspike.Job {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	j, err := q.Reserve(ctx, tubes...)
	if err != nil {
		t.Fatal(err)
	}
	return j
}

func poll(q *Queue, tubes ...string) (*beanspike.Job, error) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	return q.Reserve(ctx, tubes...)
}

func wantErr(t *testing.T, err, want error) {
	t.Helper()
	if !errors.Is(err, want) {
		t.Fatalf("got error %v, want %v", err, want)
	}
}

func stats(t *testing.T, q *Queue, id beanspike.ID) *beanspike.JobStats {
	t.Helper()
	st, err := q.StatsJob(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	return st
}

func tubeStats(t *testing.T, q *Queue, tube string) *beanspike.TubeStats {
	t.Helper()
	st, err := q.StatsTube(context.Background(), tube)
	if err != nil {
		t.Fatal(err)
	}
	return st
}

// eventually retries cond until it holds or a few seconds pass.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

func TestJobStructSize(t *testing.T) {
	// The job struct must stay within the 96-byte size class: a store
	// holds millions of them.
	if n := unsafe.Sizeof(job{}); n > 96 {
		t.Errorf("job is %d bytes, want at most 96", n)
	}
}

func TestNewOptions(t *testing.T) {
	for _, n := range []int{0, -1, MaxBodySizeLimit + 1} {
		if _, err := New(WithMaxBodySize(n)); !errors.Is(err, beanspike.ErrInvalidArgument) {
			t.Errorf("WithMaxBodySize(%d): got %v, want ErrInvalidArgument", n, err)
		}
	}
	q := newQueue(t, WithMaxBodySize(4), nil)
	ctx := context.Background()
	if _, err := q.Put(ctx, "t", []byte("12345")); !errors.Is(err, beanspike.ErrJobTooBig) {
		t.Fatalf("5-byte body with limit 4: got %v", err)
	}
	put(t, q, "t", "1234")
	// The limit applies before compression.
	if _, err := q.Put(ctx, "t", bytes.Repeat([]byte{'a'}, 5), beanspike.WithCompression()); !errors.Is(err, beanspike.ErrJobTooBig) {
		t.Fatalf("compressible 5-byte body with limit 4: got %v", err)
	}
}

func TestOrder(t *testing.T) {
	q := newQueue(t)
	a := put(t, q, "a", "a1", beanspike.WithPriority(5))
	b := put(t, q, "b", "b1", beanspike.WithPriority(5))
	a2 := put(t, q, "a", "a2", beanspike.WithPriority(1))
	a3 := put(t, q, "a", "a3", beanspike.WithPriority(5))

	// a's first job is released: it is now the last ready at priority 5
	// in its tube, but keeps the lowest ID across tubes.
	j := reserve(t, q, "a", "b")
	if j.ID != a2 {
		t.Fatalf("first: got %d, want %d", j.ID, a2)
	}
	j = reserve(t, q, "a")
	if j.ID != a {
		t.Fatalf("got %d, want %d", j.ID, a)
	}
	if err := q.Release(context.Background(), a, 5, 0); err != nil {
		t.Fatal(err)
	}
	// Tube a's head at priority 5 is now a3 (ready first); across tubes
	// b (ID 2) beats a3 (ID 4).
	for _, want := range []beanspike.ID{b, a3, a} {
		j := reserve(t, q, "a", "b")
		if j.ID != want {
			t.Fatalf("got %d, want %d", j.ID, want)
		}
	}
	if _, err := poll(q, "a", "b"); !errors.Is(err, context.Canceled) {
		t.Fatalf("empty poll: got %v", err)
	}
}

func TestFIFOWithinPriority(t *testing.T) {
	q := newQueue(t)
	var ids []beanspike.ID
	for i := range 100 {
		ids = append(ids, put(t, q, "t", fmt.Sprint(i), beanspike.WithPriority(uint32(i%3))))
	}
	for p := range 3 {
		for i := p; i < 100; i += 3 {
			j := reserve(t, q, "t")
			if j.ID != ids[i] || j.Priority != uint32(p) {
				t.Fatalf("got job %d pri %d, want %d pri %d", j.ID, j.Priority, ids[i], p)
			}
		}
	}
}

func TestBodyIsCopied(t *testing.T) {
	q := newQueue(t)
	body := []byte("hello")
	id, err := q.Put(context.Background(), "t", body)
	if err != nil {
		t.Fatal(err)
	}
	body[0] = 'J'
	j, err := q.Peek(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	if string(j.Body) != "hello" {
		t.Fatalf("body changed with the caller's slice: %q", j.Body)
	}
	j.Body[0] = 'Y'
	j = reserve(t, q, "t")
	if string(j.Body) != "hello" {
		t.Fatalf("body changed with a returned slice: %q", j.Body)
	}
}

func TestCompression(t *testing.T) {
	q := newQueue(t)
	ctx := context.Background()
	big := bytes.Repeat([]byte("compress me "), 100)
	c := put(t, q, "t", string(big), beanspike.WithCompression())
	r := put(t, q, "t", "tiny", beanspike.WithCompression())
	put(t, q, "t", string(big))

	st := stats(t, q, c)
	if !st.Compressed || st.Size != len(big) || st.StoredSize >= len(big) {
		t.Fatalf("compressed job stats: %+v", st)
	}
	st = stats(t, q, r)
	if st.Compressed || st.Size != 4 || st.StoredSize != 4 {
		t.Fatalf("skipped job stats: %+v", st)
	}
	ts := tubeStats(t, q, "t")
	if ts.Compressed != 1 || ts.CompressionSkipped != 1 {
		t.Fatalf("tube stats: %+v", ts)
	}
	j, err := q.ReserveJob(ctx, c)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(j.Body, big) {
		t.Fatal("compressed body does not round-trip")
	}
}

func TestStates(t *testing.T) {
	q := newQueue(t)
	ctx := context.Background()
	id := put(t, q, "t", "x", beanspike.WithPriority(7), beanspike.WithTTR(3*time.Second))
	st := stats(t, q, id)
	if st.State != beanspike.Ready || st.Priority != 7 || st.TTR != 3*time.Second || st.Tube != "t" {
		t.Fatalf("put: %+v", st)
	}
	j := reserve(t, q, "t")
	if j.Reserves != 1 || j.TTR != 3*time.Second {
		t.Fatalf("reserved job: %+v", j)
	}
	st = stats(t, q, id)
	if st.State != beanspike.Reserved || st.TimeLeft <= 2*time.Second || st.TimeLeft > 3*time.Second {
		t.Fatalf("reserved: %+v", st)
	}
	if err := q.Release(ctx, id, 9, time.Hour); err != nil {
		t.Fatal(err)
	}
	st = stats(t, q, id)
	if st.State != beanspike.Delayed || st.Priority != 9 || st.Delay != time.Hour || st.Releases != 1 || st.TimeLeft <= 59*time.Minute {
		t.Fatalf("released with delay: %+v", st)
	}
	if _, err := q.ReserveJob(ctx, id); err != nil {
		t.Fatal(err)
	}
	if err := q.Bury(ctx, id, 3, "broken"); err != nil {
		t.Fatal(err)
	}
	st = stats(t, q, id)
	if st.State != beanspike.Buried || st.Priority != 3 || st.Buries != 1 || st.BuryReason != "broken" || st.Reserves != 2 || st.TimeLeft != 0 {
		t.Fatalf("buried: %+v", st)
	}
	if err := q.KickJob(ctx, id); err != nil {
		t.Fatal(err)
	}
	wantErr(t, q.KickJob(ctx, id), beanspike.ErrNotFound)
	st = stats(t, q, id)
	if st.State != beanspike.Ready || st.Kicks != 1 {
		t.Fatalf("kicked: %+v", st)
	}
	ts := tubeStats(t, q, "t")
	if ts.Ready != 1 || ts.Urgent != 1 || ts.TotalJobs != 1 {
		t.Fatalf("tube: %+v", ts)
	}
	if err := q.Delete(ctx, id); err != nil {
		t.Fatal(err)
	}
	wantErr(t, q.Delete(ctx, id), beanspike.ErrNotFound)
	ts = tubeStats(t, q, "t")
	if ts.Ready != 0 || ts.Urgent != 0 || ts.Deletes != 1 || ts.TotalJobs != 1 {
		t.Fatalf("tube after delete: %+v", ts)
	}
}

func TestKick(t *testing.T) {
	q := newQueue(t)
	ctx := context.Background()
	var buried []beanspike.ID
	for i := range 3 {
		put(t, q, "t", fmt.Sprint(i))
		j := reserve(t, q, "t")
		if err := q.Bury(ctx, j.ID, 1, ""); err != nil {
			t.Fatal(err)
		}
		buried = append(buried, j.ID)
	}
	d2 := put(t, q, "t", "d2", beanspike.WithDelay(2*time.Hour))
	d1 := put(t, q, "t", "d1", beanspike.WithDelay(time.Hour))

	if n, err := q.Kick(ctx, "t", 2); err != nil || n != 2 {
		t.Fatalf("kick 2: %d, %v", n, err)
	}
	// Oldest buried first.
	for _, id := range buried[:2] {
		if st := stats(t, q, id); st.State != beanspike.Ready {
			t.Fatalf("job %d: %s", id, st.State)
		}
	}
	// Buried jobs remain, so delayed ones are not kicked.
	if n, err := q.Kick(ctx, "t", 5); err != nil || n != 1 {
		t.Fatalf("kick rest of buried: %d, %v", n, err)
	}
	if st := stats(t, q, d1); st.State != beanspike.Delayed {
		t.Fatal("delayed job kicked while buried jobs remained")
	}
	if n, err := q.Kick(ctx, "t", 1); err != nil || n != 1 {
		t.Fatalf("kick delayed: %d, %v", n, err)
	}
	if st := stats(t, q, d1); st.State != beanspike.Ready || st.Kicks != 1 {
		t.Fatalf("soonest delayed job not kicked first: %+v", st)
	}
	if st := stats(t, q, d2); st.State != beanspike.Delayed {
		t.Fatal("later delayed job kicked")
	}
	if n, err := q.Kick(ctx, "nope", 1); err != nil || n != 0 {
		t.Fatalf("kick unknown tube: %d, %v", n, err)
	}
	if n, err := q.Kick(ctx, "t", 0); err != nil || n != 0 {
		t.Fatalf("kick 0: %d, %v", n, err)
	}
}

func TestOwnership(t *testing.T) {
	a := newQueue(t)
	b := newClientT(t, a)
	ctx := context.Background()
	id := put(t, a, "t", "x")
	j := reserve(t, a, "t")
	wantErr(t, b.Delete(ctx, j.ID), beanspike.ErrNotReserved)
	wantErr(t, b.Release(ctx, j.ID, 1, 0), beanspike.ErrNotReserved)
	wantErr(t, b.Bury(ctx, j.ID, 1, ""), beanspike.ErrNotReserved)
	wantErr(t, b.Touch(ctx, j.ID), beanspike.ErrNotReserved)
	_, err := b.ReserveJob(ctx, j.ID)
	wantErr(t, err, beanspike.ErrNotFound)
	_, err = a.ReserveJob(ctx, j.ID)
	wantErr(t, err, beanspike.ErrNotFound)
	if err := a.Release(ctx, id, 1, 0); err != nil {
		t.Fatal(err)
	}
	// Not reserved at all.
	wantErr(t, a.Release(ctx, id, 1, 0), beanspike.ErrNotReserved)
	wantErr(t, a.Touch(ctx, id), beanspike.ErrNotReserved)
	// Unknown and invalid IDs.
	wantErr(t, a.Touch(ctx, 999), beanspike.ErrNotFound)
	wantErr(t, a.Touch(ctx, 0), beanspike.ErrInvalidArgument)
	_, err = a.Peek(ctx, 0)
	wantErr(t, err, beanspike.ErrInvalidArgument)
	// Anyone may delete a job that is not reserved.
	if err := b.Delete(ctx, id); err != nil {
		t.Fatal(err)
	}
}

// snapshotAll describes every job and tube, to show that rejected calls
// change nothing.
func snapshotAll(q *Queue) string {
	s := q.s
	s.mu.Lock()
	defer s.mu.Unlock()
	var b bytes.Buffer
	for id := uint64(1); id <= s.lastID; id++ {
		if j := s.jobs.get(id); j != nil {
			fmt.Fprintf(&b, "%d %s %s %d %d %d %d %d %p %v\n", id, j.tube.name, j.state, j.pri, j.key, j.reserves, j.delay, j.ttr, j.owner, j.ext)
		}
	}
	for name, t := range s.tubes {
		fmt.Fprintf(&b, "%s %v %d %d %d %d %d %d %d %d\n", name, t.listed, t.total, t.deletes, t.pauses, t.pause, t.pauseEnd, t.compressed, t.skipped, t.nwait)
	}
	return b.String()
}

func TestRejectedCallsChangeNothing(t *testing.T) {
	a := newQueue(t)
	b := newClientT(t, a)
	ctx := context.Background()
	put(t, a, "t", "ready")
	r := put(t, a, "t", "reserved", beanspike.WithPriority(0))
	if j := reserve(t, a, "t"); j.ID != r {
		t.Fatal("wrong job")
	}
	put(t, a, "t", "delayed", beanspike.WithDelay(time.Hour))
	before := snapshotAll(a)
	long := string(bytes.Repeat([]byte{'x'}, beanspike.MaxTubeNameLen+1))
	calls := []struct {
		name string
		err  error
		want error
	}{}
	add := func(name string, err, want error) {
		calls = append(calls, struct {
			name string
			err  error
			want error
		}{name, err, want})
	}
	_, err := a.Put(ctx, "-bad", nil)
	add("put bad tube", err, beanspike.ErrInvalidTube)
	_, err = a.Put(ctx, long, nil)
	add("put long tube", err, beanspike.ErrInvalidTube)
	_, err = a.Put(ctx, "t", nil, beanspike.WithDelay(-1))
	add("put negative delay", err, beanspike.ErrInvalidArgument)
	_, err = a.Put(ctx, "t", nil, beanspike.WithTTR(-1))
	add("put negative ttr", err, beanspike.ErrInvalidArgument)
	_, err = a.Put(ctx, "t", make([]byte, beanspike.DefaultMaxBodySize+1))
	add("put too big", err, beanspike.ErrJobTooBig)
	_, err = a.PutBatch(ctx, []beanspike.PutRequest{{Tube: "t"}, {Tube: "t", Options: []beanspike.PutOption{beanspike.WithDelay(-1)}}})
	add("put batch", err, beanspike.ErrInvalidArgument)
	_, err = a.Reserve(ctx, "t", "bad tube")
	add("reserve bad tube", err, beanspike.ErrInvalidTube)
	_, err = a.ReserveBatch(ctx, 0, "t")
	add("reserve batch 0", err, beanspike.ErrInvalidArgument)
	add("release negative delay", a.Release(ctx, r, 1, -time.Second), beanspike.ErrInvalidArgument)
	add("release by other", b.Release(ctx, r, 1, 0), beanspike.ErrNotReserved)
	add("delete by other", b.Delete(ctx, r), beanspike.ErrNotReserved)
	add("bury by other", b.Bury(ctx, r, 1, "x"), beanspike.ErrNotReserved)
	add("touch by other", b.Touch(ctx, r), beanspike.ErrNotReserved)
	add("delete 0", a.Delete(ctx, 0), beanspike.ErrInvalidArgument)
	add("delete unknown", a.Delete(ctx, 100), beanspike.ErrNotFound)
	_, err = a.Kick(ctx, "t", -1)
	add("kick negative", err, beanspike.ErrInvalidArgument)
	_, err = a.Kick(ctx, "", 1)
	add("kick bad tube", err, beanspike.ErrInvalidTube)
	add("kick reserved", a.KickJob(ctx, r), beanspike.ErrNotFound)
	add("pause negative", a.PauseTube(ctx, "t", -1), beanspike.ErrInvalidArgument)
	add("pause bad tube", a.PauseTube(ctx, "(ok)-but space", time.Second), beanspike.ErrInvalidTube)
	_, err = a.DeleteTube(ctx, "nope")
	add("delete unknown tube", err, beanspike.ErrNotFound)
	_, err = a.StatsTube(ctx, "nope")
	add("stats unknown tube", err, beanspike.ErrNotFound)
	_, err = a.PeekBuried(ctx, "t")
	add("peek no buried", err, beanspike.ErrNotFound)
	_, err = a.ReserveJob(ctx, r)
	add("reserve-job reserved", err, beanspike.ErrNotFound)
	done, cancel := context.WithCancel(ctx)
	cancel()
	_, err = a.Put(done, "t", nil)
	add("put with done ctx", err, context.Canceled)
	add("delete with done ctx", a.Delete(done, r), context.Canceled)
	for _, c := range calls {
		if !errors.Is(c.err, c.want) {
			t.Errorf("%s: got %v, want %v", c.name, c.err, c.want)
		}
	}
	if err == context.Canceled && calls[len(calls)-1].err != context.Canceled {
		t.Error("context error is wrapped")
	}
	if after := snapshotAll(a); after != before {
		t.Errorf("rejected calls changed the store:\nbefore:\n%s\nafter:\n%s", before, after)
	}
}

func TestDelayAndLapse(t *testing.T) {
	q := newQueue(t)
	b := newClientT(t, q)
	ctx := context.Background()
	const delay, ttr = 30 * time.Millisecond, time.Second
	start := time.Now()
	id := put(t, q, "t", "x", beanspike.WithDelay(delay), beanspike.WithTTR(ttr))
	j, err := poll(q, "t")
	if err == nil {
		// Reserved by the poll: only right if the delay had passed.
		if el := time.Since(start); el < delay {
			t.Fatalf("delayed job reserved %s after its Put, before its delay of %s", el, delay)
		}
	} else {
		j = reserve(t, q, "t")
	}
	if el := time.Since(start); j.ID != id || el < delay {
		t.Fatalf("got job %d after %s", j.ID, el)
	}
	// The reservation, made after the delay, lapses after the TTR;
	// another client blocked on the tube gets the job.
	j2 := reserve(t, b, "t")
	if el := time.Since(start); j2.ID != id || el < delay+ttr {
		t.Fatalf("lapse: got job %d %s after its Put, before its delay and TTR of %s", j2.ID, el, delay+ttr)
	}
	if j2.Reserves != 2 {
		t.Fatalf("reserves %d, want 2", j2.Reserves)
	}
	st := stats(t, q, id)
	if st.Timeouts != 1 || st.State != beanspike.Reserved {
		t.Fatalf("stats after lapse: %+v", st)
	}
	wantErr(t, q.Touch(ctx, id), beanspike.ErrNotReserved)
	wantErr(t, q.Delete(ctx, id), beanspike.ErrNotReserved)
	if err := b.Delete(ctx, id); err != nil {
		t.Fatal(err)
	}
}

func TestTouch(t *testing.T) {
	q := newQueue(t)
	ctx := context.Background()
	id := put(t, q, "t", "x", beanspike.WithTTR(time.Second))
	reserve(t, q, "t")
	var touched time.Time
	for range 3 {
		time.Sleep(400 * time.Millisecond)
		touched = time.Now()
		if err := q.Touch(ctx, id); err != nil {
			t.Fatal(err)
		}
	}
	// The last Touch made the reservation lapse a TTR after it.
	st := stats(t, q, id)
	if least := time.Second - time.Since(touched); st.State != beanspike.Reserved || st.Timeouts != 0 || st.TimeLeft < least {
		t.Fatalf("touched job: %+v, want reserved with at least %s left", st, least)
	}
}

// TestAdvanceExact drives the timed events with explicit times, without
// waiting for the timer.
func TestAdvanceExact(t *testing.T) {
	q := newQueue(t)
	s := q.s
	o, _ := beanspike.NewPutOptions(beanspike.WithDelay(10), beanspike.WithTTR(time.Hour))
	s.mu.Lock()
	defer s.mu.Unlock()
	j1 := s.jobs.get(uint64(s.put("a", stored{body: "1"}, &o, 1000)))
	o.Delay = 5
	j2 := s.jobs.get(uint64(s.put("b", stored{body: "2"}, &o, 1000)))
	if s.events[0] != j2.tube || s.events[0].next != 1005 {
		t.Fatalf("first event: %q at %d", s.events[0].name, s.events[0].next)
	}
	s.advance(1004)
	if j2.state != beanspike.Delayed {
		t.Fatal("job ready early")
	}
	s.advance(1005)
	if j2.state != beanspike.Ready || j1.state != beanspike.Delayed || len(s.events) != 1 {
		t.Fatalf("at 1005: %s %s, %d events", j2.state, j1.state, len(s.events))
	}
	s.take(j2)
	s.toReserved(j2, q, 1006)
	s.advance(1010)
	if j1.state != beanspike.Ready || s.events[0] != j2.tube || s.events[0].next != 1006+int64(time.Hour) {
		t.Fatalf("at 1010: %s, next %d", j1.state, s.events[0].next)
	}
	s.advance(1006 + int64(time.Hour))
	if j2.state != beanspike.Ready || j2.ext.timeouts != 1 || len(s.events) != 0 || len(q.held) != 0 {
		t.Fatalf("lapse: %s, %d events, %d held", j2.state, len(s.events), len(q.held))
	}
	// A pause ends exactly on time.
	tb := s.listedTube("b")
	tb.pauseEnd = 2000
	s.fixEvents(tb)
	s.advance(1999)
	if !tb.paused() {
		t.Fatal("pause ended early")
	}
	s.advance(2000)
	if tb.paused() || len(s.events) != 0 {
		t.Fatal("pause did not end")
	}
}

func TestTimerRearms(t *testing.T) {
	q := newQueue(t)
	ctx := context.Background()
	// Jobs due in decreasing order: each Put must re-arm the timer for an
	// earlier time. The sooner a job is due, the more urgent it is, so the
	// order holds even when a slow reserver finds several jobs ready.
	start := time.Now()
	var ids []beanspike.ID
	for i := 5; i >= 1; i-- {
		ids = append(ids, put(t, q, fmt.Sprintf("t%d", i), "x",
			beanspike.WithDelay(time.Duration(i)*20*time.Millisecond), beanspike.WithPriority(uint32(i))))
	}
	w := newClientT(t, q)
	type got struct {
		id beanspike.ID
		at time.Duration
	}
	done := make(chan []got)
	go func() {
		var gs []got
		for range 5 {
			j, err := w.Reserve(ctx, "t1", "t2", "t3", "t4", "t5")
			if err != nil {
				t.Error(err)
				break
			}
			gs = append(gs, got{j.ID, time.Since(start)})
		}
		done <- gs
	}()
	select {
	case gs := <-done:
		if len(gs) != 5 {
			t.Fatalf("got %d jobs", len(gs))
		}
		for i, g := range gs {
			if g.id != ids[len(ids)-1-i] {
				t.Fatalf("order %v, want reverse of %v", gs, ids)
			}
			if due := time.Duration(i+1) * 20 * time.Millisecond; g.at < due {
				t.Fatalf("job %d reserved after %s, before it was due at %s", g.id, g.at, due)
			}
		}
	case <-time.After(5 * time.Second):
		t.Fatal("timer did not fire")
	}
}

func TestPause(t *testing.T) {
	q := newQueue(t)
	ctx := context.Background()
	const pause = 50 * time.Millisecond
	put(t, q, "t", "x")
	start := time.Now()
	if err := q.PauseTube(ctx, "t", pause); err != nil {
		t.Fatal(err)
	}
	if j, err := poll(q, "t"); err == nil {
		// Reserved by the poll: only right if the pause had ended.
		if el := time.Since(start); el < pause {
			t.Fatalf("reserved %s into a %s pause", el, pause)
		}
		if err := q.Release(ctx, j.ID, j.Priority, 0); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := q.PeekReady(ctx, "t"); err != nil {
		t.Fatalf("peek-ready ignores a pause: %v", err)
	}
	ts := tubeStats(t, q, "t")
	if ts.Pauses != 1 || ts.Pause != pause || (ts.PauseLeft <= 0 && time.Since(start) < pause) {
		t.Fatalf("paused tube: %+v", ts)
	}
	reserve(t, q, "t")
	if el := time.Since(start); el < pause {
		t.Fatalf("reserved %s into a %s pause", el, pause)
	}
	ts = tubeStats(t, q, "t")
	if ts.PauseLeft != 0 || ts.Pause != pause {
		t.Fatalf("after pause: %+v", ts)
	}

	// PauseTube(0) ends a pause and wakes the waiters.
	if err := q.PauseTube(ctx, "u", time.Hour); err != nil {
		t.Fatal(err)
	}
	put(t, q, "u", "y")
	got := make(chan error, 1)
	go func() {
		_, err := q.Reserve(ctx, "u")
		got <- err
	}()
	eventually(t, "waiter", func() bool { return tubeStats(t, q, "u").Waiting == 1 })
	if err := q.PauseTube(ctx, "u", 0); err != nil {
		t.Fatal(err)
	}
	if err := <-got; err != nil {
		t.Fatal(err)
	}
}

func TestWaitersFIFO(t *testing.T) {
	q := newQueue(t)
	ctx := context.Background()
	const n = 5
	results := make([]chan beanspike.ID, n)
	for i := range n {
		results[i] = make(chan beanspike.ID, 1)
		c := newClientT(t, q)
		go func() {
			j, err := c.Reserve(ctx, "t", fmt.Sprintf("own%d", i))
			if err != nil {
				t.Error(err)
				results[i] <- 0
				return
			}
			results[i] <- j.ID
		}()
		eventually(t, "waiter", func() bool { return waiting(q, "t") == i+1 })
	}
	for i := range n {
		id := put(t, q, "t", fmt.Sprint(i))
		if got := <-results[i]; got != id {
			t.Fatalf("waiter %d got job %d, want %d", i, got, id)
		}
	}
	// Served waiters left every tube they watched.
	q.s.mu.Lock()
	defer q.s.mu.Unlock()
	for name, tb := range q.s.tubes {
		if tb.nwait != 0 {
			t.Errorf("tube %q still has %d waiters", name, tb.nwait)
		}
	}
	if len(q.s.tubes) != 1 {
		t.Errorf("unlisted tubes kept: %d tubes", len(q.s.tubes))
	}
}

// waiting reads a tube's wait count, listed or not.
func waiting(q *Queue, name string) int {
	q.s.mu.Lock()
	defer q.s.mu.Unlock()
	if t := q.s.tubes[name]; t != nil {
		return t.nwait
	}
	return 0
}

func TestWaiterCancelLeavesAllTubes(t *testing.T) {
	q := newQueue(t)
	put(t, q, "a", "x")
	reserve(t, q, "a") // a exists, with no ready job
	ctx, cancel := context.WithCancel(context.Background())
	got := make(chan error, 1)
	go func() {
		_, err := q.Reserve(ctx, "a", "b", "c")
		got <- err
	}()
	eventually(t, "waiter", func() bool { return waiting(q, "a") == 1 && waiting(q, "c") == 1 })
	if ts := tubeStats(t, q, "a"); ts.Waiting != 1 {
		t.Fatalf("Waiting %d, want 1", ts.Waiting)
	}
	cancel()
	if err := <-got; err != context.Canceled {
		t.Fatalf("got %v, want context.Canceled unwrapped", err)
	}
	for _, name := range []string{"a", "b", "c"} {
		if n := waiting(q, name); n != 0 {
			t.Fatalf("tube %s: %d waiters after cancel", name, n)
		}
	}
	if tubes, _ := q.Tubes(context.Background()); len(tubes) != 1 || tubes[0] != "a" {
		t.Fatalf("tubes %v, want [a]: waiting must not create tubes", tubes)
	}
}

// TestHandoffCancelRace puts jobs while reservers are cancelled at random
// moments: every job must end up either returned by a Reserve (and then
// deletable by that client) or still ready, never lost.
func TestHandoffCancelRace(t *testing.T) {
	q := newQueue(t)
	const jobs = 2000
	const reservers = 8
	var mu sync.Mutex
	got := map[beanspike.ID]bool{}
	var wg sync.WaitGroup
	stop := make(chan struct{})
	for i := range reservers {
		c := newClientT(t, q)
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(i), 1))
			for {
				select {
				case <-stop:
					return
				default:
				}
				ctx, cancel := context.WithTimeout(context.Background(), time.Duration(rng.IntN(200))*time.Microsecond)
				tubes := []string{"a", "b"}[:1+rng.IntN(2)]
				j, err := c.Reserve(ctx, tubes...)
				cancel()
				if err != nil {
					if err != context.DeadlineExceeded {
						t.Error(err)
						return
					}
					continue
				}
				if err := c.Delete(context.Background(), j.ID); err != nil {
					t.Errorf("delete of a reserved job: %v", err)
					return
				}
				mu.Lock()
				if got[j.ID] {
					t.Errorf("job %d reserved twice", j.ID)
				}
				got[j.ID] = true
				mu.Unlock()
			}
		}()
	}
	ctx := context.Background()
	for i := range jobs {
		put(t, q, []string{"a", "b"}[i%2], "x")
		if i%100 == 0 {
			if err := q.s.checkInvariants(); err != nil {
				t.Fatal(err)
			}
		}
	}
	eventually(t, "all jobs reserved", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(got) == jobs
	})
	close(stop)
	wg.Wait()
	for _, tube := range []string{"a", "b"} {
		ts := tubeStats(t, q, tube)
		if ts.Ready+ts.Reserved != 0 || ts.Deletes != jobs/2 {
			t.Fatalf("tube %s: %+v", tube, ts)
		}
	}
	if _, err := q.Peek(ctx, 1); !errors.Is(err, beanspike.ErrNotFound) {
		t.Fatal(err)
	}
}

func TestClose(t *testing.T) {
	a := newQueue(t)
	b := newClientT(t, a)
	ctx := context.Background()
	id := put(t, a, "t", "x")
	reserve(t, b, "t")
	blocked := make(chan error, 2)
	for range 2 {
		go func() {
			_, err := b.Reserve(ctx, "other", "t")
			blocked <- err
		}()
	}
	eventually(t, "waiters", func() bool { return waiting(a, "t") == 2 })
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if err := <-blocked; !errors.Is(err, beanspike.ErrClosed) {
			t.Fatalf("blocked reserve: %v", err)
		}
	}
	if n := waiting(a, "other"); n != 0 {
		t.Fatal("closed client's waiters left behind")
	}
	st := stats(t, a, id)
	if st.State != beanspike.Ready || st.Timeouts != 0 || st.Releases != 0 {
		t.Fatalf("job after holder closed: %+v", st)
	}
	if err := b.Close(); err != nil {
		t.Fatal("second Close:", err)
	}
	_, err := b.Put(ctx, "t", nil)
	wantErr(t, err, beanspike.ErrClosed)
	_, err = b.Reserve(ctx, "t")
	wantErr(t, err, beanspike.ErrClosed)
	wantErr(t, b.Delete(ctx, id), beanspike.ErrClosed)
	_, err = b.Tubes(ctx)
	wantErr(t, err, beanspike.ErrClosed)
	_, err = b.NewClient()
	wantErr(t, err, beanspike.ErrClosed)
	// The other client still works.
	if j := reserve(t, a, "t"); j.ID != id {
		t.Fatal("wrong job")
	}
}

func TestCloseWakesOnlyOwnWaiters(t *testing.T) {
	a := newQueue(t)
	b := newClientT(t, a)
	got := make(chan error, 1)
	go func() {
		_, err := a.Reserve(context.Background(), "t")
		got <- err
	}()
	eventually(t, "waiter", func() bool { return waiting(a, "t") == 1 })
	b.Close()
	select {
	case err := <-got:
		t.Fatalf("other client's reserve returned %v", err)
	case <-time.After(20 * time.Millisecond):
	}
	put(t, a, "t", "x")
	if err := <-got; err != nil {
		t.Fatal(err)
	}
}

func TestDeleteTube(t *testing.T) {
	a := newQueue(t)
	b := newClientT(t, a)
	ctx := context.Background()
	r := put(t, a, "t", "r")
	reserve(t, b, "t")
	put(t, a, "t", "ready")
	put(t, a, "t", "delayed", beanspike.WithDelay(time.Hour))
	put(t, a, "t", "buried")
	j := reserve(t, a, "t")
	if err := a.Bury(ctx, j.ID, 1, ""); err != nil {
		t.Fatal(err)
	}
	if err := a.PauseTube(ctx, "t", time.Hour); err != nil {
		t.Fatal(err)
	}
	keep := put(t, a, "u", "other tube")
	n, err := a.DeleteTube(ctx, "t")
	if err != nil || n != 4 {
		t.Fatalf("DeleteTube: %d, %v", n, err)
	}
	wantErr(t, b.Delete(ctx, r), beanspike.ErrNotFound)
	wantErr(t, b.Touch(ctx, r), beanspike.ErrNotFound)
	_, err = a.StatsTube(ctx, "t")
	wantErr(t, err, beanspike.ErrNotFound)
	if tubes, _ := a.Tubes(ctx); len(tubes) != 1 || tubes[0] != "u" {
		t.Fatalf("tubes %v", tubes)
	}
	if _, err := a.Peek(ctx, keep); err != nil {
		t.Fatal(err)
	}
	_, err = a.DeleteTube(ctx, "t")
	wantErr(t, err, beanspike.ErrNotFound)
	// The tube starts afresh: no pause, no counters.
	put(t, a, "t", "new")
	ts := tubeStats(t, a, "t")
	if ts.TotalJobs != 1 || ts.Pauses != 0 || ts.PauseLeft != 0 || ts.Ready != 1 {
		t.Fatalf("recreated tube: %+v", ts)
	}
	reserve(t, a, "t")
}

func TestDeleteTubeKeepsWaiters(t *testing.T) {
	q := newQueue(t)
	ctx := context.Background()
	put(t, q, "t", "x")
	reserve(t, q, "t")
	got := make(chan *beanspike.Job, 1)
	go func() {
		j, err := q.Reserve(ctx, "t")
		if err != nil {
			t.Error(err)
		}
		got <- j
	}()
	eventually(t, "waiter", func() bool { return waiting(q, "t") == 1 })
	if _, err := q.DeleteTube(ctx, "t"); err != nil {
		t.Fatal(err)
	}
	if err := q.s.checkInvariants(); err != nil {
		t.Fatal(err)
	}
	id := put(t, q, "t", "y")
	if j := <-got; j == nil || j.ID != id {
		t.Fatalf("waiter got %v, want job %d", j, id)
	}
}

func TestReserveBatch(t *testing.T) {
	q := newQueue(t)
	ctx := context.Background()
	got := make(chan []*beanspike.Job, 1)
	go func() {
		js, err := q.ReserveBatch(ctx, 3, "t")
		if err != nil {
			t.Error(err)
		}
		got <- js
	}()
	eventually(t, "waiter", func() bool { return waiting(q, "t") == 1 })
	ids, err := q.PutBatch(ctx, []beanspike.PutRequest{
		{Tube: "t", Body: []byte("1"), Options: []beanspike.PutOption{beanspike.WithPriority(3)}},
		{Tube: "t", Body: []byte("2"), Options: []beanspike.PutOption{beanspike.WithPriority(1)}},
		{Tube: "t", Body: []byte("3"), Options: []beanspike.PutOption{beanspike.WithPriority(2)}},
		{Tube: "t", Body: []byte("4"), Options: []beanspike.PutOption{beanspike.WithPriority(4)}},
	})
	if err != nil {
		t.Fatal(err)
	}
	js := <-got
	if len(js) != 3 || js[0].ID != ids[1] || js[1].ID != ids[2] || js[2].ID != ids[0] {
		t.Fatalf("batch %v, ids %v", js, ids)
	}
	js, err = q.ReserveBatch(ctx, 10, "t")
	if err != nil || len(js) != 1 || js[0].ID != ids[3] {
		t.Fatalf("second batch %v, %v", js, err)
	}
}

func TestReserveDoneContextPolls(t *testing.T) {
	q := newQueue(t)
	id := put(t, q, "t", "x")
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	j, err := q.Reserve(ctx, "t")
	if err != nil || j.ID != id {
		t.Fatalf("poll with a ready job: %v, %v", j, err)
	}
	_, err = q.Reserve(ctx, "t")
	if err != context.Canceled {
		t.Fatalf("empty poll: %v", err)
	}
}

func TestNoGoroutineLeak(t *testing.T) {
	before := runtime.NumGoroutine()
	q, err := New()
	if err != nil {
		t.Fatal(err)
	}
	c, err := q.NewClient()
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for i := range 50 {
		if _, err := q.Put(ctx, "t", []byte("x"), beanspike.WithDelay(time.Duration(i)*time.Millisecond)); err != nil {
			t.Fatal(err)
		}
	}
	blocked := make(chan error, 1)
	go func() {
		for {
			j, err := c.Reserve(ctx, "t")
			if err != nil {
				blocked <- err
				return
			}
			c.Touch(ctx, j.ID)
		}
	}()
	time.Sleep(70 * time.Millisecond)
	q.Close()
	c.Close()
	if err := <-blocked; !errors.Is(err, beanspike.ErrClosed) {
		t.Fatal(err)
	}
	q.s.mu.Lock()
	stopped := q.s.closed && q.s.timer != nil && q.s.armedAt == never
	q.s.mu.Unlock()
	if !stopped {
		t.Fatal("store not stopped after its last client closed")
	}
	eventually(t, "goroutines to exit", func() bool { return runtime.NumGoroutine() <= before })
}
