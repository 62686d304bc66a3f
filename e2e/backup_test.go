//go:build cluster

package e2e

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/nines-project/nines/sandbox"
)

// backupBasePort keeps the backup tests' sandboxes clear of the other
// e2e tests' (14306 upwards), so both can run on one machine.
const (
	backupBasePort      = 29306
	backupBenchBasePort = 30306
)

// backupAppliance is an appliance whose config schedules backups of the
// sandbox; remediation is off, so nothing but backups acts on the nodes.
type backupAppliance struct {
	*appliance
	sb  *sandbox.Sandbox
	cfg string
	dir string // the backup dir on the "hosts"
}

// startBackupAppliance writes a config whose cluster has the backups
// given as YAML list items (with DIR for the backup directory) and runs
// the appliance built as bin on it.
func startBackupAppliance(tb testing.TB, bin string, sb *sandbox.Sandbox, backups string) *backupAppliance {
	tb.Helper()
	addr := fmt.Sprintf("127.0.0.1:%d", freePort(tb))
	dir := tb.TempDir()
	// The backups live in the sandbox's backup dir, the one its agents
	// allow, which the server's user can traverse (verification runs a
	// scratch server as it).
	if err := os.MkdirAll(sb.BackupDir(), 0o755); err != nil {
		tb.Fatal(err)
	}
	bdir, err := os.MkdirTemp(sb.BackupDir(), "backups-")
	if err != nil {
		tb.Fatal(err)
	}
	if err := os.Chmod(bdir, 0o755); err != nil {
		tb.Fatal(err)
	}
	b := clusterConfig(sb, addr, "test", true)
	fmt.Fprintf(b, "    remediation: {mode: \"off\"}\n    backups:\n%s", strings.ReplaceAll(backups, "DIR", bdir))
	cfg := filepath.Join(dir, "nines.yaml")
	if err := os.WriteFile(cfg, []byte(b.String()), 0o600); err != nil {
		tb.Fatal(err)
	}
	a := &backupAppliance{appliance: startApplianceOn(tb, bin, addr, cfg, sb.TokenPath()), sb: sb, cfg: cfg, dir: bdir}
	waitFor(tb, a.started, 30*time.Second, "all three nodes Synced as nines sees them", func() bool {
		return len(a.query(`mysql_global_status_wsrep_local_state == 4 and on (cluster, instance) mysql_global_status_wsrep_cluster_size == 3`)) == 3
	})
	return a
}

// backupJob is a job as GET /api/v1/jobs shows it, with what the backup
// tests read.
type backupJob struct {
	ID      string
	Runbook string
	Target  string
	State   string
	Reason  string
	Params  map[string]string
	Trigger struct{ Source string }
	Created time.Time `json:"created_at"`
	Started time.Time `json:"started_at"`
	Ended   time.Time `json:"ended_at"`
	Steps   []struct {
		Name    string
		Kind    string
		State   string
		Error   string
		Output  json.RawMessage
		Started time.Time `json:"started_at"`
		Ended   time.Time `json:"ended_at"`
	}
}

func (j backupJob) done() bool { return j.State != "" && j.State != "running" && j.State != "pending" }

// step returns the job's step whose name starts with prefix.
func (j backupJob) step(prefix string) (name string, took time.Duration, out json.RawMessage, ok bool) {
	for _, s := range j.Steps {
		if strings.HasPrefix(s.Name, prefix) {
			if !s.Ended.IsZero() {
				took = s.Ended.Sub(s.Started)
			}
			return s.Name, took, s.Output, true
		}
	}
	return "", 0, nil, false
}

func (a *backupAppliance) jobs(tb testing.TB) []backupJob {
	var r struct{ Data []backupJob }
	if code, err := a.get("/api/v1/jobs", nil, &r); err != nil || code != http.StatusOK {
		return nil
	}
	return r.Data
}

func (a *backupAppliance) job(tb testing.TB, id string) backupJob {
	var r struct{ Data backupJob }
	if code, err := a.get("/api/v1/jobs/"+id, nil, &r); err != nil || code != http.StatusOK {
		return backupJob{}
	}
	return r.Data
}

// startJob starts a job through POST /api/v1/jobs; a busy cluster (409)
// is retried for a while.
func (a *backupAppliance) startJob(tb testing.TB, body map[string]any) backupJob {
	tb.Helper()
	deadline := time.Now().Add(2 * time.Minute)
	for {
		code, out, err := a.post("/api/v1/jobs", body)
		if err != nil {
			tb.Fatal(err)
		}
		if code == http.StatusAccepted {
			var r struct{ Data backupJob }
			if err := json.Unmarshal(out, &r); err != nil {
				tb.Fatal(err)
			}
			return r.Data
		}
		if code != http.StatusConflict || time.Now().After(deadline) {
			tb.Fatalf("POST /api/v1/jobs %v: %d %s", body, code, out)
		}
		time.Sleep(500 * time.Millisecond)
	}
}

// waitJob waits until the job ended.
func (a *backupAppliance) waitJob(tb testing.TB, id string, limit time.Duration) backupJob {
	tb.Helper()
	var j backupJob
	waitFor(tb, time.Now(), limit, "job "+id+" to end", func() bool {
		j = a.job(tb, id)
		return j.done()
	})
	return j
}

// backupEntry is one backup as GET /api/v1/backups lists it.
type backupEntry struct {
	Cluster, ID, Method, State, Holder, Source, Dir, GTID string
	Started                                               time.Time `json:"started_at"`
	Duration                                              float64   `json:"duration_seconds"`
	Size                                                  int64     `json:"size_bytes"`
	Galera                                                *struct {
		UUID  string
		Seqno int64
	}
	Files []struct {
		Name string
		Size int64
	}
	Verification *struct {
		OK             bool
		RestoreSeconds float64 `json:"restore_seconds"`
		Failure        string
		Job            string
	}
}

func (a *backupAppliance) backups(tb testing.TB) []backupEntry {
	tb.Helper()
	var r struct {
		Data struct{ Backups []backupEntry }
	}
	if code, err := a.get("/api/v1/backups", url.Values{"cluster": {a.sb.ClusterName()}}, &r); err != nil || code != http.StatusOK {
		tb.Fatalf("GET /api/v1/backups: %d %v", code, err)
	}
	return r.Data.Backups
}

// cli runs `nines <args> --config <the appliance's config>`.
func (a *backupAppliance) cli(args ...string) (string, error) {
	out, err := exec.Command(ninesBin, append(args, "--config", a.cfg)...).CombinedOutput()
	return string(out), err
}

// firing reports whether alert name fires for the cluster (and method,
// when given).
func (a *backupAppliance) firing(name, method string) bool {
	var r struct {
		Data struct {
			Alerts []struct {
				Labels map[string]string
				State  string
			}
		}
	}
	if code, err := a.get("/api/v1/alerts", nil, &r); err != nil || code != http.StatusOK {
		return false
	}
	for _, al := range r.Data.Alerts {
		if al.Labels["alertname"] == name && al.State == "firing" && al.Labels["cluster"] == a.sb.ClusterName() && (method == "" || al.Labels["method"] == method) {
			return true
		}
	}
	return false
}

// loadData fills test.big through node with about mb megabytes of rows
// that do not compress to nothing, in chunks Galera replicates easily.
func loadData(tb testing.TB, sb *sandbox.Sandbox, node string, mb int) (mib float64) {
	tb.Helper()
	db, err := sb.DB(node)
	if err != nil {
		tb.Fatal(err)
	}
	defer db.Close()
	start := time.Now()
	for _, q := range []string{
		"CREATE DATABASE IF NOT EXISTS backup_e2e",
		"CREATE TABLE IF NOT EXISTS backup_e2e.big (id INT PRIMARY KEY, pad VARCHAR(255) NOT NULL) ENGINE=InnoDB",
		"CREATE TABLE IF NOT EXISTS backup_e2e.small (id INT PRIMARY KEY, v VARCHAR(20))",
		"REPLACE INTO backup_e2e.small VALUES (1, 'one'), (2, 'two'), (3, 'three')",
	} {
		if _, err := db.Exec(q); err != nil {
			tb.Fatalf("%s: %v", q, err)
		}
	}
	// A row is about 220 bytes: 4 MD5s as hex (half compressible).
	const chunk = 40000
	rows := mb * 1000 * 1000 / 220
	for from := 1; from <= rows; from += chunk {
		q := fmt.Sprintf("INSERT INTO backup_e2e.big SELECT seq, CONCAT(MD5(seq), MD5(seq+1), MD5(seq+2), MD5(seq+3), MD5(seq+4), MD5(seq+5)) FROM backup_e2e.seq_%d_to_%d", from, min(from+chunk-1, rows))
		if _, err := db.Exec(q); err != nil {
			tb.Fatalf("load: %v", err)
		}
	}
	var dataMB float64
	if _, err := db.Exec("ANALYZE TABLE backup_e2e.big"); err != nil {
		tb.Fatal(err)
	}
	if err := db.QueryRow("SELECT (data_length+index_length)/1048576 FROM information_schema.tables WHERE table_schema='backup_e2e' AND table_name='big'").Scan(&dataMB); err != nil {
		tb.Fatal(err)
	}
	tb.Logf("loaded %d rows (%.0f MiB in InnoDB) through %s in %s", rows, dataMB, node, time.Since(start).Round(time.Millisecond))
	return dataMB
}

func nodeByAddress(tb testing.TB, sb *sandbox.Sandbox, addr string) sandbox.Node {
	tb.Helper()
	for _, n := range sb.Nodes() {
		if n.Address() == addr {
			return n
		}
	}
	tb.Fatalf("no sandbox node at %s", addr)
	return sandbox.Node{}
}

// TestBackup drives issue 5's acceptance on one sandbox: scheduled and
// verified backups of both methods, retention, a corrupted backup caught
// by verification, and a node stopped mid-backup. Each part runs its own
// appliance, so schedules never meet.
func TestBackup(t *testing.T) {
	waitsSideBySide(t) // its own sandbox; most of it is a schedule, retries and restores with loose bounds
	sb := startGalera(t, "backupdrill", ninesBin, backupBasePort)
	db, err := sb.DB(sb.Nodes()[0].Name)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	for _, q := range []string{
		"CREATE DATABASE IF NOT EXISTS backup_e2e",
		"CREATE TABLE IF NOT EXISTS backup_e2e.small (id INT PRIMARY KEY, v VARCHAR(20))",
		"REPLACE INTO backup_e2e.small VALUES (1, 'one'), (2, 'two'), (3, 'three')",
	} {
		if _, err := db.Exec(q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	t.Run("ScheduledVerified", func(t *testing.T) { testScheduledVerified(t, sb) })
	t.Run("Retention", func(t *testing.T) { testRetention(t, sb) })
	t.Run("CorruptionDetected", func(t *testing.T) { testCorruption(t, sb, db) })
	// Last: it kills a node.
	t.Run("NodeStoppedMidBackup", func(t *testing.T) { testNodeStopped(t, sb) })
}

// testScheduledVerified: a schedule of every 20 seconds produces a
// mariadb-backup and a dump, both verified by a restore; list shows them
// with sizes, positions and restore times. (A cron minute would cost up
// to a minute of waiting; the schedule's parser is the same for both.)
func testScheduledVerified(t *testing.T, sb *sandbox.Sandbox) {
	a := startBackupAppliance(t, ninesBin, sb, `      - {method: mariabackup, schedule: "@every 20s", keep: 3, verify: true, dir: DIR}
      - {method: dump, schedule: "@every 20s", keep: 3, verify: true, dir: DIR}
`)
	// The first run comes 20 s after the start; the two jobs then run
	// one after the other (one job per cluster).
	ok := map[string]backupJob{}
	waitFor(t, a.started, 4*time.Minute, "a succeeded scheduled job of each method", func() bool {
		for _, j := range a.jobs(t) {
			if j.Runbook == "backup" && j.State == "succeeded" && j.Trigger.Source == "schedule" {
				if _, seen := ok[j.Params["method"]]; !seen {
					ok[j.Params["method"]] = j
				}
			}
		}
		return len(ok) == 2
	})
	for method, j := range ok {
		_, backupTook, _, _ := j.step("backup:")
		_, verifyTook, vout, _ := j.step("verify")
		var v struct {
			Result struct {
				RestoreSeconds float64 `json:"restore_seconds"`
			}
		}
		_ = json.Unmarshal(vout, &v)
		t.Logf("measured: scheduled %s job %s on %s: backup %s, verify %s (restore %.2f s), whole job %s, ended %s after it was created",
			method, j.ID, j.Target, backupTook.Round(time.Millisecond), verifyTook.Round(time.Millisecond), v.Result.RestoreSeconds,
			j.Ended.Sub(j.Started).Round(time.Millisecond), j.Ended.Sub(j.Created).Round(time.Millisecond))
		if !strings.Contains(strings.Join(stepNamesOf(j), " "), "verify") {
			t.Errorf("%s job has no verify step: %v", method, stepNamesOf(j))
		}
	}

	list := a.backups(t)
	seen := map[string]backupEntry{}
	for _, b := range list {
		if b.Verification != nil && b.Verification.OK && b.State == "complete" {
			seen[b.Method] = b
		}
	}
	for _, method := range []string{"mariabackup", "dump"} {
		b, found := seen[method]
		if !found {
			t.Fatalf("no verified complete %s backup listed: %+v", method, list)
		}
		if b.Size <= 0 || b.Verification.RestoreSeconds <= 0 || b.Source == "" {
			t.Errorf("%s backup %s: size %d, restore %.2f s, source %q", method, b.ID, b.Size, b.Verification.RestoreSeconds, b.Source)
		}
		t.Logf("measured: %s backup %s from %s: %d bytes, took %.2f s, restore-verified in %.2f s", method, b.ID, b.Source, b.Size, b.Duration, b.Verification.RestoreSeconds)
	}
	if mb := seen["mariabackup"]; mb.Galera == nil || mb.Galera.UUID == "" || mb.Galera.Seqno <= 0 {
		t.Errorf("mariabackup backup carries no Galera position: %+v", mb.Galera)
	}
	if seen["dump"].GTID == "" {
		t.Errorf("dump carries no GTID position")
	}

	out, err := a.cli("backup", "list", "--cluster", sb.ClusterName())
	if err != nil {
		t.Fatalf("nines backup list: %v\n%s", err, out)
	}
	t.Logf("nines backup list:\n%s", out)
	for _, want := range []string{"ID", "POSITION", "RESTORE", seen["mariabackup"].ID, seen["dump"].ID, seen["mariabackup"].Galera.UUID + ":", "gtid "} {
		if !strings.Contains(out, want) {
			t.Errorf("list lacks %q", want)
		}
	}
	if !strings.Contains(out, "ok") {
		t.Errorf("list shows no verified backup")
	}
	out, err = a.cli("backup", "restore-plan", "--cluster", sb.ClusterName(), "--id", seen["mariabackup"].ID)
	if err != nil || !strings.Contains(out, fmt.Sprintf("seqno:   %d", seen["mariabackup"].Galera.Seqno)) || !strings.Contains(out, "mariadb-backup --prepare") {
		t.Errorf("restore-plan: %v\n%s", err, out)
	}

	// The series the alerts read.
	waitFor(t, time.Now(), 10*time.Second, "nines_backup_* series of both methods", func() bool {
		return len(a.query(`nines_backup_verified == 1`)) == 2 && len(a.query(`nines_backup_last_success_timestamp_seconds`)) == 2
	})
	for _, s := range a.query(`nines_backup_expected_interval_seconds`) {
		if s.Value != 20 {
			t.Errorf("expected interval %v for %v, want 20 (@every 20s)", s.Value, s.Labels)
		}
	}
	for _, s := range a.query(`time() - nines_backup_last_success_timestamp_seconds`) {
		t.Logf("measured: %s: last good backup %.0f s ago", s.Labels["method"], s.Value)
		if s.Value > 300 {
			t.Errorf("last success %v s ago for %v", s.Value, s.Labels)
		}
	}
	for _, name := range []string{"NinesBackupStale", "NinesBackupFailed", "NinesBackupVerificationFailed"} {
		if a.firing(name, "") {
			t.Errorf("%s fires on healthy backups", name)
		}
	}
}

func stepNamesOf(j backupJob) []string {
	var out []string
	for _, s := range j.Steps {
		out = append(out, s.Name+":"+s.State)
	}
	return out
}

// testRetention: keep 2 leaves exactly the 2 newest after 4 runs.
func testRetention(t *testing.T, sb *sandbox.Sandbox) {
	a := startBackupAppliance(t, ninesBin, sb, `      - {method: dump, schedule: "0 3 1 1 *", keep: 2, dir: DIR}
`)
	var ids []string
	start := time.Now()
	for i := 0; i < 4; i++ {
		j := a.startJob(t, map[string]any{"kind": "backup", "cluster": sb.ClusterName(), "method": "dump"})
		j = a.waitJob(t, j.ID, 2*time.Minute)
		if j.State != "succeeded" {
			t.Fatalf("run %d: job %s %s: %s (%v)", i+1, j.ID, j.State, j.Reason, stepNamesOf(j))
		}
		_, _, out, _ := j.step("backup:")
		var m struct{ ID string }
		_ = json.Unmarshal(out, &m)
		ids = append(ids, m.ID)
		_, _, rout, _ := j.step("retention")
		t.Logf("run %d: job %s made %s; retention: %s", i+1, j.ID, m.ID, rout)
	}
	t.Logf("measured: 4 dump jobs with retention in %s", time.Since(start).Round(time.Millisecond))
	var got []string
	for _, b := range a.backups(t) {
		if b.Method == "dump" {
			got = append(got, b.ID)
		}
	}
	want := []string{ids[3], ids[2]}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("after 4 runs with keep 2: %v, want the 2 newest %v", got, want)
	}
	entries, _ := os.ReadDir(a.dir)
	var onDisk []string
	for _, e := range entries {
		onDisk = append(onDisk, e.Name())
	}
	if len(onDisk) != 2 {
		t.Errorf("backup dir holds %v, want 2 backups", onDisk)
	}
}

// testCorruption: a corrupted backup file is detected by verification,
// the job fails naming the check, and NinesBackupVerificationFailed fires.
func testCorruption(t *testing.T, sb *sandbox.Sandbox, db *sql.DB) {
	a := startBackupAppliance(t, ninesBin, sb, `      - {method: mariabackup, schedule: "0 3 1 1 *", keep: 3, dir: DIR}
`)
	j := a.startJob(t, map[string]any{"kind": "backup", "cluster": sb.ClusterName()})
	j = a.waitJob(t, j.ID, 2*time.Minute)
	if j.State != "succeeded" {
		t.Fatalf("backup job %s %s: %s", j.ID, j.State, j.Reason)
	}
	_, _, out, _ := j.step("backup:")
	var m struct {
		ID    string
		Files []struct{ Name string }
	}
	if err := json.Unmarshal(out, &m); err != nil || len(m.Files) == 0 {
		t.Fatalf("backup step output %s: %v", out, err)
	}
	// Flip bytes in the middle of the stream, as a failing disk would.
	file := filepath.Join(a.dir, m.ID, m.Files[0].Name)
	f, err := os.OpenFile(file, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	st, _ := f.Stat()
	if _, err := f.WriteAt([]byte("corrupted by the e2e test"), st.Size()/2); err != nil {
		t.Fatal(err)
	}
	f.Close()

	cliOut, err := a.cli("backup", "verify", "--cluster", sb.ClusterName(), "--id", m.ID, "--wait")
	t.Logf("nines backup verify --wait:\n%s", cliOut)
	if err == nil || !strings.Contains(cliOut, "failed") || !strings.Contains(cliOut, "checksum") {
		t.Errorf("verify of a corrupted backup: %v", err)
	}
	var vj backupJob
	for _, j := range a.jobs(t) {
		if j.Runbook == "backup-verify" {
			vj = j
			break
		}
	}
	if vj.State != "failed" || !strings.Contains(vj.Reason, "check checksum:"+m.Files[0].Name+" failed") {
		t.Errorf("verify job %s %s: %s", vj.ID, vj.State, vj.Reason)
	}
	// Measured from the job's end as the job log says (the CLI only polls
	// every second).
	took := waitFor(t, vj.Ended, 30*time.Second, "NinesBackupVerificationFailed firing", func() bool { return a.firing("NinesBackupVerificationFailed", "mariabackup") })
	t.Logf("measured: corruption found by verification (job %s) in %s; NinesBackupVerificationFailed firing %s after the job ended",
		vj.ID, vj.Ended.Sub(vj.Started).Round(time.Millisecond), took.Round(time.Millisecond))
	for _, b := range a.backups(t) {
		if b.ID == m.ID && (b.Verification == nil || b.Verification.OK) {
			t.Errorf("list shows the corrupted backup as %+v", b.Verification)
		}
	}
	if len(a.query(`nines_backup_last_success_timestamp_seconds{method="mariabackup"}`)) != 0 {
		t.Errorf("the corrupted backup still counts as the last success")
	}
}

// testNodeStopped: the node being backed up is killed mid-backup; the job
// fails saying why, and the next run succeeds on another node.
func testNodeStopped(t *testing.T, sb *sandbox.Sandbox) {
	loadData(t, sb, sb.Nodes()[0].Name, 80)
	a := startBackupAppliance(t, ninesBin, sb, `      - {method: mariabackup, schedule: "0 3 1 1 *", keep: 3, dir: DIR}
`)
	j := a.startJob(t, map[string]any{"kind": "backup", "cluster": sb.ClusterName(), "method": "mariabackup"})
	var running backupJob
	waitFor(t, time.Now(), 30*time.Second, "the backup step to run", func() bool {
		running = a.job(t, j.ID)
		name, _, _, ok := running.step("backup:")
		return ok && name != "" && running.Steps[len(running.Steps)-1].State == "running" || running.done()
	})
	if running.done() {
		t.Fatalf("the backup ended before the node could be stopped (%s): load more data", running.State)
	}
	time.Sleep(time.Second) // well into the copy
	victim := nodeByAddress(t, sb, running.Target)
	pid, err := sb.Pid(victim.Name)
	if err != nil || pid <= 0 {
		t.Fatalf("pid of %s: %d %v", victim.Name, pid, err)
	}
	killed := time.Now()
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	failed := a.waitJob(t, j.ID, 2*time.Minute)
	t.Logf("measured: job %s on %s %s %s after kill -9 of its node: %s", failed.ID, running.Target, failed.State, time.Since(killed).Round(time.Millisecond), failed.Reason)
	if failed.State != "failed" || !strings.Contains(failed.Reason, "mariabackup backup on "+running.Target) {
		t.Errorf("job %s %s: %q, want failed naming the backup on %s", failed.ID, failed.State, failed.Reason, running.Target)
	}
	// The next run, once nines has seen the node down, goes elsewhere.
	// The wait starts now: mariadb-backup may retry its queries for 15 s
	// and more before the job fails, and nines saw the node down long
	// before.
	waitFor(t, time.Now(), 15*time.Second, "nines to see the node down", func() bool {
		return len(a.query(fmt.Sprintf(`mysql_up{instance=%q} == 0`, running.Target))) == 1
	})
	next := a.startJob(t, map[string]any{"kind": "backup", "cluster": sb.ClusterName(), "method": "mariabackup"})
	next = a.waitJob(t, next.ID, 3*time.Minute)
	_, took, _, _ := next.step("backup:")
	t.Logf("measured: next job %s on %s %s, backup %s", next.ID, next.Target, next.State, took.Round(time.Millisecond))
	if next.State != "succeeded" || next.Target == running.Target || next.Target == "" {
		t.Errorf("next job %s on %s: %s (%s)", next.ID, next.Target, next.State, next.Reason)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	if err := sb.StartNode(ctx, victim.Name); err != nil {
		t.Errorf("restart %s: %v", victim.Name, err)
	}
}
