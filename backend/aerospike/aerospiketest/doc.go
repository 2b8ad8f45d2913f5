// Package aerospiketest provides an in-process, Aerospike-compatible server
// for tests, in the spirit of miniredis: the real
// github.com/aerospike/aerospike-client-go/v8 client connects to it over TCP.
//
//	srv, err := aerospiketest.NewServer()
//	if err != nil { ... }
//	defer srv.Close()
//	client, err := aerospike.NewClient(srv.Host(), srv.Port())
//
// The server listens on 127.0.0.1 on a random port ([WithAddr] chooses
// another address; command aerospiketest, in cmd/aerospiketest, runs it
// as a process of its own), reports itself as a single-node Aerospike 8.1
// Community Edition cluster owning all 4096 partitions of every
// configured namespace (default "test"), and keeps all data in memory. It aims to answer as a real server does: the package's
// tests run unchanged against a real server when AEROSPIKE_HOST (and
// optionally AEROSPIKE_PORT, default 3000) is set.
//
// # Test controls
//
//   - Clock: expiration is evaluated against Server.Now, which tests move
//     with AdvanceClock and SetClock. Records expire lazily.
//   - Faults: Server.Inject closes the connection before or after the Nth
//     matching command, delays it, or fails it with a chosen result code
//     (TIMEOUT, KEY_BUSY, DEVICE_OVERLOAD...). Faults match on command kind,
//     namespace and set; FaultHandle and Server.Stats count them.
//   - Hot keys: more than WithPendingLimit (default 20, as Aerospike's
//     transaction-pending-limit) concurrent writes to one key fail with
//     KEY_BUSY (14). A FaultDelay on writes holds the record lock, which makes
//     the limit easy to reach.
//   - Namespaces: WithNamespace configures names, default TTL,
//     max-record-size (default 1 MiB, as Aerospike's default), nsup-period
//     (default 0, as Aerospike's) and allow-ttl-without-nsup; the info
//     command set-config changes the last three at run time.
//
// # Supported
//
//	Area              Supported
//	----------------  ---------------------------------------------------------------
//	Tending           info build, node, partition-generation, peers-generation,
//	                  peers-clear-std, replicas, service-clear-std, user-agent-set,
//	                  features, namespaces, namespace/<ns> (max-record-size in
//	                  bytes, nsup-period in seconds, allow-ttl-without-nsup as
//	                  configured), sets, sets/<ns>, sets/<ns>/<set>, statistics,
//	                  version, set-config (max-record-size, nsup-period,
//	                  allow-ttl-without-nsup); info on data connections
//	                  (keep-alive "build")
//	Records           Get (all/some bins), GetHeader, Exists, Put, Delete, Touch,
//	                  Add, Append, Prepend, Operate
//	Write policy      RecordExistsAction UPDATE, UPDATE_ONLY, REPLACE, REPLACE_ONLY,
//	                  CREATE_ONLY; EXPECT_GEN_EQUAL, EXPECT_GEN_GT; TTL 0 (namespace
//	                  default), -1 (never), -2 (unchanged), n seconds (max 10 years);
//	                  a write that sets a TTL (n seconds, or 0 with a default TTL)
//	                  in a namespace with nsup-period 0 and no
//	                  allow-ttl-without-nsup fails with FORBIDDEN (22);
//	                  RespondPerEachOp; SendKey (key stored and returned by scans)
//	Records metadata  16-bit generation incremented per write (wraps to 1),
//	                  last-update time (whole milliseconds), void time, set name,
//	                  stored key
//	Record size       the length of the record's storage image, measured against
//	                  Aerospike 8.1 at the limit: 40 bytes, the set name and a
//	                  length byte, the stored key and a uvarint length, 4 bytes
//	                  of void time if it expires, and per bin its name and a
//	                  length byte, a type byte and the value (integers in 1, 2,
//	                  4 or 8 bytes and a size byte, 8 for negative ones; floats
//	                  8; booleans 1; strings and blobs 4 + length; lists and
//	                  maps 4 + msgpack size); above max-record-size a write
//	                  fails with RECORD_TOO_BIG (13)
//	Set names         at most 63 bytes and 4,095 per namespace (never released):
//	                  a write that would create a record in a longer or one more
//	                  set fails with PARAMETER_ERROR (4)
//	CDT lists         all list ops (append, insert, pop, remove, set, trim, clear,
//	                  increment, sort, size, get, get/remove by index, rank, value,
//	                  value list, value interval, relative rank), ordered and
//	                  unordered lists, write flags, return types, INVERTED; rank
//	                  ranges of unordered lists select and order their values
//	                  as the server's heap does (from the highest rank of the
//	                  range down when it is nearer the low end, up otherwise)
//	CDT maps          all map ops (set type, add/put/replace and items, increment,
//	                  decrement, clear, size, get/remove by key, key list, key
//	                  interval, key-relative index, index, rank, value, value list,
//	                  value interval, value-relative rank), UNORDERED, KEY_ORDERED,
//	                  KEY_VALUE_ORDERED, write flags (create-only, update-only,
//	                  no-fail, partial), return types, INVERTED, INF and WILDCARD
//	CDT contexts      list index/rank/value, map index/rank/key/value; a context
//	                  that leads to no element (missing key, index, rank or
//	                  value, or a container of the other kind) fails with
//	                  OP_NOT_APPLICABLE (26); a read through a context of a
//	                  missing bin reads nothing; on modify ops a create flag
//	                  creates the missing container at its own level in the
//	                  flag's order and an element that the op fills in (in
//	                  the op's order) or, left empty, drops
//	Expressions       filters on single-record, batch, scan and query commands;
//	                  comparisons, and/or/not/exclusive, regex, arithmetic, bitwise
//	                  integer ops, min/max, cond, let/var, bin and key reads, bin
//	                  exists/type, digest modulo, set name, key exists, TTL, void
//	                  time, last-update, since-update, record size; list and map
//	                  read and modify calls; ExpReadOp and ExpWriteOp
//	Batch             BatchGet, BatchGetHeader, BatchExists, BatchGetOperate,
//	                  BatchOperate (reads, writes, deletes), BatchDelete
//	                  (server 6+ batch protocol), per-key results
//	Scan/query        ScanPartitions/ScanAll, QueryPartitions/Query with
//	                  MaxRecords paging (resume by partition digest and bval),
//	                  bin selection, no-bin-data, filter expressions
//	Secondary index   NUMERIC, STRING and BLOB indexes (collection types DEFAULT,
//	                  LIST, MAPKEYS, MAPVALUES, with context or expression),
//	                  Equal and Range filters; info sindex-create, sindex-delete,
//	                  sindex-exists, sindex-list, sindex-stat, sindex/<ns>/<name>
//	                  in both the pre-8.1 and the 8.1 syntax; creating an index
//	                  again with the same definition is OK, with another one
//	                  INDEX_FOUND (200); a definition created under a new name
//	                  takes that name; dropping a missing index is OK
//	Truncate          truncate and truncate-namespace, with or without lut:
//	                  records last updated strictly before the truncation's
//	                  millisecond go
//
// Secondary indexes are evaluated at query time against the stored records,
// so they are always fully built (load_pct=100). Within a partition, records
// stream in digest order, or (value, digest) order for numeric index
// queries, which is what paging relies on.
//
// # Not supported
//
//	Feature                                   Answer
//	----------------------------------------  ----------------------------------------
//	UDFs (Execute, BatchExecute, query UDFs)  UNSUPPORTED_FEATURE (16)
//	Multi-record transactions (Txn)           UNSUPPORTED_FEATURE (16)
//	Durable deletes (delete, delete op)       ENTERPRISE_ONLY (25), as Community
//	                                          Edition answers
//	Compressed requests (proto type 4)        ENTERPRISE_ONLY (25), as Community
//	                                          Edition answers; responses are never
//	                                          compressed
//	Bit and HLL operations/expressions        UNSUPPORTED_FEATURE (16)
//	Geo filters and geo expressions           UNSUPPORTED_FEATURE (16)
//	Background query writes (QueryExecute)    UNSUPPORTED_FEATURE (16)
//	Security (users, roles, login)            connection closed (admin protocol)
//	Strong consistency, XDR, racks, TLS       not emulated; the namespace is AP
//	Malformed requests                        PARAMETER_ERROR (4), or the connection
//	                                          is closed when the frame itself is bad
//	Unknown info commands                     "ERROR::unrecognized command"
//
// Every length read from the wire is checked against the remaining input
// and a 128 MiB frame limit, so malformed or truncated frames close the
// connection without large allocations; fuzz targets cover the parsers.
//
// # Differences from a real server
//
// Evictions, nsup, durability, replication and cluster changes are not
// modelled: records expire as they are read, whatever nsup-period says.
// Where a behaviour is not covered by the differential tests, which were
// checked against Aerospike Community Edition 8.1.2.0, the server follows
// Aerospike's source and documentation; the differential tests are the
// arbiter when run against a real server. Unordered maps are kept in key
// order, where a real server keeps their insertion order.
//
// Costs follow a real server's shape closely enough for benchmarks: maps
// are kept sorted by key, and each map keeps a value-order index (built on
// first use), so key, rank and value lookups are binary searches. Every
// write writes the whole record, as a real server does: it builds the
// record's storage image, whose length is checked against
// max-record-size, so a write costs in proportion to the record, however
// little it changes. The values themselves are copy-on-write: a write
// copies the bins it modifies and, within a modified map, its entry array,
// except that a write which appends entries, or removes the first or the
// last, shares the array with the stored map (a high-water mark shared by
// the maps that use the array keeps a slot from being claimed twice);
// record sizes and map encodings are cached per stored value, and an
// unchanged map's cached encoding goes into the image as a copy. Each connection
// keeps its read buffer, request body, parsed message, batch entries and
// response buffer from one request to the next, and a response goes out in
// one write, so that a small command costs little beyond the values it
// decodes and stores.
package aerospiketest
