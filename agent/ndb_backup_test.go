package agent

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// ndbBackupAgent serves a data node 3 agent whose backup_data_dir is a
// fresh directory, and returns the client and that directory.
func ndbBackupAgent(t *testing.T) (*Client, string, string) {
	t.Helper()
	dir := writeAgentFiles(t, "")
	bdd := filepath.Join(dir, "ndb_data")
	if err := os.MkdirAll(filepath.Join(dir, "srv"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(bdd, 0o755); err != nil {
		t.Fatal(err)
	}
	body := `name: ndb3
token_file: agent-token
server:
  ndb_data_node:
    node_id: 3
    command: [sh, -c, "sleep 1000"]
    pid_file: srv/ndb_3.pid
    log: srv/ndbd-3.out
    backup_data_dir: ndb_data
`
	cfg, err := Load(writeAgentConfig(t, dir, body))
	if err != nil {
		t.Fatal(err)
	}
	_, c, base := serve(t, cfg, Options{})
	return c, bdd, base
}

// writeNdbBackup writes node's files of backup id as a data node does:
// BACKUP/BACKUP-<id>/ with the control, data and log files.
func writeNdbBackup(t *testing.T, bdd string, id, node int, files ...string) string {
	t.Helper()
	d := filepath.Join(bdd, "BACKUP", "BACKUP-"+strconv.Itoa(id))
	if err := os.MkdirAll(d, 0o755); err != nil {
		t.Fatal(err)
	}
	if files == nil {
		ctl, data, log := ndbBackupFiles(id, node)
		files = []string{ctl, data, log}
	}
	for _, f := range files {
		if err := os.WriteFile(filepath.Join(d, f), []byte("NDBBCKUP "+f), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return d
}

func TestNdbBackupList(t *testing.T) {
	c, bdd, _ := ndbBackupAgent(t)
	ctx := context.Background()
	got, err := c.Backups(ctx, "")
	if err != nil || len(got) != 0 {
		t.Fatalf("list before any backup: %v %v", got, err)
	}
	writeNdbBackup(t, bdd, 1, 3)
	old := time.Now().Add(-time.Hour)
	d1 := filepath.Join(bdd, "BACKUP", "BACKUP-1")
	entries, _ := os.ReadDir(d1)
	for _, e := range entries {
		os.Chtimes(filepath.Join(d1, e.Name()), old, old)
	}
	// Backup 2 on this node lacks its log file: incomplete here. The
	// data file spelt .Data (as ndb_print_backup_file has it) counts.
	writeNdbBackup(t, bdd, 2, 3, "BACKUP-2.3.ctl", "BACKUP-2-0.3.Data")
	// Not NDB's: ignored.
	os.MkdirAll(filepath.Join(bdd, "BACKUP", "copy-of-1"), 0o755)
	os.WriteFile(filepath.Join(bdd, "BACKUP", "BACKUP-1", "notes.txt"), []byte("x"), 0o644)

	got, err = c.Backups(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got[0].ID != "2" || got[1].ID != "1" {
		t.Fatalf("listing %+v, want backups 2 then 1", got)
	}
	b1 := got[1]
	if b1.Method != MethodNdb || b1.State != BackupComplete || b1.NDB == nil || b1.NDB.BackupID != 1 || b1.NDB.NodeID != 3 || len(b1.NDB.Missing) != 0 {
		t.Fatalf("backup 1: %+v %+v", b1, b1.NDB)
	}
	var names []string
	var size int64
	for _, f := range b1.Files {
		names = append(names, f.Name)
		data, _ := os.ReadFile(filepath.Join(d1, f.Name))
		sum := sha256.Sum256(data)
		if f.Size != int64(len(data)) || f.SHA256 != hex.EncodeToString(sum[:]) {
			t.Errorf("%s: size %d sha256 %s, want %d %x", f.Name, f.Size, f.SHA256, len(data), sum)
		}
		size += f.Size
	}
	if strings.Join(names, " ") != "BACKUP-1-0.3.data BACKUP-1.3.ctl BACKUP-1.3.log" || b1.SizeBytes != size {
		t.Errorf("backup 1 files %v (size %d), want NDB's three only", names, b1.SizeBytes)
	}
	if !b1.StartedAt.Before(got[0].StartedAt) {
		t.Errorf("backup 1 started %v, not before backup 2 %v", b1.StartedAt, got[0].StartedAt)
	}
	b2 := got[0]
	if b2.State != BackupIncomplete || strings.Join(b2.NDB.Missing, " ") != "BACKUP-2.3.log" {
		t.Errorf("backup 2: %s missing %v, want incomplete missing its log", b2.State, b2.NDB.Missing)
	}
	// A changed file gets a new checksum (the cache keys on size and
	// modification time).
	os.WriteFile(filepath.Join(d1, "BACKUP-1.3.log"), []byte("changed, longer"), 0o644)
	got, _ = c.Backups(ctx, "")
	for _, f := range got[len(got)-1].Files {
		if f.Name == "BACKUP-1.3.log" {
			sum := sha256.Sum256([]byte("changed, longer"))
			if f.SHA256 != hex.EncodeToString(sum[:]) {
				t.Errorf("changed file keeps its old checksum")
			}
		}
	}
	if _, err := c.Backups(ctx, "/var/backups/nines"); !hasStatus(err, http.StatusBadRequest) {
		t.Errorf("list with another dir: %v, want 400", err)
	}
	if _, err := c.Backups(ctx, bdd); err != nil {
		t.Errorf("list naming backup_data_dir itself: %v", err)
	}
}

func TestNdbBackupDelete(t *testing.T) {
	c, bdd, base := ndbBackupAgent(t)
	ctx := context.Background()
	d1 := writeNdbBackup(t, bdd, 1, 3)
	d2 := writeNdbBackup(t, bdd, 2, 3)
	if code, _ := call(t, "DELETE", base+"/v1/backups/1", "", ""); code != http.StatusUnauthorized {
		t.Fatalf("delete without a token: %d, want 401", code)
	}
	if err := c.DeleteBackup(ctx, "", "1"); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(d1); !os.IsNotExist(err) {
		t.Fatalf("backup 1 still there: %v", err)
	}
	if err := c.DeleteBackup(ctx, "", "1"); !hasStatus(err, http.StatusNotFound) {
		t.Errorf("delete again: %v, want 404", err)
	}
	for _, id := range []string{"01", "-1", "0", "BACKUP-x", "2a", "1.5"} {
		if err := c.DeleteBackup(ctx, "", id); !hasStatus(err, http.StatusBadRequest) {
			t.Errorf("delete %q: %v, want 400", id, err)
		}
	}
	// A directory holding something NDB did not write is left alone.
	os.WriteFile(filepath.Join(d2, "operator-notes.txt"), []byte("keep"), 0o644)
	if err := c.DeleteBackup(ctx, "", "2"); !hasStatus(err, http.StatusForbidden) {
		t.Errorf("delete of a dir with a foreign file: %v, want 403", err)
	}
	if _, err := os.Stat(filepath.Join(d2, "BACKUP-2.3.ctl")); err != nil {
		t.Errorf("refused delete removed files: %v", err)
	}
	got, _ := c.Backups(ctx, "")
	if len(got) != 1 || got[0].ID != "2" {
		t.Errorf("listing after delete: %+v", got)
	}
}

// An agent without backup_data_dir says what to configure.
func TestNdbBackupNeedsBackupDataDir(t *testing.T) {
	_, c, _, _ := serveNdb(t, fakeDataNode)
	_, err := c.Backups(context.Background(), "")
	if !hasStatus(err, http.StatusConflict) || !strings.Contains(err.Error(), "backup_data_dir") {
		t.Fatalf("list without backup_data_dir: %v, want 409 naming backup_data_dir", err)
	}
}

func TestNdbBackupDataDirMustExist(t *testing.T) {
	dir := writeAgentFiles(t, "")
	os.MkdirAll(filepath.Join(dir, "srv"), 0o755)
	body := `name: ndb3
token_file: agent-token
server:
  ndb_data_node:
    node_id: 3
    command: [sh, -c, "sleep 1000"]
    pid_file: srv/ndb_3.pid
    log: srv/ndbd-3.out
    backup_data_dir: missing
`
	_, err := Load(writeAgentConfig(t, dir, body))
	if err == nil || !strings.Contains(err.Error(), "server.ndb_data_node.backup_data_dir") {
		t.Fatalf("missing backup_data_dir accepted: %v", err)
	}
}
