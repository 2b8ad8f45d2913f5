package remote_test

import (
	"context"
	"testing"

	"github.com/beanspike/beanspike"
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

// BenchmarkReserveBatch measures reserving small jobs with batches of up
// to 100, over the in-memory multiplexer: with the store's default body
// limit, a server's reply budget per session ([remote.WithMaxReplyBytes])
// holds fewer than 100 replies of the largest job, so a batch takes as
// many jobs as it holds.
func BenchmarkReserveBatch(b *testing.B) {
	f := newFixture(b, muxtest.Memmux)
	q := f.dial(b)
	ctx := context.Background()
	reqs := make([]beanspike.PutRequest, 100)
	for i := range reqs {
		reqs[i] = beanspike.PutRequest{Tube: "t", Body: make([]byte, 100)}
	}
	for range b.N {
		if _, err := f.store.PutBatch(ctx, reqs); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportAllocs()
	b.ResetTimer()
	for n := 0; n < 100*b.N; {
		jobs, err := q.ReserveBatch(ctx, 100, "t")
		if err != nil {
			b.Fatal(err)
		}
		n += len(jobs)
	}
	b.ReportMetric(float64(100*b.N)/b.Elapsed().Seconds(), "jobs/s")
}

// BenchmarkPeek measures one Peek round trip of a job of 100 bytes,
// sequentially, over the in-memory multiplexer.
func BenchmarkPeek(b *testing.B) {
	f := newFixture(b, muxtest.Memmux)
	q := f.dial(b)
	ctx := context.Background()
	id, err := q.Put(ctx, "t", make([]byte, 100))
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		if _, err := q.Peek(ctx, id); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "jobs/s")
}
