package aerospike

import (
	"context"
	"testing"
	"time"
)

func TestSmokeBasics(t *testing.T) {
	q := newTestQueue(t)
	ctx := context.Background()
	id, err := q.Put(ctx, "t1", []byte("hello"))
	if err != nil {
		t.Fatalf("Put: %v", err)
	}
	j, err := q.Reserve(ctx, "t1")
	if err != nil {
		t.Fatalf("Reserve: %v", err)
	}
	if j.ID != id || string(j.Body) != "hello" || j.Reserves != 1 {
		t.Fatalf("got %+v", j)
	}
	st, err := q.StatsTube(ctx, "t1")
	if err != nil {
		t.Fatalf("StatsTube: %v", err)
	}
	if st.Reserved != 1 || st.TotalJobs != 1 {
		t.Fatalf("stats %+v", st)
	}
	if err := q.Release(ctx, id, 5, 0); err != nil {
		t.Fatalf("Release: %v", err)
	}
	j, err = q.Reserve(ctx, "t1")
	if err != nil || j.Priority != 5 || j.Reserves != 2 {
		t.Fatalf("Reserve: %v %+v", err, j)
	}
	if err := q.Delete(ctx, id); err != nil {
		t.Fatalf("Delete: %v", err)
	}
	dctx, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
	defer cancel()
	if _, err := q.Reserve(dctx, "t1"); err != context.DeadlineExceeded {
		t.Fatalf("Reserve on empty: %v", err)
	}
	if _, err := q.Peek(ctx, id); !errorIsNotFound(err) {
		t.Fatalf("Peek deleted: %v", err)
	}
}
