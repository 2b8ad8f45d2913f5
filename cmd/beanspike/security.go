package main

import (
	"bufio"
	"crypto/subtle"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"flag"
	"fmt"
	"os"
	"strings"
	"sync"
	"time"
)

// Environment variables of the security flags.
const (
	EnvTLSCert     = "BEANSPIKE_TLS_CERT"
	EnvTLSKey      = "BEANSPIKE_TLS_KEY"
	EnvTLSClientCA = "BEANSPIKE_TLS_CLIENT_CA"
	EnvTLSCA       = "BEANSPIKE_TLS_CA"
	EnvTokenFile   = "BEANSPIKE_TOKEN_FILE"
	EnvToken       = "BEANSPIKE_TOKEN"
)

// serverTLSFlags are serve's TLS and token flags.
type serverTLSFlags struct {
	cert, key, clientCA, tokenFile *string
}

func (a *app) serverTLSFlags(fs *flag.FlagSet) serverTLSFlags {
	return serverTLSFlags{
		cert:      fs.String("tls-cert", a.getenv(EnvTLSCert), "serve TLS on every port with this PEM certificate `file` (default from $"+EnvTLSCert+")"),
		key:       fs.String("tls-key", a.getenv(EnvTLSKey), "the PEM private key `file` of -tls-cert (default from $"+EnvTLSKey+")"),
		clientCA:  fs.String("tls-client-ca", a.getenv(EnvTLSClientCA), "require client certificates signed by the CAs in this PEM `file` (mutual TLS; default from $"+EnvTLSClientCA+")"),
		tokenFile: fs.String("token-file", a.getenv(EnvTokenFile), "require one of the tokens in this `file` (one a line, read again when it changes) from remote clients and the dashboard (default from $"+EnvTokenFile+")"),
	}
}

// config returns the server's TLS configuration, nil without -tls-cert.
func (f serverTLSFlags) config() (*tls.Config, error) {
	if *f.cert == "" && *f.key == "" {
		if *f.clientCA != "" {
			return nil, errors.New("-tls-client-ca needs -tls-cert and -tls-key")
		}
		return nil, nil
	}
	if *f.cert == "" || *f.key == "" {
		return nil, errors.New("-tls-cert and -tls-key go together")
	}
	pair, err := tls.LoadX509KeyPair(*f.cert, *f.key)
	if err != nil {
		return nil, fmt.Errorf("-tls-cert/-tls-key: %v", err)
	}
	cfg := &tls.Config{Certificates: []tls.Certificate{pair}, MinVersion: tls.VersionTLS12}
	if *f.clientCA != "" {
		pool, err := loadPool(*f.clientCA)
		if err != nil {
			return nil, fmt.Errorf("-tls-client-ca: %v", err)
		}
		cfg.ClientCAs, cfg.ClientAuth = pool, tls.RequireAndVerifyClientCert
	}
	return cfg, nil
}

// clientTLSFlags are the client commands' TLS flags.
type clientTLSFlags struct {
	ca, cert, key *string
	on            *bool
}

func (a *app) clientTLSFlags(fs *flag.FlagSet) clientTLSFlags {
	return clientTLSFlags{
		on:   fs.Bool("tls", a.getenv(EnvTLSCA) != "", "speak TLS to the server, verifying it against the system's CAs or -tls-ca"),
		ca:   fs.String("tls-ca", a.getenv(EnvTLSCA), "trust the CAs in this PEM `file` for the server's certificate (implies -tls; default from $"+EnvTLSCA+")"),
		cert: fs.String("tls-cert", a.getenv(EnvTLSCert), "present this PEM client certificate `file` (mutual TLS; default from $"+EnvTLSCert+")"),
		key:  fs.String("tls-key", a.getenv(EnvTLSKey), "the PEM private key `file` of -tls-cert (default from $"+EnvTLSKey+")"),
	}
}

// config returns the client's TLS configuration, nil for plain TCP.
func (f clientTLSFlags) config() (*tls.Config, error) {
	if !*f.on && *f.ca == "" && *f.cert == "" {
		return nil, nil
	}
	cfg := &tls.Config{MinVersion: tls.VersionTLS12}
	if *f.ca != "" {
		pool, err := loadPool(*f.ca)
		if err != nil {
			return nil, fmt.Errorf("-tls-ca: %v", err)
		}
		cfg.RootCAs = pool
	}
	if *f.cert != "" || *f.key != "" {
		if *f.cert == "" || *f.key == "" {
			return nil, errors.New("-tls-cert and -tls-key go together")
		}
		pair, err := tls.LoadX509KeyPair(*f.cert, *f.key)
		if err != nil {
			return nil, fmt.Errorf("-tls-cert/-tls-key: %v", err)
		}
		cfg.Certificates = []tls.Certificate{pair}
	}
	return cfg, nil
}

// loadPool reads the PEM certificates of file.
func loadPool(file string) (*x509.CertPool, error) {
	b, err := os.ReadFile(file)
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(b) {
		return nil, fmt.Errorf("%s holds no PEM certificate", file)
	}
	return pool, nil
}

// tokenFile holds the tokens of a file, one a line (blank lines and lines
// starting with # are ignored), read again when the file changes, so that
// tokens can be rotated without a restart: add the new one, move the
// clients to it, remove the old one.
type tokenFile struct {
	path string

	mu     sync.Mutex
	mod    time.Time
	size   int64
	tokens []string
	read   time.Time
}

// newTokenFile reads path; it must hold at least one token.
func newTokenFile(path string) (*tokenFile, error) {
	t := &tokenFile{path: path}
	if err := t.reload(); err != nil {
		return nil, err
	}
	if len(t.tokens) == 0 {
		return nil, fmt.Errorf("%s holds no token", path)
	}
	return t, nil
}

// reload reads the file if it changed.
func (t *tokenFile) reload() error {
	fi, err := os.Stat(t.path)
	if err != nil {
		return err
	}
	if fi.ModTime().Equal(t.mod) && fi.Size() == t.size && t.tokens != nil {
		return nil
	}
	f, err := os.Open(t.path)
	if err != nil {
		return err
	}
	defer f.Close()
	var tokens []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		tokens = append(tokens, line)
	}
	if err := sc.Err(); err != nil {
		return err
	}
	t.tokens, t.mod, t.size = tokens, fi.ModTime(), fi.Size()
	return nil
}

// current returns the tokens, reading the file again at most once a
// second; a file that cannot be read keeps the tokens last read.
func (t *tokenFile) current() []string {
	t.mu.Lock()
	defer t.mu.Unlock()
	if time.Since(t.read) >= time.Second {
		t.read = time.Now()
		_ = t.reload()
	}
	return t.tokens
}

// valid tells, in constant time for each token, whether s is one of them.
func (t *tokenFile) valid(s string) bool {
	ok := 0
	for _, tok := range t.current() {
		ok |= subtle.ConstantTimeCompare([]byte(s), []byte(tok))
	}
	return ok == 1
}

// first returns the first token: the one the dashboard's login takes.
func (t *tokenFile) first() string {
	if ts := t.current(); len(ts) > 0 {
		return ts[0]
	}
	return ""
}
