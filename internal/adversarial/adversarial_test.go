//go:build linux

package adversarial

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// What each attack must leave intact.
const (
	// maxRatio bounds a well-behaved client's p99 latency during an
	// attack, as a multiple of its baseline.
	maxRatio = 10
	// rssAllowance bounds how much the server's resident set may grow
	// over what it was before an attack.
	rssAllowance = 256 << 20
	// rssGuard is where the server is killed, so that an attack that
	// takes memory without bound cannot take the machine's.
	rssGuard = 1 << 30
	// maxLinesPerSecond bounds what the server logs in any one second
	// of an attack.
	maxLinesPerSecond = 5
)

// How the latency is measured.
const (
	// minSamples is the fewest round trips of each well-behaved client a
	// p99 is taken over.
	minSamples = 300
	// baselineMin is the least length of each of the two baselines.
	baselineMin = 500 * time.Millisecond
	// warmUp is how long an attack runs, once under way, before its
	// measurement starts.
	warmUp = 300 * time.Millisecond
	// attackMin and attackMax bound how long an attack is measured: at
	// least attackMin, and longer until each client made minSamples
	// round trips, but not past attackMax.
	attackMin = 1500 * time.Millisecond
	attackMax = 8 * time.Second
	// recoverWithin bounds how long fresh connections may take to be
	// served once an attack has stopped.
	recoverWithin = 15 * time.Second
)

// serverFDs is the file descriptor limit the server runs with, if the
// test process may open enough to reach it: above the remote port's
// connection cap (1,024), so that a flood of either port can pass the
// cap, and low enough that a flood of the beanstalk port, which has no
// cap, reaches the limit.
const serverFDs = 2048

// attack is one way to misbehave toward a server.
type attack struct {
	name string
	// run attacks until ctx ends, calls a.underWay once the attack is
	// under way (its connections open, its first frames sent), and
	// returns what it did, for the log.
	run func(ctx context.Context, a *attacker) (string, error)
	// check, if set, checks what the attack left, as soon as it has
	// stopped.
	check func(ctx context.Context, s *server) error
}

// attacker is what an attack works with.
type attacker struct {
	s    *server
	once sync.Once
	way  chan struct{} // closed by underWay
	sent atomic.Int64  // bytes written
}

// underWay says the attack is under way; later calls do nothing.
func (a *attacker) underWay() { a.once.Do(func() { close(a.way) }) }

// group is a server under attack and its well-behaved clients.
type group struct {
	bin     string
	tmp     string // a directory for the token file
	cfg     serverConfig
	s       *server
	clients []*sampler
	stop    func() // stops the clients
	// after holds each client's p99 over the window that followed the
	// last attack, once the server had recovered: the first of the next
	// attack's two baselines.
	after []time.Duration
}

// newGroup starts a server and its well-behaved clients: one on the
// remote port, one on the beanstalk port.
func newGroup(t *testing.T, bin string, cfg serverConfig) *group {
	g := &group{bin: bin, cfg: cfg, tmp: t.TempDir()}
	g.start(t)
	t.Cleanup(func() {
		g.stop()
		g.s.stop(t)
	})
	t.Logf("server pid %d, remote port %s, beanstalk port %s, %d file descriptors, token %t",
		g.s.pid, g.s.remote, g.s.beanstalk, g.s.maxFDs, g.s.token != "")
	return g
}

// start starts the server and the clients; it fails t if the server
// does not start.
func (g *group) start(t *testing.T) {
	s, err := startServer(g.bin, g.cfg, g.tmp)
	if err != nil {
		t.Fatal(err)
	}
	g.s = s
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	rc, bc := &sampler{name: "remote"}, &sampler{name: "beanstalk"}
	wg.Add(2)
	go func() { defer wg.Done(); remoteClient(ctx, g.s.remote, g.s.token, rc) }()
	go func() { defer wg.Done(); beanstalkClient(ctx, g.s.beanstalk, bc) }()
	g.clients = []*sampler{rc, bc}
	g.stop = func() { cancel(); wg.Wait() }
	g.after = nil
}

// restart replaces the server and its clients, so that an attack that
// failed leaves nothing behind for the next one.
func (g *group) restart(t *testing.T, why string) {
	t.Logf("%s; starting a new server", why)
	g.stop()
	g.s.kill()
	<-g.s.exited
	g.start(t)
}

// result is what one run of an attack measured.
type result struct {
	base      []time.Duration // each client's p99 before the attack
	during    []time.Duration // during it
	after     []time.Duration // and once the server had recovered
	samples   []int           // round trips measured during the attack
	fails     []failure       // failed round trips, from the attack's start to the end of the window after
	rssBefore int64
	rssPeak   int64
	killed    bool // the memory guard killed the server
	exited    bool // the server exited during the attack
	lines     int  // lines logged from the attack's start to its end
	linesMax  int  // the most lines of any one second
	burst     []logLine
	notServed error // fresh connections after the attack
	probe     error // fresh connections during the attack (not checked)
	did       string
	cpuServer time.Duration // processor time of the server during the attack
	cpuTest   time.Duration // and of the test process
	length    time.Duration // from the attack's start to its end
	err       error         // the attack's own failure
	checkErr  error         // what the attack's check found
}

// latencyOK reports whether each client's p99, during the attack and
// after it, stayed under maxRatio times its baseline.
func (r *result) latencyOK() bool {
	for i := range r.base {
		if r.during[i] >= maxRatio*r.base[i] || (i < len(r.after) && r.after[i] >= maxRatio*r.base[i]) {
			return false
		}
	}
	return true
}

// run runs atk against the group's server and checks what the package
// documentation says it must leave intact. An attack whose latency
// check alone fails is run once more, on a new server with new
// baselines, and fails the test only if it fails again: a server an
// attack slows down is slow every time, a busy machine's hiccup seldom
// twice in a row. After an attack that failed, the next one gets a new
// server.
func (g *group) run(t *testing.T, atk attack) {
	if !g.s.alive() {
		g.restart(t, fmt.Sprintf("the server had exited (%v)", g.s.waitErr))
	}
	defer func() {
		if t.Failed() && g.s.alive() {
			g.restart(t, atk.name+" failed")
		}
	}()
	var r result
	for try := 1; ; try++ {
		r = g.runOnce(t, atk)
		g.report(t, atk, r, try)
		if r.latencyOK() || r.exited || try == 2 {
			break
		}
		// Again on a new server: the one attacked may not have recovered,
		// and a baseline taken on it would hide that.
		g.restart(t, fmt.Sprintf("%s: p99 over %dx its baseline; measuring again", atk.name, maxRatio))
	}
	if r.err != nil {
		t.Errorf("the attack failed: %v", r.err)
	}
	if r.killed {
		t.Errorf("server RSS passed %d MiB over its %d MiB before the attack: killed", rssGuard>>20, r.rssBefore>>20)
	} else if r.exited {
		t.Errorf("the server exited during the attack: %v\n%s", g.s.waitErr, g.s.log.tail(30))
	}
	if r.exited {
		return
	}
	for i, c := range g.clients {
		if r.during[i] >= maxRatio*r.base[i] {
			t.Errorf("%s client: p99 %v during the attack, %.1fx its baseline %v (limit %dx; %d round trips)",
				c.name, r.during[i], ratio(r.during[i], r.base[i]), r.base[i], maxRatio, r.samples[i])
		}
		if i < len(r.after) && r.after[i] >= maxRatio*r.base[i] {
			t.Errorf("%s client: p99 %v once the attack had ended and fresh connections were served, %.1fx its baseline %v (limit %dx): the server had not recovered",
				c.name, r.after[i], ratio(r.after[i], r.base[i]), r.base[i], maxRatio)
		}
		if r.samples[i] < minSamples {
			t.Errorf("%s client: %d round trips in %v of attack, fewer than %d", c.name, r.samples[i], attackMax, minSamples)
		}
	}
	if len(r.fails) > 0 {
		t.Errorf("%d round trips of the well-behaved clients failed; first: %v", len(r.fails), r.fails[0].err)
	}
	if r.rssPeak > r.rssBefore+rssAllowance {
		t.Errorf("server RSS peaked at %d MiB, more than %d MiB over its %d MiB before the attack",
			r.rssPeak>>20, rssAllowance>>20, r.rssBefore>>20)
	}
	if r.linesMax > maxLinesPerSecond {
		var b strings.Builder
		for _, ln := range r.burst[:min(len(r.burst), 10)] {
			b.WriteString(ln.text + "\n")
		}
		t.Errorf("the server logged %d lines within one second (limit %d); the first of them:\n%s", r.linesMax, maxLinesPerSecond, b.String())
	}
	if r.notServed != nil {
		t.Errorf("fresh connections not served within %v of the attack's end: %v", recoverWithin, r.notServed)
	}
	if r.checkErr != nil {
		t.Error(r.checkErr)
	}
}

// ratio returns a / b, 0 when b is 0.
func ratio(a, b time.Duration) float64 {
	if b == 0 {
		return 0
	}
	return float64(a) / float64(b)
}

// report logs one run's figures.
func (g *group) report(t *testing.T, atk attack, r result, try int) {
	var b strings.Builder
	fmt.Fprintf(&b, "%s (run %d): %s\n", atk.name, try, r.did)
	for i, c := range g.clients {
		if i >= len(r.during) {
			continue
		}
		after := "-"
		if i < len(r.after) {
			after = fmt.Sprintf("%v (x%.2f)", r.after[i].Round(time.Microsecond), ratio(r.after[i], r.base[i]))
		}
		fmt.Fprintf(&b, "\t%-9s p99 baseline %8v  attack %8v  x%5.2f  (%d round trips, %d failed); after %s\n",
			c.name, r.base[i].Round(time.Microsecond), r.during[i].Round(time.Microsecond), ratio(r.during[i], r.base[i]),
			r.samples[i], r.failsOf(c.name), after)
	}
	probe := "served"
	if r.probe != nil {
		probe = "not served: " + strings.ReplaceAll(r.probe.Error(), "\n", "; ")
	}
	fmt.Fprintf(&b, "\tfresh connections during the attack: %s\n", probe)
	fmt.Fprintf(&b, "\tserver RSS %.1f MiB before, %.1f MiB peak (+%.1f); log %d lines, at most %d in one second; CPU over %.1fs: server %.1fs, test process %.1fs",
		float64(r.rssBefore)/(1<<20), float64(r.rssPeak)/(1<<20), float64(r.rssPeak-r.rssBefore)/(1<<20), r.lines, r.linesMax,
		r.length.Seconds(), r.cpuServer.Seconds(), r.cpuTest.Seconds())
	t.Log(b.String())
}

func (r *result) failsOf(name string) int {
	n := 0
	for _, f := range r.fails {
		if strings.HasPrefix(f.err.Error(), name+": ") {
			n++
		}
	}
	return n
}

// window measures each client's p99 over a window of at least
// baselineMin and minSamples round trips.
func (g *group) window() []time.Duration {
	from := time.Now()
	waitSamples(g.clients, from, baselineMin, 10*time.Second)
	to := time.Now()
	out := make([]time.Duration, len(g.clients))
	for i, c := range g.clients {
		ds, _ := c.window(from, to)
		out[i] = p99(ds)
	}
	return out
}

// baselines returns, for each client, the larger of two baselines: the
// window after the last attack, if any and if the attack passed its
// latency checks, and a new one. A pair of which
// one is over maxSpread times the other (the machine was busy with
// something else for a moment) is measured again, at most twice.
func (g *group) baselines(t *testing.T) []time.Duration {
	const maxSpread = 3
	b1 := g.after
	g.after = nil
	for try := 1; ; try++ {
		if b1 == nil {
			b1 = g.window()
		}
		b2 := g.window()
		out := make([]time.Duration, len(b2))
		spread := false
		for i := range b2 {
			out[i] = max(b1[i], b2[i])
			spread = spread || out[i] > maxSpread*min(b1[i], b2[i])
		}
		if !spread || try == 3 {
			return out
		}
		t.Logf("baselines %v and %v differ by more than %dx; measuring again", b1, b2, maxSpread)
		b1 = nil
	}
}

// waitSamples waits until at least least has passed since from and
// each client has made minSamples round trips since, or until most has
// passed.
func waitSamples(clients []*sampler, from time.Time, least, most time.Duration) {
	for {
		time.Sleep(20 * time.Millisecond)
		el := time.Since(from)
		if el >= most {
			return
		}
		if el < least {
			continue
		}
		enough := true
		for _, c := range clients {
			enough = enough && c.count(from) >= minSamples
		}
		if enough {
			return
		}
	}
}

// runOnce measures the baselines, runs the attack and measures it, and
// checks the server afterwards.
func (g *group) runOnce(t *testing.T, atk attack) result {
	s := g.s
	var r result
	r.base = g.baselines(t)
	r.rssBefore = s.rss()

	// The memory guard samples the server's RSS from now until the
	// server has recovered.
	guardStop := make(chan struct{})
	guardDone := make(chan struct{})
	var peak atomic.Int64
	var killed atomic.Bool
	peak.Store(r.rssBefore)
	go func() {
		defer close(guardDone)
		tick := time.NewTicker(25 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-guardStop:
				return
			case <-tick.C:
			}
			rss := s.rss()
			if rss > peak.Load() {
				peak.Store(rss)
			}
			if rss > r.rssBefore+rssGuard && !killed.Load() {
				killed.Store(true)
				s.kill()
			}
		}
	}()

	start := time.Now()
	cpuS, cpuT := cpu(strconv.Itoa(s.pid)), cpu("self")
	ctx, cancel := context.WithCancel(context.Background())
	a := &attacker{s: s, way: make(chan struct{})}
	type outcome struct {
		did string
		err error
	}
	done := make(chan outcome, 1)
	go func() {
		did, err := atk.run(ctx, a)
		done <- outcome{did, err}
	}()
	var out outcome
	finished := false
	select {
	case <-a.way:
	case out = <-done:
		finished = true
	case <-s.exited:
	case <-time.After(30 * time.Second):
		out.err = fmt.Errorf("not under way after 30s")
	}
	from := time.Now().Add(warmUp)
	if !finished && out.err == nil && s.alive() {
		time.Sleep(warmUp)
		waitSamples(g.clients, from, attackMin, attackMax)
	}
	to := time.Now()
	if !finished && out.err == nil && s.alive() {
		r.probe = probe(s)
	}
	cancel()
	if !finished {
		select {
		case out = <-done:
		case <-time.After(30 * time.Second):
			out.err = fmt.Errorf("the attack did not stop within 30s of its end")
		}
	}
	r.did, r.err = out.did, out.err
	r.cpuServer, r.cpuTest, r.length = max(cpu(strconv.Itoa(s.pid))-cpuS, 0), cpu("self")-cpuT, time.Since(start)
	if out.err == nil && finished {
		r.err = fmt.Errorf("the attack ended before it was stopped")
	}
	logTo := time.Now()
	if atk.check != nil && out.err == nil && s.alive() {
		cctx, ccancel := context.WithTimeout(context.Background(), recoverWithin)
		r.checkErr = atk.check(cctx, s)
		ccancel()
	}
	for _, c := range g.clients {
		ds, _ := c.window(from, to)
		r.during = append(r.during, p99(ds))
		r.samples = append(r.samples, len(ds))
	}

	// Recovery: fresh connections are served, and then the clients'
	// latency is what it was.
	r.exited = !s.alive()
	if !r.exited {
		rctx, rcancel := context.WithTimeout(context.Background(), recoverWithin)
		r.notServed = serves(rctx, s)
		rcancel()
		if r.notServed == nil && s.alive() {
			r.after = g.window()
			if r.latencyOK() {
				g.after = r.after
			}
		}
		r.exited = !s.alive()
	}
	close(guardStop)
	<-guardDone
	r.rssPeak, r.killed = peak.Load(), killed.Load()

	for _, c := range g.clients {
		_, fs := c.window(start, time.Now())
		for _, f := range fs {
			r.fails = append(r.fails, failure{f.at, fmt.Errorf("%s: %w", c.name, f.err)})
		}
	}
	lines := s.log.between(start, logTo)
	r.lines = len(lines)
	r.linesMax, r.burst = maxPerSecond(lines)
	return r
}

// probe tries fresh connections on both ports at once, for at most 2 s.
func probe(s *server) error {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	errs := make(chan error, 1)
	go func() { errs <- servesRemote(ctx, s) }()
	err := servesBeanstalk(ctx, s)
	return errors.Join(<-errs, err)
}

// TestServeUnderAttack runs `beanspike serve` and attacks its ports,
// each attack for a few seconds beside well-behaved clients; see the
// package documentation for the attacks and what each must leave
// intact.
func TestServeUnderAttack(t *testing.T) {
	if testing.Short() {
		t.Skip("the adversarial suite takes about two minutes; not with -short")
	}
	bin := buildBeanspike(t)
	budget := fdBudget()
	cfg := serverConfig{}
	if budget >= serverFDs+256 {
		cfg.maxFDs = serverFDs
	}
	t.Logf("the test process may open %d more file descriptors", budget)

	t.Run("remote", func(t *testing.T) {
		g := newGroup(t, bin, cfg)
		for _, atk := range remoteAttacks() {
			t.Run(atk.name, func(t *testing.T) { g.run(t, atk) })
		}
	})
	t.Run("beanstalk", func(t *testing.T) {
		g := newGroup(t, bin, cfg)
		for _, atk := range beanstalkAttacks() {
			t.Run(atk.name, func(t *testing.T) { g.run(t, atk) })
		}
	})
	t.Run("token", func(t *testing.T) {
		c := cfg
		c.token = "good-token-1f3a"
		g := newGroup(t, bin, c)
		for _, atk := range tokenAttacks() {
			t.Run(atk.name, func(t *testing.T) { g.run(t, atk) })
		}
	})
}
