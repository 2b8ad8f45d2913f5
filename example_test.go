package beanspike_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"time"

	"github.com/beanspike/beanspike"
	"github.com/beanspike/beanspike/backend/memory"
)

// A producer puts a job; a consumer reserves it, does the work and
// deletes it.
func Example() {
	ctx := context.Background()
	q, err := memory.New()
	if err != nil {
		log.Fatal(err)
	}
	defer q.Close()

	id, err := q.Put(ctx, "emails", []byte("welcome alice@example.com"),
		beanspike.WithPriority(10), beanspike.WithTTR(30*time.Second))
	if err != nil {
		log.Fatal(err)
	}

	job, err := q.Reserve(ctx, "emails")
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("reserved %q (same job: %v, priority %d, TTR %s)\n", job.Body, job.ID == id, job.Priority, job.TTR)
	// ... send the email ...
	if err := q.Delete(ctx, job.ID); err != nil {
		log.Fatal(err)
	}
	_, err = q.StatsJob(ctx, id)
	fmt.Println("after delete:", errors.Is(err, beanspike.ErrNotFound))
	// Output:
	// reserved "welcome alice@example.com" (same job: true, priority 10, TTR 30s)
	// after delete: true
}

// A delayed job stays out of reach until its delay has passed; Reserve
// waits for it.
func ExampleWithDelay() {
	ctx := context.Background()
	q, err := memory.New()
	if err != nil {
		log.Fatal(err)
	}
	defer q.Close()

	const delay = 200 * time.Millisecond
	start := time.Now()
	id, err := q.Put(ctx, beanspike.DefaultTube, []byte("reminder"), beanspike.WithDelay(delay))
	if err != nil {
		log.Fatal(err)
	}
	st, err := q.StatsJob(ctx, id)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("state:", st.State)

	// A done context makes Reserve a poll: the job is not ready yet.
	poll, cancel := context.WithCancel(ctx)
	cancel()
	_, err = q.Reserve(poll)
	fmt.Println("poll:", err)

	job, err := q.Reserve(ctx) // blocks until the delay has passed
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("reserved %q after the delay: %v\n", job.Body, time.Since(start) >= delay)
	// Output:
	// state: delayed
	// poll: context canceled
	// reserved "reminder" after the delay: true
}

// A job that fails can be released to try again later, or buried to wait
// for a person; Kick brings buried jobs back.
func ExampleQueue_buryAndKick() {
	ctx := context.Background()
	q, err := memory.New()
	if err != nil {
		log.Fatal(err)
	}
	defer q.Close()

	id, err := q.Put(ctx, "reports", []byte("monthly"))
	if err != nil {
		log.Fatal(err)
	}

	// First attempt fails: release it, to be ready again at once.
	job, err := q.Reserve(ctx, "reports")
	if err != nil {
		log.Fatal(err)
	}
	if err := q.Release(ctx, job.ID, job.Priority, 0); err != nil {
		log.Fatal(err)
	}

	// Second attempt fails for good: bury it with the reason.
	job, err = q.Reserve(ctx, "reports")
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("attempt:", job.Reserves)
	if err := q.Bury(ctx, job.ID, job.Priority, "template missing"); err != nil {
		log.Fatal(err)
	}
	st, err := q.StatsJob(ctx, id)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("%s: %q\n", st.State, st.BuryReason)

	// Once the template is fixed, kick the tube's buried jobs.
	n, err := q.Kick(ctx, "reports", 10)
	if err != nil {
		log.Fatal(err)
	}
	st, err = q.StatsJob(ctx, id)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("kicked %d, now %s (releases %d, buries %d, kicks %d)\n", n, st.State, st.Releases, st.Buries, st.Kicks)
	// Output:
	// attempt: 2
	// buried: "template missing"
	// kicked 1, now ready (releases 1, buries 1, kicks 1)
}

// A Worker runs a handler on every job of its tubes, deleting the jobs
// that succeed, until it is shut down.
func ExampleWorker() {
	ctx := context.Background()
	q, err := memory.New()
	if err != nil {
		log.Fatal(err)
	}
	defer q.Close()

	for i, name := range []string{"carol", "alice", "bob"} {
		_, err := q.Put(ctx, "thumbnails", []byte(name+".png"), beanspike.WithPriority(uint32(10+i)))
		if err != nil {
			log.Fatal(err)
		}
	}

	done := make(chan struct{})
	handled := 0
	w, err := beanspike.NewWorker(q, beanspike.HandlerFunc(func(ctx context.Context, job *beanspike.Job) error {
		fmt.Println("resizing", string(job.Body))
		if handled++; handled == 3 {
			close(done)
		}
		return nil // done: the worker deletes the job
	}), beanspike.WithTubes("thumbnails"))
	if err != nil {
		log.Fatal(err)
	}

	ran := make(chan error, 1)
	go func() { ran <- w.Run(ctx) }()
	<-done

	// Stop reserving and wait for running handlers.
	shutdownCtx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := w.Shutdown(shutdownCtx); err != nil {
		log.Fatal(err)
	}
	fmt.Println("Run returned:", <-ran)

	st, err := q.StatsTube(ctx, "thumbnails")
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("jobs left:", st.Ready+st.Reserved+st.Delayed+st.Buried)
	// Output:
	// resizing carol.png
	// resizing alice.png
	// resizing bob.png
	// Run returned: <nil>
	// jobs left: 0
}

// A handler that fails is retried with a growing delay; after the last
// attempt, or at once for errors made with BuryJob, the job is buried
// with the error's text as the reason.
func ExampleBuryJob() {
	ctx := context.Background()
	q, err := memory.New()
	if err != nil {
		log.Fatal(err)
	}
	defer q.Close()

	flaky, err := q.Put(ctx, "orders", []byte(`{"order": 1}`))
	if err != nil {
		log.Fatal(err)
	}
	broken, err := q.Put(ctx, "orders", []byte(`{"ord`))
	if err != nil {
		log.Fatal(err)
	}

	w, err := beanspike.NewWorker(q, beanspike.HandlerFunc(func(ctx context.Context, job *beanspike.Job) error {
		if job.ID == broken {
			return beanspike.BuryJob(errors.New("truncated JSON"))
		}
		return fmt.Errorf("payment service down (attempt %d)", job.Reserves)
	}),
		beanspike.WithTubes("orders"),
		beanspike.WithMaxAttempts(3),
		beanspike.WithBackoff(time.Millisecond, 10*time.Millisecond),
	)
	if err != nil {
		log.Fatal(err)
	}
	ran := make(chan error, 1)
	go func() { ran <- w.Run(ctx) }()

	// Wait until both jobs are buried.
	for {
		st, err := q.StatsTube(ctx, "orders")
		if err != nil {
			log.Fatal(err)
		}
		if st.Buried == 2 {
			break
		}
		time.Sleep(time.Millisecond)
	}
	if err := w.Shutdown(ctx); err != nil {
		log.Fatal(err)
	}
	<-ran

	for _, id := range []beanspike.ID{flaky, broken} {
		st, err := q.StatsJob(ctx, id)
		if err != nil {
			log.Fatal(err)
		}
		fmt.Printf("%s after %d attempts: %s\n", st.State, st.Reserves, st.BuryReason)
	}
	// Output:
	// buried after 3 attempts: payment service down (attempt 3)
	// buried after 1 attempts: truncated JSON
}
