// Package vnet is the default [chanserv.Multiplexer]: virtual listeners
// and connections carried as yamux streams (github.com/libp2p/go-yamux/v5)
// over TCP, TLS, or any other net.Conn.
//
// A [Node] is one participant. It serves peers that connect to it
// ([Node.Listen], [Node.Serve]) and connects to peers ([Node.Connect]);
// either way the link is one yamux session, usable in both directions.
// [Node.Bind] registers a virtual address (a service name, or "" / ":0"
// for a fresh ephemeral one), which the node advertises to every peer;
// [Node.DialTimeout] opens a stream to a peer that advertises the
// address, waiting for the advertisement if it has not arrived yet. A
// node does not dial its own addresses and does not forward: a service is
// reachable from the nodes directly linked to the one that bound it.
//
// # Security
//
// Without [WithListenTLS], a node's port is open to anyone who can reach
// it: peers are not authenticated, and every peer may dial every address
// the node binds. Listen on a loopback or private address, or use mutual
// TLS (a server certificate and required, verified client certificates),
// which authenticates each peer before its session starts. TLS wraps each
// TCP connection before the multiplexer; [Node.Attach] uses its
// connection as given.
//
// # Options
//
//   - [WithListenTLS]: the TLS configuration of the node's listeners: the
//     server certificate and, for mutual TLS, the client authorities.
//   - [WithDialTLS]: the TLS configuration of [Node.Connect]: the server
//     certificate is verified (against the system roots by default), and
//     a client certificate may be given.
//   - [WithMaxConns]: connections each listener serves at a time.
//   - [WithMaxStreams]: streams a peer may have open on one connection.
//   - [WithAcceptBacklog]: streams a peer has opened that the node has
//     not yet taken up.
//   - [WithWindow]: the receive window of each stream: how much a peer
//     may send on it before it is read.
//   - [WithSessionBuffer], [WithMaxBuffer]: bytes of receive window the
//     streams of one connection, and of the whole node, may hold.
//   - [WithKeepAlive]: how long a silent session waits before a ping, and
//     how long the node waits for the answer and for a write to go out.
//   - [WithLogger]: where diagnostics go.
//
// # Limits
//
// A node bounds what a peer can make it hold. The defaults suit a server
// with up to about a thousand peers:
//
//	connections per listener    1,024                  WithMaxConns
//	streams a peer has open     256 per connection     WithMaxStreams
//	streams awaiting the node   256 per connection     WithAcceptBacklog
//	streams awaiting preambles  1,024 per node         (at least WithMaxStreams)
//	receive window per stream   1 MiB                  WithWindow
//	  until its preamble is in  4 KiB                  (of WithMaxBuffer)
//	windows per connection      256 MiB (256 streams)  WithSessionBuffer
//	windows of the whole node   4 GiB                  WithMaxBuffer
//	ping after silence of       30 s                   WithKeepAlive
//	answer to a ping, writes    10 s                   WithKeepAlive
//	naming a stream's target    10 s
//	TLS handshake               10 s
//	ping replies queued         8 per connection (more are dropped)
//
// A connection past its listener's limit is closed at once; without TLS
// it is sent a yamux go-away first, and the refused node logs why. A
// stream past a limit is reset, and its opener sees [ErrRefused]; a
// stream to an address nobody binds is reset at once, and its opener
// sees [ErrNoRoute]; neither is held.
//
// Each stream reserves its whole window, which the peer may fill before
// anyone reads it; that is the most the node buffers for it. The two
// control streams of each connection count too: at 1,024 connections
// they reserve 2 GiB of the node's 4 GiB.
//
// A stream the node has accepted but whose preamble (the address it
// dials) the node has not read counts 4 KiB instead: until then it holds
// at most the preamble, 1,026 bytes, as a peer that sends more has named
// its target. Once named, it counts its whole window, and is refused if
// the node's budget has no room for it. At most 1,024 streams of all
// connections (or WithMaxStreams, if more) may await their preamble; a
// stream accepted past that resets, as refused, the one that has waited
// longest.
//
// Without this, streams cut short in their preamble locked a node: 16
// connections that each opened 256 streams and sent 5 bytes of each
// (70 KB in all) held the 4 GiB for the 10 s the node waits for a
// preamble, opening them again as they were reset, and every stream of
// every other peer was refused meanwhile. Now such streams hold at most
// 4 MiB of the budget, and each one opened past the bound takes the
// place of one held. A well-behaved peer's preamble comes with its first
// write, right behind the stream's opening, so the node reads it before
// the stream is the oldest. In internal/adversarial's truncated_frames
// attack, where 20 connections hold 5,120 such streams and open 2,400 a
// second in place of those reset, fresh sessions were all refused (9 of
// 9 in three runs) and are all served now (12 of 12 in three); the
// well-behaved clients' p99 latency is 4.7 to 7 times its baseline, where
// it was 1.4 to 3.3 times when the server refused the attack's other
// streams too, and the server's RSS grows by 74 to 86 MiB (39 before).
//
// The bound is on the node and not on each connection: a peer that dials
// 250 streams at once has 65 to 150 of them waiting for their preambles
// for a moment (measured on loopback), which a small bound per
// connection would reset. The 10 s a stream has to name its target are
// not what keeps the node free, so they stay: a peer on a slow link may
// queue a preamble behind seconds of other streams' data. Streams that
// go-yamux has queued for the node, which the node has not taken up yet,
// count their whole windows: 5,120 opened at once spend the 4 GiB until
// the node has taken them up, for a moment.
//
// A peer that reads nothing holds up the node's writers on its streams
// once their windows are full, and loses its session once a write to its
// connection has waited the keepalive timeout. A peer that stops
// answering pings loses its session, and its streams fail with
// [ErrKeepAlive].
//
// Accept errors that may pass (EMFILE, ENFILE and the other temporary
// ones) do not stop a listener: it waits 5 ms, doubling up to 1 s, and
// tries again. The node logs accept errors, refused connections and
// streams, failed TLS handshakes, missed keepalives and yamux's warnings
// at most once a second for each kind, with the count held back.
//
// # Connections
//
// Streams are wrapped to behave as a correct net.Conn (the wrapper passes
// golang.org/x/net/nettest's conformance suite): writes after their
// deadline fail with a timeout, and Close unblocks pending reads and
// writes. yamux's per-stream window gives each stream its own flow
// control, so a stalled reader blocks only its own stream.
//
// # Wire format
//
// Each session starts with both sides opening a control stream. Every
// stream starts with a preamble from the opener: a big-endian uint16
// length and the target address (length 0 for the control stream). The
// acceptor answers a service stream with one status byte, 0 (accepted),
// sent in front of its first write; the opener reads it on its first
// read, so opening a stream costs no round trip. A stream that is not
// accepted is reset instead, with code 1 (no such address) or 2 (a limit
// reached); yamux's own resets carry 0, and a status byte 1 also means no
// such address. On the control stream each side sends records: one byte
// (1 = bound, 2 = unbound), a big-endian uint16 length and the address.
// A listener refuses a connection with a go-away of code 0x766e01.
//
// # Choice of multiplexer
//
// vnet ran on github.com/hashicorp/yamux v0.1.2 before; go-yamux v5.1.0
// replaced it because a peer could take down a node through
// hashicorp/yamux. Measured on loopback with internal/abuse: a node with
// an echo service in its own process; one client making 64-byte round
// trips on another connection; a 10 s attack from a third connection
// that never reads. The machine has 2 shared cores, so round trip rates
// vary by ±40% between runs.
//
//	attack                 hashicorp/yamux         go-yamux, no    go-yamux with
//	                                               stream limit    vnet's limits
//	pings (12 bytes        9.5 MB sent: RSS        61 MB sent:     61 MB sent:
//	each, 61 MB at most)   450 MB, 128,838         RSS 11 MB,      RSS 11-13 MB,
//	                       goroutines, client      client 27,100   client 35,400
//	                       22,500 -> 383/s;        -> 23,100/s     -> 29,900/s and
//	                       15 MB: RSS > 2.1 GB                     28,300 -> 28,000/s
//	                       (stopped there)
//	window updates on      RSS 10 MB, client       RSS 6 MB,       RSS 8 MB,
//	one stream, 61 MB      unaffected              unaffected      unaffected
//	new streams (window    RSS 926-1,574 MB,       RSS 715 MB,     RSS 13-15 MB,
//	updates with SYN)      102,762-184,685         152,192         270 goroutines,
//	                       goroutines after,       goroutines,     client
//	                       client 0-1/s after      client 9,100/s  unaffected
//	2,000 streams of       RSS 1,233 MB, held      RSS 16 MB       RSS 20 MB
//	256 KiB to an          after the attack
//	unbound address
//
// hashicorp/yamux answers each ping from a new goroutine, which waits
// for the send loop; a peer that sends pings and reads nothing makes the
// node start goroutines without bound, and their memory stays with the
// process after the attack. go-yamux queues a few ping replies (vnet
// sets 8) and drops the rest. hashicorp/yamux cannot reset a stream and
// keeps the data of a stream the node closed until the peer closes it
// too; go-yamux can. go-yamux resets streams past a limit one by one,
// where hashicorp/yamux can only refuse a full accept backlog.
//
// The cost: go-yamux moves large frames with 30-60% more CPU (chanserv's
// BENCHMARKS.md), and it brings one small dependency,
// github.com/libp2p/go-buffer-pool.
//
// [chanserv.Multiplexer]: https://pkg.go.dev/github.com/beanspike/beanspike/chanserv#Multiplexer
package vnet
