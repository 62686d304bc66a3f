//go:build cluster

package ha

import (
	"context"
	"crypto/tls"
	"io"
	"log/slog"
	"path/filepath"
	"testing"
	"time"

	"github.com/nines-project/nines/internal/testbin"
	"github.com/nines-project/nines/internal/testpki"
)

// TestElectorOverTLS: with etcd serving https and requiring client
// certificates, an Elector given the CA and a certificate leads; one with
// the CA but no certificate never reaches etcd, so never leads and says
// etcd is down.
func TestElectorOverTLS(t *testing.T) {
	ca := testpki.NewCA(t, "etcd CA")
	dir := t.TempDir()
	srv := ca.Server(t)
	cli := ca.Client(t, "nines-a")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	e, err := testbin.StartEtcdTLS(ctx, testbin.ClusterPorts, "127.0.0.1", testbin.EtcdTLS{
		CertFile: testpki.Write(t, filepath.Join(dir, "etcd.crt"), srv.CertPEM),
		KeyFile:  testpki.Write(t, filepath.Join(dir, "etcd.key"), srv.KeyPEM),
		CAFile:   testpki.Write(t, filepath.Join(dir, "ca.crt"), ca.PEM()),
		Client:   cli.TLS})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(e.Stop)

	run := func(name string, conf *tls.Config) *Elector {
		el, err := New(Config{Name: name, Endpoints: []string{e.URL}, Lease: 2 * time.Second, TLS: conf,
			Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}, []string{"c1"})
		if err != nil {
			t.Fatal(err)
		}
		rctx, rcancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() { defer close(done); el.Run(rctx) }()
		t.Cleanup(func() { rcancel(); <-done; el.Close() })
		return el
	}
	good := run("nines-a", &tls.Config{RootCAs: ca.Pool(), Certificates: []tls.Certificate{cli.TLS}})
	bare := run("nines-b", &tls.Config{RootCAs: ca.Pool()})

	start := time.Now()
	for {
		if _, _, ok := good.Lead("c1"); ok {
			break
		}
		if time.Since(start) > 10*time.Second {
			t.Fatalf("the Elector with a client certificate does not lead c1 after 10 s (etcd up: %v)", good.EtcdUp())
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Logf("measured: leads c1 over https %s after start", time.Since(start).Round(time.Millisecond))
	time.Sleep(3 * time.Second) // past the other's first probes and a lease
	if _, _, ok := bare.Lead("c1"); ok || bare.EtcdUp() {
		t.Errorf("the Elector without a client certificate leads %v, etcd up %v; want neither", ok, bare.EtcdUp())
	}
	if !good.EtcdUp() {
		t.Error("the Elector with a client certificate says etcd is down")
	}
}
