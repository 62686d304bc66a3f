package agent

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"log/slog"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// writeSelfSigned writes a certificate for 127.0.0.1 and its key, and
// returns a pool that trusts it.
func writeSelfSigned(t *testing.T, dir string) *x509.CertPool {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "agent test"},
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
	kb, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	certPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	for name, b := range map[string][]byte{
		"agent.crt": certPEM,
		"agent.key": pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb}),
	} {
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(certPEM)
	return pool
}

func TestRunServesTLS(t *testing.T) {
	dir := writeAgentFiles(t, "datadir="+t.TempDir()+"\nsocket=/nonexistent/mysqld.sock\n")
	pool := writeSelfSigned(t, dir)
	body := "listen: 127.0.0.1:0\ntls: {cert_file: agent.crt, key_file: agent.key}\n" + goodAgent[len("name: db1\nlisten: 127.0.0.1:9105\n"):]
	cfg, err := Load(writeAgentConfig(t, dir, body))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	ready, done := make(chan string, 1), make(chan error, 1)
	go func() {
		done <- Run(ctx, cfg, Options{Logger: slog.New(slog.NewTextHandler(t.Output(), nil)), Ready: func(a string) { ready <- a }})
	}()
	var addr string
	select {
	case addr = <-ready:
	case err := <-done:
		t.Fatal(err)
	}
	c := NewClient("https://"+addr, testToken, &tls.Config{RootCAs: pool})
	if st, err := c.Status(ctx); err != nil || st.Running {
		t.Errorf("status over TLS: %+v, %v", st, err)
	}
	if _, err := NewClient("https://"+addr, testToken, nil).Status(ctx); err == nil {
		t.Error("a client that does not trust the certificate got an answer")
	}
	if _, err := NewClient("http://"+addr, testToken, nil).Status(ctx); err == nil {
		t.Error("plain HTTP got an answer from a TLS agent")
	}
	cancel()
	if err := <-done; err != nil {
		t.Errorf("shutdown: %v", err)
	}
}

// writeClientCert writes a self-signed client certificate as client.crt
// (it is its own CA) and returns it with its key.
func writeClientCert(t *testing.T, dir string) tls.Certificate {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(2),
		Subject:      pkix.Name{CommonName: "appliance test"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
		IsCA:         true, BasicConstraintsValid: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "client.crt"), pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
}

// TestRunRequiresClientCert: with tls.client_ca_file the agent serves
// only callers presenting a certificate of that CA.
func TestRunRequiresClientCert(t *testing.T) {
	dir := writeAgentFiles(t, "datadir="+t.TempDir()+"\nsocket=/nonexistent/mysqld.sock\n")
	pool := writeSelfSigned(t, dir)
	clientCert := writeClientCert(t, dir)
	body := "listen: 127.0.0.1:0\ntls: {cert_file: agent.crt, key_file: agent.key, client_ca_file: client.crt}\n" + goodAgent[len("name: db1\nlisten: 127.0.0.1:9105\n"):]
	cfg, err := Load(writeAgentConfig(t, dir, body))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	ready, done := make(chan string, 1), make(chan error, 1)
	go func() {
		done <- Run(ctx, cfg, Options{Logger: slog.New(slog.NewTextHandler(t.Output(), nil)), Ready: func(a string) { ready <- a }})
	}()
	var addr string
	select {
	case addr = <-ready:
	case err := <-done:
		t.Fatal(err)
	}
	c := NewClient("https://"+addr, testToken, &tls.Config{RootCAs: pool, Certificates: []tls.Certificate{clientCert}})
	if _, err := c.Status(ctx); err != nil {
		t.Errorf("status with a client certificate: %v", err)
	}
	if _, err := NewClient("https://"+addr, testToken, &tls.Config{RootCAs: pool}).Status(ctx); err == nil {
		t.Error("a client without a certificate got an answer")
	}
	cancel()
	if err := <-done; err != nil {
		t.Errorf("shutdown: %v", err)
	}
	if _, err := Load(writeAgentConfig(t, dir, strings.Replace(body, "client_ca_file: client.crt", "client_ca_file: agent-token", 1))); err == nil ||
		!strings.Contains(err.Error(), "tls.client_ca_file") {
		t.Errorf("client_ca_file without a certificate: %v", err)
	}
}
