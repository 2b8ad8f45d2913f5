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
//   - Namespaces: WithNamespace configures names, default TTL and the maximum
//     record size (default 8 MiB, as Aerospike 7.1+).
//
// # Supported
//
//	Area              Supported
//	----------------  ---------------------------------------------------------------
//	Tending           info build, node, partition-generation, peers-generation,
//	                  peers-clear-std, replicas, service-clear-std, user-agent-set,
//	                  features, namespaces, namespace/<ns>, statistics, version;
//	                  info on data connections (keep-alive "build")
//	Records           Get (all/some bins), GetHeader, Exists, Put, Delete (durable
//	                  flag accepted), Touch, Add, Append, Prepend, Operate
//	Write policy      RecordExistsAction UPDATE, UPDATE_ONLY, REPLACE, REPLACE_ONLY,
//	                  CREATE_ONLY; EXPECT_GEN_EQUAL, EXPECT_GEN_GT; TTL 0 (namespace
//	                  default), -1 (never), -2 (unchanged), n seconds (max 10 years);
//	                  RespondPerEachOp; SendKey (key stored and returned by scans)
//	Records metadata  16-bit generation incremented per write (wraps to 1),
//	                  last-update time, void time, set name, stored key
//	Record size       rejected with RECORD_TOO_BIG (13) above the namespace limit;
//	                  size = 16 + len(set) + len(stored key) + per bin
//	                  (len(name) + 2 + particle size; lists/maps by msgpack size)
//	CDT lists         all list ops (append, insert, pop, remove, set, trim, clear,
//	                  increment, sort, size, get, get/remove by index, rank, value,
//	                  value list, value interval, relative rank), ordered and
//	                  unordered lists, write flags, return types, INVERTED
//	CDT maps          all map ops (set type, add/put/replace and items, increment,
//	                  decrement, clear, size, get/remove by key, key list, key
//	                  interval, key-relative index, index, rank, value, value list,
//	                  value interval, value-relative rank), UNORDERED, KEY_ORDERED,
//	                  KEY_VALUE_ORDERED, write flags (create-only, update-only,
//	                  no-fail, partial), return types, INVERTED, INF and WILDCARD
//	CDT contexts      list index/rank/value, map index/rank/key/value, create flags
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
//	                  in both the pre-8.1 and the 8.1 syntax
//	Truncate          truncate and truncate-namespace, with or without lut
//	Compression       compressed requests (proto type 4, zlib); responses are
//	                  never compressed
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
// modelled. Where Aerospike's behaviour is not visible through the client
// source or its tests (for example the exact error for a CDT context that
// does not exist, taken here as ELEMENT_NOT_FOUND (23)), the server follows
// Aerospike's documentation; the differential tests are the arbiter when run
// against a real server.
//
// Costs follow a real server's shape closely enough for benchmarks: maps
// are kept sorted by key, and each map keeps a value-order index (built on
// first use), so key, rank and value lookups are binary searches. A write
// copies only the bins it modifies and, within a modified map, its entry
// array (a memory move, as a real server rewrites the record), except
// that a write which appends entries, or removes the first or the last,
// shares the array with the stored map (a high-water mark shared by the
// maps that use the array keeps a slot from being claimed twice); record
// sizes and map encodings are cached per stored value. Each connection
// keeps its read buffer, request body, parsed message, batch entries and
// response buffer from one request to the next, and a response goes out in
// one write, so that a small command costs little beyond the values it
// decodes and stores.
package aerospiketest
