package vnet

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"time"
)

// handshakeTimeout bounds a TLS handshake.
const handshakeTimeout = 10 * time.Second

// WithListenTLS makes the node's listeners ([Node.Listen], [Node.Serve])
// speak TLS: each connection they accept is a TLS server connection with
// cfg, whose handshake ends before the session starts. cfg must give a
// certificate (Certificates, GetCertificate or GetConfigForClient). For
// mutual TLS, set cfg.ClientAuth to tls.RequireAndVerifyClientCert and
// cfg.ClientCAs to the authorities of the clients' certificates: a peer
// without a valid certificate then gets no session. A handshake that fails
// or takes more than 10 s closes the connection and is logged. Without
// this option the node's listeners speak plain TCP. [Node.Attach] uses its
// connection as given.
func WithListenTLS(cfg *tls.Config) Option {
	return func(nd *Node) error {
		if cfg == nil || len(cfg.Certificates) == 0 && cfg.GetCertificate == nil && cfg.GetConfigForClient == nil {
			return fmt.Errorf("%w: TLS listening needs a certificate", ErrInvalidOption)
		}
		nd.listenTLS = cfg
		return nil
	}
}

// WithDialTLS makes [Node.Connect] speak TLS with cfg. The server's
// certificate is verified against cfg.RootCAs (the system's roots if nil)
// for the host of the address Connect is given, unless cfg.ServerName
// names another. For a server that requires client certificates, give
// cfg.Certificates. Connect returns the handshake's error, in which
// errors.As finds a *tls.CertificateVerificationError if the server's
// certificate was not trusted. Without this option Connect speaks plain
// TCP.
func WithDialTLS(cfg *tls.Config) Option {
	return func(nd *Node) error {
		if cfg == nil {
			return fmt.Errorf("%w: nil TLS config", ErrInvalidOption)
		}
		nd.dialTLS = cfg
		return nil
	}
}

// clientTLS runs a TLS client handshake over c with the node's dial
// configuration, for the server at address.
func (n *Node) clientTLS(ctx context.Context, c net.Conn, address string) (net.Conn, error) {
	cfg := n.dialTLS
	if cfg.ServerName == "" {
		if host, _, err := net.SplitHostPort(address); err == nil {
			cfg = cfg.Clone()
			cfg.ServerName = host
		}
	}
	ctx, cancel := context.WithTimeout(ctx, handshakeTimeout)
	defer cancel()
	tc := tls.Client(c, cfg)
	if err := tc.HandshakeContext(ctx); err != nil {
		return nil, fmt.Errorf("vnet: TLS handshake with %s: %w", address, err)
	}
	return tc, nil
}

// serverTLS runs a TLS server handshake over c, which the listener l
// accepted, and attaches the session; done is called when the session
// ends or the handshake fails. It runs on its own goroutine, so that a
// slow handshake does not hold up the accept loop.
func (n *Node) serverTLS(l net.Listener, c net.Conn, done func()) {
	defer n.wg.Done()
	ctx, cancel := context.WithTimeout(n.base, handshakeTimeout)
	defer cancel()
	tc := tls.Server(c, n.listenTLS)
	if err := tc.HandshakeContext(ctx); err != nil {
		c.Close()
		done()
		if !n.isClosed() {
			n.warn("tls", "vnet: TLS handshake failed", "addr", l.Addr().String(), "peer", c.RemoteAddr().String(), "err", err)
		}
		return
	}
	if err := n.attach(tc, false, done); err != nil {
		tc.Close()
	}
}
