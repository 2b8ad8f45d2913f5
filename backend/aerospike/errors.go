package aerospike

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"time"

	as "github.com/aerospike/aerospike-client-go/v8"
	"github.com/aerospike/aerospike-client-go/v8/types"

	"github.com/beanspike/beanspike"
)

// interpretError translates an error of the Aerospike client into the
// contract's errors. It is the only place that does: record-not-found
// becomes [beanspike.ErrNotFound], and everything else — timeouts,
// KEY_BUSY, lost connections, an index record over the server's size
// limit (the tube's shard is full), a refusing server —
// [beanspike.ErrUnavailable]. The native *aerospike.AerospikeError stays
// reachable with errors.As. Context errors and errors that already carry
// a sentinel pass unchanged. Errors of a job record's write go through
// interpretRecordError.
func interpretError(err error) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		for _, s := range []error{context.Canceled, context.DeadlineExceeded} {
			if errors.Is(err, s) {
				return s
			}
		}
	}
	for _, s := range sentinels {
		if errors.Is(err, s) {
			return err
		}
	}
	switch resultCode(err) {
	case types.KEY_NOT_FOUND_ERROR:
		return fmt.Errorf("%w: %w", beanspike.ErrNotFound, err)
	case types.RECORD_TOO_BIG:
		return fmt.Errorf("%w: index record over the server's record size limit: %w", beanspike.ErrUnavailable, err)
	}
	return fmt.Errorf("%w: %w", beanspike.ErrUnavailable, err)
}

// interpretRecordError is interpretError for the write of a job record:
// the one write whose RECORD_TOO_BIG means the caller's body is too big
// for the server's record limit, [beanspike.ErrJobTooBig].
func interpretRecordError(err error) error {
	if resultCode(err) == types.RECORD_TOO_BIG {
		return fmt.Errorf("%w: job record over the server's record size limit: %w", beanspike.ErrJobTooBig, err)
	}
	return interpretError(err)
}

var sentinels = []error{
	beanspike.ErrNotFound, beanspike.ErrNotReserved, beanspike.ErrInvalidTube,
	beanspike.ErrJobTooBig, beanspike.ErrInvalidArgument, beanspike.ErrClosed,
	beanspike.ErrUnavailable,
}

// noCode is what resultCode reports for errors that carry none.
const noCode types.ResultCode = -1000

// resultCode returns the Aerospike result code carried by err, or noCode.
func resultCode(err error) types.ResultCode {
	var ae *as.AerospikeError
	if errors.As(err, &ae) {
		return ae.ResultCode
	}
	return noCode
}

// transient tells whether a failed command may succeed if sent again: the
// key was busy, the server or the network was slow or gone.
func transient(code types.ResultCode) bool {
	switch code {
	case types.KEY_BUSY, types.TIMEOUT, types.NETWORK_ERROR, types.NO_RESPONSE,
		types.NO_AVAILABLE_CONNECTIONS_TO_NODE, types.SERVER_NOT_AVAILABLE,
		types.DEVICE_OVERLOAD, types.MAX_RETRIES_EXCEEDED, types.INVALID_NODE_ERROR,
		types.PARTITION_UNAVAILABLE, types.SERVER_MEM_ERROR, types.COMMON_ERROR,
		types.BATCH_FAILED:
		return true
	}
	return false
}

// inDoubt tells whether a write that failed with err may have been
// applied: the command reached the server but no answer came back.
func inDoubt(err error) bool {
	var ae *as.AerospikeError
	if errors.As(err, &ae) {
		if ae.InDoubt {
			return true
		}
		switch ae.ResultCode {
		case types.TIMEOUT, types.NETWORK_ERROR, types.NO_RESPONSE, types.MAX_RETRIES_EXCEEDED, types.COMMON_ERROR:
			return true
		}
	}
	return false
}

// codeInDoubt is inDoubt for a per-record batch result.
func codeInDoubt(br *as.BatchRecord) bool {
	if br.InDoubt {
		return true
	}
	switch br.ResultCode {
	case types.TIMEOUT, types.NETWORK_ERROR, types.NO_RESPONSE, types.MAX_RETRIES_EXCEEDED, types.COMMON_ERROR:
		return true
	}
	return false
}

// Retry schedule for transient failures: full jitter over an exponential
// ceiling.
const (
	retryBase     = time.Millisecond
	retryCeiling  = 64 * time.Millisecond
	retryAttempts = 12
)

// backoff paces the retries of one operation.
type backoff struct {
	n    int
	lost int     // consecutive failures that said the store is out of reach
	h    *health // told when the store seems out of reach; may be nil
}

// wait sleeps before the next attempt. It returns ctx.Err() when ctx ends,
// ErrClosed when done is closed, and an error wrapping ErrUnavailable
// (and last) when the attempts are used up. It tells the store's health
// when last says the store is out of reach.
func (b *backoff) wait(ctx context.Context, done <-chan struct{}, last error) error {
	b.n++
	if unreachable(resultCode(last)) {
		b.lost++
		if b.lost >= lostAfter && b.h != nil {
			b.h.down(last)
		}
	} else {
		b.lost = 0
	}
	if b.n >= retryAttempts {
		return interpretError(last)
	}
	ceil := retryBase << min(b.n, 6)
	ceil = min(ceil, retryCeiling)
	d := time.Duration(rand.Int64N(int64(ceil))) + 100*time.Microsecond
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-done:
		return beanspike.ErrClosed
	case <-t.C:
		return nil
	}
}

// lostAfter is how many consecutive failures of one operation that say
// the store is out of reach make it reported unreachable.
const lostAfter = 3

// unreachable tells whether a failure says that the store, not one key,
// is out of reach: nothing answered, or no node could take the command.
func unreachable(code types.ResultCode) bool {
	switch code {
	case types.TIMEOUT, types.NETWORK_ERROR, types.NO_RESPONSE,
		types.NO_AVAILABLE_CONNECTIONS_TO_NODE, types.SERVER_NOT_AVAILABLE,
		types.INVALID_NODE_ERROR, types.MAX_RETRIES_EXCEEDED, types.PARTITION_UNAVAILABLE:
		return true
	}
	return false
}

func errNotFound(id beanspike.ID) error {
	return fmt.Errorf("%w: job %d", beanspike.ErrNotFound, id)
}

func errNotReserved(id beanspike.ID) error {
	return fmt.Errorf("%w: job %d", beanspike.ErrNotReserved, id)
}

func errNoTube(name string) error {
	return fmt.Errorf("%w: no tube %q", beanspike.ErrNotFound, name)
}
