// Package beanspike is a job queue with beanstalkd's model — tubes,
// priorities, delays, time-to-run, bury and kick — on storage that can
// scale past one machine.
//
// The contract is the [Queue] interface. Implementations:
//
//   - backend/memory: the in-memory reference backend and the embedded
//     default. Exact, fast, not durable.
//   - backend/aerospike: the production backend. Many processes on many
//     machines share tubes through one Aerospike cluster.
//   - chanserv/remote: a client that implements Queue over the network,
//     served by any Queue.
//
// Package conformance holds the tests every implementation passes.
//
// # Jobs and their states
//
// A job lives in one tube and is, at any time, ready, delayed, reserved or
// buried. Put makes a ready job, or a delayed one when given a delay.
// Reserve takes the most urgent ready job of the tubes it is given (lowest
// priority value first, first-ready first among equals) and holds it for
// the job's time-to-run (TTR). The holder then deletes the job (done),
// releases it (back to ready or delayed, to try again) or buries it (put
// aside until someone kicks it). Touch restarts the TTR.
//
// # Clients
//
// A [Queue] value is one client. A reservation belongs to the client that
// made it: only that client can Delete, Release, Bury or Touch the job,
// and another client gets [ErrNotReserved]. This holds the same way for
// two clients of one in-memory store, for a remote client (its network
// session is the client) and for many processes on one Aerospike cluster
// (each Queue value has its own random identity). Closing a client returns
// its reservations to ready.
//
// # Delivery semantics
//
// Delivery is at least once. A reservation lasts the job's TTR; if the
// holder neither finishes nor touches the job in time — it crashed, hung
// or lost its connection — the reservation lapses, the job returns to
// ready (counted in [JobStats.Timeouts]) and another client may reserve
// it. The old holder then gets [ErrNotReserved] and must not act on the
// job. A handler whose work takes longer than the TTR must Touch the job;
// [Worker] does it automatically. Handlers should be idempotent.
//
// # Errors
//
// Errors wrap the sentinels of errors.go; test them with [errors.Is]. A
// call rejected for bad input ([ErrInvalidTube], [ErrJobTooBig],
// [ErrInvalidArgument]) changes nothing. Context errors are returned
// unwrapped.
//
// # Compression
//
// [WithCompression] stores a body LZ4-compressed when that makes it
// smaller and raw otherwise; [TubeStats] counts both outcomes. Jobs are
// always returned with their original body.
package beanspike
