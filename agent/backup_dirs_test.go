package agent

import (
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestBackupDirsAllowlist: every route that takes a dir refuses one
// outside backup_dirs, however it is spelled, and touches nothing there.
func TestBackupDirsAllowlist(t *testing.T) {
	allowed := t.TempDir()
	outside := t.TempDir()
	// A victim outside that even looks like a complete backup.
	mkBackupDir(t, outside, "victim", map[string]string{ManifestFile: `{"version":1,"id":"victim","method":"dump"}`, "keep": "x"})
	for name, target := range map[string]string{"link": outside, "evil": filepath.Join(outside, "victim"), "dangling": "/nonexistent/nines"} {
		if err := os.Symlink(target, filepath.Join(allowed, name)); err != nil {
			t.Fatal(err)
		}
	}
	_, _, base := serveStopped(t, "backup_dirs: ["+allowed+"]\n")
	auth := "Bearer " + testToken
	q := func(dir string) string { return "?dir=" + url.QueryEscape(dir) }
	traversal := allowed + "/../" + filepath.Base(outside)
	for _, tt := range []struct {
		method, path, body string
		want               int
		msg                string
	}{
		{"DELETE", "/v1/backups/mysql" + q("/var/lib"), ``, 403, "not inside an allowed backup directory"},
		{"DELETE", "/v1/backups/victim" + q(outside), ``, 403, "backup_dirs in the agent's config: " + allowed},
		{"DELETE", "/v1/backups/victim" + q(traversal), ``, 403, "not inside"},
		{"DELETE", "/v1/backups/victim" + q(allowed+"/link"), ``, 403, "resolved " + outside},
		{"DELETE", "/v1/backups/evil" + q(allowed), ``, 403, "not a directory"},
		{"GET", "/v1/backups" + q("/etc"), ``, 403, "dir /etc is not inside"},
		{"GET", "/v1/backups" + q(allowed+"/link"), ``, 403, "not inside"},
		{"GET", "/v1/backups" + q(allowed+"/dangling/x"), ``, 403, "dangling symlink"},
		{"POST", "/v1/backups", `{"method":"dump","dir":"/etc/nines-test","id":"a"}`, 403, "not inside"},
		{"POST", "/v1/backups", `{"method":"dump","dir":"` + allowed + `/link/new","id":"a"}`, 403, "not inside"},
		{"POST", "/v1/backups", `{"method":"dump","dir":"` + allowed + `/dangling","id":"a"}`, 403, "dangling symlink"},
		{"POST", "/v1/backups/victim/verify", `{"dir":"` + outside + `"}`, 403, "not inside"},
		{"POST", "/v1/backups/evil/verify", `{"dir":"` + allowed + `"}`, 403, "not a directory"},
		// Inside: a sub-directory that does not exist yet lists empty.
		{"GET", "/v1/backups" + q(allowed+"/sub/new"), ``, 200, `[]`},
	} {
		code, body := call(t, tt.method, base+tt.path, auth, tt.body)
		if code != tt.want || !strings.Contains(body, tt.msg) {
			t.Errorf("%s %s %s: %d %s, want %d with %q", tt.method, tt.path, tt.body, code, body, tt.want, tt.msg)
		}
	}
	if _, err := os.Stat(filepath.Join(outside, "victim", "keep")); err != nil {
		t.Errorf("the directory outside the allowlist was touched: %v", err)
	}
	for _, p := range []string{"/etc/nines-test", filepath.Join(outside, "new"), "/nonexistent/nines"} {
		if _, err := os.Lstat(p); !os.IsNotExist(err) {
			t.Errorf("a refused backup created %s: %v", p, err)
		}
	}
}

// TestDeleteOnlyBackupsOfNines: DELETE removes a directory with a
// manifest or the marker every backup writes first, and nothing else.
func TestDeleteOnlyBackupsOfNines(t *testing.T) {
	dir := t.TempDir()
	_, c, _ := serveStopped(t, "backup_dirs: ["+dir+"]\n")
	ctx := t.Context()
	mkBackupDir(t, dir, "foreign", map[string]string{"data": "someone's"})
	mkBackupDir(t, dir, "cut", map[string]string{MarkerFile: "", DumpFile: "partial"})
	if err := c.DeleteBackup(ctx, dir, "foreign"); !hasStatus(err, 403) || !strings.Contains(err.Error(), "not a backup of nines") {
		t.Errorf("delete a directory nines did not make: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "foreign", "data")); err != nil {
		t.Errorf("refused delete removed it: %v", err)
	}
	if err := c.DeleteBackup(ctx, dir, "cut"); err != nil {
		t.Errorf("delete an interrupted backup of nines: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "cut")); !os.IsNotExist(err) {
		t.Errorf("cut after delete: %v", err)
	}
}

// TestBackupDirsResolved: an allowlisted dir that is itself a symlink
// admits both spellings; a dir equal to the allowed one or below it is
// accepted, a sibling with the same prefix is not.
func TestBackupDirsResolved(t *testing.T) {
	root := t.TempDir()
	real := filepath.Join(root, "real")
	if err := os.Mkdir(real, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(real, filepath.Join(root, "alias")); err != nil {
		t.Fatal(err)
	}
	a, _, _ := serveStopped(t, "backup_dirs: ["+filepath.Join(root, "alias")+"]\n")
	for dir, ok := range map[string]bool{
		real:                                    true,
		filepath.Join(root, "alias"):            true,
		filepath.Join(root, "alias", "a", "b"):  true,
		filepath.Join(root, "real", ".", "sub"): true,
		real + "2":                              false,
		root:                                    false,
		filepath.Join(real, ".."):               false,
		"relative":                              false,
	} {
		got, err := a.backupDir(dir)
		if (err == nil) != ok {
			t.Errorf("backupDir(%q) = %q, %v; want ok %v", dir, got, err, ok)
		}
		if err == nil && !strings.HasPrefix(got, real) {
			t.Errorf("backupDir(%q) = %q: not resolved to %s", dir, got, real)
		}
	}
}

// TestBackupFilesNotFollowed: a backup whose files are symlinks to other
// files of the host is neither read nor quoted.
func TestBackupFilesNotFollowed(t *testing.T) {
	dir := t.TempDir()
	_, c, _ := serveStopped(t, "backup_dirs: ["+dir+"]\n")
	secret := filepath.Join(t.TempDir(), "secret")
	if err := os.WriteFile(secret, []byte("top secret"), 0o600); err != nil {
		t.Fatal(err)
	}
	mkBackupDir(t, dir, "linked", nil)
	if err := os.Symlink(secret, filepath.Join(dir, "linked", ManifestFile)); err != nil {
		t.Fatal(err)
	}
	list, err := c.Backups(t.Context(), dir)
	if err != nil || len(list) != 1 || list[0].State != BackupIncomplete || !strings.Contains(list[0].Error, "symlink") {
		t.Errorf("a manifest that is a symlink: %+v, %v", list, err)
	}
	if _, _, err := fileSHA256(t.Context(), filepath.Join(dir, "linked", ManifestFile)); err == nil {
		t.Error("fileSHA256 followed a symlink")
	}
}
