package remediator

import (
	"testing"
	"time"
)

// actingJob is an ended automatic job whose act step completed.
func actingJob(id, source string, ended time.Time) *Job {
	return &Job{ID: id, Cluster: "c1", Runbook: "rb", State: JobSucceeded, Trigger: Trigger{Source: source, Fingerprint: "fp-" + id},
		CreatedAt: ended.Add(-time.Minute), StartedAt: ended.Add(-time.Minute), EndedAt: ended,
		Steps: []Step{{Name: "act-once", Kind: "act", State: StepDone, Attempts: 1}}}
}

func openAt(t *testing.T, log *JobLog, clock Clock) *Remediator {
	t.Helper()
	r, err := New(Options{Log: log, Runbooks: []Runbook{&countingRunbook{name: "rb"}},
		Policies: map[string]Policy{"c1": {Mode: ModeAuto, MaxRecoveries: 2, Window: time.Hour}}, Clock: clock})
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// TestHaltSurvivesARestart: the anti-flapping state is rebuilt from the
// job log at start, and a resume is durable too.
func TestHaltSurvivesARestart(t *testing.T) {
	now := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	clock := &fakeClock{now: now}
	log, err := OpenJobLog(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	// Outside the window, or manual: these do not count.
	for _, j := range []*Job{actingJob("old", "alert", now.Add(-2*time.Hour)), actingJob("manual", "manual", now.Add(-time.Minute))} {
		if err := log.Save(j); err != nil {
			t.Fatal(err)
		}
	}
	if st := openAt(t, log, clock).Status()[0]; st.Halted != "" || st.Recoveries != 0 {
		t.Fatalf("halted by jobs that do not count: %+v", st)
	}
	// max_recoveries automatic jobs that acted within the window.
	for _, j := range []*Job{actingJob("a1", "alert", now.Add(-30*time.Minute)), actingJob("a2", "alert", now.Add(-10*time.Minute))} {
		if err := log.Save(j); err != nil {
			t.Fatal(err)
		}
	}
	r := openAt(t, log, clock)
	if st := r.Status()[0]; st.Halted == "" || st.Recoveries != 2 {
		t.Fatalf("started on a log with 2 recoveries in the window (limit 2): %+v, want halted", st)
	}

	// The halt holds after another restart, even once the window passed.
	clock.Advance(2 * time.Hour)
	r = openAt(t, log, clock)
	if st := r.Status()[0]; st.Halted == "" {
		t.Fatalf("a restart after the window lifted the halt: %+v", st)
	}

	// Resume, restart: not halted, and the jobs before the resume no
	// longer count.
	clock.Advance(-2 * time.Hour)
	r = openAt(t, log, clock)
	if err := r.Resume("c1"); err != nil {
		t.Fatal(err)
	}
	r = openAt(t, log, clock)
	if st := r.Status()[0]; st.Halted != "" || st.Recoveries != 0 {
		t.Fatalf("after resume and restart: %+v, want running, 0 recoveries", st)
	}
}
