package remote_test

import (
	"context"
	"testing"

	"github.com/beanspike/beanspike/chanserv/internal/muxtest"
)

// BenchmarkPut measures one Put round trip, sequentially, over each
// multiplexer.
func BenchmarkPut(b *testing.B) {
	body := make([]byte, 100)
	for _, m := range muxtest.All() {
		b.Run(m.Name, func(b *testing.B) {
			f := newFixture(b, m.Make)
			q := f.dial(b)
			ctx := context.Background()
			b.ReportAllocs()
			b.ResetTimer()
			for range b.N {
				if _, err := q.Put(ctx, "t", body); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "jobs/s")
		})
	}
}
