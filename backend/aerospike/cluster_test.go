package aerospike

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	as "github.com/aerospike/aerospike-client-go/v8"

	"github.com/beanspike/beanspike"
)

// Environment of the cluster tests.
const (
	// envStart names the script that starts a real Aerospike node:
	// start DIR, with AEROSPIKE_PORT, AEROSPIKE_RF, AEROSPIKE_SEED_PORT
	// and AEROSPIKE_DATA_SIZE in its environment, leaving the node's pid
	// in DIR/asd.pid. Without it the cluster tests skip.
	envStart = "BEANSPIKE_AEROSPIKE_START"
	// envClusterPort is the first service port the cluster tests try for
	// their nodes (each node takes four consecutive ports); they move up
	// past ports in use. Defaults to defaultClusterPort.
	envClusterPort = "BEANSPIKE_AEROSPIKE_CLUSTER_PORT"
)

const (
	defaultClusterPort = 3100
	clusterNodes       = 3
	clusterRF          = 2
)

// asNode is one node of a cluster started by a test.
type asNode struct {
	dir  string
	port int
	pid  int // 0 when the node is not running
}

// asCluster is a cluster of real Aerospike nodes on loopback, started
// with the script named by envStart.
type asCluster struct {
	t     *testing.T
	start string
	mu    sync.Mutex
	nodes []*asNode
}

// startCluster starts n nodes joined as one cluster, each with a
// directory of its own, and waits until they form it with no migrations
// left. They are killed when t ends, whatever happens.
func startCluster(ctx context.Context, t *testing.T, n int) *asCluster {
	t.Helper()
	start := os.Getenv(envStart)
	if start == "" {
		t.Skipf("cluster test needs a real Aerospike server: set %s to its start script (e.g. ../shared/aerospike/start)", envStart)
	}
	if fi, err := os.Stat(start); err != nil || fi.IsDir() || fi.Mode()&0o111 == 0 {
		t.Fatalf("%s=%q is not an executable script (%v)", envStart, start, err)
	}
	base := defaultClusterPort
	if s := os.Getenv(envClusterPort); s != "" {
		p, err := strconv.Atoi(s)
		if err != nil || p < 1024 || p > 65000 {
			t.Fatalf("%s=%q is not a port", envClusterPort, s)
		}
		base = p
	}
	c := &asCluster{t: t, start: start}
	t.Cleanup(c.killAll)
	root := t.TempDir()
	port := base
	for i := range n {
		port = freePorts(t, port)
		c.nodes = append(c.nodes, &asNode{dir: filepath.Join(root, fmt.Sprintf("node%d", i)), port: port})
		port += 10
	}
	// The first node alone, then the others joining it at once.
	if err := c.startNode(ctx, 0, 0); err != nil {
		t.Fatal(err)
	}
	errs := make(chan error, n)
	for i := 1; i < n; i++ {
		go func() { errs <- c.startNode(ctx, i, c.nodes[0].port) }()
	}
	for i := 1; i < n; i++ {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	if err := c.waitSettled(ctx, c.all(), n); err != nil {
		t.Fatal(err)
	}
	t.Logf("aerospike target: real %d-node cluster (replication factor %d) on 127.0.0.1 ports %v", n, clusterRF, c.ports(c.all()))
	return c
}

// freePorts returns the first service port from p up, in steps of ten,
// whose four ports are all free on loopback.
func freePorts(t *testing.T, p int) int {
	t.Helper()
	for ; p+3 <= 65535; p += 10 {
		free := true
		for q := p; q < p+4 && free; q++ {
			l, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(q)))
			if err != nil {
				free = false
				continue
			}
			_ = l.Close()
		}
		if free {
			return p
		}
	}
	t.Fatalf("no four free ports from %d up", p)
	return 0
}

// all returns the indexes of every node.
func (c *asCluster) all() []int {
	ix := make([]int, len(c.nodes))
	for i := range ix {
		ix[i] = i
	}
	return ix
}

// others returns the indexes of every node but i.
func (c *asCluster) others(i int) []int {
	return slices.DeleteFunc(c.all(), func(j int) bool { return j == i })
}

func (c *asCluster) ports(ix []int) []int {
	ps := make([]int, len(ix))
	for k, i := range ix {
		ps[k] = c.nodes[i].port
	}
	return ps
}

// seeds returns the service addresses of every node, as seed hosts.
func (c *asCluster) seeds() []string {
	var hs []string
	for _, nd := range c.nodes {
		hs = append(hs, net.JoinHostPort("127.0.0.1", strconv.Itoa(nd.port)))
	}
	return hs
}

// startNode starts node i in its directory, joining the node whose
// service port is seed unless seed is 0.
func (c *asCluster) startNode(ctx context.Context, i, seed int) error {
	nd := c.nodes[i]
	cmd := exec.CommandContext(ctx, c.start, nd.dir)
	cmd.Env = append(os.Environ(),
		"AEROSPIKE_PORT="+strconv.Itoa(nd.port),
		"AEROSPIKE_RF="+strconv.Itoa(clusterRF),
		"AEROSPIKE_DATA_SIZE=512M",
		"AEROSPIKE_SEED_PORT=",
	)
	if seed != 0 {
		cmd.Env = append(cmd.Env, "AEROSPIKE_SEED_PORT="+strconv.Itoa(seed))
	}
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	cmd.WaitDelay = time.Second
	err := cmd.Run()
	// Note the pid even after a failure, so that cleanup can end it.
	pid, perr := readPid(nd.dir)
	if perr == nil && isNode(pid, nd.dir) {
		c.mu.Lock()
		nd.pid = pid
		c.mu.Unlock()
	}
	if err != nil {
		return fmt.Errorf("starting node %d on port %d: %v\n%s", i, nd.port, err, out.String())
	}
	if perr != nil {
		return fmt.Errorf("node %d on port %d: %v", i, nd.port, perr)
	}
	return nil
}

func readPid(dir string) (int, error) {
	b, err := os.ReadFile(filepath.Join(dir, "asd.pid"))
	if err != nil {
		return 0, err
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || pid <= 0 {
		return 0, fmt.Errorf("bad pid file %s: %q", filepath.Join(dir, "asd.pid"), b)
	}
	return pid, nil
}

// isNode tells whether pid is a live asd started with the configuration
// in dir.
func isNode(pid int, dir string) bool {
	cmdline, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	return err == nil && bytes.Contains(cmdline, []byte(filepath.Join(dir, "aerospike.conf")))
}

// exited tells whether process pid has finished exiting: it is gone, or
// a zombie whose last thread is gone (the first thread of a killed
// process is a zombie while the others still close its sockets).
func exited(pid int) bool {
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return true
	}
	var state, threads string
	for _, line := range strings.Split(string(status), "\n") {
		if v, ok := strings.CutPrefix(line, "State:"); ok {
			state = strings.TrimSpace(v)
		} else if v, ok := strings.CutPrefix(line, "Threads:"); ok {
			threads = strings.TrimSpace(v)
		}
	}
	return (strings.HasPrefix(state, "Z") || strings.HasPrefix(state, "X")) && threads == "1"
}

// kill ends node i with SIGKILL, as a crash would, and waits until the
// process is gone.
func (c *asCluster) kill(ctx context.Context, i int) error {
	nd := c.nodes[i]
	c.mu.Lock()
	pid := nd.pid
	nd.pid = 0
	c.mu.Unlock()
	if pid == 0 || !isNode(pid, nd.dir) {
		return fmt.Errorf("node %d (port %d) is not running", i, nd.port)
	}
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		return fmt.Errorf("kill node %d (pid %d): %w", i, pid, err)
	}
	for !exited(pid) {
		select {
		case <-ctx.Done():
			return fmt.Errorf("node %d (pid %d) still running after SIGKILL: %w", i, pid, ctx.Err())
		case <-time.After(20 * time.Millisecond):
		}
	}
	return nil
}

// killAll kills every node still running.
func (c *asCluster) killAll() {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for i, nd := range c.nodes {
		c.mu.Lock()
		pid := nd.pid
		c.mu.Unlock()
		if pid != 0 {
			if err := c.kill(ctx, i); err != nil {
				c.t.Errorf("cleanup: %v", err)
			}
		}
	}
}

// info asks the node at port for the info values of names.
func info(port int, names ...string) (map[string]string, error) {
	pol := as.NewClientPolicy()
	pol.Timeout = time.Second
	conn, err := as.NewConnection(pol, as.NewHost("127.0.0.1", port))
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	if err := conn.SetTimeout(time.Now().Add(2*time.Second), 2*time.Second); err != nil {
		return nil, err
	}
	m, err := conn.RequestInfo(names...)
	if err != nil {
		return nil, err
	}
	return m, nil
}

// infoFields splits an info value of the form a=1;b=2.
func infoFields(v string) map[string]string {
	m := map[string]string{}
	for _, kv := range strings.Split(v, ";") {
		if k, v, ok := strings.Cut(kv, "="); ok {
			m[k] = v
		}
	}
	return m
}

// waitSettled waits until each of the nodes ix reports a cluster of size
// nodes, with integrity and no migrations left.
func (c *asCluster) waitSettled(ctx context.Context, ix []int, size int) error {
	var last []string
	for {
		last = last[:0]
		ok := true
		for _, i := range ix {
			port := c.nodes[i].port
			m, err := info(port, "statistics")
			if err != nil {
				ok = false
				last = append(last, fmt.Sprintf("%d: %v", port, err))
				continue
			}
			st := infoFields(m["statistics"])
			last = append(last, fmt.Sprintf("%d: cluster_size=%s cluster_integrity=%s migrate_partitions_remaining=%s",
				port, st["cluster_size"], st["cluster_integrity"], st["migrate_partitions_remaining"]))
			if st["cluster_size"] != strconv.Itoa(size) || st["cluster_integrity"] != "true" ||
				st["migrate_partitions_remaining"] != "0" {
				ok = false
			}
		}
		if ok {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("cluster of %d nodes not settled: %s: %w", size, strings.Join(last, "; "), ctx.Err())
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// waitSize waits until each of the nodes ix reports a cluster of size
// nodes, migrations or not.
func (c *asCluster) waitSize(ctx context.Context, ix []int, size int) error {
	want := strconv.Itoa(size)
	for {
		ok := true
		var last []string
		for _, i := range ix {
			m, err := info(c.nodes[i].port, "statistics")
			if err != nil {
				ok = false
				last = append(last, err.Error())
				continue
			}
			cs := infoFields(m["statistics"])["cluster_size"]
			last = append(last, fmt.Sprintf("%d: cluster_size=%s", c.nodes[i].port, cs))
			ok = ok && cs == want
		}
		if ok {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("cluster size not %d: %s: %w", size, strings.Join(last, "; "), ctx.Err())
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// objects returns the number of records node i holds in the test
// namespace, masters and replicas.
func (c *asCluster) objects(i int) (string, error) {
	m, err := info(c.nodes[i].port, "namespace/"+DefaultNamespace)
	if err != nil {
		return "", err
	}
	return infoFields(m["namespace/"+DefaultNamespace])["objects"], nil
}

// clusterLoad is a run of producers and consumers, each a process of its
// own, against a cluster while disrupt does something to it once a third
// of the jobs are acknowledged.
type clusterLoad struct {
	jobs      int
	producers int
	consumers int
	ttr       time.Duration
	// backlog holds producers back while that many acknowledged jobs
	// wait to be reserved, as a steady system would: index records, which
	// are written whole, stay small.
	backlog int
	// produceFor bounds the time the producers run: on a slow machine
	// they stop before jobs are put, and the disruption comes at a third
	// of that time if a third of the jobs are not acknowledged by then.
	produceFor time.Duration
	deadline   time.Duration // for the whole run, drain included
	// stall ends the drain when no job was delivered for the first time
	// for that long: the jobs still missing are then reported.
	stall   time.Duration
	disrupt func(ctx context.Context, c *asCluster) error
}

// tally is what the producers and consumers saw.
type tally struct {
	mu       sync.Mutex
	acked    map[beanspike.ID]int    // put acknowledged: job number
	reserved map[beanspike.ID]int    // reservations
	bodies   map[beanspike.ID]string // body of the first reservation
	deleted  map[beanspike.ID]int    // acknowledged deletes
	missing  int                     // acknowledged, never reserved
	lastNew  time.Time               // when a job was first reserved last
	// The longest time between two jobs first reserved, and when it
	// ended.
	gap    time.Duration
	gapEnd time.Time
	// The same for acknowledged puts.
	lastAck   time.Time
	ackGap    time.Duration
	ackGapEnd time.Time

	putFails, reserveFails, deleteFails atomic.Int64
	// The longest call of each kind, successful or not (ns).
	slowestPut, slowestReserve, slowestDelete atomic.Int64
	// The first failed calls, for the log.
	failures []string
}

// failed records a failed call that the load goes on after.
func (tl *tally) failed(began time.Time, call string, d time.Duration, err error) {
	tl.mu.Lock()
	defer tl.mu.Unlock()
	if len(tl.failures) < 8 {
		// The first line only: the client chains the errors of every try.
		msg, _, _ := strings.Cut(err.Error(), "\n")
		tl.failures = append(tl.failures, fmt.Sprintf("at %v %s took %v: %s",
			time.Since(began).Round(time.Millisecond), call, d.Round(time.Millisecond), msg))
	}
}

// ack records job number n acknowledged as id; an ID acknowledged
// before is an error.
func (tl *tally) ack(id beanspike.ID, n int) error {
	tl.mu.Lock()
	defer tl.mu.Unlock()
	if m, ok := tl.acked[id]; ok {
		return fmt.Errorf("Put returned ID %d for job number %d and for job number %d", id, m, n)
	}
	tl.acked[id] = n
	now := time.Now()
	if d := now.Sub(tl.lastAck); d > tl.ackGap {
		tl.ackGap, tl.ackGapEnd = d, now
	}
	tl.lastAck = now
	if tl.reserved[id] == 0 {
		tl.missing++
	}
	return nil
}

// took records d as a call's duration in slowest.
func took(slowest *atomic.Int64, d time.Duration) {
	for {
		old := slowest.Load()
		if int64(d) <= old || slowest.CompareAndSwap(old, int64(d)) {
			return
		}
	}
}

func (tl *tally) reserve(j *beanspike.Job) {
	tl.mu.Lock()
	defer tl.mu.Unlock()
	tl.reserved[j.ID]++
	if tl.reserved[j.ID] == 1 {
		now := time.Now()
		if d := now.Sub(tl.lastNew); d > tl.gap {
			tl.gap, tl.gapEnd = d, now
		}
		tl.lastNew = now
		tl.bodies[j.ID] = string(j.Body)
		if _, ok := tl.acked[j.ID]; ok {
			tl.missing--
		}
	}
}

func (tl *tally) deleteDone(id beanspike.ID) {
	tl.mu.Lock()
	defer tl.mu.Unlock()
	tl.deleted[id]++
}

func (tl *tally) missingNow() int {
	tl.mu.Lock()
	defer tl.mu.Unlock()
	return tl.missing
}

// stalled tells whether acknowledged jobs are missing and no job was
// reserved for the first time in the last d.
func (tl *tally) stalled(d time.Duration) bool {
	tl.mu.Lock()
	defer tl.mu.Unlock()
	return tl.missing > 0 && time.Since(tl.lastNew) > d
}

func (tl *tally) ackedNow() int {
	tl.mu.Lock()
	defer tl.mu.Unlock()
	return len(tl.acked)
}

// backlog is the number of acknowledged jobs not yet reserved.
func (tl *tally) backlog() int { return tl.missingNow() }

func jobBody(n int) []byte { return []byte(fmt.Sprintf("cluster job %d", n)) }

// run starts the cluster, runs the load and checks that every
// acknowledged job was delivered at least once, with the body it was put
// with.
func (w clusterLoad) run(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), w.deadline)
	defer cancel()
	c := startCluster(ctx, t, clusterNodes)
	// The test counts failed calls itself: the queues' reports of the
	// store going out of reach and back, hundreds of them once a node
	// dies, are left out.
	opts := []Option{WithHosts(c.seeds()...), WithSetPrefix(uniquePrefix(t)), WithLogger(slog.New(slog.DiscardHandler))}
	newProcess := func() (*Queue, error) {
		nctx, ncancel := context.WithTimeout(ctx, 20*time.Second)
		defer ncancel()
		q, err := New(nctx, opts...)
		if err != nil {
			return nil, err
		}
		t.Cleanup(func() { _ = q.Close() })
		return q, nil
	}
	const tube = "cluster"
	tl := &tally{
		acked:    map[beanspike.ID]int{},
		reserved: map[beanspike.ID]int{},
		bodies:   map[beanspike.ID]string{},
		deleted:  map[beanspike.ID]int{},
	}
	var (
		errMu sync.Mutex
		errs  []error
	)
	fail := func(err error) {
		errMu.Lock()
		defer errMu.Unlock()
		if len(errs) < 20 {
			errs = append(errs, err)
		}
		cancel()
	}
	// Every process connects before the load begins.
	producers := make([]*Queue, w.producers)
	consumers := make([]*Queue, w.consumers)
	for i := range producers {
		q, err := newProcess()
		if err != nil {
			t.Fatalf("New (producer %d): %v", i, err)
		}
		producers[i] = q
	}
	for i := range consumers {
		q, err := newProcess()
		if err != nil {
			t.Fatalf("New (consumer %d): %v", i, err)
		}
		consumers[i] = q
	}

	began := time.Now()
	tl.lastNew, tl.lastAck = began, began
	third := make(chan struct{})
	var thirdOnce sync.Once
	var disrupted, disruptAt time.Duration
	disruptOK := false
	disruptDone := make(chan struct{})
	go func() {
		defer close(disruptDone)
		select {
		case <-third:
		case <-time.After(w.produceFor / 3):
		case <-ctx.Done():
			return
		}
		at := time.Since(began)
		if err := w.disrupt(ctx, c); err != nil {
			fail(fmt.Errorf("disrupting the cluster: %w", err))
			return
		}
		disruptAt, disrupted, disruptOK = at, time.Since(began)-at, true
	}()

	// Progress, sampled every five seconds for the log.
	var progress []string
	progressDone := make(chan struct{})
	go func() {
		defer close(progressDone)
		tick := time.NewTicker(5 * time.Second)
		defer tick.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
			tl.mu.Lock()
			progress = append(progress, fmt.Sprintf("%.0fs: %d/%d", time.Since(began).Seconds(), len(tl.acked), len(tl.reserved)))
			tl.mu.Unlock()
		}
	}()

	var next atomic.Int64
	var pwg sync.WaitGroup
	for _, q := range producers {
		pwg.Add(1)
		go func() {
			defer pwg.Done()
			for {
				for tl.backlog() >= w.backlog && ctx.Err() == nil {
					time.Sleep(2 * time.Millisecond)
				}
				if time.Since(began) > w.produceFor {
					return
				}
				n := int(next.Add(1))
				if n > w.jobs || ctx.Err() != nil {
					return
				}
				pctx, pcancel := context.WithTimeout(ctx, 10*time.Second)
				t0 := time.Now()
				id, err := q.Put(pctx, tube, jobBody(n), beanspike.WithTTR(w.ttr))
				took(&tl.slowestPut, time.Since(t0))
				pcancel()
				switch {
				case err == nil:
					if err := tl.ack(id, n); err != nil {
						fail(err)
						return
					}
					if tl.ackedNow() >= w.jobs/3 {
						thirdOnce.Do(func() { close(third) })
					}
				case ctx.Err() != nil:
					return
				case errors.Is(err, beanspike.ErrUnavailable), errors.Is(err, context.DeadlineExceeded):
					tl.putFails.Add(1) // in doubt: not acknowledged
					tl.failed(began, "Put", time.Since(t0), err)
				default:
					fail(fmt.Errorf("Put: %w", err))
					return
				}
			}
		}()
	}
	var producing atomic.Bool
	producing.Store(true)
	go func() { pwg.Wait(); producing.Store(false) }()

	var cwg sync.WaitGroup
	for _, q := range consumers {
		cwg.Add(1)
		go func() {
			defer cwg.Done()
			for ctx.Err() == nil && (producing.Load() || tl.missingNow() > 0 && !tl.stalled(w.stall)) {
				rctx, rcancel := context.WithTimeout(ctx, 500*time.Millisecond)
				t0 := time.Now()
				j, err := q.Reserve(rctx, tube)
				took(&tl.slowestReserve, time.Since(t0))
				rcancel()
				switch {
				case err == nil:
				case ctx.Err() != nil:
					return
				case errors.Is(err, context.DeadlineExceeded):
					continue
				case errors.Is(err, beanspike.ErrUnavailable):
					tl.reserveFails.Add(1)
					tl.failed(began, "Reserve", time.Since(t0), err)
					continue
				default:
					fail(fmt.Errorf("Reserve: %w", err))
					return
				}
				tl.reserve(j)
				dctx, dcancel := context.WithTimeout(ctx, 10*time.Second)
				t0 = time.Now()
				err = q.Delete(dctx, j.ID)
				took(&tl.slowestDelete, time.Since(t0))
				dcancel()
				switch {
				case err == nil:
					tl.deleteDone(j.ID)
				case ctx.Err() != nil:
					return
				case errors.Is(err, beanspike.ErrUnavailable), errors.Is(err, beanspike.ErrNotReserved),
					errors.Is(err, beanspike.ErrNotFound), errors.Is(err, context.DeadlineExceeded):
					// Lapsed or in doubt: a job not deleted comes back
					// after its TTR.
					tl.deleteFails.Add(1)
					tl.failed(began, "Delete", time.Since(t0), err)
				default:
					fail(fmt.Errorf("Delete(%d): %w", j.ID, err))
					return
				}
			}
		}()
	}
	pwg.Wait()
	produced := time.Since(began)
	cwg.Wait()
	drained := time.Since(began)
	// Give the disruption the rest of the deadline to finish (a restarted
	// node rejoining), but never longer.
	<-disruptDone
	elapsed := time.Since(began)
	timedOut := ctx.Err() != nil && len(errs) == 0
	cancel()
	<-progressDone

	for _, err := range errs {
		t.Error(err)
	}
	tl.mu.Lock()
	defer tl.mu.Unlock()
	dups, extra := 0, 0
	for id, n := range tl.reserved {
		if n > 1 {
			dups += n - 1
		}
		if _, ok := tl.acked[id]; !ok {
			extra++
		}
	}
	delDups := 0
	for _, n := range tl.deleted {
		if n > 1 {
			delDups += n - 1
		}
	}
	t.Logf("%d puts (of at most %d): %d acknowledged, %d failed or in doubt, in %v; node disrupted at %v, for %v; drained at %v, done at %v",
		len(tl.acked)+int(tl.putFails.Load()), w.jobs, len(tl.acked), tl.putFails.Load(), produced.Round(time.Millisecond),
		disruptAt.Round(time.Millisecond), disrupted.Round(time.Millisecond),
		drained.Round(time.Millisecond), elapsed.Round(time.Millisecond))
	t.Logf("acknowledged/delivered jobs over time: %s", strings.Join(progress, ", "))
	t.Logf("delivered: %d distinct jobs, %d duplicate deliveries, %d jobs delivered but not acknowledged; %d deletes acknowledged (%d of a job already deleted), %d failed; %d reserve failures",
		len(tl.reserved), dups, extra, len(tl.deleted), delDups, tl.deleteFails.Load(), tl.reserveFails.Load())

	for _, f := range tl.failures {
		t.Logf("failed call %s", f)
	}
	t.Logf("longest time without a new job delivered: %v, until %v; without a put acknowledged: %v, until %v",
		tl.gap.Round(time.Millisecond), tl.gapEnd.Sub(began).Round(time.Millisecond),
		tl.ackGap.Round(time.Millisecond), tl.ackGapEnd.Sub(began).Round(time.Millisecond))
	t.Logf("slowest calls: Put %v, Reserve %v (500ms deadline), Delete %v",
		time.Duration(tl.slowestPut.Load()).Round(time.Millisecond),
		time.Duration(tl.slowestReserve.Load()).Round(time.Millisecond),
		time.Duration(tl.slowestDelete.Load()).Round(time.Millisecond))

	var lost []beanspike.ID
	badBodies := 0
	for id, n := range tl.acked {
		if tl.reserved[id] == 0 {
			lost = append(lost, id)
		} else if want := string(jobBody(n)); tl.bodies[id] != want {
			if badBodies++; badBodies <= 10 {
				t.Errorf("job %d (put as job number %d) delivered with body %q, want %q", id, n, tl.bodies[id], want)
			}
		}
	}
	if badBodies > 0 {
		t.Errorf("%d jobs delivered with a body not theirs", badBodies)
	}
	if stalled := !timedOut && tl.missing > 0; stalled {
		t.Errorf("the drain stopped: no job delivered for the first time for %v", w.stall)
	}
	if timedOut {
		t.Errorf("the run did not finish within %v: %d of %d acknowledged jobs delivered; producers done: %v",
			w.deadline, len(tl.acked)-tl.missing, len(tl.acked), !producing.Load())
	}
	if !disruptOK && len(errs) == 0 {
		t.Errorf("the cluster was never disrupted (%d of %d puts acknowledged)", len(tl.acked), w.jobs)
	}
	if len(lost) > 0 {
		slices.Sort(lost)
		t.Errorf("%d acknowledged jobs never delivered by %v (deadline reached: %v): %v",
			len(lost), elapsed.Round(time.Millisecond), timedOut, lost[:min(len(lost), 20)])
		// Where they are now, asked by a client of its own: a job the
		// store no longer has is lost; one it still has was not delivered
		// in time.
		dctx, dcancel := context.WithTimeout(context.Background(), 15*time.Second)
		defer dcancel()
		q, err := New(dctx, opts...)
		if err != nil {
			t.Logf("New for diagnosis: %v", err)
			return
		}
		defer q.Close()
		states := map[string]int{}
		for k, id := range lost[:min(len(lost), 200)] {
			if dctx.Err() != nil {
				break
			}
			st, err := q.StatsJob(dctx, id)
			state := ""
			switch {
			case errors.Is(err, beanspike.ErrNotFound):
				state = "not found (lost)"
			case err != nil:
				state = "unknown (" + err.Error() + ")"
			default:
				state = st.State.String()
			}
			states[state]++
			if k < 10 {
				t.Logf("undelivered job %d (number %d): %s", id, tl.acked[id], state)
			}
		}
		t.Logf("undelivered jobs by state now (of the first 200): %v", states)
	}
}

// newClusterLoad returns the load of the cluster tests, with disrupt:
// 4 producers and 4 consumers over 20,000 jobs (3,000 with -short), in
// under two minutes whatever happens.
func newClusterLoad(disrupt func(ctx context.Context, c *asCluster) error) clusterLoad {
	jobs := 20000
	if testing.Short() {
		jobs = 3000
	}
	return clusterLoad{
		jobs:       jobs,
		producers:  4,
		consumers:  4,
		ttr:        5 * time.Second,
		backlog:    500,
		produceFor: 50 * time.Second,
		stall:      30 * time.Second,
		deadline:   110 * time.Second,
		disrupt:    disrupt,
	}
}

// A node of three dies (SIGKILL) a third of the way through: with
// replication factor 2, no acknowledged job is lost.
func TestClusterNodeKilled(t *testing.T) {
	const victim = 1
	newClusterLoad(func(ctx context.Context, c *asCluster) error {
		if err := c.kill(ctx, victim); err != nil {
			return err
		}
		c.t.Logf("killed node %d (port %d)", victim, c.nodes[victim].port)
		wctx, wcancel := context.WithTimeout(ctx, 30*time.Second)
		defer wcancel()
		return c.waitSize(wctx, c.others(victim), clusterNodes-1)
	}).run(t)
}

// A node of three dies (SIGKILL) a third of the way through and starts
// again, empty, on the same ports and directory; migrations refill it
// while the load goes on. No acknowledged job is lost.
func TestClusterNodeRestarted(t *testing.T) {
	const victim = 0 // the node the others joined through
	newClusterLoad(func(ctx context.Context, c *asCluster) error {
		if err := c.kill(ctx, victim); err != nil {
			return err
		}
		c.t.Logf("killed node %d (port %d)", victim, c.nodes[victim].port)
		wctx, wcancel := context.WithTimeout(ctx, 30*time.Second)
		defer wcancel()
		if err := c.waitSize(wctx, c.others(victim), clusterNodes-1); err != nil {
			return err
		}
		// The start script waits for a line of the log: keep the
		// old log apart so that it waits for the new one.
		logf := filepath.Join(c.nodes[victim].dir, "log", "aerospike.log")
		if err := os.Rename(logf, logf+".killed"); err != nil {
			return err
		}
		if err := c.startNode(wctx, victim, c.nodes[c.others(victim)[0]].port); err != nil {
			return err
		}
		c.t.Logf("restarted node %d (port %d)", victim, c.nodes[victim].port)
		if err := c.waitSize(wctx, c.all(), clusterNodes); err != nil {
			return err
		}
		if err := c.waitSettled(wctx, c.all(), clusterNodes); err != nil {
			return err
		}
		objs, err := c.objects(victim)
		c.t.Logf("node %d rejoined, migrations done: it holds %s records (%v)", victim, objs, err)
		return nil
	}).run(t)
}
