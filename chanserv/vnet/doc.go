// Package vnet is the default [chanserv.Multiplexer]: virtual listeners
// and connections carried as yamux streams (github.com/libp2p/go-yamux/v5)
// over ordinary connections (TCP, TLS, anything that is a net.Conn).
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
// # Wire format
//
// Each session starts with both sides opening a control stream. Every
// stream starts with a preamble from the opener: a big-endian uint16
// length and the target address (length 0 for the control stream). The
// acceptor answers a service stream with one status byte, 0 (accepted) or
// 1 (no such address), sent in front of its first write; the opener reads
// it on its first read, so opening a stream costs no round trip. On the
// control stream each side sends records: one byte (1 = bound, 2 =
// unbound), a big-endian uint16 length and the address.
//
// # Connections
//
// Streams are wrapped to behave as a correct net.Conn (the wrapper passes
// golang.org/x/net/nettest's conformance suite): writes after their
// deadline fail with a timeout, and Close unblocks pending reads and
// writes. yamux's per-stream window gives each stream its own flow
// control, so a stalled reader blocks only its own stream.
//
// # Choice of multiplexer
//
// vnet ran on github.com/hashicorp/yamux v0.1.2 before; go-yamux v5.1.0
// replaced it because a peer could take down a node through
// hashicorp/yamux. Measured on loopback with internal/abuse (a node with
// an echo service in its own process; one client making 64-byte round
// trips on another connection; a 10 s attack from a third connection
// that never reads; 2 shared cores, so round trip rates vary by ±40%
// between runs):
//
//	attack                   hashicorp/yamux            go-yamux/v5
//	ping flood (12-byte      9.5 MB sent: RSS 450 MB,   61 MB sent: RSS 11 MB,
//	pings)                   128,838 goroutines;        9 goroutines;
//	                         15 MB sent: RSS > 2.1 GB   client 27,100 -> 23,100/s
//	                         (killed there);            and 34,000 -> 14,200/s
//	                         client 22,500 -> 383/s
//	window updates on one    61 MB sent: RSS 10 MB,     61 MB sent: RSS 6 MB,
//	stream                   client unaffected          client unaffected
//	2,000 streams x 256 KiB  RSS 1,233 MB, still held   RSS 16 MB
//	of data to an address    after the attack
//	nobody bound
//
// hashicorp/yamux answers each ping from a new goroutine, which waits
// for the send loop; a peer that sends pings and reads nothing makes the
// node spawn goroutines without bound, and their memory is not returned
// after the attack. go-yamux queues at most 32 ping replies and drops the
// rest. hashicorp/yamux has no stream reset and keeps the data of a stream
// closed by the node until the peer closes it too; go-yamux's Close drops
// it. go-yamux also resets streams past a limit (MaxIncomingStreams) one by
// one, where hashicorp/yamux can only refuse a full accept backlog.
//
// The cost: go-yamux moves large frames with 30-60% more CPU (chanserv's
// BENCHMARKS.md) and adds one small dependency
// (github.com/libp2p/go-buffer-pool).
//
// [chanserv.Multiplexer]: https://pkg.go.dev/github.com/beanspike/beanspike/chanserv#Multiplexer
package vnet
