package backup

import (
	"strings"
	"testing"
	"time"

	"github.com/nines-project/nines"
)

var t0 = time.Date(2026, 11, 26, 3, 0, 0, 0, time.Local)

// galeraSnap is a node's snapshot: Synced or in another state, with its
// receive queue and running threads.
func galeraSnap(node, state string, recvQueue int64, threads string) *nines.Snapshot {
	s := &nines.Snapshot{Instance: node, Time: t0, Up: true, Status: map[string]string{"Threads_running": threads},
		Galera: &nines.GaleraStatus{ClusterStatus: nines.ClusterStatusPrimary, LocalStateComment: state, Ready: true, LocalRecvQueue: recvQueue}}
	switch state {
	case "Synced":
		s.Galera.LocalState = nines.LocalStateSynced
	case "Donor/Desynced":
		s.Galera.LocalState = nines.LocalStateDonor
	}
	return s
}

func down(node string) *nines.Snapshot {
	return &nines.Snapshot{Instance: node, Time: t0, Up: false, Err: "connection refused"}
}

func replicaSnap(node string, behind int64, running bool, threads string) *nines.Snapshot {
	return &nines.Snapshot{Instance: node, Time: t0, Up: true, Status: map[string]string{"Threads_running": threads},
		Replicas: []nines.ReplicaStatus{{IORunning: running, SQLRunning: running, SecondsBehind: &behind}}}
}

func primarySnap(node string) *nines.Snapshot {
	return &nines.Snapshot{Instance: node, Time: t0, Up: true, Status: map[string]string{"Threads_running": "9"}}
}

func TestChoose(t *testing.T) {
	hosts := []string{"db1:3306", "db2:3306", "db3:3306"}
	tests := []struct {
		name  string
		kind  nines.Kind
		snaps []*nines.Snapshot
		pin   string
		want  string // node, or "error: <substring>"
	}{
		{"least receive queue", nines.KindGalera, []*nines.Snapshot{
			galeraSnap("db1:3306", "Synced", 5, "1"), galeraSnap("db2:3306", "Synced", 0, "8"), galeraSnap("db3:3306", "Synced", 2, "1")}, "", "db2:3306"},
		{"then fewest threads running", nines.KindGalera, []*nines.Snapshot{
			galeraSnap("db1:3306", "Synced", 0, "7"), galeraSnap("db2:3306", "Synced", 0, "3"), galeraSnap("db3:3306", "Synced", 0, "4")}, "", "db2:3306"},
		{"then by name", nines.KindGalera, []*nines.Snapshot{
			galeraSnap("db3:3306", "Synced", 0, "1"), galeraSnap("db2:3306", "Synced", 0, "1"), galeraSnap("db1:3306", "Synced", 0, "1")}, "", "db1:3306"},
		{"only Synced nodes", nines.KindGalera, []*nines.Snapshot{
			galeraSnap("db1:3306", "Donor/Desynced", 0, "1"), down("db2:3306"), galeraSnap("db3:3306", "Synced", 9, "9")}, "", "db3:3306"},
		{"stale snapshot not trusted", nines.KindGalera, []*nines.Snapshot{
			func() *nines.Snapshot {
				s := galeraSnap("db1:3306", "Synced", 0, "1")
				s.Time = t0.Add(-time.Minute)
				return s
			}(),
			galeraSnap("db2:3306", "Synced", 3, "1")}, "", "db2:3306"},
		{"none Synced", nines.KindGalera, []*nines.Snapshot{
			down("db1:3306"), galeraSnap("db2:3306", "Joining", 0, "1")}, "", "error: no node can be backed up (db1:3306: down: connection refused; db3:3306: not scraped yet; db2:3306: not Synced in a Primary component: Primary/Joining)"},
		{"pinned and Synced", nines.KindGalera, []*nines.Snapshot{
			galeraSnap("db1:3306", "Synced", 0, "1"), galeraSnap("db2:3306", "Synced", 50, "40")}, "db2:3306", "db2:3306"},
		{"pinned and down", nines.KindGalera, []*nines.Snapshot{
			galeraSnap("db1:3306", "Synced", 0, "1"), down("db2:3306")}, "db2:3306", "error: pinned node db2:3306 cannot be backed up now: down: connection refused"},
		{"pinned without agent", nines.KindGalera, []*nines.Snapshot{galeraSnap("db9:3306", "Synced", 0, "1")}, "db9:3306", "error: pinned node db9:3306 has no agent"},
		{"replica least behind", nines.KindReplication, []*nines.Snapshot{
			primarySnap("db1:3306"), replicaSnap("db2:3306", 30, true, "1"), replicaSnap("db3:3306", 2, true, "5")}, "", "db3:3306"},
		{"stopped replica skipped", nines.KindReplication, []*nines.Snapshot{
			primarySnap("db1:3306"), replicaSnap("db2:3306", 30, true, "1"), replicaSnap("db3:3306", 0, false, "1")}, "", "db2:3306"},
		{"primary when no replica serves", nines.KindReplication, []*nines.Snapshot{
			primarySnap("db1:3306"), down("db2:3306"), replicaSnap("db3:3306", 0, false, "1")}, "", "db1:3306"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ch, err := Choose(tt.kind, tt.snaps, hosts, tt.pin, t0.Add(time.Second))
			if msg, wantErr := strings.CutPrefix(tt.want, "error: "); wantErr {
				if err == nil || !strings.Contains(err.Error(), msg) {
					t.Fatalf("Choose = %q, %v; want an error containing %q", ch.Node, err, msg)
				}
				return
			}
			if err != nil || ch.Node != tt.want {
				t.Fatalf("Choose = %q, %v; want %s (candidates %+v)", ch.Node, err, tt.want, ch.Candidates)
			}
			if ch.Why == "" || len(ch.Candidates) != len(hosts) {
				t.Errorf("choice does not explain itself: %+v", ch)
			}
		})
	}
}

func TestNewID(t *testing.T) {
	got := NewID(time.Date(2026, 11, 26, 3, 15, 0, 250e6, time.UTC), "mariabackup", "db1.example.net:3306")
	if want := "20261126T031500.250Z-mariabackup-db1.example.net-3306"; got != want {
		t.Errorf("NewID = %q, want %q", got, want)
	}
	if !validID(got) || validID("../etc") || validID(".hidden") || validID("") {
		t.Error("validID accepts or refuses the wrong ids")
	}
}
