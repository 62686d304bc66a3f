package remediator

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"
)

// panickingRunbook panics inside its act step.
type panickingRunbook struct{}

func (panickingRunbook) Name() string { return "broken" }
func (panickingRunbook) Run(ctx context.Context, r *Run) error {
	_, err := Act(ctx, r, "act", nil, func(context.Context) (string, error) {
		var m map[string]int
		m["boom"]++ // assignment to entry in nil map
		return "", nil
	})
	return err
}

// syncBuffer is a log sink safe for the job goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}
func (s *syncBuffer) String() string { s.mu.Lock(); defer s.mu.Unlock(); return s.b.String() }

// TestPanickingRunbookFailsItsJob: a runbook that panics fails its job
// with the panic's message, logs the stack, and the remediator goes on:
// the cluster takes the next job.
func TestPanickingRunbookFailsItsJob(t *testing.T) {
	logs := &syncBuffer{}
	good := &countingRunbook{name: "good"}
	r, jl, _ := startTest(t, Options{Runbooks: []Runbook{panickingRunbook{}, good}, Policies: map[string]Policy{"c1": {Mode: ModeAuto}},
		Settle: 10 * time.Millisecond, Logger: slog.New(slog.NewTextHandler(logs, nil))})
	ctx := t.Context()

	r.Receive(alert("fp", "c1", "broken", time.Now()))
	eventually(t, "the broken job to end", func() bool { js := jobs(t, jl); return len(js) == 1 && js[0].State.Done() })
	j := jobs(t, jl)[0]
	if j.State != JobFailed || !strings.Contains(j.Reason, "runbook broken panicked") || !strings.Contains(j.Reason, "nil map") {
		t.Errorf("job %s: %s (%s), want failed with the panic", j.ID, j.State, j.Reason)
	}
	if l := logs.String(); !strings.Contains(l, "runbook panicked") || !strings.Contains(l, "panic_test.go") {
		t.Errorf("the log has no stack of the panic:\n%s", l)
	}
	if _, err := r.Start(ctx, ManualRequest{Cluster: "c1", Runbook: "good"}); err != nil {
		t.Fatalf("a job after the panic: %v", err)
	}
	eventually(t, "the next job to run", func() bool { return good.runs.Load() == 1 })
}
