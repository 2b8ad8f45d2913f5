package chanserv

import (
	"context"
	"errors"
	"fmt"
	"net"
	"time"

	"github.com/beanspike/beanspike/chanserv/internal/wire"
)

// Multiplexer opens and accepts virtual connections by address. It is the
// seam of zenhotels/chanserv and AstraNet, unchanged: an AstraNet instance
// satisfies it without an adapter. network is passed through untouched
// (AstraNet reads "registry://bucket" as a balancing hint); chanserv passes
// "" unless [WithNetwork] says otherwise.
type Multiplexer interface {
	// Bind listens on the virtual address laddr (a service name).
	Bind(network, laddr string) (net.Listener, error)
	// DialTimeout connects to the virtual address, waiting at most
	// timeout (zero means the multiplexer's default).
	DialTimeout(network, address string, timeout time.Duration) (net.Conn, error)
}

// ContextDialer is an optional upgrade of a [Multiplexer]: when the
// multiplexer implements it, the client dials with the request's context
// instead of a timeout.
type ContextDialer interface {
	DialContext(ctx context.Context, network, address string) (net.Conn, error)
}

// Errors returned by this package. Test for them with [errors.Is].
var (
	// ErrClosed means the Client, Server, response or source was closed
	// locally. Nothing more will be delivered.
	ErrClosed = errors.New("chanserv: closed")

	// ErrServerClosed is returned by [Server.Serve] and [Server.Handle]
	// after [Server.Shutdown] or [Server.Close].
	ErrServerClosed = errors.New("chanserv: server closed")

	// ErrSourceClosed is returned by [SourceWriter.WriteFrame] when the
	// consumer closed the source, or when the source was already closed
	// by the server. The producer should stop; the request goes on.
	ErrSourceClosed = errors.New("chanserv: source closed")

	// ErrFrameTooLarge means a frame, request body or message is longer
	// than the limit of the side that would have to receive it. Nothing
	// was sent. When a peer sends one, the stream fails with
	// [ErrProtocol] wrapping it.
	ErrFrameTooLarge = errors.New("chanserv: frame too large")

	// ErrProtocol means the peer broke the protocol (bad preamble,
	// unknown frame, exceeded credit). The stream is closed.
	ErrProtocol = errors.New("chanserv: protocol violation")

	// ErrTruncated means a response or source ended without an end
	// status: the connection was lost, or the server was killed. Data
	// already delivered is intact, but more may have been sent.
	ErrTruncated = errors.New("chanserv: stream truncated")

	// ErrRemote matches every [*RemoteError]: the server reported that
	// the request or a source failed.
	ErrRemote = errors.New("chanserv: remote error")

	// ErrShuttingDown matches a [*RemoteError] with [StatusShuttingDown]:
	// the server aborted the request because it was shutting down. The
	// request may be retried on another server.
	ErrShuttingDown = errors.New("chanserv: server shutting down")

	// ErrAborted matches a [*RemoteError] with [StatusAborted]: the server
	// abandoned a source or request (its handler returned without closing
	// a source, or the request was cancelled on the server).
	ErrAborted = errors.New("chanserv: aborted by server")
)

// Status is the end status of a response or a source, as sent on the wire.
type Status uint8

// Statuses. Values up to 63 are reserved for this package.
const (
	// StatusOK: the response or source ended normally.
	StatusOK Status = 0
	// StatusError: the handler or producer failed with an error.
	StatusError Status = 1
	// StatusAborted: the server abandoned the source or request.
	StatusAborted Status = 2
	// StatusShuttingDown: the server was shutting down.
	StatusShuttingDown Status = 3
	// StatusDeadline: the request's deadline passed on the server.
	StatusDeadline Status = 4
	// StatusProtocol: the server saw a protocol violation or an
	// exceeded limit in the request.
	StatusProtocol Status = 5
)

// String names the status.
func (s Status) String() string {
	switch s {
	case StatusOK:
		return "ok"
	case StatusError:
		return "error"
	case StatusAborted:
		return "aborted"
	case StatusShuttingDown:
		return "shutting down"
	case StatusDeadline:
		return "deadline exceeded"
	case StatusProtocol:
		return "protocol error"
	}
	return fmt.Sprintf("status(%d)", uint8(s))
}

// RemoteError is a failure reported by the server in an end status. A
// handler may return one to choose the status and an application-defined
// code; any other error is sent as [StatusError] with code 0 and the
// error's text.
type RemoteError struct {
	Status  Status
	Code    uint32 // application-defined; 0 unless the handler set it
	Message string
}

// Error returns the status, code and message.
func (e *RemoteError) Error() string {
	if e.Code != 0 {
		return fmt.Sprintf("chanserv: remote %s (code %d): %s", e.Status, e.Code, e.Message)
	}
	return fmt.Sprintf("chanserv: remote %s: %s", e.Status, e.Message)
}

// Is matches [ErrRemote] always, [ErrShuttingDown] and [ErrAborted] by
// status, and [context.DeadlineExceeded] for [StatusDeadline].
func (e *RemoteError) Is(target error) bool {
	switch target {
	case ErrRemote:
		return true
	case ErrShuttingDown:
		return e.Status == StatusShuttingDown
	case ErrAborted:
		return e.Status == StatusAborted
	case context.DeadlineExceeded:
		return e.Status == StatusDeadline
	}
	return false
}

// statusOf turns a handler's or producer's error into an end status.
func statusOf(err error) (wire.Status, uint32, string) {
	if err == nil {
		return wire.Status(StatusOK), 0, ""
	}
	var re *RemoteError
	switch {
	case errors.As(err, &re):
		return wire.Status(re.Status), re.Code, re.Message
	case errors.Is(err, ErrAborted):
		return wire.Status(StatusAborted), 0, err.Error()
	case errors.Is(err, ErrShuttingDown):
		return wire.Status(StatusShuttingDown), 0, err.Error()
	case errors.Is(err, context.DeadlineExceeded):
		return wire.Status(StatusDeadline), 0, err.Error()
	case errors.Is(err, context.Canceled), errors.Is(err, ErrSourceClosed), errors.Is(err, ErrClosed):
		return wire.Status(StatusAborted), 0, err.Error()
	}
	return wire.Status(StatusError), 0, err.Error()
}

// errOfStatus is the inverse of statusOf on the client.
func errOfStatus(p []byte) error {
	st, code, msg, err := wire.ParseStatus(p)
	if err != nil {
		return fmt.Errorf("%w: %v", ErrProtocol, err)
	}
	if Status(st) == StatusOK {
		return nil
	}
	return &RemoteError{Status: Status(st), Code: code, Message: msg}
}
