package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestLoadAlertmanagerCluster: alertmanager.cluster loads with its
// defaults, and each mistake is named by its field.
func TestLoadAlertmanagerCluster(t *testing.T) {
	withAM := func(t *testing.T, cluster string) (*Config, error) {
		p := writeConfig(t, good+"alertmanager:\n  embedded: alertmanager.yml\n"+cluster)
		if err := os.WriteFile(filepath.Join(filepath.Dir(p), "alertmanager.yml"), []byte("route: {receiver: x}\nreceivers: [{name: x}]\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		return Load(p)
	}
	cfg, err := withAM(t, "  cluster: {listen: \"127.0.0.1:9094\", peers: [\"127.0.0.1:9095\"]}\n")
	if err != nil {
		t.Fatalf("loopback mesh without tls: %v", err)
	}
	if g := cfg.Alertmanager.Cluster; g.Label != "nines" || g.PeerTimeout.Duration != 5*time.Second {
		t.Errorf("defaults: label %q, peer_timeout %s; want nines, 5s", g.Label, g.PeerTimeout)
	}

	for _, tc := range []struct{ name, cluster, want string }{
		{"a network without tls", "  cluster: {listen: \"10.0.0.1:9094\", peers: [\"10.0.0.2:9094\"]}\n",
			"alertmanager.cluster.tls: required: the gossip carries silences"},
		{"a bad peer", "  cluster: {listen: \"127.0.0.1:9094\", peers: [\"127.0.0.1\"]}\n",
			"alertmanager.cluster.peers[0]: bad address"},
		{"no listen", "  cluster: {peers: [\"127.0.0.1:9095\"]}\n",
			"alertmanager.cluster.listen: required"},
		{"a half tls", "  cluster: {listen: \"10.0.0.1:9094\", tls: {cert_file: peer.crt, key_file: peer.key}}\n",
			"alertmanager.cluster.tls.ca_file: required when tls is set"},
		{"an unreadable certificate", "  cluster: {listen: \"10.0.0.1:9094\", tls: {cert_file: peer.crt, key_file: peer.key, ca_file: ca.crt}}\n",
			`alertmanager.cluster.tls.cert_file: cannot read`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := withAM(t, tc.cluster)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("Load = %v\nwant an error containing %q", err, tc.want)
			}
		})
	}

	p := writeConfig(t, good+"alertmanager:\n  urls: [\"http://127.0.0.1:9093\"]\n  cluster: {listen: \"127.0.0.1:9094\"}\n")
	if _, err := Load(p); err == nil || !strings.Contains(err.Error(), "alertmanager.cluster: needs alertmanager.embedded") {
		t.Errorf("cluster with an external Alertmanager: %v", err)
	}
}
