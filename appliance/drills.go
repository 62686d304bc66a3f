package appliance

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/nines-project/nines"
	"github.com/nines-project/nines/agent"
	"github.com/nines-project/nines/appliance/config"
	"github.com/nines-project/nines/appliance/report"
	"github.com/nines-project/nines/haproxy"
	"github.com/nines-project/nines/internal/metric"
	"github.com/nines-project/nines/remediator"
)

// Drill scenarios. The first four are Galera's (writer-kill needs HAProxy
// in front); primary-kill is replication's.
const (
	ScenarioNodeCrash   = "node-crash"
	ScenarioTwoCrash    = "two-crash"
	ScenarioWholeCrash  = "whole-crash"
	ScenarioWriterKill  = "writer-kill"
	ScenarioPrimaryKill = "primary-kill"
)

const supportedScenarios = ScenarioNodeCrash + ", " + ScenarioTwoCrash + ", " + ScenarioWholeCrash + ", " + ScenarioWriterKill + ", " + ScenarioPrimaryKill

// drillMaxLag is how far behind (Seconds_Behind_Master) a replica may be
// when a primary-kill starts: one further behind makes the failover wait
// for it to apply its relay log, a drill of a lagging cluster, not of a
// healthy one.
const drillMaxLag = 5

// Drill states.
const (
	DrillRunning = "running"
	DrillDone    = "done"
	DrillFailed  = "failed"
)

// drillRepairLimit bounds the wait for the remediator's repair; past it
// the drill fails and says so (the cluster is then a real incident).
// A whole-cluster recovery may wait remediation.position_wait (default
// 2m) for nodes that do not answer, so this leaves room beyond it.
const drillRepairLimit = 10 * time.Minute

// DrillRecord is one drill as the API returns it and the data dir keeps
// it (data_dir/drills/<id>.json).
type DrillRecord struct {
	Cluster string `json:"cluster"`
	report.Drill
}

// DrillRequest is POST /api/v1/clusters/{name}/drills.
type DrillRequest struct {
	Scenario string `json:"scenario"`
}

// drillError is a refusal with its HTTP status.
type drillError struct {
	status int
	msg    string
}

func (e *drillError) Error() string { return e.msg }

func refuse(status int, format string, args ...any) error {
	return &drillError{status, fmt.Sprintf(format, args...)}
}

// drillVictims checks that scenario may run on cl as it is now and
// returns the nodes it kills. It decides only: the safety rules are
// here, in one place, and tested without a cluster. latest are the
// exporter's latest snapshots; st the remediator's view of the cluster;
// running the ID of a drill already running on it ("" for none); writer
// the node HAProxy sends writes to now ("" when unknown or no HAProxy).
func drillVictims(cl *config.Cluster, scenario string, latest []*nines.Snapshot, st remediator.ClusterStatus, running, writer string) ([]config.Node, error) {
	if !cl.Drill.Allowed {
		return nil, refuse(http.StatusForbidden, "cluster %s is not a drill target: a drill kills its servers for real; declare it with drill: {allowed: true} in its config", cl.Name)
	}
	victims, err := scenarioVictims(cl, scenario, latest, writer)
	if err != nil {
		return nil, err
	}
	if running != "" {
		return nil, refuse(http.StatusConflict, "drill %s is still running on cluster %s", running, cl.Name)
	}
	// A drill whose repair nobody runs is an outage.
	if st.Mode != remediator.ModeAuto {
		return nil, refuse(http.StatusConflict, "cluster %s: remediation is %s, not auto: nobody would repair what the drill breaks", cl.Name, st.Mode)
	}
	if st.Halted != "" {
		return nil, refuse(http.StatusConflict, "cluster %s: remediation is halted (%s): nobody would repair what the drill breaks", cl.Name, st.Halted)
	}
	if st.RunningJob != "" {
		return nil, refuse(http.StatusConflict, "cluster %s: job %s is running; a drill starts on a healthy, quiet cluster", cl.Name, st.RunningJob)
	}
	if cl.Kind == nines.KindReplication {
		if _, bad := replicationHealth(cl, latest); len(bad) > 0 {
			return nil, refuse(http.StatusConflict, "cluster %s is not healthy (%s): a primary-kill starts only with one writable primary and every other node replicating from it, caught up within %d s", cl.Name, strings.Join(bad, "; "), drillMaxLag)
		}
		return victims, nil
	}
	if bad := unhealthy(cl, latest); len(bad) > 0 {
		return nil, refuse(http.StatusConflict, "cluster %s is not healthy (%s): a drill starts only when every node is Synced in a Primary component", cl.Name, strings.Join(bad, "; "))
	}
	return victims, nil
}

// scenarioVictims are the nodes scenario kills on cl (latest and writer
// as for drillVictims), or why it cannot run there whatever cl's state;
// primary-kill names no victim while the scrapes show no whole cluster
// (drillVictims then refuses with the reasons).
func scenarioVictims(cl *config.Cluster, scenario string, latest []*nines.Snapshot, writer string) ([]config.Node, error) {
	var victims []config.Node
	switch {
	case scenario == ScenarioPrimaryKill && cl.Kind != nines.KindReplication:
		return nil, refuse(http.StatusConflict, "primary-kill is for replication clusters; cluster %s is kind %s", cl.Name, cl.Kind)
	case slices.Contains([]string{ScenarioNodeCrash, ScenarioTwoCrash, ScenarioWholeCrash, ScenarioWriterKill}, scenario) && cl.Kind != nines.KindGalera:
		return nil, refuse(http.StatusConflict, "%s is a galera scenario; cluster %s is kind %s (a replication cluster's scenario is %s)", scenario, cl.Name, cl.Kind, ScenarioPrimaryKill)
	}
	switch scenario {
	case ScenarioNodeCrash:
		// The last node: with a load balancer the writer is the first,
		// and writer-kill is the scenario that kills it.
		victims = cl.Nodes[len(cl.Nodes)-1:]
	case ScenarioTwoCrash:
		if len(cl.Nodes) < 3 {
			return nil, refuse(http.StatusConflict, "two-crash kills two nodes and needs at least 3; cluster %s has %d", cl.Name, len(cl.Nodes))
		}
		victims = cl.Nodes[len(cl.Nodes)-2:]
	case ScenarioWholeCrash:
		victims = cl.Nodes
	case ScenarioWriterKill:
		if cl.HAProxy == nil {
			return nil, refuse(http.StatusConflict, "writer-kill kills the node HAProxy sends writes to, and cluster %s has no haproxy: key", cl.Name)
		}
		i := slices.IndexFunc(cl.Nodes, func(n config.Node) bool { return n.Address == writer })
		if i < 0 {
			return nil, refuse(http.StatusConflict, "writer-kill: HAProxy's writer backend %s has no server UP now, or it was not read yet", cl.HAProxy.WriterBackend)
		}
		victims = cl.Nodes[i : i+1]
	case ScenarioPrimaryKill:
		// The victim is the primary as the latest scrapes show it; the
		// health check below refuses when there is no single one.
		if primary, bad := replicationHealth(cl, latest); len(bad) == 0 {
			i := slices.IndexFunc(cl.Nodes, func(n config.Node) bool { return n.Address == primary })
			victims = cl.Nodes[i : i+1]
		}
	default:
		return nil, refuse(http.StatusBadRequest, "scenario %q: want one of %s", scenario, supportedScenarios)
	}
	return victims, nil
}

// DrillScenario is a scenario as GET /api/v1/clusters/{name} offers it on
// a drill target, for the console's confirmation: the nodes it would kill
// now, or why it cannot run on the cluster. The POST decides again.
type DrillScenario struct {
	Scenario string   `json:"scenario"`
	Kills    []string `json:"kills,omitempty"`
	Refused  string   `json:"refused,omitempty"`
}

// drillScenarios are the scenarios the API accepts, as they would run on
// cl now; nil unless cl is a drill target.
func drillScenarios(cl *config.Cluster, latest []*nines.Snapshot, writer string) []DrillScenario {
	if !cl.Drill.Allowed {
		return nil
	}
	scenarios := []string{ScenarioNodeCrash, ScenarioTwoCrash, ScenarioWholeCrash, ScenarioWriterKill}
	if cl.Kind == nines.KindReplication {
		scenarios = []string{ScenarioPrimaryKill}
	}
	var out []DrillScenario
	for _, sc := range scenarios {
		ds := DrillScenario{Scenario: sc}
		victims, err := scenarioVictims(cl, sc, latest, writer)
		switch {
		case err != nil:
			ds.Refused = err.Error()
		case len(victims) == 0:
			_, bad := replicationHealth(cl, latest)
			ds.Refused = "the cluster is not whole now: " + strings.Join(bad, "; ")
		}
		for _, v := range victims {
			ds.Kills = append(ds.Kills, v.Address)
		}
		out = append(out, ds)
	}
	return out
}

// replicationHealth finds the primary of a replication cluster in the
// latest snapshots (up, read_only OFF, replicating from nobody) and names
// each node that keeps the cluster from being whole: not scraped, down, a
// second writable node, or a replica whose threads do not both run
// against the primary, whose SQL thread failed, or that lags more than
// drillMaxLag. A whole cluster has a primary and bad empty.
func replicationHealth(cl *config.Cluster, latest []*nines.Snapshot) (primary string, bad []string) {
	snaps := map[string]*nines.Snapshot{}
	for _, s := range latest {
		if s.Cluster == cl.Name {
			snaps[s.Instance] = s
		}
	}
	var writable []string
	for _, n := range cl.Nodes {
		s := snaps[n.Address]
		switch {
		case s == nil:
			bad = append(bad, n.Address+" not scraped yet")
		case !s.Up:
			bad = append(bad, n.Address+" down")
		case len(s.Replicas) == 0 && strings.EqualFold(s.Variables["read_only"], "OFF"):
			writable = append(writable, n.Address)
		}
	}
	switch len(writable) {
	case 0:
		return "", append(bad, "no writable primary")
	case 1:
		primary = writable[0]
	default:
		return "", append(bad, "two writable nodes: "+strings.Join(writable, ", "))
	}
	for _, n := range cl.Nodes {
		s := snaps[n.Address]
		if n.Address == primary || s == nil || !s.Up {
			continue
		}
		if len(s.Replicas) == 0 {
			bad = append(bad, n.Address+" read-only and replicating from nobody")
			continue
		}
		if !strings.EqualFold(s.Variables["read_only"], "ON") {
			bad = append(bad, n.Address+" a replica that is not read-only")
			continue
		}
		r := s.Replicas[0]
		src := net.JoinHostPort(r.SourceHost, strconv.Itoa(r.SourcePort))
		switch {
		case src != primary:
			bad = append(bad, fmt.Sprintf("%s replicates from %s, not the primary %s", n.Address, src, primary))
		case r.LastSQLErrno != 0:
			bad = append(bad, fmt.Sprintf("%s: its SQL thread failed (error %d)", n.Address, r.LastSQLErrno))
		case !r.IORunning || !r.SQLRunning:
			bad = append(bad, fmt.Sprintf("%s not replicating (IO %s, SQL running %v)", n.Address, r.IOState, r.SQLRunning))
		case r.SecondsBehind == nil || *r.SecondsBehind > drillMaxLag:
			behind := "unknown"
			if r.SecondsBehind != nil {
				behind = strconv.FormatInt(*r.SecondsBehind, 10) + " s"
			}
			bad = append(bad, fmt.Sprintf("%s behind the primary by %s", n.Address, behind))
		}
	}
	return primary, bad
}

// unhealthy names each node of cl that its latest snapshot does not show
// Synced in a Primary component, and why.
func unhealthy(cl *config.Cluster, latest []*nines.Snapshot) []string {
	var bad []string
	for _, n := range cl.Nodes {
		i := slices.IndexFunc(latest, func(s *nines.Snapshot) bool { return s.Cluster == cl.Name && s.Instance == n.Address })
		switch {
		case i < 0:
			bad = append(bad, n.Address+" not scraped yet")
		case !latest[i].Up:
			bad = append(bad, n.Address+" down")
		case !latest[i].Galera.Synced() || !latest[i].Galera.Primary():
			bad = append(bad, n.Address+" not Synced in a Primary component")
		}
	}
	return bad
}

// drills runs drills and keeps their records in dir, one JSON file each.
type drills struct {
	dir   string
	start time.Time // of this process: a record still running from before it was cut short
	mu    sync.Mutex
	// running maps a cluster to the ID of its running drill.
	running map[string]string
	wg      sync.WaitGroup
}

func newDrills(dataDir string, start time.Time) (*drills, error) {
	dir := filepath.Join(dataDir, "drills")
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return nil, fmt.Errorf("drill records: %w", err)
	}
	return &drills{dir: dir, start: start, running: map[string]string{}}, nil
}

// save writes rec atomically, so a crash leaves the old or the new record.
func (d *drills) save(rec DrillRecord) error {
	b, err := json.MarshalIndent(rec, "", "  ")
	if err != nil {
		return err
	}
	p := filepath.Join(d.dir, rec.ID+".json")
	if err := os.WriteFile(p+".tmp", b, 0o600); err != nil {
		return fmt.Errorf("save drill %s: %w", rec.ID, err)
	}
	return os.Rename(p+".tmp", p)
}

// list returns cluster's drills (every cluster's for ""), newest first.
// A record still running that this process did not start was cut short
// by a stop of the appliance: it is shown failed.
func (d *drills) list(cluster string) ([]DrillRecord, error) {
	files, err := filepath.Glob(filepath.Join(d.dir, "*.json"))
	if err != nil {
		return nil, err
	}
	out := []DrillRecord{}
	var errs []error
	for _, f := range files {
		var rec DrillRecord
		b, err := os.ReadFile(f)
		if err == nil {
			err = json.Unmarshal(b, &rec)
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("drill record %s: %w", f, err))
			continue
		}
		if cluster != "" && rec.Cluster != cluster {
			continue
		}
		if rec.State == DrillRunning && rec.Start.Before(d.start) {
			rec.State, rec.Reason = DrillFailed, "the appliance stopped during the drill"
		}
		out = append(out, rec)
	}
	sort.Slice(out, func(i, k int) bool { return out[i].Start.After(out[k].Start) })
	return out, errors.Join(errs...)
}

func (d *drills) get(cluster, id string) (DrillRecord, bool) {
	recs, _ := d.list(cluster)
	for _, r := range recs {
		if r.ID == id {
			return r, true
		}
	}
	return DrillRecord{}, false
}

// reportDrills are cluster's drills as the uptime report lists them.
func (d *drills) reportDrills(cluster string) []report.Drill {
	recs, _ := d.list(cluster)
	out := make([]report.Drill, len(recs))
	for i, r := range recs {
		out[i] = r.Drill
	}
	return out
}

func newDrillID(now time.Time) string {
	b := make([]byte, 3)
	_, _ = rand.Read(b)
	return "drill-" + now.UTC().Format("20060102T150405") + "-" + hex.EncodeToString(b)
}

// startDrill serves POST /api/v1/clusters/{name}/drills: it refuses with
// the reason, or starts the drill in the background and answers 202 with
// its record; GET .../drills/{id} follows it.
func (a *App) startDrill(c echo.Context) error {
	cl := a.clusterConfig(c.Param("name"))
	if cl == nil {
		return c.JSON(http.StatusNotFound, apiError{Status: "error", ErrorType: "not_found", Error: "no cluster named " + c.Param("name")})
	}
	var req DrillRequest
	if err := json.NewDecoder(http.MaxBytesReader(c.Response(), c.Request().Body, 1<<16)).Decode(&req); err != nil {
		return c.JSON(http.StatusBadRequest, apiError{Status: "error", ErrorType: "bad_data", Error: "decode drill request: " + err.Error()})
	}
	rec, err := a.launchDrill(cl, req.Scenario)
	var de *drillError
	switch {
	case errors.As(err, &de):
		kind := map[int]string{http.StatusForbidden: "forbidden", http.StatusConflict: "conflict", http.StatusBadRequest: "bad_data"}[de.status]
		return c.JSON(de.status, apiError{Status: "error", ErrorType: kind, Error: de.msg})
	case err != nil:
		return c.JSON(http.StatusInternalServerError, apiError{Status: "error", ErrorType: "internal", Error: err.Error()})
	}
	return c.JSON(http.StatusAccepted, map[string]any{"status": "success", "data": rec})
}

func (a *App) listDrills(c echo.Context) error {
	if a.clusterConfig(c.Param("name")) == nil {
		return c.JSON(http.StatusNotFound, apiError{Status: "error", ErrorType: "not_found", Error: "no cluster named " + c.Param("name")})
	}
	recs, err := a.drills.list(c.Param("name"))
	if err != nil && len(recs) == 0 {
		return c.JSON(http.StatusInternalServerError, apiError{Status: "error", ErrorType: "internal", Error: err.Error()})
	}
	return c.JSON(http.StatusOK, map[string]any{"status": "success", "data": recs})
}

func (a *App) getDrill(c echo.Context) error {
	rec, ok := a.drills.get(c.Param("name"), c.Param("id"))
	if !ok {
		return c.JSON(http.StatusNotFound, apiError{Status: "error", ErrorType: "not_found", Error: fmt.Sprintf("no drill %s on cluster %s", c.Param("id"), c.Param("name"))})
	}
	return c.JSON(http.StatusOK, map[string]any{"status": "success", "data": rec})
}

func (a *App) clusterConfig(name string) *config.Cluster {
	for i := range a.cfg.Clusters {
		if a.cfg.Clusters[i].Name == name {
			return &a.cfg.Clusters[i]
		}
	}
	return nil
}

// launchDrill checks the refusal rules and starts the drill.
func (a *App) launchDrill(cl *config.Cluster, scenario string) (DrillRecord, error) {
	// In HA only the cluster's leader drills, and its kills and starts
	// carry its fencing token: agents that have seen a token refuse a
	// request without one, and a deposed leader's late kill is refused
	// like its late repairs.
	ctx := a.runCtx
	if a.team != nil {
		_, token, leads := a.team.Lead(cl.Name)
		if !leads {
			return DrillRecord{}, refuse(http.StatusConflict, "appliance %s does not lead cluster %s now: start the drill on its leader (GET /api/v1/ha names it)", a.team.Name(), cl.Name)
		}
		ctx = agent.WithFence(ctx, cl.Name, token)
	}
	var st remediator.ClusterStatus
	for _, s := range a.rem.Status() {
		if s.Cluster == cl.Name {
			st = s
		}
	}
	a.drills.mu.Lock()
	defer a.drills.mu.Unlock()
	victims, err := drillVictims(cl, scenario, a.exp.Latest(), st, a.drills.running[cl.Name], a.haproxyWriter(cl))
	if err != nil {
		return DrillRecord{}, err
	}
	// Every host must consent before any is killed: a drill half done
	// because one agent refused would be an unplanned scenario.
	if err := victimsConsent(a.runCtx, *cl, victims); err != nil {
		return DrillRecord{}, err
	}
	now := time.Now()
	rec := DrillRecord{Cluster: cl.Name, Drill: report.Drill{ID: newDrillID(now), Scenario: scenario, State: DrillRunning, Start: now.UTC()}}
	for _, v := range victims {
		rec.Victims = append(rec.Victims, v.Address)
	}
	if err := a.drills.save(rec); err != nil {
		return DrillRecord{}, err
	}
	a.drills.running[cl.Name] = rec.ID
	a.drills.wg.Add(1)
	go func() {
		defer a.drills.wg.Done()
		rec = a.runDrill(ctx, *cl, victims, rec)
		a.drills.mu.Lock()
		delete(a.drills.running, cl.Name)
		a.drills.mu.Unlock()
		if err := a.drills.save(rec); err != nil {
			a.log.Error("drill: save the result", "drill", rec.ID, "err", err)
		}
		if rec.State == DrillDone {
			a.in.write("nines:drill:"+cl.Name+":"+rec.Scenario, drillMetrics(cl.Name, a.instance, rec.Drill), rec.End, true)
		}
		a.log.Info("drill ended", "drill", rec.ID, "cluster", cl.Name, "scenario", rec.Scenario, "state", rec.State, "reason", rec.Reason,
			"detection_s", rec.DetectionSeconds, "rto_s", rec.RTOSeconds, "stall_s", rec.StallSeconds, "acked", rec.AckedWrites, "lost", rec.LostWrites)
	}()
	return rec, nil
}

// haproxyWriter is the node cl's HAProxy sends writes to, as its latest
// stats read: "" without HAProxy or stats.
func (a *App) haproxyWriter(cl *config.Cluster) string {
	if cl.HAProxy == nil {
		return ""
	}
	for _, lb := range a.lbs {
		if snap := lb.Latest(); snap != nil && snap.Target.Cluster == cl.Name && snap.Up {
			return writerOf(snap.Servers, cl.HAProxy.WriterBackend, cl.Nodes)
		}
	}
	return ""
}

// writerOf is the node a writer backend sends to: its active server when
// UP, else the first UP backup in config order (nines haproxy config
// writes one active server and the others as backups, named
// haproxy.ServerName of their position in nodes).
func writerOf(stats []haproxy.ServerStat, backend string, nodes []config.Node) string {
	up := func(st haproxy.ServerStat) bool { return strings.HasPrefix(st.Status, "UP") }
	for _, backup := range []bool{false, true} {
		for i, n := range nodes {
			for _, st := range stats {
				if st.Backend == backend && st.Server == haproxy.ServerName(i) && st.Backup == backup && up(st) {
					return n.Address
				}
			}
		}
	}
	return ""
}

// victimsConsent asks each victim's agent whether its host allows drills
// (agent.yaml drill.allowed): a 409 naming those that do not, or do not
// answer.
func victimsConsent(ctx context.Context, cl config.Cluster, victims []config.Node) error {
	no := make([]string, len(victims))
	var wg sync.WaitGroup
	for i, v := range victims {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sctx, cancel := context.WithTimeout(ctx, 3*time.Second)
			defer cancel()
			st, err := agent.NewClient(v.Agent, cl.AgentToken.Reveal(), cl.AgentTLS).Status(sctx)
			switch {
			case err != nil:
				no[i] = fmt.Sprintf("%s: agent: %v", v.Address, err)
			case !st.DrillAllowed:
				no[i] = v.Address + ": its agent.yaml does not allow drills (drill: {allowed: true})"
			}
		}()
	}
	wg.Wait()
	no = slices.DeleteFunc(no, func(s string) bool { return s == "" })
	if len(no) > 0 {
		return refuse(http.StatusConflict, "cluster %s: not every host consents to the drill, nothing was killed: %s", cl.Name, strings.Join(no, "; "))
	}
	return nil
}

// runDrill runs the drill and returns its record, ended. It starts the
// independent writer, waits for it to write, kills the victims with
// kill -9 through their agents, then watches the exporter's snapshots:
// detection is the first scrape that finds a victim down, the repair (the
// RTO) the first moment every node is Synced in a Primary component again
// (replication: see primaryKillStep), both from the kill. The RPO is the
// acknowledged writes missing when every acknowledged row is read back at
// the end.
func (a *App) runDrill(ctx context.Context, cl config.Cluster, victims []config.Node, rec DrillRecord) DrillRecord {
	fail := func(format string, args ...any) DrillRecord {
		rec.State, rec.Reason, rec.End = DrillFailed, fmt.Sprintf(format, args...), time.Now().UTC()
		return rec
	}
	var follow func() string
	if cl.Kind == nines.KindReplication && len(cl.Probe.Endpoints) == 0 {
		// No address applications use is configured: write to the
		// primary, as a client told of failovers would.
		follow = func() string {
			p, _ := replicationHealth(&cl, a.exp.Latest())
			return p
		}
	}
	w, err := startDrillWriter(ctx, cl, rec.ID, follow)
	if err != nil {
		return fail("start the drill writer: %v", err)
	}
	defer w.stop()
	if err := w.waitAcked(ctx, 20, 15*time.Second); err != nil {
		return fail("the drill writer: %v", err)
	}

	killed := time.Now()
	kerrs := make([]error, len(victims))
	var wg sync.WaitGroup
	for i, v := range victims {
		wg.Add(1)
		go func() {
			defer wg.Done()
			kctx, cancel := context.WithTimeout(ctx, agentTimeout)
			defer cancel()
			_, err := agent.NewClient(v.Agent, cl.AgentToken.Reveal(), cl.AgentTLS).DrillKill(kctx)
			if err != nil {
				kerrs[i] = fmt.Errorf("kill %s: %w", v.Address, err)
			}
		}()
	}
	wg.Wait()
	w.markKilled(time.Now())
	if err := errors.Join(kerrs...); err != nil {
		// A node that was killed is still repaired by the remediator.
		return fail("%v", err)
	}
	a.log.Warn("drill: servers killed", "drill", rec.ID, "cluster", cl.Name, "nodes", rec.Victims)
	if err := a.drills.save(rec); err != nil {
		a.log.Error("drill: save", "drill", rec.ID, "err", err)
	}

	var detected, repaired, restarted time.Time
	limit := time.NewTimer(drillRepairLimit)
	defer limit.Stop()
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for repaired.IsZero() {
		select {
		case <-ctx.Done():
			return fail("the appliance stopped during the drill")
		case <-limit.C:
			rec.DetectionSeconds = seconds(detected, killed)
			return fail("the cluster was not repaired within %s", drillRepairLimit)
		case <-tick.C:
		}
		latest := a.exp.Latest()
		if detected.IsZero() {
			for _, s := range latest {
				if s.Cluster == cl.Name && s.Time.After(killed) && !s.Up && slices.ContainsFunc(victims, func(v config.Node) bool { return v.Address == s.Instance }) {
					detected = s.Time.Add(s.Duration)
				}
			}
			continue
		}
		if cl.Kind == nines.KindReplication {
			var err error
			if repaired, err = a.primaryKillStep(ctx, cl, victims[0], latest, detected, &restarted); err != nil {
				rec.DetectionSeconds = seconds(detected, killed)
				return fail("%v", err)
			}
			continue
		}
		if len(unhealthy(&cl, fresh(latest, detected))) == 0 {
			repaired = time.Now()
		}
	}
	rec.DetectionSeconds, rec.RTOSeconds = seconds(detected, killed), seconds(repaired, killed)
	readBack := make([]string, len(cl.Nodes))
	for i, n := range cl.Nodes {
		readBack[i] = n.Address
	}
	if cl.Kind == nines.KindReplication {
		rec.FailoverSeconds = seconds(w.firstAckAfterKill(), killed)
		p, _ := replicationHealth(&cl, a.exp.Latest())
		readBack = []string{p}
	}

	// A few writes through the repaired cluster: the stall then spans the
	// whole outage, even when no write got through between kill and repair.
	if err := w.waitAcked(ctx, w.ackedCount()+5, 15*time.Second); err != nil {
		return fail("writes did not resume after the repair: %v", err)
	}
	w.stop()
	rec.AckedWrites, rec.StallSeconds = int64(len(w.acked)), w.stall.Seconds()
	lost, err := w.lost(ctx, cl, readBack)
	if err != nil {
		return fail("read back the acknowledged writes: %v", err)
	}
	rec.LostWrites = int64(lost)
	rec.State, rec.End = DrillDone, time.Now().UTC()
	return rec
}

// primaryKillStep is one look at a replication cluster after its primary
// was killed and seen down (detected). The remediator's failover promotes
// a replica; the drill never promotes nor fences. Once a node other than
// the victim is the writable primary and the remediator is idle (the
// failover job ended), the drill starts the victim's server again through
// its agent, as the operator would after a crash (nines never restarts
// a dead primary by itself: it may be the only copy of what it wrote),
// and *restarted is set. It comes back read-only (read_only=ON in its
// configuration), and the remediator's replication-rejoin makes it a
// replica of the new primary. repaired is when the whole cluster is seen
// so, by scrapes after the restart: the victim replicating from the new
// primary and every replica caught up.
func (a *App) primaryKillStep(ctx context.Context, cl config.Cluster, victim config.Node, latest []*nines.Snapshot, detected time.Time, restarted *time.Time) (repaired time.Time, err error) {
	if restarted.IsZero() {
		primary, _ := replicationHealth(&cl, fresh(latest, detected))
		if primary == "" || primary == victim.Address || !a.remediatorIdle(cl.Name) {
			return time.Time{}, nil
		}
		a.log.Warn("drill: a new primary takes writes; starting the old primary again, as an operator would", "cluster", cl.Name, "primary", primary, "node", victim.Address)
		sctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
		defer cancel()
		if _, err := agent.NewClient(victim.Agent, cl.AgentToken.Reveal(), cl.AgentTLS).Start(sctx, agent.StartRequest{Wait: agent.WaitReady}); err != nil {
			return time.Time{}, fmt.Errorf("start the old primary %s again after the failover to %s: %w", victim.Address, primary, err)
		}
		*restarted = time.Now()
		return time.Time{}, nil
	}
	if primary, bad := replicationHealth(&cl, fresh(latest, *restarted)); len(bad) == 0 && primary != victim.Address {
		return time.Now(), nil
	}
	return time.Time{}, nil
}

// remediatorIdle reports that no job runs on cluster now.
func (a *App) remediatorIdle(cluster string) bool {
	for _, s := range a.rem.Status() {
		if s.Cluster == cluster {
			return s.RunningJob == ""
		}
	}
	return true
}

// fresh are the snapshots taken after t: a node counts as repaired only by
// a scrape that began after it was seen down.
func fresh(latest []*nines.Snapshot, t time.Time) []*nines.Snapshot {
	var out []*nines.Snapshot
	for _, s := range latest {
		if s.Time.After(t) {
			out = append(out, s)
		}
	}
	return out
}

func seconds(t, from time.Time) float64 {
	if t.IsZero() {
		return 0
	}
	return t.Sub(from).Seconds()
}

// drillMetrics are a finished drill's figures as series, one sample at
// its end; last_over_time(nines_drill_rto_seconds[30d]) is the latest
// drill's RTO per scenario.
func drillMetrics(cluster, instance string, d report.Drill) []metric.Metric {
	labels := []metric.Label{{Name: "cluster", Value: cluster}, {Name: "instance", Value: instance}, {Name: "scenario", Value: d.Scenario}}
	g := func(name, help string, v float64) metric.Metric {
		return metric.Metric{Name: name, Help: help, Type: metric.Gauge, Labels: labels, Value: v}
	}
	out := []metric.Metric{
		g("nines_drill_detection_seconds", "Seconds from a drill's kill -9 to nines seeing the node down.", d.DetectionSeconds),
		g("nines_drill_rto_seconds", "Seconds from a drill's kill -9 to the cluster whole again: every node Synced (Galera), the old primary a replica of the new one (replication).", d.RTOSeconds),
		g("nines_drill_write_stall_seconds", "The drill writer's longest wait between two acknowledged writes.", d.StallSeconds),
		g("nines_drill_lost_writes", "Acknowledged writes of the drill writer missing at the end (the RPO).", float64(d.LostWrites)),
	}
	if d.FailoverSeconds > 0 {
		out = append(out, g("nines_drill_failover_seconds", "Seconds from a primary-kill drill's kill -9 to the first write acknowledged after it.", d.FailoverSeconds))
	}
	return out
}
