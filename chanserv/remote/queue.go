package remote

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/beanspike/beanspike"
	"github.com/beanspike/beanspike/chanserv"
	"github.com/beanspike/beanspike/chanserv/vnet"
)

var (
	_ beanspike.Queue       = (*Queue)(nil)
	_ beanspike.Batcher     = (*Queue)(nil)
	_ beanspike.BodyLimiter = (*Queue)(nil)
)

// Errors of a client, besides those of the beanspike package. Each comes
// wrapped in an error that also wraps [beanspike.ErrUnavailable].
var (
	// ErrNotAnswering means the session was given up because the server
	// stopped answering: a keepalive got no reply in time (see
	// [WithKeepalive]). The server may be hung or overloaded, or the
	// network may drop everything silently.
	ErrNotAnswering = errors.New("remote: the server stopped answering")

	// ErrOutcomeUnknown means the session was lost after the call was
	// sent and before its reply came: the server may or may not have
	// carried it out. A Put may have stored its job, and putting it
	// again may store it twice; a Delete may have deleted. Calls that
	// fail without it were not carried out.
	ErrOutcomeUnknown = errors.New("remote: the outcome of the call is unknown")

	// ErrUnauthorized means the server refused the session: the client
	// gave no token or one the server does not take (see [WithToken]).
	// Nothing was served.
	ErrUnauthorized = errors.New("remote: the server refused the token")
)

// Queue is a remote client of a job store: a [beanspike.Queue] whose
// calls travel over a chanserv session to a [Server]. The session is the
// client: the jobs it reserves belong to it, and they return to ready
// when it is closed or lost. Its methods are safe for concurrent use, and
// concurrent calls share the session without waiting for each other.
//
// When the session is lost (the connection fails, the server restarts or
// shuts down, or stops answering keepalives), the calls in flight fail
// with an error wrapping [beanspike.ErrUnavailable], and the client opens
// a new session in the background, retrying with backoff (see
// [WithBackoff]). Later calls wait for it, as long as their context
// allows, and use it: no user code is needed. A call made while an
// attempt fails gets that attempt's error, wrapping ErrUnavailable. The
// reservations of the lost session are gone: the server returned them to
// ready, and Delete, Release, Bury or Touch of such a job fail with
// [beanspike.ErrNotReserved] or [beanspike.ErrNotFound].
type Queue struct {
	cfg  config
	open func(context.Context) (*link, error)

	mu      sync.Mutex
	cur     *link         // the session; nil while reopening
	attempt chan struct{} // closed when the running attempt ends
	lastErr error         // why the last attempt failed
	closed  bool
	stop    chan struct{} // closed by Close
	maxMsg  int           // of the last session
	maxBody int
	wg      sync.WaitGroup // the reconnecting goroutine
}

// Dial opens a session with the server listening on the service addr of
// mpx and returns it as a Queue, which reopens the session over mpx when
// it is lost. That needs mpx to reach the server again by itself, as an
// AstraNet instance that joined a peer does; a vnet node linked with
// Connect does not relink, so for a server on TCP use [DialTCP], which
// relinks. ctx bounds the dial and the session's opening, not the
// session. Dial returns ctx's error if ctx ends first, and an error
// wrapping [beanspike.ErrUnavailable] if the server cannot be reached or
// refuses the session.
func Dial(ctx context.Context, mpx chanserv.Multiplexer, addr string, opts ...Option) (*Queue, error) {
	cfg, err := newConfig(opts)
	if err != nil {
		return nil, err
	}
	return newQueue(ctx, cfg, func(ctx context.Context) (*link, error) {
		return openLink(ctx, mpx, addr, cfg)
	})
}

// DialTCP connects to a beanspike server at the TCP address addr (such as
// "127.0.0.1:7420", as `beanspike serve` listens) and opens a session
// with its [DefaultService]. The connection is carried by a vnet node of
// the Queue's own, made anew each time the session is reopened and closed
// with the Queue. ctx bounds the connection and the session's opening.
// Errors are those of [Dial].
func DialTCP(ctx context.Context, addr string, opts ...Option) (*Queue, error) {
	cfg, err := newConfig(opts)
	if err != nil {
		return nil, err
	}
	return newQueue(ctx, cfg, func(ctx context.Context) (*link, error) {
		node, err := vnet.New(append([]vnet.Option{vnet.WithLogger(cfg.logger)}, cfg.node...)...)
		if err != nil {
			return nil, err
		}
		if err := node.Connect(ctx, "tcp", addr); err != nil {
			node.Close()
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			return nil, fmt.Errorf("%w: remote: connect to %s: %v", beanspike.ErrUnavailable, addr, err)
		}
		l, err := openLink(ctx, node, DefaultService, cfg)
		if err != nil {
			node.Close()
			return nil, err
		}
		l.onClose = func() { node.Close() }
		return l, nil
	})
}

func newQueue(ctx context.Context, cfg config, open func(context.Context) (*link, error)) (*Queue, error) {
	q := &Queue{cfg: cfg, open: open, stop: make(chan struct{})}
	l, err := open(ctx)
	if err != nil {
		return nil, err
	}
	q.adopt(l)
	return q, nil
}

// adopt makes l the session; q.mu must be held or q not yet shared.
func (q *Queue) adopt(l *link) {
	q.cur = l
	q.maxMsg, q.maxBody = l.maxMsg, l.maxBody
	l.mu.Lock()
	l.lost = q.lost
	failed := l.err != nil
	l.mu.Unlock()
	if failed {
		// Lost before it was adopted: lost was not told.
		go q.lost(l)
	}
}

// lost is told that l failed: later calls wait for a new session, which
// is opened in the background.
func (q *Queue) lost(l *link) {
	l.mu.Lock()
	cause := l.err
	l.mu.Unlock()
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.closed || q.cur != l {
		return
	}
	q.cfg.logger.Info("remote: session lost; reopening", "err", cause)
	q.cur = nil
	q.attempt = make(chan struct{})
	q.wg.Add(1)
	go q.reconnect(l)
}

// reconnect opens sessions until one succeeds or the Queue is closed,
// waiting with backoff between attempts; each attempt's end wakes the
// calls waiting for it.
func (q *Queue) reconnect(old *link) {
	defer q.wg.Done()
	old.Close() // releases what it was opened over
	// The first attempt waits too: a server that ended the session may
	// still be on its way out.
	wait := q.cfg.minBackoff
	for {
		t := time.NewTimer(wait/2 + rand.N(wait/2+1))
		select {
		case <-t.C:
		case <-q.stop:
			t.Stop()
		}
		// An attempt is bounded by the call timeout, and by Close.
		ctx, cancel := context.WithTimeout(context.Background(), q.cfg.callTimeout)
		go func() {
			select {
			case <-q.stop:
				cancel()
			case <-ctx.Done():
			}
		}()
		l, err := q.open(ctx)
		cancel()
		q.mu.Lock()
		if q.closed {
			if q.attempt != nil {
				close(q.attempt)
				q.attempt = nil
			}
			q.mu.Unlock()
			if l != nil {
				l.Close()
			}
			return
		}
		close(q.attempt)
		if err == nil {
			q.attempt = nil
			q.adopt(l)
			q.mu.Unlock()
			q.cfg.logger.Info("remote: session reopened")
			return
		}
		q.lastErr = err
		q.attempt = make(chan struct{})
		q.mu.Unlock()
		q.cfg.logger.Debug("remote: reopening the session failed", "err", err)
		wait = min(max(2*wait, q.cfg.minBackoff), q.cfg.maxBackoff)
	}
}

// session returns the session for a call, waiting, as long as ctx
// allows, for the attempt to reopen it that is under way. If that
// attempt fails, it returns its error.
func (q *Queue) session(ctx context.Context) (*link, error) {
	q.mu.Lock()
	if q.closed {
		q.mu.Unlock()
		return nil, beanspike.ErrClosed
	}
	if l := q.cur; l != nil {
		q.mu.Unlock()
		return l, nil
	}
	attempt := q.attempt
	q.mu.Unlock()
	select {
	case <-attempt:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	switch {
	case q.closed:
		return nil, beanspike.ErrClosed
	case q.cur != nil:
		return q.cur, nil
	case errors.Is(q.lastErr, beanspike.ErrUnavailable):
		return nil, q.lastErr
	}
	return nil, fmt.Errorf("%w: remote: reopen the session: %v", beanspike.ErrUnavailable, q.lastErr)
}

// MaxBodySize returns the largest body the server's store accepts, or,
// if the store does not tell, the largest that fits in a call, as the
// last session opened said. It makes Queue a [beanspike.BodyLimiter].
func (q *Queue) MaxBodySize() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.maxBody > 0 {
		return q.maxBody
	}
	return q.maxMsg - 1024
}

// maxMessage is the longest call the server accepts.
func (q *Queue) maxMessage() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.maxMsg
}

// Close ends the session: the server closes the session's Queue client,
// so its reservations return to ready, and Close waits for that (at most
// the call timeout, see [WithCallTimeout]). Calls in flight and later
// calls fail with [beanspike.ErrClosed]. Close is idempotent.
func (q *Queue) Close() error {
	q.mu.Lock()
	if q.closed {
		q.mu.Unlock()
		q.wg.Wait()
		return nil
	}
	q.closed = true
	close(q.stop)
	l := q.cur
	q.cur = nil
	q.mu.Unlock()
	if l != nil {
		l.Close()
	}
	q.wg.Wait()
	return nil
}

// onSession makes a call with f on the session, and again on a new
// session if the session was found lost before the call was sent.
func (q *Queue) onSession(ctx context.Context, f func(*link) error) error {
	for {
		l, err := q.session(ctx)
		if err != nil {
			return err
		}
		err = f(l)
		var u *unsentError
		if !errors.As(err, &u) {
			return err
		}
		q.lost(l) // l is lost: reopen it now, if nobody has yet
	}
}

// do makes a call that reserves nothing and returns its reply's result.
func (q *Queue) do(ctx context.Context, op byte, args func([]byte) []byte) (*dec, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	var d *dec
	err := q.onSession(ctx, func(l *link) (err error) {
		d, err = l.do(ctx, op, args)
		return err
	})
	return d, err
}

// peek makes a call whose reply is one job, not reserved.
func (q *Queue) peek(ctx context.Context, op byte, args func([]byte) []byte) (*beanspike.Job, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	var j *beanspike.Job
	err := q.onSession(ctx, func(l *link) (err error) {
		j, err = l.peek(ctx, op, args)
		return err
	})
	return j, err
}

// reserve makes a call whose reply carries reserved jobs; see
// link.reserve. A Reserve with a done context (a poll) waits for a
// session reopening at most the call timeout.
func (q *Queue) reserve(ctx context.Context, op byte, args func([]byte) []byte) ([]*beanspike.Job, error) {
	sctx := ctx
	if ctx.Err() != nil {
		var cancel context.CancelFunc
		sctx, cancel = context.WithTimeout(context.WithoutCancel(ctx), q.cfg.callTimeout)
		defer cancel()
	}
	var jobs []*beanspike.Job
	err := q.onSession(sctx, func(l *link) (err error) {
		jobs, err = l.reserve(ctx, op, args)
		return err
	})
	if err != nil && sctx != ctx && sctx.Err() != nil {
		return nil, ctx.Err()
	}
	return jobs, err
}
