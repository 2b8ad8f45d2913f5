package remote

import (
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/beanspike/beanspike/chanserv"
	"github.com/beanspike/beanspike/chanserv/vnet"
)

// DefaultService is the service name a beanspike server usually listens
// on.
const DefaultService = "beanspike"

// Defaults of the options.
const (
	// DefaultMaxInFlight is how many calls of one session a server runs
	// at once.
	DefaultMaxInFlight = 4096
	// DefaultCallTimeout bounds the waits a client makes on the server
	// without a context to bound them: the reply to a Reserve that only
	// polls, the confirmation of a cancelled Reserve, and Close.
	DefaultCallTimeout = 10 * time.Second
	// DefaultKeepalive is how long a client lets a session go without a
	// reply before it pings the server, and how long it waits for the
	// answer before it gives the session up.
	DefaultKeepalive = 5 * time.Second
	// DefaultMinBackoff and DefaultMaxBackoff bound the wait between
	// two attempts to reopen a lost session.
	DefaultMinBackoff = 100 * time.Millisecond
	DefaultMaxBackoff = 10 * time.Second
	// DefaultMaxReserveBatch is the most jobs one ReserveBatch call may
	// ask a server for.
	DefaultMaxReserveBatch = 1000
	// DefaultMaxReserveTubes is the most tubes one Reserve call may
	// watch on a server.
	DefaultMaxReserveTubes = 1000
	// DefaultMaxSessionReplyBytes is how many bytes of replies carrying
	// jobs one session of a server may hold at once: 8 MiB, seven
	// replies of a job of 1 MiB.
	DefaultMaxSessionReplyBytes = 8 << 20
	// DefaultMaxReplyBytes is how many bytes of replies carrying jobs
	// all the sessions of a server may hold at once: 256 MiB.
	DefaultMaxReplyBytes = 256 << 20
	// DefaultReplyTimeout is how long a server waits for a client to
	// take a frame of a reply before it ends the session.
	DefaultReplyTimeout = 30 * time.Second
)

// ErrInvalidOption means an option was out of range. Nothing was made.
var ErrInvalidOption = errors.New("remote: invalid option")

// Option configures a [Server] or a client made by [Dial] or [DialTCP].
// Each option says which side reads it; the other ignores it.
type Option func(*config) error

type config struct {
	transport   []chanserv.Option
	maxFrame    int
	maxInFlight int
	callTimeout time.Duration
	keepalive   time.Duration
	minBackoff  time.Duration
	maxBackoff  time.Duration
	logger      *slog.Logger
	node        []vnet.Option
	maxBatch    int
	maxTubes    int
	token       string
	checkToken  func(string) bool

	// The bytes of replies one session, and all, may hold.
	maxSessionReplyBytes, maxReplyBytes int
	replyTimeout                        time.Duration
}

func newConfig(opts []Option) (config, error) {
	c := config{
		maxFrame:    chanserv.DefaultMaxFrameSize,
		maxInFlight: DefaultMaxInFlight,
		callTimeout: DefaultCallTimeout,
		keepalive:   DefaultKeepalive,
		minBackoff:  DefaultMinBackoff,
		maxBackoff:  DefaultMaxBackoff,
		logger:      slog.New(slog.DiscardHandler),
		maxBatch:    DefaultMaxReserveBatch,
		maxTubes:    DefaultMaxReserveTubes,

		maxSessionReplyBytes: DefaultMaxSessionReplyBytes,
		maxReplyBytes:        DefaultMaxReplyBytes,
		replyTimeout:         DefaultReplyTimeout,
	}
	for _, o := range opts {
		if o == nil {
			continue
		}
		if err := o(&c); err != nil {
			return config{}, err
		}
	}
	return c, nil
}

// chanservOptions are the transport options, with the frame limit last.
func (c *config) chanservOptions() []chanserv.Option {
	opts := append([]chanserv.Option(nil), c.transport...)
	return append(opts, chanserv.WithMaxFrameSize(c.maxFrame), chanserv.WithLogger(c.logger))
}

// WithTransportOptions passes options to the chanserv server or client
// underneath, such as [chanserv.WithCompression] (server) or
// [chanserv.WithWindow] (client). Both sides. Defaults to none.
func WithTransportOptions(opts ...chanserv.Option) Option {
	return func(c *config) error {
		c.transport = append(c.transport, opts...)
		return nil
	}
}

// WithMaxFrameSize sets the longest message this side accepts from its
// peer: on a server, a call (a Put's body travels in it); on a client, a
// reply header. A client does not send calls longer than its server
// accepts: a Put whose body does not fit fails with
// [beanspike.ErrJobTooBig]. Both sides. Defaults to
// [chanserv.DefaultMaxFrameSize].
func WithMaxFrameSize(n int) Option {
	return func(c *config) error {
		if n < 1<<10 || n > 1<<31-1 {
			return fmt.Errorf("%w: max frame size %d not between 1 KiB and 2 GiB", ErrInvalidOption, n)
		}
		c.maxFrame = n
		return nil
	}
}

// WithMaxInFlight sets how many calls of one session a server runs at
// once; beyond it, calls fail with [beanspike.ErrUnavailable]. Server.
// Defaults to [DefaultMaxInFlight].
func WithMaxInFlight(n int) Option {
	return func(c *config) error {
		if n <= 0 {
			return fmt.Errorf("%w: max in flight %d is not positive", ErrInvalidOption, n)
		}
		c.maxInFlight = n
		return nil
	}
}

// WithCallTimeout bounds the waits a client makes on its server when the
// caller's context cannot: a Reserve with a done context (a poll), the
// server's confirmation that a cancelled Reserve took nothing, and Close.
// Client. Defaults to [DefaultCallTimeout].
func WithCallTimeout(d time.Duration) Option {
	return func(c *config) error {
		if d <= 0 {
			return fmt.Errorf("%w: call timeout %v is not positive", ErrInvalidOption, d)
		}
		c.callTimeout = d
		return nil
	}
}

// WithKeepalive sets how long a client lets its session go without a
// reply before it pings the server; a ping unanswered for as long ends
// the session as lost, with an error wrapping [ErrNotAnswering], and the
// client reconnects. A server that stops answering is so found out
// within 2.25 times d. 0 turns keepalives off: a hung server is then found
// out only by the transport, if at all. Client. Defaults to
// [DefaultKeepalive].
func WithKeepalive(d time.Duration) Option {
	return func(c *config) error {
		if d < 0 || (d > 0 && d < time.Millisecond) {
			return fmt.Errorf("%w: keepalive %v is neither 0 nor at least 1ms", ErrInvalidOption, d)
		}
		c.keepalive = d
		return nil
	}
}

// WithBackoff bounds the waits before the attempts to reopen a lost
// session: the first attempt is made after min, each later one after
// twice the wait before, at most max, each wait cut by up to a half at
// random. Each attempt is bounded by the call timeout
// ([WithCallTimeout]). Client. Defaults to [DefaultMinBackoff] and
// [DefaultMaxBackoff].
func WithBackoff(min, max time.Duration) Option {
	return func(c *config) error {
		if min <= 0 || max < min {
			return fmt.Errorf("%w: backoff from %v to %v", ErrInvalidOption, min, max)
		}
		c.minBackoff, c.maxBackoff = min, max
		return nil
	}
}

// WithToken makes a client present token when it opens a session, for a
// server that requires one ([WithTokenCheck]). The token travels as the
// session's first message: use TLS ([WithNodeOptions] with
// vnet.WithDialTLS) where the network is not trusted. At most 4 KiB.
func WithToken(token string) Option {
	return func(c *config) error {
		if len(token) > maxToken {
			return fmt.Errorf("%w: token of %d bytes, more than %d", ErrInvalidOption, len(token), maxToken)
		}
		c.token = token
		return nil
	}
}

// WithTokenCheck makes a server open a session only for a client whose
// token check accepts: any other gets a refusal (the client's
// [ErrUnauthorized]) and nothing is served. check is called once per
// session, possibly concurrently; it should compare in constant time
// (crypto/subtle) and may consult a source that changes, for rotation.
// Without it, the server takes every client.
func WithTokenCheck(check func(token string) bool) Option {
	return func(c *config) error {
		if check == nil {
			return fmt.Errorf("%w: nil token check", ErrInvalidOption)
		}
		c.checkToken = check
		return nil
	}
}

// WithMaxReserve bounds, on a server, the jobs one ReserveBatch call
// may ask for and the tubes one Reserve may watch: a call over either
// fails with [beanspike.ErrInvalidArgument] and reserves nothing, so that
// no client can make the server hold a huge batch or poll a huge watch
// list. Both must be at least 1. Defaults to [DefaultMaxReserveBatch] and
// [DefaultMaxReserveTubes].
func WithMaxReserve(batch, tubes int) Option {
	return func(c *config) error {
		if batch < 1 || tubes < 1 {
			return fmt.Errorf("%w: max reserve batch %d, tubes %d", ErrInvalidOption, batch, tubes)
		}
		c.maxBatch, c.maxTubes = batch, tubes
		return nil
	}
}

// WithMaxReplyBytes bounds, on a server, the bytes of replies carrying
// jobs held at once: by one session, and by all of them. A call that
// returns jobs (Reserve, ReserveJob, Peek and the like) takes, before the
// store is called, what its reply may need — the store's body limit
// ([beanspike.BodyLimiter]) per job, or the server's frame limit
// ([WithMaxFrameSize]) for a store that does not say — and gives it back
// once the reply is written. When either budget is spent, such calls
// wait: a session whose replies are not read is read no further. A
// ReserveBatch gets the jobs the budgets have room for, at least one, so
// that small jobs come in large batches, large ones in small. A reply
// longer than a budget takes all of it. Keep session well below server,
// so that a few sessions that do not read cannot hold all of it; the
// reply timeout ([WithReplyTimeout]) ends those. session must be at
// least 1 and at most server. Server. Defaults to
// [DefaultMaxSessionReplyBytes] and [DefaultMaxReplyBytes].
func WithMaxReplyBytes(session, server int) Option {
	return func(c *config) error {
		if session < 1 || server < session {
			return fmt.Errorf("%w: max reply bytes %d per session, %d in all", ErrInvalidOption, session, server)
		}
		c.maxSessionReplyBytes, c.maxReplyBytes = session, server
		return nil
	}
}

// WithReplyTimeout sets how long a server waits for a client to take a
// frame of a reply: a session whose client has taken none for d is
// ended, as if the client had gone, so that the replies it held, and the
// jobs it reserved, are freed. It must be at least 1ms. Server. Defaults
// to [DefaultReplyTimeout].
func WithReplyTimeout(d time.Duration) Option {
	return func(c *config) error {
		if d < time.Millisecond {
			return fmt.Errorf("%w: reply timeout %v is under 1ms", ErrInvalidOption, d)
		}
		c.replyTimeout = d
		return nil
	}
}

// WithNodeOptions sets options of the vnet node that [DialTCP] makes for
// each session, such as vnet.WithDialTLS for a server that speaks TLS.
// [Dial] ignores them: its multiplexer is the caller's.
func WithNodeOptions(opts ...vnet.Option) Option {
	opts = append([]vnet.Option(nil), opts...)
	return func(c *config) error {
		c.node = opts
		return nil
	}
}

// WithLogger sends diagnostics (sessions opened and lost, failed
// deliveries) to l, and passes it to the transport. Both sides. Defaults
// to discarding them.
func WithLogger(l *slog.Logger) Option {
	return func(c *config) error {
		if l == nil {
			return fmt.Errorf("%w: nil logger", ErrInvalidOption)
		}
		c.logger = l
		return nil
	}
}
