package agent

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// TestCarriedSettings: only whitelisted InnoDB settings with plain
// values pass from a backup's backup-my.cnf to the tools.
func TestCarriedSettings(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "backup-my.cnf")
	good := "[mysqld]\ninnodb_checksum_algorithm=full_crc32\ninnodb_data_file_path=ibdata1:12M:autoextend\ninnodb_log_file_size=100663296\n" +
		"innodb_page_size=16384\ninnodb_undo_directory=./\ninnodb_undo_tablespaces=0\ninnodb_compression_level=6\nplugin_load=x.so\n"
	if err := os.WriteFile(p, []byte(good), 0o644); err != nil {
		t.Fatal(err)
	}
	got, err := carriedSettings(p)
	if err != nil || len(got) != 7 || got[1] != "innodb_data_file_path=ibdata1:12M:autoextend" {
		t.Fatalf("carriedSettings(good) = %q, %v", got, err)
	}
	for _, bad := range []string{
		"innodb_data_file_path=/etc/passwd:12M",
		"innodb_data_file_path=../../x:12M",
		"innodb_undo_directory=/var/lib/mysql",
		"innodb_log_group_home_dir=/tmp",
		"innodb_page_size=16384 --plugin-load=evil.so",
		"innodb_compression_level=99",
		"innodb_checksum_algorithm=crc32;rm",
	} {
		if err := os.WriteFile(p, []byte("[mysqld]\n"+bad+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		if got, err := carriedSettings(p); err == nil {
			t.Errorf("%s carried over: %q", bad, got)
		}
	}
}

// TestLoadArgs: the dump is loaded with the client's commands disabled,
// and the installed client has the options.
func TestLoadArgs(t *testing.T) {
	sc := &scratch{srv: scratchServer("/b", "x"), uid: 100, gid: 100}
	args := sc.loadArgs()
	if !strings.HasPrefix(args[0], "--defaults-file=") || !slices.Contains(args, "--sandbox") || !slices.Contains(args, "--binary-mode") ||
		!slices.Contains(args, "--user=mysql") {
		t.Errorf("load args %q", args)
	}
	fake := filepath.Join(t.TempDir(), "mariadb")
	if err := os.WriteFile(fake, []byte("#!/bin/sh\necho '  --binary-mode  Binary mode'\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := checkClient(t.Context(), fake); err == nil || !strings.Contains(err.Error(), "has no --sandbox") {
		t.Errorf("a client without --sandbox: %v", err)
	}
	// The real client (scripts/install-deps.sh installs mariadb-client):
	// missing is a failure, not a skip.
	bin, err := toolClient.find()
	if err != nil {
		t.Fatalf("the mariadb client: %v (scripts/install-deps.sh installs it)", err)
	}
	if err := checkClient(t.Context(), bin); err != nil {
		t.Errorf("the installed client: %v", err)
	}
}

// TestScratchSocketDir: a scratch path too long for a socket gets a
// private, unpredictable socket directory, found again and removed with
// the scratch directory; a record pointing elsewhere is ignored.
func TestScratchSocketDir(t *testing.T) {
	a, _, _ := serveStopped(t, "")
	// Reachable by mysql, as the scratch server runs as it under root.
	base, err := os.MkdirTemp("/tmp", "nines-sock-test-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(base) })
	dir := filepath.Join(base, strings.Repeat("d", 90))
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(base, 0o755); err != nil {
		t.Fatal(err)
	}
	sc, err := a.newScratch(t.Context(), dir, "b1", 0)
	if err != nil {
		t.Fatal(err)
	}
	sockDir := filepath.Dir(sc.srv.Socket)
	fi, err := os.Stat(sockDir)
	if err != nil || filepath.Dir(sockDir) != os.TempDir() || !strings.HasPrefix(filepath.Base(sockDir), socketDirPrefix) ||
		len(filepath.Base(sockDir)) <= len(socketDirPrefix) || fi.Mode().Perm() != 0o700 {
		t.Fatalf("socket dir %s: %v %v", sockDir, fi, err)
	}
	if got := scratchServer(dir, "b1").Socket; got != sc.srv.Socket {
		t.Errorf("scratchServer socket %s, want %s", got, sc.srv.Socket)
	}
	if err := a.removeScratch(t.Context(), dir, "b1"); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(sockDir); !os.IsNotExist(err) {
		t.Errorf("socket dir after removeScratch: %v", err)
	}
	// A record naming another directory is not trusted.
	victim := t.TempDir()
	sdir := scratchDir(dir, "b2")
	if err := os.MkdirAll(sdir, 0o750); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(sdir, socketDirRecord), []byte(victim), 0o640); err != nil {
		t.Fatal(err)
	}
	if err := a.removeScratch(t.Context(), dir, "b2"); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(victim); err != nil {
		t.Errorf("removeScratch followed a forged record: %v", err)
	}
}
