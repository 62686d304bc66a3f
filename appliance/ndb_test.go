package appliance

import (
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nines-project/nines"
	"github.com/nines-project/nines/appliance/config"
	ndbexp "github.com/nines-project/nines/exporter/ndb"
	ndbmsg "github.com/nines-project/nines/ndb"
)

// TestNDBScrapeTargets: the SQL nodes of a kind ndb cluster are plain
// MySQL targets (no replica status, no replication state, no probe
// heartbeat), and the cluster gets one poller.
func TestNDBScrapeTargets(t *testing.T) {
	t.Setenv("NINES_TEST_TOKEN", "0123456789abcdef0123")
	t.Setenv("NINES_TEST_PASSWORD", "x")
	dir := t.TempDir()
	cfg, err := config.Parse(filepath.Join(dir, "nines.yaml"), []byte(`data_dir: data
api: {tokens: [{name: t, role: admin, token_env: NINES_TEST_TOKEN}]}
clusters:
  - name: tel
    kind: ndb
    nodes: [{address: "127.0.0.1:3306"}, {address: "127.0.0.1:3307"}]
    credentials: {user: nines, password_env: NINES_TEST_PASSWORD}
    ndb: {management: [{address: "127.0.0.1:1186"}]}
`))
	if err != nil {
		t.Fatal(err)
	}
	ts := scrapeTargets(cfg, "appliance-host")
	if len(ts) != 2 {
		t.Fatalf("%d targets, want the 2 SQL nodes", len(ts))
	}
	for _, tg := range ts {
		if tg.Kind != nines.KindNDB || tg.ReplicaStatus || tg.HeartbeatSource != "" {
			t.Errorf("target %+v: want kind ndb without replica status or heartbeat", tg)
		}
	}
	// The ndb pack runs, as every built-in pack does, beside the SLO
	// rules of the cluster's probe through its SQL nodes.
	srcs, err := RuleSources(cfg)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, s := range srcs {
		names = append(names, s.Name)
	}
	if all := strings.Join(names, " "); !strings.Contains(all, "builtin/ndb.yml") || !strings.Contains(all, "generated/slo.yml") {
		t.Errorf("rule sources %s: want builtin/ndb.yml and generated/slo.yml", all)
	}
	ps, err := newNDBPollers(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		for _, p := range ps {
			p.p.Close()
		}
	}()
	if len(ps) != 1 || ps[0].cluster != "tel" {
		t.Errorf("pollers: %+v, want one for tel", ps)
	}
	if got := (&App{cfg: cfg, ndb: ps}).ndbTopologyOf("tel"); got != nil {
		t.Errorf("topology before the first round: %+v, want none", got)
	}
}

// TestNDBGroupHealth: ok with every data node serving, degraded with one
// left, lost with none; stopped nodes are down whatever else is known.
func TestNDBGroupHealth(t *testing.T) {
	node := func(id, group int, st ndbmsg.NodeStatus) ndbmsg.Node {
		return ndbmsg.Node{ID: id, Type: ndbmsg.TypeNDB, Status: st, NodeGroup: group}
	}
	r := &ndbexp.Reading{Cluster: "tel", Time: time.Unix(0, 0),
		MgmTried: []ndbexp.Attempt{{Address: "mgm1:1186", Err: errors.New("refused")}, {Address: "mgm2:1186"}},
		Status: []ndbmsg.Node{
			node(1, 0, ndbmsg.StatusStarted), node(2, 0, ndbmsg.StatusStarted),
			node(3, 1, ndbmsg.StatusStarted), node(4, 1, ndbmsg.StatusNoContact),
			node(5, 2, ndbmsg.StatusNoContact), node(6, 2, ndbmsg.StatusStarting),
			{ID: 50, Type: ndbmsg.TypeMGM, Status: ndbmsg.StatusConnected},
			{ID: 100, Type: ndbmsg.TypeAPI, Status: ndbmsg.StatusNoContact},
		}}
	topo := newNDBTopology(r)
	var got []string
	for _, g := range topo.Groups {
		got = append(got, fmt.Sprintf("%d:%s:%d", g.ID, g.Health, g.Up))
	}
	if s := strings.Join(got, " "); s != "0:ok:2 1:degraded:1 2:lost:0" {
		t.Errorf("groups %s, want 0:ok:2 1:degraded:1 2:lost:0", s)
	}
	if topo.Mgm != "mgm2:1186" || len(topo.Errors) != 1 || !strings.HasPrefix(topo.Errors[0], "mgm1:1186: ") ||
		len(topo.Management) != 1 || !topo.Management[0].Up || len(topo.SQLNodes) != 1 || topo.SQLNodes[0].Up || topo.ArbitrationState != "" {
		t.Errorf("topology: %+v", topo)
	}
}
