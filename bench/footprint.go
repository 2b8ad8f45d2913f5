package bench

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"runtime"
	"strconv"
	"strings"
	"time"

	"github.com/beanspike/beanspike/backend/memory"
)

// Footprint is the memory a store holds per job beyond its body, measured
// with n jobs of size-byte bodies.
type Footprint struct {
	Target   string
	Jobs     int
	BodySize int
	// PerJob is the growth of the store's memory divided by Jobs, less
	// BodySize: heap bytes for the memory backend, resident bytes (RSS)
	// of the process for beanstalkd.
	PerJob float64
}

// MemoryFootprint puts n jobs into a new memory store and measures the
// heap they take.
func MemoryFootprint(n, size int) (Footprint, error) {
	q, err := memory.New()
	if err != nil {
		return Footprint{}, err
	}
	defer q.Close()
	body := bytes.Repeat([]byte{'x'}, size)
	ctx := context.Background()
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	for range n {
		if _, err := q.Put(ctx, "footprint", body); err != nil {
			return Footprint{}, err
		}
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	runtime.KeepAlive(q)
	per := (float64(after.HeapAlloc) - float64(before.HeapAlloc)) / float64(n)
	return Footprint{Target: "memory", Jobs: n, BodySize: size, PerJob: per - float64(size)}, nil
}

// BeanstalkdFootprint puts n jobs into a new beanstalkd, pipelining the
// puts on one connection, and measures the growth of its resident memory.
func BeanstalkdFootprint(n, size int) (Footprint, error) {
	s, err := startBeanstalkd()
	if err != nil {
		return Footprint{}, err
	}
	defer s.Close()
	bs := s.(*beanstalkSession)
	before, err := rss(bs.pid)
	if err != nil {
		return Footprint{}, err
	}
	c, err := net.DialTimeout("tcp", bs.addr, 5*time.Second)
	if err != nil {
		return Footprint{}, err
	}
	defer c.Close()
	body := bytes.Repeat([]byte{'x'}, size)
	cmd := fmt.Appendf(nil, "put 1024 0 60 %d\r\n%s\r\n", size, body)
	werr := make(chan error, 1)
	go func() {
		w := bufio.NewWriterSize(c, 64<<10)
		for range n {
			if _, err := w.Write(cmd); err != nil {
				werr <- err
				return
			}
		}
		werr <- w.Flush()
	}()
	r := bufio.NewReader(c)
	for i := range n {
		line, err := r.ReadString('\n')
		if err != nil {
			return Footprint{}, fmt.Errorf("reply %d: %w", i, err)
		}
		if !strings.HasPrefix(line, "INSERTED ") {
			return Footprint{}, fmt.Errorf("reply %d: %q", i, line)
		}
	}
	if err := <-werr; err != nil {
		return Footprint{}, err
	}
	after, err := rss(bs.pid)
	if err != nil {
		return Footprint{}, err
	}
	per := (float64(after) - float64(before)) / float64(n)
	return Footprint{Target: "beanstalkd", Jobs: n, BodySize: size, PerJob: per - float64(size)}, nil
}

// rss returns the resident memory of process pid, in bytes, from /proc.
func rss(pid int) (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/statm", pid))
	if err != nil {
		return 0, fmt.Errorf("%w: reading resident memory: %v", ErrMissing, err)
	}
	f := strings.Fields(string(b))
	if len(f) < 2 {
		return 0, fmt.Errorf("statm: %q", b)
	}
	pages, err := strconv.ParseInt(f[1], 10, 64)
	if err != nil {
		return 0, err
	}
	return pages * int64(os.Getpagesize()), nil
}
