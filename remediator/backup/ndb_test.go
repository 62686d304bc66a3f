package backup

import (
	"context"
	"strconv"
	"strings"
	"testing"
	"time"

	exporterndb "github.com/nines-project/nines/exporter/ndb"
	"github.com/nines-project/nines/sandbox/ndbsim"
)

// TestStartNDBBackupFailover: START BACKUP goes to the first management
// server that answers; none answering starts none and says so.
func TestStartNDBBackupFailover(t *testing.T) {
	c, err := ndbsim.NewCluster(ndbsim.Config{DataNodes: 2})
	if err != nil {
		t.Fatal(err)
	}
	srv, err := ndbsim.Serve(c, "127.0.0.1:0", ndbsim.ServerConfig{BackupDuration: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	mgm := func(addr string) MgmServer {
		return MgmServer{Addr: addr, Mgm: exporterndb.NewMgm(exporterndb.MgmConfig{Addr: addr, DialTimeout: time.Second})}
	}
	ctx := context.Background()
	got, err := startNDBBackup(ctx, []MgmServer{mgm("127.0.0.1:1"), mgm(srv.Addr())}, time.Now)
	if err != nil || got.BackupID != 1 || got.Management != srv.Addr() || len(got.Unanswered) != 1 {
		t.Fatalf("start: %+v %v", got, err)
	}
	if b, _ := c.Backup(1); !b.Completed {
		t.Errorf("WAIT COMPLETED returned before the backup completed: %+v", b)
	}
	if !got.EndedAt.After(got.StartedAt) {
		t.Errorf("span %v..%v", got.StartedAt, got.EndedAt)
	}
	_, err = startNDBBackup(ctx, []MgmServer{mgm("127.0.0.1:1")}, time.Now)
	if err == nil || !strings.Contains(err.Error(), "no backup was started") {
		t.Fatalf("no server answering: %v", err)
	}
	// A refusal from the server that answered is not retried elsewhere.
	if _, err := c.Stop([]int{1, 2}, ndbsim.StopOptions{Force: true}); err != nil {
		t.Fatal(err)
	}
	if _, err := startNDBBackup(ctx, []MgmServer{mgm(srv.Addr()), mgm(srv.Addr())}, time.Now); err == nil || !strings.Contains(err.Error(), "START BACKUP WAIT COMPLETED on ndb_mgmd") {
		t.Fatalf("refused backup: %v", err)
	}
}

func ndbInfo(holder string, id, node int, state string, files ...File) Info {
	var size int64
	for _, f := range files {
		size += f.Size
	}
	return Info{Manifest: Manifest{ID: itoa(id), Method: MethodNDB, Files: files, SizeBytes: size, StartedAt: t0.Add(time.Duration(node) * time.Second),
		EndedAt: t0.Add(time.Duration(node+1) * time.Second), NDB: &NDBBackup{BackupID: id, Nodes: []NDBNodeFiles{{NodeID: node, Files: files}}}},
		State: state, Holder: holder}
}

func itoa(i int) string { return strconv.Itoa(i) }

func nodeFiles(id, node int, size int64) []File {
	var out []File
	for _, n := range ndbExpected(id, node) {
		out = append(out, File{Name: n, Size: size, SHA256: strings.Repeat("a", 64)})
	}
	return out
}

// TestMergeNDB: the data nodes' listings of one backup id become one
// entry with each node's files; it is complete only when every part is.
func TestMergeNDB(t *testing.T) {
	all := []Info{
		ndbInfo("data-node-1", 7, 1, StateComplete, nodeFiles(7, 1, 10)...),
		ndbInfo("data-node-2", 7, 2, StateIncomplete, nodeFiles(7, 2, 20)[:2]...),
		ndbInfo("data-node-1", 8, 1, StateComplete, nodeFiles(8, 1, 10)...),
	}
	m := merge(all)
	if len(m) != 2 {
		t.Fatalf("merged %d entries, want one per backup id", len(m))
	}
	b := m[0]
	if b.ID != "7" || len(b.NDB.Nodes) != 2 || b.NDB.Nodes[1].Holder != "data-node-2" || b.NDB.Nodes[0].Holder != "data-node-1" ||
		len(b.Files) != 5 || b.SizeBytes != 70 || b.Complete() || !b.StartedAt.Equal(t0.Add(time.Second)) || !b.EndedAt.Equal(t0.Add(3*time.Second)) {
		t.Errorf("backup 7 merged: %+v nodes %+v", b, b.NDB.Nodes)
	}
	// The listings themselves are left as they were.
	if len(all[0].NDB.Nodes) != 1 || len(all[0].Files) != 3 {
		t.Errorf("merge changed its input: %+v", all[0])
	}
}

// TestVerifyNDBFiles: every configured data node needs its three files,
// non-empty and unchanged since the backup; the result says it checked
// the files only.
func TestVerifyNDBFiles(t *testing.T) {
	hosts := []Host{{Node: "data-node-1", NDBNodeID: 1}, {Node: "data-node-2", NDBNodeID: 2}}
	good := NDBCollected{BackupID: 7, Nodes: []NDBNodeFiles{{NodeID: 1, Files: nodeFiles(7, 1, 10)}, {NodeID: 2, Files: nodeFiles(7, 2, 10)}}}
	res := verifyNDBFiles(7, hosts, good, good)
	if !res.OK || res.Scope != ScopeFiles || !strings.Contains(res.Note, "only the files were checked") || len(res.Checks) != 2 {
		t.Fatalf("good backup: %+v", res)
	}
	changed := NDBCollected{BackupID: 7, Nodes: []NDBNodeFiles{{NodeID: 1, Files: nodeFiles(7, 1, 10)}, {NodeID: 2, Files: nodeFiles(7, 2, 11)}}}
	if res := verifyNDBFiles(7, hosts, changed, good); res.OK || !strings.Contains(res.Failure(), "BACKUP-7-0.2.data changed since the backup ended") {
		t.Errorf("changed file: %s", res.Failure())
	}
	empty := NDBCollected{BackupID: 7, Nodes: []NDBNodeFiles{{NodeID: 1, Files: nodeFiles(7, 1, 0)}, {NodeID: 2, Files: nodeFiles(7, 2, 10)}}}
	if res := verifyNDBFiles(7, hosts, empty, NDBCollected{}); res.OK || !strings.Contains(res.Failure(), "files:data-node-1 failed: BACKUP-7.1.ctl is empty") {
		t.Errorf("empty files: %s", res.Failure())
	}
	one := NDBCollected{BackupID: 7, Nodes: []NDBNodeFiles{{NodeID: 1, Files: nodeFiles(7, 1, 10)[1:]}}}
	res = verifyNDBFiles(7, hosts, one, NDBCollected{})
	if res.OK || !strings.Contains(res.Failure(), "BACKUP-7.1.ctl missing") || !strings.Contains(res.Checks[1].Detail, "data node 2's agent lists no file of backup 7") {
		t.Errorf("missing files: %+v", res.Checks)
	}
	// ".Data", as ndb_print_backup_file spells it, counts as the data file.
	fs := nodeFiles(7, 1, 10)
	fs[1].Name = "BACKUP-7-0.1.Data"
	if res := verifyNDBFiles(7, hosts[:1], NDBCollected{Nodes: []NDBNodeFiles{{NodeID: 1, Files: fs}}}, NDBCollected{}); !res.OK {
		t.Errorf(".Data data file: %s", res.Failure())
	}
}
