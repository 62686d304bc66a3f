package exporter

import (
	"testing"

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
	if stateChanged(nil, synced()) {
		t.Error("the first snapshot is not a change")
	}
}
