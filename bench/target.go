package bench

import (
	"context"
	"errors"
	"fmt"

	"github.com/beanspike/beanspike"
)

// Client is one connection to a target, as the workloads use it. A Client
// is used by one goroutine at a time.
type Client interface {
	// Put puts body into tube, compressed if compress is set and the
	// target can.
	Put(ctx context.Context, tube string, body []byte, compress bool) error
	// ReserveDelete reserves a job of tube and deletes it. It returns the
	// body's length.
	ReserveDelete(ctx context.Context, tube string) (int, error)
	// Close closes the client.
	Close() error
}

// Session is a running target: a store and the means to connect to it.
type Session interface {
	// NewClient connects a new client.
	NewClient() (Client, error)
	// Close stops the target and frees what it holds.
	Close() error
}

// Target is something to measure.
type Target struct {
	// Name names the target in reports.
	Name string
	// Compresses tells whether the target can store bodies compressed.
	Compresses bool
	// Start starts a new, empty session of the target.
	Start func() (Session, error)
}

// ErrMissing is returned by Target.Start when the target cannot run on
// this machine, for example because a binary is not installed.
var ErrMissing = errors.New("bench: target not available here")

// queueClient adapts a beanspike.Queue to Client.
type queueClient struct{ q beanspike.Queue }

func (c queueClient) Put(ctx context.Context, tube string, body []byte, compress bool) error {
	var err error
	if compress {
		_, err = c.q.Put(ctx, tube, body, beanspike.WithCompression())
	} else {
		_, err = c.q.Put(ctx, tube, body)
	}
	return err
}

func (c queueClient) ReserveDelete(ctx context.Context, tube string) (int, error) {
	j, err := c.q.Reserve(ctx, tube)
	if err != nil {
		return 0, err
	}
	if err := c.q.Delete(ctx, j.ID); err != nil {
		return 0, fmt.Errorf("delete %d: %w", j.ID, err)
	}
	return len(j.Body), nil
}

func (c queueClient) Close() error { return c.q.Close() }

// queueSession adapts a function making clients of one store to Session.
type queueSession struct {
	newClient func() (beanspike.Queue, error)
	close     func() error
}

func (s queueSession) NewClient() (Client, error) {
	q, err := s.newClient()
	if err != nil {
		return nil, err
	}
	return queueClient{q}, nil
}

func (s queueSession) Close() error {
	if s.close == nil {
		return nil
	}
	return s.close()
}
