package aerospike_test

import (
	"context"
	"fmt"
	"log"
	"time"

	as "github.com/aerospike/aerospike-client-go/v8"

	"github.com/beanspike/beanspike"
	"github.com/beanspike/beanspike/backend/aerospike"
)

// A producer and a worker sharing a tube. It needs a running Aerospike
// server at AEROSPIKE_HOST:AEROSPIKE_PORT (127.0.0.1:3000 by default).
func Example() {
	ctx := context.Background()
	q, err := aerospike.New(ctx, aerospike.WithSetPrefix("myapp"))
	if err != nil {
		log.Fatal(err)
	}
	defer q.Close()

	if _, err := q.Put(ctx, "emails", []byte(`{"to":"ann@example.com"}`),
		beanspike.WithTTR(30*time.Second), beanspike.WithCompression()); err != nil {
		log.Fatal(err)
	}
	j, err := q.Reserve(ctx, "emails")
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("sending %s\n", j.Body)
	if err := q.Delete(ctx, j.ID); err != nil {
		log.Fatal(err)
	}
}

// Options place the store and tune the client.
func ExampleNew() {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	q, err := aerospike.New(ctx,
		aerospike.WithHosts("10.0.0.1", "10.0.0.2:3100"),
		aerospike.WithPort(3000),
		aerospike.WithNamespace("jobs"),
		aerospike.WithSetPrefix("billing"),
		aerospike.WithSegmentSize(2000),
	)
	if err != nil {
		log.Fatal(err)
	}
	defer q.Close()
}

// A queue can share a client the application already has; Close leaves
// it open.
func ExampleWithClient() {
	client, aerr := as.NewClient("127.0.0.1", 3000)
	if aerr != nil {
		log.Fatal(aerr)
	}
	defer client.Close()
	q, err := aerospike.New(context.Background(), aerospike.WithClient(client))
	if err != nil {
		log.Fatal(err)
	}
	defer q.Close()
}

// Each client has its own identity: a worker's reservations belong to it.
func ExampleQueue_NewClient() {
	ctx := context.Background()
	q, err := aerospike.New(ctx)
	if err != nil {
		log.Fatal(err)
	}
	defer q.Close()
	worker, err := q.NewClient()
	if err != nil {
		log.Fatal(err)
	}
	defer worker.Close() // returns its reservations to ready
	j, err := worker.Reserve(ctx, "default")
	if err != nil {
		log.Fatal(err)
	}
	if err := q.Delete(ctx, j.ID); err != nil {
		fmt.Println(err) // beanspike: job not reserved by this client
	}
}

// The native client is reachable for what the queue does not offer.
func ExampleQueue_As() {
	q, err := aerospike.New(context.Background())
	if err != nil {
		log.Fatal(err)
	}
	defer q.Close()
	var c *as.Client
	if q.As(&c) {
		fmt.Println(c.IsConnected())
	}
}
