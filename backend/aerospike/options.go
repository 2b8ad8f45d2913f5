package aerospike

import (
	"fmt"
	"log/slog"
	"net"
	"os"
	"strconv"
	"strings"
	"time"

	as "github.com/aerospike/aerospike-client-go/v8"

	"github.com/beanspike/beanspike"
)

// Defaults of the options of [New].
const (
	// DefaultHost is the server host used when neither [WithHosts] nor the
	// AEROSPIKE_HOST environment variable names one.
	DefaultHost = "127.0.0.1"
	// DefaultPort is the server port used when neither [WithPort] nor the
	// AEROSPIKE_PORT environment variable gives one.
	DefaultPort = 3000
	// DefaultNamespace is the Aerospike namespace the queue's sets live in.
	DefaultNamespace = "test"
	// DefaultSetPrefix starts the names of the queue's sets.
	DefaultSetPrefix = "beanspike"
	// DefaultSegmentSize is how many hints an index segment holds before
	// it splits in two.
	DefaultSegmentSize = 2000
	// MinSegmentSize and MaxSegmentSize bound [WithSegmentSize].
	MinSegmentSize, MaxSegmentSize = 4, 16000
	// DefaultSweepInterval is the period of each client's background loop.
	DefaultSweepInterval = 100 * time.Millisecond
	// DefaultTimeout bounds each command sent to the server.
	DefaultTimeout = 2 * time.Second
	// DefaultInFlight is how many commands the clients of one [New] have
	// in flight before further ones wait to be merged.
	DefaultInFlight = 8
	// MaxInFlight is the largest value [WithInFlight] accepts.
	MaxInFlight = 1024
	// MaxBodySizeLimit is the largest value [WithMaxBodySize] accepts: a
	// job record must fit in Aerospike's 8 MiB ceiling on max-record-size.
	MaxBodySizeLimit = 7 << 20
	// RecordOverhead is what a job record takes beyond its body: the
	// bins that hold its tube, size and put time, and Aerospike's record
	// header. The largest body a namespace takes is its max-record-size
	// less this.
	RecordOverhead = 1 << 10
	// maxSetPrefixLen keeps set names (prefix plus a short suffix) within
	// Aerospike's 63-byte limit.
	maxSetPrefixLen = 56
	// maxKeyPrefixLen bounds [WithKeyPrefix].
	maxKeyPrefixLen = 64
)

// Environment variables read by [New] for its defaults, as the ancestor
// go-beanspike read them.
const (
	EnvHost = "AEROSPIKE_HOST"
	EnvPort = "AEROSPIKE_PORT"
)

// Option configures a queue made by [New].
type Option func(*config)

type config struct {
	hosts         []string
	port          int
	namespace     string
	setPrefix     string
	keyPrefix     string
	client        *as.Client
	clientPolicy  *as.ClientPolicy
	maxBodySize   int  // set by WithMaxBodySize
	maxBodySet    bool // else derived from the namespace's max-record-size
	segSize       int
	sweepInterval time.Duration
	timeout       time.Duration
	inFlight      int
	logger        *slog.Logger
}

// WithHosts sets the seed hosts, each "name" or "name:port"; a host
// without a port uses the port of [WithPort]. Defaults to the
// comma-separated list in AEROSPIKE_HOST, or [DefaultHost].
func WithHosts(hosts ...string) Option {
	return func(c *config) { c.hosts = append([]string(nil), hosts...) }
}

// WithPort sets the port of the hosts that do not name one. Defaults to
// AEROSPIKE_PORT, or [DefaultPort].
func WithPort(port int) Option { return func(c *config) { c.port = port } }

// WithNamespace sets the Aerospike namespace. Defaults to
// [DefaultNamespace].
func WithNamespace(ns string) Option { return func(c *config) { c.namespace = ns } }

// WithSetPrefix sets the prefix of the names of the queue's sets. Queues
// with different prefixes in one namespace are isolated stores; clients of
// one store must use the same prefix. It is 1 to 56 bytes of letters,
// digits, '_', '-' and '.'. Defaults to [DefaultSetPrefix].
//
// A namespace holds at most 4,095 set names, and a name once used counts
// until the server restarts, even when its records are gone: for many
// stores in one namespace (one per tenant, one per test), share a set
// prefix and tell the stores apart with [WithKeyPrefix].
func WithSetPrefix(prefix string) Option { return func(c *config) { c.setPrefix = prefix } }

// WithKeyPrefix starts the key of every record of the store with prefix,
// so that stores sharing a set prefix are isolated from one another
// without using more set names. Clients of one store must use the same
// set and key prefixes. It is 0 to 64 bytes of letters, digits, '_', '-'
// and '.'. Defaults to none: the keys of a store made without it.
func WithKeyPrefix(prefix string) Option { return func(c *config) { c.keyPrefix = prefix } }

// WithClient makes the queue use an existing client instead of
// connecting; Close then leaves the client open. The host, port and
// client-policy options are ignored.
func WithClient(client *as.Client) Option { return func(c *config) { c.client = client } }

// WithClientPolicy sets the policy used to connect (timeouts, connection
// pool, authentication, TLS). Defaults to the client's default policy.
func WithClientPolicy(p *as.ClientPolicy) Option {
	return func(c *config) { c.clientPolicy = p }
}

// WithMaxBodySize sets the largest body, in bytes before compression, that
// Put accepts; larger ones fail with [beanspike.ErrJobTooBig] before
// anything is written. It must be between 1 and [MaxBodySizeLimit], and
// a job record must fit in the namespace: [New] fails with
// [beanspike.ErrInvalidArgument] when n is more than the namespace's
// max-record-size (1 MiB unless the server is configured otherwise) less
// [RecordOverhead]. For bigger bodies, raise max-record-size (at most 8
// MiB; e.g. asinfo -v
// 'set-config:context=namespace;id=test;max-record-size=8388608', and in
// the namespace's configuration so that it survives a restart). Defaults
// to [beanspike.DefaultMaxBodySize] or what the namespace allows,
// whichever is smaller.
func WithMaxBodySize(n int) Option {
	return func(c *config) { c.maxBodySize, c.maxBodySet = n, true }
}

// WithSegmentSize sets how many hints an index segment record holds
// before the client that grows it past that splits it in two, from
// [MinSegmentSize] to [MaxSegmentSize]. A hint takes about 30 bytes, so
// the default [DefaultSegmentSize] keeps segments near 60 KB. Clients of
// one store may differ: the size only says when to split. Smaller
// segments make every index write cheaper and the directories bigger.
func WithSegmentSize(n int) Option { return func(c *config) { c.segSize = n } }

// WithSweepInterval sets the period of the client's background loop, which
// makes due delayed jobs ready, returns lapsed reservations to ready and
// repairs what crashed clients left half done. Defaults to
// [DefaultSweepInterval].
func WithSweepInterval(d time.Duration) Option {
	return func(c *config) { c.sweepInterval = d }
}

// WithTimeout bounds each command sent to the server; a context with an
// earlier deadline bounds it further. Defaults to [DefaultTimeout].
func WithTimeout(d time.Duration) Option { return func(c *config) { c.timeout = d } }

// WithLogger sets where the queue reports the store going out of reach
// and coming back (once each, not per call). Defaults to
// [slog.Default].
func WithLogger(l *slog.Logger) Option { return func(c *config) { c.logger = l } }

// WithInFlight sets how many commands the clients made by one [New] send
// at once; while that many are in flight, further ones wait, and go out
// together as one batch command when one finishes (see the package
// documentation). More lets more commands run in parallel, in smaller
// batches; [MaxInFlight] all but turns merging off. From 1 to
// [MaxInFlight]; defaults to [DefaultInFlight].
func WithInFlight(n int) Option { return func(c *config) { c.inFlight = n } }

// resolve applies opts over the defaults and the environment and validates
// the result.
func resolve(opts []Option) (config, error) {
	c := config{
		port:          DefaultPort,
		namespace:     DefaultNamespace,
		setPrefix:     DefaultSetPrefix,
		segSize:       DefaultSegmentSize,
		sweepInterval: DefaultSweepInterval,
		timeout:       DefaultTimeout,
		inFlight:      DefaultInFlight,
	}
	if h := strings.TrimSpace(os.Getenv(EnvHost)); h != "" {
		c.hosts = strings.Split(h, ",")
	}
	if p := strings.TrimSpace(os.Getenv(EnvPort)); p != "" {
		n, err := strconv.Atoi(p)
		if err != nil {
			return c, fmt.Errorf("%w: %s=%q is not a port", beanspike.ErrInvalidArgument, EnvPort, p)
		}
		c.port = n
	}
	for _, o := range opts {
		if o != nil {
			o(&c)
		}
	}
	if len(c.hosts) == 0 {
		c.hosts = []string{DefaultHost}
	}
	if c.logger == nil {
		c.logger = slog.Default()
	}
	if c.port < 1 || c.port > 65535 {
		return c, fmt.Errorf("%w: port %d out of range", beanspike.ErrInvalidArgument, c.port)
	}
	if c.namespace == "" || len(c.namespace) > 31 || strings.ContainsAny(c.namespace, ":;") {
		return c, fmt.Errorf("%w: namespace %q", beanspike.ErrInvalidArgument, c.namespace)
	}
	if err := validPrefix(c.setPrefix); err != nil {
		return c, err
	}
	if err := validKeyPrefix(c.keyPrefix); err != nil {
		return c, err
	}
	if c.maxBodySet && (c.maxBodySize < 1 || c.maxBodySize > MaxBodySizeLimit) {
		return c, fmt.Errorf("%w: max body size %d is not between 1 and %d",
			beanspike.ErrInvalidArgument, c.maxBodySize, MaxBodySizeLimit)
	}
	if c.segSize < MinSegmentSize || c.segSize > MaxSegmentSize {
		return c, fmt.Errorf("%w: segment size %d is not between %d and %d",
			beanspike.ErrInvalidArgument, c.segSize, MinSegmentSize, MaxSegmentSize)
	}
	if c.sweepInterval < time.Millisecond {
		return c, fmt.Errorf("%w: sweep interval %s is shorter than 1ms",
			beanspike.ErrInvalidArgument, c.sweepInterval)
	}
	if c.timeout < time.Millisecond {
		return c, fmt.Errorf("%w: timeout %s is shorter than 1ms", beanspike.ErrInvalidArgument, c.timeout)
	}
	if c.inFlight < 1 || c.inFlight > MaxInFlight {
		return c, fmt.Errorf("%w: commands in flight %d is not between 1 and %d",
			beanspike.ErrInvalidArgument, c.inFlight, MaxInFlight)
	}
	return c, nil
}

func validPrefix(p string) error {
	if p == "" || len(p) > maxSetPrefixLen {
		return fmt.Errorf("%w: set prefix %q must be 1 to %d bytes", beanspike.ErrInvalidArgument, p, maxSetPrefixLen)
	}
	return prefixBytes("set prefix", p)
}

func validKeyPrefix(p string) error {
	if len(p) > maxKeyPrefixLen {
		return fmt.Errorf("%w: key prefix %q is longer than %d bytes", beanspike.ErrInvalidArgument, p, maxKeyPrefixLen)
	}
	return prefixBytes("key prefix", p)
}

// prefixBytes checks that p has only letters, digits, '_', '-' and '.'.
func prefixBytes(what, p string) error {
	for i := 0; i < len(p); i++ {
		switch ch := p[i]; {
		case 'a' <= ch && ch <= 'z', 'A' <= ch && ch <= 'Z', '0' <= ch && ch <= '9', ch == '_', ch == '-', ch == '.':
		default:
			return fmt.Errorf("%w: %s %q has invalid byte %q", beanspike.ErrInvalidArgument, what, p, ch)
		}
	}
	return nil
}

// seedHosts turns the configured host strings into client hosts.
func (c *config) seedHosts() ([]*as.Host, error) {
	hosts := make([]*as.Host, 0, len(c.hosts))
	for _, h := range c.hosts {
		h = strings.TrimSpace(h)
		if h == "" {
			continue
		}
		name, port := h, c.port
		if hn, ps, err := net.SplitHostPort(h); err == nil {
			p, err := strconv.Atoi(ps)
			if err != nil || p < 1 || p > 65535 {
				return nil, fmt.Errorf("%w: host %q has a bad port", beanspike.ErrInvalidArgument, h)
			}
			name, port = hn, p
		}
		hosts = append(hosts, as.NewHost(name, port))
	}
	if len(hosts) == 0 {
		return nil, fmt.Errorf("%w: no hosts", beanspike.ErrInvalidArgument)
	}
	return hosts, nil
}
