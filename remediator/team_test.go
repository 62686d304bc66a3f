package remediator

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"
)

// staleTeam says this appliance leads (its lease looks alive to it) while
// etcd refuses its writes: a leader continued after a pause, before it
// noticed its lease had ended.
type staleTeam struct {
	mu     sync.Mutex
	refuse bool
	puts   int
}

func (s *staleTeam) Lead(string) (context.Context, int64, bool) { return context.Background(), 7, true }
func (s *staleTeam) PutJob(string, string, []byte, bool) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.puts++
	if s.refuse {
		return errors.New("leadership of \"c1\" (token 7) lost")
	}
	return nil
}
func (s *staleTeam) RunningJobs(context.Context, string) ([][]byte, error) { return nil, nil }

func TestDeposedLeaderNeitherActsNorFails(t *testing.T) {
	rb := &countingRunbook{name: "rb"}
	team := &staleTeam{refuse: true}
	r, log, _ := startTest(t, Options{Runbooks: []Runbook{rb}, Policies: map[string]Policy{"c1": {Mode: ModeAuto}},
		Settle: 10 * time.Millisecond, Team: team})
	r.Receive(alert("fp1", "c1", "rb", time.Now()))
	eventually(t, "the team's log asked", func() bool { team.mu.Lock(); defer team.mu.Unlock(); return team.puts > 0 })
	time.Sleep(300 * time.Millisecond)
	if n := rb.acts.Load(); n != 0 {
		t.Fatalf("acted %d times though the team's log refused the job", n)
	}
	for _, m := range r.Metrics() {
		if m.Name == "nines_job_total" && m.Value != 0 {
			t.Errorf("%s %v = %v: a refused leader must not count a job (it would page as failed)", m.Name, m.Labels, m.Value)
		}
	}
	if js := jobs(t, log); len(js) != 0 {
		t.Errorf("local log holds %d jobs, want none: nothing reached the team's log", len(js))
	}
}
