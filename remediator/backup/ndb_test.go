package backup

import (
	"context"
	"encoding/json"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nines-project/nines"
	exporterndb "github.com/nines-project/nines/exporter/ndb"
	"github.com/nines-project/nines/ndb"
	"github.com/nines-project/nines/remediator"
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
	if _, err := startNDBBackup(ctx, []MgmServer{mgm(srv.Addr()), mgm(srv.Addr())}, time.Now); err == nil || !strings.Contains(err.Error(), "START BACKUP WAIT STARTED on ndb_mgmd") {
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

// TestNDBBackupJobTimedOutAborts: a native backup still running when its
// job ends (here its time limit) is aborted with ABORT BACKUP through the
// management server that started it, in a step of its own; the data
// nodes' BackupAborted event reaches the management server's listeners;
// and the catalog never shows the backup as good, even though each data
// node's agent lists a complete-looking set of files for it.
func TestNDBBackupJobTimedOutAborts(t *testing.T) {
	c, err := ndbsim.NewCluster(ndbsim.Config{DataNodes: 2})
	if err != nil {
		t.Fatal(err)
	}
	// A backup that runs far longer than the job may.
	srv, err := ndbsim.Serve(c, "127.0.0.1:0", ndbsim.ServerConfig{BackupDuration: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()

	// An operator's own listener on the management server: what it sees
	// is what reached the mgmd.
	var mu sync.Mutex
	var seen []ndb.Event
	lctx, stopListen := context.WithCancel(context.Background())
	defer stopListen()
	ready := make(chan struct{})
	watcher := exporterndb.NewMgm(exporterndb.MgmConfig{Addr: srv.Addr(), DialTimeout: time.Second})
	go watcher.ListenEventsReady(lctx, ndb.Filter{ndb.CategoryBackup: 15}, func() { close(ready) }, func(ev ndb.Event) {
		mu.Lock()
		seen = append(seen, ev)
		mu.Unlock()
	})
	select {
	case <-ready:
	case <-time.After(5 * time.Second):
		t.Fatal("listener not accepted")
	}

	// What the data nodes left of backup 1, as their agents list it:
	// every node's three files, which alone would look complete.
	agents := []*fakeAgent{{node: DataNodeName(1)}, {node: DataNodeName(2)}}
	var hosts []Host
	for i, a := range agents {
		id := i + 1
		a.list = []Info{ndbInfo(a.node, 1, id, StateComplete, nodeFiles(1, id, 100)...)}
		hosts = append(hosts, Host{Node: a.node, Agent: a, NDBNodeID: id})
	}
	plan := Plan{Cluster: "c1", Kind: nines.KindNDB, Method: MethodNDB, Schedule: "@daily", Keep: 2}
	env := Env{
		Plans: func(string) []Plan { return []Plan{plan} },
		Hosts: func(string) ([]Host, error) { return hosts, nil },
		Now:   time.Now,
		Management: func(string) ([]MgmServer, error) {
			return []MgmServer{{Addr: srv.Addr(), Mgm: exporterndb.NewMgm(exporterndb.MgmConfig{Addr: srv.Addr(), DialTimeout: time.Second})}}, nil
		},
	}
	log, err := remediator.OpenJobLog(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	cat := NewCatalog([]Plan{plan}, env.Hosts, log.List, nil)
	env.Failed = cat.Failed
	const limit = 500 * time.Millisecond
	rem, err := remediator.New(remediator.Options{Log: log, Runbooks: []remediator.Runbook{Runbook{Env: env, MaxDuration: limit}},
		Policies: map[string]remediator.Policy{"c1": {Mode: remediator.ModeAuto}}, OnEnd: func(remediator.Job) { cat.ReadJobs() }})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); rem.Run(ctx) }()
	defer func() { cancel(); <-done }()
	w := &world{rem: rem, log: log, cat: cat}
	began := time.Now()
	j := w.run(t, remediator.ManualRequest{Runbook: remediator.RunbookBackup, Params: map[string]string{"method": MethodNDB}})
	t.Logf("measured: job ended %s after it started (limit %s, abort bounded by %s)", time.Since(began).Round(time.Millisecond), limit, AbortTimeout)

	// The job log: the start failed with the time limit, then the abort.
	if j.State == remediator.JobSucceeded {
		t.Fatalf("job %s succeeded: %s", j.ID, stepNames(j))
	}
	if got := stepNames(j); got != "act start-backup failed, act abort-backup done" {
		t.Errorf("steps: %s", got)
	}
	var ab NDBAborted
	for _, st := range j.Steps {
		if st.Name == "start-backup" && !strings.Contains(st.Error, "backup 1 still running when the job ended") {
			t.Errorf("start-backup error: %q", st.Error)
		}
		if st.Name == "abort-backup" {
			if err := json.Unmarshal(st.Output, &ab); err != nil {
				t.Fatal(err)
			}
		}
	}
	if ab.BackupID != 1 || !ab.Confirmed || ab.Error != 1321 || ab.Management != srv.Addr() {
		t.Errorf("abort-backup output: %+v", ab)
	}

	// The management server: backup 1 aborted, its event sent.
	if b, _ := c.Backup(1); !b.Aborted || b.Completed {
		t.Errorf("backup 1 in the mgmd: %+v, want aborted", b)
	}
	mu.Lock()
	var types []string
	for _, ev := range seen {
		id, _ := ev.Get("backup_id")
		code, _ := ev.Get("error")
		types = append(types, ev.Type.String()+" "+strconv.Itoa(id)+" "+strconv.Itoa(code))
	}
	mu.Unlock()
	if got := strings.Join(types, ", "); got != "BackupStarted 1 0, BackupAborted 1 1321" {
		t.Errorf("events the mgmd sent: %s", got)
	}

	// The catalog: backup 1 listed as aborted, never as good.
	cat.Refresh(context.Background(), "c1")
	es := cat.Entries("c1")
	if len(es) != 1 || es[0].ID != "1" || es[0].State != StateAborted || es[0].Complete() || !strings.Contains(es[0].Error, "aborted by job "+j.ID) {
		t.Fatalf("catalog: %+v", es)
	}
	if !cat.Failed("c1", "1") {
		t.Error("retention would count the aborted backup as good")
	}
	for _, m := range cat.Metrics() {
		if m.Name == "nines_backup_last_success_timestamp_seconds" {
			t.Errorf("an aborted backup counts as the last success: %+v", m)
		}
	}
}
