package agent

import (
	"context"
	"database/sql"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/nines-project/nines"
	"github.com/nines-project/nines/internal/mariadbd"
)

// Roles a health check answers for (GET /v1/health/{role}).
const (
	HealthWriter = "writer"
	HealthReader = "reader"
)

// healthTimeout bounds the one status query of a health check. HAProxy
// checks every 500 ms and gives a check 1 s (the generated config's
// `timeout check`): the agent answers its 503 with the reason before
// HAProxy gives up on it.
const healthTimeout = 800 * time.Millisecond

// HealthReading is what one health check read from the server: the
// parsed wsrep status, wsrep_desync as the server spells it, or the error
// that kept either from being read.
type HealthReading struct {
	Status *nines.GaleraStatus
	Desync string
	Err    error
}

// GaleraHealth decides a Galera node's health for role (writer or
// reader): healthy when the reading succeeded and the node is Synced
// (wsrep_local_state 4) in a Primary component, wsrep_ready is ON and
// wsrep_desync is OFF. The reason is one line, for HAProxy's logs and
// the operator. A reading that failed, or that did not parse in full, is
// never healthy. The choice of one writer among the healthy nodes is
// HAProxy's (one active server, the others backup), so both roles decide
// alike today.
func GaleraHealth(role string, r HealthReading) (ok bool, reason string) {
	name := ""
	if r.Status != nil && r.Status.NodeName != "" {
		name = r.Status.NodeName + " "
	}
	fail := func(format string, args ...any) (bool, string) {
		return false, oneLine(fmt.Sprintf("not a %s: %s", role, name) + fmt.Sprintf(format, args...))
	}
	g := r.Status
	switch {
	case r.Err != nil:
		return fail("status unreadable: %v", r.Err)
	case g == nil:
		return fail("status unreadable: no wsrep status")
	case !g.Primary():
		return fail("not in a Primary component (%s)", g.ClusterStatus)
	case g.LocalState != nines.LocalStateSynced:
		return fail("not Synced: %s (wsrep_local_state %d)", g.LocalStateComment, int(g.LocalState))
	case !g.Ready:
		return fail("wsrep_ready is OFF")
	case !strings.EqualFold(r.Desync, "OFF"):
		if r.Desync == "" {
			return fail("wsrep_desync unreadable")
		}
		return fail("wsrep_desync is %s", r.Desync)
	}
	return true, oneLine(fmt.Sprintf("%s: %sSynced, Primary (size %d), ready, not desynced", role, name, g.ClusterSize))
}

// oneLine keeps a reason on one line: error texts may carry newlines.
func oneLine(s string) string {
	return strings.Join(strings.Fields(s), " ")
}

// readHealth reads the node's status for a health check: one query (two
// for replication) over the local socket within healthTimeout.
func (a *Agent) readHealth(ctx context.Context, galera bool) (HealthReading, ReplicationReading) {
	db, err := a.srv.DB()
	if err != nil {
		return HealthReading{Err: err}, ReplicationReading{Err: err}
	}
	defer db.Close()
	ctx, cancel := context.WithTimeout(ctx, healthTimeout)
	defer cancel()
	if galera {
		return queryHealth(ctx, db), ReplicationReading{}
	}
	return HealthReading{}, queryReplicationHealth(ctx, db)
}

func queryHealth(ctx context.Context, db *sql.DB) HealthReading {
	// wsrep_node_name is for the reason line.
	g, vars, err := mariadbd.QueryWsrepVars(ctx, db, "wsrep_desync", "wsrep_node_name", "wsrep_cluster_name")
	return HealthReading{Status: g, Desync: vars["wsrep_desync"], Err: err}
}

// health serves GET /v1/health/{role}: 200 or 503 with a one-line text
// reason, for HAProxy's httpchk. It only reads.
//
// Which checks apply is the agent's configuration, not a guess from the
// server: server.galera (default true) gives GaleraHealth; galera: false,
// a server without wsrep, gives ReplicationHealth. A server that is down
// cannot be asked, and a replication node must never pass as a Galera
// one, so the configuration decides. The reader check of a replication
// node takes ?max_lag=SECONDS (default DefaultMaxLag); a bad value is 400.
func (a *Agent) health(w http.ResponseWriter, r *http.Request) {
	role := r.PathValue("role")
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	if role != HealthWriter && role != HealthReader {
		w.WriteHeader(http.StatusNotFound)
		_, _ = io.WriteString(w, "no health check "+oneLine(role)+": use writer or reader\n")
		return
	}
	maxLag, err := parseMaxLag(r.URL.Query().Get("max_lag"))
	if err != nil {
		w.WriteHeader(http.StatusBadRequest)
		_, _ = io.WriteString(w, err.Error()+"\n")
		return
	}
	var ok bool
	var reason string
	start := a.now()
	galera := a.cfg.IsGalera()
	g, repl := a.readHealth(r.Context(), galera)
	if galera {
		ok, reason = GaleraHealth(role, g)
	} else {
		ok, reason = ReplicationHealth(role, repl, maxLag)
	}
	a.log.Debug("health", "role", role, "ok", ok, "reason", reason, "took", a.now().Sub(start).Round(time.Millisecond))
	if ok {
		w.WriteHeader(http.StatusOK)
	} else {
		w.WriteHeader(http.StatusServiceUnavailable)
	}
	_, _ = io.WriteString(w, reason+"\n")
}
