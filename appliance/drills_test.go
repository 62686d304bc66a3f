package appliance

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/VictoriaMetrics/metricsql"

	"github.com/nines-project/nines"
	"github.com/nines-project/nines/agent"
	"github.com/nines-project/nines/appliance/config"
	"github.com/nines-project/nines/appliance/report"
	"github.com/nines-project/nines/dashboards"
	"github.com/nines-project/nines/haproxy"
	"github.com/nines-project/nines/remediator"
)

func drillCluster(allowed bool) *config.Cluster {
	return &config.Cluster{Name: "billing", Kind: nines.KindGalera, Drill: config.Drill{Allowed: allowed}, Nodes: []config.Node{
		{Address: "db1:3306", Agent: "https://db1:9105"}, {Address: "db2:3306", Agent: "https://db2:9105"}, {Address: "db3:3306", Agent: "https://db3:9105"},
	}}
}

func syncedSnaps(cl *config.Cluster) []*nines.Snapshot {
	var out []*nines.Snapshot
	for _, n := range cl.Nodes {
		out = append(out, &nines.Snapshot{Cluster: cl.Name, Instance: n.Address, Up: true, Galera: &nines.GaleraStatus{
			ClusterStatus: nines.ClusterStatusPrimary, LocalState: nines.LocalStateSynced, Ready: true,
		}})
	}
	return out
}

// TestDrillRefusals: a drill runs only on a declared target that is
// healthy, quiet and repaired automatically; each refusal says why.
func TestDrillRefusals(t *testing.T) {
	auto := remediator.ClusterStatus{Cluster: "billing", Mode: remediator.ModeAuto}
	down := func(s []*nines.Snapshot) []*nines.Snapshot { s[1].Up = false; return s }
	donor := func(s []*nines.Snapshot) []*nines.Snapshot { s[2].Galera.LocalState = nines.LocalStateDonor; return s }
	for _, tt := range []struct {
		name     string
		allowed  bool
		scenario string
		snaps    func([]*nines.Snapshot) []*nines.Snapshot
		st       remediator.ClusterStatus
		running  string
		haproxy  bool
		writer   string
		status   int
		msg      string
		victims  []string
	}{
		{name: "not a drill target", scenario: ScenarioNodeCrash, st: auto, status: http.StatusForbidden, msg: "is not a drill target"},
		{name: "node-crash kills the last node", allowed: true, scenario: ScenarioNodeCrash, st: auto, victims: []string{"db3:3306"}},
		{name: "two-crash kills two of three", allowed: true, scenario: ScenarioTwoCrash, st: auto, victims: []string{"db2:3306", "db3:3306"}},
		{name: "whole-crash kills all", allowed: true, scenario: ScenarioWholeCrash, st: auto, victims: []string{"db1:3306", "db2:3306", "db3:3306"}},
		{name: "writer-kill kills HAProxy's writer", allowed: true, scenario: ScenarioWriterKill, st: auto, haproxy: true, writer: "db2:3306", victims: []string{"db2:3306"}},
		{name: "writer-kill without haproxy", allowed: true, scenario: ScenarioWriterKill, st: auto, writer: "db1:3306", status: http.StatusConflict, msg: "has no haproxy: key"},
		{name: "writer-kill without a writer", allowed: true, scenario: ScenarioWriterKill, st: auto, haproxy: true, status: http.StatusConflict, msg: "no server UP"},
		{name: "primary-kill on galera", allowed: true, scenario: ScenarioPrimaryKill, st: auto, status: http.StatusConflict, msg: "primary-kill is for replication clusters; cluster billing is kind galera"},
		{name: "unknown scenario", allowed: true, scenario: "meteor", st: auto, status: http.StatusBadRequest, msg: `"meteor"`},
		{name: "dry-run remediation", allowed: true, scenario: ScenarioNodeCrash, st: remediator.ClusterStatus{Mode: remediator.ModeDryRun}, status: http.StatusConflict, msg: "nobody would repair"},
		{name: "remediation halted", allowed: true, scenario: ScenarioNodeCrash, st: remediator.ClusterStatus{Mode: remediator.ModeAuto, Halted: "3 recoveries in 10m"}, status: http.StatusConflict, msg: "halted"},
		{name: "a job runs", allowed: true, scenario: ScenarioNodeCrash, st: remediator.ClusterStatus{Mode: remediator.ModeAuto, RunningJob: "j1"}, status: http.StatusConflict, msg: "job j1 is running"},
		{name: "a drill runs", allowed: true, scenario: ScenarioNodeCrash, st: auto, running: "drill-x", status: http.StatusConflict, msg: "drill drill-x is still running"},
		{name: "a node down", allowed: true, scenario: ScenarioNodeCrash, st: auto, snaps: down, status: http.StatusConflict, msg: "db2:3306 down"},
		{name: "a node a donor", allowed: true, scenario: ScenarioWholeCrash, st: auto, snaps: donor, status: http.StatusConflict, msg: "db3:3306 not Synced"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			cl := drillCluster(tt.allowed)
			snaps := syncedSnaps(cl)
			if tt.snaps != nil {
				snaps = tt.snaps(snaps)
			}
			if tt.haproxy {
				cl.HAProxy = &config.HAProxy{StatsSocket: "/run/h.sock", WriterBackend: "billing-writer", ReaderBackend: "billing-reader"}
			}
			victims, err := drillVictims(cl, tt.scenario, snaps, tt.st, tt.running, tt.writer)
			if tt.status == 0 {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				var got []string
				for _, v := range victims {
					got = append(got, v.Address)
				}
				if !slices.Equal(got, tt.victims) {
					t.Fatalf("victims %v, want %v", got, tt.victims)
				}
				return
			}
			var de *drillError
			if !errors.As(err, &de) || de.status != tt.status || !strings.Contains(de.msg, tt.msg) {
				t.Fatalf("got %v (victims %v), want status %d containing %q", err, victims, tt.status, tt.msg)
			}
		})
	}
}

// replCluster is a replication drill target of three nodes.
func replCluster() *config.Cluster {
	cl := drillCluster(true)
	cl.Name, cl.Kind = "radius", nines.KindReplication
	return cl
}

// replSnaps: db2 the primary (after an earlier failover), db1 and db3
// replicating from it, 0 s behind.
func replSnaps(cl *config.Cluster) []*nines.Snapshot {
	var out []*nines.Snapshot
	for _, n := range cl.Nodes {
		s := &nines.Snapshot{Cluster: cl.Name, Instance: n.Address, Up: true, Variables: map[string]string{"read_only": "ON"}}
		if n.Address == "db2:3306" {
			s.Variables["read_only"] = "OFF"
		} else {
			behind := int64(0)
			s.Replicas = []nines.ReplicaStatus{{SourceHost: "db2", SourcePort: 3306, IORunning: true, SQLRunning: true, IOState: "Yes", SecondsBehind: &behind}}
		}
		out = append(out, s)
	}
	return out
}

// TestPrimaryKillRefusals: primary-kill kills the primary the scrapes
// show, on a replication drill target only, and only when the cluster is
// whole: one writable primary, every other node replicating from it and
// caught up; each refusal names the node and what is wrong.
func TestPrimaryKillRefusals(t *testing.T) {
	auto := remediator.ClusterStatus{Cluster: "radius", Mode: remediator.ModeAuto}
	behind := func(n int64) *int64 { return &n }
	for _, tt := range []struct {
		name     string
		scenario string
		allowed  bool
		snaps    func([]*nines.Snapshot)
		st       remediator.ClusterStatus
		status   int
		msg      string
	}{
		{name: "kills the primary", scenario: ScenarioPrimaryKill, allowed: true, st: auto},
		{name: "not a drill target", scenario: ScenarioPrimaryKill, st: auto, status: http.StatusForbidden, msg: "is not a drill target"},
		{name: "a galera scenario", scenario: ScenarioNodeCrash, allowed: true, st: auto, status: http.StatusConflict, msg: "node-crash is a galera scenario; cluster radius is kind replication"},
		{name: "remediation dry-run", scenario: ScenarioPrimaryKill, allowed: true, st: remediator.ClusterStatus{Mode: remediator.ModeDryRun}, status: http.StatusConflict, msg: "nobody would repair"},
		{name: "a job runs", scenario: ScenarioPrimaryKill, allowed: true, st: remediator.ClusterStatus{Mode: remediator.ModeAuto, RunningJob: "j7"}, status: http.StatusConflict, msg: "job j7 is running"},
		{name: "a replica down", scenario: ScenarioPrimaryKill, allowed: true, st: auto, snaps: func(s []*nines.Snapshot) { s[2].Up = false }, status: http.StatusConflict, msg: "(db3:3306 down)"},
		{name: "a replica not scraped", scenario: ScenarioPrimaryKill, allowed: true, st: auto, snaps: func(s []*nines.Snapshot) { s[0].Instance = "elsewhere:3306" }, status: http.StatusConflict, msg: "db1:3306 not scraped yet"},
		{name: "the primary down", scenario: ScenarioPrimaryKill, allowed: true, st: auto, snaps: func(s []*nines.Snapshot) { s[1].Up = false }, status: http.StatusConflict, msg: "db2:3306 down; no writable primary"},
		{name: "two writable", scenario: ScenarioPrimaryKill, allowed: true, st: auto, snaps: func(s []*nines.Snapshot) { s[0].Replicas, s[0].Variables["read_only"] = nil, "OFF" }, status: http.StatusConflict, msg: "two writable nodes: db1:3306, db2:3306"},
		{name: "a writable replica", scenario: ScenarioPrimaryKill, allowed: true, st: auto, snaps: func(s []*nines.Snapshot) { s[2].Variables["read_only"] = "OFF" }, status: http.StatusConflict, msg: "db3:3306 a replica that is not read-only"},
		{name: "an old primary not rejoined", scenario: ScenarioPrimaryKill, allowed: true, st: auto, snaps: func(s []*nines.Snapshot) { s[0].Replicas = nil }, status: http.StatusConflict, msg: "db1:3306 read-only and replicating from nobody"},
		{name: "a replica of another source", scenario: ScenarioPrimaryKill, allowed: true, st: auto, snaps: func(s []*nines.Snapshot) { s[2].Replicas[0].SourceHost = "db1" }, status: http.StatusConflict, msg: "db3:3306 replicates from db1:3306, not the primary db2:3306"},
		{name: "an IO thread connecting", scenario: ScenarioPrimaryKill, allowed: true, st: auto, snaps: func(s []*nines.Snapshot) { s[0].Replicas[0].IORunning, s[0].Replicas[0].IOState = false, "Connecting" }, status: http.StatusConflict, msg: "db1:3306 not replicating (IO Connecting"},
		{name: "a failed SQL thread", scenario: ScenarioPrimaryKill, allowed: true, st: auto, snaps: func(s []*nines.Snapshot) { s[0].Replicas[0].LastSQLErrno = 1062 }, status: http.StatusConflict, msg: "db1:3306: its SQL thread failed (error 1062)"},
		{name: "a replica behind", scenario: ScenarioPrimaryKill, allowed: true, st: auto, snaps: func(s []*nines.Snapshot) { s[2].Replicas[0].SecondsBehind = behind(30) }, status: http.StatusConflict, msg: "db3:3306 behind the primary by 30 s"},
		{name: "a lag unknown", scenario: ScenarioPrimaryKill, allowed: true, st: auto, snaps: func(s []*nines.Snapshot) { s[2].Replicas[0].SecondsBehind = nil }, status: http.StatusConflict, msg: "db3:3306 behind the primary by unknown"},
		{name: "a replica within the lag allowed", scenario: ScenarioPrimaryKill, allowed: true, st: auto, snaps: func(s []*nines.Snapshot) { s[2].Replicas[0].SecondsBehind = behind(drillMaxLag) }},
	} {
		t.Run(tt.name, func(t *testing.T) {
			cl := replCluster()
			cl.Drill.Allowed = tt.allowed
			snaps := replSnaps(cl)
			if tt.snaps != nil {
				tt.snaps(snaps)
			}
			victims, err := drillVictims(cl, tt.scenario, snaps, tt.st, "", "")
			if tt.status == 0 {
				if err != nil || len(victims) != 1 || victims[0].Address != "db2:3306" {
					t.Fatalf("victims %v, err %v; want the primary db2:3306", victims, err)
				}
				return
			}
			var de *drillError
			if !errors.As(err, &de) || de.status != tt.status || !strings.Contains(de.msg, tt.msg) {
				t.Fatalf("got %v (victims %v), want status %d containing %q", err, victims, tt.status, tt.msg)
			}
		})
	}
}

// TestDrillRecordsSurviveARestart: a record still running from before the
// process started reads as failed, and the records persist as JSON.
func TestDrillRecordsSurviveARestart(t *testing.T) {
	dir := t.TempDir()
	start := time.Date(2026, 12, 7, 1, 0, 0, 0, time.UTC)
	d, err := newDrills(dir, start)
	if err != nil {
		t.Fatal(err)
	}
	old := DrillRecord{Cluster: "billing", Drill: report.Drill{ID: "drill-a", Scenario: ScenarioNodeCrash, State: DrillRunning, Start: start.Add(-time.Minute)}}
	done := DrillRecord{Cluster: "billing", Drill: report.Drill{ID: "drill-b", Scenario: ScenarioTwoCrash, State: DrillDone, Start: start.Add(time.Minute), RTOSeconds: 7.5}}
	other := DrillRecord{Cluster: "iptv", Drill: report.Drill{ID: "drill-c", State: DrillDone, Start: start}}
	for _, r := range []DrillRecord{old, done, other} {
		if err := d.save(r); err != nil {
			t.Fatal(err)
		}
	}
	recs, err := d.list("billing")
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) != 2 || recs[0].ID != "drill-b" || recs[0].RTOSeconds != 7.5 || recs[1].ID != "drill-a" {
		t.Fatalf("billing's drills: %+v; want drill-b then drill-a", recs)
	}
	if recs[1].State != DrillFailed || !strings.Contains(recs[1].Reason, "appliance stopped") {
		t.Fatalf("a drill cut short by a restart reads %s %q; want failed, the appliance stopped", recs[1].State, recs[1].Reason)
	}
}

// runAgent runs a real host agent (for a server that is not running) on
// loopback and returns its URL; drill is its agent.yaml drill.allowed.
func runAgent(t *testing.T, drill bool) string {
	t.Helper()
	dir := t.TempDir()
	files := map[string]string{
		"agent-token": "agent-token-0123456789abcdef\n",
		"my.cnf":      "[mysqld]\ndatadir=" + filepath.Join(dir, "data") + "\nsocket=/nonexistent/mysqld.sock\n",
		"agent.yaml": "listen: 127.0.0.1:0\ntoken_file: agent-token\nserver:\n  process: {defaults_file: my.cnf, dir: srv}\n" +
			"drill: {allowed: " + strconv.FormatBool(drill) + "}\n",
	}
	for name, body := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Mkdir(filepath.Join(dir, "srv"), 0o755); err != nil {
		t.Fatal(err)
	}
	acfg, err := agent.Load(filepath.Join(dir, "agent.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	ready, done := make(chan string, 1), make(chan error, 1)
	go func() {
		done <- agent.Run(ctx, acfg, agent.Options{Logger: slog.New(slog.NewTextHandler(t.Output(), nil)), Ready: func(a string) { ready <- a }})
	}()
	t.Cleanup(func() { cancel(); <-done })
	select {
	case addr := <-ready:
		return "http://" + addr
	case err := <-done:
		t.Fatal(err)
	}
	return ""
}

// TestDrillNeedsEveryHostsConsent: before killing anything the appliance
// asks each victim's agent; one host without drill.allowed refuses the
// whole drill, naming it.
func TestDrillNeedsEveryHostsConsent(t *testing.T) {
	yes, no := runAgent(t, true), runAgent(t, false)
	cl := config.Cluster{Name: "billing", AgentToken: config.Secret("agent-token-0123456789abcdef")}
	if err := victimsConsent(t.Context(), cl, []config.Node{{Address: "db2:3306", Agent: yes}}); err != nil {
		t.Fatalf("a consenting host: %v", err)
	}
	err := victimsConsent(t.Context(), cl, []config.Node{{Address: "db2:3306", Agent: yes}, {Address: "db3:3306", Agent: no}})
	var de *drillError
	if !errors.As(err, &de) || de.status != http.StatusConflict || !strings.Contains(de.msg, "db3:3306: its agent.yaml does not allow drills") || strings.Contains(de.msg, "db2") {
		t.Fatalf("one host without consent: %v; want 409 naming db3:3306 only", err)
	}
}

// TestWriterOf: HAProxy writes to the active server while it is UP, else
// to the first UP backup in config order.
func TestWriterOf(t *testing.T) {
	nodes := drillCluster(true).Nodes
	stat := func(server, status string, backup bool) haproxy.ServerStat {
		return haproxy.ServerStat{Backend: "w", Server: server, Status: status, Backup: backup}
	}
	for _, tt := range []struct {
		name  string
		stats []haproxy.ServerStat
		want  string
	}{
		{"active up", []haproxy.ServerStat{stat("n1", "UP", false), stat("n2", "UP", true), stat("n3", "UP", true)}, "db1:3306"},
		{"active going down still takes writes", []haproxy.ServerStat{stat("n1", "UP 1/2", false), stat("n2", "UP", true)}, "db1:3306"},
		{"active down: first up backup", []haproxy.ServerStat{stat("n1", "DOWN", false), stat("n3", "UP", true), stat("n2", "MAINT", true)}, "db3:3306"},
		{"reader backend ignored", []haproxy.ServerStat{{Backend: "r", Server: "n1", Status: "UP"}, stat("n1", "DOWN", false), stat("n2", "UP", true)}, "db2:3306"},
		{"none up", []haproxy.ServerStat{stat("n1", "DOWN", false), stat("n2", "DOWN 1/2", true)}, ""},
	} {
		if got := writerOf(tt.stats, "w", nodes); got != tt.want {
			t.Errorf("%s: writer %q, want %q", tt.name, got, tt.want)
		}
	}
}

// TestDrillScenarios: a drill target offers every scenario the POST
// accepts, each naming the servers it would kill or why it cannot run
// there (the console's confirmation quotes them); a cluster that is not a
// target offers none.
func TestDrillScenarios(t *testing.T) {
	if got := drillScenarios(drillCluster(false), nil, ""); got != nil {
		t.Errorf("not a drill target: offers %+v", got)
	}
	cl := drillCluster(true)
	want := []DrillScenario{
		{Scenario: ScenarioNodeCrash, Kills: []string{"db3:3306"}},
		{Scenario: ScenarioTwoCrash, Kills: []string{"db2:3306", "db3:3306"}},
		{Scenario: ScenarioWholeCrash, Kills: []string{"db1:3306", "db2:3306", "db3:3306"}},
		{Scenario: ScenarioWriterKill, Refused: "writer-kill kills the node HAProxy sends writes to, and cluster billing has no haproxy: key"},
	}
	if got := drillScenarios(cl, nil, ""); !slices.EqualFunc(got, want, sameScenario) {
		t.Errorf("without HAProxy: %+v\nwant %+v", got, want)
	}
	cl.HAProxy = &config.HAProxy{WriterBackend: "billing-writer"}
	want[3] = DrillScenario{Scenario: ScenarioWriterKill, Kills: []string{"db1:3306"}}
	if got := drillScenarios(cl, nil, "db1:3306"); !slices.EqualFunc(got, want, sameScenario) {
		t.Errorf("HAProxy writing to db1: %+v\nwant %+v", got, want)
	}
	for _, ds := range want {
		if _, err := drillVictims(cl, ds.Scenario, syncedSnaps(cl), remediator.ClusterStatus{Mode: remediator.ModeAuto}, "", "db1:3306"); err != nil {
			t.Errorf("scenario %s offered, but the POST refuses it: %v", ds.Scenario, err)
		}
	}
}

func sameScenario(a, b DrillScenario) bool {
	return a.Scenario == b.Scenario && slices.Equal(a.Kills, b.Kills) && a.Refused == b.Refused
}

// TestDrillsDashboardReadsTheDrillSeries: the drills dashboard reads
// exactly the series a finished drill writes (drillMetrics), by its
// cluster variable, and is marked as having data only after a drill.
func TestDrillsDashboardReadsTheDrillSeries(t *testing.T) {
	s, ok := dashboards.Get("nines-drills")
	if !ok || !s.AfterDrill {
		t.Fatalf("drills dashboard found %v, marked after-drill %v", ok, s.AfterDrill)
	}
	written := map[string]bool{}
	for _, m := range drillMetrics("billing", "nines", report.Drill{Scenario: ScenarioNodeCrash}) {
		written[m.Name] = true
	}
	read := map[string]bool{}
	for _, p := range s.Panels {
		for _, tg := range p.Targets {
			e, err := metricsql.Parse(dashboards.Substitute(tg.Expr, dashboards.Variables{Cluster: "billing", RateInterval: "4s", Interval: "2s", Range: "1h"}))
			if err != nil {
				t.Fatalf("%s: %v", p.Title, err)
			}
			metricsql.VisitAll(e, func(e metricsql.Expr) {
				m, ok := e.(*metricsql.MetricExpr)
				if !ok {
					return
				}
				for _, lfs := range m.LabelFilterss {
					for _, lf := range lfs {
						if lf.Label != "__name__" {
							continue
						}
						if !written[lf.Value] {
							t.Errorf("%s: %s is not a series a drill writes", p.Title, lf.Value)
						}
						read[lf.Value] = true
					}
				}
			})
		}
	}
	for n := range written {
		if !read[n] {
			t.Errorf("no panel of the drills dashboard shows %s", n)
		}
	}
}

// TestDrillWriterFollowsThePrimary: without probe endpoints a
// primary-kill's writer writes to the primary the scrapes show (db2 here,
// after an earlier failover), and with no single primary seen (the
// primary just died) it moves to the next node as a client would.
func TestDrillWriterFollowsThePrimary(t *testing.T) {
	cl := replCluster()
	addrs := []string{"db1:3306", "db2:3306", "db3:3306"}
	snaps := replSnaps(cl)
	follow := func() string { p, _ := replicationHealth(cl, snaps); return p }
	if got := followed(addrs, 0, follow); got != 1 {
		t.Errorf("writes to %s; want the primary db2:3306", addrs[got])
	}
	snaps[1].Up = false
	if got := followed(addrs, 2, follow); got != 2 {
		t.Errorf("with the primary down, writes to %s; want db3:3306, the next address", addrs[got])
	}
	if got := followed(addrs, 2, nil); got != 2 {
		t.Errorf("without follow, writes to %s; want db3:3306, the next address", addrs[got])
	}
}

// TestDrillScenariosReplication: a replication drill target offers
// primary-kill alone, naming the primary it would kill, or why not now.
func TestDrillScenariosReplication(t *testing.T) {
	cl := replCluster()
	snaps := replSnaps(cl)
	want := []DrillScenario{{Scenario: ScenarioPrimaryKill, Kills: []string{"db2:3306"}}}
	if got := drillScenarios(cl, snaps, ""); !slices.EqualFunc(got, want, sameScenario) {
		t.Errorf("a whole cluster: %+v\nwant %+v", got, want)
	}
	snaps[2].Up = false
	want[0] = DrillScenario{Scenario: ScenarioPrimaryKill, Refused: "the cluster is not whole now: db3:3306 down"}
	if got := drillScenarios(cl, snaps, ""); !slices.EqualFunc(got, want, sameScenario) {
		t.Errorf("a replica down: %+v\nwant %+v", got, want)
	}
}
