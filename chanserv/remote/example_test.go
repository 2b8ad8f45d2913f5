package remote_test

import (
	"context"
	"errors"
	"fmt"

	"github.com/beanspike/beanspike"
	"github.com/beanspike/beanspike/backend/memory"
	"github.com/beanspike/beanspike/chanserv/memmux"
	"github.com/beanspike/beanspike/chanserv/remote"
	"github.com/beanspike/beanspike/chanserv/vnet"
)

// A memory store served to a remote client over an in-memory link. With
// vnet, the server's node listens on TCP and the client's connects to it;
// the rest is the same.
func Example() {
	ctx := context.Background()
	store, _ := memory.New()
	defer store.Close()
	srv, _ := remote.NewServer(func() (beanspike.Queue, error) { return store.NewClient() })
	defer srv.Close()
	link := memmux.New()
	if err := srv.Listen(link, remote.DefaultService); err != nil {
		fmt.Println(err)
		return
	}

	q, err := remote.Dial(ctx, link, remote.DefaultService)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer q.Close()
	id, _ := q.Put(ctx, "emails", []byte("hello"), beanspike.WithPriority(5))
	j, _ := q.Reserve(ctx, "emails")
	fmt.Println(j.ID == id, string(j.Body), j.Priority)
	if err := q.Delete(ctx, j.ID); err != nil {
		fmt.Println(err)
	}
	_, err = q.Peek(ctx, id)
	fmt.Println(err)
	// Output:
	// true hello 5
	// beanspike: job not found: job 1
}

// A server on loopback TCP, as `beanspike serve` runs one, and a client
// that reaches it with DialTCP. The client reopens its session by itself
// if the server restarts.
func ExampleDialTCP() {
	ctx := context.Background()
	store, _ := memory.New()
	defer store.Close()
	srv, _ := remote.NewServer(func() (beanspike.Queue, error) { return store.NewClient() })
	defer srv.Close()
	node, _ := vnet.New()
	defer node.Close()
	if err := srv.Listen(node, remote.DefaultService); err != nil {
		fmt.Println(err)
		return
	}
	addr, err := node.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fmt.Println(err)
		return
	}

	q, err := remote.DialTCP(ctx, addr.String())
	if err != nil {
		fmt.Println(err)
		return
	}
	defer q.Close()
	id, err := q.Put(ctx, "emails", []byte("hello"))
	if errors.Is(err, remote.ErrOutcomeUnknown) {
		// The session was lost after the Put was sent: the job may be
		// stored, and putting it again may store it twice.
		fmt.Println("maybe stored")
		return
	}
	j, _ := q.Reserve(ctx, "emails")
	fmt.Println(j.ID == id, string(j.Body))
	// Output:
	// true hello
}
