//go:build cluster

package e2e

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestNDBNativeBackupScheduled is the acceptance: a native backup
// scheduled (every 10 s: a cron minute would cost up to a minute of
// waiting; both go through the same parser and scheduler) runs START BACKUP through the sandbox's
// management server, each data node writes its three files, and `nines
// backup list` lists them per data node, with a verification that says
// it checked only the files.
func TestNDBNativeBackupScheduled(t *testing.T) {
	nd := startNDBSandbox(t, 2, 1) // one node group, one SQL node
	addr := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	b := clusterConfig(nd.Sandbox, addr, "test", true) // with the sandbox's ndb: block
	b.WriteString("    remediation: {mode: \"off\"}\n    backups: [{method: ndb, schedule: \"@every 10s\", keep: 3, verify: true}]\n")
	cfg := filepath.Join(t.TempDir(), "nines.yaml")
	if err := os.WriteFile(cfg, []byte(b.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	a := &backupAppliance{appliance: startApplianceOn(t, ninesBin, addr, cfg, nd.TokenPath()), sb: nd.Sandbox, cfg: cfg}

	// The first scheduled run comes 10 s after the start.
	var job backupJob
	waitFor(t, a.started, 150*time.Second, "a scheduled native backup job that succeeded", func() bool {
		for _, j := range a.jobs(t) {
			if j.Runbook == "backup" && j.Trigger.Source == "schedule" && j.done() {
				job = j
				return true
			}
		}
		return false
	})
	job = a.job(t, job.ID)
	if job.State != "succeeded" {
		t.Fatalf("scheduled native backup %s: %s (%s), steps %v", job.ID, job.State, job.Reason, stepNamesOf(job))
	}
	if got := strings.Join(stepNamesOf(job), " "); got != "start-backup:done collect-files:done verify:done verify-scope:done retention:done" {
		t.Errorf("steps %s", got)
	}
	_, _, out, _ := job.step("start-backup")
	var started struct {
		BackupID   int `json:"backup_id"`
		Management string
	}
	if err := json.Unmarshal(out, &started); err != nil || started.BackupID < 1 || started.Management != nd.MgmAddress() {
		t.Fatalf("start-backup output %s: %v", out, err)
	}
	id := started.BackupID

	// Each data node's directory holds the files NDB writes.
	for _, d := range nd.Layout().DataNodes {
		for _, f := range []string{"BACKUP-%d.%d.ctl", "BACKUP-%d-0.%d.data", "BACKUP-%d.%d.log"} {
			p := filepath.Join(d.Dir, "BACKUP", fmt.Sprintf("BACKUP-%d", id), fmt.Sprintf(f, id, d.NodeID))
			if fi, err := os.Stat(p); err != nil || fi.Size() == 0 {
				t.Errorf("data node %d: %s: %v", d.NodeID, p, err)
			}
		}
	}

	list, err := a.cli("backup", "list", "--cluster", nd.ClusterName())
	if err != nil {
		t.Fatalf("nines backup list: %v\n%s", err, list)
	}
	t.Logf("nines backup list:\n%s", list)
	want := []string{fmt.Sprintf("native backup %d of %s (complete): 2 data node(s)", id, nd.ClusterName()), "files ok (not restored)",
		"ndb_mgmd " + nd.MgmAddress(), "verification: only the files were checked"}
	for _, node := range []int{1, 2} {
		want = append(want, fmt.Sprintf("data node %d (data-node-%d):", node, node))
		for _, f := range []string{"BACKUP-%d.%d.ctl", "BACKUP-%d-0.%d.data", "BACKUP-%d.%d.log"} {
			want = append(want, fmt.Sprintf(f, id, node)+"  ")
		}
	}
	for _, w := range want {
		if !strings.Contains(list, w) {
			t.Errorf("nines backup list lacks %q", w)
		}
	}
	// The series the backup alerts read.
	waitFor(t, time.Now(), 60*time.Second, "nines_backup_last_success_timestamp_seconds and nines_backup_verified of the native backups", func() bool {
		return len(a.query(fmt.Sprintf(`nines_backup_last_success_timestamp_seconds{cluster=%q,method="ndb"}`, nd.ClusterName()))) == 1 &&
			len(a.query(fmt.Sprintf(`nines_backup_verified{cluster=%q,method="ndb"} == 1`, nd.ClusterName()))) == 1
	})
	if a.firing("NinesBackupFailed", "") {
		t.Errorf("NinesBackupFailed fires after a good native backup")
	}
}
