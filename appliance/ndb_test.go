package appliance

import (
	"encoding/json"
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

// TestNDBTopologyUsage: each running data node carries its DataMemory
// with the 95 % rows may use, and its fullest REDO log part with the
// number of parts; a stopped node (no ndbinfo rows) carries neither, and
// the JSON leaves them out.
func TestNDBTopologyUsage(t *testing.T) {
	const mib = 1 << 20
	node := func(id int, st ndbmsg.NodeStatus) ndbmsg.Node {
		return ndbmsg.Node{ID: id, Type: ndbmsg.TypeNDB, Status: st, NodeGroup: 0}
	}
	redo := func(id, part int, used, total uint64) ndbexp.LogRow {
		return ndbexp.LogRow{NodeID: id, LogType: "REDO", LogPart: part, Used: used, Total: total}
	}
	r := &ndbexp.Reading{Cluster: "tel", Time: time.Unix(0, 0), MgmTried: []ndbexp.Attempt{{Address: "mgm1:1186"}},
		SQLTried: []ndbexp.Attempt{{Address: "sql1:3306"}},
		Status:   []ndbmsg.Node{node(1, ndbmsg.StatusStarted), node(2, ndbmsg.StatusNoContact)},
		Info: &ndbexp.Ndbinfo{
			Nodes: []ndbexp.NodeRow{{NodeID: 1, State: ndbexp.NodeStarted}},
			Memory: []ndbexp.MemoryRow{
				{NodeID: 1, MemoryType: "Long message buffer", Used: 1, Total: 2},
				{NodeID: 1, MemoryType: "Data memory", Used: 85 * mib, Total: 100 * mib},
			},
			LogSpaces: []ndbexp.LogRow{
				redo(1, 0, 100*mib, 1024*mib), redo(1, 1, 0, 0), redo(1, 2, 900*mib, 1024*mib), redo(1, 3, 10*mib, 1024*mib),
				{NodeID: 1, LogType: "DD-UNDO", Used: 1000 * mib, Total: 1024 * mib},
			},
		}}
	topo := newNDBTopology(r)
	if len(topo.Groups) != 1 || len(topo.Groups[0].DataNodes) != 2 {
		t.Fatalf("groups: %+v", topo.Groups)
	}
	d1, d2 := topo.Groups[0].DataNodes[0], topo.Groups[0].DataNodes[1]
	if m := d1.DataMemory; m == nil || m.Used != 85*mib || m.Total != 100*mib || m.Usable != 95*mib {
		t.Errorf("node 1 data memory %+v, want 85 MiB used of 100 MiB, 95 MiB usable", m)
	}
	if rd := d1.Redo; rd == nil || *rd != (ndbRedo{Used: 900 * mib, Total: 1024 * mib, LogPart: 2, Parts: 4}) {
		t.Errorf("node 1 redo %+v, want part 2 of 4 with 900 of 1024 MiB (the fullest; DD-UNDO is not redo)", rd)
	}
	if d2.DataMemory != nil || d2.Redo != nil || d2.Up {
		t.Errorf("stopped node 2: %+v, want down without usage", d2)
	}
	b, err := json.Marshal(d2)
	if err != nil {
		t.Fatal(err)
	}
	if s := string(b); strings.Contains(s, "data_memory") || strings.Contains(s, "redo") {
		t.Errorf("stopped node as JSON: %s, want no data_memory or redo", s)
	}
	b, _ = json.Marshal(d1)
	if s := string(b); !strings.Contains(s, `"data_memory":{"used":89128960,"total":104857600,"usable":99614720}`) ||
		!strings.Contains(s, `"redo":{"used":943718400,"total":1073741824,"log_part":2,"parts":4}`) {
		t.Errorf("node 1 as JSON: %s", s)
	}
	if topo := newNDBTopology(&ndbexp.Reading{Status: r.Status}); topo.Groups[0].DataNodes[0].DataMemory != nil {
		t.Errorf("usage without ndbinfo: %+v", topo.Groups[0].DataNodes[0])
	}
}
