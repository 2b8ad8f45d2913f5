// Package conformance is the contract of package beanspike as tests: every
// implementation of [beanspike.Queue] — a backend, a remote client, a
// wrapper — runs it to show that it keeps the promises the Queue
// documentation makes.
//
// # Use
//
// From the implementation's own tests, in any repository, give [Run] a
// [Harness] that makes isolated stores and clients of them:
//
//	type store struct{ root *mybackend.Queue }
//
//	func (s store) NewClient(t *testing.T) beanspike.Queue {
//		q, err := s.root.NewClient()
//		if err != nil {
//			t.Fatal(err)
//		}
//		return q
//	}
//
//	func TestConformance(t *testing.T) {
//		conformance.Run(t, conformance.Harness{
//			NewStore: func(t *testing.T) conformance.Store {
//				q, err := mybackend.New(uniquePrefix(t))
//				if err != nil {
//					t.Fatal(err)
//				}
//				t.Cleanup(func() { q.Close() })
//				return store{root: q}
//			},
//			Capabilities: conformance.Capabilities{TimeSlack: 500 * time.Millisecond},
//		})
//	}
//
// and run it with the race detector: go test -race. Each subtest makes its
// own store and runs in parallel with the others, so a store must be
// isolated (its own tubes and jobs, and its own job IDs or at least no
// shared ones). [Capabilities] declares what the implementation cannot do
// exactly (a coarse clock, waiters it cannot count, a smaller body limit);
// the suite allows for it and skips, with a message, only what a missing
// capability makes impossible to check.
//
// # What it checks
//
//   - Order: priority, first-ready first among equal priorities (a released
//     or kicked job goes behind jobs already ready), across tubes the lower
//     ID, the default tube.
//   - Time: delayed jobs are not reservable before their delay (or the
//     time of WithReadyAt) and become ready within
//     [Capabilities.TimeSlack] after it; a reservation lapses
//     after its TTR (counted as a timeout) and Touch restarts it; TTRs below
//     MinTTR are raised; pauses hold back a tube's jobs until they end or
//     PauseTube(0) ends them; the largest durations (math.MaxInt64 as a
//     TTR, delay or pause) do not wrap around into the past.
//   - Ownership: only the holder can Delete, Release, Bury or Touch a
//     reserved job; another client, or the holder after a lapse, gets
//     ErrNotReserved; any client can Delete an unreserved job. Close
//     returns the client's reservations to ready (counted neither as
//     releases nor as timeouts), wakes its blocked Reserve calls with
//     ErrClosed and makes every later call fail with ErrClosed.
//   - Every state move: Release (priority, delay), Bury (reason), Kick
//     (buried before delayed, oldest first, counts, n = 0), KickJob,
//     ReserveJob, the Peek calls, DeleteTube (jobs in every state; holders
//     then get ErrNotFound; a Reserve blocked on the tube keeps waiting)
//     and Tubes.
//   - Stats: every JobStats and TubeStats field, Waiting when
//     [Capabilities.ExactWaiting] is set, the compression counters.
//   - Reserve: woken by another client's Put, Release, Kick or Close; a done
//     context polls; cancellation and deadlines return the context's error
//     unwrapped.
//   - Batches through [beanspike.PutBatch] and [beanspike.ReserveBatch]:
//     order, and a batch with one invalid request puts nothing. An
//     oversized body is one such request only for a queue that implements
//     [beanspike.Batcher] or [beanspike.BodyLimiter]; for other queues
//     PutBatch meets it at its turn, and the suite logs that it did not
//     check that case.
//
// # Optional interfaces
//
// A Queue may implement more than the interface. The suite finds these by
// type assertion on the clients the harness returns, and never requires
// them:
//
//   - [beanspike.Batcher]: PutBatch and ReserveBatch are then the
//     implementation's own, and are held to the same checks (a batch with
//     an invalid request, oversized bodies included, puts nothing).
//   - [beanspike.BodyLimiter]: MaxBodySize should equal
//     [Capabilities.MaxBodySize]; with it, beanspike.PutBatch validates
//     every body before putting any, and the suite checks that.
//
// A wrapper that hides them (a struct embedding beanspike.Queue) passes
// as well; it loses only the up-front body check of PutBatch.
//   - Bodies: round trips of empty, binary, incompressible and compressible
//     bodies with and without compression, the size limit, and that
//     neither the slice given to Put nor a returned body is shared with
//     the store.
//   - Bad input: for every method, invalid tube names, a body over the
//     limit, negative durations and counts, ID 0, unknown and deleted IDs,
//     calls on jobs in the wrong state. Each call must fail with its
//     sentinel error (tested with errors.Is) and change nothing: the stats
//     of every job and tube are compared before and after.
//   - Concurrency: [Capabilities.Concurrency] clients make random calls
//     for a few seconds ([Capabilities.Stress]) and a new client then
//     drains the store. The recorded history is checked with
//     github.com/anishathalye/porcupine against a sequential model of a
//     job: no job is held by two clients at once, lost, duplicated or
//     resurrected, and every job put is deleted exactly once.
//
// Each subtest has a watchdog ([Capabilities.Watchdog]): a hang fails the
// subtest with a dump of every goroutine instead of stalling CI.
//
// # Limits
//
// The suite is written to have no false failures: timing checks allow the
// declared slack, checks that a slow machine makes meaningless are logged
// and skipped rather than failed, and the history check counts a call
// whose effect it cannot know (a Kick, a Reserve that timed out) as
// possibly having had any of its effects. It can miss bugs: it checks
// per-job linearizability, not the global order of Reserve under
// concurrency; it cannot see a job that a backend loses between two
// stores or processes; timing bugs smaller than the slack go unseen; a
// linearizability check that runs out of time is inconclusive, not a
// failure; and random tests find only what their runs happen to exercise.
// Run it with -race, and more than once (-count) when changing
// concurrency code. Speed is not checked: that is for benchmarks.
package conformance
