//go:build cluster

package e2e

import (
	"database/sql"
	"encoding/json"
	"fmt"
	"github.com/chromedp/chromedp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nines-project/nines/sandbox"
)

// Bounds of the application's write stall through HAProxy per step of a
// rolling restart. A node HAProxy does not send writes to costs the
// writer nothing but a commit held back while the cluster changes its
// view; the writer's own step moves the clients to a backup (fenced
// first, so no check has to fail) and back when it is up again, each
// one reconnect: the kill -9 drill's bound is the ceiling.
const (
	rollingOtherStallBound  = 2 * time.Second
	rollingWriterStallBound = writerKillStallBound
)

// TestGaleraRollingRestart is issue 16's acceptance drill: a 3-node
// sandbox behind HAProxy, an application of four clients writing
// through HAProxy's writer listener, and galera-rolling-restart started
// through the API as the console starts it (kind). While it runs, a
// checker reads every node every 100 ms: never two Primary components,
// never fewer than 2 members of the Primary component and never no node
// Synced (not 2 Synced: an IST's donor shows Donor/Desynced, then Joined,
// while it serves the joiner, as every IST's donor does). At the end every node was restarted
// exactly once (a new pid, one stop in the job log), by IST, the
// writer's node last; all are Synced; no acknowledged write is missing
// on any node; and each step's stall is printed, as the application saw
// it and as the job log has it from the probe.
//
// A fresh sandbox, not the shared one: the shared sandbox has no HAProxy,
// and the order (writer last) and the stall the application sees are
// what this drill is about.
func TestGaleraRollingRestart(t *testing.T) {
	t0 := time.Now()
	defer func() { t.Logf("measured: wall time %s", time.Since(t0).Round(time.Millisecond)) }()
	sb := startSandbox(t, sandbox.Options{ClusterName: "rolling", HAProxy: true})
	h := startHealer(t, sb, remediationOpts{mode: "auto", extra: consoleUserYAML(t, "olga", "operator", "operator-password-1")})
	waitProbeWrites(t, h.appliance, sb.ClusterName(), 1, 3)
	nodes := sb.Nodes()
	pidBefore := map[string]int{}
	byAddr := map[string]string{}
	ports := map[int]string{}
	for _, n := range nodes {
		pid, err := sb.Pid(n.Name)
		if err != nil || pid == 0 {
			t.Fatalf("pid of %s: %d %v", n.Name, pid, err)
		}
		pidBefore[n.Name] = pid
		byAddr[n.Address()] = n.Name
		ports[n.SQLPort] = n.Name
	}
	chk := startSplitBrainChecker(t, sb)
	synced := watchSynced(chk)
	w := startHAProxyWriter(t, sb, 4)
	waitFor(t, time.Now(), 20*time.Second, "100 writes acknowledged through HAProxy", func() bool { return len(w.snapshot()) >= 100 })

	// Started as an operator would: the cluster page's job form in
	// Chromium, and the question that says what a rolling restart does.
	b := newBrowser(t, h.base)
	b.do("open the cluster page", chromedp.Navigate(h.base+"/#/cluster/"+sb.ClusterName()))
	b.login("olga", "operator-password-1")
	b.do("ask for a rolling restart through the form",
		chromedp.WaitVisible(chromedp.CSS(`#start-job select[name=kind]`)),
		chromedp.SetValue(chromedp.CSS(`#start-job select[name=kind]`), "galera-rolling-restart"),
		chromedp.Click(chromedp.CSS(`#start-job button`)),
		chromedp.WaitVisible(chromedp.CSS(`dialog#confirm[open]`)))
	if q := eval[string](b, `document.querySelector('dialog#confirm p').textContent`); !strings.Contains(q, "Restart every node of "+sb.ClusterName()) {
		t.Errorf("the confirmation %q does not say what will happen", q)
	}
	b.screenshot("rolling-restart-confirm")
	b.do("confirm", chromedp.Click(chromedp.CSS(`dialog#confirm button[value=yes]`)))
	started := time.Now()
	var job jobView
	waitFor(t, started, 3*time.Minute, "the rolling restart to end", func() bool {
		job = jobView{}
		for _, j := range h.jobs(t) {
			if j.Runbook == "galera-rolling-restart" && job.ID == "" {
				job = j
			}
		}
		return job.State != "" && job.State != "running" && job.State != "pending"
	})
	waitFor(t, time.Now(), 10*time.Second, "the console's job list to show the rolling restart ended", func() bool {
		return eval[bool](b, `[...document.querySelectorAll('#jobs details')].some(d => d.textContent.includes('galera-rolling-restart') && d.textContent.includes('by olga') && d.dataset.jobState !== 'running' && d.dataset.jobState !== 'pending')`)
	})
	b.screenshot("rolling-restart-done")
	took := time.Since(started)
	var steps []string
	for _, s := range job.Steps {
		steps = append(steps, s.Name+":"+s.State)
	}
	if job.State != "succeeded" {
		t.Fatalf("job %s %s: %s\nsteps: %v", job.ID, job.State, job.Reason, steps)
	}
	t.Logf("measured: rolling restart of 3 nodes took %s", took.Round(time.Millisecond))

	// Every node stopped once, the writer's (n1, HAProxy's active server)
	// last, fenced before its stop and released after it was Synced.
	var acts []string
	for _, s := range job.Steps {
		if s.Kind == "act" && s.State == "done" && !strings.HasPrefix(s.Name, "recover-position:") {
			name, addr, _ := strings.Cut(s.Name, ":")
			acts = append(acts, name+":"+byAddr[addr])
		}
	}
	want := "stop:n2 start:n2 stop:n3 start:n3 fence-writer:n1 stop:n1 start:n1 release-writer:n1"
	if got := strings.Join(acts, " "); got != want {
		t.Errorf("acts in the job log:\n got %s\nwant %s", got, want)
	}

	// A new pid on every node, the one the job log recorded after, and
	// IST, not SST; the version before and after.
	output := func(name string, into any) {
		t.Helper()
		for _, s := range job.Steps {
			if s.Name == name {
				if err := json.Unmarshal(s.Output, into); err != nil {
					t.Fatalf("job step %s: %s: %v", name, s.Output, err)
				}
				return
			}
		}
		t.Fatalf("no step %s in the job log: %v", name, steps)
	}
	type info struct {
		Pid           int
		Version       string
		Uptime        int64  `json:"uptime_seconds"`
		StateTransfer string `json:"state_transfer"`
		Line          string `json:"state_transfer_line"`
	}
	for _, n := range nodes {
		var before, after info
		output("before:"+n.Address(), &before)
		output("after:"+n.Address(), &after)
		pid, err := sb.Pid(n.Name)
		if err != nil {
			t.Fatal(err)
		}
		if before.Pid != pidBefore[n.Name] || after.Pid != pid || pid == pidBefore[n.Name] {
			t.Errorf("%s: pid %d before the job, %d now; the job log says %d before, %d after", n.Name, pidBefore[n.Name], pid, before.Pid, after.Pid)
		}
		if before.Version == "" || after.Version != before.Version {
			t.Errorf("%s: version %q before, %q after (the same binary)", n.Name, before.Version, after.Version)
		}
		if after.StateTransfer != "IST" {
			t.Errorf("%s rejoined by %q, want IST (%s)", n.Name, after.StateTransfer, after.Line)
		}
		t.Logf("job log %s: pid %d -> %d, %s -> %s, uptime %ds before, joined by %s (%s)", n.Name, before.Pid, after.Pid, before.Version, after.Version, before.Uptime, after.StateTransfer, after.Line)
	}

	// The stall of each step, from "before" (the node about to go) to
	// "restarted" (Synced again): the application's longest time without
	// an acknowledged write through HAProxy, and the probe's from the job
	// log.
	end := func(name string) time.Time {
		for _, s := range job.Steps {
			if s.Name == name {
				return s.EndedAt
			}
		}
		t.Fatalf("no step %s in the job log", name)
		return time.Time{}
	}
	writes := w.snapshot()
	for _, n := range []string{"n2", "n3", "n1"} {
		node, err := sb.Node(n)
		if err != nil {
			t.Fatal(err)
		}
		addr := node.Address()
		from, to := end("before:"+addr), end("restarted:"+addr)
		gap := longestGap(writes, from, to)
		var probe struct {
			Bad    float64 `json:"bad_seconds"`
			Failed float64 `json:"failed_writes"`
		}
		output("stall:"+addr, &probe)
		bound := rollingOtherStallBound
		if n == "n1" {
			bound = rollingWriterStallBound
		}
		t.Logf("measured: step %s (%s): took %s; application through HAProxy: longest time without an acknowledged write %s (bound %s); probe (job log): %g bad seconds, %g failed writes",
			n, map[bool]string{true: "HAProxy's writer", false: "not the writer"}[n == "n1"], to.Sub(from).Round(time.Millisecond), gap.Round(time.Millisecond), bound, probe.Bad, probe.Failed)
		if gap > bound {
			t.Errorf("step %s: the application wrote nothing for %s, bound %s", n, gap.Round(time.Millisecond), bound)
		}
	}

	w.stop()
	chk.markHeal(time.Now())
	chk.waitHealed(t, 10*time.Second)
	// An IST has a donor, which goes Donor/Desynced while it serves it
	// (MariaDB runs the SST script in bypass mode), then Joined until it
	// caught up, then Synced, a member of the Primary component all along:
	// while a node rejoins, only one may be strictly Synced. So the
	// invariant is two members of the Primary component and one Synced;
	// how often a donor (or Joined) was seen is printed.
	seen := synced.end()
	t.Logf("measured: %d polls of every node during the job: at least %d members of the Primary component at every one, at least %d strictly Synced; a donor (Donor/Desynced or Joined) seen in %d polls",
		seen.polls, seen.worst, seen.worstSynced, seen.donorPolls)
	if seen.worst < 2 {
		t.Errorf("only %d nodes were in the Primary component at a poll during the rolling restart (%s); it takes down one at a time", seen.worst, seen.worstAt)
	}
	if seen.worstSynced < 1 {
		t.Error("no node was Synced at some poll: no writer")
	}
	checkHAProxyWrites(t, sb, w, ports)
	chk.check(t)
}

// longestGap is the longest time in [from, to] without an acknowledged
// write.
func longestGap(writes []hapWrite, from, to time.Time) time.Duration {
	prev := from
	var gap time.Duration
	for _, x := range writes {
		if x.acked.Before(from) {
			continue
		}
		if x.acked.After(to) {
			break
		}
		gap = max(gap, x.acked.Sub(prev))
		prev = x.acked
	}
	return max(gap, to.Sub(prev))
}

// syncedWatch counts, at each of the split-brain checker's polls, the
// nodes Synced in a Primary component.
type syncedWatch struct {
	stop, done  chan struct{}
	mu          sync.Mutex
	worst       int // members of the Primary component
	worstSynced int
	worstAt     string
	polls       int
	donorPolls  int
}

func watchSynced(c *splitBrainChecker) *syncedWatch {
	s := &syncedWatch{stop: make(chan struct{}), done: make(chan struct{}), worst: len(c.dbs), worstSynced: len(c.dbs)}
	go func() {
		defer close(s.done)
		tick := time.NewTicker(100 * time.Millisecond)
		defer tick.Stop()
		seen := -1
		for {
			select {
			case <-s.stop:
				return
			case <-tick.C:
			}
			c.mu.Lock()
			polls, n, synced, donor := c.polls, 0, 0, false
			var views []string
			for name, v := range c.last {
				if v.ok && v.primary {
					n++
				}
				if v.ok && v.primary && v.synced {
					synced++
				}
				// The donor, and then Joined while it catches up.
				donor = donor || (v.ok && v.primary && (v.state == "2" || v.state == "3"))
				views = append(views, fmt.Sprintf("%s ok=%v primary=%v wsrep_local_state=%s size=%d", name, v.ok, v.primary, v.state, v.size))
			}
			c.mu.Unlock()
			if polls == seen || polls == 0 {
				continue
			}
			seen = polls
			s.mu.Lock()
			s.polls++
			if donor {
				s.donorPolls++
			}
			s.worstSynced = min(s.worstSynced, synced)
			if n < s.worst {
				s.worst, s.worstAt = n, fmt.Sprintf("%s: %v", time.Now().Format("15:04:05.000"), views)
			}
			s.mu.Unlock()
		}
	}()
	return s
}

func (s *syncedWatch) end() *syncedWatch {
	close(s.stop)
	<-s.done
	s.mu.Lock()
	defer s.mu.Unlock()
	return s
}

// checkHAProxyWrites fails t unless every write w saw acknowledged is on
// every node, recorded with the node that acknowledged it.
func checkHAProxyWrites(t *testing.T, sb *sandbox.Sandbox, w *hapWriter, ports map[int]string) {
	t.Helper()
	writes := w.snapshot()
	type key struct {
		client int
		seq    int64
	}
	for _, n := range sb.Nodes() {
		db, err := sb.DB(n.Name)
		if err != nil {
			t.Fatal(err)
		}
		have := map[key]int{}
		err = causalRead(sb, db, func(r *sql.Rows) error {
			var k key
			var port int
			if err := r.Scan(&k.client, &k.seq, &port); err != nil {
				return err
			}
			have[k] = port
			return nil
		}, "SELECT client, seq, port FROM "+hapTable)
		db.Close()
		if err != nil {
			t.Fatalf("read %s on %s: %v", hapTable, n.Name, err)
		}
		var lost []string
		for _, x := range writes {
			if p, ok := have[key{x.client, x.seq}]; !ok || p != x.port {
				lost = append(lost, fmt.Sprintf("%d/%d", x.client, x.seq))
			}
		}
		if len(lost) > 0 {
			t.Errorf("%s lacks (or has on another node) %d of the %d acknowledged writes: %v", n.Name, len(lost), len(writes), lost[:min(len(lost), 10)])
		}
	}
	byNode := map[string]int{}
	for _, x := range writes {
		byNode[ports[x.port]]++
	}
	w.mu.Lock()
	errs := w.errs
	w.mu.Unlock()
	t.Logf("measured: %d writes acknowledged through HAProxy (%v), checked on all 3 nodes; failed attempts: %v", len(writes), byNode, errs)
}
