package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"sync/atomic"
	"time"

	"github.com/beanspike/beanspike"
	"github.com/beanspike/beanspike/backend/memory"
	"github.com/beanspike/beanspike/chanserv/memmux"
	"github.com/beanspike/beanspike/chanserv/remote"
)

// demo runs an in-memory store behind a remote server on an in-process
// link, and walks a few jobs through their life cycle with a producer, a
// hand-driven client and a worker, printing what happens.
func (a *app) demo(ctx context.Context, args []string) (err error) {
	fs := a.flags("demo", "")
	if err := parse(fs, args, 0, 0); err != nil {
		return err
	}
	out := &stickyWriter{w: a.stdout}
	defer func() {
		if err == nil && out.err != nil {
			err = outputErr(out.err, "")
		}
	}()
	start := time.Now()
	say := func(format string, args ...any) {
		fmt.Fprintf(out, "%6.3fs  %s\n", time.Since(start).Seconds(), fmt.Sprintf(format, args...))
	}

	store, err := memory.New()
	if err != nil {
		return err
	}
	defer store.Close()
	srv, err := remote.NewServer(func() (beanspike.Queue, error) { return store.NewClient() })
	if err != nil {
		return err
	}
	defer srv.Close()
	link := memmux.New()
	if err := srv.Listen(link, remote.DefaultService); err != nil {
		return err
	}
	dial := func() (*remote.Queue, error) { return remote.Dial(ctx, link, remote.DefaultService) }
	producer, err := dial()
	if err != nil {
		return err
	}
	defer producer.Close()
	hand, err := dial()
	if err != nil {
		return err
	}
	defer hand.Close()
	say("memory store served in process; three clients connect to it over an in-memory link")

	const tube = "demo"
	type jobSpec struct {
		body string
		opts []beanspike.PutOption
	}
	specs := []jobSpec{
		{"resize photo 42", []beanspike.PutOption{beanspike.WithPriority(10)}},
		{"send welcome email", []beanspike.PutOption{beanspike.WithPriority(100)}},
		{"charge card 7", []beanspike.PutOption{beanspike.WithPriority(5), beanspike.WithDelay(time.Second)}},
	}
	for _, s := range specs {
		id, err := producer.Put(ctx, tube, []byte(s.body), s.opts...)
		if err != nil {
			return err
		}
		o, _ := beanspike.NewPutOptions(s.opts...)
		if o.Delay > 0 {
			say("put job %d %q (priority %d), delayed %s", id, s.body, o.Priority, o.Delay)
		} else {
			say("put job %d %q (priority %d)", id, s.body, o.Priority)
		}
	}

	j, err := hand.Reserve(ctx, tube)
	if err != nil {
		return err
	}
	say("reserve: job %d %q — the most urgent ready job (the card charge is still delayed)", j.ID, j.Body)
	if err := hand.Release(ctx, j.ID, j.Priority, 500*time.Millisecond); err != nil {
		return err
	}
	st, err := hand.StatsJob(ctx, j.ID)
	if err != nil {
		return err
	}
	say("release job %d with a 500ms delay: it is %s, ready in %s", j.ID, st.State, st.TimeLeft.Round(time.Millisecond))

	j, err = hand.Reserve(ctx, tube)
	if err != nil {
		return err
	}
	say("reserve: job %d %q", j.ID, j.Body)
	if err := hand.Bury(ctx, j.ID, j.Priority, "mail server down"); err != nil {
		return err
	}
	st, err = hand.StatsJob(ctx, j.ID)
	if err != nil {
		return err
	}
	say("bury job %d: it is %s (reason %q); no Reserve will return it", j.ID, st.State, st.BuryReason)
	if err := demoTable(ctx, out, hand, tube); err != nil {
		return err
	}
	n, err := hand.Kick(ctx, tube, 10)
	if err != nil {
		return err
	}
	say("kick %s: %d buried job back to ready", tube, n)

	worker, err := dial()
	if err != nil {
		return err
	}
	defer worker.Close()
	var done atomic.Int32
	w, err := beanspike.NewWorker(worker, beanspike.HandlerFunc(func(ctx context.Context, j *beanspike.Job) error {
		if string(j.Body) == "charge card 7" && j.Reserves == 1 {
			say("worker: job %d %q fails on reservation %d; the worker will retry it", j.ID, j.Body, j.Reserves)
			return errors.New("payment gateway timeout")
		}
		say("worker: job %d %q done on reservation %d; the worker deletes it", j.ID, j.Body, j.Reserves)
		done.Add(1)
		return nil
	}), beanspike.WithTubes(tube), beanspike.WithBackoff(300*time.Millisecond, time.Second),
		beanspike.WithErrorHandler(func(error) {}))
	if err != nil {
		return err
	}
	say("start a worker on %s", tube)
	wctx, stop := context.WithCancel(ctx)
	defer stop()
	ran := make(chan error, 1)
	go func() { ran <- w.Run(wctx) }()

	deadline := time.After(10 * time.Second)
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for done.Load() < int32(len(specs)) {
		select {
		case <-tick.C:
		case <-deadline:
			stop()
			<-ran
			return errors.New("the worker did not finish the jobs in 10s")
		case <-ctx.Done():
			stop()
			<-ran
			return ctx.Err()
		}
	}
	sctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if err := w.Shutdown(sctx); err != nil {
		return err
	}
	if err := <-ran; err != nil && !errors.Is(err, context.Canceled) {
		return err
	}
	say("worker stopped; every job is done")
	return demoTable(ctx, out, hand, tube)
}

// demoTable prints the tube's counts to w.
func demoTable(ctx context.Context, w io.Writer, q beanspike.Queue, tube string) error {
	s, err := q.StatsTube(ctx, tube)
	if err != nil {
		return err
	}
	fmt.Fprintf(w, "         tube %s: %d ready, %d reserved, %d delayed, %d buried, %d put, %d deleted\n",
		s.Name, s.Ready, s.Reserved, s.Delayed, s.Buried, s.TotalJobs, s.Deletes)
	return nil
}

// stickyWriter writes to w until a write fails, and keeps the first
// error. It is safe for concurrent use.
type stickyWriter struct {
	mu  sync.Mutex
	w   io.Writer
	err error
}

func (s *stickyWriter) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.err != nil {
		return 0, s.err
	}
	n, err := s.w.Write(p)
	s.err = err
	return n, err
}
