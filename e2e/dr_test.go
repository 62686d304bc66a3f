//go:build cluster

package e2e

import (
	"context"
	"database/sql"
	"fmt"
	"strconv"
	"testing"
	"time"

	"github.com/nines-project/nines/internal/mariadbd"
	"github.com/nines-project/nines/sandbox"
)

// TestGaleraDRFollowsAfterSourceKill: a DR replica (dr1, async GTID
// replication from n1, outside the cluster) follows another Synced node
// within 10 s of kill -9 of its source, through the alert
// GaleraDRReplicaSourceLost and the runbook galera-dr-follow; after
// MASTER_GTID_WAIT it holds every row the cluster acknowledged, none
// twice (a primary key would stop its SQL thread on a duplicate).
func TestGaleraDRFollowsAfterSourceKill(t *testing.T) {
	sb := startSandbox(t, sandbox.Options{ClusterName: "drfollow", DRReplica: true})
	drs := sb.DRReplicas()
	if len(drs) != 1 {
		t.Fatalf("sandbox with --dr-replica lists %d DR replicas, want 1", len(drs))
	}
	dr := drs[0]
	sts, err := sb.Status(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if last := sts[len(sts)-1]; len(sts) != 4 || last.Name != "dr1" || last.Role != sandbox.LiveReplica || last.State != "replicating" || last.SQLPort != dr.SQLPort {
		t.Errorf("sandbox status: %+v; want n1-n3 then dr1, a replica, replicating", sts)
	}
	h := startHealer(t, sb, remediationOpts{mode: "auto"})
	waitFor(t, h.started, 20*time.Second, "nines to read dr1 replicating", func() bool {
		return len(h.query(fmt.Sprintf(`mysql_slave_status_slave_io_running{instance=%q} == 1 and on (cluster, instance) nines_galera_dr_replica_info`, dr.Address()))) == 1
	})
	var cv struct {
		Data struct {
			Nodes      []struct{ Instance string }
			DRReplicas []struct {
				Instance string
				Up       bool
			} `json:"dr_replicas"`
		}
	}
	if code, err := h.get("/api/v1/clusters/"+sb.ClusterName(), nil, &cv); err != nil || code != 200 ||
		len(cv.Data.Nodes) != 3 || len(cv.Data.DRReplicas) != 1 || cv.Data.DRReplicas[0].Instance != dr.Address() || !cv.Data.DRReplicas[0].Up {
		t.Errorf("GET /api/v1/clusters/%s: %d %v: %+v; want 3 nodes and dr1 up under dr_replicas", sb.ClusterName(), code, err, cv.Data)
	}
	src := drSource(t, sb, dr.Name)
	if src != sb.Nodes()[0].Name {
		t.Fatalf("dr1 replicates from %s, want n1 (the sandbox points it there)", src)
	}

	w := startDrillWriter(t, sb)
	w.waitAcked(t, 30, 10*time.Second)
	killed := kill(t, sb, src)

	// A row written after the kill, through a surviving node: it can only
	// reach dr1 through its new source.
	marker := writeMarker(t, sb, sb.Nodes()[1].Name)
	var followed time.Duration
	var newSrc string
	waitFor(t, killed, 30*time.Second, "dr1 to replicate from another node and hold the row written after the kill", func() bool {
		newSrc = drSource(t, sb, dr.Name)
		if newSrc == "" || newSrc == src || !hasMarker(t, sb, dr.Name, marker) {
			return false
		}
		followed = time.Since(killed)
		return true
	})
	t.Logf("measured: dr1 followed %s (Slave_IO_Running Yes) and held a row written after the kill %s after kill -9 of %s (bound 10s)", newSrc, followed.Round(time.Millisecond), src)
	if followed > 10*time.Second {
		t.Errorf("dr1 followed another node %s after the kill: over the 10 s bound", followed.Round(time.Millisecond))
	}

	// The job that did it.
	var job *jobView
	waitFor(t, time.Now(), 15*time.Second, "the galera-dr-follow job to end", func() bool {
		for _, j := range h.jobs(t) {
			if j.Runbook == "galera-dr-follow" && j.State != "running" && j.State != "pending" {
				job = &j
				return true
			}
		}
		return false
	})
	if job.State != "succeeded" || job.Target != dr.Address() {
		t.Errorf("galera-dr-follow job: state %s, target %s, reason %q; want succeeded on %s", job.State, job.Target, job.Reason, dr.Address())
	}
	for _, s := range job.Steps {
		t.Logf("job %s step %s (%s) %s at +%s: %s", job.ID, s.Name, s.Kind, s.State, s.EndedAt.Sub(killed).Round(time.Millisecond), s.Error)
	}

	// Every acknowledged row, before and after the kill, on dr1 once it
	// applied what a survivor holds.
	w.stop()
	lost := drLost(t, w, sb, dr.Name)
	if len(lost) > 0 {
		t.Errorf("dr1 lacks %d acknowledged rows (node/seq): %v", len(lost), lost)
	} else {
		t.Logf("measured: all %d acknowledged rows (%v per writer) present on dr1", w.ackedCount(), perNode(w.acked))
	}
	if st := drSQLState(t, sb, dr.Name); st != "" {
		t.Errorf("dr1's replication after the drill: %s", st)
	}
	// The remediator also rejoins the killed node; the cluster keeps
	// every acknowledged row.
	h.waitHealthy(t, killed, 60*time.Second)
	w.check(t)
}

// drSource names the node dr replicates from with its IO thread running
// (Yes); "" while it connects or does not replicate.
func drSource(t *testing.T, sb *sandbox.Sandbox, dr string) string {
	t.Helper()
	st := slaveStatus(t, sb, dr)
	if st == nil || st["Slave_IO_Running"] != "Yes" {
		return ""
	}
	port, _ := strconv.Atoi(st["Master_Port"])
	for _, n := range sb.Nodes() {
		if n.SQLPort == port {
			return n.Name
		}
	}
	return "port " + st["Master_Port"]
}

// drSQLState is "" when both threads run without error, else what is wrong.
func drSQLState(t *testing.T, sb *sandbox.Sandbox, dr string) string {
	t.Helper()
	st := slaveStatus(t, sb, dr)
	if st == nil {
		return "no replica connection"
	}
	if st["Slave_IO_Running"] != "Yes" || st["Slave_SQL_Running"] != "Yes" || st["Last_SQL_Errno"] != "0" {
		return fmt.Sprintf("IO %s, SQL %s, last SQL error %s %s, last IO error %s", st["Slave_IO_Running"], st["Slave_SQL_Running"], st["Last_SQL_Errno"], st["Last_SQL_Error"], st["Last_IO_Error"])
	}
	return ""
}

func slaveStatus(t *testing.T, sb *sandbox.Sandbox, node string) map[string]string {
	t.Helper()
	db, err := sb.DB(node)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	st, ok, err := mariadbd.QueryRow(ctx, db, "SHOW SLAVE STATUS")
	if err != nil {
		t.Logf("SHOW SLAVE STATUS on %s: %v", node, err)
		return nil
	}
	if !ok {
		return nil
	}
	return st
}

// writeMarker commits one row through node and returns its id.
func writeMarker(t *testing.T, sb *sandbox.Sandbox, node string) int64 {
	t.Helper()
	db, err := sb.DB(node)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if _, err := db.ExecContext(ctx, "CREATE TABLE IF NOT EXISTS nines.dr_marks (id BIGINT AUTO_INCREMENT PRIMARY KEY, at TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3))"); err != nil {
		t.Fatalf("create nines.dr_marks on %s: %v", node, err)
	}
	res, err := db.ExecContext(ctx, "INSERT INTO nines.dr_marks () VALUES ()")
	if err != nil {
		t.Fatalf("write a marker row on %s: %v", node, err)
	}
	id, err := res.LastInsertId()
	if err != nil {
		t.Fatal(err)
	}
	return id
}

func hasMarker(t *testing.T, sb *sandbox.Sandbox, node string, id int64) bool {
	t.Helper()
	db, err := sb.DB(node)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var n int
	// The table itself may not have arrived yet: an error is "not yet".
	if err := db.QueryRow("SELECT COUNT(*) FROM nines.dr_marks WHERE id = ?", id).Scan(&n); err != nil {
		return false
	}
	return n == 1
}

// drLost waits (MASTER_GTID_WAIT) until dr applied everything a running
// Galera node holds, then returns the acknowledged rows dr lacks.
func drLost(t *testing.T, w *drillWriter, sb *sandbox.Sandbox, dr string) []string {
	t.Helper()
	survivor, err := sb.DB(sb.Nodes()[1].Name)
	if err != nil {
		t.Fatal(err)
	}
	var pos string
	err = survivor.QueryRow("SELECT @@global.gtid_binlog_pos").Scan(&pos)
	survivor.Close()
	if err != nil {
		t.Fatalf("read n2's gtid_binlog_pos: %v", err)
	}
	db, err := sb.DB(dr)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var reached sql.NullInt64
	t0 := time.Now()
	if err := db.QueryRow("SELECT MASTER_GTID_WAIT(?, 30)", pos).Scan(&reached); err != nil || !reached.Valid || reached.Int64 != 0 {
		t.Fatalf("dr1 did not apply up to n2's %s within 30 s: %v (%s)", pos, err, drSQLState(t, sb, dr))
	}
	t.Logf("dr1 applied up to n2's %s %s after the writes stopped", pos, time.Since(t0).Round(time.Millisecond))
	have := map[string]bool{}
	rows, err := db.Query("SELECT node, seq FROM " + w.table)
	if err != nil {
		t.Fatalf("read %s on dr1: %v", w.table, err)
	}
	defer rows.Close()
	for rows.Next() {
		var node string
		var seq int64
		if err := rows.Scan(&node, &seq); err != nil {
			t.Fatal(err)
		}
		have[fmt.Sprintf("%s/%d", node, seq)] = true
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	var lost []string
	for node, seqs := range w.acked {
		for _, s := range seqs {
			if k := fmt.Sprintf("%s/%d", node, s); !have[k] {
				lost = append(lost, k)
			}
		}
	}
	return lost
}
