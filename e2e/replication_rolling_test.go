//go:build cluster

package e2e

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/nines-project/nines/sandbox"
)

// TestReplicationRollingRestart: a primary and two replicas behind
// HAProxy, an application writing through HAProxy's writer listener,
// and replication-rolling-restart started through the API. The replicas
// go first, one at a time, then a switchover to the most advanced one,
// then the old primary, which ends a replica of the new primary. Every
// node restarted exactly once (a new pid, one stop), writes blocked at
// most the switchover's bound (2 s) and not at all while a replica
// restarts, none lost, and each step's stall printed.
func TestReplicationRollingRestart(t *testing.T) {
	t0 := time.Now()
	defer func() { t.Logf("measured: wall time %s", time.Since(t0).Round(time.Millisecond)) }()
	sb := startReplicationSandbox(t, sandbox.Options{ClusterName: "replroll", HAProxy: true})
	h := startHealer(t, sb, remediationOpts{mode: "auto"})
	pidBefore := map[string]int{}
	byAddr := map[string]string{}
	for _, n := range sb.Nodes() {
		pid, err := sb.Pid(n.Name)
		if err != nil || pid == 0 {
			t.Fatalf("pid of %s: %d %v", n.Name, pid, err)
		}
		pidBefore[n.Name] = pid
		byAddr[n.Address()] = n.Name
	}
	w := startDrillWriterAt(t, sb, []writeTarget{appWriter(t, sb)})
	w.waitAcked(t, 50, 20*time.Second)

	started := time.Now()
	code, body, err := h.post("/api/v1/jobs", map[string]string{"cluster": sb.ClusterName(), "kind": "replication-rolling-restart"})
	if err != nil || code != http.StatusAccepted {
		t.Fatalf("POST /api/v1/jobs replication-rolling-restart: %d %s %v", code, body, err)
	}
	var accepted struct{ Data jobView }
	if err := json.Unmarshal(body, &accepted); err != nil {
		t.Fatal(err)
	}
	var job jobView
	waitFor(t, started, 3*time.Minute, "the rolling restart to end", func() bool {
		for _, j := range h.jobs(t) {
			if j.ID == accepted.Data.ID {
				job = j
			}
		}
		return job.State != "" && job.State != "running" && job.State != "pending"
	})
	took := time.Since(started)
	if job.State != "succeeded" {
		t.Fatalf("job %s %s: %s\nsteps: %s", job.ID, job.State, job.Reason, stepList(job))
	}
	t.Logf("measured: rolling restart of a primary and 2 replicas took %s", took.Round(time.Millisecond))

	var stops []string
	for _, s := range job.Steps {
		if s.Kind == "act" && s.State == "done" && strings.HasPrefix(s.Name, "stop:") {
			stops = append(stops, byAddr[strings.TrimPrefix(s.Name, "stop:")])
		}
	}
	if got := strings.Join(stops, " "); got != "n2 n3 n1" {
		t.Errorf("stops in the job log: %s, want the replicas n2 n3, then the old primary n1", got)
	}
	for _, n := range sb.Nodes() {
		pid, err := sb.Pid(n.Name)
		if err != nil || pid == 0 || pid == pidBefore[n.Name] {
			t.Errorf("%s: pid %d before, %d after (%v): not restarted", n.Name, pidBefore[n.Name], pid, err)
		}
	}
	var primary sandbox.Node
	for _, n := range sb.Nodes() {
		if writableSource(t, sb, n.Name) {
			primary = n
		}
	}
	if primary.Name == "" || primary.Name == "n1" {
		t.Fatalf("primary after the rolling restart: %q, want a former replica", primary.Name)
	}
	for _, n := range sb.Nodes() {
		if n.Name != primary.Name && !replicatesFrom(t, sb, n.Name, primary) {
			t.Errorf("%s does not replicate from the new primary %s", n.Name, primary.Name)
		}
	}

	end := func(name string) time.Time {
		for _, s := range job.Steps {
			if s.Name == name {
				return s.EndedAt
			}
		}
		t.Fatalf("no step %s in the job log: %s", name, stepList(job))
		return time.Time{}
	}
	w.mu.Lock()
	acks := append([]time.Time(nil), w.ackAt...)
	w.mu.Unlock()
	gap := func(from, to time.Time) time.Duration {
		prev, g := from, time.Duration(0)
		for _, at := range acks {
			if at.Before(from) {
				continue
			}
			if at.After(to) {
				break
			}
			g, prev = max(g, at.Sub(prev)), at
		}
		return max(g, to.Sub(prev))
	}
	for _, step := range []struct{ what, from, to string }{
		{"replica n2", "before:" + sb.Nodes()[1].Address(), "restarted:" + sb.Nodes()[1].Address()},
		{"replica n3", "before:" + sb.Nodes()[2].Address(), "restarted:" + sb.Nodes()[2].Address()},
		{"switchover to " + primary.Name, "switchover", "switched-over"},
		{"old primary n1", "switched-over", "restarted:" + sb.Nodes()[0].Address()},
	} {
		from, to := end(step.from), end(step.to)
		g := gap(from, to)
		t.Logf("measured: step %s: took %s; application through HAProxy: longest time without an acknowledged write %s", step.what, to.Sub(from).Round(time.Millisecond), g.Round(time.Millisecond))
		if g > 2*time.Second {
			t.Errorf("step %s: writes blocked %s, bound 2s", step.what, g.Round(time.Millisecond))
		}
	}
	w.check(t)
}
