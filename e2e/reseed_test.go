//go:build cluster

package e2e

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/nines-project/nines/agent"
	"github.com/nines-project/nines/sandbox"
)

// TestReseedRebuildsADivergedReplica makes a replica diverge (a row
// written on it with its own GTID, then the primary moves on), runs
// replication-reseed by hand through the appliance's API, and checks that
// the node replicates again with every row of the primary and none of
// its own, that the job log lists the diverged GTID, and that the old
// datadir is kept.
func TestReseedRebuildsADivergedReplica(t *testing.T) {
	for _, semi := range []bool{false, true} {
		name := "async"
		if semi {
			name = "semi-sync"
		}
		t.Run(name, func(t *testing.T) { reseedDrill(t, semi) })
	}
}

func reseedDrill(t *testing.T, semiSync bool) {
	sb := startReplicationSandbox(t, sandbox.Options{ClusterName: "reseed", SemiSync: semiSync})
	nodes := sb.Nodes()
	primary, target := nodes[0], nodes[2]
	addr := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	b := clusterConfig(sb, addr, "test", true)
	b.WriteString("    remediation: {mode: \"off\"}\n")
	cfg := filepath.Join(t.TempDir(), "nines.yaml")
	if err := os.WriteFile(cfg, []byte(b.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	a := startApplianceOn(t, ninesBin, addr, cfg, sb.TokenPath())
	waitFor(t, a.started, time.Minute, "nines sees the three nodes up", func() bool {
		return len(a.query(`mysql_up == 1`)) == 3
	})

	pdb, tdb := openDB(t, sb, primary.Name), openDB(t, sb, target.Name)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	mustExec(t, pdb, "CREATE DATABASE reseedt")
	mustExec(t, pdb, "CREATE TABLE reseedt.t (id INT PRIMARY KEY, v VARCHAR(32)) ENGINE=InnoDB")
	for i := 1; i <= 200; i++ {
		mustExec(t, pdb, fmt.Sprintf("INSERT INTO reseedt.t VALUES (%d, 'before')", i))
	}
	waitApplied(ctx, t, pdb, tdb)

	// Diverge: the replica stops, takes a write of its own, and the
	// primary writes on.
	mustExec(t, tdb, "STOP SLAVE")
	mustExec(t, tdb, "SET GLOBAL read_only=OFF")
	mustExec(t, tdb, "INSERT INTO reseedt.t VALUES (100000, 'diverged')")
	var diverged string
	if err := tdb.QueryRowContext(ctx, "SELECT @@global.gtid_binlog_pos").Scan(&diverged); err != nil {
		t.Fatal(err)
	}
	for i := 201; i <= 300; i++ {
		mustExec(t, pdb, fmt.Sprintf("INSERT INTO reseedt.t VALUES (%d, 'after')", i))
	}
	t.Logf("%s diverged with %s", target.Address(), diverged)

	refusals(ctx, t, sb, a, primary, target, tdb)

	start := time.Now()
	var id string
	if semiSync {
		// As an operator would: the CLI, waiting for the end.
		out, err := exec.CommandContext(ctx, ninesBin, "reseed", "--config", cfg, "--api", a.base, "--cluster", sb.ClusterName(), "--node", target.Address(), "--wait").CombinedOutput()
		t.Logf("nines reseed --wait:\n%s", out)
		m := regexp.MustCompile(`job (\S+) started`).FindSubmatch(out)
		if err != nil || m == nil {
			t.Fatalf("nines reseed: %v", err)
		}
		id = string(m[1])
	} else {
		code, body, err := a.post("/api/v1/jobs", map[string]any{"kind": "reseed", "cluster": sb.ClusterName(), "node": target.Address()})
		if err != nil || code != http.StatusAccepted {
			t.Fatalf("start reseed: %d %s %v", code, body, err)
		}
		var started struct{ Data struct{ ID string } }
		if err := json.Unmarshal(body, &started); err != nil {
			t.Fatal(err)
		}
		id = started.Data.ID
	}
	var job backupJob
	waitFor(t, start, 5*time.Minute, "the reseed job ends", func() bool {
		var r struct{ Data backupJob }
		if code, err := a.get("/api/v1/jobs/"+id, nil, &r); err != nil || code != http.StatusOK {
			return false
		}
		job = r.Data
		return job.done()
	})
	took := time.Since(start)
	for _, s := range job.Steps {
		t.Logf("step %-40s %-8s %6s %s %s", s.Name, s.State, s.Ended.Sub(s.Started).Round(time.Millisecond), s.Output, s.Error)
	}
	if job.State != "succeeded" {
		t.Fatalf("reseed job %s: %s", job.State, job.Reason)
	}
	t.Logf("reseed of %s took %s (job start to end, as seen by polling)", target.Address(), took.Round(time.Millisecond))

	_, _, out, ok := job.step("diverged:")
	if !ok || !strings.Contains(string(out), diverged) {
		t.Errorf("the job log does not list the diverged GTID %s: %s", diverged, out)
	}
	_, rtook, out, ok := job.step("reseed:")
	if !ok {
		t.Fatal("no reseed step")
	}
	var res struct {
		OldDataDir  string `json:"old_datadir"`
		StreamBytes int64  `json:"stream_bytes"`
		StreamMs    int64  `json:"stream_ms"`
		PrepareMs   int64  `json:"prepare_ms"`
		DownMs      int64  `json:"down_ms"`
	}
	if err := json.Unmarshal(out, &res); err != nil {
		t.Fatal(err)
	}
	t.Logf("reseed step %s: %d bytes streamed in %d ms, prepared in %d ms, server down %d ms", rtook.Round(time.Millisecond), res.StreamBytes, res.StreamMs, res.PrepareMs, res.DownMs)
	if fi, err := os.Stat(filepath.Join(res.OldDataDir, "reseedt")); err != nil || !fi.IsDir() {
		t.Errorf("the old datadir %q is not kept: %v", res.OldDataDir, err)
	}

	// The node follows the primary again, with every row and not its own.
	tdb = openDB(t, sb, target.Name)
	mustExec(t, pdb, "INSERT INTO reseedt.t VALUES (301, 'after reseed')")
	waitApplied(ctx, t, pdb, tdb)
	var io, sqlRunning string
	fields := slaveFields(t, tdb)
	io, sqlRunning = fields["Slave_IO_Running"], fields["Slave_SQL_Running"]
	if io != "Yes" || sqlRunning != "Yes" {
		t.Errorf("%s: IO %s, SQL %s after the reseed", target.Address(), io, sqlRunning)
	}
	var pn, tn, mine int
	var psum, tsum string
	pdb.QueryRowContext(ctx, "SELECT COUNT(*), COALESCE(SUM(CRC32(CONCAT(id, v))), 0) FROM reseedt.t").Scan(&pn, &psum)
	tdb.QueryRowContext(ctx, "SELECT COUNT(*), COALESCE(SUM(CRC32(CONCAT(id, v))), 0) FROM reseedt.t").Scan(&tn, &tsum)
	tdb.QueryRowContext(ctx, "SELECT COUNT(*) FROM reseedt.t WHERE id = 100000").Scan(&mine)
	if pn != 301 || tn != pn || tsum != psum {
		t.Errorf("rows: primary %d (sum %s), %s %d (sum %s)", pn, psum, target.Address(), tn, tsum)
	}
	if mine != 0 {
		t.Errorf("%s still holds its diverged row", target.Address())
	}
	var semi int
	tdb.QueryRowContext(ctx, "SELECT @@global.rpl_semi_sync_slave_enabled").Scan(&semi)
	if semi == 1 != semiSync {
		t.Errorf("%s: rpl_semi_sync_slave_enabled %d after the reseed of a cluster with semi-sync %v", target.Address(), semi, semiSync)
	}
	var ro int
	tdb.QueryRowContext(ctx, "SELECT @@global.read_only").Scan(&ro)
	if ro != 1 {
		t.Errorf("%s is writable after the reseed", target.Address())
	}
}

// refusals checks what must never happen: the primary rebuilt, a
// writable server wiped, a node left without data by a stream that breaks.
func refusals(ctx context.Context, t *testing.T, sb *sandbox.Sandbox, a *appliance, primary, target sandbox.Node, tdb *sql.DB) {
	t.Helper()
	code, body, err := a.post("/api/v1/jobs", map[string]any{"kind": "reseed", "cluster": sb.ClusterName(), "node": primary.Address()})
	if err != nil || code != http.StatusAccepted {
		t.Fatalf("start reseed of the primary: %d %s %v", code, body, err)
	}
	var started struct{ Data struct{ ID string } }
	if err := json.Unmarshal(body, &started); err != nil {
		t.Fatal(err)
	}
	var job backupJob
	waitFor(t, time.Now(), time.Minute, "the reseed job of the primary ends", func() bool {
		var r struct{ Data backupJob }
		if code, err := a.get("/api/v1/jobs/"+started.Data.ID, nil, &r); err != nil || code != http.StatusOK {
			return false
		}
		job = r.Data
		return job.done()
	})
	if job.State != "failed" || !strings.Contains(job.Reason, "is the primary") {
		t.Errorf("reseed of the primary: %s %q, want failed, refused as the primary", job.State, job.Reason)
	}
	if _, _, _, acted := job.step("reseed:"); acted {
		t.Error("the reseed of the primary reached the reseed step")
	}

	tc, err := sb.Agent(target.Name)
	if err != nil {
		t.Fatal(err)
	}
	dc, err := sb.Agent(sb.Nodes()[1].Name)
	if err != nil {
		t.Fatal(err)
	}
	src := agent.ReseedRequest{SourceHost: "127.0.0.1", SourcePort: primary.SQLPort}
	// The agent itself refuses a server that takes writes.
	if _, err := tc.Reseed(ctx, src, strings.NewReader("not a stream")); !agent.IsConflict(err) || !strings.Contains(err.Error(), "takes writes") {
		t.Errorf("reseed of a writable server: %v, want 409 naming it", err)
	}
	// A stream cut short fails before the server is touched.
	mustExec(t, tdb, "SET GLOBAL read_only=ON")
	stream, err := dc.SeedStream(ctx, agent.SeedStreamRequest{})
	if err != nil {
		t.Fatal(err)
	}
	_, err = tc.Reseed(ctx, src, io.LimitReader(stream, 1<<20))
	stream.Close()
	if err == nil {
		t.Fatal("a reseed from a stream cut at 1 MiB succeeded")
	}
	t.Logf("a cut stream: %v", err)
	var mine int
	if err := tdb.QueryRowContext(ctx, "SELECT COUNT(*) FROM reseedt.t WHERE id = 100000").Scan(&mine); err != nil || mine != 1 {
		t.Errorf("after a failed reseed the server does not answer with its own row: %d %v", mine, err)
	}
	left, _ := filepath.Glob(target.DataDir + ".*")
	if len(left) != 0 {
		t.Errorf("a failed reseed left %v", left)
	}
	mustExec(t, tdb, "SET GLOBAL read_only=OFF")
}

func openDB(t *testing.T, sb *sandbox.Sandbox, name string) *sql.DB {
	t.Helper()
	db, err := sb.DB(name)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

func mustExec(t *testing.T, db *sql.DB, q string) {
	t.Helper()
	if _, err := db.Exec(q); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
}

// waitApplied waits until replica applied everything the primary wrote.
func waitApplied(ctx context.Context, t *testing.T, primary, replica *sql.DB) {
	t.Helper()
	var pos string
	if err := primary.QueryRowContext(ctx, "SELECT @@global.gtid_binlog_pos").Scan(&pos); err != nil {
		t.Fatal(err)
	}
	var r int
	if err := replica.QueryRowContext(ctx, "SELECT MASTER_GTID_WAIT(?, 60)", pos).Scan(&r); err != nil || r != 0 {
		t.Fatalf("the replica did not apply %s within 60 s: %d %v (%v)", pos, r, err, slaveFields(t, replica))
	}
}

// slaveFields is SHOW SLAVE STATUS by column name, empty without a
// replica connection.
func slaveFields(t *testing.T, db *sql.DB) map[string]string {
	t.Helper()
	st, _ := showSlaveStatus(t, db)
	return st
}
