package remote_test

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/beanspike/beanspike"
	"github.com/beanspike/beanspike/chanserv/internal/muxtest"
	"github.com/beanspike/beanspike/chanserv/remote"
)

// manyTubes answers Tubes with n names of 200 bytes each.
type manyTubes struct {
	beanspike.Queue
	n int
}

func (q manyTubes) Tubes(context.Context) ([]string, error) {
	tubes := make([]string, q.n)
	for i := range tubes {
		tubes[i] = fmt.Sprintf("%0200d", i)
	}
	return tubes, nil
}

// TestLongReplies has replies longer than a frame: the tube list of a
// store whose names add up to 20 MB, with the default limits, and, on a
// client that accepts frames of 4 KiB, a tube list, a job's stats with a
// long bury reason and a 200 KiB body. They arrive whole, in several
// frames.
func TestLongReplies(t *testing.T) {
	for _, m := range muxtest.All() {
		t.Run(m.Name, func(t *testing.T) {
			t.Run("20 MB of tube names", func(t *testing.T) {
				const n = 100_000
				f := wrappedFixture(t, m.Make, func(c beanspike.Queue) beanspike.Queue { return manyTubes{c, n} })
				q := f.dial(t)
				ctx, cancel := context.WithTimeout(testCtx(t), 20*time.Second)
				defer cancel()
				tubes, err := q.Tubes(ctx)
				if err != nil {
					t.Fatalf("Tubes: %v", err)
				}
				if len(tubes) != n || tubes[n-1] != fmt.Sprintf("%0200d", n-1) {
					t.Fatalf("Tubes returned %d names, want %d", len(tubes), n)
				}
			})

			t.Run("4 KiB frames", func(t *testing.T) {
				ctx := testCtx(t)
				f := newFixture(t, m.Make)
				q := f.dial(t, remote.WithMaxFrameSize(4<<10))
				var want []string
				for i := range 60 {
					tube := fmt.Sprintf("%0100d", i)
					if _, err := q.Put(ctx, tube, []byte("x")); err != nil {
						t.Fatal(err)
					}
					want = append(want, tube)
				}
				tubes, err := q.Tubes(ctx)
				if err != nil {
					t.Fatalf("Tubes: %v", err)
				}
				if len(tubes) != len(want) {
					t.Fatalf("Tubes returned %d names, want %d", len(tubes), len(want))
				}

				body := bytes.Repeat([]byte("0123456789abcdef"), 200<<10/16)
				id, err := q.Put(ctx, "big", body)
				if err != nil {
					t.Fatal(err)
				}
				j, err := q.Reserve(ctx, "big")
				if err != nil {
					t.Fatalf("Reserve of a 200 KiB job: %v", err)
				}
				if !bytes.Equal(j.Body, body) {
					t.Fatalf("body of %d bytes came back as %d bytes", len(body), len(j.Body))
				}
				reason := strings.Repeat("r", beanspike.MaxBuryReason)
				if err := q.Bury(ctx, id, 1, reason); err != nil {
					t.Fatal(err)
				}
				st, err := q.StatsJob(ctx, id)
				if err != nil {
					t.Fatalf("StatsJob: %v", err)
				}
				if st.BuryReason != reason {
					t.Fatalf("bury reason of %d bytes came back as %d", len(reason), len(st.BuryReason))
				}
			})
		})
	}
}
