package beanstalk

import (
	"errors"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	gb "github.com/beanstalkd/go-beanstalk"
)

// The benchmarks drive beanstalkd and the front end over the memory
// backend with the same go-beanstalk client in the same run, and report
// jobs/s. Compare the "beanstalkd" and "frontend" sub-benchmarks.

type target struct {
	name string
	addr func(b *testing.B) string
}

var targets = []target{
	{"beanstalkd", func(b *testing.B) string { return startBeanstalkd(b).addr }},
	{"frontend", func(b *testing.B) string { _, a := startFrontEnd(b); return a }},
}

func gbDial(b *testing.B, addr string) *gb.Conn {
	c, err := gb.Dial("tcp", addr)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { c.Close() })
	return c
}

var benchBody = make([]byte, 128)

func BenchmarkPut(b *testing.B) {
	for _, tg := range targets {
		b.Run(tg.name, func(b *testing.B) {
			c := gbDial(b, tg.addr(b))
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if _, err := c.Put(benchBody, 0, 0, time.Minute); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "jobs/s")
		})
	}
}

func BenchmarkReserveDelete(b *testing.B) {
	for _, tg := range targets {
		b.Run(tg.name, func(b *testing.B) {
			c := gbDial(b, tg.addr(b))
			for i := 0; i < b.N; i++ {
				if _, err := c.Put(benchBody, 0, 0, time.Minute); err != nil {
					b.Fatal(err)
				}
			}
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				id, _, err := c.Reserve(time.Second)
				if err != nil {
					b.Fatal(err)
				}
				if err := c.Delete(id); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "jobs/s")
		})
	}
}

// BenchmarkProducersConsumers runs 8 producers and 8 consumers, each on
// its own connection; b.N jobs go through put, reserve and delete.
func BenchmarkProducersConsumers(b *testing.B) {
	const producers, consumers = 8, 8
	for _, tg := range targets {
		b.Run(tg.name, func(b *testing.B) {
			addr := tg.addr(b)
			pc := make([]*gb.Conn, producers)
			cc := make([]*gb.Conn, consumers)
			for i := range pc {
				pc[i] = gbDial(b, addr)
			}
			for i := range cc {
				cc[i] = gbDial(b, addr)
			}
			var left atomic.Int64
			left.Store(int64(b.N))
			var wg sync.WaitGroup
			errc := make(chan error, producers+consumers)
			b.ResetTimer()
			for p := 0; p < producers; p++ {
				n := b.N / producers
				if p < b.N%producers {
					n++
				}
				wg.Add(1)
				go func(c *gb.Conn, n int) {
					defer wg.Done()
					for i := 0; i < n; i++ {
						if _, err := c.Put(benchBody, 0, 0, time.Minute); err != nil {
							errc <- err
							return
						}
					}
				}(pc[p], n)
			}
			for i := 0; i < consumers; i++ {
				wg.Add(1)
				go func(c *gb.Conn) {
					defer wg.Done()
					for left.Load() > 0 {
						id, _, err := c.Reserve(100 * time.Millisecond)
						if errors.Is(err, gb.ErrTimeout) {
							continue
						}
						if err != nil {
							errc <- err
							return
						}
						if err := c.Delete(id); err != nil {
							errc <- errors.New("delete " + strconv.FormatUint(id, 10) + ": " + err.Error())
							return
						}
						left.Add(-1)
					}
				}(cc[i])
			}
			wg.Wait()
			b.StopTimer()
			close(errc)
			for err := range errc {
				b.Fatal(err)
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "jobs/s")
		})
	}
}
