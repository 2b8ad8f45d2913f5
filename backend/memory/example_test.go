package memory_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"time"

	"github.com/beanspike/beanspike"
	"github.com/beanspike/beanspike/backend/memory"
)

// A producer puts a job; a worker reserves it, does the work and deletes
// it.
func Example() {
	ctx := context.Background()
	q, err := memory.New()
	if err != nil {
		log.Fatal(err)
	}
	defer q.Close()

	if _, err := q.Put(ctx, "emails", []byte("welcome alice"), beanspike.WithPriority(10)); err != nil {
		log.Fatal(err)
	}
	if _, err := q.Put(ctx, "emails", []byte("newsletter"), beanspike.WithPriority(2000)); err != nil {
		log.Fatal(err)
	}
	if _, err := q.Put(ctx, "emails", []byte("reset password for bob"), beanspike.WithPriority(0)); err != nil {
		log.Fatal(err)
	}

	for range 3 {
		job, err := q.Reserve(ctx, "emails")
		if err != nil {
			log.Fatal(err)
		}
		fmt.Printf("%s (priority %d)\n", job.Body, job.Priority)
		if err := q.Delete(ctx, job.ID); err != nil {
			log.Fatal(err)
		}
	}

	// Nothing is left: a Reserve with a done context only polls.
	poll, cancel := context.WithCancel(ctx)
	cancel()
	_, err = q.Reserve(poll, "emails")
	fmt.Println(errors.Is(err, context.Canceled))
	// Output:
	// reset password for bob (priority 0)
	// welcome alice (priority 10)
	// newsletter (priority 2000)
	// true
}

// A delayed job becomes ready when its delay has passed; Reserve waits for
// it.
func Example_delay() {
	ctx := context.Background()
	q, err := memory.New()
	if err != nil {
		log.Fatal(err)
	}
	defer q.Close()

	const delay = 200 * time.Millisecond
	start := time.Now()
	id, err := q.Put(ctx, "reminders", []byte("call back"), beanspike.WithDelay(delay))
	if err != nil {
		log.Fatal(err)
	}
	st, err := q.StatsJob(ctx, id)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(st.State)

	job, err := q.Reserve(ctx, "reminders")
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("%s, after at least %s: %t\n", job.Body, delay, time.Since(start) >= delay)
	if err := q.Delete(ctx, job.ID); err != nil {
		log.Fatal(err)
	}
	// Output:
	// delayed
	// call back, after at least 200ms: true
}

// A worker buries a job it cannot handle; an operator looks at it and
// kicks it back to ready.
func Example_buryAndKick() {
	ctx := context.Background()
	q, err := memory.New()
	if err != nil {
		log.Fatal(err)
	}
	defer q.Close()

	if _, err := q.Put(ctx, "images", []byte("resize cat.png")); err != nil {
		log.Fatal(err)
	}
	job, err := q.Reserve(ctx, "images")
	if err != nil {
		log.Fatal(err)
	}
	if err := q.Bury(ctx, job.ID, job.Priority, "disk full"); err != nil {
		log.Fatal(err)
	}

	buried, err := q.PeekBuried(ctx, "images")
	if err != nil {
		log.Fatal(err)
	}
	st, err := q.StatsJob(ctx, buried.ID)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("%s: %s, %q\n", buried.Body, st.State, st.BuryReason)

	n, err := q.Kick(ctx, "images", 10)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("kicked", n)

	job, err = q.Reserve(ctx, "images")
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("%s, reserved %d times\n", job.Body, job.Reserves)
	if err := q.Delete(ctx, job.ID); err != nil {
		log.Fatal(err)
	}
	// Output:
	// resize cat.png: buried, "disk full"
	// kicked 1
	// resize cat.png, reserved 2 times
}

// Two clients of one store: a reservation belongs to the client that made
// it, and closing a client returns its reservations to ready.
func ExampleQueue_NewClient() {
	ctx := context.Background()
	a, err := memory.New()
	if err != nil {
		log.Fatal(err)
	}
	defer a.Close()
	b, err := a.NewClient()
	if err != nil {
		log.Fatal(err)
	}

	if _, err := a.Put(ctx, "default", []byte("work")); err != nil {
		log.Fatal(err)
	}
	job, err := b.Reserve(ctx)
	if err != nil {
		log.Fatal(err)
	}
	err = a.Delete(ctx, job.ID)
	fmt.Println(errors.Is(err, beanspike.ErrNotReserved))

	b.Close()
	job, err = a.Reserve(ctx)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(string(job.Body), a.Delete(ctx, job.ID))
	// Output:
	// true
	// work <nil>
}
