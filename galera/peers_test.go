package galera

import (
	"slices"
	"testing"
)

func TestClusterAddress(t *testing.T) {
	cnf := "[client]\nwsrep_cluster_address=gcomm://nope\n[mysqld]\nport=3307\n# wsrep_cluster_address=gcomm://old\nwsrep-cluster-address = \"gcomm://10.0.0.1,10.0.0.2:4577,[fe80::1]?pc.wait_prim=no\"\n"
	addr := ClusterAddressOf([]byte(cnf))
	peers, err := ParseClusterAddress(addr)
	want := []string{"10.0.0.1:4567", "10.0.0.2:4577", "[fe80::1]:4567"}
	if err != nil || !slices.Equal(peers, want) {
		t.Fatalf("%q: %q %v, want %q", addr, peers, err, want)
	}
	if p, err := ParseClusterAddress("gcomm://"); err != nil || len(p) != 0 {
		t.Errorf("bootstrap address: %q %v", p, err)
	}
	if _, err := ParseClusterAddress("10.0.0.1"); err == nil {
		t.Error("an address without gcomm:// parsed")
	}
	if ClusterAddressOf([]byte("[client]\nwsrep_cluster_address=gcomm://x\n")) != "" {
		t.Error("read a client section's setting")
	}
}
