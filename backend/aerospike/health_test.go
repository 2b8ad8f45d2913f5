package aerospike

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/beanspike/beanspike"
	"github.com/beanspike/beanspike/backend/aerospike/aerospiketest"
	"github.com/beanspike/beanspike/internal/syncbuf"
)

// While the store does not answer, calls fail with ErrUnavailable, or
// with their context's error when it ends first, and the queue logs that
// the store is out of reach once; when it answers again, it logs that
// once too.
func TestStoreOutOfReachIsReported(t *testing.T) {
	needInProcess(t, "dropping every connection")
	var logs syncbuf.Buffer
	q := newTestQueue(t, WithLogger(slog.New(slog.NewTextHandler(&logs, nil))), WithTimeout(100*time.Millisecond))
	ctx := context.Background()
	if _, err := q.Put(ctx, "t", []byte("before")); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(tgt.srv.ClearFaults)
	if _, err := tgt.srv.Inject(aerospiketest.Fault{Action: aerospiketest.FaultCloseBefore, Times: -1}); err != nil {
		t.Fatal(err)
	}
	for range 3 {
		cctx, cancel := context.WithTimeout(ctx, 500*time.Millisecond)
		_, err := q.Put(cctx, "t", []byte("during"))
		cancel()
		if !errors.Is(err, beanspike.ErrUnavailable) && err != context.DeadlineExceeded {
			t.Fatalf("Put while the store drops every connection: %v, want ErrUnavailable or the context's error", err)
		}
	}
	if n := strings.Count(logs.String(), "store unreachable"); n != 1 {
		t.Fatalf("logged %d times that the store is unreachable, want once:\n%s", n, logs.String())
	}
	tgt.srv.ClearFaults()
	deadline := time.Now().Add(5 * time.Second)
	for !strings.Contains(logs.String(), "reachable again") {
		if time.Now().After(deadline) {
			t.Fatalf("the store answers again, and nothing said so:\n%s", logs.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	if _, err := q.Put(ctx, "t", []byte("after")); err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(logs.String(), "reachable again"); n != 1 {
		t.Fatalf("logged %d times that the store is back, want once:\n%s", n, logs.String())
	}
}
