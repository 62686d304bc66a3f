package ndb

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/nines-project/nines/internal/metric"
	"github.com/nines-project/nines/sandbox/ndbsim"
)

// TestGCPAgeFromEvents: the poller times global checkpoints from the
// stream's GlobalCheckpointCompleted events: the age stays under two
// GCP intervals while they come, grows while a fault stalls them, and
// falls back once they complete again; GCP events wake no round.
func TestGCPAgeFromEvents(t *testing.T) {
	c, err := ndbsim.NewCluster(ndbsim.Config{DataNodes: 2, Replicas: 2})
	if err != nil {
		t.Fatal(err)
	}
	const every = 50 * time.Millisecond
	srv, err := ndbsim.Serve(c, "127.0.0.1:0", ndbsim.ServerConfig{GCPInterval: every})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	p, err := NewPoller(PollerConfig{Cluster: "tel", Mgm: []string{srv.Addr()}, Interval: 20 * time.Millisecond, BurstInterval: 20 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	ch := make(chan *Reading, 1024)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); p.Run(ctx, func(r *Reading, _ bool) { ch <- r }) }()
	defer func() { cancel(); <-done }()
	age := func(r *Reading) (float64, bool) {
		s := series(&metric.Set{Metrics: r.Metrics()})
		v, ok := s[fmt.Sprintf(`nines_ndb_gcp_seconds_since_completed{cluster="tel",instance=%q}`, srv.Addr())]
		return v, ok
	}
	woken, counting := 0, false
	until := func(what string, ok func(*Reading) bool) *Reading {
		t.Helper()
		timeout := time.After(5 * time.Second)
		for {
			select {
			case r := <-ch:
				if counting && r.Woken {
					woken++
				}
				if ok(r) {
					return r
				}
			case <-timeout:
				t.Fatalf("no reading where %s", what)
			}
		}
	}
	r := until("a GCP completed on the stream", func(r *Reading) bool { return r.Stream != "" && r.GCP.GCI > 0 })
	if a, ok := age(r); !ok || a > (2*every).Seconds() {
		t.Errorf("healthy: age %v (present %v), want under %v", a, ok, 2*every)
	}
	counting = true
	c.SetGCPStalled(true)
	stalled := time.Now()
	const long = 500 * time.Millisecond
	r = until("the GCP age past 500 ms", func(r *Reading) bool { a, _ := age(r); return a >= long.Seconds() })
	a, _ := age(r)
	t.Logf("measured: age %.3f s, %s after the stall began", a, time.Since(stalled).Round(time.Millisecond))
	gci := r.GCP.GCI
	c.SetGCPStalled(false)
	r = until("GCPs completing again", func(r *Reading) bool { a, _ := age(r); return r.GCP.GCI > gci && a < (2*every).Seconds() })
	// GCP events (20 per second here) woke no round: only ticks read.
	// One woken round may be the stream's opening, queued behind a tick.
	if woken > 1 {
		t.Errorf("%d rounds were woken with no node event", woken)
	}
}

// TestGCPMetrics: no series without an open stream; the age counts from
// the later of the stream's opening and the last completion.
func TestGCPMetrics(t *testing.T) {
	t0 := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	cases := []struct {
		name   string
		st     GCPState
		stream bool
		want   map[string]float64
	}{
		{"no stream", GCPState{Since: t0, Completed: t0}, false, map[string]float64{}},
		{"stream, no GCP yet", GCPState{Since: t0}, true, map[string]float64{"nines_ndb_gcp_seconds_since_completed": 30}},
		{"last GCP 5 s ago", GCPState{Since: t0, Completed: t0.Add(25 * time.Second), GCI: 77}, true,
			map[string]float64{"nines_ndb_gcp_seconds_since_completed": 5, "nines_ndb_gcp_last_completed_gci": 77}},
		// The stream reopened after the last GCP it saw: the gap between
		// is unknown, so the age counts from the reopening.
		{"reopened", GCPState{Since: t0.Add(20 * time.Second), Completed: t0, GCI: 9}, true,
			map[string]float64{"nines_ndb_gcp_seconds_since_completed": 10, "nines_ndb_gcp_last_completed_gci": 9}},
	}
	for _, tc := range cases {
		set := &metric.Set{}
		GCPMetrics(set, tc.st, t0.Add(30*time.Second), tc.stream)
		got := map[string]float64{}
		for _, m := range set.Metrics {
			got[m.Name] = m.Value
		}
		if fmt.Sprint(got) != fmt.Sprint(tc.want) {
			t.Errorf("%s: %v, want %v", tc.name, got, tc.want)
		}
	}
}
