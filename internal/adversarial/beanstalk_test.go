//go:build linux

package adversarial

import (
	"bytes"
	"context"
	"fmt"
	mrand "math/rand/v2"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// beanstalkAttacks are the attacks on the beanstalk port.
func beanstalkAttacks() []attack {
	return []attack{
		{name: "garbage", run: beanstalkGarbage},
		{name: "huge_put", run: beanstalkHugePut},
		{name: "no_newline", run: beanstalkNoNewline},
		{name: "slow_reader", run: beanstalkSlowReader, check: connsReleased},
		{name: "connection_flood", run: beanstalkConnFlood},
	}
}

// beanstalkGarbage sends random bytes, a line end among them now and
// then, on eight connections, four of which read the replies (so that
// the server goes on parsing) and four not.
func beanstalkGarbage(ctx context.Context, a *attacker) (string, error) {
	const conns = 8
	chunks := make([][]byte, conns)
	for w := range chunks {
		rng := mrand.New(mrand.NewPCG(uint64(w), 3))
		b := garbage(rng, 16<<10)
		for range 16 {
			b[rng.IntN(len(b))] = '\n'
		}
		chunks[w] = b
	}
	a.floodAndRead(ctx, a.s.beanstalk, conns, conns/2, floodRate, nil, func(w, _ int) []byte { return chunks[w] })
	return fmt.Sprintf("%s of garbage", mib(a.sent.Load())), nil
}

// beanstalkHugePut declares put bodies of 4 GiB and sends data for them,
// on two connections; declares bodies of 2^64 bytes, again and again,
// on two more; and the largest body taken, and sends none of it, on two
// more.
func beanstalkHugePut(ctx context.Context, a *attacker) (string, error) {
	var wg sync.WaitGroup
	wg.Add(3)
	go func() {
		defer wg.Done()
		chunk := bytes.Repeat([]byte("b"), 64<<10)
		a.floodAndRead(ctx, a.s.beanstalk, 2, 2, bulkRate, []byte("put 0 0 1 4294967295\r\n"), func(int, int) []byte { return chunk })
	}()
	go func() {
		defer wg.Done()
		lines := []byte(strings.Repeat("put 0 0 1 18446744073709551616\r\n", 256))
		a.floodAndRead(ctx, a.s.beanstalk, 2, 2, floodRate, nil, func(int, int) []byte { return lines })
	}()
	go func() {
		defer wg.Done()
		a.cycles(ctx, a.s.beanstalk, 2, func(_ int, c net.Conn) {
			go drain(c)
			if _, err := c.Write([]byte("put 0 0 1 65535\r\n")); err == nil {
				a.underWay()
				<-ctx.Done()
			}
		})
	}()
	wg.Wait()
	return fmt.Sprintf("%s of put bodies and lines", mib(a.sent.Load())), nil
}

// beanstalkNoNewline sends lines that never end, on four connections
// each: bytes without a line end, and commands without one.
func beanstalkNoNewline(ctx context.Context, a *attacker) (string, error) {
	xs := bytes.Repeat([]byte("x"), 64<<10)
	puts := bytes.Repeat([]byte("put 0 0 1 5 "), 64<<10/12)
	a.floodAndRead(ctx, a.s.beanstalk, 8, 8, bulkRate, nil, func(w, _ int) []byte {
		if w%2 == 1 {
			return puts
		}
		return xs
	})
	return fmt.Sprintf("%s without a line end", mib(a.sent.Load())), nil
}

// beanstalkSlowReader puts a job of the largest body the beanstalk port
// takes, then pipelines peeks at it on 32 connections that never read.
func beanstalkSlowReader(ctx context.Context, a *attacker) (string, error) {
	c, err := dialBeanstalk(ctx, a.s.beanstalk)
	if err != nil {
		return "", err
	}
	defer c.Close()
	const size = 65535 // the beanstalk port's default limit
	got, err := c.do(fmt.Sprintf("put 0 0 60 %d\r\n%s\r\n", size, strings.Repeat("p", size)))
	var id uint64
	if _, serr := fmt.Sscanf(got, "INSERTED %d", &id); err != nil || serr != nil {
		return "", fmt.Errorf("put the job to peek at: %q, %v", got, err)
	}
	defer c.do(fmt.Sprintf("delete %d\r\n", id))
	peeks := bytes.Repeat([]byte(fmt.Sprintf("peek %d\r\n", id)), 1000)
	var held atomic.Int64
	workers(32, func(int) {
		c, err := a.dial(ctx, a.s.beanstalk)
		if err != nil {
			return
		}
		defer c.Close()
		held.Add(1)
		for ctx.Err() == nil {
			c.SetWriteDeadline(time.Now().Add(100 * time.Millisecond))
			if _, err := c.Write(peeks); err != nil {
				a.underWay() // the server stopped reading: the replies filled the buffers
				<-ctx.Done()
				return
			}
		}
	})
	return fmt.Sprintf("%d connections pipelined peeks at a job of %d bytes, %s, reading nothing", held.Load(), size, mib(a.sent.Load())), nil
}

// beanstalkConnFlood opens, if the test process may, more connections
// to the beanstalk port than the server has file descriptors, and holds
// them: the port has no cap of its own.
func beanstalkConnFlood(ctx context.Context, a *attacker) (string, error) {
	want := a.s.maxFDs + 128
	if a.s.maxFDs <= 0 || a.s.maxFDs > 1<<14 {
		want = 2048 + 128
	}
	n := min(want, fdBudget())
	opened, failed := a.connFlood(ctx, a.s.beanstalk, n)
	did := fmt.Sprintf("%d connections held (%d failed to open), the server's file descriptors being %d", opened, failed, a.s.maxFDs)
	if n < want {
		did += fmt.Sprintf("; bounded by the test's file descriptors to %d of %d", n, want)
	}
	return did, nil
}

// connsReleased checks that the server lets go of an attacker's
// connections once it has hung up: within 2 s, the beanstalk port counts
// no more connections than the well-behaved client's and the one asking.
func connsReleased(ctx context.Context, s *server) error {
	c, err := dialBeanstalk(ctx, s.beanstalk)
	if err != nil {
		return err
	}
	defer c.Close()
	for deadline := time.Now().Add(2 * time.Second); ; {
		n, err := c.currentConns()
		if err != nil {
			return err
		}
		if n <= 2 {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("the beanstalk port still serves %d connections 2s after the attacker hung up (want at most 2: the well-behaved client's and the one asking)", n)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
