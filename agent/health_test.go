package agent

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

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

// TestHealthWithoutGalera: an agent configured galera: false answers
// with the replication checks; a stopped server is 503 naming the error,
// and a bad max_lag is 400.
func TestHealthWithoutGalera(t *testing.T) {
	_, _, base := serveStopped(t, "  galera: false\n")
	code, body := call(t, "GET", base+"/v1/health/writer", "Bearer "+testToken, "")
	if code != http.StatusServiceUnavailable || !strings.HasPrefix(body, "not a writer: status unreadable: ") {
		t.Errorf("writer of a stopped server without Galera: %d %q, want 503 naming the error", code, body)
	}
	code, body = call(t, "GET", base+"/v1/health/reader?max_lag=5", "Bearer "+testToken, "")
	if code != http.StatusServiceUnavailable || !strings.HasPrefix(body, "not a reader: status unreadable: ") {
		t.Errorf("reader of a stopped server without Galera: %d %q", code, body)
	}
	for _, q := range []string{"-1", "ten", "1.5"} {
		code, body = call(t, "GET", base+"/v1/health/reader?max_lag="+q, "Bearer "+testToken, "")
		if code != http.StatusBadRequest || !strings.Contains(body, "max_lag") {
			t.Errorf("max_lag=%s: %d %q, want 400 naming max_lag", q, code, body)
		}
	}
}

func TestReplicationHealth(t *testing.T) {
	lag := func(n int64) *int64 { return &n }
	replica := func(io, sqlt string, behind *int64) []ReplicaChannel {
		return []ReplicaChannel{{IORunning: io, SQLRunning: sqlt, SecondsBehind: behind}}
	}
	tests := []struct {
		name   string
		r      ReplicationReading
		maxLag time.Duration
		writer bool
		reader bool
		reason string // in the reason of the failing role, or of the passing one
	}{
		{name: "primary", r: ReplicationReading{ReadOnly: "OFF"}, writer: true, reason: "writer: primary, read_only OFF, replicating from nobody"},
		{name: "primary as 0", r: ReplicationReading{ReadOnly: "0"}, writer: true, reason: "not a reader: replicates from nobody"},
		{name: "fenced old primary", r: ReplicationReading{ReadOnly: "ON"}, reason: "not a writer: read_only is ON and nothing is replicated"},
		{name: "healthy replica", r: ReplicationReading{ReadOnly: "ON", Channels: replica("Yes", "Yes", lag(0))}, reader: true,
			reason: "reader: replica, 0s behind (limit 10s)"},
		{name: "replica left writable", r: ReplicationReading{ReadOnly: "OFF", Channels: replica("Yes", "Yes", lag(3))}, reader: true,
			reason: "not a writer: a replica: replication running (io=Yes sql=Yes)"},
		{name: "primary died, IO reconnecting", r: ReplicationReading{ReadOnly: "ON", Channels: []ReplicaChannel{{IORunning: "Connecting", SQLRunning: "Yes",
			LastIOError: "error reconnecting to master 'repl@127.0.0.1:3306' - retry-time: 1  maximum-retries: 100000  message: Can't connect"}}},
			reason: "not a reader: replication io=Connecting sql=Yes: error reconnecting to master"},
		{name: "SQL thread broken", r: ReplicationReading{ReadOnly: "ON", Channels: []ReplicaChannel{{IORunning: "Yes", SQLRunning: "No",
			LastSQLError: "Duplicate entry '1' for key 'PRIMARY'"}}}, reason: "not a reader: replication io=Yes sql=No: Duplicate entry"},
		{name: "stopped replica, read_only OFF", r: ReplicationReading{ReadOnly: "OFF", Channels: replica("No", "No", nil)}, writer: true,
			reason: "not a reader: replication io=No sql=No"},
		{name: "lagging", r: ReplicationReading{ReadOnly: "ON", Channels: replica("Yes", "Yes", lag(11))},
			reason: "not a reader: replication 11s behind, over the 10s limit"},
		{name: "lag at the limit", r: ReplicationReading{ReadOnly: "ON", Channels: replica("Yes", "Yes", lag(10))}, reader: true},
		{name: "own limit", maxLag: 30 * time.Second, r: ReplicationReading{ReadOnly: "ON", Channels: replica("Yes", "Yes", lag(11))}, reader: true,
			reason: "reader: replica, 11s behind (limit 30s)"},
		{name: "lag NULL", r: ReplicationReading{ReadOnly: "ON", Channels: replica("Yes", "Yes", nil)}, reason: "lag unknown (Seconds_Behind_Master NULL)"},
		{name: "named connection", r: ReplicationReading{ReadOnly: "ON", Channels: []ReplicaChannel{{Name: "dr", IORunning: "Yes", SQLRunning: "Yes", SecondsBehind: lag(0)},
			{Name: "other", IORunning: "Connecting", SQLRunning: "Yes"}}}, reason: `not a writer: a replica: replication connection "dr" running`},
		{name: "unreadable", r: ReplicationReading{Err: errors.New("dial unix /srv/n1/mysqld.sock: connect: no such file\nor directory")},
			reason: "not a writer: status unreadable: dial unix /srv/n1/mysqld.sock: connect: no such file or directory"},
		{name: "read_only odd", r: ReplicationReading{ReadOnly: ""}, reason: `read_only unreadable ("")`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			maxLag := tt.maxLag
			if maxLag == 0 {
				maxLag = DefaultMaxLag
			}
			wok, wreason := ReplicationHealth(HealthWriter, tt.r, maxLag)
			rok, rreason := ReplicationHealth(HealthReader, tt.r, maxLag)
			if wok != tt.writer || rok != tt.reader {
				t.Errorf("writer %v (%s), reader %v (%s); want writer %v reader %v", wok, wreason, rok, rreason, tt.writer, tt.reader)
			}
			if !strings.Contains(wreason, tt.reason) && !strings.Contains(rreason, tt.reason) {
				t.Errorf("reasons %q and %q, want one containing %q", wreason, rreason, tt.reason)
			}
			for _, r := range []string{wreason, rreason} {
				if strings.Contains(r, "\n") {
					t.Errorf("reason on two lines: %q", r)
				}
			}
		})
	}
}
