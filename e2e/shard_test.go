//go:build cluster

package e2e

import (
	"context"
	"fmt"
	"net"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nines-project/nines/internal/testbin"
)

// shardAliases spell 127.0.0.1 other ways: nines keys a node by its
// address as written, so the shared 3-node sandbox stands for one more
// cluster per spelling, and the sharding drill needs only one sandbox.
var shardAliases = []string{"localhost", "[::ffff:127.0.0.1]", "[::ffff:7f00:1]"}

// haStatus is GET /api/v1/ha.
type haStatus struct {
	Name     string
	Members  []string
	Clusters []struct {
		Name   string
		Owner  string
		Leader bool
	}
}

func (h *healer) ha(t *testing.T) (haStatus, bool) {
	t.Helper()
	var r struct{ Data haStatus }
	if code, err := h.get("/api/v1/ha", nil, &r); err != nil || code != 200 {
		return haStatus{}, false
	}
	return r.Data, true
}

// shardTeam is the sharded team's view when it agrees: every live
// appliance sees the same live members, each cluster has one owner,
// and that owner, and no one else, leads it. ok is false otherwise.
func shardTeam(t *testing.T, apps map[string]*healer, live []string, clusters []string) (owners map[string]string, ok bool) {
	t.Helper()
	owners = map[string]string{}
	leaders := map[string][]string{}
	for _, n := range live {
		st, up := apps[n].ha(t)
		if !up || len(st.Members) != len(live) || len(st.Clusters) != len(clusters) {
			return nil, false
		}
		for _, c := range st.Clusters {
			if o, seen := owners[c.Name]; (seen && o != c.Owner) || c.Owner == "" {
				return nil, false
			}
			owners[c.Name] = c.Owner
			if c.Leader {
				leaders[c.Name] = append(leaders[c.Name], n)
			}
		}
	}
	for _, c := range clusters {
		if len(leaders[c]) > 1 {
			t.Fatalf("cluster %s led by %v at once", c, leaders[c])
		}
		if len(leaders[c]) != 1 || leaders[c][0] != owners[c] {
			return nil, false
		}
	}
	return owners, true
}

// Acceptance (issue 15, sharding): three appliances on one etcd, each
// writing to and reading from one victoria-metrics, four clusters spread
// over them. Every appliance's API lists every cluster with its owner
// and health. The owner of the sandbox's cluster is killed with -9:
// within 10 s its clusters are scraped again (fresh samples in the
// shared store) and led by a survivor, which may repair them; no other
// cluster moves.
func TestShardApplianceKilled(t *testing.T) {
	t0 := time.Now()
	sb := sharedGalera(t)
	dir := sandboxDir(t, false)
	freePort(t) // makes listenPorts, the e2e port block etcd takes its ports from
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	etcd, err := testbin.StartEtcd(ctx, listenPorts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(etcd.Stop)
	vmBase := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	vm := "http://" + vmBase
	startReceiver(t, "/usr/bin/victoria-metrics", vm, "/health", "-storageDataPath", filepath.Join(dir, "vm"),
		"-httpListenAddr", vmBase, "-search.latencyOffset=1s", "-dedup.minScrapeInterval=1ms", "-retentionPeriod=1")

	clusters := []string{sb.ClusterName()}
	var more strings.Builder
	for i, alias := range shardAliases {
		name := fmt.Sprintf("alias%d", i+1)
		clusters = append(clusters, name)
		fmt.Fprintf(&more, "  - name: %s\n    kind: galera\n    nodes:\n", name)
		for _, n := range sb.Nodes() {
			_, port, _ := net.SplitHostPort(n.Address())
			fmt.Fprintf(&more, "      - {address: %q}\n", alias+":"+port)
		}
		fmt.Fprintf(&more, "    credentials: {user: nines, password_file: %s}\n    remediation: {mode: \"off\"}\n    probe: {disabled: true}\n", sb.PasswordPath())
	}
	names := []string{"a", "b", "c"}
	apps := map[string]*healer{}
	started := time.Now()
	for _, n := range names {
		apps[n] = startHealer(t, sb, remediationOpts{mode: "auto", maxRecoveries: 10, noWait: true, moreClusters: more.String(),
			extra: fmt.Sprintf("ha: {name: %s, etcd: [%q], lease: %s, shard: true}\nstore: {url: %q}\nremote_write:\n  - {name: shared, url: %q}\n",
				n, etcd.URL, haLease, vm, vm+"/api/v1/write")})
	}

	var before map[string]string
	// Bounds for start-up only (a loaded machine starts three race-built
	// appliances slowly); the drill's bound is the move's.
	took := waitFor(t, started, 90*time.Second, "the team to agree: one owner per cluster, leading it", func() bool {
		var ok bool
		before, ok = shardTeam(t, apps, names, clusters)
		return ok
	})
	t.Logf("measured: team of 3 agreed on owners %s after the appliances were started: %v", took.Round(time.Millisecond), before)

	// The whole fleet on every console: each cluster, its owner, its
	// nodes up (read from the shared store for another's clusters).
	agreed := time.Now()
	took = waitFor(t, agreed, 30*time.Second, "every appliance to list every cluster with its owner and nodes up", func() bool {
		for _, n := range names {
			var r struct {
				Data []struct {
					Name  string
					Owner string
					Nodes []struct {
						Up   bool
						From string
					}
				}
			}
			if code, err := apps[n].get("/api/v1/clusters", nil, &r); err != nil || code != 200 || len(r.Data) != len(clusters) {
				return false
			}
			for _, c := range r.Data {
				if c.Owner != before[c.Name] || len(c.Nodes) != 3 {
					return false
				}
				for _, nd := range c.Nodes {
					if !nd.Up || (nd.From == "store") != (c.Owner != n) {
						return false
					}
				}
			}
		}
		return true
	})
	t.Logf("measured: every appliance listed the whole fleet, owners and nodes up, %s after the team agreed", took.Round(time.Millisecond))
	if got := sumValues(queryAt(t, vm, "", `sum(nines_ha_owned_clusters)`, time.Now())); got != float64(len(clusters)) {
		t.Errorf("sum of nines_ha_owned_clusters in the shared store: %v, want %d", got, len(clusters))
	}

	victim := before[sb.ClusterName()]
	var live, moved []string
	for _, n := range names {
		if n != victim {
			live = append(live, n)
		}
	}
	for _, c := range clusters {
		if before[c] == victim {
			moved = append(moved, c)
		}
	}
	apps[victim].kill()
	killed := time.Now()

	var after map[string]string
	led := waitFor(t, killed, haTakeover, fmt.Sprintf("%v, %s's clusters, led by a survivor", moved, victim), func() bool {
		var ok bool
		after, ok = shardTeam(t, apps, live, clusters)
		return ok
	})
	scraped := waitFor(t, killed, haTakeover, fmt.Sprintf("%v scraped again, in the shared store", moved), func() bool {
		for _, c := range moved {
			// Every node of the cluster has a sample written after the kill.
			ts := queryAt(t, vm, "", fmt.Sprintf(`timestamp(mysql_up{cluster=%q})`, c), time.Now())
			if len(ts) != 3 {
				return false
			}
			for _, v := range ts {
				if v < float64(killed.UnixMilli())/1000 {
					return false
				}
			}
		}
		return true
	})
	t.Logf("measured: %s killed with -9; %v led by the survivors after %s, their fresh samples in the shared store after %s (bound %s, lease %s): owners %v -> %v",
		victim, moved, led.Round(time.Millisecond), scraped.Round(time.Millisecond), haTakeover, haLease, before, after)
	for _, c := range clusters {
		if before[c] != victim && after[c] != before[c] {
			t.Errorf("cluster %s moved from %s, alive, to %s", c, before[c], after[c])
		}
	}
	// Remediable: the heir holds the election (shardTeam checked it
	// leads) with a fencing token above the dead owner's, so the agents
	// take its acts and would refuse a late one of the victim's.
	heir := after[sb.ClusterName()]
	if old, got := tokenOf(t, apps[victim], sb.ClusterName()), tokenOf(t, apps[heir], sb.ClusterName()); got <= old {
		t.Errorf("%s's token for %s is %d, not above the dead %s's %d", heir, sb.ClusterName(), got, victim, old)
	}
	t.Logf("measured: drill wall time %s", time.Since(t0).Round(time.Millisecond))
}
