package agent

import (
	"context"
	"database/sql"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// DefaultMaxLag is the reader check's lag limit when the request names
// none (GET /v1/health/reader?max_lag=SECONDS).
const DefaultMaxLag = 10 * time.Second

// ReplicaChannel is one replication connection of SHOW ALL SLAVES STATUS
// (the default connection has an empty Name).
type ReplicaChannel struct {
	Name string
	// IORunning and SQLRunning as the server spells them: Yes, No, and
	// for the IO thread also Connecting or Preparing.
	IORunning  string
	SQLRunning string
	// SecondsBehind is Seconds_Behind_Master; nil when the server reports
	// NULL (a thread stopped, or nothing read yet).
	SecondsBehind *int64
	LastIOError   string
	LastSQLError  string
}

// running reports whether the connection replicates or tries to: either
// thread not stopped. A replica whose IO thread is Connecting (its primary
// died) still follows that primary and must not be taken for one.
func (c ReplicaChannel) running() bool {
	return c.IORunning != "No" && c.IORunning != "" || c.SQLRunning != "No" && c.SQLRunning != ""
}

func (c ReplicaChannel) label() string {
	if c.Name == "" {
		return "replication"
	}
	return fmt.Sprintf("replication connection %q", c.Name)
}

// ReplicationReading is what one health check read from a server without
// Galera: @@global.read_only as the server spells it (ON/OFF, 1/0) and its
// replication connections, or the error that kept either from being read.
type ReplicationReading struct {
	ReadOnly string
	Channels []ReplicaChannel
	Err      error
}

// ReplicationHealth decides a replication node's health for role:
//
//   - writer: the primary, the one server writes may go to: it answered,
//     no replication connection of it runs (neither thread; a replica
//     still Connecting to a dead primary counts as running) and read_only
//     is OFF. A fenced old primary (read_only ON) is never a writer.
//   - reader: a replica within its lag limit: at least one connection,
//     and on every connection both threads run (Yes) and
//     Seconds_Behind_Master is known and at most maxLag. The lag is
//     Seconds_Behind_Master, the server's own figure, because the agent
//     has no view of the probe's heartbeat rows; it reads 0 on an idle
//     replica and jumps after a long transaction, which is what a reader
//     pool needs, not an SLI. The primary is never a reader: reads that
//     must see the latest write go to the writer.
//
// A reading that failed is never healthy. The reason is one line.
func ReplicationHealth(role string, r ReplicationReading, maxLag time.Duration) (ok bool, reason string) {
	fail := func(format string, args ...any) (bool, string) {
		return false, oneLine(fmt.Sprintf("not a %s: ", role) + fmt.Sprintf(format, args...))
	}
	if r.Err != nil {
		return fail("status unreadable: %v", r.Err)
	}
	readOnly, known := onOff(r.ReadOnly)
	if !known {
		return fail("read_only unreadable (%q)", r.ReadOnly)
	}
	if role == HealthWriter {
		for _, c := range r.Channels {
			if c.running() {
				return fail("a replica: %s running (io=%s sql=%s)", c.label(), c.IORunning, c.SQLRunning)
			}
		}
		if readOnly {
			return fail("read_only is ON and nothing is replicated (fenced, or not yet promoted)")
		}
		return true, "writer: primary, read_only OFF, replicating from nobody"
	}
	if len(r.Channels) == 0 {
		return fail("replicates from nobody (a primary, or a stopped replica that was reset)")
	}
	worst := int64(-1)
	for _, c := range r.Channels {
		if c.IORunning != "Yes" || c.SQLRunning != "Yes" {
			errs := ""
			for _, e := range []string{c.LastIOError, c.LastSQLError} {
				if e != "" {
					errs += ": " + e
				}
			}
			return fail("%s io=%s sql=%s%s", c.label(), c.IORunning, c.SQLRunning, errs)
		}
		if c.SecondsBehind == nil {
			return fail("%s lag unknown (Seconds_Behind_Master NULL)", c.label())
		}
		if lag := time.Duration(*c.SecondsBehind) * time.Second; lag > maxLag {
			return fail("%s %ds behind, over the %s limit", c.label(), *c.SecondsBehind, maxLag)
		}
		worst = max(worst, *c.SecondsBehind)
	}
	return true, fmt.Sprintf("reader: replica, %ds behind (limit %s)", worst, maxLag)
}

// onOff reads a boolean variable as the server returns it.
func onOff(v string) (on, known bool) {
	switch strings.ToUpper(v) {
	case "ON", "1":
		return true, true
	case "OFF", "0":
		return false, true
	}
	return false, false
}

// parseMaxLag reads the reader check's max_lag parameter: whole seconds,
// 0 or more; empty is DefaultMaxLag.
func parseMaxLag(v string) (time.Duration, error) {
	if v == "" {
		return DefaultMaxLag, nil
	}
	n, err := strconv.ParseUint(v, 10, 31)
	if err != nil {
		return 0, fmt.Errorf("max_lag %q: want whole seconds, 0 or more", oneLine(v))
	}
	return time.Duration(n) * time.Second, nil
}

// queryReplicationHealth reads read_only and every replication
// connection: two statements, both cheap.
func queryReplicationHealth(ctx context.Context, db *sql.DB) ReplicationReading {
	var r ReplicationReading
	if err := db.QueryRowContext(ctx, "SELECT @@global.read_only").Scan(&r.ReadOnly); err != nil {
		return ReplicationReading{Err: err}
	}
	rows, err := db.QueryContext(ctx, "SHOW ALL SLAVES STATUS")
	if err != nil {
		return ReplicationReading{Err: err}
	}
	defer rows.Close()
	cols, err := rows.Columns()
	if err != nil {
		return ReplicationReading{Err: err}
	}
	vals := make([]sql.NullString, len(cols))
	ptrs := make([]any, len(cols))
	for i := range vals {
		ptrs[i] = &vals[i]
	}
	for rows.Next() {
		if err := rows.Scan(ptrs...); err != nil {
			return ReplicationReading{Err: err}
		}
		m := map[string]sql.NullString{}
		for i, c := range cols {
			m[c] = vals[i]
		}
		c := ReplicaChannel{Name: m["Connection_name"].String, IORunning: m["Slave_IO_Running"].String, SQLRunning: m["Slave_SQL_Running"].String,
			LastIOError: m["Last_IO_Error"].String, LastSQLError: m["Last_SQL_Error"].String}
		if sbm := m["Seconds_Behind_Master"]; sbm.Valid {
			n, err := strconv.ParseInt(sbm.String, 10, 64)
			if err != nil {
				return ReplicationReading{Err: fmt.Errorf("%s: Seconds_Behind_Master %q: %w", c.label(), sbm.String, err)}
			}
			c.SecondsBehind = &n
		}
		r.Channels = append(r.Channels, c)
	}
	if err := rows.Err(); err != nil {
		return ReplicationReading{Err: err}
	}
	return r
}
