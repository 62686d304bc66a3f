//go:build cluster

package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nines-project/nines/sandbox"
)

// TestNDBRollingRestartAfterConfigChange: a configuration change on the
// simulator (a new config generation at the management server), then
// ndb-rolling-restart started by hand through the API, as an operator
// does. While it runs, a watcher every 100 ms checks that no node group
// ever has both data nodes down, and writers through both SQL nodes
// check that at least one SQL node takes writes all along. Once the
// first data node runs the new generation the generations disagree and
// NdbConfigGenerationMismatch goes pending; at the end every node was
// restarted exactly once (job log), every data node runs the new
// generation and the alert is gone.
func TestNDBRollingRestartAfterConfigChange(t *testing.T) {
	nd := startNDBSandbox(t, 4, 2)
	h := startHealer(t, nd.Sandbox, remediationOpts{mode: "auto"})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	sqlNodes := nd.Nodes()
	writers := []*sqlWriter{startSQLWriter(t, nd, sqlNodes[0].Name), startSQLWriter(t, nd, sqlNodes[1].Name)}
	time.Sleep(1500 * time.Millisecond)
	from := time.Now().Truncate(time.Second)
	time.Sleep(time.Second)

	gen, err := nd.ConfigChange(ctx, []string{"DataMemory=96M", "MaxNoOfConcurrentOperations=65536"})
	if err != nil {
		t.Fatal(err)
	}
	if gen != 2 {
		t.Fatalf("config change: generation %d, want 2 (a fresh sandbox runs 1)", gen)
	}
	groups := watchDataNodes(t, nd)

	started := time.Now()
	code, body, err := h.post("/api/v1/jobs", map[string]string{"cluster": nd.ClusterName(), "runbook": "ndb-rolling-restart"})
	if err != nil || code != http.StatusAccepted {
		t.Fatalf("POST /api/v1/jobs ndb-rolling-restart: %d %s %v", code, body, err)
	}
	var started202 struct{ Data jobView }
	if err := json.Unmarshal(body, &started202); err != nil {
		t.Fatal(err)
	}
	id := started202.Data.ID

	// While the job runs: the generations disagree once the first data
	// node restarted, and the mismatch rule sees it. Its `for: 1h` (a
	// rolling restart takes a node restart per data node) keeps it
	// pending in a drill, so pending is what is asserted; the expression
	// itself is checked in the store.
	mismatch := `max by (cluster) (mysql_ndbinfo_nodes_config_generation) != min by (cluster) (mysql_ndbinfo_nodes_config_generation)`
	var job jobView
	var sawExpr, sawPending time.Duration
	for {
		if time.Since(started) > 5*time.Minute {
			t.Fatalf("job %s did not end within 5 minutes: %s", id, job.State)
		}
		if sawExpr == 0 && len(h.query(mismatch)) > 0 {
			sawExpr = time.Since(started)
		}
		if sawPending == 0 {
			if st := h.activeAlerts(t, "NdbConfigGenerationMismatch")["NdbConfigGenerationMismatch/"]; st == "pending" || st == "firing" {
				sawPending = time.Since(started)
			}
		}
		for _, j := range h.jobs(t) {
			if j.ID == id {
				job = j
			}
		}
		if job.State != "" && job.State != "running" && job.State != "pending" {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	took := time.Since(started)
	seen := groups.end()
	for _, w := range writers {
		w.end()
	}
	var names []string
	for _, s := range job.Steps {
		names = append(names, s.Name+":"+s.State)
	}
	if job.State != "succeeded" {
		t.Fatalf("job %s %s: %s\nsteps: %v", id, job.State, job.Reason, names)
	}
	t.Logf("measured: rolling restart (1 management server, 4 data nodes, 2 SQL nodes) took %s", took.Round(time.Millisecond))

	// Every node restarted exactly once, in NDB's order.
	acts := map[string]int{}
	var order []string
	for _, s := range job.Steps {
		if s.Kind == "act" && s.State == "done" {
			acts[s.Name]++
			order = append(order, s.Name)
		}
	}
	want := []string{"stop:mgm-" + nd.MgmAddress(), "start:mgm-" + nd.MgmAddress()}
	for i := 1; i <= 4; i++ {
		want = append(want, fmt.Sprintf("restart:node-%d", i))
	}
	for _, n := range sqlNodes {
		want = append(want, "stop:sql-"+n.Address(), "start:sql-"+n.Address())
	}
	if strings.Join(order, " ") != strings.Join(want, " ") {
		t.Errorf("acts in the job log:\n got %v\nwant %v", order, want)
	}
	for name, n := range acts {
		if n != 1 {
			t.Errorf("%s done %d times", name, n)
		}
	}

	// Phase durations, from the job log.
	end := func(name string) time.Time {
		for _, s := range job.Steps {
			if s.Name == name {
				return s.EndedAt
			}
		}
		t.Fatalf("no step %s in the job log: %v", name, names)
		return time.Time{}
	}
	t0 := end("observe-cluster")
	tMgm := end("restarted:mgm-" + nd.MgmAddress())
	tData := end("restarted:node-4")
	tSQL := end("restarted:sql-" + sqlNodes[1].Address())
	t.Logf("measured: management server phase %s, data node phase %s (4 nodes), SQL node phase %s (2 nodes)",
		tMgm.Sub(t0).Round(time.Millisecond), tData.Sub(tMgm).Round(time.Millisecond), tSQL.Sub(tData).Round(time.Millisecond))

	// The generations seen in the job log around node 1's restart.
	for _, s := range job.Steps {
		if s.Name == "generations-before:node-1" || s.Name == "generations-after:node-1" || s.Name == "check-generations" {
			t.Logf("job log %s: %s", s.Name, strings.Join(strings.Fields(string(s.Output)), " "))
		}
	}

	if sawExpr == 0 {
		t.Error("the store never showed the data nodes on different config generations during the rolling restart")
	} else {
		t.Logf("measured: generations disagreed in the store %s after the job started", sawExpr.Round(time.Millisecond))
	}
	if sawPending == 0 {
		t.Error("NdbConfigGenerationMismatch never went pending while the generations disagreed")
	} else {
		t.Logf("measured: NdbConfigGenerationMismatch pending %s after the job started", sawPending.Round(time.Millisecond))
	}

	// The invariants, all along.
	t.Logf("data node states seen every 100 ms: %d polls, %d with a node group down (both nodes not STARTED), at most %d data nodes not STARTED at once",
		seen.polls, seen.groupDown, seen.worst)
	if seen.groupDown != 0 {
		t.Errorf("a node group had both data nodes down in %d polls: %v", seen.groupDown, seen.groupDownAt)
	}
	if seen.worst != 1 {
		t.Errorf("at most %d data nodes were seen not STARTED at once; a rolling restart takes down exactly one at a time", seen.worst)
	}
	if seen.polls < int(took/(200*time.Millisecond)) {
		t.Errorf("only %d polls of the data nodes in %s", seen.polls, took)
	}
	gap, badSecs, total := writeGaps(writers, started, started.Add(took))
	t.Logf("measured: writes through both SQL nodes every 100 ms: %d attempts, longest time without an accepted write through any SQL node %s, %d seconds without one",
		total, gap.Round(time.Millisecond), badSecs)
	for i, w := range writers {
		// Each SQL node was down for its restart: the writer through it
		// saw it, so the merged count above could have failed.
		if n := w.refused(started, started.Add(took)); n == 0 {
			t.Errorf("no write through %s failed during the rolling restart: was it restarted?", sqlNodes[i].Name)
		} else {
			t.Logf("measured: %d writes through %s failed while it restarted", n, sqlNodes[i].Name)
		}
	}
	if badSecs != 0 {
		t.Errorf("%d seconds in which no SQL node accepted a write", badSecs)
	}
	if gap > time.Second {
		t.Errorf("no SQL node accepted a write for %s", gap)
	}

	// Every data node on the new generation, as nines reads it, and the
	// alert gone.
	waitFor(t, time.Now(), 15*time.Second, "every data node on config generation "+strconv.Itoa(gen)+" in the store", func() bool {
		return len(h.query(fmt.Sprintf(`mysql_ndbinfo_nodes_config_generation == %d`, gen))) == 4 && len(h.query(mismatch)) == 0
	})
	waitFor(t, time.Now(), 15*time.Second, "NdbConfigGenerationMismatch gone", func() bool {
		return len(h.activeAlerts(t, "NdbConfigGenerationMismatch")) == 0
	})
	db, err := nd.DB(sqlNodes[0].Name)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	rows, err := db.QueryContext(ctx, "SELECT node_id, config_generation FROM ndbinfo.nodes ORDER BY node_id")
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var got []string
	for rows.Next() {
		var node, g int
		if err := rows.Scan(&node, &g); err != nil {
			t.Fatal(err)
		}
		got = append(got, fmt.Sprintf("%d:%d", node, g))
	}
	if strings.Join(got, " ") != "1:2 2:2 3:2 4:2" {
		t.Errorf("ndbinfo.nodes (node:config_generation) after the rolling restart: %v", got)
	}

	time.Sleep(2 * time.Second)
	to := time.Now().Truncate(time.Second)
	r := h.uptime(t, from, to)
	t.Logf("measured: uptime report %s to %s: good %d bad %d unknown %d", from.Format("15:04:05"), to.Format("15:04:05"), r.Good, r.Bad, r.Unknown)
	if r.Bad != 0 || r.Unknown != 0 {
		t.Errorf("the probe counted %d bad and %d unknown seconds during a rolling restart", r.Bad, r.Unknown)
	}
}

// dataNodeWatch polls the simulator's data node states every 100 ms.
type dataNodeWatch struct {
	mu          sync.Mutex
	polls       int
	groupDown   int
	groupDownAt []string
	worst       int
	stop, done  chan struct{}
}

// watchDataNodes records how often a node group (data nodes 2g+1, 2g+2)
// had no STARTED node, as the simulator's model says.
func watchDataNodes(t *testing.T, nd *sandbox.NDB) *dataNodeWatch {
	w := &dataNodeWatch{stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(w.done)
		tick := time.NewTicker(100 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-w.stop:
				return
			case <-tick.C:
			}
			ctx, cancel := context.WithTimeout(context.Background(), time.Second)
			sts, err := nd.Status(ctx)
			cancel()
			if err != nil && len(sts) == 0 {
				continue
			}
			up := map[int]int{}
			down := 0
			seen := 0
			for _, s := range sts {
				if s.Type != sandbox.NDBTypeData {
					continue
				}
				seen++
				if s.State == "STARTED" {
					up[(s.NodeID-1)/2]++
				} else {
					down++
				}
			}
			if seen != 4 {
				continue
			}
			w.mu.Lock()
			w.polls++
			w.worst = max(w.worst, down)
			for g := 0; g < 2; g++ {
				if up[g] == 0 {
					w.groupDown++
					w.groupDownAt = append(w.groupDownAt, fmt.Sprintf("group %d at %s", g, time.Now().Format("15:04:05.000")))
				}
			}
			w.mu.Unlock()
		}
	}()
	return w
}

// refused counts the writes in [from, to) that failed.
func (w *sqlWriter) refused(from, to time.Time) int {
	w.mu.Lock()
	defer w.mu.Unlock()
	n := 0
	for _, r := range w.log {
		if r.err != nil && !r.at.Before(from) && r.at.Before(to) {
			n++
		}
	}
	return n
}

func (w *dataNodeWatch) end() *dataNodeWatch {
	close(w.stop)
	<-w.done
	return w
}

// writeGaps merges the writers' results in [from, to): the longest time
// between writes accepted through any SQL node, the seconds in which
// none was accepted, and the attempts.
func writeGaps(ws []*sqlWriter, from, to time.Time) (gap time.Duration, badSecs, total int) {
	var ok []time.Time
	secs := map[int64]bool{}
	for _, w := range ws {
		w.mu.Lock()
		for _, r := range w.log {
			if r.at.Before(from) || !r.at.Before(to) {
				continue
			}
			total++
			sec := r.at.Unix()
			if _, seen := secs[sec]; !seen {
				secs[sec] = false
			}
			if r.err == nil {
				ok = append(ok, r.at)
				secs[sec] = true
			}
		}
		w.mu.Unlock()
	}
	sort.Slice(ok, func(i, j int) bool { return ok[i].Before(ok[j]) })
	prev := from
	for _, at := range ok {
		gap = max(gap, at.Sub(prev))
		prev = at
	}
	gap = max(gap, to.Sub(prev))
	for _, good := range secs {
		if !good {
			badSecs++
		}
	}
	return gap, badSecs, total
}
