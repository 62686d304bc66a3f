package galera

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/nines-project/nines"
)

// syncedStatus is a trimmed SHOW GLOBAL STATUS of a healthy node (from a
// real MariaDB 10.11 / Galera 4 node).
func syncedStatus() map[string]string {
	return map[string]string{
		"wsrep_cluster_status":      "Primary",
		"wsrep_cluster_size":        "3",
		"wsrep_cluster_conf_id":     "7",
		"wsrep_cluster_state_uuid":  "9130690e-e921-11f1-b504-f6cb6679f2e6",
		"wsrep_local_state_uuid":    "9130690e-e921-11f1-b504-f6cb6679f2e6",
		"wsrep_local_state":         "4",
		"wsrep_local_state_comment": "Synced",
		"wsrep_ready":               "ON",
		"wsrep_connected":           "ON",
		"wsrep_last_committed":      "31",
		"wsrep_local_recv_queue":    "0",
		"wsrep_flow_control_paused": "0",
		"wsrep_evs_state":           "OPERATIONAL",
		"wsrep_evs_delayed":         "",
		"wsrep_provider_name":       "Galera",
	}
}

func TestParseStatus(t *testing.T) {
	tests := []struct {
		name     string
		edit     map[string]string
		drop     string
		check    func(*nines.GaleraStatus) bool
		problems []string // each must appear in the error, in order
	}{
		{name: "synced", check: func(g *nines.GaleraStatus) bool {
			return g.Synced() && g.ClusterSize == 3 && g.ClusterConfID == 7 && g.LastCommitted == 31 &&
				g.LocalState == nines.LocalStateSynced && g.Connected && g.NodeName == "n1" &&
				g.ClusterStateUUID == "9130690e-e921-11f1-b504-f6cb6679f2e6"
		}},
		{name: "synced comment but wsrep_ready OFF is not Synced", edit: map[string]string{"wsrep_ready": "OFF"},
			check: func(g *nines.GaleraStatus) bool {
				return !g.Synced() && g.Primary() && g.LocalState == nines.LocalStateSynced && !g.Ready
			}},
		{name: "ready but local state 2 (donor) is not Synced", edit: map[string]string{"wsrep_local_state": "2", "wsrep_local_state_comment": "Donor/Desynced"},
			check: func(g *nines.GaleraStatus) bool { return !g.Synced() && g.LocalState == nines.LocalStateDonor }},
		{name: "state 4 outside Primary is not Synced", edit: map[string]string{"wsrep_cluster_status": "non-Primary"},
			check: func(g *nines.GaleraStatus) bool { return !g.Synced() && !g.Primary() }},
		{name: "lost quorum: conf_id as unsigned -1",
			edit: map[string]string{"wsrep_cluster_status": "non-Primary", "wsrep_cluster_size": "1", "wsrep_cluster_conf_id": "18446744073709551615",
				"wsrep_local_state": "0", "wsrep_local_state_comment": "Initialized", "wsrep_ready": "OFF"},
			check: func(g *nines.GaleraStatus) bool {
				return !g.Synced() && g.ClusterStatus == nines.ClusterStatusNonPrimary && g.ClusterConfID == -1 &&
					g.LocalState == nines.LocalStateUndefined && g.ClusterSize == 1
			}},
		{name: "disconnected", edit: map[string]string{"wsrep_cluster_status": "Disconnected", "wsrep_connected": "OFF"},
			check: func(g *nines.GaleraStatus) bool {
				return g.ClusterStatus == nines.ClusterStatusDisconnected && !g.Connected
			}},
		{name: "fresh node has no state UUID", edit: map[string]string{"wsrep_cluster_state_uuid": ""},
			check: func(g *nines.GaleraStatus) bool { return g.ClusterStateUUID == "" }},
		{name: "odd cluster status is not healthy", edit: map[string]string{"wsrep_cluster_status": "Primaryish"},
			check:    func(g *nines.GaleraStatus) bool { return !g.Synced() && g.ClusterStatus == nines.ClusterStatusUnknown },
			problems: []string{`wsrep_cluster_status "Primaryish": not one of Primary, non-Primary, Disconnected`}},
		{name: "odd size", edit: map[string]string{"wsrep_cluster_size": "three"},
			check:    func(g *nines.GaleraStatus) bool { return g.ClusterSize == 0 },
			problems: []string{`wsrep_cluster_size "three": not an integer`}},
		{name: "negative size", edit: map[string]string{"wsrep_cluster_size": "-2"},
			check:    func(g *nines.GaleraStatus) bool { return g.ClusterSize == 0 },
			problems: []string{`wsrep_cluster_size "-2": below 0`}},
		{name: "conf_id wrapped other than -1", edit: map[string]string{"wsrep_cluster_conf_id": "18446744073709551614"},
			check:    func(g *nines.GaleraStatus) bool { return g.ClusterConfID == 0 },
			problems: []string{`wsrep_cluster_conf_id "18446744073709551614": out of the int64 range`}},
		{name: "odd ready", edit: map[string]string{"wsrep_ready": "MAYBE"},
			check:    func(g *nines.GaleraStatus) bool { return !g.Ready && !g.Synced() },
			problems: []string{`wsrep_ready "MAYBE": not ON or OFF`}},
		{name: "missing ready", drop: "wsrep_ready",
			check:    func(g *nines.GaleraStatus) bool { return !g.Ready && !g.Synced() },
			problems: []string{`wsrep_ready is missing`}},
		{name: "local state beyond the wsrep API's", edit: map[string]string{"wsrep_local_state": "9"},
			check:    func(g *nines.GaleraStatus) bool { return !g.Synced() && g.LocalState == nines.LocalStateUndefined },
			problems: []string{`wsrep_local_state "9": not a member state number (0 to 5)`}},
		{name: "odd state uuid", edit: map[string]string{"wsrep_cluster_state_uuid": "nope"},
			check:    func(g *nines.GaleraStatus) bool { return g.ClusterStateUUID == "" },
			problems: []string{`wsrep_cluster_state_uuid "nope": not a UUID`}},
		{name: "flow control out of range", edit: map[string]string{"wsrep_flow_control_paused": "1.5"},
			check:    func(g *nines.GaleraStatus) bool { return g.FlowControlPaused == 0 },
			problems: []string{`wsrep_flow_control_paused "1.5": not a fraction`}},
		{name: "every odd value is named", edit: map[string]string{"wsrep_local_state": "x", "wsrep_connected": "yes"},
			check:    func(g *nines.GaleraStatus) bool { return !g.Synced() },
			problems: []string{`wsrep_local_state "x": not an integer`, `wsrep_connected "yes": not ON or OFF`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st := syncedStatus()
			for k, v := range tt.edit {
				st[k] = v
			}
			delete(st, tt.drop)
			g, err := ParseStatus(st, map[string]string{"wsrep_node_name": "n1"})
			if g == nil {
				t.Fatal("nil status")
			}
			if !tt.check(g) {
				t.Errorf("unexpected status %+v", g)
			}
			if len(tt.problems) == 0 {
				if err != nil {
					t.Fatalf("unexpected error: %v", err)
				}
				return
			}
			if !errors.Is(err, ErrBadStatus) {
				t.Fatalf("error %v does not wrap ErrBadStatus", err)
			}
			msg := err.Error()
			for _, p := range tt.problems {
				i := strings.Index(msg, p)
				if i < 0 {
					t.Fatalf("error %q does not contain %q", msg, p)
				}
				msg = msg[i+len(p):]
			}
		})
	}
}

// The agent sends the status as JSON and the remediator's job log keeps
// it: the typed fields must come back as they went.
func TestStatusJSONRoundTrip(t *testing.T) {
	g, err := ParseStatus(syncedStatus(), nil)
	if err != nil {
		t.Fatal(err)
	}
	b, err := json.Marshal(g)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(b), `"cluster_status":"Primary"`) || !strings.Contains(string(b), `"ready":true`) {
		t.Errorf("wire form %s", b)
	}
	var back nines.GaleraStatus
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	if back != *g || !back.Synced() {
		t.Errorf("round trip: %+v, want %+v", back, *g)
	}
	if err := json.Unmarshal([]byte(`{"cluster_status":"Primaryish"}`), &back); err == nil || !strings.Contains(err.Error(), "Primaryish") {
		t.Errorf("odd cluster status decoded: %v", err)
	}
}

func TestDescribeAndCommittedPosition(t *testing.T) {
	g, _ := ParseStatus(syncedStatus(), nil)
	if d := Describe(g); d != "Synced" {
		t.Errorf("Describe(synced) = %q", d)
	}
	if p := CommittedPosition(g); p != (Position{UUID: "9130690e-e921-11f1-b504-f6cb6679f2e6", Seqno: 31}) {
		t.Errorf("CommittedPosition = %+v", p)
	}
	st := syncedStatus()
	st["wsrep_cluster_status"] = "non-Primary"
	g, _ = ParseStatus(st, nil)
	if d := Describe(g); d != "non-Primary" {
		t.Errorf("Describe(non-Primary) = %q", d)
	}
	if d := Describe(nil); d != "unknown" {
		t.Errorf("Describe(nil) = %q", d)
	}
	if p := CommittedPosition(nil); !p.Undefined() {
		t.Errorf("CommittedPosition(nil) = %+v", p)
	}
}

func TestEnabled(t *testing.T) {
	if !Enabled(syncedStatus(), nil) {
		t.Error("a node with a provider name is not Enabled")
	}
	if Enabled(map[string]string{"wsrep_cluster_status": "Disconnected", "wsrep_provider_name": ""}, map[string]string{"wsrep_on": "OFF"}) {
		t.Error("wsrep off is Enabled")
	}
	if !Enabled(nil, map[string]string{"wsrep_on": "ON", "wsrep_provider": "/usr/lib/galera/libgalera_smm.so"}) {
		t.Error("wsrep on with a provider is not Enabled")
	}
}
