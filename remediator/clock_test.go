package remediator

import (
	"context"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// fakeClock moves only when Advance is called.
type fakeClock struct {
	mu    sync.Mutex
	now   time.Time
	waits []fakeWait
}

type fakeWait struct {
	at   time.Time
	fire func(time.Time)
}

func (c *fakeClock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.now }

func (c *fakeClock) After(d time.Duration) <-chan time.Time {
	ch := make(chan time.Time, 1)
	c.mu.Lock()
	defer c.mu.Unlock()
	c.waits = append(c.waits, fakeWait{c.now.Add(d), func(t time.Time) { ch <- t }})
	return ch
}

func (c *fakeClock) WithTimeout(ctx context.Context, d time.Duration) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithCancelCause(ctx)
	c.mu.Lock()
	defer c.mu.Unlock()
	c.waits = append(c.waits, fakeWait{c.now.Add(d), func(time.Time) { cancel(context.DeadlineExceeded) }})
	return ctx, func() { cancel(context.Canceled) }
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	var due []fakeWait
	keep := c.waits[:0]
	for _, w := range c.waits {
		if !w.at.After(c.now) {
			due = append(due, w)
		} else {
			keep = append(keep, w)
		}
	}
	c.waits = keep
	now := c.now
	c.mu.Unlock()
	for _, w := range due {
		w.fire(now)
	}
}

// TestJobTimeoutFollowsTheClock: the job limit is a wait of the injected
// clock, so an hour's limit is tested without an hour.
func TestJobTimeoutFollowsTheClock(t *testing.T) {
	clock := &fakeClock{now: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	log, err := OpenJobLog(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	rb := &countingRunbook{name: "rb", block: make(chan struct{})}
	r, err := New(Options{Log: log, Runbooks: []Runbook{rb}, Policies: map[string]Policy{"c1": {}}, JobTimeout: time.Hour, Clock: clock})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); r.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	j, err := r.Start(ctx, ManualRequest{Cluster: "c1", Runbook: "rb"})
	if err != nil {
		t.Fatal(err)
	}
	eventually(t, "running", func() bool { return rb.runs.Load() == 1 })
	clock.Advance(59 * time.Minute)
	time.Sleep(100 * time.Millisecond)
	if got, _ := log.Get(j.ID); got == nil || got.State != JobRunning {
		t.Fatalf("job before its limit: %+v", got)
	}
	clock.Advance(time.Minute)
	eventually(t, "failed at its limit", func() bool { got, _ := log.Get(j.ID); return got != nil && got.State == JobFailed })
}

// notYetRunbook finds its precondition unmet until ready is set, then
// acts once.
type notYetRunbook struct {
	runs  atomic.Int32
	ready atomic.Bool
	ctxOK atomic.Bool
}

type ctxKey struct{}

func (n *notYetRunbook) Name() string { return "rb" }
func (n *notYetRunbook) Run(ctx context.Context, r *Run) error {
	n.runs.Add(1)
	if _, err := Observe(r, "check", nil, func(octx context.Context) (bool, error) {
		n.ctxOK.Store(octx.Value(ctxKey{}) == "job")
		if !n.ready.Load() {
			return false, NotYet("no other node is Primary")
		}
		return true, nil
	}); err != nil {
		return err
	}
	_, err := Act(ctx, r, "act", nil, func(context.Context) (string, error) { return "done", nil })
	return err
}

// TestNotYetIsRetriedWhileTheAlertFires: a precondition not met yet ends
// the job aborted and the same alert runs again RetryDelay later, beyond
// retryFailed, without counting towards anti-flapping; once the
// precondition holds, the job acts and the retries stop.
func TestNotYetIsRetriedWhileTheAlertFires(t *testing.T) {
	clock := &fakeClock{now: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	log, err := OpenJobLog(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	rb := &notYetRunbook{}
	r, err := New(Options{Log: log, Runbooks: []Runbook{rb}, Policies: map[string]Policy{"c1": {Mode: ModeAuto, MaxRecoveries: 1, Window: time.Hour}},
		Clock: clock, RetryDelay: 3 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.WithValue(context.Background(), ctxKey{}, "job"))
	done := make(chan struct{})
	go func() { defer close(done); r.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })

	// The clock moves in small steps while the test waits, so no wait of
	// the scheduler is skipped; the job log then says when each job ran.
	waitRuns := func(want int32) {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for rb.runs.Load() < want || r.Status()[0].RunningJob != "" {
			if time.Now().After(deadline) {
				t.Fatalf("runs %d, want %d", rb.runs.Load(), want)
			}
			clock.Advance(100 * time.Millisecond)
			time.Sleep(time.Millisecond)
		}
	}
	r.Receive(alert("fp", "c1", "rb", clock.Now()))
	waitRuns(retryFailed + 3)
	js := jobs(t, log) // newest first
	for i, j := range js {
		if j.State != JobAborted || !strings.Contains(j.Reason, "not yet") {
			t.Errorf("job %s: %s %q, want aborted, not yet", j.ID, j.State, j.Reason)
		}
		if i+1 < len(js) {
			if gap := j.CreatedAt.Sub(js[i+1].EndedAt); gap < 3*time.Second {
				t.Errorf("job %s started %v after the previous one ended, before the retry delay", j.ID, gap)
			}
		}
	}
	if st := r.Status()[0]; st.Halted != "" || st.Recoveries != 0 {
		t.Errorf("not-yet jobs counted as recoveries: %+v", st)
	}
	if !rb.ctxOK.Load() {
		t.Error("Observe did not run under the job's context")
	}

	// Once the precondition holds, the job acts and the retries stop.
	rb.ready.Store(true)
	before := rb.runs.Load()
	waitRuns(before + 1)
	clock.Advance(10 * time.Second)
	time.Sleep(50 * time.Millisecond)
	clock.Advance(10 * time.Second)
	time.Sleep(50 * time.Millisecond)
	if n := rb.runs.Load(); n != before+1 {
		t.Errorf("ran %d times after the job acted, want %d", n, before+1)
	}
	if st := r.Status()[0]; st.Recoveries != 1 {
		t.Errorf("recoveries %d after one acting job, want 1", st.Recoveries)
	}
}

// abortingAct refuses in its act step.
type abortingAct struct{}

func (abortingAct) Name() string { return "rb" }
func (abortingAct) Run(ctx context.Context, r *Run) error {
	_, err := Act(ctx, r, "act", nil, func(context.Context) (string, error) { return "", Aborted("refused") })
	return err
}

// TestAbortedActIsNotDone: an act that aborts did nothing; the log must
// not say done (a resume would skip it, anti-flapping would count it).
func TestAbortedActIsNotDone(t *testing.T) {
	r, log, _ := newTest(t, Policy{Mode: ModeAuto}, abortingAct{})
	j, err := r.Start(context.Background(), ManualRequest{Cluster: "c1", Runbook: "rb"})
	if err != nil {
		t.Fatal(err)
	}
	eventually(t, "job ends", func() bool { got, _ := log.Get(j.ID); return got != nil && got.State.Done() })
	got, _ := log.Get(j.ID)
	if got.State != JobAborted || got.Steps[0].State != StepAborted || actedOn(got) {
		t.Errorf("job %s, step %s, acted %v; want aborted, aborted, false", got.State, got.Steps[0].State, actedOn(got))
	}
}
