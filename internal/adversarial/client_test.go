//go:build linux

package adversarial

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/beanspike/beanspike"
	"github.com/beanspike/beanspike/chanserv/remote"
)

// sample is one round trip of a well-behaved client: when it started
// and how long it took.
type sample struct {
	at time.Time
	d  time.Duration
}

// sampler records the round trips and failures of one well-behaved
// client. Its methods are safe for concurrent use.
type sampler struct {
	name string

	mu      sync.Mutex
	samples []sample
	fails   []failure
}

// failure is a round trip that failed.
type failure struct {
	at  time.Time
	err error
}

func (s *sampler) add(at time.Time, d time.Duration) {
	s.mu.Lock()
	s.samples = append(s.samples, sample{at, d})
	s.mu.Unlock()
}

func (s *sampler) fail(at time.Time, err error) {
	s.mu.Lock()
	s.fails = append(s.fails, failure{at, err})
	s.mu.Unlock()
}

// window returns the latencies of the round trips that started in
// [from, to), sorted, and the failures that happened then.
func (s *sampler) window(from, to time.Time) ([]time.Duration, []failure) {
	s.mu.Lock()
	defer s.mu.Unlock()
	i, _ := slices.BinarySearchFunc(s.samples, from, func(x sample, t time.Time) int { return x.at.Compare(t) })
	var ds []time.Duration
	for _, x := range s.samples[i:] {
		if !x.at.Before(to) {
			break
		}
		ds = append(ds, x.d)
	}
	slices.Sort(ds)
	var fs []failure
	for _, f := range s.fails {
		if !f.at.Before(from) && f.at.Before(to) {
			fs = append(fs, f)
		}
	}
	return ds, fs
}

// count returns how many round trips started at or after from.
func (s *sampler) count(from time.Time) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	i, _ := slices.BinarySearchFunc(s.samples, from, func(x sample, t time.Time) int { return x.at.Compare(t) })
	return len(s.samples) - i
}

// p99 returns the 99th percentile of sorted latencies, 0 for none.
func p99(sorted []time.Duration) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	return sorted[min(len(sorted)-1, len(sorted)*99/100)]
}

// callTimeout bounds each call of a well-behaved client: a call that
// takes longer is a failure.
const callTimeout = 10 * time.Second

// period is how often a well-behaved client starts a round trip (at
// once after the last one if that took longer): a client that never
// paused would measure its own fight for the processor, not the server.
const period = 4 * time.Millisecond

// remoteClient makes put, reserve and delete round trips on the remote
// port, one at a time, in a tube of its own, until ctx ends.
func remoteClient(ctx context.Context, addr, token string, s *sampler) {
	var opts []remote.Option
	if token != "" {
		opts = append(opts, remote.WithToken(token))
	}
	var q *remote.Queue
	defer func() {
		if q != nil {
			q.Close()
		}
	}()
	body := []byte(strings.Repeat("r", 64))
	tick := time.NewTicker(period)
	defer tick.Stop()
	for ctx.Err() == nil {
		if q == nil {
			dctx, cancel := context.WithTimeout(ctx, callTimeout)
			var err error
			q, err = remote.DialTCP(dctx, addr, opts...)
			cancel()
			if err != nil {
				q = nil
				if ctx.Err() == nil {
					s.fail(time.Now(), fmt.Errorf("dial: %w", err))
					sleep(ctx, 50*time.Millisecond)
				}
				continue
			}
		}
		start := time.Now()
		if err := remoteRoundTrip(ctx, q, body); err != nil {
			if ctx.Err() == nil {
				s.fail(start, err)
				sleep(ctx, 50*time.Millisecond)
			}
			continue
		}
		s.add(start, time.Since(start))
		wait(ctx, tick)
	}
}

// wait waits for the next tick or until ctx ends.
func wait(ctx context.Context, tick *time.Ticker) {
	select {
	case <-tick.C:
	case <-ctx.Done():
	}
}

// remoteRoundTrip puts a job, reserves it and deletes it.
func remoteRoundTrip(ctx context.Context, q beanspike.Queue, body []byte) error {
	ctx, cancel := context.WithTimeout(ctx, callTimeout)
	defer cancel()
	const tube = "good-remote"
	id, err := q.Put(ctx, tube, body)
	if err != nil {
		return fmt.Errorf("put: %w", err)
	}
	j, err := q.Reserve(ctx, tube)
	if err != nil {
		return fmt.Errorf("reserve: %w", err)
	}
	if j.ID != id {
		return fmt.Errorf("reserved job %d, put %d", j.ID, id)
	}
	if err := q.Delete(ctx, id); err != nil {
		return fmt.Errorf("delete: %w", err)
	}
	return nil
}

// beanstalkClient makes put, reserve and delete round trips on the
// beanstalk port, one at a time, in a tube of its own, until ctx ends.
func beanstalkClient(ctx context.Context, addr string, s *sampler) {
	var c *bsConn
	defer func() {
		if c != nil {
			c.Close()
		}
	}()
	tick := time.NewTicker(period)
	defer tick.Stop()
	for ctx.Err() == nil {
		if c == nil {
			var err error
			if c, err = dialBeanstalk(ctx, addr); err == nil {
				err = c.setup("good-beanstalk")
			}
			if err != nil {
				if c != nil {
					c.Close()
					c = nil
				}
				if ctx.Err() == nil {
					s.fail(time.Now(), fmt.Errorf("dial: %w", err))
					sleep(ctx, 50*time.Millisecond)
				}
				continue
			}
		}
		start := time.Now()
		if err := c.roundTrip(); err != nil {
			c.Close()
			c = nil
			if ctx.Err() == nil {
				s.fail(start, err)
				sleep(ctx, 50*time.Millisecond)
			}
			continue
		}
		s.add(start, time.Since(start))
		wait(ctx, tick)
	}
}

// bsConn is a beanstalk client connection.
type bsConn struct {
	net.Conn
	br   *bufio.Reader
	stop func() bool
}

// dialBeanstalk connects to a beanstalk port; the connection is closed
// when ctx ends.
func dialBeanstalk(ctx context.Context, addr string) (*bsConn, error) {
	var d net.Dialer
	dctx, cancel := context.WithTimeout(ctx, callTimeout)
	defer cancel()
	nc, err := d.DialContext(dctx, "tcp", addr)
	if err != nil {
		return nil, err
	}
	c := &bsConn{Conn: nc, br: bufio.NewReader(nc)}
	c.stop = context.AfterFunc(ctx, func() { nc.Close() })
	return c, nil
}

// Close closes the connection.
func (c *bsConn) Close() error {
	c.stop()
	return c.Conn.Close()
}

// do sends a command and returns the first line of the reply.
func (c *bsConn) do(cmd string) (string, error) {
	c.SetDeadline(time.Now().Add(callTimeout))
	if _, err := c.Write([]byte(cmd)); err != nil {
		return "", err
	}
	line, err := c.br.ReadString('\n')
	if err != nil {
		return "", err
	}
	return strings.TrimRight(line, "\r\n"), nil
}

// setup makes the connection use and watch tube, and only it.
func (c *bsConn) setup(tube string) error {
	for _, cmd := range []struct{ send, want string }{
		{"use " + tube + "\r\n", "USING " + tube},
		{"watch " + tube + "\r\n", "WATCHING 2"},
		{"ignore default\r\n", "WATCHING 1"},
	} {
		if got, err := c.do(cmd.send); err != nil || got != cmd.want {
			return fmt.Errorf("%q: got %q, %v", strings.TrimSpace(cmd.send), got, err)
		}
	}
	return nil
}

// roundTrip puts a job, reserves it and deletes it.
func (c *bsConn) roundTrip() error {
	const body = "hello"
	got, err := c.do("put 0 0 60 5\r\n" + body + "\r\n")
	if err != nil {
		return fmt.Errorf("put: %w", err)
	}
	var id uint64
	if _, err := fmt.Sscanf(got, "INSERTED %d", &id); err != nil {
		return fmt.Errorf("put: %q", got)
	}
	got, err = c.do("reserve-with-timeout 10\r\n")
	if err != nil {
		return fmt.Errorf("reserve: %w", err)
	}
	if want := fmt.Sprintf("RESERVED %d 5", id); got != want {
		return fmt.Errorf("reserve: got %q, want %q", got, want)
	}
	if b, err := c.br.ReadString('\n'); err != nil || b != body+"\r\n" {
		return fmt.Errorf("reserve: body %q, %v", b, err)
	}
	if got, err := c.do(fmt.Sprintf("delete %d\r\n", id)); err != nil || got != "DELETED" {
		return fmt.Errorf("delete: %q, %v", got, err)
	}
	return nil
}

// currentConns asks for the server's stats and returns its
// current-connections.
func (c *bsConn) currentConns() (int, error) {
	got, err := c.do("stats\r\n")
	if err != nil {
		return 0, err
	}
	var size int
	if _, err := fmt.Sscanf(got, "OK %d", &size); err != nil {
		return 0, fmt.Errorf("stats: %q", got)
	}
	body := make([]byte, size+2)
	if _, err := io.ReadFull(c.br, body); err != nil {
		return 0, fmt.Errorf("stats: %w", err)
	}
	for line := range strings.Lines(string(body)) {
		if v, ok := strings.CutPrefix(line, "current-connections: "); ok {
			return strconv.Atoi(strings.TrimSpace(v))
		}
	}
	return 0, fmt.Errorf("stats without current-connections: %q", body)
}

// sleep waits for d or until ctx ends.
func sleep(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
	}
}

// serves checks that fresh connections on both ports are served: a
// remote session that puts and deletes a job, and a beanstalk connection
// that does the same. It tries again until ctx ends, and returns the last
// errors then.
func serves(ctx context.Context, s *server) error {
	var err error
	for {
		err = errors.Join(servesRemote(ctx, s), servesBeanstalk(ctx, s))
		if err == nil || ctx.Err() != nil {
			return err
		}
		sleep(ctx, 100*time.Millisecond)
	}
}

func servesRemote(ctx context.Context, s *server) error {
	var opts []remote.Option
	if s.token != "" {
		opts = append(opts, remote.WithToken(s.token))
	}
	cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	q, err := remote.DialTCP(cctx, s.remote, opts...)
	if err != nil {
		return fmt.Errorf("remote port: %w", err)
	}
	defer q.Close()
	id, err := q.Put(cctx, fmt.Sprintf("fresh-%d", time.Now().UnixNano()), []byte("x"))
	if err != nil {
		return fmt.Errorf("remote port: put: %w", err)
	}
	if err := q.Delete(cctx, id); err != nil {
		return fmt.Errorf("remote port: delete: %w", err)
	}
	return nil
}

func servesBeanstalk(ctx context.Context, s *server) error {
	cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	c, err := dialBeanstalk(cctx, s.beanstalk)
	if err != nil {
		return fmt.Errorf("beanstalk port: %w", err)
	}
	defer c.Close()
	if err := c.setup(fmt.Sprintf("fresh-%d", time.Now().UnixNano())); err != nil {
		return fmt.Errorf("beanstalk port: %w", err)
	}
	if err := c.roundTrip(); err != nil {
		return fmt.Errorf("beanstalk port: %w", err)
	}
	return nil
}
