// Package chanserv is a nested-channel network transport: a client posts
// a request to a service, and the server answers with a stream of
// sources, each a header followed by a stream of frames, each stream
// ending with a status that tells success from failure.
//
// It keeps the model of zenhotels/chanserv (request → sources → frames)
// and its [Multiplexer] seam, so an AstraNet instance plugs in unchanged,
// and fixes the original's defects: frames are never dropped (credit-based
// flow control instead of write timeouts), every stream ends with an
// explicit status carrying the error message, cancellation releases
// everything on both sides, every frame is size-checked before anything is
// allocated for it, compression never corrupts data, and the server shuts
// down gracefully.
//
// # Server
//
//	srv, _ := chanserv.NewServer(mux)
//	srv.Handle("jobs", chanserv.HandlerFunc(func(ctx context.Context, req *chanserv.Request, w chanserv.ResponseWriter) error {
//		src, err := w.NewSource(ctx, []byte("header"))
//		if err != nil {
//			return err
//		}
//		if err := src.WriteFrame(ctx, []byte("frame")); err != nil {
//			return err
//		}
//		return src.Close(nil) // or Close(err): the consumer gets the error
//	}))
//	defer srv.Shutdown(ctx) // drains in-flight requests; Close hard-stops
//
// The handler's returned error becomes the response's end status. Sources
// may be written concurrently from several goroutines.
//
// # Client
//
//	cl, _ := chanserv.NewClient(mux)
//	resp, err := cl.Post(ctx, "jobs", body)
//	for src, err := range resp.Sources(ctx) {
//		// err: *RemoteError, ErrTruncated, ctx's error...
//		for frame, err := range src.Frames(ctx) { ... }
//	}
//
// Next returns io.EOF only after an explicit successful end status, so a
// consumer can always tell "done" from "failed" (a [*RemoteError] with the
// server's message) and from "the connection broke" ([ErrTruncated]).
// Post's context governs the whole request: cancelling it, or calling
// [Response.Close], cancels the handler's context on the server.
// [RemoteSource.Close] abandons one source; its producer gets
// [ErrSourceClosed] and the other sources go on. A Response or
// RemoteSource that becomes unreachable without being closed is closed by
// the garbage collector, so a consumer that walks away leaks nothing.
//
// # Flow control and memory
//
// The server may have at most [WithWindow] bytes of data frames
// outstanding per source (sent and not yet read by the consumer, as
// counted by credits the client returns), and at most [WithMaxSources]
// sources open. A producer that gets ahead blocks in WriteFrame; nothing
// is dropped and other sources are unaffected. A client therefore
// buffers less than MaxSources × (Window + MaxFrameSize) bytes per
// response, whatever the consumer does. Client messages are bounded the
// same way by the server's [WithMessageWindow].
//
// # Long-lived streams and messages to the server
//
// A response may stay open as long as the client's context allows, with
// sources announced as events occur. The client can send small messages
// upstream on the same request with [Response.Send]; the handler reads
// them with [Request.Recv], in order. This is how a streaming reservation
// works:
//
//   - the worker posts RESERVE and then sends a credit message, say "3";
//   - the handler waits for up to 3 jobs, announcing each as a source
//     (header: job metadata; frames: the body), and then waits for more
//     credit with Recv;
//   - as the worker finishes a job it sends an ack or another credit on
//     the same request, or posts a separate request (Delete, Touch): a
//     Post costs one stream open on the multiplexer, no extra round trip;
//   - closing the response cancels the handler's context, which is the
//     server's cue to release jobs that were announced and not acked.
//
// [WithMaxSources] bounds how many announced sources the worker may hold
// unfinished; a source is finished when read to its end or closed.
//
// # Errors
//
// Test errors with [errors.Is]: [ErrRemote] (any failure reported by the
// server; [*RemoteError] carries its [Status], an application code and
// the message; [ErrShuttingDown] and [ErrAborted] match particular
// statuses), [ErrTruncated], [ErrProtocol], [ErrFrameTooLarge],
// [ErrSourceClosed], [ErrClosed]. Context errors are returned unwrapped.
// A handler that panics fails its request with [StatusError]; the server
// goes on.
//
// # Compression
//
// With [WithCompression], the server LZ4-compresses each data frame of
// more than 64 bytes through package codec, and sends it compressed only
// if that made it smaller; otherwise the frame goes raw. Whether a frame
// is compressed is told by its frame kind, never guessed from its
// contents, and the decoded size is checked against the client's limit
// before decoding. Frames are decompressed by the consumer's goroutine.
//
// # Multiplexers
//
// The default multiplexer is package vnet: yamux streams
// (github.com/libp2p/go-yamux/v5) over TCP or any net.Conn, with service
// advertisement between linked nodes. Package memmux is an in-memory
// multiplexer for tests and in-process use. An AstraNet instance (either
// fork) satisfies [Multiplexer]; pass [WithNetwork]("registry://key") to
// use its hash-ring balancing. chanserv opens exactly one stream per
// request and never binds ephemeral addresses, so AstraNet's broken
// host:port addressing in astranet/astranet v1.2.0 does not matter; avoid
// service names of exactly 11 base64url characters on zenhotels/astranet.
//
// AstraNet's connections are not well-behaved net.Conns: its DialTimeout
// returns before the peer accepts, its first Write waits for the peer's
// acknowledgement whatever the deadlines say, and its Close does not
// unblock a pending Read. The client does not depend on any of that:
// every wait of a request is bounded by its context, writes happen on
// goroutines of the response's own, and a cancelled or closed request
// does not wait for its stream's reader. Package quirkmux is an in-memory
// multiplexer with those quirks, which this package's tests run on
// besides memmux and vnet; package muxtest checks any multiplexer, an
// AstraNet instance included, for what chanserv needs.
//
// vnet runs on libp2p/go-yamux/v5 rather than hashicorp/yamux v0.1.2,
// which starts a goroutine per ping received and so lets one peer's ping
// flood take a node's memory (vnet's package doc gives the figures). By
// the measurements of BENCHMARKS.md, go-yamux opens streams more cheaply
// (about 40 fewer allocations and a third less CPU per request on the
// Connect benchmark) but costs 30-60% more CPU moving large frames
// (Heavy: 6.7 s against 4.5-5.1 s in the same run).
//
// # Performance
//
// A request costs one stream, two goroutines (the client's reader, which
// also writes the request, and the server's), and on each side one more
// goroutine, started by the first write after the request and woken for
// each burst of writes, which sends what was written in one piece: on the
// server, what the handler wrote; on the client, messages, credit and
// source closings, so that no caller waits on the stream. Over vnet
// on loopback TCP, a request answered by one source of one empty frame
// (BenchmarkConnect) takes about 80 allocations and 8.5 KiB, roughly half
// of the allocations inside yamux and 7 in the benchmark itself.
// BENCHMARKS.md has the figures.
//
// # Wire format, version 1
//
// A request uses one stream. Both directions start with an 8-byte
// preamble: "CHSV", the version byte 1, three zero bytes. The server
// reads the client's preamble and request before writing its own
// preamble, and closes the stream if the version is not one it speaks.
// Then both directions carry frames:
//
//	kind   u8
//	id     uvarint (at most 2^32-1): 0 for the request, else a source id
//	length uvarint: the payload's length, checked against the limit
//	payload
//
// Client to server:
//
//	0x01 REQUEST       id 0: uvarint window, uvarint max sources,
//	                   uvarint max frame size, uvarint timeout in
//	                   microseconds (0: none), uvarint flags (bit 0: the
//	                   client accepts 0x13 frames), then the body. Always
//	                   the first frame, and only once.
//	0x02 CREDIT        id source: uvarint n, the consumer read n more
//	                   bytes of data payload of the source.
//	0x03 SOURCE_SLOTS  id 0: uvarint n, n more sources may be announced.
//	0x04 MESSAGE       id 0: an application message.
//	0x05 CLOSE_SOURCE  id source: the consumer abandoned the source.
//
// Server to client:
//
//	0x11 SOURCE        new source id (ids are never reused in a
//	                   request): the source's header.
//	0x12 DATA          id source: a frame.
//	0x13 DATA_CODEC    id source: a frame encoded by package codec (a
//	                   self-describing tag, the raw length and an LZ4
//	                   block).
//	0x14 END_SOURCE    id source: status u8, uvarint code, message.
//	0x15 END           id 0: status u8, uvarint code, message. Last frame.
//	0x16 MSG_CREDIT    id 0: uvarint n, the client may send n more bytes
//	                   of messages. The first frame after the preamble.
//
// Rules: the server may send a DATA frame on a source while the bytes
// it has sent on it minus the credits received are below the window (so
// one frame may overshoot it); it may announce a source while slots
// remain (max sources at first); the client may send a message while its
// message credit is positive. A peer that breaks a rule, sends an
// unknown kind, or a frame over its limit, is a protocol error: the
// stream is closed. END_SOURCE is sent for every source before END.
// Closing the stream before END aborts the request; a stream that ends
// without END is truncated. Integers in payloads are unsigned varints as
// in encoding/binary.
package chanserv
