package backup

import (
	"github.com/nines-project/nines/galera"

	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nines-project/nines"
	"github.com/nines-project/nines/remediator"
)

// fakeAgent is one host's agent holding backups in memory.
type fakeAgent struct {
	node string
	mu   sync.Mutex
	list []Info
	// backupErr fails the next backups; verify answers verifications.
	backupErr error
	verify    func(id string) VerifyResult
	deleted   []string
	verified  []string
	made      int
}

func (a *fakeAgent) Backup(_ context.Context, req Request) (Manifest, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.made++
	started := t0.Add(time.Duration(a.made) * time.Minute)
	if a.backupErr != nil {
		// Left by a crash: it started before anything this test runs next.
		a.list = append(a.list, Info{Manifest: Manifest{ID: req.ID, Method: req.Method, StartedAt: t0.Add(-time.Minute)}, State: StateIncomplete})
		return Manifest{}, a.backupErr
	}
	m := Manifest{ID: req.ID, Method: req.Method, Node: a.node, StartedAt: started, EndedAt: started.Add(3 * time.Second), DurationSeconds: 3, SizeBytes: 4096,
		Galera: &galera.Position{UUID: "6f5c2a34-0000-11ef-8000-000000000001", Seqno: 42}}
	a.list = append(a.list, Info{Manifest: m, State: StateComplete})
	return m, nil
}

func (a *fakeAgent) List(_ context.Context, dir string) ([]Info, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	return slices.Clone(a.list), nil
}

func (a *fakeAgent) Delete(_ context.Context, dir, id string) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	i := slices.IndexFunc(a.list, func(b Info) bool { return b.ID == id })
	if i < 0 {
		return fmt.Errorf("no backup %s", id)
	}
	a.list = slices.Delete(a.list, i, i+1)
	a.deleted = append(a.deleted, id)
	return nil
}

func (a *fakeAgent) Verify(_ context.Context, dir, id string) (VerifyResult, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.verified = append(a.verified, id)
	if a.verify != nil {
		return a.verify(id), nil
	}
	return VerifyResult{ID: id, OK: true, RestoreSeconds: 1.5, Checks: []Check{{Name: "restore", OK: true}}}, nil
}

// world is a 3-node Galera cluster "c1" with agents and a backup plan,
// its remediator running the backup runbooks.
type world struct {
	agents map[string]*fakeAgent
	snaps  []*nines.Snapshot
	plan   Plan
	rem    *remediator.Remediator
	log    *remediator.JobLog
	cat    *Catalog
}

func newWorld(t *testing.T, plan Plan) *world {
	t.Helper()
	w := &world{agents: map[string]*fakeAgent{}, plan: plan}
	var hosts []Host
	for i, n := range []string{"n1:3306", "n2:3306", "n3:3306"} {
		a := &fakeAgent{node: n}
		w.agents[n] = a
		hosts = append(hosts, Host{Node: n, Agent: a})
		w.snaps = append(w.snaps, galeraSnap(n, "Synced", int64(3-i), "1")) // n3 least loaded
	}
	var ticks atomic.Int64 // a clock that moves a millisecond per reading
	env := Env{
		Plans:     func(c string) []Plan { return []Plan{w.plan} },
		Hosts:     func(string) ([]Host, error) { return hosts, nil },
		Snapshots: func(string) []*nines.Snapshot { return w.snaps },
		Now:       func() time.Time { return t0.Add(time.Duration(ticks.Add(1)) * time.Millisecond) },
	}
	var err error
	if w.log, err = remediator.OpenJobLog(t.TempDir()); err != nil {
		t.Fatal(err)
	}
	w.cat = NewCatalog([]Plan{plan}, env.Hosts, w.log.List, nil)
	env.Failed = w.cat.Failed
	w.rem, err = remediator.New(remediator.Options{Log: w.log, Runbooks: []remediator.Runbook{Runbook{Env: env}, VerifyRunbook{Env: env}},
		Policies: map[string]remediator.Policy{"c1": {Mode: remediator.ModeAuto}}, OnEnd: func(remediator.Job) { w.cat.ReadJobs() }})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); w.rem.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	return w
}

// run starts a job and waits until it ended.
func (w *world) run(t *testing.T, req remediator.ManualRequest) *remediator.Job {
	t.Helper()
	req.Cluster = "c1"
	j, err := w.rem.Start(context.Background(), req)
	if err != nil {
		t.Fatalf("start %+v: %v", req, err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		got, err := w.log.Get(j.ID)
		if err == nil && got.State.Done() && w.rem.Status()[0].RunningJob == "" {
			return got
		}
		if time.Now().After(deadline) {
			t.Fatalf("job %s did not end: %+v", j.ID, got)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func stepNames(j *remediator.Job) string {
	var out []string
	for _, s := range j.Steps {
		out = append(out, s.Kind+" "+s.Name+" "+string(s.State))
	}
	return strings.Join(out, ", ")
}

var dumpPlan = Plan{Cluster: "c1", Kind: nines.KindGalera, Method: MethodDump, Schedule: "@daily", Keep: 2, Verify: true, Dir: "/var/backups/nines"}

func TestBackupJobChoosesBacksUpVerifiesAndRetains(t *testing.T) {
	w := newWorld(t, dumpPlan)
	// n1 holds three older dumps; with the new one, keep 2 leaves the new
	// one and the newest old one.
	for i, ago := range []time.Duration{72 * time.Hour, 48 * time.Hour, 24 * time.Hour} {
		w.agents["n1:3306"].list = append(w.agents["n1:3306"].list, bk(fmt.Sprintf("old%d", i), "dump", ago, "", ""))
	}
	j := w.run(t, remediator.ManualRequest{Kind: "backup"})
	if j.State != remediator.JobSucceeded {
		t.Fatalf("job %s: %s (%s); steps: %s", j.ID, j.State, j.Reason, stepNames(j))
	}
	if want := "observe choose-node done, act backup:n3:3306 done, act verify done, act retention done"; stepNames(j) != want {
		t.Errorf("steps: %s\nwant:  %s", stepNames(j), want)
	}
	if j.Target != "n3:3306" || j.Params["method"] != "dump" || j.Params["keep"] != "2" || j.Params["verify"] != "true" || j.Trigger.Source != "manual" {
		t.Errorf("job target %q params %v trigger %+v", j.Target, j.Params, j.Trigger)
	}
	if got := w.agents["n3:3306"].verified; len(got) != 1 || !strings.HasSuffix(got[0], "-dump-n3-3306") {
		t.Errorf("verified %v, want the new backup of n3", got)
	}
	if got := slices.Sorted(slices.Values(w.agents["n1:3306"].deleted)); !slices.Equal(got, []string{"old0", "old1"}) {
		t.Errorf("deleted %v, want old0 and old1", got)
	}
}

func TestBackupJobFailsOnAFailedVerification(t *testing.T) {
	w := newWorld(t, dumpPlan)
	w.agents["n3:3306"].verify = func(id string) VerifyResult {
		return VerifyResult{ID: id, OK: false, RestoreSeconds: 2, Checks: []Check{{Name: "checksum:dump.sql.gz", OK: false, Detail: "sha256 differs from the manifest"}}}
	}
	j := w.run(t, remediator.ManualRequest{Kind: "backup"})
	if j.State != remediator.JobFailed || !strings.Contains(j.Reason, "check checksum:dump.sql.gz failed: sha256 differs") {
		t.Fatalf("job %s (%s), want failed naming the check", j.State, j.Reason)
	}
	if s := j.Steps[len(j.Steps)-1]; s.Name != "verify" {
		t.Errorf("the job went on after the failed verification: %s", stepNames(j))
	}
	// The catalog reads the failure from the job log.
	w.cat.ReadJobs()
	w.cat.Refresh(context.Background(), "")
	got := map[string]float64{}
	for _, m := range w.cat.Metrics() {
		got[m.Name] = m.Value
	}
	if v, ok := got["nines_backup_verified"]; !ok || v != 0 || got["nines_backup_restore_seconds"] != 2 {
		t.Errorf("metrics %v, want nines_backup_verified 0 and restore 2 s", got)
	}
	if _, ok := got["nines_backup_last_success_timestamp_seconds"]; ok {
		t.Errorf("a backup that failed verification counts as the last success: %v", got)
	}
	if es := w.cat.Entries("c1"); len(es) != 1 || es[0].Verification == nil || es[0].Verification.OK {
		t.Errorf("entries %+v", es)
	}
}

func TestBackupJobFailures(t *testing.T) {
	t.Run("pinned node not Synced", func(t *testing.T) {
		w := newWorld(t, dumpPlan)
		w.snaps[0] = galeraSnap("n1:3306", "Donor/Desynced", 0, "1")
		j := w.run(t, remediator.ManualRequest{Kind: "backup", Target: "n1:3306"})
		if j.State != remediator.JobFailed || !strings.Contains(j.Reason, "pinned node n1:3306 cannot be backed up now: not Synced") {
			t.Errorf("job %s (%s)", j.State, j.Reason)
		}
	})
	t.Run("node stopped mid-backup", func(t *testing.T) {
		w := newWorld(t, dumpPlan)
		w.agents["n3:3306"].backupErr = errors.New("mariadb-dump exited: Lost connection to server during query")
		j := w.run(t, remediator.ManualRequest{Kind: "backup"})
		if j.State != remediator.JobFailed || !strings.Contains(j.Reason, "dump backup on n3:3306") || !strings.Contains(j.Reason, "Lost connection") {
			t.Errorf("job %s (%s)", j.State, j.Reason)
		}
		// The next run: n3 is down now, and its incomplete backup goes.
		w.snaps[2] = down("n3:3306")
		w.agents["n3:3306"].backupErr = nil
		j = w.run(t, remediator.ManualRequest{Kind: "backup"})
		if j.State != remediator.JobSucceeded || j.Target != "n2:3306" {
			t.Errorf("next job %s on %s (%s): %s", j.State, j.Target, j.Reason, stepNames(j))
		}
		if len(w.agents["n3:3306"].deleted) != 1 {
			t.Errorf("the incomplete backup was not removed: %+v", w.agents["n3:3306"].list)
		}
	})
	t.Run("requests refused before a job exists", func(t *testing.T) {
		w := newWorld(t, dumpPlan)
		for req, want := range map[*remediator.ManualRequest]string{
			{Cluster: "c1", Kind: "backup", Method: "mariabackup"}:                  "no mariabackup backup is configured",
			{Cluster: "c1", Kind: "backup", Method: "tar"}:                          `unknown method "tar"`,
			{Cluster: "c1", Kind: "backup", Target: "n9:3306"}:                      `node "n9:3306" is not a node of c1`,
			{Cluster: "c1", Kind: "backup", Params: map[string]string{"keep": "1"}}: `unknown parameter "keep"`,
			{Cluster: "c1", Kind: "verify"}:                                         "want the id of an existing backup",
			{Cluster: "c1", Kind: "sing"}:                                           `unknown kind "sing"`,
		} {
			if _, err := w.rem.Start(context.Background(), *req); err == nil || !strings.Contains(err.Error(), want) {
				t.Errorf("Start(%+v) = %v, want an error containing %q", *req, err, want)
			}
		}
		if js, _ := w.log.List(); len(js) != 0 {
			t.Errorf("refused requests left jobs: %d", len(js))
		}
	})
}

func TestVerifyJob(t *testing.T) {
	w := newWorld(t, dumpPlan)
	w.agents["n2:3306"].list = []Info{bk("b1", "dump", time.Hour, "", "")}
	j := w.run(t, remediator.ManualRequest{Kind: "verify", BackupID: "b1"})
	if j.State != remediator.JobSucceeded || j.Target != "n2:3306" || !slices.Equal(w.agents["n2:3306"].verified, []string{"b1"}) {
		t.Errorf("job %s on %s (%s): %s", j.State, j.Target, j.Reason, stepNames(j))
	}
	j = w.run(t, remediator.ManualRequest{Kind: "verify", BackupID: "nope"})
	if j.State != remediator.JobFailed || !strings.Contains(j.Reason, "backup nope is on no node of c1") {
		t.Errorf("missing backup: %s (%s)", j.State, j.Reason)
	}
	j = w.run(t, remediator.ManualRequest{Kind: "verify", BackupID: "b1", Params: map[string]string{"dir": dumpPlan.Dir}})
	if j.State != remediator.JobSucceeded {
		t.Errorf("verify in the plan's dir: %s (%s)", j.State, j.Reason)
	}
}

// TestVerifyOnlyInPlanDirs: the runbook never hands the agent a dir
// that no plan configures.
func TestVerifyOnlyInPlanDirs(t *testing.T) {
	w := newWorld(t, dumpPlan)
	w.agents["n2:3306"].list = []Info{bk("b1", "dump", time.Hour, "", "")}
	rb := VerifyRunbook{Env: Env{Plans: func(string) []Plan { return []Plan{dumpPlan} }, Hosts: func(string) ([]Host, error) { return nil, nil }}}
	for _, dir := range []string{"/var/lib/mysql", "/var/backups/nines/..", "/var/backups/nines/sub", "relative"} {
		if _, _, err := rb.Prepare("c1", "", map[string]string{"id": "b1", "dir": dir}); err == nil || !strings.Contains(err.Error(), "is not a backup dir of the cluster's plans (/var/backups/nines)") {
			t.Errorf("Prepare with dir %q: %v", dir, err)
		}
		_, err := w.rem.Start(context.Background(), remediator.ManualRequest{Cluster: "c1", Kind: "verify", BackupID: "b1", Params: map[string]string{"dir": dir}})
		if err == nil {
			t.Errorf("a verification in %q was started", dir)
		}
	}
	if got := w.agents["n2:3306"].verified; len(got) != 0 {
		t.Errorf("verified %v", got)
	}
	none := VerifyRunbook{Env: Env{Plans: func(string) []Plan { return nil }}}
	if _, _, err := none.Prepare("c1", "", map[string]string{"id": "b1", "dir": "/var/backups/nines"}); err == nil {
		t.Error("a verification without plans accepted a dir")
	}
}

// A backup that failed verification never pushes a good one out, also
// when the next job starts right after the failed one.
func TestRetentionAfterAFailedVerification(t *testing.T) {
	plan := dumpPlan
	plan.Keep = 2
	w := newWorld(t, plan)
	n3 := w.agents["n3:3306"]
	n3.list = []Info{bk("old0", "dump", 24*time.Hour, "", "")}
	n3.verify = func(id string) VerifyResult {
		if len(n3.verified) == 1 {
			return VerifyResult{ID: id, OK: false, Checks: []Check{{Name: "restore", OK: false, Detail: "mbstream: corrupt"}}}
		}
		return VerifyResult{ID: id, OK: true}
	}
	if j := w.run(t, remediator.ManualRequest{Kind: "backup"}); j.State != remediator.JobFailed {
		t.Fatalf("first job %s (%s), want failed verification", j.State, j.Reason)
	}
	if j := w.run(t, remediator.ManualRequest{Kind: "backup"}); j.State != remediator.JobSucceeded {
		t.Fatalf("second job %s (%s)", j.State, j.Reason)
	}
	// Good: the new one and old0 (keep 2); the bad one is newer than
	// old0, so it stays for inspection.
	if len(n3.deleted) != 0 || len(n3.list) != 3 {
		t.Errorf("deleted %v, left %d backups; want nothing deleted", n3.deleted, len(n3.list))
	}
}
