package exporter

import (
	"context"
	"net"
	"testing"
	"time"

	"github.com/nines-project/nines"
)

func TestStateChanged(t *testing.T) {
	synced := func() *nines.Snapshot {
		return &nines.Snapshot{Up: true, Galera: &nines.GaleraStatus{ClusterStatus: nines.ClusterStatusPrimary, ClusterSize: 3, LocalState: nines.LocalStateSynced, Ready: true}}
	}
	tests := []struct {
		name string
		edit func(*nines.Snapshot)
		want bool
	}{
		{"nothing", func(*nines.Snapshot) {}, false},
		{"went down", func(s *nines.Snapshot) { s.Up, s.Galera = false, nil }, true},
		{"peer lost", func(s *nines.Snapshot) { s.Galera.ClusterSize = 2 }, true},
		{"quorum lost", func(s *nines.Snapshot) { s.Galera.ClusterStatus = nines.ClusterStatusNonPrimary }, true},
		{"donor", func(s *nines.Snapshot) { s.Galera.LocalState = nines.LocalStateDonor }, true},
		{"not ready", func(s *nines.Snapshot) { s.Galera.Ready = false }, true},
		{"only counters moved", func(s *nines.Snapshot) { s.Galera.LastCommitted = 99 }, false},
	}
	for _, tt := range tests {
		cur := synced()
		tt.edit(cur)
		if got := stateChanged(synced(), cur); got != tt.want {
			t.Errorf("%s: stateChanged = %v, want %v", tt.name, got, tt.want)
		}
	}
	replica := func() *nines.Snapshot {
		return &nines.Snapshot{Up: true, Replicas: []nines.ReplicaStatus{{SourceHost: "db1", SourcePort: 3306, IOThread: nines.ThreadRunning, SQLThread: nines.ThreadRunning, SecondsBehind: new(int64)}}}
	}
	for _, tt := range []struct {
		name string
		edit func(*nines.Snapshot)
		want bool
	}{
		{"replica: nothing", func(*nines.Snapshot) {}, false},
		{"replica: lag moved", func(s *nines.Snapshot) { s.Replicas[0].SecondsBehind = nil }, false},
		{"replica: IO thread connecting", func(s *nines.Snapshot) { s.Replicas[0].IOThread = nines.ThreadConnecting }, true},
		{"replica: SQL thread stopped", func(s *nines.Snapshot) { s.Replicas[0].SQLThread = nines.ThreadStopped }, true},
		{"replica: new source", func(s *nines.Snapshot) { s.Replicas[0].SourceHost = "db2" }, true},
		{"replica: promoted", func(s *nines.Snapshot) { s.Replicas = nil }, true},
	} {
		cur := replica()
		tt.edit(cur)
		if got := stateChanged(replica(), cur); got != tt.want {
			t.Errorf("%s: stateChanged = %v, want %v", tt.name, got, tt.want)
		}
	}
	if stateChanged(nil, synced()) {
		t.Error("the first snapshot is not a change")
	}
}

// A node that cannot be reached counts every attempt as a failed scrape,
// and the counters are in the snapshot's metrics from the first scrape on.
func TestScrapeCountsFailures(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close() // nothing listens there now: every connect is refused
	s, err := NewScraper(Target{Cluster: "c", Address: addr, User: "u"}, Options{Interval: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	var snap *nines.Snapshot
	for range 3 {
		snap = s.Scrape(context.Background())
	}
	if snap.Up || snap.Scrapes != 3 || snap.Errors != 3 {
		t.Fatalf("after 3 refused scrapes: up %v, scrapes %d, errors %d", snap.Up, snap.Scrapes, snap.Errors)
	}
	got := map[string]float64{}
	for _, m := range SnapshotMetrics(snap) {
		got[m.Name] = m.Value
	}
	if got["nines_scrape_errors_total"] != 3 || got["nines_scrapes_total"] != 3 {
		t.Errorf("counters: %v", got)
	}

	// A scrape cut short by shutdown is not the node's failure.
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if snap := s.Scrape(ctx); snap.Scrapes != 3 || snap.Errors != 3 {
		t.Errorf("cancelled scrape counted: scrapes %d, errors %d", snap.Scrapes, snap.Errors)
	}
}
