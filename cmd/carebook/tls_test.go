package main

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// writeCert writes a self-signed certificate for 127.0.0.1 named cn and
// returns it.
func writeCert(t *testing.T, certFile, keyFile, cn string, at time.Time) *x509.Certificate {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()),
		Subject:      pkix.Name{CommonName: cn},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		IPAddresses:  []net.IP{net.ParseIP("127.0.0.1")},
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder}), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{certFile, keyFile} {
		if err := os.Chtimes(f, at, at); err != nil {
			t.Fatal(err)
		}
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return cert
}

func TestTLSServesTheCertificateAndReloadsIt(t *testing.T) {
	dir := t.TempDir()
	certFile, keyFile := filepath.Join(dir, "api.crt"), filepath.Join(dir, "api.key")
	start := time.Now().Add(-time.Minute)
	first := writeCert(t, certFile, keyFile, "first", start)

	cfg, err := newTLSConfig(certFile, keyFile)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{TLSConfig: cfg, Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusNoContent) })}
	go srv.ServeTLS(ln, "", "")
	t.Cleanup(func() { srv.Close() })
	url := "https://" + ln.Addr().String() + "/"

	// get makes a fresh connection trusting only want, with at most max.
	get := func(want *x509.Certificate, max uint16) (*http.Response, error) {
		pool := x509.NewCertPool()
		pool.AddCert(want)
		c := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{
			TLSClientConfig: &tls.Config{RootCAs: pool, MaxVersion: max}, DisableKeepAlives: true}}
		r, err := c.Get(url)
		if err == nil {
			r.Body.Close()
		}
		return r, err
	}
	if r, err := get(first, 0); err != nil || r.StatusCode != http.StatusNoContent {
		t.Fatalf("HTTPS with the configured certificate: %v %v", r, err)
	}
	if _, err := get(first, tls.VersionTLS11); err == nil {
		t.Fatal("a TLS 1.1 client was served; the floor is 1.2")
	}

	// A renewed certificate is served to the next connection.
	second := writeCert(t, certFile, keyFile, "second", start.Add(30*time.Second))
	if r, err := get(second, 0); err != nil || r.StatusCode != http.StatusNoContent {
		t.Fatalf("after renewal, the new certificate is not served: %v %v", r, err)
	}
	if _, err := get(first, 0); err == nil {
		t.Fatal("after renewal, the old certificate is still served")
	}

	// A renewal caught half-written keeps the last good certificate.
	if err := os.WriteFile(certFile, []byte("-----BEGIN CERTIFICATE-----\ntrunc"), 0o600); err != nil {
		t.Fatal(err)
	}
	later := start.Add(time.Minute)
	if err := os.Chtimes(certFile, later, later); err != nil {
		t.Fatal(err)
	}
	if r, err := get(second, 0); err != nil || r.StatusCode != http.StatusNoContent {
		t.Fatalf("a broken renewal stopped HTTPS: %v %v", r, err)
	}
}

func TestTLSConfigRefusesHalfOrMissingFiles(t *testing.T) {
	dir := t.TempDir()
	for name, files := range map[string][2]string{
		"certificate only": {filepath.Join(dir, "a.crt"), ""},
		"key only":         {"", filepath.Join(dir, "a.key")},
		"missing files":    {filepath.Join(dir, "none.crt"), filepath.Join(dir, "none.key")},
	} {
		if _, err := newTLSConfig(files[0], files[1]); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

// The CLI commands that call dev's api (dev-event) reach it over TLS when
// it serves TLS, trusting its own certificate.
func TestAPIClientFollowsTLS(t *testing.T) {
	dir := t.TempDir()
	certFile, keyFile := filepath.Join(dir, "api.crt"), filepath.Join(dir, "api.key")
	writeCert(t, certFile, keyFile, "dev", time.Now().Add(-time.Minute))
	cfg := Config{TLSCertFile: certFile, TLSKeyFile: keyFile}
	tc, err := newTLSConfig(certFile, keyFile)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{TLSConfig: tc, Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusNoContent) })}
	go srv.ServeTLS(ln, "", "")
	t.Cleanup(func() { srv.Close() })

	base := apiBase(cfg, ln.Addr().String())
	if base != "https://"+ln.Addr().String() {
		t.Fatalf("apiBase = %q", base)
	}
	client, err := apiClient(cfg)
	if err != nil {
		t.Fatal(err)
	}
	r, err := client.Get(base + "/")
	if err != nil {
		t.Fatalf("over TLS with the configured certificate: %v", err)
	}
	r.Body.Close()
	if r.StatusCode != http.StatusNoContent {
		t.Fatalf("status %d", r.StatusCode)
	}
	if got := apiBase(Config{}, "127.0.0.1:8080"); got != "http://127.0.0.1:8080" {
		t.Fatalf("without TLS, apiBase = %q", got)
	}
}
