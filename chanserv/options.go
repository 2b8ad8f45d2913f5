package chanserv

import (
	"errors"
	"fmt"
	"log/slog"
	"time"
)

// Defaults of the options.
const (
	// DefaultMaxFrameSize is the longest frame, request body or message
	// a side accepts: 16 MiB.
	DefaultMaxFrameSize = 16 << 20
	// DefaultWindow is the per-source credit window: 256 KiB.
	DefaultWindow = 256 << 10
	// DefaultMaxSources is how many sources of one response may be open
	// (announced and not yet finished by the consumer) at once.
	DefaultMaxSources = 1024
	// DefaultMessageWindow is the server's credit for client messages on
	// one request: 64 KiB.
	DefaultMessageWindow = 64 << 10
	// DefaultDialTimeout bounds a client's dial when its context has no
	// earlier deadline.
	DefaultDialTimeout = 10 * time.Second
	// DefaultHandshakeTimeout bounds how long a server waits for a
	// request after a stream is accepted.
	DefaultHandshakeTimeout = 10 * time.Second
)

// ErrInvalidOption means an option was out of range. Nothing was made.
var ErrInvalidOption = errors.New("chanserv: invalid option")

// Option configures a [Server], a [Client] or one [Client.Post]. Each
// option's documentation says which sides read it; the others ignore it.
type Option func(*config) error

type config struct {
	maxFrame         int
	window           int
	maxSources       int
	msgWindow        int
	compress         bool
	dialTimeout      time.Duration
	handshakeTimeout time.Duration
	network          string
	logger           *slog.Logger
}

func defaultConfig() config {
	return config{
		maxFrame:         DefaultMaxFrameSize,
		window:           DefaultWindow,
		maxSources:       DefaultMaxSources,
		msgWindow:        DefaultMessageWindow,
		dialTimeout:      DefaultDialTimeout,
		handshakeTimeout: DefaultHandshakeTimeout,
		logger:           slog.New(slog.DiscardHandler),
	}
}

func (c *config) apply(opts []Option) error {
	for _, o := range opts {
		if o == nil {
			continue
		}
		if err := o(c); err != nil {
			return err
		}
	}
	return nil
}

func positive(name string, n int) error {
	if n <= 0 {
		return fmt.Errorf("%w: %s %d must be positive", ErrInvalidOption, name, n)
	}
	return nil
}

// WithMaxFrameSize sets the longest frame this side accepts from its peer:
// on a client, a data frame (after decompression); on a server, a request
// body or a client message. A larger frame fails the stream before any
// memory is allocated for it. Both sides. Defaults to
// [DefaultMaxFrameSize].
func WithMaxFrameSize(n int) Option {
	return func(c *config) error {
		if err := positive("max frame size", n); err != nil {
			return err
		}
		if n > 1<<31-1 {
			return fmt.Errorf("%w: max frame size %d over 2 GiB", ErrInvalidOption, n)
		}
		c.maxFrame = n
		return nil
	}
}

// WithWindow sets how many bytes of data frames the server may send on
// one source before the consumer has read them. A source buffers less
// than window plus one frame. Client and Post. Defaults to
// [DefaultWindow].
func WithWindow(n int) Option {
	return func(c *config) error {
		if err := positive("window", n); err != nil {
			return err
		}
		c.window = n
		return nil
	}
}

// WithMaxSources sets how many sources of one response may be open at
// once: announced and not yet read to the end or closed by the consumer.
// The server's NewSource waits for a slot. Client and Post. Defaults to
// [DefaultMaxSources].
func WithMaxSources(n int) Option {
	return func(c *config) error {
		if err := positive("max sources", n); err != nil {
			return err
		}
		c.maxSources = n
		return nil
	}
}

// WithMessageWindow sets how many bytes of client messages a server
// buffers per request before the handler reads them; a client's
// [Response.Send] waits for room. Server. Defaults to
// [DefaultMessageWindow].
func WithMessageWindow(n int) Option {
	return func(c *config) error {
		if err := positive("message window", n); err != nil {
			return err
		}
		c.msgWindow = n
		return nil
	}
}

// WithCompression makes a server LZ4-compress data frames, through
// package codec, when that makes them smaller and the client accepts it
// (clients always do). Frames that do not shrink are sent raw. Server.
// Defaults to off.
func WithCompression(on bool) Option {
	return func(c *config) error { c.compress = on; return nil }
}

// WithDialTimeout bounds a dial when the context has no earlier deadline.
// Client and Post. Defaults to [DefaultDialTimeout].
func WithDialTimeout(d time.Duration) Option {
	return func(c *config) error {
		if d <= 0 {
			return fmt.Errorf("%w: dial timeout %v must be positive", ErrInvalidOption, d)
		}
		c.dialTimeout = d
		return nil
	}
}

// WithHandshakeTimeout bounds how long a server waits for the request on
// a newly accepted stream. Server. Defaults to [DefaultHandshakeTimeout].
func WithHandshakeTimeout(d time.Duration) Option {
	return func(c *config) error {
		if d <= 0 {
			return fmt.Errorf("%w: handshake timeout %v must be positive", ErrInvalidOption, d)
		}
		c.handshakeTimeout = d
		return nil
	}
}

// WithNetwork sets the network argument passed to the multiplexer's dial.
// AstraNet reads "registry://key" as "balance by key". Client and Post.
// Defaults to "".
func WithNetwork(network string) Option {
	return func(c *config) error { c.network = network; return nil }
}

// WithLogger sends the package's diagnostics (failed accepts, protocol
// violations) to l. Both sides. Defaults to discarding them.
func WithLogger(l *slog.Logger) Option {
	return func(c *config) error {
		if l == nil {
			return fmt.Errorf("%w: nil logger", ErrInvalidOption)
		}
		c.logger = l
		return nil
	}
}
