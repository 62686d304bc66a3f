package ndbsim

import (
	"bufio"
	"net"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nines-project/nines/ndb"
)

// TestBackupWritesNodeFiles: a completed backup leaves, in each started
// data node's BackupDataDir, BACKUP/BACKUP-<id>/ with the node's three
// files, non-empty; a stopped node writes none; an aborted backup none.
func TestBackupWritesNodeFiles(t *testing.T) {
	root := t.TempDir()
	dirOf := func(id int) string { return filepath.Join(root, "data"+itoa(id)) }
	c, err := NewCluster(Config{DataNodes: 4, Replicas: 2, BackupDataDir: dirOf})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Stop([]int{4}, StopOptions{}); err != nil {
		t.Fatal(err)
	}
	id, err := c.BeginBackup(0)
	if err != nil {
		t.Fatal(err)
	}
	if !c.FinishBackup(id) {
		t.Fatal("backup did not finish")
	}
	b, _ := c.Backup(id)
	if got := b.Nodes; len(got) != 3 || got[0] != 1 || got[2] != 3 {
		t.Fatalf("backup nodes %v, want [1 2 3]", got)
	}
	for node := 1; node <= 3; node++ {
		dir := filepath.Join(dirOf(node), "BACKUP", "BACKUP-1")
		entries, err := os.ReadDir(dir)
		if err != nil {
			t.Fatalf("node %d: %v", node, err)
		}
		var names []string
		for _, e := range entries {
			fi, _ := e.Info()
			if fi.Size() == 0 {
				t.Errorf("node %d: %s is empty", node, e.Name())
			}
			data, _ := os.ReadFile(filepath.Join(dir, e.Name()))
			if !strings.HasPrefix(string(data), "NDBBCKUP") {
				t.Errorf("node %d: %s lacks NDB's backup magic", node, e.Name())
			}
			names = append(names, e.Name())
		}
		sort.Strings(names)
		want := []string{"BACKUP-1-0." + itoa(node) + ".data", "BACKUP-1." + itoa(node) + ".ctl", "BACKUP-1." + itoa(node) + ".log"}
		if strings.Join(names, " ") != strings.Join(want, " ") {
			t.Errorf("node %d files %v, want %v", node, names, want)
		}
	}
	if _, err := os.Stat(filepath.Join(dirOf(4), "BACKUP")); !os.IsNotExist(err) {
		t.Errorf("stopped node 4 has a backup directory (%v)", err)
	}
	// An aborted backup writes nothing.
	id2, _ := c.BeginBackup(0)
	c.AbortBackup(id2)
	if _, err := os.Stat(BackupPath(dirOf(1), id2)); !os.IsNotExist(err) {
		t.Errorf("aborted backup %d left files (%v)", id2, err)
	}
}

// TestBackupUnwritableAborts: a node that cannot write its files aborts
// the backup, and START BACKUP WAIT COMPLETED says so.
func TestBackupUnwritableAborts(t *testing.T) {
	root := t.TempDir()
	blocker := filepath.Join(root, "file")
	if err := os.WriteFile(blocker, []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	c, err := NewCluster(Config{DataNodes: 2, Replicas: 2, BackupDataDir: func(int) string { return blocker }})
	if err != nil {
		t.Fatal(err)
	}
	s, err := Serve(c, "127.0.0.1:0", ServerConfig{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	conn, err := net.DialTimeout("tcp", s.Addr(), 2*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(5 * time.Second))
	reply := call(t, conn, bufio.NewReader(conn), ndb.StartBackupRequest{Wait: ndb.BackupWaitCompleted}.Message())
	if _, err := ndb.ParseStartBackup(reply); err == nil || !strings.Contains(err.Error(), "Backup failed") {
		t.Fatalf("start backup into an unwritable dir: %v", err)
	}
	if b, _ := c.Backup(1); !b.Aborted || b.Completed {
		t.Fatalf("backup state %+v, want aborted", b)
	}
}

func itoa(i int) string { return strconv.Itoa(i) }
