//go:build cluster

package e2e

import (
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/nines-project/nines/internal/testpki"
	"time"
)

// TestTLS: with tls configured the API is served over HTTPS only, and a
// hand-written config (not the sandbox's) monitors the cluster.
func TestTLS(t *testing.T) {
	sb := sharedGalera(t)
	dir := t.TempDir()
	ca := testpki.NewCA(t, "nines-e2e CA")
	srv := ca.Server(t)
	certFile := testpki.Write(t, filepath.Join(dir, "tls.crt"), srv.CertPEM)
	keyFile := testpki.Write(t, filepath.Join(dir, "tls.key"), srv.KeyPEM)
	pool := ca.Pool()

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
