package sandbox

import (
	"net/netip"
	"slices"
	"strings"
	"testing"
)

func TestNetnsNames(t *testing.T) {
	id := netID("/tmp/some/sandbox")
	if len(id) != 5 || id == netID("/tmp/some/other") || id != netID("/tmp/some/sandbox") {
		t.Fatalf("netID %q: want 5 hex digits, stable per directory and different between directories", id)
	}
	if got := netnsName(id, "n1"); got != "nines-"+id+"-n1" {
		t.Errorf("namespace %q", got)
	}
	for _, name := range []string{bridgeName(id), vethName(id, "n10"), vethPeerName(id, "n10")} {
		if len(name) > 15 {
			t.Errorf("interface name %q is %d bytes, over 15", name, len(name))
		}
	}
	if bridgeName(id) != "nb"+id || vethName(id, "n2") != "nv"+id+"n2" {
		t.Errorf("bridge %q, veth %q", bridgeName(id), vethName(id, "n2"))
	}

	const sub = "10.213.7.0/24"
	if bridgeIP(sub) != "10.213.7.1" || nodeIP(sub, 0) != "10.213.7.10" || nodeIP(sub, 2) != "10.213.7.12" {
		t.Errorf("addresses: bridge %s, n1 %s, n3 %s", bridgeIP(sub), nodeIP(sub, 0), nodeIP(sub, 2))
	}
	if got := subnetHostPattern(sub); got != "10.213.7.%" {
		t.Errorf("host pattern %q", got)
	}

	m := manifest{Kind: "galera", ClusterName: "c", Nodes: layout("/d", "galera", 3, 3306)}
	assignNetns(&m, "/d", sub)
	if !m.Netns || m.Subnet != sub || m.Bridge != bridgeName(netID("/d")) {
		t.Errorf("manifest: %+v", m)
	}
	for i, n := range m.Nodes {
		if n.IP != nodeIP(sub, i) || n.Netns != netnsName(netID("/d"), n.Name) {
			t.Errorf("%s: ip %q netns %q", n.Name, n.IP, n.Netns)
		}
		if n.Address() != n.IP+":"+itoa(n.SQLPort) || n.AgentURL() != "http://"+n.IP+":"+itoa(n.AgentPort) {
			t.Errorf("%s: address %s agent %s", n.Name, n.Address(), n.AgentURL())
		}
		cnf := renderMyCnf(m, i, osUser{})
		for _, want := range []string{"bind-address=" + n.IP, "wsrep_node_address=" + n.IP, "gmcast.listen_addr=tcp://" + n.IP,
			"ist.recv_addr=" + n.IP, "wsrep_sst_receive_address=" + n.IP, "gcomm://10.213.7.10:3406,10.213.7.11:3416,10.213.7.12:3426"} {
			if !strings.Contains(cnf, want) {
				t.Errorf("%s my.cnf lacks %q:\n%s", n.Name, want, cnf)
			}
		}
		if strings.Contains(cnf, "127.0.0.1") {
			t.Errorf("%s my.cnf still names 127.0.0.1:\n%s", n.Name, cnf)
		}
		if ac := renderAgentConfig(m, n, "/t", "/b"); !strings.Contains(ac, "listen: "+n.IP+":") || !strings.Contains(ac, "insecure: true") {
			t.Errorf("%s agent.yaml:\n%s", n.Name, ac)
		}
	}
	// Without netns nothing changes.
	plain := layout("/d", "galera", 1, 3306)[0]
	if plain.Address() != "127.0.0.1:3306" || plain.AgentURL() != "http://127.0.0.1:3506" {
		t.Errorf("plain node: %s %s", plain.Address(), plain.AgentURL())
	}
}

func TestPickSubnet(t *testing.T) {
	addrs := parseAddrs(`1: lo    inet 127.0.0.1/8 scope host lo\       valid_lft forever preferred_lft forever
4: eth0    inet 192.0.2.2/24 brd 192.0.2.255 scope global eth0\       valid_lft forever preferred_lft forever
9: nbaaaaa    inet 10.213.0.1/24 scope global nbaaaaa\       valid_lft forever preferred_lft forever
10: tun0    inet 10.213.1.77/16 scope global tun0
`)
	var used []netip.Prefix
	for _, ps := range addrs {
		used = append(used, ps...)
	}
	if !slices.Contains(addrs["tun0"], netip.MustParsePrefix("10.213.0.0/16")) {
		t.Fatalf("parsed %v", addrs)
	}
	// A /16 over the whole range leaves nothing.
	if got, err := pickSubnet(used); err == nil {
		t.Errorf("picked %s inside a used 10.213.0.0/16", got)
	}
	used = slices.DeleteFunc(used, func(p netip.Prefix) bool { return p.Bits() == 16 })
	if got, err := pickSubnet(used); err != nil || got != "10.213.1.0/24" {
		t.Errorf("pickSubnet = %q, %v; want 10.213.1.0/24", got, err)
	}
	if got, err := pickSubnet(nil); err != nil || got != "10.213.0.0/24" {
		t.Errorf("pickSubnet(nil) = %q, %v", got, err)
	}
}

func TestPartitionNeedsNetns(t *testing.T) {
	s := &Sandbox{dir: "/d", m: manifest{Nodes: layout("/d", "galera", 3, 3306)}}
	for name, err := range map[string]error{
		"Isolate": s.Isolate(t.Context(), "n2", PartitionNodes),
		"Cut":     s.Cut(t.Context(), "n1", "n2"),
		"Mend":    s.Mend(t.Context(), "n1", "n2"),
		"Heal":    s.Heal(t.Context()),
	} {
		if err == nil || !strings.Contains(err.Error(), "sandbox in /d was not started with --netns") {
			t.Errorf("%s on a plain sandbox: %v", name, err)
		}
	}
	m := manifest{Nodes: layout("/d", "galera", 3, 3306)}
	assignNetns(&m, "/d", "10.213.7.0/24")
	s = &Sandbox{dir: "/d", m: m}
	for _, err := range []error{s.Cut(t.Context(), "n1", "n9"), s.Isolate(t.Context(), "appliance", PartitionNodes), s.Isolate(t.Context(), "n9", PartitionAll)} {
		if err == nil || !strings.Contains(err.Error(), "n1, n2, n3") {
			t.Errorf("unknown node: %v", err)
		}
	}
	if err := s.Isolate(t.Context(), "n1", "everything"); err == nil || !strings.Contains(err.Error(), "nodes, appliance or all") {
		t.Errorf("bad scope: %v", err)
	}
}

func TestAdoptNetnsMismatch(t *testing.T) {
	s := &Sandbox{dir: "/d", m: manifest{Kind: "galera", Nodes: layout("/d", "galera", 3, 3306)}}
	err := s.adopt(Options{Netns: true}, "galera")
	if err == nil || !strings.Contains(err.Error(), "it was started without --netns, not with") {
		t.Errorf("adopt: %v", err)
	}
}

func TestNetnsNeedsRoot(t *testing.T) {
	if err := checkNetnsAllowedFor(1000); err == nil || !strings.Contains(err.Error(), "--netns needs root: it creates network namespaces") {
		t.Errorf("non-root: %v", err)
	}
}

func TestHostsBesideTheNodes(t *testing.T) {
	m := manifest{Nodes: layout("/d", "galera", 3, 3306), Hosts: []Node{{Name: "a"}, {Name: "b"}}}
	assignNetns(&m, "/d", "10.213.7.0/24")
	s := &Sandbox{dir: "/d", m: m}
	ns, ip, err := s.Host("b")
	if err != nil || ns != netnsName(netID("/d"), "b") || ip != "10.213.7.101" {
		t.Errorf("Host(b) = %q %q %v", ns, ip, err)
	}
	if _, _, err := s.Host("n1"); err == nil {
		t.Error("Host(n1): a node is no host")
	}
	if e, err := s.endpoint(m, "a"); err != nil || e.ip != "10.213.7.100" {
		t.Errorf("endpoint(a) = %+v %v", e, err)
	}
	if got := nameOfIP(m, "10.213.7.101"); got != "b" {
		t.Errorf("nameOfIP = %q", got)
	}
	for _, hosts := range [][]string{{"n1"}, {"appliance"}, {"a", "a"}, {"Upper"}, {"toolongname"}} {
		_, err := create(Options{Dir: t.TempDir(), Nodes: 3, BasePort: 3306, ClusterName: "x", Netns: true, Hosts: hosts}, "galera", 3)
		if err == nil || !strings.Contains(err.Error(), "host name") {
			t.Errorf("hosts %v: %v", hosts, err)
		}
	}
	if _, err := create(Options{Dir: t.TempDir(), Nodes: 3, BasePort: 3306, ClusterName: "x", Hosts: []string{"a"}}, "galera", 3); err == nil || !strings.Contains(err.Error(), "need --netns") {
		t.Errorf("hosts without netns: %v", err)
	}
}
