//go:build cluster

package e2e

// The NDB drills run against the simulator (`nines sandbox ndb`): mgmd and
// every data node are OS processes, each data node started by its own host
// agent, and the SQL nodes are real MariaDB servers carrying ndbinfo and
// refusing writes as an NDB SQL node does when the cluster cannot serve.
// The appliance reads them only through NDB's own protocols.

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nines-project/nines/sandbox"
)

// startNDBSandbox starts a fresh NDB sandbox of dataNodes data nodes in
// node groups of two and sqlNodes SQL nodes. It is stopped when the test
// ends.
func startNDBSandbox(tb testing.TB, dataNodes, sqlNodes int) *sandbox.NDB {
	tb.Helper()
	watchRaces(tb)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	t0 := time.Now()
	nd, err := sandbox.StartNDB(ctx, sandbox.NDBOptions{Dir: sandboxDir(tb, false), DataNodes: dataNodes, Replicas: 2, SQLNodes: sqlNodes, BasePort: basePort(), Binary: ninesBin})
	if err != nil {
		tb.Fatalf("start NDB sandbox: %v", err)
	}
	tb.Logf("fresh NDB sandbox (%d data nodes, %d SQL nodes) up in %s", dataNodes, sqlNodes, time.Since(t0).Round(time.Millisecond))
	tb.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		if err := nd.Stop(ctx); err != nil {
			tb.Errorf("stop NDB sandbox: %v", err)
		}
	})
	return nd
}

// ndbView is the part of GET /api/v1/clusters/<name> the drills read.
type ndbView struct {
	Groups []struct {
		ID        int    `json:"id"`
		Health    string `json:"health"`
		DataNodes []struct {
			NodeID    int    `json:"node_id"`
			MgmStatus string `json:"mgm_status"`
		} `json:"data_nodes"`
	} `json:"node_groups"`
}

func (h *healer) ndb(t testing.TB) (ndbView, bool) {
	t.Helper()
	var r struct {
		Data struct {
			NDB *ndbView `json:"ndb"`
		}
	}
	if code, err := h.get("/api/v1/clusters/"+h.sb.ClusterName(), nil, &r); err != nil || code != http.StatusOK || r.Data.NDB == nil {
		return ndbView{}, false
	}
	return *r.Data.NDB, true
}

// groupOf is the health of data node id's node group, "" if not shown.
func (v ndbView) groupOf(id int) (group int, health string) {
	for _, g := range v.Groups {
		for _, d := range g.DataNodes {
			if d.NodeID == id {
				return g.ID, g.Health
			}
		}
	}
	return -1, ""
}

// waitNDBServing waits until nines sees every data node STARTED and the
// probe succeeding through both SQL nodes.
func (h *healer) waitNDBServing(t testing.TB, since time.Time, limit time.Duration) time.Duration {
	t.Helper()
	return waitFor(t, since, limit, "every data node STARTED and the probe writing through both SQL nodes", func() bool {
		return len(h.query(`nines_ndb_node_status{type="NDB"} == 4`)) == 4 &&
			len(h.query(fmt.Sprintf(`nines_probe_success{cluster=%q} == 1`, h.sb.ClusterName()))) == 2
	})
}

// groupWatch polls the API every 100 ms while a drill runs and records
// every node group health it saw, so a drill checks its invariant (never
// a lost group while one node is down) all along, not only at the end.
type groupWatch struct {
	mu   sync.Mutex
	seen map[string]int // "group/health" -> polls
	stop chan struct{}
	done chan struct{}
}

func watchGroups(t *testing.T, h *healer) *groupWatch {
	w := &groupWatch{seen: map[string]int{}, stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(w.done)
		tick := time.NewTicker(100 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-w.stop:
				return
			case <-tick.C:
			}
			v, ok := h.ndb(t)
			if !ok {
				continue
			}
			w.mu.Lock()
			for _, g := range v.Groups {
				w.seen[strconv.Itoa(g.ID)+"/"+g.Health]++
			}
			w.mu.Unlock()
		}
	}()
	return w
}

func (w *groupWatch) end() map[string]int {
	close(w.stop)
	<-w.done
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.seen
}

// uptime is the uptime report's counts for [from, to), once the ledger
// has counted the whole period.
type uptime struct {
	Good     int64 `json:"good_seconds"`
	Bad      int64 `json:"bad_seconds"`
	Unknown  int64 `json:"unknown_seconds"`
	NoData   int64 `json:"no_data_seconds"`
	Downtime int64 `json:"downtime_seconds"`
	End      time.Time
	Incident []struct {
		Start    time.Time `json:"start"`
		End      time.Time `json:"end"`
		Duration int64     `json:"duration_seconds"`
	} `json:"incidents"`
}

func (h *healer) uptime(t *testing.T, from, to time.Time) uptime {
	t.Helper()
	params := url.Values{"cluster": {h.sb.ClusterName()}, "from": {from.Format(time.RFC3339)}, "to": {to.Format(time.RFC3339)}, "format": {"json"}}
	var r struct{ Data uptime }
	waitFor(t, to, 15*time.Second, "the uptime report to count the whole period", func() bool {
		r.Data = uptime{}
		if code, err := h.get("/api/v1/reports/uptime", params, &r); err != nil || code != http.StatusOK {
			t.Fatalf("GET uptime report: %d %v", code, err)
		}
		return r.Data.End.Equal(to)
	})
	return r.Data
}

// TestNDBDataNodeKilled: kill -9 of a data node. NdbDataNodeDown reaches
// the webhook within 2 s (woken by the management server's event, not the
// next poll), the API shows its node group degraded (never lost), the
// remediator restarts the node through its host's agent and it reaches
// STARTED, and the probe through the SQL nodes counts no bad second, since
// the group's other node serves.
func TestNDBDataNodeKilled(t *testing.T) {
	nd := startNDBSandbox(t, 4, 2)
	h := startHealer(t, nd.Sandbox, remediationOpts{mode: "auto"})
	time.Sleep(1500 * time.Millisecond)
	from := time.Now().Truncate(time.Second)
	time.Sleep(time.Second)

	const victim = 2
	oldPid, err := nd.DataNodePid(victim)
	if err != nil || oldPid == 0 {
		t.Fatalf("data node %d's pid: %d %v", victim, oldPid, err)
	}
	watch := watchGroups(t, h)
	killed := time.Now()
	if err := nd.Kill(victim); err != nil {
		t.Fatal(err)
	}
	down := func(l map[string]string) bool {
		return l["alertname"] == "NdbDataNodeDown" && l["node_id"] == strconv.Itoa(victim)
	}
	alerted := waitFor(t, killed, 2*time.Second, "NdbDataNodeDown for the killed node at the webhook", func() bool {
		_, ok := h.hook.first("firing", down)
		return ok
	})
	at, _ := h.hook.first("firing", down)
	t.Logf("measured: NdbDataNodeDown at the webhook %s after kill -9 (bound 2 s)", at.Sub(killed).Round(time.Millisecond))
	_ = alerted

	// The API shows the group degraded while the node is away; the
	// remediator's restart takes seconds, so this is seen first.
	var group int
	waitFor(t, killed, 3*time.Second, "the node's group degraded in the API", func() bool {
		v, ok := h.ndb(t)
		if !ok {
			return false
		}
		g, health := v.groupOf(victim)
		group = g
		return health == "degraded"
	})

	var job jobView
	restarted := waitFor(t, killed, 30*time.Second, "the remediator to restart the node and nines to see it STARTED", func() bool {
		for _, j := range h.jobs(t) {
			if j.Runbook == "ndb-data-node-restart" && j.Target == strconv.Itoa(victim) && j.State == "succeeded" {
				job = j
				return len(h.query(fmt.Sprintf(`nines_ndb_node_status{type="NDB",node_id="%d"} == 4`, victim))) == 1
			}
		}
		return false
	})
	t.Logf("measured: data node %d STARTED again %s after the kill, restarted by job %s", victim, restarted.Round(time.Millisecond), job.ID)
	newPid, _ := nd.DataNodePid(victim)
	if newPid == 0 || newPid == oldPid {
		t.Errorf("data node %d: pid %d after the restart, %d before: not a new process", victim, newPid, oldPid)
	}
	var steps []string
	for _, s := range job.Steps {
		steps = append(steps, s.Name+":"+s.State)
	}
	t.Logf("job %s steps: %v", job.ID, steps)
	waitFor(t, killed, 10*time.Second, "NdbDataNodeDown resolved at the webhook", func() bool {
		_, ok := h.hook.first("resolved", down)
		return ok
	})
	time.Sleep(2 * time.Second)
	to := time.Now().Truncate(time.Second)
	seen := watch.end()
	t.Logf("node group health seen every 100 ms during the drill: %v", seen)
	if seen[fmt.Sprintf("%d/lost", group)] > 0 {
		t.Errorf("node group %d was shown lost with one node down: %v", group, seen)
	}
	for _, j := range h.jobs(t) {
		if j.Runbook != "ndb-data-node-restart" || j.ID == job.ID {
			continue
		}
		t.Errorf("another restart job ran: %s %s target %s: %s %s", j.ID, j.Runbook, j.Target, j.State, j.Reason)
	}

	r := h.uptime(t, from, to)
	t.Logf("measured: uptime report %s to %s: good %d bad %d unknown %d no-data %d", from.Format("15:04:05"), to.Format("15:04:05"), r.Good, r.Bad, r.Unknown, r.NoData)
	if r.Bad != 0 || r.Unknown != 0 {
		t.Errorf("the probe counted %d bad and %d unknown seconds while one data node of a group of two was down", r.Bad, r.Unknown)
	}
	if r.Good < int64(to.Sub(from)/time.Second)-1 {
		t.Errorf("good seconds %d of a %s period", r.Good, to.Sub(from))
	}
}

// sqlWriter writes through one SQL node every 100 ms, as an application
// would, and records when writes stopped and started succeeding.
type sqlWriter struct {
	db   *sql.DB
	mu   sync.Mutex
	log  []writeResult
	stop chan struct{}
	done chan struct{}
}

type writeResult struct {
	at  time.Time
	err error
}

func startSQLWriter(t *testing.T, nd *sandbox.NDB, node string) *sqlWriter {
	t.Helper()
	db, err := nd.DB(node)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	ctx := context.Background()
	for _, q := range []string{"CREATE DATABASE IF NOT EXISTS app", "CREATE TABLE IF NOT EXISTS app.orders (id BIGINT AUTO_INCREMENT PRIMARY KEY, at DATETIME(3))"} {
		if _, err := db.ExecContext(ctx, q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	w := &sqlWriter{db: db, stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(w.done)
		tick := time.NewTicker(100 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-w.stop:
				return
			case <-tick.C:
			}
			cctx, cancel := context.WithTimeout(ctx, 2*time.Second)
			_, err := db.ExecContext(cctx, "INSERT INTO app.orders (at) VALUES (NOW(3))")
			cancel()
			w.mu.Lock()
			w.log = append(w.log, writeResult{time.Now(), err})
			w.mu.Unlock()
		}
	}()
	return w
}

// outage is the first refused write and the first accepted one after it.
func (w *sqlWriter) outage() (start, end time.Time, firstErr error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, r := range w.log {
		switch {
		case r.err != nil && start.IsZero():
			start, firstErr = r.at, r.err
		case r.err == nil && !start.IsZero() && end.IsZero():
			end = r.at
		}
	}
	return start, end, firstErr
}

func (w *sqlWriter) end() {
	close(w.stop)
	<-w.done
}

// TestNDBNodeGroupLost: both data nodes of a node group killed. The SQL
// nodes refuse writes (NDB's Cluster Failure), NdbNodeGroupLost pages,
// and the cluster shuts itself down, as NDB does without a node group.
// The remediator's ndb-system-restart starts every data node again
// (normally, never --initial) and the SQL nodes take writes again within
// the bound; the uptime report counts the outage to the second, as the
// writer beside it measured.
func TestNDBNodeGroupLost(t *testing.T) {
	began := time.Now()
	nd := startNDBSandbox(t, 4, 2)
	h := startHealer(t, nd.Sandbox, remediationOpts{mode: "auto"})
	w := startSQLWriter(t, nd, nd.Nodes()[0].Name)
	time.Sleep(1500 * time.Millisecond)
	from := time.Now().Truncate(time.Second)
	time.Sleep(2 * time.Second)

	// Node group 1 is data nodes 3 and 4 (ids in order, NoOfReplicas a group).
	v, ok := h.ndb(t)
	if g, _ := v.groupOf(3); !ok || g != 1 {
		t.Fatalf("data node 3 in group %d, want 1: %+v", g, v)
	}
	var oldPids []int
	for id := 1; id <= 4; id++ {
		pid, _ := nd.DataNodePid(id)
		oldPids = append(oldPids, pid)
	}
	killed := time.Now()
	for _, id := range []int{3, 4} {
		if err := nd.Kill(id); err != nil {
			t.Fatal(err)
		}
	}
	lost := func(l map[string]string) bool {
		return l["alertname"] == "NdbNodeGroupLost" && l["node_group"] == "1" && l["remediation"] == "ndb-system-restart"
	}
	waitFor(t, killed, 3*time.Second, "NdbNodeGroupLost naming ndb-system-restart at the webhook", func() bool {
		_, ok := h.hook.first("firing", lost)
		return ok
	})
	at, _ := h.hook.first("firing", lost)
	t.Logf("measured: NdbNodeGroupLost at the webhook %s after the second kill -9", at.Sub(killed).Round(time.Millisecond))
	waitFor(t, killed, 3*time.Second, "the group lost in the API", func() bool {
		v, ok := h.ndb(t)
		_, health := v.groupOf(3)
		return ok && health == "lost"
	})

	// Bound: the alert within 2 s, the remediator's 1 s settle, the
	// checks, 11 start phases of 250 ms, then the SQL nodes' write gate
	// (250 ms) and the writer's 100 ms: about 8 s here; 30 s leaves
	// margin on a loaded machine and is still far inside what a person
	// paged would take.
	const bound = 30 * time.Second
	var job jobView
	waitFor(t, killed, bound, "the remediator's system restart to succeed", func() bool {
		for _, j := range h.jobs(t) {
			if j.Runbook == "ndb-system-restart" && j.State == "succeeded" {
				job = j
				return true
			}
		}
		return false
	})
	waitFor(t, killed, bound, "the writer's writes accepted again", func() bool {
		_, end, _ := w.outage()
		return !end.IsZero()
	})
	w.end()
	start, end, firstErr := w.outage()
	if start.IsZero() || firstErr == nil {
		t.Fatal("the writer saw no refused write while node group 1 was lost")
	}
	back := end.Sub(killed)
	t.Logf("measured: writes accepted again %.3f s after the second kill -9 (bound %s), by job %s", back.Seconds(), bound, job.ID)
	if back > bound {
		t.Errorf("writes again %s after the kill, bound %s", back.Round(time.Millisecond), bound)
	}
	h.waitNDBServing(t, killed, bound)
	var steps []string
	for _, s := range job.Steps {
		steps = append(steps, s.Name+":"+s.State)
	}
	t.Logf("job %s steps: %v", job.ID, steps)
	for id := 1; id <= 4; id++ {
		if pid, _ := nd.DataNodePid(id); pid == 0 || pid == oldPids[id-1] {
			t.Errorf("data node %d: pid %d after the system restart, %d before: not a new process", id, pid, oldPids[id-1])
		}
	}
	// No job started a node --initial: not in what the agents answered,
	// not in the data nodes' own logs.
	started := 0
	for _, j := range h.jobs(t) {
		for _, s := range j.Steps {
			if !strings.HasPrefix(s.Name, "start:node-") || s.State != "done" {
				continue
			}
			started++
			var out struct{ Initial bool }
			if err := json.Unmarshal(s.Output, &out); err != nil || out.Initial {
				t.Errorf("job %s (%s) step %s: output %s: an initial start", j.ID, j.Runbook, s.Name, s.Output)
			}
		}
	}
	if started != 4 {
		t.Errorf("%d data node starts in the job log, want the system restart's 4", started)
	}
	for _, d := range nd.Layout().DataNodes {
		b, err := os.ReadFile(d.Log)
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(string(b), "Initial start") {
			t.Errorf("data node %d's log shows an initial start", d.NodeID)
		}
		if !strings.Contains(string(b), "completed (system restart)") {
			t.Errorf("data node %d's log shows no start phase of a system restart", d.NodeID)
		}
	}
	t.Logf("the writer's first refusal: %v", firstErr)
	if got := firstErr.Error(); !strings.Contains(got, "4009") || !strings.Contains(got, "Cluster Failure") {
		t.Errorf("refused with %q, want NDB's 4009 Cluster Failure", got)
	}
	time.Sleep(2 * time.Second)
	to := time.Now().Truncate(time.Second)
	r := h.uptime(t, from, to)
	outage := end.Sub(start)
	t.Logf("measured: writer outage %.3f s (%s to %s); report %s to %s: good %d bad %d unknown %d no-data %d downtime %d s, incidents %+v",
		outage.Seconds(), start.Format("15:04:05.000"), end.Format("15:04:05.000"), from.Format("15:04:05"), to.Format("15:04:05"),
		r.Good, r.Bad, r.Unknown, r.NoData, r.Downtime, r.Incident)
	// Both sides count whole seconds of a 1 s probe: a second either way.
	if d := float64(r.Downtime) - outage.Seconds(); d > 1.5 || d < -1.5 {
		t.Errorf("downtime %d s, the writer's outage %.3f s: more than a second apart", r.Downtime, outage.Seconds())
	}
	if len(r.Incident) != 1 {
		t.Errorf("incidents %+v, want the one outage", r.Incident)
	}
	t.Logf("measured: test wall time %s", time.Since(began).Round(time.Millisecond))
}

// activeAlerts is GET /api/v1/alerts: alertname/node_id -> state.
func (h *healer) activeAlerts(t testing.TB, names ...string) map[string]string {
	t.Helper()
	var r struct {
		Data struct {
			Alerts []struct {
				Labels map[string]string `json:"labels"`
				State  string            `json:"state"`
			} `json:"alerts"`
		}
	}
	if code, err := h.get("/api/v1/alerts", nil, &r); err != nil || code != http.StatusOK {
		t.Fatalf("GET /api/v1/alerts: %d %v", code, err)
	}
	out := map[string]string{}
	for _, a := range r.Data.Alerts {
		for _, n := range names {
			if a.Labels["alertname"] == n {
				out[n+"/"+a.Labels["node_id"]] = a.State
			}
		}
	}
	return out
}

// probeFailures is the probe's failed writes so far, over both SQL nodes.
func (h *healer) probeFailures(t testing.TB) float64 {
	t.Helper()
	var sum float64
	for _, v := range byInstance(h.query(fmt.Sprintf(`nines_probe_writes_failed_total{cluster=%q}`, h.sb.ClusterName()))) {
		sum += v
	}
	return sum
}

// TestNDBMemoryAndRedo: DataMemory pressure and a full redo log. The
// DataMemory alerts become active exactly past their thresholds (80 % and
// 90 % of the 95 % rows may use; their for: of 5 m and 1 m is the rule
// tests' to check), the redo alert past 80 %, and the probe and an
// application's writes see NDB's errors 827 and 410.
func TestNDBMemoryAndRedo(t *testing.T) {
	nd := startNDBSandbox(t, 4, 2)
	h := startHealer(t, nd.Sandbox, remediationOpts{mode: "auto"})
	w := startSQLWriter(t, nd, nd.Nodes()[1].Name)
	defer w.end()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	fault := func(kind string, pct int) time.Time {
		t.Helper()
		if err := nd.Fault(ctx, kind, sandbox.FaultArgs{Percent: pct}); err != nil {
			t.Fatalf("fault %s %d: %v", kind, pct, err)
		}
		return time.Now()
	}
	memAlerts := []string{"NdbDataMemoryHigh", "NdbDataMemoryCritical"}
	// sees waits until nines reads DataMemory at pct on all 4 data nodes.
	sees := func(at time.Time, pct int) {
		t.Helper()
		waitFor(t, at, 5*time.Second, fmt.Sprintf("DataMemory read at %d %%", pct), func() bool {
			ss := h.query(fmt.Sprintf(`max without (instance) (mysql_ndbinfo_memoryusage_used{memory_type="Data memory"}) / max without (instance) (mysql_ndbinfo_memoryusage_total{memory_type="Data memory"}) >= %f`, float64(pct)/100-0.005))
			return len(ss) == 4
		})
	}
	states := func() (high, crit int) {
		for k, st := range h.activeAlerts(t, memAlerts...) {
			if st != "pending" && st != "firing" {
				continue
			}
			if strings.HasPrefix(k, "NdbDataMemoryHigh/") {
				high++
			} else {
				crit++
			}
		}
		return high, crit
	}

	// 75 % of DataMemory is 79 % of the usable 95 %: below both.
	sees(fault(sandbox.FaultDataMemory, 75), 75)
	time.Sleep(2 * time.Second)
	if high, crit := states(); high != 0 || crit != 0 {
		t.Errorf("at 75 %% of DataMemory: %d high and %d critical alerts active, want none", high, crit)
	}
	// 80 %: 84 % of usable, over the warning's 80 %, under the critical 90 %.
	at := fault(sandbox.FaultDataMemory, 80)
	sees(at, 80)
	took := waitFor(t, at, 5*time.Second, "NdbDataMemoryHigh active on all 4 data nodes", func() bool {
		high, _ := states()
		return high == 4
	})
	t.Logf("measured: NdbDataMemoryHigh active %s after DataMemory reached 80 %% (for: 5m before it fires)", took.Round(time.Millisecond))
	if _, crit := states(); crit != 0 {
		t.Errorf("at 80 %% of DataMemory (84 %% of usable): %d critical alerts active, want none", crit)
	}
	// 86 %: 90.5 % of usable, over the critical's 90 %.
	at = fault(sandbox.FaultDataMemory, 86)
	sees(at, 86)
	took = waitFor(t, at, 5*time.Second, "NdbDataMemoryCritical active on all 4 data nodes", func() bool {
		_, crit := states()
		return crit == 4
	})
	t.Logf("measured: NdbDataMemoryCritical active %s after DataMemory reached 86 %% (for: 1m before it pages)", took.Round(time.Millisecond))

	// Full: writes fail with 827, for the probe and for an application.
	failed0 := h.probeFailures(t)
	at = fault(sandbox.FaultDataMemory, 100)
	waitFor(t, at, 5*time.Second, "the probe's writes failing on a full DataMemory", func() bool { return h.probeFailures(t) > failed0 })
	waitFor(t, at, 5*time.Second, "the application's writes refused with 827", func() bool {
		_, _, err := w.outage()
		return err != nil && strings.Contains(err.Error(), "827")
	})
	at = fault(sandbox.FaultClear, 0)
	waitFor(t, at, 5*time.Second, "the application's writes accepted after the clear", func() bool {
		_, end, _ := w.outage()
		return !end.IsZero()
	})

	// Redo log full: NdbRedoLogSpaceLow becomes active, writes fail with 410.
	w2 := startSQLWriter(t, nd, nd.Nodes()[0].Name)
	defer w2.end()
	failed0 = h.probeFailures(t)
	at = fault(sandbox.FaultRedoFull, 0)
	took = waitFor(t, at, 5*time.Second, "NdbRedoLogSpaceLow active", func() bool {
		for k, st := range h.activeAlerts(t, "NdbRedoLogSpaceLow") {
			if strings.HasPrefix(k, "NdbRedoLogSpaceLow/") && (st == "pending" || st == "firing") {
				return true
			}
		}
		return false
	})
	t.Logf("measured: NdbRedoLogSpaceLow active %s after the redo log filled (for: 1m before it fires)", took.Round(time.Millisecond))
	waitFor(t, at, 5*time.Second, "the probe's writes failing on a full redo log", func() bool { return h.probeFailures(t) > failed0 })
	waitFor(t, at, 5*time.Second, "the application's writes refused with 410", func() bool {
		_, _, err := w2.outage()
		return err != nil && strings.Contains(err.Error(), "410")
	})
	fault(sandbox.FaultClear, 0)
}

// TestNDBLongGCP: the gcp-slow fault stops global checkpoints from
// completing (no GlobalCheckpointCompleted on the event stream). nines'
// GCP age then grows by the second; NdbGCPLong becomes active once it
// passes the rule's 60 s, not before, and resolves within seconds of
// GCPs completing again after clear.
func TestNDBLongGCP(t *testing.T) {
	waitsSideBySide(t)
	nd := startNDBSandbox(t, 4, 2)
	h := startHealer(t, nd.Sandbox, remediationOpts{mode: "off"})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	age := func() float64 {
		ss := h.query(fmt.Sprintf(`max(nines_ndb_gcp_seconds_since_completed{cluster=%q})`, nd.ClusterName()))
		if len(ss) != 1 {
			return -1
		}
		return ss[0].Value
	}
	active := func() bool {
		for _, st := range h.activeAlerts(t, "NdbGCPLong") {
			if st == "pending" || st == "firing" {
				return true
			}
		}
		return false
	}
	waitFor(t, time.Now(), time.Minute, "GCPs completing every 2 s, read by nines", func() bool { a := age(); return a >= 0 && a <= 3 })

	at := time.Now()
	if err := nd.Fault(ctx, sandbox.FaultGCPSlow, sandbox.FaultArgs{}); err != nil {
		t.Fatalf("fault gcp-slow: %v", err)
	}
	// Silent while the GCP has taken 60 s or less.
	for i := 0; time.Since(at) < 55*time.Second; i++ {
		if active() {
			t.Fatalf("NdbGCPLong active %s into the stall (GCP age %.1f s), want over 60 s", time.Since(at).Round(time.Millisecond), age())
		}
		if i%10 == 0 {
			t.Logf("%s into the stall: GCP age %.1f s", time.Since(at).Round(time.Second), age())
		}
		time.Sleep(time.Second)
	}
	took := waitFor(t, at, 75*time.Second, "NdbGCPLong active", func() bool {
		if active() {
			return true
		}
		if time.Since(at) > 74*time.Second {
			t.Logf("%s into the stall: GCP age %.1f s, NdbGCPLong not active", time.Since(at).Round(time.Second), age())
		}
		return false
	})
	a := age()
	t.Logf("measured: NdbGCPLong active %s after GCPs stalled (rule: over 60 s since the last completed GCP, which came up to 2 s before the fault; GCP age then %.1f s)", took.Round(time.Millisecond), a)
	if took < 58*time.Second {
		t.Errorf("NdbGCPLong active after %s, before 60 s without a GCP could have passed", took)
	}

	at = time.Now()
	if err := nd.Fault(ctx, sandbox.FaultClear, sandbox.FaultArgs{}); err != nil {
		t.Fatalf("fault clear: %v", err)
	}
	took = waitFor(t, at, 10*time.Second, "NdbGCPLong resolved after clear", func() bool { return !active() })
	t.Logf("measured: NdbGCPLong resolved %s after clear (GCP age %.1f s)", took.Round(time.Millisecond), age())
}
