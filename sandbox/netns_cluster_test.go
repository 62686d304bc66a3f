//go:build cluster

package sandbox

import (
	"context"
	"database/sql"
	"net"
	"net/netip"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"
)

// TestNetnsPartition runs a 3-node Galera sandbox with a network
// namespace per node and cuts n2 off: from the other nodes (it drops out
// of the Primary component, the others carry on as two), then from the
// appliance only (the root namespace cannot reach it while the cluster
// stays whole). Heal brings everything back; Stop removes the network.
func TestNetnsPartition(t *testing.T) {
	dir := sandboxDir(t)
	stopOnCleanup(t, dir)
	ctx := testContext(t, 5*time.Minute)
	var s *Sandbox
	timed(t, "fresh 3-node galera with --netns", func() {
		var err error
		s, err = StartGalera(ctx, Options{Dir: dir, Nodes: 3, BasePort: 29306, ClusterName: "netns", Log: t.Output(), AgentBinary: ninesBin, Netns: true})
		if err != nil {
			t.Fatalf("start: %v", err)
		}
	})
	requireSynced(t, s, 3)
	id := netID(dir)
	m := s.snapshot()
	subnet := netip.MustParsePrefix(m.Subnet)
	seen := map[string]bool{}
	for name, st := range statusByName(t, s) {
		a, err := netip.ParseAddr(st.Address)
		if err != nil || !subnet.Contains(a) || seen[st.Address] || st.Netns != netnsName(id, name) || len(st.Cut) != 0 {
			t.Fatalf("%s: netns %q address %q cut %v: want its own address in %s and no cut", name, st.Netns, st.Address, st.Cut, subnet)
		}
		seen[st.Address] = true
	}
	if !strings.HasPrefix(m.Subnet, "10.213.") {
		t.Errorf("subnet %s outside 10.213.0.0/16", m.Subnet)
	}
	n2, _ := s.Node("n2")
	dial := func(addr string) (time.Duration, error) {
		t0 := time.Now()
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.Close()
		}
		return time.Since(t0), err
	}
	if _, err := dial(n2.Address()); err != nil {
		t.Fatalf("root namespace to n2's SQL port %s: %v", n2.Address(), err)
	}
	// The appliance's account works over the bridge.
	if v := queryOne[int](t, monitorDB(t, s, "n2"), "SELECT 1"); v != 1 {
		t.Fatalf("SELECT 1 as %s over %s: %d", MonitorUser, n2.Address(), v)
	}
	mustExec(t, rootDB(t, s, "n1"), "CREATE TABLE nines.p (id INT PRIMARY KEY)")

	t.Run("isolate from nodes", func(t *testing.T) {
		t0 := time.Now()
		if err := s.Isolate(ctx, "n2", PartitionNodes); err != nil {
			t.Fatal(err)
		}
		if err := s.Isolate(ctx, "n2", PartitionNodes); err != nil {
			t.Fatalf("isolate again: %v", err)
		}
		eventually(t, 10*time.Second, "n2 non-Primary, n1 and n3 Primary of 2", func() (bool, string) {
			sts := statusByName(t, s)
			ok := sts["n2"].State == "non-Primary" && sts["n1"].State == "Synced" && sts["n1"].ClusterSize == 2 &&
				sts["n3"].State == "Synced" && sts["n3"].ClusterSize == 2
			return ok, describeStates(sts)
		})
		t.Logf("measured: n2 non-Primary and n1+n3 a Primary component of 2 %v after Isolate(n2, nodes)", time.Since(t0).Round(time.Millisecond))
		sts := statusByName(t, s)
		if !slices.Equal(sts["n2"].Cut, []string{"n1", "n3"}) || !slices.Equal(sts["n1"].Cut, []string{"n2"}) || !slices.Equal(sts["n3"].Cut, []string{"n2"}) {
			t.Errorf("cuts: n1 %v n2 %v n3 %v", sts["n1"].Cut, sts["n2"].Cut, sts["n3"].Cut)
		}
		// The appliance still reaches n2, and n2's agent sees only itself.
		if _, err := dial(n2.Address()); err != nil {
			t.Errorf("root namespace to n2 while cut from the nodes only: %v", err)
		}
		c, err := s.Agent("n2")
		if err != nil {
			t.Fatal(err)
		}
		if r := reachedPeers(t, c); r != 1 {
			t.Errorf("n2's agent reaches %d Galera ports while isolated, want 1 (its own)", r)
		}
		mustExec(t, rootDB(t, s, "n1"), "INSERT INTO nines.p VALUES (1)")

		t0 = time.Now()
		if err := s.Heal(ctx); err != nil {
			t.Fatal(err)
		}
		if err := s.Heal(ctx); err != nil {
			t.Fatalf("heal again: %v", err)
		}
		eventually(t, 30*time.Second, "n2 Synced in a cluster of 3", func() (bool, string) {
			sts := statusByName(t, s)
			return sts["n2"].State == "Synced" && sts["n2"].ClusterSize == 3, describeStates(sts)
		})
		t.Logf("measured: n2 Synced in a cluster of 3 again %v after Heal", time.Since(t0).Round(time.Millisecond))
		if got := queryOne[int](t, rootDB(t, s, "n2"), "SELECT COUNT(*) FROM nines.p"); got != 1 {
			t.Errorf("n2 has %d rows of what n1 wrote during the cut, want 1", got)
		}
		requireSynced(t, s, 3)
		for name, st := range statusByName(t, s) {
			if len(st.Cut) != 0 {
				t.Errorf("%s: cut %v after Heal", name, st.Cut)
			}
		}
	})

	t.Run("isolate from appliance", func(t *testing.T) {
		if err := s.Isolate(ctx, "n2", PartitionAppliance); err != nil {
			t.Fatal(err)
		}
		took, err := dial(n2.Address())
		if err == nil {
			t.Fatalf("root namespace reached n2's SQL port %s across the cut", n2.Address())
		}
		if ne, ok := err.(net.Error); !ok || !ne.Timeout() {
			t.Errorf("dial across the cut: %v, want a timeout (no reset)", err)
		}
		t.Logf("measured: dial to n2 across the cut failed after %v: %v", took.Round(time.Millisecond), err)
		if _, err := dial(strings.TrimPrefix(n2.AgentURL(), "http://")); err == nil {
			t.Errorf("root namespace reached n2's agent across the cut")
		}
		if _, err := dial(s.Nodes()[0].Address()); err != nil {
			t.Errorf("root namespace to n1 while only n2 is cut: %v", err)
		}
		sts := statusByName(t, s)
		if !slices.Equal(sts["n2"].Cut, []string{ApplianceName}) || len(sts["n1"].Cut) != 0 {
			t.Errorf("cuts: n1 %v n2 %v", sts["n1"].Cut, sts["n2"].Cut)
		}
		// Give Galera a chance to notice anything: it must not.
		time.Sleep(3 * time.Second)
		requireSynced(t, s, 3)

		if err := s.Mend(ctx, ApplianceName, "n2"); err != nil {
			t.Fatal(err)
		}
		if _, err := dial(n2.Address()); err != nil {
			t.Errorf("root namespace to n2 after Mend: %v", err)
		}
		// One link by hand, and Heal.
		if err := s.Cut(ctx, "n1", "n3"); err != nil {
			t.Fatal(err)
		}
		if err := s.Cut(ctx, "n3", "n1"); err != nil {
			t.Fatal(err)
		}
		sts = statusByName(t, s)
		if !slices.Equal(sts["n1"].Cut, []string{"n3"}) || !slices.Equal(sts["n3"].Cut, []string{"n1"}) || len(sts["n2"].Cut) != 0 {
			t.Errorf("cuts after Cut(n1, n3): n1 %v n2 %v n3 %v", sts["n1"].Cut, sts["n2"].Cut, sts["n3"].Cut)
		}
		if err := s.Heal(ctx); err != nil {
			t.Fatal(err)
		}
		eventually(t, 30*time.Second, "all Synced in a cluster of 3", func() (bool, string) {
			sts := statusByName(t, s)
			ok := true
			for _, st := range sts {
				ok = ok && st.State == "Synced" && st.ClusterSize == 3 && len(st.Cut) == 0
			}
			return ok, describeStates(sts)
		})
	})

	t0 := time.Now()
	if err := s.Stop(ctx); err != nil {
		t.Fatalf("stop: %v", err)
	}
	t.Logf("measured: Stop with network teardown %v", time.Since(t0).Round(time.Millisecond))
	requireNoNetwork(t, id)

	// A restart makes the network again with the recorded addresses; a
	// start without Netns is refused, naming both settings.
	if _, err := StartGalera(ctx, Options{Dir: dir, AgentBinary: ninesBin}); err == nil || !strings.Contains(err.Error(), "started with --netns, not without") {
		t.Fatalf("start without Netns: %v", err)
	}
	timed(t, "restart of the stopped --netns sandbox", func() {
		var err error
		if s, err = StartGalera(ctx, Options{Dir: dir, Log: t.Output(), AgentBinary: ninesBin, Netns: true}); err != nil {
			t.Fatalf("restart: %v", err)
		}
	})
	requireSynced(t, s, 3)
	for i, n := range s.Nodes() {
		if n.IP != m.Nodes[i].IP || n.Netns != m.Nodes[i].Netns {
			t.Errorf("%s: %s in %s after the restart, was %s in %s", n.Name, n.IP, n.Netns, m.Nodes[i].IP, m.Nodes[i].Netns)
		}
	}
	if _, err := dial(n2.Address()); err != nil {
		t.Errorf("root namespace to n2 after the restart: %v", err)
	}
	if err := s.Stop(ctx); err != nil {
		t.Fatalf("stop: %v", err)
	}
	requireNoNetwork(t, id)
}

// TestNetnsHalfMadeNetworkRemoved has the network setup fail half way (a
// node whose veth name is too long for the kernel): what was made is
// removed again.
func TestNetnsHalfMadeNetworkRemoved(t *testing.T) {
	dir := sandboxDir(t)
	subnet, err := chooseSubnet(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	m := manifest{Kind: "galera", Nodes: layout(dir, "galera", 2, 29506)}
	m.Nodes[1].Name = "n2-with-a-name-far-too-long"
	assignNetns(&m, dir, subnet)
	s := &Sandbox{Log: t.Output(), dir: dir, m: m}
	err = s.setupNetwork(t.Context())
	if err == nil {
		t.Fatal("setup succeeded with a 30-byte interface name")
	}
	t.Logf("setup failed as it should: %v", err)
	requireNoNetwork(t, netID(dir))
}

// requireNoNetwork fails if any namespace, veth or bridge of the sandbox
// with netID id remains.
func requireNoNetwork(t *testing.T, id string) {
	t.Helper()
	for _, args := range [][]string{{"netns", "list"}, {"-o", "link"}} {
		out, err := exec.CommandContext(context.Background(), ipProgram, args...).CombinedOutput()
		if err != nil {
			t.Fatalf("ip %v: %v: %s", args, err, out)
		}
		for _, line := range strings.Split(string(out), "\n") {
			if strings.Contains(line, id) {
				t.Errorf("left behind after Stop (ip %s): %s", strings.Join(args, " "), line)
			}
		}
	}
}

func describeStates(sts map[string]NodeStatus) string {
	var parts []string
	for _, name := range []string{"n1", "n2", "n3"} {
		st := sts[name]
		parts = append(parts, name+"="+st.State+"/"+itoa(st.ClusterSize))
	}
	return strings.Join(parts, " ")
}

// TestNetnsReplication runs a primary and two replicas in namespaces:
// replicas replicate over the bridge from the primary's address, the
// monitoring user logs in over it, and a cut link stops what flows to n2
// until it is mended. HAProxy, in the root namespace, reaches the nodes
// and their agents over the bridge.
func TestNetnsReplication(t *testing.T) {
	dir := sandboxDir(t)
	stopOnCleanup(t, dir)
	ctx := testContext(t, 3*time.Minute)
	s, err := StartReplication(ctx, Options{Dir: dir, Nodes: 3, BasePort: 29406, Log: t.Output(), AgentBinary: ninesBin, Netns: true, HAProxy: true})
	if err != nil {
		t.Fatalf("start: %v", err)
	}
	want := map[string]string{"n1": StatePrimary, "n2": "replicating", "n3": "replicating", HAProxyName: "running"}
	for name, st := range statusByName(t, s) {
		if st.State != want[name] || st.Address == "" && name != HAProxyName {
			t.Errorf("%s: %+v, want state %q and an address", name, st, want[name])
		}
	}
	mustExec(t, rootDB(t, s, "n1"), "CREATE TABLE app.w (id INT AUTO_INCREMENT PRIMARY KEY, sid INT NOT NULL)")
	if _, err := appDB(t, s, s.WriterAddress()).ExecContext(ctx, "INSERT INTO w (sid) VALUES (@@server_id)"); err != nil {
		t.Fatalf("write through haproxy's writer: %v", err)
	}
	if sid := queryOne[int](t, rootDB(t, s, "n1"), "SELECT sid FROM app.w"); sid != 1 {
		t.Errorf("the write through haproxy landed on server_id %d, want 1", sid)
	}
	if sid := queryOne[int](t, appDB(t, s, s.ReaderAddress()), "SELECT @@server_id"); sid != 2 && sid != 3 {
		t.Errorf("haproxy's reader reached server_id %d, want a replica", sid)
	}
	mustExec(t, rootDB(t, s, "n1"), "CREATE TABLE nines.r (id INT PRIMARY KEY)")
	dbs := map[string]*sql.DB{"n2": monitorDB(t, s, "n2"), "n3": monitorDB(t, s, "n3")}
	rows := func(node string) func() (bool, string) {
		return func() (bool, string) {
			var c int
			if err := dbs[node].QueryRow("SELECT COUNT(*) FROM nines.r").Scan(&c); err != nil {
				return false, err.Error()
			}
			return c == 1, itoa(c) + " rows"
		}
	}
	if err := s.Cut(ctx, "n1", "n2"); err != nil {
		t.Fatal(err)
	}
	mustExec(t, rootDB(t, s, "n1"), "INSERT INTO nines.r VALUES (1)")
	eventually(t, 10*time.Second, "row on n3", rows("n3"))
	time.Sleep(2 * time.Second)
	if ok, state := rows("n2")(); ok {
		t.Fatalf("n2 got the row across a cut link: %s", state)
	}
	t0 := time.Now()
	if err := s.Mend(ctx, "n2", "n1"); err != nil {
		t.Fatal(err)
	}
	eventually(t, 30*time.Second, "row on n2 after Mend", rows("n2"))
	t.Logf("measured: n2 caught up %v after Mend (the replica's TCP connection retransmits)", time.Since(t0).Round(time.Millisecond))
	if err := s.Stop(ctx); err != nil {
		t.Fatalf("stop: %v", err)
	}
	requireNoNetwork(t, netID(dir))
}
