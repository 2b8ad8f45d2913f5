// Command abuse measures a vnet node under attack on loopback: it runs
// the node in a child process with an echo service, lets a well-behaved
// client make round trips through it, and floods the node from another
// connection with raw yamux frames. It prints the node's memory and the
// client's round trips per second before, during and after the attack.
//
//	go run ./chanserv/vnet/internal/abuse -attack ping -for 10s
//
// Attacks (the attacker never reads from its connection):
//
//	ping    yamux pings (SYN), each asking for a reply
//	window  window updates on one stream the attacker opened
//	open    window updates with SYN: a new stream each
//	unknown streams to an address nobody bound, each filled with its
//	        initial 256 KiB window of data
//	none    no attack, for comparison
package main

import (
	"bufio"
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/beanspike/beanspike/chanserv/vnet"
	"github.com/beanspike/beanspike/internal/adversarial/frame"
)

func main() {
	role := flag.String("role", "driver", "driver or server (internal)")
	attack := flag.String("attack", "ping", "ping, window, open, unknown or none")
	dur := flag.Duration("for", 10*time.Second, "how long the attack lasts")
	maxBytes := flag.Int64("max-bytes", 64<<20, "stop the attack after sending this many bytes")
	maxRSS := flag.Int64("max-rss", 2<<30, "kill the node if its RSS passes this many bytes")
	streams := flag.Int("streams", 2000, "streams of the unknown attack")
	flag.Parse()
	if *role == "server" {
		server()
		return
	}
	if err := drive(*attack, *dur, *maxBytes, *maxRSS, *streams); err != nil {
		fmt.Fprintln(os.Stderr, "abuse:", err)
		os.Exit(1)
	}
}

// server runs the node: an echo service, its address on stdout, then a
// line "heap <bytes> goroutines <n>" every 250 ms.
func server() {
	n, err := vnet.New(vnet.WithLogger(slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))))
	if err != nil {
		panic(err)
	}
	l, err := n.Bind("", "echo")
	if err != nil {
		panic(err)
	}
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go func() { io.Copy(c, c); c.Close() }()
		}
	}()
	addr, err := n.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	fmt.Println(addr)
	var ms runtime.MemStats
	for {
		time.Sleep(250 * time.Millisecond)
		runtime.ReadMemStats(&ms)
		fmt.Printf("heap %d goroutines %d\n", ms.HeapInuse, runtime.NumGoroutine())
	}
}

type stats struct {
	heap, goroutines atomic.Int64
}

func drive(attack string, dur time.Duration, maxBytes, maxRSS int64, streams int) error {
	self, err := os.Executable()
	if err != nil {
		return err
	}
	cmd := exec.Command(self, "-role", "server")
	cmd.Stderr = &limitedWriter{w: os.Stderr, n: 4 << 10}
	out, err := cmd.StdoutPipe()
	if err != nil {
		return err
	}
	if err := cmd.Start(); err != nil {
		return err
	}
	defer func() { cmd.Process.Kill(); cmd.Wait() }()
	br := bufio.NewReader(out)
	addr, err := br.ReadString('\n')
	if err != nil {
		return err
	}
	addr = strings.TrimSpace(addr)
	var st stats
	go func() {
		for {
			line, err := br.ReadString('\n')
			if err != nil {
				return
			}
			var h, g int64
			if _, err := fmt.Sscanf(line, "heap %d goroutines %d", &h, &g); err == nil {
				st.heap.Store(h)
				st.goroutines.Store(g)
			}
		}
	}()

	var trips atomic.Int64
	cerr := make(chan error, 1)
	go func() { cerr <- client(addr, &trips) }()

	pid := cmd.Process.Pid
	var peak int64
	sample := func(phase string, d time.Duration) error {
		start, t0 := trips.Load(), time.Now()
		deadline := t0.Add(d)
		for time.Now().Before(deadline) {
			time.Sleep(250 * time.Millisecond)
			rss := rssOf(pid)
			peak = max(peak, rss)
			if rss > maxRSS {
				return fmt.Errorf("%s: node RSS %d MB passed the limit; killed", phase, rss>>20)
			}
			select {
			case err := <-cerr:
				return fmt.Errorf("%s: client: %v", phase, err)
			default:
			}
		}
		rate := float64(trips.Load()-start) / time.Since(t0).Seconds()
		fmt.Printf("%-7s %5.1fs  node RSS %6.1f MB  heap %6.1f MB  goroutines %7d  client %7.0f round trips/s\n",
			phase, time.Since(t0).Seconds(), float64(rssOf(pid))/(1<<20), float64(st.heap.Load())/(1<<20), st.goroutines.Load(), rate)
		return nil
	}
	if err := sample("before", 3*time.Second); err != nil {
		return err
	}
	var sent atomic.Int64
	stop := make(chan struct{})
	aerr := make(chan error, 1)
	go func() { aerr <- flood(addr, attack, maxBytes, streams, &sent, stop) }()
	serr := sample("attack", dur)
	close(stop)
	if err := <-aerr; err != nil {
		fmt.Println("attacker:", err)
	}
	fmt.Printf("attack  %s: %.1f MB sent\n", attack, float64(sent.Load())/(1<<20))
	if serr != nil {
		return serr
	}
	if err := sample("after", 5*time.Second); err != nil {
		return err
	}
	fmt.Printf("peak    node RSS %.1f MB\n", float64(peak)/(1<<20))
	return nil
}

// client makes 64-byte round trips to the echo service, one at a time.
func client(addr string, trips *atomic.Int64) error {
	n, err := vnet.New()
	if err != nil {
		return err
	}
	defer n.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := n.Connect(ctx, "tcp", addr); err != nil {
		return err
	}
	c, err := n.DialContext(ctx, "", "echo")
	if err != nil {
		return err
	}
	msg := make([]byte, 64)
	for {
		c.SetDeadline(time.Now().Add(30 * time.Second))
		if _, err := c.Write(msg); err != nil {
			return err
		}
		if _, err := io.ReadFull(c, msg); err != nil {
			return err
		}
		trips.Add(1)
	}
}

// flood sends the attack's frames until stop, maxBytes or a failed write.
func flood(addr, attack string, maxBytes int64, streams int, sent *atomic.Int64, stop chan struct{}) error {
	if attack == "none" {
		<-stop
		return nil
	}
	c, err := net.Dial("tcp", addr)
	if err != nil {
		return err
	}
	defer c.Close()
	go func() { <-stop; c.SetWriteDeadline(time.Now()) }()
	write := func(b []byte) error {
		n, err := c.Write(b)
		sent.Add(int64(n))
		return err
	}
	const batch = 4096 // frames per write
	var buf []byte
	id := uint32(1)
	switch attack {
	case "ping", "window", "open":
		if attack == "window" {
			if err := write(frame.Open(nil, 1)); err != nil {
				return err
			}
		}
		for sent.Load() < maxBytes {
			buf = buf[:0]
			for range batch {
				switch attack {
				case "ping":
					buf = frame.Ping(buf, id)
				case "window":
					buf = frame.Yamux(buf, frame.TypeWindow, 0, 1, 1)
				case "open":
					buf = frame.Open(buf, id)
					id++ // a client's stream ids are odd
				}
				id++
			}
			if err := write(buf); err != nil {
				return err
			}
		}
	case "unknown":
		body := make([]byte, frame.YamuxInitialWindow)
		copy(body, frame.VnetPreamble(nil, "nobody"))
		for i := 0; i < streams && sent.Load() < maxBytes; i++ {
			buf = frame.Data(buf[:0], frame.FlagSYN, id, body)
			if err := write(buf); err != nil {
				return err
			}
			id += 2
		}
		<-stop // hold the streams open
	default:
		return fmt.Errorf("unknown attack %q", attack)
	}
	return nil
}

// rssOf returns a process's resident set in bytes, or 0.
func rssOf(pid int) int64 {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			return kb << 10
		}
	}
	return 0
}

// limitedWriter passes on the first n bytes written to it.
type limitedWriter struct {
	w io.Writer
	n int
}

func (l *limitedWriter) Write(p []byte) (int, error) {
	if l.n > 0 {
		k := min(len(p), l.n)
		l.n -= k
		l.w.Write(p[:k])
	}
	return len(p), nil
}
