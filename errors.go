package beanspike

import "errors"

// Sentinel errors returned by every [Queue] implementation. Test for them
// with [errors.Is]: implementations wrap them with detail (the job ID, the
// tube, the limit that was exceeded), and a backend's native error stays
// reachable with [errors.As].
//
// A call that returns any of these errors, except where noted, has changed
// nothing: every job is as it was before the call.
var (
	// ErrNotFound means the job does not exist (it never did, it was
	// deleted, or its tube was deleted), or a peek found no job in the
	// asked state. Callers should treat the job as gone.
	ErrNotFound = errors.New("beanspike: job not found")

	// ErrNotReserved means the job exists but is not reserved by this
	// client: it was never reserved, its reservation lapsed (its TTR ran
	// out and it went back to ready), or another client holds it. The
	// caller no longer owns the job and must not act on it; another
	// client may already be running it.
	ErrNotReserved = errors.New("beanspike: job not reserved by this client")

	// ErrInvalidTube means a tube name breaks the naming rules (see
	// [ValidateTube]). Nothing was done.
	ErrInvalidTube = errors.New("beanspike: invalid tube name")

	// ErrJobTooBig means a body is larger than the queue's maximum body
	// size. Nothing was written.
	ErrJobTooBig = errors.New("beanspike: job body too big")

	// ErrInvalidArgument means an option or argument is out of range: a
	// negative delay or TTR, a zero job ID, a non-positive count. Nothing
	// was done.
	ErrInvalidArgument = errors.New("beanspike: invalid argument")

	// ErrClosed means the client was closed. Open a new client.
	ErrClosed = errors.New("beanspike: queue closed")

	// ErrUnavailable means the backing store could not be reached or
	// refused the call (timeouts, overload, lost connections) after the
	// implementation's own retries. The call may or may not have taken
	// effect; callers may retry.
	ErrUnavailable = errors.New("beanspike: store unavailable")
)
