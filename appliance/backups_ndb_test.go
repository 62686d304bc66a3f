package appliance

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nines-project/nines"
	"github.com/nines-project/nines/agent"
	"github.com/nines-project/nines/appliance/config"
	"github.com/nines-project/nines/remediator"
	"github.com/nines-project/nines/remediator/backup"
	"github.com/nines-project/nines/sandbox/ndbsim"
)

const ndbBackupToken = "0123456789abcdef0123456789abcdef"

// ndbBackupWorld is a simulated NDB cluster (in-process ndb_mgmd, two data
// nodes whose BackupDataDir is dataN), a real host agent per data node,
// and the appliance's backup side over them, as nines.yaml configures it.
type ndbBackupWorld struct {
	sim   *ndbsim.Cluster
	dirs  map[int]string
	b     *backups
	rem   *remediator.Remediator
	log   *remediator.JobLog
	sched *backup.Scheduler
	t0    time.Time
}

func newNDBBackupWorld(t *testing.T, keep int) *ndbBackupWorld {
	t.Helper()
	root := t.TempDir()
	w := &ndbBackupWorld{dirs: map[int]string{}, t0: time.Date(2026, 12, 6, 3, 0, 30, 0, time.UTC)}
	for id := 1; id <= 2; id++ {
		w.dirs[id] = filepath.Join(root, fmt.Sprintf("data%d", id))
		if err := os.MkdirAll(w.dirs[id], 0o755); err != nil {
			t.Fatal(err)
		}
	}
	var err error
	w.sim, err = ndbsim.NewCluster(ndbsim.Config{DataNodes: 2, Replicas: 2, BackupDataDir: func(id int) string { return w.dirs[id] }})
	if err != nil {
		t.Fatal(err)
	}
	srv, err := ndbsim.Serve(w.sim, "127.0.0.1:0", ndbsim.ServerConfig{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	tokenFile := filepath.Join(root, "agent-token")
	if err := os.WriteFile(tokenFile, []byte(ndbBackupToken+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	var dataNodes []string
	for id := 1; id <= 2; id++ {
		body := fmt.Sprintf(`name: data%d
token_file: %s
server:
  ndb_data_node:
    node_id: %d
    command: [sh, -c, "sleep 1000"]
    pid_file: %s/ndbd.pid
    log: %s/ndbd.out
    backup_data_dir: %s
`, id, tokenFile, id, w.dirs[id], w.dirs[id], w.dirs[id])
		path := filepath.Join(w.dirs[id], "agent.yaml")
		if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		acfg, err := agent.Load(path)
		if err != nil {
			t.Fatal(err)
		}
		a, err := agent.New(acfg, agent.Options{Logger: slog.New(slog.NewTextHandler(t.Output(), nil))})
		if err != nil {
			t.Fatal(err)
		}
		hs := httptest.NewServer(a.Handler())
		t.Cleanup(hs.Close)
		dataNodes = append(dataNodes, fmt.Sprintf("        - {node_id: %d, agent: %q}\n", id, hs.URL))
	}
	t.Setenv("NINES_TEST_TOKEN", ndbBackupToken)
	t.Setenv("NINES_TEST_PASSWORD", "x")
	// The first management server does not answer: START BACKUP goes to
	// the second, as ndb_mgm tries its connect string in order.
	cfg, err := config.Parse(filepath.Join(root, "nines.yaml"), []byte(fmt.Sprintf(`data_dir: data
api: {tokens: [{name: t, role: admin, token_env: NINES_TEST_TOKEN}]}
clusters:
  - name: tel
    kind: ndb
    nodes: [{address: "127.0.0.1:3306"}]
    credentials: {user: nines, password_env: NINES_TEST_PASSWORD}
    agent_token_env: NINES_TEST_TOKEN
    ndb:
      management: [{address: "127.0.0.1:1"}, {address: %q}]
      data_nodes:
%s    backups: [{method: ndb, schedule: "* * * * *", keep: %d, verify: true}]
`, srv.Addr(), strings.Join(dataNodes, ""), keep)))
	if err != nil {
		t.Fatal(err)
	}
	if w.log, err = remediator.OpenJobLog(filepath.Join(root, "jobs")); err != nil {
		t.Fatal(err)
	}
	w.b = newBackups(cfg, map[string][]backup.Host{}, func(string) []*nines.Snapshot { return nil }, w.log, slog.New(slog.NewTextHandler(t.Output(), nil)))
	w.rem, err = remediator.New(remediator.Options{Log: w.log, Runbooks: w.b.runbooks(),
		Policies: map[string]remediator.Policy{"tel": {Mode: remediator.ModeAuto, Kind: nines.KindNDB}}, OnEnd: w.b.jobEnded})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); w.rem.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	w.sched, err = backup.NewScheduler(w.b.plans, w.rem.Start, backup.SchedulerOptions{Now: func() time.Time { return w.t0 }})
	if err != nil {
		t.Fatal(err)
	}
	return w
}

// scheduled lets the cron schedule's next minute come and waits for the
// job it started.
func (w *ndbBackupWorld) scheduled(t *testing.T) *remediator.Job {
	t.Helper()
	w.t0 = w.t0.Add(time.Minute)
	w.sched.Tick(context.Background(), w.t0)
	st := w.sched.Status()[0]
	if st.LastJob == "" || st.LastError != "" {
		t.Fatalf("schedule did not start a job: %+v", st)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		j, err := w.log.Get(st.LastJob)
		if err == nil && j.State.Done() && w.rem.Status()[0].RunningJob == "" {
			return j
		}
		if time.Now().After(deadline) {
			t.Fatalf("job %s did not end: %+v", st.LastJob, j)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func stepOut[T any](t *testing.T, j *remediator.Job, name string) T {
	t.Helper()
	var out T
	for _, s := range j.Steps {
		if s.Name == name {
			if err := json.Unmarshal(s.Output, &out); err != nil {
				t.Fatalf("step %s output %s: %v", name, s.Output, err)
			}
			return out
		}
	}
	t.Fatalf("job %s has no step %s: %+v", j.ID, name, j.Steps)
	return out
}

// TestNDBNativeBackupScheduled: a scheduled native backup runs START
// BACKUP through the management server that answers, until completed,
// records its id and each data node's three files, verifies the files
// only and says so, and the catalog lists one entry for the id with the
// files per node and the nines_backup_* series; retention deletes old ids
// on every data node; a data node missing from a backup fails the
// verification.
func TestNDBNativeBackupScheduled(t *testing.T) {
	w := newNDBBackupWorld(t, 2)
	j := w.scheduled(t)
	if j.State != remediator.JobSucceeded {
		t.Fatalf("job %s: %+v", j.State, j)
	}
	started := stepOut[backup.NDBStarted](t, j, "start-backup")
	if started.BackupID != 1 || started.Management == "127.0.0.1:1" || len(started.Unanswered) != 1 || !strings.HasPrefix(started.Unanswered[0], "127.0.0.1:1:") {
		t.Errorf("start-backup: %+v, want backup 1 on the second management server after the first did not answer", started)
	}
	coll := stepOut[backup.NDBCollected](t, j, "collect-files")
	if len(coll.Nodes) != 2 || coll.Nodes[0].NodeID != 1 || len(coll.Nodes[1].Files) != 3 || len(coll.Without) != 0 {
		t.Errorf("collect-files: %+v", coll)
	}
	v := stepOut[backup.Verification](t, j, "verify")
	if !v.Result.OK || v.Result.Scope != backup.ScopeFiles || !strings.Contains(v.Result.Note, "only the files were checked") || len(v.Result.Checks) != 2 {
		t.Errorf("verify: %+v", v.Result)
	}
	scope := stepOut[string](t, j, "verify-scope")
	if !strings.Contains(scope, "ndb_restore was not run") {
		t.Errorf("job log's verify-scope: %q", scope)
	}

	ctx := context.Background()
	w.b.catalog.ReadJobs()
	w.b.catalog.Refresh(ctx, "")
	es := w.b.catalog.Entries("tel")
	if len(es) != 1 {
		t.Fatalf("catalog: %+v, want one entry for backup 1", es)
	}
	e := es[0]
	if e.ID != "1" || e.Method != backup.MethodNDB || !e.Complete() || e.NDB == nil || len(e.NDB.Nodes) != 2 || len(e.Files) != 6 ||
		e.Source != "ndb_mgmd "+started.Management || e.Verification == nil || !e.Verification.OK || e.Verification.Scope != backup.ScopeFiles {
		t.Fatalf("catalog entry: %+v ndb %+v verification %+v", e, e.NDB, e.Verification)
	}
	for _, n := range e.NDB.Nodes {
		for _, f := range n.Files {
			if f.Size == 0 || len(f.SHA256) != 64 || !strings.Contains(f.Name, fmt.Sprintf(".%d.", n.NodeID)) {
				t.Errorf("node %d file %+v", n.NodeID, f)
			}
		}
		if n.Holder != backup.DataNodeName(n.NodeID) {
			t.Errorf("node %d listed by %q", n.NodeID, n.Holder)
		}
	}
	series := map[string]float64{}
	for _, m := range w.b.catalog.Metrics() {
		labels := map[string]string{}
		for _, l := range m.Labels {
			labels[l.Name] = l.Value
		}
		if labels["cluster"] == "tel" && labels["method"] == "ndb" {
			series[m.Name] = m.Value
		}
	}
	if series["nines_backup_last_success_timestamp_seconds"] <= 0 || series["nines_backup_verified"] != 1 || series["nines_backup_size_bytes"] <= 0 {
		t.Errorf("nines_backup_* of tel/ndb: %v", series)
	}

	// Two more: keep 2 deletes backup 1 on both data nodes.
	for i := 0; i < 2; i++ {
		if j := w.scheduled(t); j.State != remediator.JobSucceeded {
			t.Fatalf("backup %d: %s", i+2, j.State)
		}
	}
	for id, dir := range w.dirs {
		if _, err := os.Stat(ndbsim.BackupPath(dir, 1)); !os.IsNotExist(err) {
			t.Errorf("data node %d still has backup 1 (%v)", id, err)
		}
		for _, b := range []int{2, 3} {
			if _, err := os.Stat(ndbsim.BackupPath(dir, b)); err != nil {
				t.Errorf("data node %d lost backup %d: %v", id, b, err)
			}
		}
	}

	// Data node 2 down: backup 4 has node 1's files only, and the
	// verification fails naming node 2.
	if _, err := w.sim.Stop([]int{2}, ndbsim.StopOptions{}); err != nil {
		t.Fatal(err)
	}
	j = w.scheduled(t)
	if j.State != remediator.JobFailed || !strings.Contains(j.Reason, "data node 2") {
		t.Fatalf("backup with a node down: %s %q, want failed naming data node 2", j.State, j.Reason)
	}
	w.b.catalog.ReadJobs()
	if !w.b.catalog.Failed("tel", "4") {
		t.Errorf("backup 4 not known as failed verification")
	}
}
