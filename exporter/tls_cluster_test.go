//go:build cluster

package exporter_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nines-project/nines/exporter"
	"github.com/nines-project/nines/internal/mariadbd"
	"github.com/nines-project/nines/internal/secret"
)

// TestScrapeOverTLS: a real MariaDB whose monitoring account REQUIRES SSL
// is scraped with credentials.tls (a private CA); the same account
// without TLS, with another CA, or with a server name the certificate
// does not carry is refused, so the scrape that works is encrypted and
// checked, not merely allowed.
func TestScrapeOverTLS(t *testing.T) {
	dir, err := os.MkdirTemp("/tmp", "nines-tls-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil { // the server runs as mysql
		t.Fatal(err)
	}
	caFile, certFile, keyFile := writePKI(t, dir, "ca")
	otherCA, _, _ := writePKI(t, filepath.Join(dir, "other"), "other")

	srv := startTLSServer(t, dir, certFile, keyFile, caFile)
	db, err := srv.DB()
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	for _, q := range []string{
		"CREATE USER nines@'127.0.0.1' IDENTIFIED BY 'tls-test-password' REQUIRE SSL",
		"GRANT PROCESS, BINLOG MONITOR, SLAVE MONITOR ON *.* TO nines@'127.0.0.1'",
	} {
		if _, err := db.Exec(q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	port := srv.Port

	scrape := func(c *secret.ClientTLS) (up bool, errText string) {
		t.Helper()
		target := exporter.Target{Cluster: "tls", Address: fmt.Sprintf("127.0.0.1:%d", port), User: "nines", Password: "tls-test-password"}
		if c != nil {
			cfg, err := c.Config()
			if err != nil {
				t.Fatal(err)
			}
			target.TLS = cfg
		}
		s, err := exporter.NewScraper(target, exporter.Options{Timeout: 3 * time.Second})
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		snap := s.Scrape(context.Background())
		return snap.Up, snap.Err
	}

	if up, e := scrape(&secret.ClientTLS{CAFile: caFile}); !up {
		t.Fatalf("scrape with the server's CA failed: %s", e)
	}
	if up, e := scrape(nil); up || !strings.Contains(e, "Access denied") {
		t.Errorf("plain scrape of an account that requires SSL: up=%v err=%q, want access denied", up, e)
	}
	if up, e := scrape(&secret.ClientTLS{CAFile: otherCA}); up || !strings.Contains(e, "certificate") {
		t.Errorf("scrape trusting another CA: up=%v err=%q, want a certificate error", up, e)
	}
	if up, e := scrape(&secret.ClientTLS{CAFile: caFile, ServerName: "db9.example.net"}); up || !strings.Contains(e, "certificate") {
		t.Errorf("scrape expecting another server name: up=%v err=%q, want a certificate error", up, e)
	}
}

// tlsServer is a standalone MariaDB listening with TLS on a loopback port.
type tlsServer struct {
	*mariadbd.Server
	Port int
}

func startTLSServer(t *testing.T, dir, cert, key, ca string) tlsServer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	srv := &mariadbd.Server{
		Name: "tls", DefaultsFile: filepath.Join(dir, "my.cnf"), Dir: dir,
		DataDir: filepath.Join(dir, "data"), Socket: filepath.Join(dir, "mysqld.sock"),
		PidFile: filepath.Join(dir, "mysqld.pid"), ErrorLog: filepath.Join(dir, "error.log"),
	}
	var cnf strings.Builder
	cnf.WriteString("[mysqld]\n")
	uid, gid := -1, -1
	if os.Geteuid() == 0 {
		u, err := user.Lookup("mysql")
		if err != nil {
			t.Fatalf("user mysql (install mariadb-server): %v", err)
		}
		uid, _ = strconv.Atoi(u.Uid)
		gid, _ = strconv.Atoi(u.Gid)
		cnf.WriteString("user=mysql\n")
	}
	fmt.Fprintf(&cnf, "datadir=%s\ntmpdir=%s\nsocket=%s\npid-file=%s\nlog-error=%s\nport=%d\n",
		srv.DataDir, dir, srv.Socket, srv.PidFile, srv.ErrorLog, port)
	fmt.Fprintf(&cnf, "bind-address=127.0.0.1\nskip-name-resolve\nperformance_schema=OFF\ninnodb_buffer_pool_size=32M\nssl-ca=%s\nssl-cert=%s\nssl-key=%s\n", ca, cert, key)
	if err := os.WriteFile(srv.DefaultsFile, []byte(cnf.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(srv.DataDir, 0o750); err != nil {
		t.Fatal(err)
	}
	if uid >= 0 {
		err := filepath.Walk(dir, func(p string, _ os.FileInfo, err error) error {
			if err != nil {
				return err
			}
			return os.Lchown(p, uid, gid)
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if err := srv.Install(ctx); err != nil {
		t.Fatal(err)
	}
	p, err := srv.Start(mariadbd.StartOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if err := srv.Stop(ctx, 30*time.Second); err != nil {
			t.Errorf("stop the TLS server: %v", err)
		}
	})
	if err := srv.WaitReady(ctx, p); err != nil {
		t.Fatal(err)
	}
	return tlsServer{Server: srv, Port: port}
}

// writePKI writes a CA and a server certificate for 127.0.0.1 signed by
// it under dir, readable by the server's user.
func writePKI(t *testing.T, dir, name string) (caFile, certFile, keyFile string) {
	t.Helper()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	caTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: name + " test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	srvKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	srvTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "127.0.0.1"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, DNSNames: []string{"localhost"},
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	caCert, err := x509.ParseCertificate(caDER)
	if err != nil {
		t.Fatal(err)
	}
	srvDER, err := x509.CreateCertificate(rand.Reader, srvTmpl, caCert, &srvKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalECPrivateKey(srvKey)
	if err != nil {
		t.Fatal(err)
	}
	write := func(file, typ string, der []byte) string {
		p := filepath.Join(dir, file)
		if err := os.WriteFile(p, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	return write("ca.pem", "CERTIFICATE", caDER), write("server.pem", "CERTIFICATE", srvDER), write("server-key.pem", "EC PRIVATE KEY", keyDER)
}
