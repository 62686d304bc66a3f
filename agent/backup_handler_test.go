package agent

import (
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"os"
	"os/user"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestCheckBackupID(t *testing.T) {
	for _, tt := range []struct {
		id string
		ok bool
	}{
		{"2026-11-26T03.00Z_db1-full", true},
		{"a", true},
		{strings.Repeat("x", 128), true},
		{"", false},
		{strings.Repeat("x", 129), false},
		{".", false},
		{"..", false},
		{".verify-x", false},
		{"a/b", false},
		{`a\b`, false},
		{"a b", false},
		{"é", false},
	} {
		if err := checkBackupID(tt.id); (err == nil) != tt.ok {
			t.Errorf("checkBackupID(%q) = %v, want ok %v", tt.id, err, tt.ok)
		}
	}
}

// TestBackupRequestsRefused checks what the agent decides before it
// touches the server, which here is not even installed.
func TestBackupRequestsRefused(t *testing.T) {
	dir := t.TempDir()
	_, _, base := serveStopped(t, "backup_dirs: ["+dir+"]\n")
	auth := "Bearer " + testToken
	for _, tt := range []struct {
		method, path, body string
		want               int
		msg                string
	}{
		{"POST", "/v1/backups", `{"method":"xtrabackup","dir":"` + dir + `","id":"a"}`, 400, `method \"xtrabackup\"`},
		{"POST", "/v1/backups", `{"method":"dump","dir":"relative/dir","id":"a"}`, 400, "not absolute"},
		{"POST", "/v1/backups", `{"method":"dump","dir":"/","id":"a"}`, 403, `dir / is not inside an allowed backup directory`},
		{"POST", "/v1/backups", `{"method":"dump","id":"a"}`, 400, "dir is required"},
		{"POST", "/v1/backups", `{"method":"dump","dir":"` + dir + `","id":"a/../b"}`, 400, "only A-Z"},
		{"POST", "/v1/backups", `{"method":"dump","dir":"` + dir + `","id":"a","desync":true}`, 400, "desync applies to mariabackup"},
		{"POST", "/v1/backups", `{"method":"dump","dir":"` + dir + `","id":"a","compress":"zstd"}`, 400, "unknown field"},
		{"POST", "/v1/backups", `{"method":"mariabackup","dir":"` + dir + `","id":"a","desync":true}`, 409, "server is not running"},
		{"GET", "/v1/backups", ``, 400, "dir is required"},
		{"GET", "/v1/backups?dir=" + dir + "/none", ``, 200, `[]`},
		{"DELETE", "/v1/backups/a?dir=" + dir, ``, 404, "no backup"},
		{"DELETE", "/v1/backups/.hidden?dir=" + dir, ``, 400, "must not start with a dot"},
		{"POST", "/v1/backups/a/verify", `{"dir":"` + dir + `"}`, 404, "no backup"},
		{"POST", "/v1/backups/a/verify", `{"dir":"` + dir + `","port":70000}`, 400, "port 70000"},
	} {
		code, body := call(t, tt.method, base+tt.path, auth, tt.body)
		if code != tt.want || !strings.Contains(body, tt.msg) {
			t.Errorf("%s %s %s: %d %s, want %d with %q", tt.method, tt.path, tt.body, code, body, tt.want, tt.msg)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "a")); !os.IsNotExist(err) {
		t.Errorf("a refused backup left %s/a: %v", dir, err)
	}
}

// TestBackupListingAndVerifyRefusals lays out backup directories by hand:
// complete ones, an interrupted one, a corrupt manifest.
func TestBackupListingAndVerifyRefusals(t *testing.T) {
	dir := t.TempDir()
	a, c, _ := serveStopped(t, "backup_dirs: ["+dir+"]\n")
	ctx := t.Context()
	at := time.Date(2020, 11, 26, 3, 0, 0, 0, time.UTC)
	for i, id := range []string{"old", "new"} {
		m := Manifest{Version: 1, ID: id, Method: MethodDump, StartedAt: at.Add(time.Duration(i) * time.Hour),
			Files: []BackupFile{{Name: DumpFile, Size: 3, SHA256: "00"}}}
		mkBackupDir(t, dir, id, map[string]string{DumpFile: "abc"})
		if err := writeManifest(filepath.Join(dir, id), m); err != nil {
			t.Fatal(err)
		}
	}
	mkBackupDir(t, dir, "cut", map[string]string{MariabackupFile: "partial"})
	mkBackupDir(t, dir, "garbled", map[string]string{ManifestFile: "{not json"})
	mkBackupDir(t, dir, ".verify-old", map[string]string{"my.cnf": ""})
	if err := os.WriteFile(filepath.Join(dir, "stray-file"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	list, err := c.Backups(ctx, dir)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, b := range list {
		got = append(got, b.ID+":"+b.State)
	}
	// cut and garbled carry their directories' times: now, newer than
	// the manifests' 2020-11-26.
	if strings.Join(got, " ") != "garbled:incomplete cut:incomplete new:complete old:complete" {
		t.Errorf("list: %v", got)
	}
	if list[0].Error == "" || list[1].Method != MethodMariabackup || list[1].SizeBytes != 7 || list[1].Running {
		t.Errorf("incomplete entries: %+v", list[:2])
	}
	b, _ := json.Marshal(list[2])
	if !strings.Contains(string(b), `"state":"complete"`) || !strings.Contains(string(b), `"id":"new"`) {
		t.Errorf("a listed manifest is not flat JSON: %s", b)
	}

	// The verification compares checksums first and restores nothing
	// when one differs.
	v, err := c.VerifyBackup(ctx, "new", VerifyRequest{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	if v.OK || len(v.Checks) != 1 || v.Checks[0].Name != "checksum:dump.sql.gz" ||
		!strings.Contains(v.Error, "the manifest says 00") {
		t.Errorf("verify with a wrong checksum: %+v", v)
	}
	if _, err := c.VerifyBackup(ctx, "cut", VerifyRequest{Dir: dir}); !IsConflict(err) || !strings.Contains(err.Error(), "incomplete") {
		t.Errorf("verify an incomplete backup: %v", err)
	}
	if v, err := c.VerifyBackup(ctx, "garbled", VerifyRequest{Dir: dir}); err != nil || v.OK || v.Checks[0].Name != "manifest" {
		t.Errorf("verify a garbled manifest: %+v, %v", v, err)
	}

	// Busy backups are neither deleted nor verified.
	a.bk.set(&a.bk.backup, &job{dir: dir, id: "cut"})
	if err := c.DeleteBackup(ctx, dir, "cut"); !IsConflict(err) {
		t.Errorf("delete a running backup: %v", err)
	}
	if list, _ := c.Backups(ctx, dir); !list[1].Running {
		t.Errorf("the running backup is not marked: %+v", list[1])
	}
	a.bk.set(&a.bk.backup, nil)
	a.bk.set(&a.bk.verify, &job{dir: dir, id: "old", since: time.Now()})
	if _, err := c.VerifyBackup(ctx, "new", VerifyRequest{Dir: dir}); !IsConflict(err) || !strings.Contains(err.Error(), `verification of "old" is running`) {
		t.Errorf("a second verification: %v", err)
	}
	if err := c.DeleteBackup(ctx, dir, "old"); !IsConflict(err) {
		t.Errorf("delete a backup being verified: %v", err)
	}
	m, err := c.Metrics(ctx)
	if err != nil || !strings.Contains(m, "\nnines_agent_verify_running 1\n") || !strings.Contains(m, "\nnines_agent_backup_running 0\n") {
		t.Errorf("metrics while verifying: %v", err)
	}
	a.bk.set(&a.bk.verify, nil)

	// Deleting removes what a crashed verification left too.
	if err := c.DeleteBackup(ctx, dir, "old"); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{"old", ".verify-old"} {
		if _, err := os.Stat(filepath.Join(dir, p)); !os.IsNotExist(err) {
			t.Errorf("%s after delete: %v", p, err)
		}
	}
	var e *Error
	if err := c.DeleteBackup(ctx, dir, "old"); !errors.As(err, &e) || e.Status != http.StatusNotFound {
		t.Errorf("delete twice: %v", err)
	}
}

func mkBackupDir(t *testing.T, dir, id string, files map[string]string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Join(dir, id), 0o750); err != nil {
		t.Fatal(err)
	}
	for name, body := range files {
		if err := os.WriteFile(filepath.Join(dir, id, name), []byte(body), 0o640); err != nil {
			t.Fatal(err)
		}
	}
}

func TestDumpWatch(t *testing.T) {
	header := "-- MariaDB dump 10.19\n/*!40101 SET NAMES utf8mb4 */;\n"
	position := "-- CHANGE MASTER TO MASTER_USE_GTID=slave_pos;\n\n-- CHANGE MASTER TO MASTER_LOG_FILE='binlog.000003', MASTER_LOG_POS=782;\n\n"
	data := "--\n-- Current Database: `shop`\n--\n" + strings.Repeat("INSERT INTO `t` VALUES (1,'x');\n", 10000)
	end := "-- SET GLOBAL gtid_slave_pos='0-1-15';\n/*!40103 SET TIME_ZONE=@OLD_TIME_ZONE */;\n-- Dump completed\n"

	w := newDumpWatch()
	w.Write([]byte(header))
	select {
	case <-w.snapshotted:
		t.Fatal("the header alone does not show the snapshot")
	default:
	}
	w.Write([]byte(position))
	select {
	case <-w.snapshotted:
	default:
		t.Fatal("the position comment shows the snapshot")
	}
	for p := []byte(data + end); len(p) > 0; p = p[min(len(p), 4096):] {
		w.Write(p[:min(len(p), 4096)])
	}
	pos, gtid := w.position()
	if pos != (binlogPos{"binlog.000003", 782}) || gtid != "0-1-15" {
		t.Errorf("position %+v gtid %q", pos, gtid)
	}

	// Without a binary log: the first database shows the snapshot, and
	// there is no position.
	w = newDumpWatch()
	w.Write([]byte(header + data[:100]))
	select {
	case <-w.snapshotted:
	default:
		t.Fatal("the first database shows the snapshot")
	}
	if pos, gtid := w.position(); pos.File != "" || gtid != "" {
		t.Errorf("no binlog: %+v %q", pos, gtid)
	}
}

func TestSearchable(t *testing.T) {
	// Not t.TempDir, which is private; the system's temporary directory
	// is searchable by others on any normal host.
	root, err := os.MkdirTemp("", "nines-searchable-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(root) })
	open := filepath.Join(root, "open", "backups")
	closed := filepath.Join(root, "closed", "backups")
	for _, d := range []string{open, closed} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Chmod(filepath.Dir(closed), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(root, 0o755); err != nil {
		t.Fatal(err)
	}
	stranger := &user.User{Uid: "54321", Gid: "54321", Username: "stranger"}
	if err := searchable(open, stranger); err != nil {
		t.Errorf("open: %v", err)
	}
	err = searchable(closed, stranger)
	if err == nil || !strings.Contains(err.Error(), filepath.Dir(closed)+`" is mode 0700`) {
		t.Errorf("closed: %v", err)
	}
}

func TestChoosePort(t *testing.T) {
	port, err := choosePort(0)
	if err != nil || port == 0 {
		t.Fatalf("any free port: %d, %v", port, err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	busy := l.Addr().(*net.TCPAddr).Port
	if _, err := choosePort(busy); statusOf(err) != http.StatusConflict || !strings.Contains(err.Error(), "in use") {
		t.Errorf("a port in use: %v", err)
	}
}
