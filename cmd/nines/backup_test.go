package main

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/nines-project/nines/appliance/apiclient"
	"github.com/nines-project/nines/remediator/backup"
)

// TestWriteBackupListNDB: a native backup is one row, its files follow
// per data node with sizes and checksums, and a files-only verification
// says it did not restore.
func TestWriteBackupListNDB(t *testing.T) {
	sum := strings.Repeat("ab", 32)
	files := func(node string) []backup.File {
		return []backup.File{{Name: "BACKUP-3." + node + ".ctl", Size: 120, SHA256: sum}, {Name: "BACKUP-3-0." + node + ".data", Size: 4096, SHA256: sum},
			{Name: "BACKUP-3." + node + ".log", Size: 60, SHA256: sum}}
	}
	e := backup.Entry{Info: backup.Info{Manifest: backup.Manifest{ID: "3", Method: backup.MethodNDB, StartedAt: time.Now(), SizeBytes: 8552,
		NDB: &backup.NDBBackup{BackupID: 3, Nodes: []backup.NDBNodeFiles{{NodeID: 1, Holder: "data-node-1", Files: files("1")}, {NodeID: 2, Holder: "data-node-2", Files: files("2")}}}},
		State: backup.StateComplete}, Source: "ndb_mgmd 127.0.0.1:1186",
		Verification: &backup.Verified{OK: true, Scope: backup.ScopeFiles, Note: "only the files were checked: ndb_restore was not run"}}
	var out bytes.Buffer
	if err := writeBackupList(&out, &apiclient.Backups{Backups: []apiclient.Backup{{Cluster: "tel", Entry: e}}}, true); err != nil {
		t.Fatal(err)
	}
	got := out.String()
	for _, want := range []string{"ndb_mgmd 127.0.0.1:1186", "files ok (not restored)", "native backup 3 of tel (complete): 2 data node(s)",
		"  data node 2 (data-node-2):\n", "    BACKUP-3-0.2.data  4.0 KiB  sha256:" + sum, "verification: only the files were checked"} {
		if !strings.Contains(got, want) {
			t.Errorf("output lacks %q:\n%s", want, got)
		}
	}
}

// TestWriteBackupListNDBAborted: a native backup its job aborted is
// listed as aborted, with its complete-looking files, never as verified.
func TestWriteBackupListNDBAborted(t *testing.T) {
	sum := strings.Repeat("cd", 32)
	files := []backup.File{{Name: "BACKUP-4.1.ctl", Size: 120, SHA256: sum}, {Name: "BACKUP-4-0.1.data", Size: 4096, SHA256: sum}, {Name: "BACKUP-4.1.log", Size: 60, SHA256: sum}}
	e := backup.Entry{Info: backup.Info{Manifest: backup.Manifest{ID: "4", Method: backup.MethodNDB, StartedAt: time.Now(), SizeBytes: 4276,
		NDB: &backup.NDBBackup{BackupID: 4, Nodes: []backup.NDBNodeFiles{{NodeID: 1, Holder: "data-node-1", Files: files}}}},
		State: backup.StateAborted, Error: "aborted by job J1: backup 4 still running when the job ended"}, Source: "data-node-1"}
	var out bytes.Buffer
	if err := writeBackupList(&out, &apiclient.Backups{Backups: []apiclient.Backup{{Cluster: "tel", Entry: e}}}, true); err != nil {
		t.Fatal(err)
	}
	got := out.String()
	lines := strings.Split(got, "\n")
	if len(lines) < 2 || !strings.Contains(lines[1], " aborted") || strings.Contains(got, "files ok") {
		t.Errorf("aborted backup's row:\n%s", got)
	}
	if !strings.Contains(got, "native backup 4 of tel (aborted)") {
		t.Errorf("output lacks the aborted state of the files:\n%s", got)
	}
}
