// Package aerospike is the production backend of beanspike: a job store
// kept in an Aerospike namespace (Community Edition is enough), shared by
// any number of processes on any number of machines. It implements
// [beanspike.Queue] and [beanspike.Batcher].
//
// It uses no Lua UDFs, and no scan or query: every call but DeleteTube
// takes a small, fixed number of round trips, and reads and writes
// records of bounded size, whatever the number of jobs in a tube.
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
// The job record is the truth about its job; indexes only point at jobs,
// and every record has a size bound that does not depend on the backlog.
// The store has three sets, named after the prefix P:
//
//   - P_jobs: one record per job, keyed by its ID: what the job is (tube,
//     body, LZ4-encoded by package codec when WithCompression asked for it
//     and it shrank the body, sizes, put time) and where it stands: state,
//     priority, TTR, a time (when it became ready, when it is due, the
//     deadline of its reservation, when it was buried), the owner of a
//     reservation, the reserve, timeout, release, bury and kick counts,
//     the last delay, the bury reason and when its state last changed.
//   - P_idx: the indexes. Each tube has four: ready jobs keyed by
//     (priority, became ready, ID), delayed jobs by (due, ID), reservations
//     by (deadline, ID) and buried jobs by (buried at, ID), as fixed-width
//     big-endian byte keys, which the server orders as numbers. An index
//     is a two-level B-tree of records: a directory record maps the
//     fence of each segment (the least key it covers) to the segment; a
//     segment record holds its keys in a key-ordered map (each key's value
//     is the job's TTR), its upper fence and a few bins for splits and
//     merges. A segment that grows past [WithSegmentSize] entries (2,000
//     by default, about 60 KB) is split in two; one found empty is merged
//     away. Index keys are hints: readers check them against the job
//     record before they act, and drop those that no longer match.
//   - P_meta: per tube a meta record (its incarnation, pause state and
//     count), eight counter records per tube incarnation (ready, delayed,
//     reserved, buried, urgent, total, deletes, compression counts), one
//     record listing the tubes, and the job ID counter.
//
// Every index key names the tube's incarnation, a random number that
// DeleteTube replaces, so a tube made again never sees the old one's
// records. A directory holds about 30,000 segments in a record of 1 MiB,
// so an index holds tens of millions of jobs; the namespace's memory
// (its primary index takes 64 bytes per record and replica) is the
// practical limit.
//
// Job IDs come in blocks from the counter record (add and read in one
// command), so they are unique across all clients; a process uses a
// block for at most a minute, then takes a new one. The ready time is
// the wall clock in nanoseconds, strictly increasing within a process.
// Across processes, "became ready first" is as good as the clocks agree.
//
// # Operations and round trips
//
// None reads or writes more than one segment per index, whatever the
// backlog:
//
//   - Put: the job record and its hint, in one batch command (two
//     single-record commands, the record first, when nothing else of the
//     process is in flight); plus, rarely, a command to take a block of
//     IDs and, the first time a process uses a tube, a read of its meta
//     record and directories.
//   - Reserve: one compare-and-swap on the job record, which checks that
//     the job is ready as its hint says, makes it reserved by the client
//     and returns the record. The hint comes from the process's picture of
//     the head of the ready index (below), read in one batch command when
//     it is stale. Afterwards, in the background, the reservation's hint
//     is filed and then the ready hint removed.
//   - Delete of a job the client holds: one delete of its record,
//     checked against the reservation; its hint goes in the background.
//     Of another job: one read of its record, then its delete, checked
//     against the record's generation.
//   - Release, Bury: one batch command: the new hint and a
//     compare-and-swap of the job record; the old hint goes in the
//     background.
//   - Touch: one compare-and-swap of the job record. The reservation's
//     hint stays where it is; the sweep that finds it files it again under
//     the new deadline.
//   - ReserveJob, KickJob: one read of the job record, then one batch
//     command. Kick: one read of the first hints of the buried (or
//     delayed) index and of their records, then a batch command per job.
//   - Peek: one read. PeekReady, PeekDelayed, PeekBuried: a read of the
//     first hints and of the record of the first that matches.
//   - StatsTube: one batch read of the counter records. StatsJob: one
//     read.
//   - DeleteTube: O(jobs of the tube), as below.
//
// The hints moved "in the background" and the count changes are written
// by one goroutine per [New], a round at a time: everything queued while
// a round was written goes out together in the next, grouped by segment.
// Until a ready hint is removed, the process leaves it out of what it
// reads. StatsTube waits for the process's round in flight, so a process
// reads its own writes; other processes see them a round later.
//
// The clients of one [New] also merge their commands (group commit):
// while two commands of the process are in flight ([WithInFlight]),
// further ones wait, and the first to finish sends all those waiting as
// one batch command, of at most 256 records and 16 writes to any one
// record. Each record keeps its own guard and gets its own result, so
// merging changes no outcome.
//
// # Splits and merges
//
// A segment's upper fence is the fence of the segment after it (above
// every key for the last): an insert at or above it is refused, and so
// is one into a sealed segment, so a client whose directory predates a
// change never puts a hint where readers would not look. A client that
// is refused reads the directory again and, if that still sends it to
// the same segment, finishes what left the segment so.
//
//   - Split (by the client whose insert made the segment too big, under a
//     lock in the segment that runs out after ten seconds): make the new
//     segment, then lower the old one's upper fence to the split key and
//     name the new segment in it, then copy the keys at or above the split
//     key into the new segment, add the new segment's fence to the
//     directory (a compare-and-swap on its generation), and take the
//     copied keys out of the old segment. A crash before the fence was
//     lowered leaves an unreferenced segment; after it, the next insert
//     refused by the old segment finishes the split. Keys held twice
//     meanwhile are hints to the same job, harmless.
//   - Merge (by a reader that finds a segment empty): seal it if it is
//     still empty, drop its fence from the directory (the segment before
//     covers its keys, or the one after when it was the first), raise the
//     upper fence of the segment before, then delete it. A crash after the
//     seal is finished by the next insert refused by the sealed segment;
//     one before the upper fence was raised, by the next insert refused by
//     it. A sealed segment left alone in its directory is replaced by a
//     new empty one.
//
// # Ready cache
//
// The clients of one [New] share a picture of the head of each tube's
// ready index: its first 32 hints, less those taken since, and the
// earliest delayed and reservation times, read together in one batch
// command. A client takes the best hint out of the picture and claims
// its job; a claim that fails leaves the hint out of the process's
// pictures for 100ms and has it checked. Within a process no two clients
// race for a job, and Reserve chooses exactly as from a fresh read; the
// picture is used for at most 5ms, and not once a delayed job or a
// reservation is due. What other processes did in the last 5ms may go
// unseen: a job another process made ready, or a pause it began, in that
// window may be passed over, or honoured late, by one Reserve. Processes
// racing for one job spread by themselves: the loser takes the next.
//
// Transient failures (KEY_BUSY, timeouts, lost connections) are retried
// with jittered exponential backoff, about a dozen times, then reported as
// [beanspike.ErrUnavailable]. A write whose first attempt may have been
// applied (a timeout after sending) is checked against its intended
// result before it is reported as failed.
//
// # Time
//
// Delayed jobs become ready, and lapsed reservations return to ready
// (counted as timeouts), by a sweep: for the first due hints of the
// delayed and reservation indexes, a batch read of their records, then
// per job the ready hint and a compare-and-swap of the record in one
// batch command, then the old hint's removal. Any client sweeps a tube
// whenever its picture shows a due time, and before StatsTube, the peeks
// and Kick; each client's background loop ([WithSweepInterval], 100ms by
// default) sweeps the tubes the client used in the last ten minutes, but
// for those another client of the process swept in the last half
// interval. Sweeps from many clients at once are safe: the
// compare-and-swap of the job record lets one win. Due and deadline times
// are compared with the sweeping client's clock. Until a sweep moves it,
// StatsJob and Peek report a job whose time came as ready.
//
// Blocking Reserve polls: after an empty poll it waits 5ms, doubling up
// to 100ms, and polls at once when a client of the same process puts,
// releases or kicks a job.
//
// # Crashes
//
// Community Edition has no multi-record transactions: a client may die
// between any two of its writes. Every move writes the hint of the job's
// new state before (or in the same batch command as) the job record, and
// removes the old hint only after both, so a job is always reachable
// through a hint that matches it or through its old hint. The rule that
// keeps it so: a reader that finds a hint that does not match its job
// does not just drop it; once the job's change is two seconds old (its
// mover had time to finish), it writes the hint the job's state calls
// for, then drops the stale one. A hint whose job record is missing is
// dropped (ready and buried hints once ten seconds old: a Put's record
// may still be on its way). Hence:
//
//   - Put dies after writing its hint but not its record: a dangling
//     hint, dropped. After its record but not its hint: the Put did not
//     succeed, and the record is left unreachable. A Put whose record is
//     refused (too big) takes its hint back before it returns.
//   - Reserve dies after its claim: the ready hint is still there; the
//     next reader that finds it files the reservation's hint, and the
//     reservation lapses after its TTR.
//   - Delete, Release, Bury, Kick, a sweep die after the record's change:
//     the old hint is found stale and dropped, after the new one is
//     written if it is missing.
//   - A split or merge dies between its steps: see above.
//   - DeleteTube marks the tube's meta record, from when on the tube does
//     not exist and a Put makes a new incarnation of it; it then walks the
//     old incarnation's indexes, deleting the job records their hints
//     name, the segments and the directories, then the counter and meta
//     records. One that dies midway is finished by DeleteTube of the tube
//     again, unless a Put made the tube anew meanwhile: the old job
//     records it did not reach then stay behind, unreachable. A Put racing
//     with DeleteTube on the same tube may see its job deleted with the
//     tube.
//
// Counts are kept by each process and written a round later (above), so
// a process that dies loses the count changes of its last round, and a
// count write in doubt that is retried may be counted twice: after
// crashes or network failures StatsTube's counts may be off by a few.
// The jobs themselves are not.
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
//     [beanspike.ErrJobTooBig] and the Put's hint is taken back. Segments
//     are kept well below the limit: the segment size is at most what a
//     record of the namespace's size holds at 64 bytes a hint.
//   - Writes to one segment queue up on the server; beyond its
//     transaction-pending-limit (20 by default) they fail with KEY_BUSY
//     and are retried as above. The busiest records of a tube are the
//     first segment of its ready index (claims' hints leave it) and the
//     last (puts arrive there), each written about once per job; a tube's
//     job records and its other segments spread over the cluster.
//   - Hints are ordered by Aerospike's ordering of map keys: byte strings
//     compare byte by byte. Upper fences are compared as strings in
//     filter expressions.
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
