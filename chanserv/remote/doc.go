// Package remote serves a beanspike job store over the chanserv transport
// and provides the matching client, which is itself a [beanspike.Queue]
// and a [beanspike.Batcher].
//
// # Server
//
//	srv, _ := remote.NewServer(func() (beanspike.Queue, error) { return store.NewClient() })
//	node, _ := vnet.New()
//	srv.Listen(node, remote.DefaultService)
//	node.Listen("tcp", "127.0.0.1:7420")
//	...
//	srv.Shutdown(ctx)
//
// Any store can be served: the memory backend, Aerospike, or another
// remote client. A [Server] is also a [chanserv.Handler], so it can be
// mounted on a chanserv server of the caller's.
//
// # Client
//
// For a server on TCP, as `beanspike serve` runs one:
//
//	q, _ := remote.DialTCP(ctx, "127.0.0.1:7420")
//	defer q.Close()
//	id, _ := q.Put(ctx, "emails", body)
//
// Over a multiplexer of the caller's (a vnet node linked to others, an
// AstraNet instance):
//
//	q, _ := remote.Dial(ctx, node, remote.DefaultService)
//
// # Access
//
// A server takes every client unless given [WithTokenCheck]; then a
// client opens a session only with a token it accepts ([WithToken]), and
// one without gets [ErrUnauthorized] before anything is served. The token
// is sent in the clear over a plain transport: on an untrusted network,
// run the transport over TLS (vnet.WithListenTLS on the server's node,
// [WithNodeOptions] with vnet.WithDialTLS on the client's), which can
// also require client certificates.
//
// # Sessions
//
// A client holds one session at a time: one chanserv request that lasts
// as long as the session, carrying its calls upstream as messages and
// the replies downstream on one source, so a call costs one message and
// one frame, with no stream to open. Concurrent calls share the session
// and do not wait for each other. On the server, each session has its
// own Queue client of the store, so the session owns its reservations,
// as a beanstalkd connection does. When the session ends — Close, a lost
// connection, a killed process, a server shutdown — the server closes
// that Queue client and its reservations return to ready at once; TTR
// remains the backstop for a peer that vanishes without the connection
// failing.
//
// A client finds a lost session when the transport fails, when the
// server ends it, or when the server stops answering: it pings a session
// that has been quiet for a while and gives it up if the ping is not
// answered in as long ([WithKeepalive]; 5 s by default, so a hung server
// is found out within about 11 s). It then opens a new session in the
// background, with backoff ([WithBackoff]); calls made meanwhile wait for
// it as long as their context allows. Nothing is needed from the caller,
// but the reservations of the lost session are gone.
//
// # Failures and retries
//
// A call either succeeds, fails with the error its server gave, or fails
// because the session was lost ([beanspike.ErrUnavailable]). In the last
// case the call may or may not have been carried out:
//
//   - An error that also wraps [ErrOutcomeUnknown] means the call was
//     sent and its reply lost. A Put may have stored its job: putting it
//     again may store it twice. A Delete, Release, Bury or Kick may have
//     been done. A Reserve's job, if it took one, was returned to ready
//     with the session.
//   - Without ErrOutcomeUnknown, the call did not reach the server (it
//     found the session already lost and no new one could be opened in
//     time), and can be made again as it was.
//
// Like beanstalkd, the queue delivers at least once: a job a worker
// took may come again if its reservation is lost before the Delete. A
// Put that must not be duplicated needs a key of the application's in
// its body, checked by the consumer.
//
// # Reservations
//
// A Reserve asks for one job and ReserveBatch for up to n: the server
// reserves that many (blocking for the first, as Reserve does), and sends
// them one after the other, each with its body, which travels in the
// reply's frames when it is long, under the transport's credit flow
// control. A Reserve whose context is already done is a poll on the
// server. A cancelled Reserve withdraws its request and waits, at most
// the call timeout ([WithCallTimeout]), for the server to confirm it took
// nothing; a job that the server reserved before the cancellation
// arrived is returned. A job that reaches no caller — the caller gave up
// waiting, or the reply could not be written — is released at once with
// its priority, by the client or by the server, so nothing waits for its
// TTR.
//
// # Errors
//
// Errors cross the wire with their sentinel: test them with [errors.Is]
// against [beanspike.ErrNotFound], [beanspike.ErrNotReserved] and the
// others. A lost session, a server shutting down or a server that cannot
// be reached give [beanspike.ErrUnavailable] (with [ErrNotAnswering] when
// keepalives found the server hung, and [ErrOutcomeUnknown] when the
// call may have been carried out); a closed client gives
// [beanspike.ErrClosed]; a cancelled call returns its context's error,
// unwrapped.
//
// # Wire format
//
// The session's request body is "BSPK", a version byte (2) and the
// longest frame the client accepts (uvarint). The reply source's header
// is the hello: the version, the largest message the server accepts and
// the store's body limit. Each call is a message: an op byte, a call id
// (uvarint), then its arguments; each reply is a frame: the call id, a
// status code (0 or an error code, followed by the error's text), then
// its result. Integers are varints as in encoding/binary, strings a
// uvarint length and bytes, durations signed varints of nanoseconds. A
// job's body longer than 64 KiB follows its reply in frames of at most
// 64 KiB (or the client's frame limit, if lower). A reply longer than
// the client's frames, such as the tube list of a store with many tubes,
// is sent long: a frame with the call id, the code 255 and the reply's
// length, then the reply in frames. A server also serves version-1
// clients, which send no frame limit and cannot take long replies: a
// reply too long for them fails with [errors.ErrUnsupported].
//
// A client allocates for a job body or a long reply as its frames
// arrive, and refuses (ending the session) one announced longer than the
// larger of the two limits in the hello, and never longer than 1 GiB.
package remote
