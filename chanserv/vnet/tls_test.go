package vnet_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"log/slog"
	"math/big"
	"net"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/beanspike/beanspike/chanserv/vnet"
)

// testCA is a certificate authority made for one test.
type testCA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	pool *x509.CertPool
}

func newCA(t *testing.T, name string) *testCA {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: name},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		IsCA:                  true,
		KeyUsage:              x509.KeyUsageCertSign,
		BasicConstraintsValid: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	return &testCA{cert: cert, key: key, pool: pool}
}

// issue makes a certificate for 127.0.0.1 and localhost, for a server
// or a client.
func (ca *testCA) issue(t *testing.T, name string, usage x509.ExtKeyUsage) tls.Certificate {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()),
		Subject:      pkix.Name{CommonName: name},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{usage},
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1)},
		DNSNames:     []string{"localhost"},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
}

// tlsServer starts a node serving an echo service over TLS with cfg; it
// returns the node, its address, its log and a count of the connections
// the echo service accepted.
func tlsServer(t *testing.T, cfg *tls.Config) (string, *recordHandler, *atomic.Int32) {
	t.Helper()
	h := &recordHandler{}
	a := newNode(t, vnet.WithListenTLS(cfg), vnet.WithLogger(slog.New(h)))
	l, err := a.Bind("", "echo")
	if err != nil {
		t.Fatal(err)
	}
	var accepted atomic.Int32
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			accepted.Add(1)
			go func() {
				var b [1]byte
				for {
					if _, err := c.Read(b[:]); err != nil {
						break
					}
					if _, err := c.Write(b[:]); err != nil {
						break
					}
				}
				c.Close()
			}()
		}
	}()
	addr, err := a.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	return addr.String(), h, &accepted
}

func dialTLS(t *testing.T, addr string, cfg *tls.Config) (*vnet.Node, error) {
	t.Helper()
	b := newNode(t, vnet.WithDialTLS(cfg))
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return b, b.Connect(ctx, "tcp", addr)
}

func TestTLS(t *testing.T) {
	ca := newCA(t, "ca")
	addr, _, accepted := tlsServer(t, &tls.Config{Certificates: []tls.Certificate{ca.issue(t, "server", x509.ExtKeyUsageServerAuth)}})
	b, err := dialTLS(t, addr, &tls.Config{RootCAs: ca.pool})
	if err != nil {
		t.Fatal(err)
	}
	c, err := roundTrip(b, "echo")
	if err != nil {
		t.Fatal(err)
	}
	c.Close()
	if accepted.Load() != 1 {
		t.Fatalf("echo accepted %d connections, want 1", accepted.Load())
	}
	// A peer without TLS gets nothing.
	plain := newNode(t)
	connect(t, plain, addr)
	if _, err := plain.DialTimeout("", "echo", 300*time.Millisecond); !errors.Is(err, vnet.ErrNoRoute) {
		t.Fatalf("dial without TLS: %v, want ErrNoRoute", err)
	}
}

func TestTLSUntrustedServer(t *testing.T) {
	ca, other := newCA(t, "ca"), newCA(t, "other")
	addr, h, _ := tlsServer(t, &tls.Config{Certificates: []tls.Certificate{ca.issue(t, "server", x509.ExtKeyUsageServerAuth)}})
	_, err := dialTLS(t, addr, &tls.Config{RootCAs: other.pool})
	var verr *tls.CertificateVerificationError
	if !errors.As(err, &verr) {
		t.Fatalf("connect to an untrusted server: %v, want a certificate verification error", err)
	}
	if !strings.Contains(err.Error(), "TLS handshake with "+addr) {
		t.Fatalf("error %q does not say which handshake failed", err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for len(h.lines(slog.LevelWarn, "TLS handshake failed")) == 0 {
		if time.Now().After(deadline) {
			t.Fatal("the server did not log the failed handshake")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestTLSServerName(t *testing.T) {
	ca := newCA(t, "ca")
	addr, _, _ := tlsServer(t, &tls.Config{Certificates: []tls.Certificate{ca.issue(t, "server", x509.ExtKeyUsageServerAuth)}})
	// The certificate is for 127.0.0.1 and localhost, not this name.
	_, err := dialTLS(t, addr, &tls.Config{RootCAs: ca.pool, ServerName: "elsewhere.example"})
	var verr *tls.CertificateVerificationError
	if !errors.As(err, &verr) {
		t.Fatalf("connect to a server under another name: %v, want a certificate verification error", err)
	}
}

func TestMutualTLS(t *testing.T) {
	ca, other := newCA(t, "ca"), newCA(t, "other")
	addr, h, accepted := tlsServer(t, &tls.Config{
		Certificates: []tls.Certificate{ca.issue(t, "server", x509.ExtKeyUsageServerAuth)},
		ClientAuth:   tls.RequireAndVerifyClientCert,
		ClientCAs:    ca.pool,
	})
	t.Run("valid certificate", func(t *testing.T) {
		b, err := dialTLS(t, addr, &tls.Config{RootCAs: ca.pool, Certificates: []tls.Certificate{ca.issue(t, "client", x509.ExtKeyUsageClientAuth)}})
		if err != nil {
			t.Fatal(err)
		}
		c, err := roundTrip(b, "echo")
		if err != nil {
			t.Fatal(err)
		}
		c.Close()
	})
	served := accepted.Load()
	for _, tc := range []struct {
		name  string
		certs []tls.Certificate
	}{
		{"no certificate", nil},
		{"certificate from another CA", []tls.Certificate{other.issue(t, "client", x509.ExtKeyUsageClientAuth)}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := len(h.lines(slog.LevelWarn, "TLS handshake failed"))
			if before > 0 {
				time.Sleep(1100 * time.Millisecond) // the node logs these once a second
			}
			// With TLS 1.3 the client's handshake ends before the server
			// checks its certificate, so Connect may succeed; either
			// way, no stream is served.
			b := newNode(t, vnet.WithDialTLS(&tls.Config{RootCAs: ca.pool, Certificates: tc.certs}))
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			if err := b.Connect(ctx, "tcp", addr); err == nil {
				if _, err := b.DialTimeout("", "echo", 300*time.Millisecond); !errors.Is(err, vnet.ErrNoRoute) {
					t.Fatalf("dial without a valid client certificate: %v, want ErrNoRoute", err)
				}
			}
			if got := accepted.Load(); got != served {
				t.Fatalf("echo accepted %d connections without a valid client certificate", got-served)
			}
			deadline := time.Now().Add(5 * time.Second)
			for len(h.lines(slog.LevelWarn, "TLS handshake failed")) == before {
				if time.Now().After(deadline) {
					t.Fatal("the server did not log the failed handshake")
				}
				time.Sleep(10 * time.Millisecond)
			}
		})
	}
}

func TestTLSOptionsValidated(t *testing.T) {
	for name, o := range map[string]vnet.Option{
		"nil listen config":     vnet.WithListenTLS(nil),
		"listen without a cert": vnet.WithListenTLS(&tls.Config{}),
		"nil dial config":       vnet.WithDialTLS(nil),
	} {
		if _, err := vnet.New(o); !errors.Is(err, vnet.ErrInvalidOption) {
			t.Errorf("%s: %v, want ErrInvalidOption", name, err)
		}
	}
}

// TestTLSHandshakeDoesNotBlockAccept checks that a peer that connects and
// says nothing does not hold up other peers' handshakes.
func TestTLSHandshakeDoesNotBlockAccept(t *testing.T) {
	ca := newCA(t, "ca")
	addr, _, _ := tlsServer(t, &tls.Config{Certificates: []tls.Certificate{ca.issue(t, "server", x509.ExtKeyUsageServerAuth)}})
	for range 3 {
		silent, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer silent.Close()
	}
	b, err := dialTLS(t, addr, &tls.Config{RootCAs: ca.pool})
	if err != nil {
		t.Fatal(err)
	}
	c, err := roundTrip(b, "echo")
	if err != nil {
		t.Fatal(err)
	}
	c.Close()
}

func TestTLSMaxConns(t *testing.T) {
	ca := newCA(t, "ca")
	a := newNode(t, vnet.WithListenTLS(&tls.Config{Certificates: []tls.Certificate{ca.issue(t, "server", x509.ExtKeyUsageServerAuth)}}), vnet.WithMaxConns(1))
	addr, err := a.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := dialTLS(t, addr.String(), &tls.Config{RootCAs: ca.pool}); err != nil {
		t.Fatal(err)
	}
	if _, err := dialTLS(t, addr.String(), &tls.Config{RootCAs: ca.pool}); err == nil {
		t.Fatal("a second TLS connection was served past the limit of one")
	}
}
