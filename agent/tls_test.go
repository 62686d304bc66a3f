package agent

import (
	"context"
	"crypto/tls"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"

	"github.com/nines-project/nines/internal/testpki"
)

// writeServerCert writes agent.crt and agent.key, signed by a test CA
// for 127.0.0.1, into dir, and returns that CA.
func writeServerCert(t *testing.T, dir string) *testpki.CA {
	t.Helper()
	ca := testpki.NewCA(t, "agents CA")
	srv := ca.Server(t)
	testpki.Write(t, filepath.Join(dir, "agent.crt"), srv.CertPEM)
	testpki.Write(t, filepath.Join(dir, "agent.key"), srv.KeyPEM)
	return ca
}

// runAgent runs an agent on cfg until stop, which checks its shutdown,
// and returns the address it listens on.
func runAgent(t *testing.T, cfg *Config) (addr string, stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(t.Context())
	ready, done := make(chan string, 1), make(chan error, 1)
	go func() {
		done <- Run(ctx, cfg, Options{Logger: slog.New(slog.NewTextHandler(t.Output(), nil)), Ready: func(a string) { ready <- a }})
	}()
	select {
	case addr = <-ready:
	case err := <-done:
		cancel()
		t.Fatal(err)
	}
	return addr, func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("shutdown: %v", err)
		}
	}
}

func TestRunServesTLS(t *testing.T) {
	dir := writeAgentFiles(t, "datadir="+t.TempDir()+"\nsocket=/nonexistent/mysqld.sock\n")
	pool := writeServerCert(t, dir).Pool()
	body := "listen: 127.0.0.1:0\ntls: {cert_file: agent.crt, key_file: agent.key}\n" + goodAgent[len("name: db1\nlisten: 127.0.0.1:9105\n"):]
	cfg, err := Load(writeAgentConfig(t, dir, body))
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	addr, stop := runAgent(t, cfg)
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
	stop()
}

// TestRunRequiresClientCert: with tls.client_ca_file the agent serves
// only callers presenting a certificate of that CA.
func TestRunRequiresClientCert(t *testing.T) {
	dir := writeAgentFiles(t, "datadir="+t.TempDir()+"\nsocket=/nonexistent/mysqld.sock\n")
	pool := writeServerCert(t, dir).Pool()
	// The appliance's certificate comes from a CA of its own.
	applianceCA := testpki.NewCA(t, "appliance CA")
	testpki.Write(t, filepath.Join(dir, "client.crt"), applianceCA.PEM())
	clientCert := applianceCA.Client(t, "appliance").TLS
	body := "listen: 127.0.0.1:0\ntls: {cert_file: agent.crt, key_file: agent.key, client_ca_file: client.crt}\n" + goodAgent[len("name: db1\nlisten: 127.0.0.1:9105\n"):]
	cfg, err := Load(writeAgentConfig(t, dir, body))
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	addr, stop := runAgent(t, cfg)
	c := NewClient("https://"+addr, testToken, &tls.Config{RootCAs: pool, Certificates: []tls.Certificate{clientCert}})
	if _, err := c.Status(ctx); err != nil {
		t.Errorf("status with a client certificate: %v", err)
	}
	if _, err := NewClient("https://"+addr, testToken, &tls.Config{RootCAs: pool}).Status(ctx); err == nil {
		t.Error("a client without a certificate got an answer")
	}
	stop()
	if _, err := Load(writeAgentConfig(t, dir, strings.Replace(body, "client_ca_file: client.crt", "client_ca_file: agent-token", 1))); err == nil ||
		!strings.Contains(err.Error(), "tls.client_ca_file") {
		t.Errorf("client_ca_file without a certificate: %v", err)
	}
}
