package remediator

import (
	"context"
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// longJob stands in for a backup: preemptible, with its own time bound,
// taking parameters, and running until cancelled.
type longJob struct {
	name    string
	limit   time.Duration
	started atomic.Int32
	ended   chan error
}

func (l *longJob) Name() string           { return l.name }
func (l *longJob) Preemptible() bool      { return true }
func (l *longJob) Timeout() time.Duration { return l.limit }
func (l *longJob) Prepare(cluster, target string, p map[string]string) (map[string]string, string, error) {
	if p["method"] == "bad" {
		return nil, "", errors.New("no such method")
	}
	p["dir"] = "/var/backups/nines"
	return p, "n2", nil
}
func (l *longJob) Run(ctx context.Context, r *Run) error {
	l.started.Add(1)
	_, err := Act(ctx, r, "backup", nil, func(ctx context.Context) (string, error) {
		<-ctx.Done()
		return "", ctx.Err()
	})
	l.ended <- err
	return err
}

var (
	_ Preemptible = (*longJob)(nil)
	_ Bounded     = (*longJob)(nil)
	_ Preparer    = (*longJob)(nil)
)

func TestARepairPreemptsABackup(t *testing.T) {
	repair := &countingRunbook{name: "galera-node-rejoin"}
	bk := &longJob{name: "backup", limit: time.Hour, ended: make(chan error, 1)}
	r, log, _ := newTest(t, Policy{Mode: ModeAuto}, repair, bk)
	j, err := r.Start(context.Background(), ManualRequest{Cluster: "c1", Kind: "backup", Method: "dump", Source: "schedule"})
	if err != nil {
		t.Fatal(err)
	}
	if j.Target != "n2" || j.Params["method"] != "dump" || j.Params["dir"] != "/var/backups/nines" || j.Trigger.Source != "schedule" {
		t.Errorf("job %+v: the prepared parameters and the source are not recorded", j)
	}
	eventually(t, "backup running", func() bool { return bk.started.Load() == 1 })
	// Another manual job waits: an operator sees the cluster is busy.
	if _, err := r.Start(context.Background(), ManualRequest{Cluster: "c1", Kind: "rejoin"}); !errors.Is(err, ErrBusy) {
		t.Errorf("manual job on a cluster running a backup: %v, want ErrBusy", err)
	}
	r.Receive(alert("fp", "c1", "galera-node-rejoin", time.Now()))
	eventually(t, "the repair ran", func() bool { return repair.runs.Load() == 1 })
	if err := <-bk.ended; !errors.Is(err, context.Canceled) {
		t.Errorf("backup ended with %v, want cancelled", err)
	}
	got, err := log.Get(j.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.State != JobAborted || !strings.Contains(got.Reason, "preempted: alert X needs galera-node-rejoin") {
		t.Errorf("backup job %s (%s), want aborted by preemption", got.State, got.Reason)
	}
}

func TestADryRunRepairWaitsForABackup(t *testing.T) {
	repair := &countingRunbook{name: "rb"}
	bk := &longJob{name: "backup", limit: time.Hour, ended: make(chan error, 1)}
	r, _, _ := newTest(t, Policy{Mode: ModeDryRun}, repair, bk)
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel) // runs before newTest's cleanup waits for the jobs
	if _, err := r.Start(ctx, ManualRequest{Cluster: "c1", Runbook: "backup"}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "backup running", func() bool { return bk.started.Load() == 1 })
	r.Receive(alert("fp", "c1", "rb", time.Now()))
	eventually(t, "decision", func() bool { return strings.Contains(r.Status()[0].LastDecision, "waits for job") })
	if repair.runs.Load() != 0 {
		t.Error("a dry-run repair preempted a backup")
	}
}

func TestRunbookOwnTimeout(t *testing.T) {
	bk := &longJob{name: "backup", limit: 50 * time.Millisecond, ended: make(chan error, 1)}
	r, log, _ := newTest(t, Policy{Mode: ModeAuto}, bk)
	j, err := r.Start(context.Background(), ManualRequest{Cluster: "c1", Runbook: "backup"})
	if err != nil {
		t.Fatal(err)
	}
	if err := <-bk.ended; !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("ended with %v, want its own 50 ms deadline", err)
	}
	eventually(t, "failed", func() bool { got, _ := log.Get(j.ID); return got != nil && got.State == JobFailed })
}

func TestManualKinds(t *testing.T) {
	rb := &countingRunbook{name: "galera-quorum-recovery"}
	bk := &longJob{name: "backup", limit: time.Hour, ended: make(chan error, 1)}
	r, _, _ := newTest(t, Policy{Mode: ModeAuto}, rb, bk)
	for _, tt := range []struct {
		req  ManualRequest
		want string
	}{
		{ManualRequest{Cluster: "c1", Kind: "recover", Runbook: "galera-node-rejoin"}, "kind \"recover\" is runbook galera-quorum-recovery"},
		{ManualRequest{Cluster: "c1", Kind: "rejoin"}, `unknown runbook "galera-node-rejoin"`},
		{ManualRequest{Cluster: "c1", Kind: "recover", Method: "dump"}, "takes no parameters"},
		{ManualRequest{Cluster: "c1", Kind: "backup", Method: "bad"}, "backup on c1: no such method"},
	} {
		if _, err := r.Start(context.Background(), tt.req); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("Start(%+v) = %v, want %q", tt.req, err, tt.want)
		}
	}
	j, err := r.Start(context.Background(), ManualRequest{Cluster: "c1", Kind: "recover", User: "ops"})
	if err != nil || j.Runbook != "galera-quorum-recovery" || j.Trigger.User != "ops" {
		t.Errorf("kind recover: %+v, %v", j, err)
	}
	r.Note("c1", "scheduled dump backup skipped")
	eventually(t, "note", func() bool { return r.Status()[0].LastDecision == "scheduled dump backup skipped" })
}
