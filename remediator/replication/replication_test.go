package replication

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nines-project/nines"
	"github.com/nines-project/nines/remediator"
	"github.com/nines-project/nines/replication"
)

// world is an in-memory replication cluster for the runbooks' order of
// actions and refusals; the e2e drills run them on real servers.
type world struct {
	mu    sync.Mutex
	nodes map[string]*replication.Node
	calls []string
	// lb records the load balancer's moves.
	lb []string
	// stuck names a node that never applies its relay log.
	stuck string
}

type fake struct {
	w    *world
	name string
}

func (f fake) Name() string { return f.name }
func (f fake) Observe(context.Context) replication.Node {
	f.w.mu.Lock()
	defer f.w.mu.Unlock()
	n := *f.w.nodes[f.name]
	if n.Link != nil {
		l := *n.Link
		n.Link = &l
	}
	return n
}
func (f fake) call(c string) { f.w.calls = append(f.w.calls, f.name+":"+c) }
func (f fake) Fence(_ context.Context, stop bool) (Fenced, error) {
	f.w.mu.Lock()
	defer f.w.mu.Unlock()
	f.call("fence")
	n := f.w.nodes[f.name]
	if !n.Reachable {
		return Fenced{}, errors.New("connection refused")
	}
	if !n.Running {
		return Fenced{Note: "not running"}, nil
	}
	n.ReadOnly = true
	return Fenced{ReadOnly: true, Binlog: n.Binlog.String(), BinlogPos: n.Binlog.String()}, nil
}
func (f fake) WaitApplied(_ context.Context, until string, _ time.Duration) (string, error) {
	f.w.mu.Lock()
	defer f.w.mu.Unlock()
	f.call("wait-applied")
	if f.w.stuck == f.name {
		return "", errors.New("did not apply within 1 s")
	}
	n := f.w.nodes[f.name]
	n.Binlog = n.Holds()
	return n.Binlog.String(), nil
}
func (f fake) Promote(_ context.Context, semi, open bool) (Promoted, error) {
	f.w.mu.Lock()
	defer f.w.mu.Unlock()
	n := f.w.nodes[f.name]
	n.Link, n.SemiSyncMaster, n.SemiSyncSlave = nil, semi, false
	if open {
		f.call("open")
		n.ReadOnly = false
	} else {
		f.call("promote")
	}
	return Promoted{Binlog: n.Binlog.String(), ReadOnly: n.ReadOnly}, nil
}
func (f fake) Replicate(_ context.Context, source string, semi, fromBinlog bool) error {
	f.w.mu.Lock()
	defer f.w.mu.Unlock()
	n := f.w.nodes[f.name]
	if !n.Reachable {
		f.call("replicate-failed")
		return errors.New("agent unreachable")
	}
	how := "replicate:" + source
	if fromBinlog {
		how += ":from-binlog"
	}
	f.call(how)
	n.ReadOnly, n.SemiSyncSlave = true, semi
	n.Link = &replication.Link{Source: source, IO: "Yes", SQLRunning: true}
	return nil
}

type lb struct{ w *world }

func (l lb) Fence(_ context.Context, node string) error {
	l.w.lb = append(l.w.lb, "out:"+node)
	return nil
}
func (l lb) Admit(_ context.Context, node string) error {
	l.w.lb = append(l.w.lb, "in:"+node)
	return nil
}

func gtid(s string) replication.State {
	st, err := replication.ParseState(s)
	if err != nil {
		panic(err)
	}
	return st
}

// threeNodes: p1 the primary (server 1), r2 and r3 replicas.
func threeNodes() *world {
	w := &world{nodes: map[string]*replication.Node{
		"p1": {Name: "p1", Reachable: true, Running: true, Readable: true, ServerID: 1, Binlog: gtid("0-1-100"), SemiSyncMaster: true},
		"r2": {Name: "r2", Reachable: true, Running: true, Readable: true, ReadOnly: true, ServerID: 2, Binlog: gtid("0-1-98"), SemiSyncSlave: true,
			Link: &replication.Link{Source: "p1", IO: "Yes", SQLRunning: true, Received: gtid("0-1-99")}},
		"r3": {Name: "r3", Reachable: true, Running: true, Readable: true, ReadOnly: true, ServerID: 3, Binlog: gtid("0-1-100"), SemiSyncSlave: true,
			Link: &replication.Link{Source: "p1", IO: "Yes", SQLRunning: true, Received: gtid("0-1-100")}},
	}}
	return w
}

func (w *world) cluster() Cluster {
	return func(string) ([]Node, error) { return []Node{fake{w, "p1"}, fake{w, "r2"}, fake{w, "r3"}}, nil }
}

func (w *world) writers() Writers { return func(string) (Writer, error) { return lb{w}, nil } }

// kill makes p1 dead as its agent and the replicas see it.
func (w *world) kill() {
	w.nodes["p1"].Running, w.nodes["p1"].Readable = false, false
	for _, r := range []string{"r2", "r3"} {
		w.nodes[r].Link.IO = "Connecting"
	}
}

func run(t *testing.T, rb remediator.Runbook, req remediator.ManualRequest) *remediator.Job {
	t.Helper()
	log, err := remediator.OpenJobLog(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	rem, err := remediator.New(remediator.Options{Log: log, Runbooks: []remediator.Runbook{rb},
		Policies: map[string]remediator.Policy{"c1": {Mode: remediator.ModeAuto, MaxRecoveries: 100, Kind: nines.KindReplication}}})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go rem.Run(ctx)
	req.Cluster, req.Runbook = "c1", rb.Name()
	job, err := rem.Start(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		j, err := log.Get(job.ID)
		if err == nil && j.State.Done() {
			return j
		}
		if time.Now().After(deadline) {
			t.Fatalf("job %s did not end", job.ID)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestFailoverFencesBeforePromotingAndOpensLast(t *testing.T) {
	w := threeNodes()
	w.kill()
	j := run(t, Failover{Nodes: w.cluster(), Writers: w.writers()}, remediator.ManualRequest{Target: "p1"})
	if j.State != remediator.JobSucceeded {
		t.Fatalf("job %s: %s", j.State, j.Reason)
	}
	// r3 holds more (0-1-100 against 0-1-99): it is promoted.
	want := "p1:fence r3:wait-applied r3:promote r2:replicate:r3 r3:open"
	if got := strings.Join(w.calls, " "); got != want {
		t.Errorf("actions:\n got %s\nwant %s", got, want)
	}
	if got := strings.Join(w.lb, " "); got != "out:p1 in:r3" {
		t.Errorf("load balancer: %s", got)
	}
	if !w.nodes["r3"].SemiSyncMaster || !w.nodes["r2"].SemiSyncSlave {
		t.Error("semi-sync not turned back on where it was")
	}
}

func TestFailoverDeclinesWithoutAgreement(t *testing.T) {
	w := threeNodes()
	// The appliance lost p1 (the alert), and p1's agent too, but r3 still
	// replicates from it.
	w.nodes["p1"].Reachable, w.nodes["p1"].Running, w.nodes["p1"].Readable = false, false, false
	w.nodes["r2"].Link.IO = "Connecting"
	j := run(t, Failover{Nodes: w.cluster(), Writers: w.writers()}, remediator.ManualRequest{Target: "p1"})
	if j.State != remediator.JobAborted || !strings.Contains(j.Reason, "r3 still replicate") {
		t.Errorf("job %s: %q", j.State, j.Reason)
	}
	if len(w.calls)+len(w.lb) > 0 {
		t.Errorf("acted: %v %v", w.calls, w.lb)
	}
	// A replica down is not a failover either.
	w = threeNodes()
	w.nodes["r2"].Running, w.nodes["r2"].Readable = false, false
	j = run(t, Failover{Nodes: w.cluster()}, remediator.ManualRequest{Target: "r2"})
	if j.State != remediator.JobAborted || !strings.Contains(j.Reason, "not the primary") {
		t.Errorf("replica down: %s %q", j.State, j.Reason)
	}
}

func TestSwitchoverRepointsTheOldPrimaryFromItsBinlog(t *testing.T) {
	w := threeNodes()
	j := run(t, Switchover{Nodes: w.cluster(), Writers: w.writers()}, remediator.ManualRequest{Target: "r2"})
	if j.State != remediator.JobSucceeded {
		t.Fatalf("job %s: %s", j.State, j.Reason)
	}
	want := "p1:fence r2:wait-applied r2:promote r3:replicate:r2 p1:replicate:r2:from-binlog r2:open"
	if got := strings.Join(w.calls, " "); got != want {
		t.Errorf("actions:\n got %s\nwant %s", got, want)
	}
	if got := strings.Join(w.lb, " "); got != "out:p1 in:r2 release:p1" {
		t.Errorf("load balancer: %s", got)
	}
}

func TestRejoinRefusesADivergedOldPrimary(t *testing.T) {
	w := threeNodes()
	w.kill()
	if j := run(t, Failover{Nodes: w.cluster()}, remediator.ManualRequest{Target: "p1"}); j.State != remediator.JobSucceeded {
		t.Fatalf("failover %s: %s", j.State, j.Reason)
	}
	// p1 restarts read-only with two transactions it never sent.
	p1 := w.nodes["p1"]
	p1.Running, p1.Readable, p1.ReadOnly, p1.Binlog = true, true, true, gtid("0-1-102")
	w.calls = nil
	j := run(t, Rejoin{Nodes: w.cluster()}, remediator.ManualRequest{Target: "p1"})
	if j.State != remediator.JobFailed || !strings.Contains(j.Reason, "0-1-101..0-1-102") {
		t.Errorf("diverged: %s %q", j.State, j.Reason)
	}
	if len(w.calls) > 0 {
		t.Errorf("acted on a diverged node: %v", w.calls)
	}
	// Its history a prefix: repointed from its own binlog position.
	p1.Binlog = gtid("0-1-100")
	j = run(t, Rejoin{Nodes: w.cluster(), ReplicatingTimeout: time.Second}, remediator.ManualRequest{Target: "p1"})
	if j.State != remediator.JobSucceeded || strings.Join(w.calls, " ") != "p1:replicate:r3:from-binlog" {
		t.Errorf("prefix: %s %q %v", j.State, j.Reason, w.calls)
	}
}

func TestSwitchoverReopensTheOldPrimaryWhenTheCandidateLags(t *testing.T) {
	w := threeNodes()
	w.stuck = "r2"
	j := run(t, Switchover{Nodes: w.cluster(), Writers: w.writers()}, remediator.ManualRequest{Target: "r2"})
	if j.State != remediator.JobFailed || !strings.Contains(j.Reason, "p1 is the primary again") {
		t.Errorf("job %s: %q", j.State, j.Reason)
	}
	if got := strings.Join(w.calls, " "); got != "p1:fence r2:wait-applied p1:open" {
		t.Errorf("actions: %s", got)
	}
	if p1 := w.nodes["p1"]; p1.ReadOnly || strings.Join(w.lb, " ") != "out:p1 in:p1" {
		t.Errorf("p1 not reopened: read_only %v, load balancer %v", p1.ReadOnly, w.lb)
	}
}

func (l lb) Release(_ context.Context, node string) error {
	l.w.lb = append(l.w.lb, "release:"+node)
	return nil
}

func TestReseedDecision(t *testing.T) {
	ns := func(t *testing.T) []replication.Node {
		p := replication.Node{Name: "h:1", Reachable: true, Running: true, Readable: true, ServerID: 1, Binlog: mustState(t, "0-1-20")}
		r2 := replication.Node{Name: "h:2", Reachable: true, Running: true, Readable: true, ReadOnly: true, ServerID: 2, Binlog: mustState(t, "0-1-20"),
			Link: &replication.Link{Source: "h:1", IO: "Yes", SQLRunning: true, Received: mustState(t, "0-1-20")}}
		// h:3 stopped replicating at 10 and wrote 0-3-11 itself.
		r3 := replication.Node{Name: "h:3", Reachable: true, Running: true, Readable: true, ServerID: 3, Binlog: mustState(t, "0-1-10,0-3-11"),
			Link: &replication.Link{Source: "h:1", IO: "No", Received: mustState(t, "0-1-10")}}
		return []replication.Node{p, r2, r3}
	}
	p, err := decideReseed("h:3", ns(t), "", false)
	if err != nil {
		t.Fatal(err)
	}
	if p.Primary != "h:1" || p.Donor.Node != "h:2" || !p.Fence || strings.Join(p.Diverged, ",") != "0-3-1..0-3-11" {
		t.Errorf("plan %+v", p)
	}
	if note := divergedNote("h:3", p, nil, errors.New("no binlog")); !strings.Contains(note, "0-3-1..0-3-11") || !strings.Contains(note, "no binlog") {
		t.Errorf("the diverged note does not list the ranges and why: %s", note)
	}
	exact := &DivergedGTIDs{GTIDs: []string{"0-3-11"}, Count: 1, Files: []string{"binlog.000002"}}
	if note := divergedNote("h:3", p, exact, nil); !strings.Contains(note, "1 transaction(s)") || !strings.Contains(note, ": 0-3-11;") {
		t.Errorf("the diverged note does not list the exact GTIDs: %s", note)
	}

	var refusal *remediator.Refusal
	if _, err := decideReseed("h:1", ns(t), "", true); !errors.As(err, &refusal) || !strings.Contains(err.Error(), "is the primary") {
		t.Errorf("the primary as target: %v, want a refusal", err)
	}
	if _, err := decideReseed("h:3", ns(t), "h:1", false); !errors.As(err, &refusal) {
		t.Errorf("the primary as donor: %v, want a refusal", err)
	}
	// A healthy replica is rebuilt only when forced.
	var abort *remediator.Abort
	if _, err := decideReseed("h:2", ns(t), "", false); !errors.As(err, &abort) {
		t.Errorf("a replica that is not diverged: %v, want an abort", err)
	}
	// No donor left but the primary: refused.
	two := ns(t)
	two[1].Link.IO = "Connecting"
	if _, err := decideReseed("h:3", two, "", false); !errors.As(err, &refusal) || !strings.Contains(err.Error(), "no healthy replica") {
		t.Errorf("no donor: %v", err)
	}
	// An unreadable target is rebuilt only when forced: its GTIDs are unknown.
	down := ns(t)
	down[2] = replication.Node{Name: "h:3", Reachable: true, Error: "the server is not running"}
	if _, err := decideReseed("h:3", down, "", false); !errors.As(err, &refusal) {
		t.Errorf("an unreadable target: %v, want a refusal", err)
	}
	if p, err := decideReseed("h:3", down, "", true); err != nil || p.Note == "" {
		t.Errorf("an unreadable target, forced: %+v %v", p, err)
	}
}

func TestReseedVerify(t *testing.T) {
	pv := replication.Node{Name: "h:1", Readable: true, Binlog: mustState(t, "0-1-25")}
	ok := replication.Node{Name: "h:3", Readable: true, ReadOnly: true, Binlog: mustState(t, "0-1-25"),
		Link: &replication.Link{Source: "h:1", IO: "Yes", SQLRunning: true, Received: mustState(t, "0-1-25")}}
	if _, err := verifyReseed(ok, pv, "0-1-20", reseedPlan{Primary: "h:1"}); err != nil {
		t.Errorf("a good rebuild: %v", err)
	}
	stale := ok
	stale.Binlog = mustState(t, "0-1-25,0-3-11")
	if _, err := verifyReseed(stale, pv, "0-1-20", reseedPlan{Primary: "h:1"}); err == nil || !strings.Contains(err.Error(), "0-3-11") {
		t.Errorf("a diverged GTID left: %v", err)
	}
	if _, err := verifyReseed(ok, pv, "0-1-30", reseedPlan{Primary: "h:1"}); err == nil {
		t.Error("short of the backup point: want an error")
	}
}

func mustState(t *testing.T, s string) replication.State {
	t.Helper()
	v, err := replication.ParseState(s)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func TestReseedPrepare(t *testing.T) {
	rb := Reseed{}
	if _, _, err := rb.Prepare("c1", "", nil); err == nil {
		t.Error("no node: want an error")
	}
	if _, _, err := rb.Prepare("c1", "h:3", map[string]string{"dir": "/x"}); err == nil || !strings.Contains(err.Error(), "unknown parameter") {
		t.Errorf("unknown parameter: %v", err)
	}
	if _, _, err := rb.Prepare("c1", "h:3", map[string]string{ParamDonor: "h:3"}); err == nil {
		t.Error("the node as its own donor: want an error")
	}
	if p, target, err := rb.Prepare("c1", "h:3", map[string]string{ParamDonor: "h:2"}); err != nil || target != "h:3" || p[ParamDonor] != "h:2" {
		t.Errorf("a good request: %v %q %v", p, target, err)
	}
	if !rb.Preemptible() || rb.Timeout() < time.Hour {
		t.Error("a reseed must give way to a repair and may run for hours")
	}
}
