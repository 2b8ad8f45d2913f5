// Package beanstalk serves beanstalkd's text protocol over any
// [beanspike.Queue] store, so that existing beanstalkd clients and tools
// work unchanged on top of any beanspike backend.
//
// Each connection is one client of the store: [NewServer] takes a
// function that opens a client, calls it once per connection and closes
// the client when the connection ends. A connection's reservations
// therefore belong to it, and return to ready when it closes or quits.
//
//	root, _ := memory.New()
//	srv, _ := beanstalk.NewServer(func() (beanspike.Queue, error) { return root.NewClient() })
//	l, _ := net.Listen("tcp", ":11300")
//	go srv.Serve(l)
//	...
//	srv.Shutdown(ctx) // or srv.Close()
//
// # Commands
//
// Every command of beanstalkd's protocol.txt is served, with the replies,
// error lines and YAML documents of beanstalkd 1.12 (the version Debian 12
// ships, against which the differential tests run). beanstalkd 1.13
// differs in two places a client may see: it quotes the strings of its
// YAML documents (name: "default"), and it answers BAD_FORMAT to a
// reserve-with-timeout whose argument is negative, not a number or over
// 2^31-1, which 1.12 reads as C's strtol does.
//
// Beanstalkd's protocol has no authentication and no encryption: anyone
// who can reach the port can put, reserve, delete and pause. Listen on
// loopback or a private network only.
//
// Commands:
//
//	put <pri> <delay> <ttr> <bytes>   use <tube>
//	reserve                           reserve-with-timeout <seconds>
//	reserve-job <id>                  delete <id>
//	release <id> <pri> <delay>        bury <id> <pri>
//	touch <id>                        watch <tube>
//	ignore <tube>                     peek <id>
//	peek-ready                        peek-delayed
//	peek-buried                       kick <bound>
//	kick-job <id>                     stats-job <id>
//	stats-tube <tube>                 stats
//	list-tubes                        list-tube-used
//	list-tubes-watched                pause-tube <tube> <delay>
//	quit
//
// The parser reproduces beanstalkd's, quirks included: commands are
// matched by prefix in beanstalkd's order ("reservex" is a malformed
// reserve, "quitx" quits); a command line may be 224 bytes with its CRLF,
// and a longer one is discarded up to its CRLF and answered BAD_FORMAT; a
// line ends at its first CR only if a LF follows; reserve-with-timeout
// and kick read their argument as C's strtol and strtoul do; a put whose
// size exceeds the maximum job size is answered JOB_TOO_BIG after its
// body is read and discarded, and the connection goes on; a body not
// followed by CRLF is answered EXPECTED_CRLF. Each reply is written
// before the next command runs, so that, as with beanstalkd, the
// commands a client pipelined before it went away stop at the first
// reply that cannot be written. Delays, TTRs and pauses are whole seconds, and a TTR of
// 0 becomes 1.
//
// What the Queue contract does not carry, the front end keeps itself:
// the used tube and watch list of each connection (default "default"),
// the tubes connections reference (they exist, and list-tubes and
// stats-tube show them, as in beanstalkd), the per-tube using, watching
// and waiting counts, the command counters of stats, and each
// connection's reservations with their deadlines, from which it answers
// DEADLINE_SOON: a reserve by a connection whose soonest reservation is
// within the last second of its TTR gets DEADLINE_SOON unless a job is
// ready at once, and a waiting reserve ends with DEADLINE_SOON when that
// second begins. A waiting reserve whose connection is half-closed ends
// with TIMED_OUT.
//
// Backend errors map to replies: ErrNotFound and ErrNotReserved to
// NOT_FOUND, ErrJobTooBig to JOB_TOO_BIG, ErrInvalidTube and
// ErrInvalidArgument to BAD_FORMAT, ErrUnavailable to OUT_OF_MEMORY
// (beanstalkd's "try again later"), anything else to INTERNAL_ERROR; a
// closed client closes the connection.
//
// # Intended differences from beanstalkd
//
//   - Ready jobs of equal priority are reserved in the order they became
//     ready (the contract's rule); beanstalkd takes the lowest job ID, so
//     there a released job goes ahead of older ones.
//   - Tubes live in the store from their first put until they are
//     deleted; beanstalkd drops a tube once it is empty and unreferenced.
//     list-tubes lists tubes in lexical order, not creation order.
//   - stats describes this process: pid, version ("beanspike …"),
//     rusage, uptime, id and hostname are this server's; the binlog
//     fields are 0; os and platform are Go's GOOS and GOARCH. Job counts
//     come from the store (all its clients); connection and command
//     counts, current-waiting and job-timeouts from this server (a
//     timeout counts when a connection's own reservation lapses).
//   - With [WithDeleteTube], the extension command "delete-tube <tube>"
//     deletes a tube and its jobs and answers "DELETED <count>".
//   - beanstalkd notices a half-closed connection while a reserve waits
//     even with unread input behind it; the front end notices it only
//     while that input fits its 4 KiB read buffer.
//
// # Limits and lifetime
//
// A connection holds at most a 4 KiB read buffer, a 4 KiB write buffer
// and the body of the put it is reading, bounded by [WithMaxJobSize]
// (default 65535 bytes, as beanstalkd's -z). A body's buffer grows as its
// bytes arrive (up to twice what arrived), so that announcing a large
// body costs nothing until it is sent; the memory of a large body whose
// client went away half-way is given back to the operating system at
// once (at most once a second). [WithIdleTimeout] closes
// connections that send nothing for a while; it is off by default, as in
// beanstalkd. [Server.SetDraining] puts the server in drain mode, as
// beanstalkd's SIGUSR1 does. [Server.Shutdown] stops accepting, drains,
// ends waiting reserves with TIMED_OUT and closes each connection once it
// holds no reservation; [Server.Close] closes everything at once.
//
// # Tests
//
// The differential tests run the same scripted sessions, over raw sockets
// and through github.com/beanstalkd/go-beanstalk, against a beanstalkd
// subprocess and against this package over the memory backend, and
// compare the replies byte for byte. They need the beanstalkd binary:
// without it they are skipped, or fail when the CI environment variable
// is set. Package bench measures both servers with the same client in the
// same run (targets beanstalkd and beanstalk+memory):
//
//	go test -race ./beanstalk/
//	go test -run '^$' -bench 'Compare/.*/beanstalk' ./bench/
//	go test -run XXX -fuzz FuzzConn -fuzztime 1m -fuzzminimizetime 5s ./beanstalk/
package beanstalk
