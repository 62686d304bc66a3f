package backup

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/nines-project/nines/remediator"
)

// starter stands in for the remediator: it records each start and
// answers busy while busy is set.
type starter struct {
	busy   bool
	fail   error
	starts []time.Time
	tries  []time.Time
	now    *time.Time
}

func (s *starter) start(_ context.Context, req remediator.ManualRequest) (*remediator.Job, error) {
	s.tries = append(s.tries, *s.now)
	if req.Kind != "backup" || req.Source != "schedule" || req.Method == "" {
		return nil, fmt.Errorf("unexpected request %+v", req)
	}
	if s.fail != nil {
		return nil, s.fail
	}
	if s.busy {
		return nil, fmt.Errorf("%w: j1 (galera-node-rejoin)", remediator.ErrBusy)
	}
	s.starts = append(s.starts, *s.now)
	return &remediator.Job{ID: fmt.Sprintf("job%d", len(s.starts))}, nil
}

// schedTest is a scheduler of one plan on a clock the test moves.
type schedTest struct {
	t     *testing.T
	now   time.Time
	s     *Scheduler
	st    *starter
	notes []string
}

func newSchedTest(t *testing.T, spec string, start time.Time) *schedTest {
	t.Helper()
	tt := &schedTest{t: t, now: start}
	tt.st = &starter{now: &tt.now}
	var err error
	tt.s, err = NewScheduler([]Plan{{Cluster: "billing", Method: "dump", Schedule: spec}}, tt.st.start, SchedulerOptions{
		Now:  func() time.Time { return tt.now },
		Note: func(_, msg string) { tt.notes = append(tt.notes, msg) },
	})
	if err != nil {
		t.Fatal(err)
	}
	return tt
}

// run ticks every second from the current time until until (inclusive),
// as Run does.
func (tt *schedTest) run(until time.Time) {
	for ; !tt.now.After(until); tt.now = tt.now.Add(time.Second) {
		tt.s.Tick(context.Background(), tt.now)
	}
	tt.now = until
}

func at(h, m, s int) time.Time { return time.Date(2026, 11, 26, h, m, s, 0, time.Local) }

func TestSchedulerStartsAtTheCronTime(t *testing.T) {
	tt := newSchedTest(t, "0 3 * * *", at(2, 59, 0))
	tt.run(at(2, 59, 59))
	if len(tt.st.tries) != 0 {
		t.Fatalf("started before 03:00: %v", tt.st.tries)
	}
	tt.run(at(3, 5, 0))
	if len(tt.st.starts) != 1 || !tt.st.starts[0].Equal(at(3, 0, 0)) {
		t.Fatalf("starts %v, want one at 03:00:00", tt.st.starts)
	}
	// Next day, same time; the appliance's clock jumping over hours (a
	// suspended VM) still gives one run, not one per missed time.
	tt.now = at(3, 0, 0).Add(24 * time.Hour)
	tt.run(tt.now)
	tt.now = tt.now.Add(72 * time.Hour)
	tt.run(tt.now.Add(2 * time.Second))
	if len(tt.st.starts) != 3 {
		t.Errorf("starts %v, want 3: one per cron time seen, none caught up", tt.st.starts)
	}
	if st := tt.s.Status()[0]; st.Started != 3 || st.Skipped != 0 || st.LastJob != "job3" {
		t.Errorf("status %+v", st)
	}
}

func TestSchedulerRetriesABusyCluster(t *testing.T) {
	tt := newSchedTest(t, "0 3 * * *", at(2, 59, 0))
	tt.st.busy = true
	tt.run(at(3, 0, 12))
	// Tried at 03:00:00, then every 5 s.
	want := []time.Time{at(3, 0, 0), at(3, 0, 5), at(3, 0, 10)}
	if fmt.Sprint(tt.st.tries) != fmt.Sprint(want) {
		t.Fatalf("tries %v, want %v", tt.st.tries, want)
	}
	if len(tt.notes) != 1 || !strings.Contains(tt.notes[0], "waits") {
		t.Errorf("notes %q, want one saying the run waits", tt.notes)
	}
	if st := tt.s.Status()[0]; !st.Due.Equal(at(3, 0, 0)) || !strings.Contains(st.LastError, "already has a running job") {
		t.Errorf("status while waiting: %+v", st)
	}
	tt.st.busy = false
	tt.run(at(3, 0, 20))
	if len(tt.st.starts) != 1 || !tt.st.starts[0].Equal(at(3, 0, 15)) {
		t.Errorf("starts %v, want one at 03:00:15, the first retry after the cluster is free", tt.st.starts)
	}
	if st := tt.s.Status()[0]; !st.Due.IsZero() || st.LastError != "" {
		t.Errorf("status after the start: %+v", st)
	}
}

func TestSchedulerSkipsARunBusyUntilTheNext(t *testing.T) {
	tt := newSchedTest(t, "*/10 * * * *", at(2, 59, 30))
	tt.st.busy = true
	tt.run(at(3, 10, 0))
	if len(tt.st.starts) != 0 {
		t.Fatalf("started while busy: %v", tt.st.starts)
	}
	st := tt.s.Status()[0]
	if st.Skipped != 1 || !st.Due.Equal(at(3, 10, 0)) {
		t.Fatalf("status %+v, want the 03:00 run skipped and the 03:10 one due", st)
	}
	last := tt.notes[len(tt.notes)-1]
	if !strings.Contains(last, "skipped") || !strings.Contains(last, "busy") {
		t.Errorf("last note %q does not say the run was skipped", last)
	}
	tt.st.busy = false
	tt.run(at(3, 10, 5))
	if len(tt.st.starts) != 1 || !tt.st.starts[0].Equal(at(3, 10, 5)) {
		t.Errorf("starts %v, want the 03:10 run at its first retry", tt.st.starts)
	}
	for _, m := range tt.s.Metrics() {
		if m.Name == "nines_backup_skipped_runs_total" && m.Value != 1 {
			t.Errorf("%s = %v, want 1", m.Name, m.Value)
		}
	}
}

func TestSchedulerGivesUpARunThatCannotStart(t *testing.T) {
	tt := newSchedTest(t, "0 * * * *", at(2, 59, 0))
	tt.st.fail = fmt.Errorf("no dump backup is configured")
	tt.run(at(3, 30, 0))
	if len(tt.st.tries) != 1 {
		t.Errorf("tries %v: a run that cannot start is not retried until the next time", tt.st.tries)
	}
	if st := tt.s.Status()[0]; st.FailedToStart != 1 || !st.Due.IsZero() {
		t.Errorf("status %+v", st)
	}
}

// Appliances in HA: the cluster's leader runs the backup; on the others
// the run is neither a failure to start nor a note.
func TestSchedulerLeavesTheRunToTheLeader(t *testing.T) {
	tt := newSchedTest(t, "0 * * * *", at(2, 59, 0))
	tt.st.fail = fmt.Errorf("cluster billing: %w", remediator.ErrNotLeader)
	tt.run(at(3, 30, 0))
	if len(tt.st.tries) != 1 {
		t.Errorf("tries %v, want one at 03:00", tt.st.tries)
	}
	if st := tt.s.Status()[0]; st.FailedToStart != 0 || !st.Due.IsZero() || len(tt.notes) != 0 {
		t.Errorf("status %+v, notes %q: want no failure and no note", st, tt.notes)
	}
}

func TestExpectedInterval(t *testing.T) {
	monday := time.Date(2026, 11, 23, 2, 0, 0, 0, time.Local) // a Monday
	tests := []struct {
		spec string
		now  time.Time
		want time.Duration
	}{
		{"0 3 * * *", at(12, 0, 0), 24 * time.Hour},
		{"0 3 * * *", at(3, 0, 0), 24 * time.Hour},
		{"@daily", at(12, 0, 0), 24 * time.Hour},
		{"* * * * *", at(12, 0, 30), time.Minute},
		{"*/15 * * * *", at(12, 7, 0), 15 * time.Minute},
		{"@every 6h", at(12, 0, 0), 6 * time.Hour},
		{"0 3 1 * *", at(12, 0, 0), 30 * 24 * time.Hour}, // Nov 1 to Dec 1
		// Weekdays only: the weekend gap before Monday's run, a day after.
		{"0 3 * * 1-5", monday, 72 * time.Hour},
		{"0 3 * * 1-5", monday.Add(24 * time.Hour), 24 * time.Hour},
	}
	for _, tt := range tests {
		s, err := ParseSchedule(tt.spec)
		if err != nil {
			t.Fatal(err)
		}
		if got := ExpectedInterval(s, tt.now); got != tt.want {
			t.Errorf("ExpectedInterval(%q at %s) = %s, want %s", tt.spec, tt.now.Format("Mon 15:04:05"), got, tt.want)
		}
	}
}
