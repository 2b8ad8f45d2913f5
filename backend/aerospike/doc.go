// Package aerospike is the production backend of beanspike: a job store
// kept in an Aerospike namespace (Community Edition is enough), shared by
// any number of processes on any number of machines. It implements
// [beanspike.Queue] and [beanspike.Batcher].
//
// It uses no Lua UDFs, and no scan or query on any operation but
// DeleteTube: every other call takes a small, fixed number of round trips
// whatever the number of jobs in a tube.
//
// # Connecting
//
// [New] connects to the hosts given with [WithHosts] and [WithPort], by
// default to AEROSPIKE_HOST (a comma-separated list) and AEROSPIKE_PORT,
// and failing those to 127.0.0.1:3000; or it uses a client given with
// [WithClient], which Close then leaves open. [WithNamespace] and
// [WithSetPrefix] place the store: all its sets share the prefix, so
// stores with different prefixes are isolated. A namespace holds at most
// 4,095 set names, counted until the server restarts, so many stores in
// one namespace (one per tenant, one per test) share a set prefix and
// are told apart by [WithKeyPrefix], which starts every key of the
// store. [Queue.NewClient] makes
// more clients sharing one connection. Each client has a random 128-bit
// identity; the reservations it makes belong to it.
//
// # Data model
//
// The store has four sets, named after the prefix P:
//
//   - P_jobs: one record per job, keyed by its ID, holding what never
//     changes: tube, body (LZ4-encoded by package codec when
//     WithCompression asked for it and it shrank the body), original size,
//     put time.
//   - P_idx: per tube, K index records ("shards"; [WithShards], 8 by
//     default, fixed for the store when it is first used), job ID mod K
//     choosing the shard. Each holds four key-value-ordered maps, ready,
//     delayed, reserved and buried, from job ID to the job's entry,
//     plus a deleting map (ID to the time a delete began) and the tube's
//     counters (total, deletes, compressed, skipped) for that shard.
//   - P_meta: per tube a meta record (pause state, pause count); one
//     record listing the tubes; the store configuration (shard count);
//     the job ID counter; the state of the orphan pass (below).
//
// A job's entry holds everything about it that changes: priority, TTR,
// the reserve, timeout, release, bury and kick counters, last delay, the
// owner of a reservation, the bury reason. It is stored as a list
// [k1, k2, packed] whose first two elements rank it in its map: ready
// [priority, ready time], delayed [due time], reserved [deadline], buried
// [bury time]. The map a job's entry is in is its state; the index is the
// truth of what exists (a job record without an entry is not a job).
// Hence every state change — reserve, release, bury, touch, kick, a
// lapse — is one atomic write to one index record: a compare-and-swap
// whose filter expression checks that the entries it moves are still
// exactly as read, and which refuses to create the record (so nothing is
// written into a deleted tube).
//
// Job IDs come in blocks of 256 from the counter record (add and read in
// one command), so they are unique across all clients; a process uses a
// block for at most a minute, then takes a new one. The ready time
// is the wall clock in nanoseconds, strictly increasing within a process.
// Across processes, "became ready first" is as good as the clocks agree.
//
// # Operations and round trips
//
//   - Put: the job record and the index entry (with the tube's
//     counters) written in one batch command, or, while nothing else of
//     the process is in flight, in two single-record commands, the record
//     first (see group commit below); plus, the first time a process uses
//     a tube, one batch command registering it (meta record, tube list).
//   - Reserve: the best job claimed (compare-and-swap from ready to
//     reserved) with its record in hand (read ahead, or kept from this
//     process's Put; below): one single-record command. Otherwise the
//     claim and a read of the record, sent as Put's two writes are. The
//     best job comes from the
//     process's ready cache (below) when it can tell; otherwise one batch
//     command first reads the meta records (pause) and the first ready
//     entries of every index record of the watched tubes.
//     Across the K shards and the tubes, the best job is chosen as the
//     memory backend chooses it. A client that loses the race for a job
//     picks at random among the next few, which spreads racing clients
//     over different jobs.
//   - Delete: one compare-and-swap removing the entry (recording the
//     delete in the deleting map and counting it). The job record is
//     deleted, and then the deleting entry cleared, by the next tick of
//     the client's background loop, batched with its other deletes, and
//     by Close.
//   - Release, Bury, Touch: one compare-and-swap, when the client holds
//     the reservation (it remembers its reservations).
//   - Peek, StatsJob, ReserveJob, KickJob, and Delete of a job the client
//     does not hold: one read of the job record to find its tube (skipped
//     when the process has seen the job), one read of its entry, then the
//     write.
//   - Kick: one batch read of the heads of the index records, one
//     compare-and-swap per index record holding jobs to kick.
//   - StatsTube: from map sizes and counters, two batch commands; never a
//     scan. Waiting counts only the blocked Reserve calls of this
//     process's clients (those sharing a connection made by one New).
//   - DeleteTube: reads the tube's index records whole and deletes every
//     record: O(jobs of the tube).
//
// The counts above are per call. The clients of one [New] also merge
// their commands (group commit): while two commands of the process are
// in flight ([WithInFlight]), further ones wait, and the first to finish
// sends all those waiting as one batch command, of at most 256 records
// and 16 writes to any one record (a server that runs a batch's parts in
// parallel queues them on the record, against its
// transaction-pending-limit). Each record keeps its own guard and gets
// its own result, so merging changes no outcome; a merged command that
// fails as a whole fails each of its unanswered records as if it had been
// sent alone. A call made while fewer than two are in flight goes out at
// once: as a single-record command when it has one record; when it has
// two and nothing else is in flight, as two single-record commands one
// after the other (the client runs every batch command in a goroutine of
// its own, and for two records the hand-off costs more than the second
// round trip); otherwise as a batch command. One of 64 records or more
// (the background loop's record deletes, DeleteTube) goes out on its own,
// so that bulk work does not hold up the calls behind it.
// Under load this cuts the commands per job (with 8 producers and 8
// consumers in one process, about one command per job instead of three)
// at the price of some queueing.
//
// # Ready cache
//
// The clients of one [New] share a picture of the most urgent ready jobs
// of the tubes they reserve from: the first eight ready entries of each
// index record, the earliest due time of its delayed and reserved
// entries, and the tube's pause, as a view read saw them. Their own
// writes keep it current: a put, release or kick adds its entry, a claim
// or delete takes its entry out, and jobs taken for a claim are kept out
// of the pictures read while the claim is in flight, so the clients of a
// process do not race each other for a job. So within a process Reserve
// chooses exactly as from a fresh read. The picture is only a hint:
// claims are compare-and-swaps, and one that fails makes the next
// Reserve read again. It is not used once 5ms old, once a due time has
// passed (a sweep is needed), nor when it cannot tell the best job (an
// index record read in part has no known entries left), and an empty
// picture never makes Reserve report that nothing is ready. What other
// processes did in the last 5ms may therefore go unseen: a job another
// process made ready, or a pause it began, in that window may be passed
// over, or honoured late, by one Reserve.
//
// Transient failures (KEY_BUSY, timeouts, lost connections) are retried
// with jittered exponential backoff, about a dozen times, then reported as
// [beanspike.ErrUnavailable]. A compare-and-swap whose first attempt may
// have been applied (a timeout after sending) is checked against its
// intended result before it is reported as lost.
//
// Index records are rewritten whole on every write, so their size bounds
// throughput: an entry takes about 48 bytes, and a record is limited by
// the namespace's max-record-size (1 MiB by default), so a shard holds up
// to about 21,700 jobs and a tube of 8 shards about 170,000 (8 MiB, the
// most Aerospike allows, takes about eight times as many); a Put into a full
// shard fails with [beanspike.ErrUnavailable]. The cost of every write to
// a tube grows with its backlog (see bench/README.md). Tubes with large
// backlogs want more shards.
//
// A batch command that fails as a whole (one node's part timed out, or
// its connections ran out) still reports the records that were answered:
// a write applied on one node is never taken for failed because another
// node's part failed.
//
// # Time
//
// Delayed jobs become ready and lapsed reservations return to ready
// (counted as timeouts) by a sweep: one compare-and-swap moving every due
// entry of an index record to ready. Any client sweeps an index record
// whenever a read shows it a due head — every Reserve poll, peek, stats
// and kick — and each client's background loop ([WithSweepInterval],
// 100ms by default) sweeps the tubes the client used in the last ten
// minutes, but for those that a read of a client of the same process
// swept in the last half interval. So with any client active, jobs move within about a poll
// interval of their time; there is no dedicated process. Sweeps from many
// clients at once are safe: one wins, the others find their guard failed.
// Due and deadline times are compared with the sweeping client's clock.
//
// Blocking Reserve polls: after an empty poll it waits 5ms, doubling up
// to 100ms, and polls at once when a client of the same process puts,
// releases or kicks a job.
//
// # Read-ahead
//
// A claim also reads the records of the next jobs of the picture while
// the process holds the records of fewer than eight of them, up to 32
// held, so that most Reserve calls are one single-record command. Only
// bodies of at most 8 KiB are read ahead (a filter on the record's size
// bin keeps larger ones on the server), and at most 4 MiB per process. A
// job record never changes once written and an ID is never used twice,
// so a record read ahead is the record a claim would read: the claim's
// compare-and-swap still decides who gets the job. A record is given to
// one job at most, and leaves with its entry: when the job is claimed,
// here or elsewhere, when it leaves ready, or when the tube is deleted. A
// picture that a failed claim showed wrong keeps its records for the next
// read, which keeps those of the jobs it still shows. A job put by the
// process itself is held the same way, from a copy of what its Put
// wrote, so that a process that puts and reserves claims its own jobs
// without reading their records. In a process that loses most races for
// its jobs to other processes, much of what it reads ahead is read in
// vain: at most 32 records of 8 KiB per picture read.
//
// # Crashes
//
// Community Edition has no multi-record transactions: a client may die
// between any two of its writes. No job is lost or held forever:
//
//   - Reserve claims, and reads, in one command; a client that dies
//     holding reservations, or in Close before returning them, loses them
//     to their TTR, after which a sweep returns them to ready.
//   - Delete, after its compare-and-swap and before its client's
//     background loop deleted the record (a crash within a tick of the
//     Delete returning, or in Delete itself): the job is deleted (its
//     entry is gone); the record is left, named by the deleting entry. A
//     repair pass, run every ten ticks by every client's background loop
//     on the tubes it uses, deletes the records of deleting entries older
//     than five seconds, then the entries. After deleting the record and
//     before clearing the entry: the repair pass clears it. Both steps
//     are idempotent. A record whose deletion fails is tried again at the
//     next tick.
//   - Put writes the job record and the entry in one batch command, whose
//     halves may fail independently and be applied in either order (or,
//     alone, the record and then the entry, as two single-record commands). A failed entry write is retried, then
//     the record is deleted and Put fails. An entry whose write is in
//     doubt is looked for before it is written again: in the index, in the
//     deleting map (its job was reserved and deleted meanwhile), and by
//     the record this Put wrote being gone (the delete finished); only
//     when the record write was in doubt as well and the delete finished
//     before the Put looked, a matter of a background tick, is the job put
//     again: delivered twice, never lost. If the process dies
//     first, or that delete fails too, a job record without an entry
//     remains: unreachable, never a job, since its Put did not succeed.
//     The orphan pass deletes it. Every client's background loop tries
//     the pass every hundred ticks; one at a time runs it, for up to two
//     seconds, under a lease in the repair record. It walks the job IDs in order from a cursor kept
//     there, 256 keys per batch read, checking only IDs the ID counter
//     passed at least ten minutes before (it notes the counter, with the
//     time, and moves its horizon to that reading ten minutes later: by
//     then every Put of those IDs has written all it ever will, since a
//     block is used for a minute and a Put takes seconds); a record
//     found without an index entry, put ten minutes ago or more, is
//     deleted. It commits its cursor only while it still holds the lease;
//     a pass that dies leaves the lease to run out (30 seconds) and its
//     work to be done again, which is harmless. Each ID is checked once,
//     about a batch read per 256 jobs put; a record whose put time is
//     younger (a client clock ahead) holds the cursor at its block until
//     it is not. A process that stalls for more than ten minutes in the
//     middle of a Put defeats the pass: its record may be judged an orphan
//     before its entry is written. An entry whose record is missing (the
//     record failed, or is still on its way) is found by Reserve when it
//     claims it: the claim's read and a second read of every copy of the
//     record (read mode AP ALL, which sees through a migration) both miss
//     it. It is then parked as delayed for a second, and dropped once ten
//     seconds old.
//   - DeleteTube deletes the job records, then the index and meta
//     records, then the tube-list entry. A crash leaves the tube listed;
//     DeleteTube again finishes the work. Entries whose records are gone
//     are dropped as above when claimed. A Put racing with DeleteTube on
//     the same tube may see its job deleted with the tube.
//   - All other operations are single writes.
//
// Reservations are compared with owners, not with clocks alone: a client
// whose reservation lapsed gets [beanspike.ErrNotReserved], and one whose
// tube was deleted gets [beanspike.ErrNotFound].
//
// # Consistency
//
// The compare-and-swaps give at most one holder per job on a namespace in
// strong-consistency mode (an Enterprise Edition feature). In AP mode,
// the only mode of Community Edition, a network partition or a node
// leaving can let two clients claim one job; delivery stays at least
// once.
//
// # Server requirements
//
// Aerospike 6.0 or later (the batch-write protocol; developed against
// 8.x Community Edition). What the backend relies on, and what a
// namespace must allow:
//
//   - Every write sets TTL -1 (never expire), which servers accept
//     whatever nsup-period, allow-ttl-without-nsup and default-ttl say:
//     no namespace setting is needed, and records never expire. Deletes
//     are not durable (durable deletes are an Enterprise feature); in a
//     namespace persisted to a device, a cold restart may bring deleted
//     records back: job records without entries are harmless, but index
//     records of a deleted tube would bring the tube back.
//   - Records are limited by the namespace's max-record-size (1 MiB by
//     default, at most 8 MiB). [New] reads it from every node and takes
//     bodies up to the smallest less [RecordOverhead] (or
//     [beanspike.DefaultMaxBodySize] if smaller; [Queue.MaxBodySize]
//     tells): a larger body fails with [beanspike.ErrJobTooBig] before
//     anything is written. For bigger bodies raise max-record-size, then
//     use [WithMaxBodySize]. Should the setting shrink while clients run,
//     a job record the server refuses fails its Put with
//     [beanspike.ErrJobTooBig] and the Put's index entry is taken back. An
//     index record over the limit (a shard too full) fails the write with
//     [beanspike.ErrUnavailable].
//   - Writes to one index record queue up on the server; beyond its
//     transaction-pending-limit (20 by default) they fail with KEY_BUSY
//     and are retried as below. Many clients on one tube want more shards.
//   - Entries are ranked by Aerospike's ordering of list values (element
//     by element; integers numerically), in key-value-ordered maps.
//   - Set names are the prefix plus "_jobs", "_idx" or "_meta" (Aerospike
//     allows 63 bytes, and 4,095 names per namespace); bin names are at
//     most 9 bytes (it allows 15).
//
// # Errors
//
// interpretError maps the client's errors to the contract's: a missing
// record is [beanspike.ErrNotFound], a job record over the server's limit
// [beanspike.ErrJobTooBig], everything else [beanspike.ErrUnavailable].
// The native *aerospike.AerospikeError stays reachable with errors.As.
package aerospike
