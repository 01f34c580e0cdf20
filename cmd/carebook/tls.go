package main

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net/http"
	"os"
	"sync"
	"time"
)

// certReloader serves the certificate in certFile and keyFile, read again
// when either file changes, so that a renewed certificate (a cron job, an
// ACME client, a mounted secret) takes effect without a restart and without
// dropping a connection.
type certReloader struct {
	certFile, keyFile string

	mu      sync.Mutex
	cert    *tls.Certificate
	modTime time.Time
}

// newTLSConfig returns the API's TLS settings for the given PEM files: TLS
// 1.2 at least (HIPAA's transmission security, NIST SP 800-52r2), the
// certificate loaded now so that a wrong path fails at start.
func newTLSConfig(certFile, keyFile string) (*tls.Config, error) {
	if (certFile == "") != (keyFile == "") {
		return nil, errors.New("CAREBOOK_TLS_CERT_FILE and CAREBOOK_TLS_KEY_FILE go together: set both or neither")
	}
	r := &certReloader{certFile: certFile, keyFile: keyFile}
	if _, err := r.get(); err != nil {
		return nil, err
	}
	return &tls.Config{
		MinVersion:     tls.VersionTLS12,
		GetCertificate: func(*tls.ClientHelloInfo) (*tls.Certificate, error) { return r.get() },
	}, nil
}

// get returns the certificate, reading the files again when either is newer
// than what was read. A renewal caught half-written keeps the old one.
func (r *certReloader) get() (*tls.Certificate, error) {
	latest, err := newest(r.certFile, r.keyFile)
	r.mu.Lock()
	defer r.mu.Unlock()
	if err == nil && (r.cert == nil || latest.After(r.modTime)) {
		cert, lerr := tls.LoadX509KeyPair(r.certFile, r.keyFile)
		if lerr == nil {
			r.cert, r.modTime = &cert, latest
		} else if r.cert == nil {
			return nil, fmt.Errorf("load TLS certificate: %w", lerr)
		}
	}
	if r.cert == nil {
		return nil, fmt.Errorf("load TLS certificate: %w", err)
	}
	return r.cert, nil
}

func newest(paths ...string) (time.Time, error) {
	var t time.Time
	for _, p := range paths {
		fi, err := os.Stat(p)
		if err != nil {
			return t, err
		}
		if fi.ModTime().After(t) {
			t = fi.ModTime()
		}
	}
	return t, nil
}

// apiBase is the URL of the api at addr as this configuration serves it.
func apiBase(cfg Config, addr string) string {
	if cfg.TLSCertFile != "" {
		return "https://" + addr
	}
	return "http://" + addr
}

// apiClient calls the api as this configuration serves it: over TLS it
// trusts the system's roots and the configured certificate itself, so a
// self-signed certificate on a laptop works as well as a CA's.
func apiClient(cfg Config) (*http.Client, error) {
	if cfg.TLSCertFile == "" {
		return http.DefaultClient, nil
	}
	pool, err := x509.SystemCertPool()
	if err != nil || pool == nil {
		pool = x509.NewCertPool()
	}
	pem, err := os.ReadFile(cfg.TLSCertFile)
	if err != nil {
		return nil, fmt.Errorf("read CAREBOOK_TLS_CERT_FILE: %w", err)
	}
	pool.AppendCertsFromPEM(pem)
	return &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}}}, nil
}
