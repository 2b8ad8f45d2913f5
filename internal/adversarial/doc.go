// Package adversarial holds beanspike's adversarial test suite: it
// builds the beanspike command, runs `beanspike serve` as a child process
// on loopback (memory store, the remote port and the beanstalk port), and
// attacks it while well-behaved clients use it. The package has no code
// of its own; its tests are the suite, which `go test ./...` runs.
//
// # Attacks
//
// Each attack lasts a few seconds, beside a well-behaved client on each
// port that makes put, reserve and delete round trips, one every 4 ms.
//
// On the remote port: yamux ping, window-update and stream-open floods;
// streams to an unknown service filled with data; garbage at every layer
// (yamux, vnet, chanserv, remote calls); frames cut short at every layer,
// held or hung up on; lengths of 4 GiB and more declared in a yamux data
// frame, a chanserv request, a remote call, a tube name and a token;
// requests dribbled a byte at a time, 800 at once; window updates that
// make no sense; as many connections as the server serves and 128 more;
// sessions that ask to peek at a job of 1 MiB thousands of times and
// never read the replies.
//
// On the beanstalk port: garbage; puts that declare bodies of 4 GiB and
// 2^64 bytes; lines that never end; connections that pipeline peeks and
// never read; more connections than the server has file descriptors (it
// runs with 2,048, when the test process may open that many).
//
// On a server that requires a token: sessions without it, or with a
// wrong one, that make calls all the same; peek amplification without
// it.
//
// Floods are paced (frames at 512 KiB/s, stream openings at half that,
// data at 64 MiB/s): fast enough
// to fill every queue and limit the server keeps for a peer, slow enough
// that what is measured is the server, not two processors shared between
// the server, the attacker and the clients. Frames are crafted by package
// github.com/beanspike/beanspike/internal/adversarial/frame.
//
// # What each attack must leave intact
//
//   - Each well-behaved client's p99 latency, during the attack and
//     again once it has ended, stays under 10 times its baseline: the
//     larger of two short baselines taken just before, each a p99 over at
//     least 300 round trips. None of its round trips fails.
//   - The server's resident set (VmRSS of its process) stays under what
//     it was before the attack plus 256 MiB. Past 1 GiB more, the server
//     is killed, so that a failure cannot take the machine's memory.
//   - No listener stops: once the attack ends, a fresh connection on each
//     port is served (a put and a delete), within 15 s.
//   - The server logs at most 5 lines in any one second: vnet and the
//     remote server log a misbehaving peer at most once a second for each
//     kind of line (package internal/lograte).
//   - With a token required, nothing is served without it: no session
//     opens, no call is answered, nothing is stored.
//   - A server stops working for a client that has hung up: 2 s after the
//     slow readers of the beanstalk port hang up, the port counts none of
//     their connections.
//
// Each attack logs its figures with t.Logf: the p99 before, during and
// after it and their ratios, the round trips measured, whether fresh
// connections were served during the attack (checked by the attacks that
// must not lock others out, truncated_frames among them, not by all: a
// connection flood is meant to refuse them), the server's RSS before and
// at its
// peak, the most log lines of any second, and the processor time the
// server and the test process used.
//
// # Limits
//
// The suite runs on Linux only (it reads /proc), and not with -short. It
// takes about two minutes. The server runs without the race detector; the
// test process, clients and attackers included, runs with it when asked.
// Latency is measured on a machine that may be busy with other work: an
// attack whose latency check alone fails is run again, with new
// baselines, and fails only if it fails twice; so the suite finds a
// server that an attack slows down every time, and may miss one it slows
// down now and then. After an attack that failed, the next one gets a new
// server. A connection flood opens at most what the test process's file
// descriptor limit allows, and says so when that bounds it.
package adversarial
