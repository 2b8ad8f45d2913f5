package chanserv_test

import (
	"context"
	"errors"
	"io"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/beanspike/beanspike/chanserv"
	"github.com/beanspike/beanspike/chanserv/internal/muxtest"
)

// benchHandler is zenhotels/chanserv's benchmark source function: sources
// sources of frames frames of size bytes each, every source produced by
// its own goroutine. Frames share one zeroed buffer (WriteFrame does not
// retain it), where the original allocated each frame.
func benchHandler(sources, frames, size int) chanserv.Handler {
	buf := make([]byte, size)
	return chanserv.HandlerFunc(func(ctx context.Context, req *chanserv.Request, w chanserv.ResponseWriter) error {
		var wg sync.WaitGroup
		var firstErr atomic.Pointer[error]
		for range sources {
			s, err := w.NewSource(ctx, nil)
			if err != nil {
				return err
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				for range frames {
					if err := s.WriteFrame(ctx, buf); err != nil {
						e := err
						firstErr.CompareAndSwap(nil, &e)
						s.Close(err)
						return
					}
				}
				s.Close(nil)
			}()
		}
		wg.Wait()
		if p := firstErr.Load(); p != nil {
			return *p
		}
		return nil
	})
}

// consume reads every source of one response, each in its own goroutine
// as the original benchmark did, and returns the number of frames.
func consume(ctx context.Context, r *chanserv.Response) (int64, error) {
	var n atomic.Int64
	var wg sync.WaitGroup
	var firstErr atomic.Pointer[error]
	for src, err := range r.Sources(ctx) {
		if err != nil {
			wg.Wait()
			return n.Load(), err
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				_, err := src.Next(ctx)
				if errors.Is(err, io.EOF) {
					return
				}
				if err != nil {
					e := err
					firstErr.CompareAndSwap(nil, &e)
					return
				}
				n.Add(1)
			}
		}()
	}
	wg.Wait()
	if p := firstErr.Load(); p != nil {
		return n.Load(), *p
	}
	return n.Load(), nil
}

// cpuMeter reports the CPU time (user and system, client and server
// together) per operation as "cpu-ns/op": on a loaded machine it is a
// steadier figure than ns/op.
type cpuMeter struct {
	start time.Duration
	ok    bool
}

func startCPU() cpuMeter {
	t, ok := cpuTime()
	return cpuMeter{start: t, ok: ok}
}

func (m cpuMeter) report(b *testing.B) {
	if t, ok := cpuTime(); ok && m.ok && b.N > 0 {
		b.ReportMetric(float64(t-m.start)/float64(b.N), "cpu-ns/op")
	}
}

func benchEnv(b *testing.B, mux string, h chanserv.Handler, clOpts ...chanserv.Option) env {
	mk := muxtest.Vnet
	if mux == "memmux" {
		mk = muxtest.Memmux
	}
	return newEnv(b, mk, h, nil, clOpts)
}

// BenchmarkConnect is chanserv's BenchmarkConnectChanserv: one request
// answered by one source of one empty frame, from NumCPU goroutines per
// GOMAXPROCS.
func BenchmarkConnect(b *testing.B) {
	for _, mux := range []string{"vnet", "memmux"} {
		b.Run(mux, func(b *testing.B) {
			e := benchEnv(b, mux, benchHandler(1, 1, 0))
			ctx := context.Background()
			body := []byte("hello")
			b.ReportAllocs()
			b.ResetTimer()
			cpu := startCPU()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					r, err := e.cl.Post(ctx, "svc", body)
					if err != nil {
						b.Error(err)
						return
					}
					n, err := consume(ctx, r)
					if err != nil || n != 1 {
						b.Errorf("%d frames, %v", n, err)
						return
					}
				}
			})
			b.StopTimer()
			cpu.report(b)
		})
	}
}

func benchBulk(b *testing.B, sources, frames, size int) {
	if testing.Short() {
		b.Skip("bulk benchmark: skipped in -short")
	}
	e := benchEnv(b, "vnet", benchHandler(sources, frames, size))
	ctx := context.Background()
	total := int64(sources * frames)
	b.SetBytes(total * int64(size))
	b.ReportAllocs()
	b.ResetTimer()
	start := time.Now()
	cpu := startCPU()
	for range b.N {
		r, err := e.cl.Post(ctx, "svc", nil)
		if err != nil {
			b.Fatal(err)
		}
		n, err := consume(ctx, r)
		if err != nil || n != total {
			b.Fatalf("%d frames, want %d: %v", n, total, err)
		}
	}
	b.ReportMetric(float64(total*int64(b.N))/time.Since(start).Seconds(), "frames/s")
	cpu.report(b)
}

// BenchmarkHeavy is chanserv's BenchmarkHeavyChanserv: 10 sources of 500
// frames of 1 MiB. Run it with -benchtime=1x.
func BenchmarkHeavy(b *testing.B) { benchBulk(b, 10, 500, 1<<20) }

// BenchmarkFlood is chanserv's BenchmarkFloodChanserv: 1000 sources of
// 5000 frames of 64 bytes. Run it with -benchtime=1x.
func BenchmarkFlood(b *testing.B) { benchBulk(b, 1000, 5000, 64) }
