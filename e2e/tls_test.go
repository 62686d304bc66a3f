//go:build cluster

package e2e

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestTLS: with tls configured the API is served over HTTPS only, and a
// hand-written config (not the sandbox's) monitors the cluster.
func TestTLS(t *testing.T) {
	sb := sharedGalera(t)
	dir := t.TempDir()
	certFile, keyFile, pool := selfSigned(t, dir)

	var nodes strings.Builder
	for _, n := range sb.Nodes() {
		fmt.Fprintf(&nodes, "      - {address: %q}\n", n.Address())
	}
	cfg := filepath.Join(dir, "nines.yaml")
	body := fmt.Sprintf(`data_dir: data
tls: {cert_file: %s, key_file: %s}
api:
  tokens: [{name: ops, role: admin, token_file: %s}]
clusters:
  - name: tls
    kind: galera
    nodes:
%s    credentials: {user: nines, password_file: %s}
`, certFile, keyFile, sb.TokenPath(), nodes.String(), sb.PasswordPath())
	if err := os.WriteFile(cfg, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	a := startAppliance(t, cfg, sb.TokenPath())
	a.base = strings.Replace(a.base, "http://", "https://", 1)
	a.rootCAs = pool

	waitFor(t, a.started, 10*time.Second, "cluster size over HTTPS", func() bool {
		return len(a.query(`mysql_global_status_wsrep_cluster_size{cluster="tls"} == 3`)) == 3
	})
	plain := strings.Replace(a.base, "https://", "http://", 1)
	resp, err := (&http.Client{Timeout: 5 * time.Second}).Get(plain + "/healthz")
	if err == nil {
		defer resp.Body.Close()
		if resp.StatusCode == 200 {
			t.Error("plain HTTP served the API while TLS is configured")
		}
	}
}

// selfSigned writes a certificate for 127.0.0.1 and its key to dir.
func selfSigned(t *testing.T, dir string) (certFile, keyFile string, pool *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "nines-e2e"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, KeyUsage: x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}, IsCA: true, BasicConstraintsValid: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kb, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile = filepath.Join(dir, "tls.crt"), filepath.Join(dir, "tls.key")
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb}), 0o600); err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	pool = x509.NewCertPool()
	pool.AddCert(cert)
	return certFile, keyFile, pool
}
