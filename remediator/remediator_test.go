package remediator

import (
	"context"
	"errors"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nines-project/nines"
)

// countingRunbook acts once per run and counts its runs and acts.
type countingRunbook struct {
	name string
	runs atomic.Int32
	acts atomic.Int32
	// block, when set, holds the run until closed.
	block chan struct{}
}

func (c *countingRunbook) Name() string { return c.name }
func (c *countingRunbook) Run(ctx context.Context, r *Run) error {
	c.runs.Add(1)
	if _, err := Act(ctx, r, "act-once", nil, func(context.Context) (string, error) {
		c.acts.Add(1)
		return "done", nil
	}); err != nil {
		return err
	}
	if c.block != nil {
		select {
		case <-c.block:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return nil
}

func alert(fp, cluster, runbook string, startsAt time.Time) WebhookMessage {
	return WebhookMessage{Alerts: []WebhookAlert{{Status: "firing", Fingerprint: fp, StartsAt: startsAt,
		Labels: map[string]string{"alertname": "X", "cluster": cluster, "remediation": runbook, "instance": "n1"}}}}
}

func newTest(t testing.TB, pol Policy, rbs ...Runbook) (*Remediator, *JobLog, context.CancelFunc) {
	t.Helper()
	return startTest(t, Options{Runbooks: rbs, Policies: map[string]Policy{"c1": pol}, Settle: 10 * time.Millisecond, RetryDelay: 100 * time.Millisecond})
}

// startTest runs a remediator on o, with a job log of its own, until
// the test ends (or cancel).
func startTest(t testing.TB, o Options) (*Remediator, *JobLog, context.CancelFunc) {
	t.Helper()
	log, err := OpenJobLog(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	o.Log = log
	r, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { defer wg.Done(); r.Run(ctx) }()
	t.Cleanup(func() { cancel(); wg.Wait() })
	return r, log, cancel
}

func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within 5 s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func jobs(t *testing.T, log *JobLog) []*Job {
	t.Helper()
	js, err := log.List()
	if err != nil {
		t.Fatal(err)
	}
	return js
}

func TestRepeatedNotificationStartsOneJob(t *testing.T) {
	rb := &countingRunbook{name: "rb"}
	r, log, _ := newTest(t, Policy{Mode: ModeAuto}, rb)
	at := time.Now()
	for i := 0; i < 5; i++ {
		r.Receive(alert("fp1", "c1", "rb", at))
		time.Sleep(30 * time.Millisecond)
	}
	eventually(t, "one job done", func() bool { js := jobs(t, log); return len(js) == 1 && js[0].State.Done() })
	time.Sleep(300 * time.Millisecond)
	if n := rb.runs.Load(); n != 1 {
		t.Errorf("runbook ran %d times for one alert", n)
	}
	// A new occurrence (new start) is a new job.
	r.Receive(alert("fp1", "c1", "rb", at.Add(time.Minute)))
	eventually(t, "second job", func() bool { return rb.runs.Load() == 2 })
}

func TestOneJobPerClusterAndPriority(t *testing.T) {
	low := &countingRunbook{name: "low", block: make(chan struct{})}
	high := &countingRunbook{name: "high"}
	r, log, _ := newTest(t, Policy{Mode: ModeAuto}, high, low)
	now := time.Now()
	msg := alert("a", "c1", "low", now)
	msg.Alerts = append(msg.Alerts, alert("b", "c1", "high", now).Alerts...)
	r.Receive(msg)
	eventually(t, "high ran first", func() bool { return high.runs.Load() == 1 })
	eventually(t, "then low", func() bool { return low.runs.Load() == 1 })
	if _, err := r.Start(context.Background(), ManualRequest{Cluster: "c1", Runbook: "high"}); err == nil || !strings.Contains(err.Error(), "already has a running job") {
		t.Errorf("second job on a busy cluster: %v", err)
	}
	close(low.block)
	eventually(t, "both done", func() bool {
		js := jobs(t, log)
		return len(js) == 2 && js[0].State == JobSucceeded && js[1].State == JobSucceeded
	})
}

func TestModeOffSaysWhy(t *testing.T) {
	rb := &countingRunbook{name: "rb"}
	r, log, _ := newTest(t, Policy{Mode: ModeOff}, rb)
	r.Receive(alert("fp", "c1", "rb", time.Now()))
	eventually(t, "decision", func() bool { return strings.Contains(r.Status()[0].LastDecision, "remediation is off") })
	if rb.runs.Load() != 0 || len(jobs(t, log)) != 0 {
		t.Error("acted with remediation off")
	}
}

func TestAntiFlappingHalts(t *testing.T) {
	rb := &countingRunbook{name: "rb"}
	r, _, _ := newTest(t, Policy{Mode: ModeAuto, MaxRecoveries: 2, Window: time.Hour}, rb)
	start := time.Now()
	for i := 0; i < 3; i++ {
		r.Receive(alert("fp", "c1", "rb", start.Add(time.Duration(i)*time.Minute)))
		want := int32(min(i+1, 2))
		eventually(t, "run", func() bool { return rb.runs.Load() == want && r.Status()[0].RunningJob == "" })
	}
	eventually(t, "halted", func() bool { return r.Status()[0].Halted != "" })
	if rb.runs.Load() != 2 {
		t.Errorf("ran %d times, limit 2", rb.runs.Load())
	}
	found := false
	for _, m := range r.Metrics() {
		if m.Name == "nines_remediation_halted" && m.Value == 1 {
			found = true
		}
	}
	if !found {
		t.Error("nines_remediation_halted is not 1")
	}
	if err := r.Resume("c1"); err != nil {
		t.Fatal(err)
	}
	r.Receive(alert("fp", "c1", "rb", start.Add(10*time.Minute)))
	eventually(t, "runs again after resume", func() bool { return rb.runs.Load() == 3 })
}

func TestResumeNeverRepeatsADoneStep(t *testing.T) {
	dir := t.TempDir()
	log, _ := OpenJobLog(dir)
	// The log as an appliance killed mid-job left it: step done, job running.
	now := time.Now()
	j := &Job{ID: "j1", Cluster: "c1", Runbook: "rb", State: JobRunning, CreatedAt: now, StartedAt: now,
		Steps: []Step{{Name: "act-once", Kind: "act", State: StepDone, Output: []byte(`"done"`), StartedAt: now, EndedAt: now, Attempts: 1}}}
	if err := log.Save(j); err != nil {
		t.Fatal(err)
	}
	rb := &countingRunbook{name: "rb"}
	r, err := New(Options{Log: log, Runbooks: []Runbook{rb}, Policies: map[string]Policy{"c1": {}}})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go r.Run(ctx)
	eventually(t, "resumed job done", func() bool { got, _ := log.Get("j1"); return got != nil && got.State == JobSucceeded })
	got, _ := log.Get("j1")
	if rb.acts.Load() != 0 || got.Resumes != 1 || got.Steps[0].Attempts != 1 {
		t.Errorf("acts %d, resumes %d, attempts %d: a done step ran again", rb.acts.Load(), got.Resumes, got.Steps[0].Attempts)
	}
}

func TestPruneKeepsRecentAndUnfinishedJobs(t *testing.T) {
	log, err := OpenJobLog(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	for _, j := range []*Job{
		{ID: "old", State: JobSucceeded, CreatedAt: now.Add(-40 * 24 * time.Hour), EndedAt: now.Add(-40 * 24 * time.Hour)},
		{ID: "recent", State: JobFailed, CreatedAt: now.Add(-time.Hour), EndedAt: now.Add(-time.Hour)},
		{ID: "stuck", State: JobRunning, CreatedAt: now.Add(-40 * 24 * time.Hour)},
	} {
		if err := log.Save(j); err != nil {
			t.Fatal(err)
		}
	}
	n, err := log.Prune(now.Add(-30 * 24 * time.Hour))
	if err != nil || n != 1 {
		t.Fatalf("Prune = %d, %v; want 1", n, err)
	}
	js := jobs(t, log)
	if len(js) != 2 {
		t.Fatalf("left %d jobs, want recent and stuck", len(js))
	}
	if _, err := log.Get("old"); err == nil {
		t.Error("the old job is still there")
	}
}

// failingRunbook fails its first fails runs, then succeeds.
type failingRunbook struct {
	runs  atomic.Int32
	fails int32
}

func (f *failingRunbook) Name() string { return "flaky" }
func (f *failingRunbook) Run(ctx context.Context, r *Run) error {
	n := f.runs.Add(1)
	_, err := Act(ctx, r, "act", nil, func(context.Context) (string, error) {
		if n <= f.fails {
			return "", errors.New("cluster still settling")
		}
		return "ok", nil
	})
	return err
}

func TestFailedJobIsRetriedWhileTheAlertFires(t *testing.T) {
	rb := &failingRunbook{fails: 1}
	r, _, _ := newTest(t, Policy{Mode: ModeAuto}, rb)
	r.Receive(alert("fp", "c1", "flaky", time.Now()))
	eventually(t, "a retry after the failure", func() bool { return rb.runs.Load() == 2 })

	// A runbook that keeps failing is tried retryFailed times, no more.
	rb2 := &failingRunbook{fails: 100}
	r2, _, _ := newTest(t, Policy{Mode: ModeAuto, MaxRecoveries: 100}, rb2)
	r2.Receive(alert("fp", "c1", "flaky", time.Now()))
	eventually(t, "all attempts", func() bool { return rb2.runs.Load() == retryFailed+1 })
	time.Sleep(time.Second)
	if n := rb2.runs.Load(); n != retryFailed+1 {
		t.Errorf("ran %d times, want %d", n, retryFailed+1)
	}
}

// TestFailedLogSaveActsNothing: when the job log cannot be written (its
// directory replaced by a file, which fails even for root), the job fails
// before its act step runs, and the status says why.
func TestFailedLogSaveActsNothing(t *testing.T) {
	dir := t.TempDir() + "/jobs"
	log, err := OpenJobLog(dir)
	if err != nil {
		t.Fatal(err)
	}
	rb := &countingRunbook{name: RunbookGaleraNodeRejoin}
	r, err := New(Options{Log: log, Runbooks: []Runbook{rb}, Policies: map[string]Policy{"c1": {}}, Settle: 10 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if err := os.RemoveAll(dir); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(dir, []byte("not a directory"), 0o600); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); r.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	r.Receive(alert("fp", "c1", RunbookGaleraNodeRejoin, time.Now()))
	eventually(t, "the failure in the status", func() bool {
		return strings.Contains(r.Status()[0].LastDecision, "the job log cannot be written")
	})
	if n := rb.acts.Load(); n != 0 {
		t.Errorf("acted %d times without a job log", n)
	}
	if d := r.Status()[0].LastDecision; !strings.Contains(d, "failed") {
		t.Errorf("decision %q does not say the job failed", d)
	}
}

// TestKnownSeriesStartAtZero: a fresh remediator exports its job counter
// at 0 for every runbook of a configured cluster, so increase() sees the
// first failure and panels show 0, not "No data".
func TestKnownSeriesStartAtZero(t *testing.T) {
	log, err := OpenJobLog(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	r, err := New(Options{Log: log, Runbooks: []Runbook{&countingRunbook{name: RunbookGaleraQuorumRecovery}, &countingRunbook{name: RunbookGaleraNodeRejoin}},
		Policies: map[string]Policy{"billing": {Kind: nines.KindGalera}, "iptv": {Kind: nines.KindReplication}}})
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]float64{}
	for _, m := range r.Metrics() {
		key := m.Name
		for _, l := range m.Labels {
			key += "," + l.Name + "=" + l.Value
		}
		got[key] = m.Value
	}
	for _, rb := range []string{RunbookGaleraQuorumRecovery, RunbookGaleraNodeRejoin} {
		for _, st := range []JobState{JobSucceeded, JobFailed, JobAborted, JobPlanned} {
			key := "nines_job_total,cluster=billing,runbook=" + rb + ",state=" + string(st)
			if v, ok := got[key]; !ok || v != 0 {
				t.Errorf("%s: %v, %v; want present at 0", key, v, ok)
			}
		}
	}
	for key := range got {
		if strings.Contains(key, "cluster=iptv,runbook=galera-") {
			t.Errorf("%s: a Galera runbook's series on a replication cluster", key)
		}
	}
	for _, name := range []string{"nines_remediation_halted", "nines_job_running", "nines_remediation_recent_recoveries"} {
		if v, ok := got[name+",cluster=billing"]; !ok || v != 0 {
			t.Errorf("%s{cluster=billing}: %v, %v; want present at 0", name, v, ok)
		}
	}
}

// refusingRunbook refuses: a state only a person may resolve.
type refusingRunbook struct{ runs atomic.Int32 }

func (f *refusingRunbook) Name() string { return "refuses" }
func (f *refusingRunbook) Run(ctx context.Context, r *Run) error {
	f.runs.Add(1)
	return Refused("joiner ahead of the Primary")
}

// TestRefusedJobFailsAndIsNotRetried: a refusal pages (the job fails)
// and is not tried again while the alert fires, unlike a failure.
func TestRefusedJobFailsAndIsNotRetried(t *testing.T) {
	rb := &refusingRunbook{}
	r, log, _ := newTest(t, Policy{Mode: ModeAuto}, rb)
	r.Receive(alert("fp", "c1", "refuses", time.Now()))
	eventually(t, "the job ends", func() bool { js := jobs(t, log); return len(js) == 1 && js[0].State.Done() })
	time.Sleep(500 * time.Millisecond) // five retry delays
	js := jobs(t, log)
	if n := rb.runs.Load(); n != 1 || len(js) != 1 || js[0].State != JobFailed || !strings.Contains(js[0].Reason, "ahead") {
		t.Errorf("runs %d, jobs %d, first %s %q; want one failed job", n, len(js), js[0].State, js[0].Reason)
	}
	// The cluster status says why, not only the job.
	if d := r.Status()[0].LastDecision; !strings.Contains(d, "refused: joiner ahead of the Primary") || !strings.Contains(d, js[0].ID) {
		t.Errorf("cluster status last_decision = %q, want the refusal and job %s", d, js[0].ID)
	}
	if d := r.Status()[0].NotRepaired; !strings.Contains(d, "refused: joiner ahead of the Primary") {
		t.Errorf("cluster status not_repaired = %q, want the refusal", d)
	}
}

// A cluster whose policy has no settle starts its job at the first
// alert; another cluster still waits Options.Settle.
func TestPolicyWithoutSettleStartsAtOnce(t *testing.T) {
	rb := &countingRunbook{name: "rb"}
	r, log, _ := startTest(t, Options{Runbooks: []Runbook{rb}, Settle: 2 * time.Second, Policies: map[string]Policy{
		"c1": {Mode: ModeAuto, Settle: -1},
		"c2": {Mode: ModeAuto},
	}})
	at := time.Now()
	r.Receive(alert("fp1", "c1", "rb", at))
	r.Receive(alert("fp2", "c2", "rb", at))
	eventually(t, "c1's job", func() bool { return len(jobs(t, log)) >= 1 })
	took := time.Since(at)
	js := jobs(t, log)
	if len(js) != 1 || js[0].Cluster != "c1" {
		t.Fatalf("jobs %d after %s, want c1's alone (c2 settles 2 s)", len(js), took)
	}
	if took > 500*time.Millisecond {
		t.Errorf("c1's job started %s after its alert, want at once", took)
	}
	eventually(t, "c2's job after its settle", func() bool { return len(jobs(t, log)) == 2 })
	t.Logf("c1's job started %s after its alert", took.Round(time.Millisecond))
}

// A job asked for while Run shuts down is refused, never started behind
// Run's wait for the running jobs (the race detector caught one such
// start, from the API, during an appliance's stop).
func TestNoJobStartsWhileStopping(t *testing.T) {
	rb := &countingRunbook{name: "rb"}
	r, log, cancel := newTest(t, Policy{Mode: ModeAuto}, rb)
	ctx := context.Background()
	var wg sync.WaitGroup
	var started, refused atomic.Int32
	for i := 0; i < 50; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			if i == 25 {
				cancel()
			}
			_, err := r.Start(ctx, ManualRequest{Cluster: "c1", Runbook: "rb"})
			switch {
			case err == nil:
				started.Add(1)
			case errors.Is(err, ErrStopping):
				refused.Add(1)
			}
		}(i)
	}
	wg.Wait()
	eventually(t, "the refusal after the stop", func() bool {
		_, err := r.Start(ctx, ManualRequest{Cluster: "c1", Runbook: "rb"})
		return errors.Is(err, ErrStopping)
	})
	t.Logf("%d started, %d refused as stopping, %d jobs in the log", started.Load(), refused.Load(), len(jobs(t, log)))
}
