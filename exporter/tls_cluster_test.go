//go:build cluster

package exporter_test

import (
	"context"
	"fmt"
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
	"github.com/nines-project/nines/internal/testbin"
	"github.com/nines-project/nines/internal/testpki"
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
	ca := testpki.NewCA(t, "db test CA")
	srvPair := ca.Server(t)
	caFile := testpki.Write(t, filepath.Join(dir, "ca.pem"), ca.PEM())
	certFile := testpki.Write(t, filepath.Join(dir, "server.pem"), srvPair.CertPEM)
	keyFile := testpki.Write(t, filepath.Join(dir, "server-key.pem"), srvPair.KeyPEM)
	otherCA := testpki.Write(t, filepath.Join(dir, "other-ca.pem"), testpki.NewCA(t, "another CA").PEM())

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
	port, err := testbin.ClusterPorts.Next()
	if err != nil {
		t.Fatal(err)
	}
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
