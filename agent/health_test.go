package agent

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"

	"github.com/nines-project/nines/galera"
)

// recordedSynced is SHOW GLOBAL STATUS LIKE 'wsrep%' of a Synced node of
// a 3-node MariaDB 10.11 / Galera 4 sandbox, trimmed to what is parsed.
func recordedSynced() map[string]string {
	return map[string]string{
		"wsrep_cluster_status":      "Primary",
		"wsrep_cluster_size":        "3",
		"wsrep_cluster_conf_id":     "3",
		"wsrep_cluster_state_uuid":  "9130690e-e921-11f1-b504-f6cb6679f2e6",
		"wsrep_local_state_uuid":    "9130690e-e921-11f1-b504-f6cb6679f2e6",
		"wsrep_local_state":         "4",
		"wsrep_local_state_comment": "Synced",
		"wsrep_ready":               "ON",
		"wsrep_connected":           "ON",
		"wsrep_last_committed":      "12",
		"wsrep_local_recv_queue":    "0",
		"wsrep_flow_control_paused": "0",
		"wsrep_evs_state":           "OPERATIONAL",
		"wsrep_provider_name":       "Galera",
	}
}

func TestGaleraHealth(t *testing.T) {
	tests := []struct {
		name   string
		edit   map[string]string
		desync string
		err    error
		ok     bool
		reason string // must appear in the reason
	}{
		{name: "Synced", desync: "OFF", ok: true, reason: "writer: n1 Synced, Primary (size 3), ready, not desynced"},
		{name: "Donor/Desynced", desync: "OFF", edit: map[string]string{"wsrep_local_state": "2", "wsrep_local_state_comment": "Donor/Desynced"},
			reason: "not Synced: Donor/Desynced (wsrep_local_state 2)"},
		{name: "Joiner", desync: "OFF", edit: map[string]string{"wsrep_local_state": "1", "wsrep_local_state_comment": "Joining: receiving State Transfer"},
			reason: "not Synced: Joining: receiving State Transfer (wsrep_local_state 1)"},
		{name: "Joined", desync: "OFF", edit: map[string]string{"wsrep_local_state": "3", "wsrep_local_state_comment": "Joined"},
			reason: "not Synced: Joined"},
		{name: "non-Primary", desync: "OFF", edit: map[string]string{"wsrep_cluster_status": "non-Primary", "wsrep_cluster_size": "1",
			"wsrep_local_state": "0", "wsrep_local_state_comment": "Initialized", "wsrep_ready": "OFF", "wsrep_cluster_conf_id": "18446744073709551615"},
			reason: "not in a Primary component (non-Primary)"},
		{name: "Disconnected", desync: "OFF", edit: map[string]string{"wsrep_cluster_status": "Disconnected", "wsrep_connected": "OFF", "wsrep_ready": "OFF"},
			reason: "not in a Primary component (Disconnected)"},
		{name: "wsrep_ready OFF", desync: "OFF", edit: map[string]string{"wsrep_ready": "OFF"}, reason: "wsrep_ready is OFF"},
		{name: "desync ON while still Synced", desync: "ON", reason: "wsrep_desync is ON"},
		{name: "desync unknown", desync: "", reason: "wsrep_desync unreadable"},
		{name: "unreadable", err: errors.New("dial unix /srv/n1/mysqld.sock: connect: no such file or directory"),
			reason: "status unreadable: dial unix /srv/n1/mysqld.sock: connect: no such file or directory"},
		{name: "timeout", err: context.DeadlineExceeded, reason: "status unreadable: context deadline exceeded"},
		{name: "odd state", desync: "OFF", edit: map[string]string{"wsrep_local_state": "four"}, reason: "status unreadable"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var r HealthReading
			if tt.err != nil {
				r.Err = tt.err
			} else {
				st := recordedSynced()
				for k, v := range tt.edit {
					st[k] = v
				}
				g, err := galera.ParseStatus(st, map[string]string{"wsrep_node_name": "n1"})
				r = HealthReading{Status: g, Desync: tt.desync, Err: err}
			}
			for _, role := range []string{HealthWriter, HealthReader} {
				ok, reason := GaleraHealth(role, r)
				if ok != tt.ok || !strings.Contains(reason, strings.Replace(tt.reason, "writer", role, 1)) {
					t.Errorf("%s: got %v %q, want %v and %q in it", role, ok, reason, tt.ok, tt.reason)
				}
				if strings.ContainsAny(reason, "\n\r") {
					t.Errorf("%s: reason %q is not one line", role, reason)
				}
				if !ok && !strings.HasPrefix(reason, "not a "+role+": ") {
					t.Errorf("%s: reason %q does not say what the node is not", role, reason)
				}
			}
		})
	}
}

// TestHealthEndpoints: the checks need the token like every /v1/
// endpoint, and a server that cannot be read is 503 with the reason, never
// 200.
func TestHealthEndpoints(t *testing.T) {
	_, c, base := serveStopped(t, "")
	for _, role := range []string{"writer", "reader"} {
		if code, _ := call(t, "GET", base+"/v1/health/"+role, "", ""); code != http.StatusUnauthorized {
			t.Errorf("%s without a token: %d, want 401", role, code)
		}
		code, body := call(t, "GET", base+"/v1/health/"+role, "Bearer "+testToken, "")
		if code != http.StatusServiceUnavailable || !strings.HasPrefix(body, "not a "+role+": status unreadable: ") ||
			strings.Count(body, "\n") != 1 || !strings.HasSuffix(body, "\n") {
			t.Errorf("%s of a stopped server: %d %q, want 503 and one line naming the error", role, code, body)
		}
		ok, reason, err := c.Health(context.Background(), role)
		if err != nil || ok || !strings.Contains(reason, "status unreadable") {
			t.Errorf("client %s: %v %q %v", role, ok, reason, err)
		}
	}
	if code, body := call(t, "GET", base+"/v1/health/primary", "Bearer "+testToken, ""); code != http.StatusNotFound {
		t.Errorf("unknown role: %d %q, want 404", code, body)
	}
	if code, _ := call(t, "POST", base+"/v1/health/writer", "Bearer "+testToken, ""); code == http.StatusOK {
		t.Errorf("POST to a health check answered 200")
	}
	if _, _, err := c.Health(context.Background(), "primary"); err == nil {
		t.Errorf("client: an unknown role is no error")
	}
}

func TestHealthWithoutGalera(t *testing.T) {
	_, _, base := serveStopped(t, "  galera: false\n")
	code, body := call(t, "GET", base+"/v1/health/writer", "Bearer "+testToken, "")
	if code != http.StatusServiceUnavailable || !strings.Contains(body, "without Galera are not built yet") {
		t.Errorf("writer of a server without Galera: %d %q, want 503 saying so", code, body)
	}
}
