package aerospike

import (
	"context"
	"errors"
	"testing"
	"time"

	as "github.com/aerospike/aerospike-client-go/v8"
	"github.com/aerospike/aerospike-client-go/v8/types"

	"github.com/beanspike/beanspike"
	"github.com/beanspike/beanspike/backend/aerospike/aerospiketest"
)

// newSmallServer starts an in-process server of its own whose records are
// limited to maxRecord bytes, and a queue on it.
func newSmallServer(t *testing.T, maxRecord int, opts ...Option) *Queue {
	t.Helper()
	srv, err := aerospiketest.NewServer(aerospiketest.WithNamespace(aerospiketest.NamespaceConfig{
		Name: DefaultNamespace, MaxRecordSize: maxRecord,
	}))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = srv.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	all := append([]Option{WithHosts(srv.Host()), WithPort(srv.Port()), WithSetPrefix(uniquePrefix(t))}, opts...)
	q, err := New(ctx, all...)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() { _ = q.Close() })
	return q
}

// A body whose record is over the server's record limit fails with
// ErrJobTooBig; the index of a tube is not bounded by the record limit:
// its segments split, so a tube on a server that takes records of 4 KiB
// takes thousands of jobs.
func TestRecordLimits(t *testing.T) {
	ctx := context.Background()
	q := newSmallServer(t, 4096)
	if _, err := q.Put(ctx, "big", make([]byte, 5000)); !errors.Is(err, beanspike.ErrJobTooBig) {
		t.Fatalf("Put of a body over the record limit: %v, want ErrJobTooBig", err)
	}
	const n = 2000
	reqs := make([]beanspike.PutRequest, n)
	for i := range reqs {
		reqs[i] = beanspike.PutRequest{Tube: "many", Body: []byte("x")}
	}
	for i := 0; i < n; i += 100 {
		if _, err := q.PutBatch(ctx, reqs[i:i+100]); err != nil {
			t.Fatalf("PutBatch after %d jobs: %v", i, err)
		}
	}
	q.s.flush(ctx)
	for i := range n {
		j, err := q.Reserve(ctx, "many")
		if err != nil {
			t.Fatalf("Reserve %d: %v", i, err)
		}
		if err := q.Delete(ctx, j.ID); err != nil {
			t.Fatalf("Delete %d: %v", i, err)
		}
	}
	st, err := q.StatsTube(ctx, "many")
	if err != nil {
		t.Fatal(err)
	}
	if st.Ready != 0 || st.Deletes != n {
		t.Fatalf("stats after draining: %+v", st)
	}
}

// A failed batch command leaves the records it answered with their
// results and gives its failure to the others: a write applied on one
// node is not taken for failed because another node's part failed.
func TestFoldBatchError(t *testing.T) {
	key, err := as.NewKey(DefaultNamespace, "s", 1)
	if err != nil {
		t.Fatal(err)
	}
	answered := as.NewBatchWrite(nil, key)
	answered.ResultCode = types.OK
	filtered := as.NewBatchWrite(nil, key)
	filtered.ResultCode = types.FILTERED_OUT
	write := as.NewBatchWrite(nil, key)
	write.ResultCode = types.NO_RESPONSE
	read := as.NewBatchRead(nil, key, nil)
	read.ResultCode = types.NO_RESPONSE
	for _, doubt := range []bool{false, true} {
		for _, r := range []*as.BatchRecord{write.BatchRec(), read.BatchRec()} {
			r.ResultCode, r.InDoubt = types.NO_RESPONSE, false
		}
		code := types.NO_AVAILABLE_CONNECTIONS_TO_NODE
		if doubt {
			code = types.TIMEOUT
		}
		foldBatchError([]as.BatchRecordIfc{answered, filtered, write, read},
			&as.AerospikeError{ResultCode: code, InDoubt: doubt})
		if answered.ResultCode != types.OK || filtered.ResultCode != types.FILTERED_OUT {
			t.Fatalf("answered records changed: %v, %v", answered.ResultCode, filtered.ResultCode)
		}
		if write.ResultCode != code || read.ResultCode != code {
			t.Fatalf("unanswered records: %v, %v; want %v", write.ResultCode, read.ResultCode, code)
		}
		if write.InDoubt != doubt || codeInDoubt(write.BatchRec()) != doubt || read.InDoubt {
			t.Fatalf("in doubt: write %v (want %v), read %v", write.InDoubt, doubt, read.InDoubt)
		}
	}
}
