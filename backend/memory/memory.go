// Package memory is the in-memory reference backend of beanspike: exact,
// fast and not durable. Its semantics are the contract's, beanstalkd's,
// to the nanosecond: delayed jobs become ready, reservations lapse and
// pauses end exactly when due, whether or not the store's timer has
// fired yet.
//
// A store is made by [New], which returns its first client; more clients
// of the same store come from [Queue.NewClient]. Each client has its own
// identity: the reservations it makes belong to it. The store lives until
// its last client is closed.
//
// Every operation costs O(log n) in the number of jobs of the tubes it
// touches: each tube keeps its ready, delayed, reserved and buried jobs in
// heaps, and one compact hash table finds a job by ID. Blocked Reserve
// calls wait in a FIFO list per tube and are handed jobs directly, without
// polling. One timer per store drives delays, reservation lapses and pause
// ends.
//
// TubeStats.Waiting is exact: it counts every blocked Reserve of the
// store.
package memory

import (
	"fmt"

	"github.com/beanspike/beanspike"
)

// MaxBodySizeLimit is the largest value [WithMaxBodySize] accepts: 1 GiB,
// beanstalkd's hard ceiling.
const MaxBodySizeLimit = 1 << 30

// Option configures a store made by [New].
type Option func(*options)

type options struct {
	maxBodySize int
}

// WithMaxBodySize sets the largest body, in bytes before compression, that
// Put accepts; larger ones fail with [beanspike.ErrJobTooBig]. It must be
// between 1 and [MaxBodySizeLimit]. Defaults to
// [beanspike.DefaultMaxBodySize].
func WithMaxBodySize(n int) Option { return func(o *options) { o.maxBodySize = n } }

// Queue is one client of an in-memory store. It is safe for concurrent use
// by multiple goroutines.
type Queue struct {
	s *store
	// Guarded by s.mu.
	closed  bool
	held    map[*job]struct{}
	waiters map[*waiter]struct{}
}

var (
	_ beanspike.Queue       = (*Queue)(nil)
	_ beanspike.Batcher     = (*Queue)(nil)
	_ beanspike.BodyLimiter = (*Queue)(nil)
)

// New makes a new, empty store and returns its first client. It returns
// an error wrapping [beanspike.ErrInvalidArgument] when an option is out
// of range.
func New(opts ...Option) (*Queue, error) {
	o := options{maxBodySize: beanspike.DefaultMaxBodySize}
	for _, opt := range opts {
		if opt != nil {
			opt(&o)
		}
	}
	if o.maxBodySize < 1 || o.maxBodySize > MaxBodySizeLimit {
		return nil, fmt.Errorf("%w: max body size %d is not between 1 and %d",
			beanspike.ErrInvalidArgument, o.maxBodySize, MaxBodySizeLimit)
	}
	s, err := newStore(&o)
	if err != nil {
		return nil, err
	}
	s.clients = 1
	return newClient(s), nil
}

func newClient(s *store) *Queue {
	return &Queue{
		s:       s,
		held:    make(map[*job]struct{}),
		waiters: make(map[*waiter]struct{}),
	}
}

// MaxBodySize returns the largest body, in bytes, that Put accepts. It
// makes Queue a [beanspike.BodyLimiter].
func (q *Queue) MaxBodySize() int { return q.s.maxBody }

// NewClient returns a new client of q's store, with its own identity. It
// returns [beanspike.ErrClosed] when q is closed.
func (q *Queue) NewClient() (*Queue, error) {
	s := q.s
	s.mu.Lock()
	defer s.mu.Unlock()
	if q.closed {
		return nil, errClosed()
	}
	s.clients++
	return newClient(s), nil
}

// Close closes the client: the jobs it has reserved return to ready at
// once, its blocked Reserve calls return [beanspike.ErrClosed], and so do
// its later calls. Closing the last client of a store stops the store's
// timer and frees its jobs. Close is idempotent and always returns nil.
func (q *Queue) Close() error {
	s := q.s
	s.lock()
	if q.closed {
		s.unlock()
		return nil
	}
	q.closed = true
	for j := range q.held {
		s.take(j)
		s.toReady(j)
	}
	for w := range q.waiters {
		s.dequeue(w)
		w.err = errClosed()
		close(w.done)
	}
	s.clients--
	if s.clients == 0 {
		s.stop()
	}
	s.unlock()
	return nil
}
