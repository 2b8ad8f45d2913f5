package main

import (
	"bufio"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// pki is a CA with a server certificate for 127.0.0.1 and a client
// certificate, written as PEM files in a directory of the test.
type pki struct {
	ca, serverCert, serverKey, clientCert, clientKey, otherCA string
	pool                                                      *x509.CertPool
}

func newPKI(t *testing.T) pki {
	t.Helper()
	dir := t.TempDir()
	write := func(name, typ string, der []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	newKey := func() *ecdsa.PrivateKey {
		k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		return k
	}
	keyDER := func(k *ecdsa.PrivateKey) []byte {
		b, err := x509.MarshalECPrivateKey(k)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	newCA := func(name string) (*x509.Certificate, *ecdsa.PrivateKey, []byte) {
		k := newKey()
		tmpl := &x509.Certificate{
			SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: name},
			NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
			IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
		}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &k.PublicKey, k)
		if err != nil {
			t.Fatal(err)
		}
		c, _ := x509.ParseCertificate(der)
		return c, k, der
	}
	ca, caKey, caDER := newCA("beanspike test CA")
	_, _, otherDER := newCA("another CA")
	leaf := func(name string, usage x509.ExtKeyUsage) ([]byte, *ecdsa.PrivateKey) {
		k := newKey()
		tmpl := &x509.Certificate{
			SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: name},
			NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
			KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{usage},
			IPAddresses: []net.IP{net.ParseIP("127.0.0.1")},
		}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &k.PublicKey, caKey)
		if err != nil {
			t.Fatal(err)
		}
		return der, k
	}
	sDER, sKey := leaf("server", x509.ExtKeyUsageServerAuth)
	cDER, cKey := leaf("client", x509.ExtKeyUsageClientAuth)
	p := pki{
		ca:         write("ca.pem", "CERTIFICATE", caDER),
		otherCA:    write("other.pem", "CERTIFICATE", otherDER),
		serverCert: write("server.pem", "CERTIFICATE", sDER),
		serverKey:  write("server.key", "EC PRIVATE KEY", keyDER(sKey)),
		clientCert: write("client.pem", "CERTIFICATE", cDER),
		clientKey:  write("client.key", "EC PRIVATE KEY", keyDER(cKey)),
		pool:       x509.NewCertPool(),
	}
	p.pool.AddCert(ca)
	return p
}

// With -tls-cert, the remote port speaks TLS: a client that trusts the
// CA puts a job; one that speaks plain TCP, or does not trust the
// server, is refused. The beanstalk port speaks TLS too.
func TestServeTLS(t *testing.T) {
	p := newPKI(t)
	addr, bsAddr := server(t, "-tls-cert", p.serverCert, "-tls-key", p.serverKey, "-beanstalk", "127.0.0.1:0")
	want(t, runCmd(t, addr, "", "put", "-tls-ca", p.ca, "-tube", "s", "secret"), exitOK, "1\n")
	if r := runCmd(t, addr, "", "put", "-timeout", "2s", "-tube", "s", "plain"); r.code != exitError {
		t.Fatalf("put over plain TCP to a TLS server: exit %d, want %d\n%s", r.code, exitError, r.stderr)
	}
	if r := runCmd(t, addr, "", "put", "-tls-ca", p.otherCA, "-timeout", "2s", "-tube", "s", "x"); r.code != exitError ||
		!strings.Contains(r.stderr, "certificate") {
		t.Fatalf("put trusting another CA: exit %d, want %d and a certificate error\n%s", r.code, exitError, r.stderr)
	}
	want(t, runCmd(t, addr, "", "stats", "-tls-ca", p.ca, "s"), exitOK)

	c, err := tls.Dial("tcp", bsAddr, &tls.Config{RootCAs: p.pool})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	io.WriteString(c, "put 0 0 10 2\r\nhi\r\n")
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil || !strings.HasPrefix(line, "INSERTED") {
		t.Fatalf("put over TLS on the beanstalk port: %q, %v", line, err)
	}
}

// With -tls-client-ca, a client without a certificate signed by that CA
// gets nothing served; one with it works.
func TestServeMutualTLS(t *testing.T) {
	p := newPKI(t)
	addr, _ := server(t, "-tls-cert", p.serverCert, "-tls-key", p.serverKey, "-tls-client-ca", p.ca)
	if r := runCmd(t, addr, "", "put", "-tls-ca", p.ca, "-timeout", "2s", "-tube", "m", "x"); r.code != exitError {
		t.Fatalf("put without a client certificate: exit %d, want %d\n%s", r.code, exitError, r.stderr)
	}
	want(t, runCmd(t, addr, "", "put", "-tls-ca", p.ca, "-tls-cert", p.clientCert, "-tls-key", p.clientKey, "-tube", "m", "x"), exitOK)
	want(t, runCmd(t, addr, "", "tubes", "-tls-ca", p.ca, "-tls-cert", p.clientCert, "-tls-key", p.clientKey), exitOK, "m\n")
}

func TestServeTLSFlagErrors(t *testing.T) {
	p := newPKI(t)
	for _, args := range [][]string{
		{"serve", "-tls-cert", p.serverCert},
		{"serve", "-tls-client-ca", p.ca},
		{"serve", "-tls-cert", p.serverCert, "-tls-key", p.clientKey},
		{"serve", "-token-file", filepath.Join(t.TempDir(), "none")},
	} {
		if r := runCmd(t, "", "", args...); r.code != exitUsage {
			t.Errorf("%v: exit %d, want %d\n%s", args, r.code, exitUsage, r.stderr)
		}
	}
	if r := runCmd(t, "127.0.0.1:1", "", "put", "-tls-cert", p.clientCert, "x"); r.code != exitUsage {
		t.Errorf("put -tls-cert without -tls-key: exit %d, want %d\n%s", r.code, exitUsage, r.stderr)
	}
}

// With -token-file, remote clients and the dashboard on -http need one
// of its tokens.
func TestServeDashboardToken(t *testing.T) {
	tokens := filepath.Join(t.TempDir(), "tokens")
	if err := os.WriteFile(tokens, []byte("# rotate me\ns3cret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	httpAddr := freeAddr(t)
	addr, _ := server(t, "-http", httpAddr, "-token-file", tokens)
	if r := runCmd(t, addr, "", "put", "-timeout", "5s", "x"); r.code != exitError || !strings.Contains(r.stderr, "refused the token") {
		t.Fatalf("put without the token: exit %d, want %d and a refusal\n%s", r.code, exitError, r.stderr)
	}
	if r := runCmd(t, addr, "", "put", "-timeout", "5s", "-token", "wrong", "x"); r.code != exitError {
		t.Fatalf("put with a wrong token: exit %d, want %d\n%s", r.code, exitError, r.stderr)
	}
	want(t, runCmd(t, addr, "", "put", "-token", "s3cret", "x"), exitOK, "1\n")
	get := func(bearer string) int {
		req, _ := http.NewRequest("GET", "http://"+httpAddr+"/ui/", nil)
		if bearer != "" {
			req.Header.Set("Authorization", "Bearer "+bearer)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if code := get(""); code != http.StatusUnauthorized {
		t.Errorf("dashboard without the token: %d, want 401", code)
	}
	if code := get("wrong"); code != http.StatusUnauthorized {
		t.Errorf("dashboard with a wrong token: %d, want 401", code)
	}
	if code := get("s3cret"); code != http.StatusOK {
		t.Errorf("dashboard with the token: %d, want 200", code)
	}
}
