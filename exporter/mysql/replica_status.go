package mysql

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/nines-project/nines"
	"github.com/nines-project/nines/internal/metric"
)

// Replica status statements by flavour. MariaDB's ALL form lists every
// named connection (multi-source); MySQL 8.0.22+ uses the REPLICA spelling
// and reports channels as rows.
const (
	replicaStatusMariaDB = `SHOW ALL SLAVES STATUS`
	replicaStatusMySQL   = `SHOW REPLICA STATUS`
)

// ReplicaStatusQuery picks the statement for a server whose version string
// (@@version) is version.
func ReplicaStatusQuery(version string) string {
	if strings.Contains(strings.ToLower(version), "mariadb") {
		return replicaStatusMariaDB
	}
	return replicaStatusMySQL
}

// ReadReplicaStatus runs query (from ReplicaStatusQuery): one statement. A
// server that replicates from nobody returns no rows and no error. A
// thread state or error number nines cannot read is an error naming the
// column and its value, returned with every channel read: that field is
// then unknown (ThreadUnknown), never taken for running or for 0.
func ReadReplicaStatus(ctx context.Context, q Querier, query string) ([]nines.ReplicaStatus, error) {
	rows, err := q.QueryContext(ctx, query)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", query, err)
	}
	defer rows.Close()
	cols, err := rows.Columns()
	if err != nil {
		return nil, fmt.Errorf("%s: %w", query, err)
	}
	var out []nines.ReplicaStatus
	var bad []error
	vals := make([]sql.RawBytes, len(cols))
	ptrs := make([]any, len(cols))
	for i := range vals {
		ptrs[i] = &vals[i]
	}
	for rows.Next() {
		if err := rows.Scan(ptrs...); err != nil {
			return nil, fmt.Errorf("%s: %w", query, err)
		}
		fields := make(map[string]string, len(cols))
		nulls := map[string]bool{}
		for i, c := range cols {
			if vals[i] == nil {
				nulls[strings.ToLower(c)] = true
			}
			fields[c] = string(vals[i])
		}
		r, err := replicaFromFields(fields, nulls)
		if err != nil {
			bad = append(bad, fmt.Errorf("%s: %w", query, err))
		}
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("%s: %w", query, err)
	}
	return out, errors.Join(bad...)
}

// replicaFromFields reads the typed fields under either vocabulary
// (Slave_/Master_ or Replica_/Source_). nulls holds lower-cased column
// names whose value was SQL NULL. The error names every thread state or
// error number that could not be read.
func replicaFromFields(fields map[string]string, nulls map[string]bool) (nines.ReplicaStatus, error) {
	lower := make(map[string]string, len(fields))
	spelled := make(map[string]string, len(fields)) // lower-case → the server's spelling
	for k, v := range fields {
		lower[strings.ToLower(k)] = v
		spelled[strings.ToLower(k)] = k
	}
	pick := func(names ...string) (string, string) {
		for _, n := range names {
			if v, ok := lower[n]; ok {
				return n, v
			}
		}
		return "", ""
	}
	var errs []error
	r := nines.ReplicaStatus{Fields: fields}
	_, r.Channel = pick("connection_name", "channel_name")
	_, r.SourceHost = pick("master_host", "source_host")
	_, port := pick("master_port", "source_port")
	r.SourcePort, _ = strconv.Atoi(port)
	var err error
	col, io := pick("slave_io_running", "replica_io_running")
	r.IOState = io
	if r.IOThread, err = ParseThreadState(spelled[col], io, nulls[col], true); err != nil {
		errs = append(errs, err)
	}
	r.IORunning = r.IOThread == nines.ThreadRunning
	col, sqlState := pick("slave_sql_running", "replica_sql_running")
	if r.SQLThread, err = ParseThreadState(spelled[col], sqlState, nulls[col], false); err != nil {
		errs = append(errs, err)
	}
	r.SQLRunning = r.SQLThread == nines.ThreadRunning
	if col, v := pick("seconds_behind_master", "seconds_behind_source"); col != "" && !nulls[col] {
		if n, err := strconv.ParseInt(v, 10, 64); err == nil {
			r.SecondsBehind = &n
		}
	}
	for _, e := range []struct {
		col string
		dst *int
	}{{"last_io_errno", &r.LastIOErrno}, {"last_sql_errno", &r.LastSQLErrno}} {
		v, ok := lower[e.col]
		if !ok {
			continue // a server without the column reports no error number
		}
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 || nulls[e.col] {
			errs = append(errs, fmt.Errorf("%s %q: not an error number", spelled[e.col], v))
			continue
		}
		*e.dst = n
	}
	_, r.LastIOError = pick("last_io_error")
	_, r.LastSQLError = pick("last_sql_error")
	_, r.GTIDIOPos = pick("gtid_io_pos", "retrieved_gtid_set")
	if len(errs) > 0 {
		return r, fmt.Errorf("channel %q: %w", r.Channel, errors.Join(errs...))
	}
	return r, nil
}

// ParseThreadState reads a replica thread's state as reported in column
// col: Yes, No, or (IO thread only, withConnecting) Connecting, in any
// case. NULL, empty or any other value is an error naming the column and
// the value, with ThreadUnknown: a state nines cannot read is never taken
// for running, and never for stopped either.
func ParseThreadState(col, v string, null, withConnecting bool) (nines.ThreadState, error) {
	if col == "" {
		return nines.ThreadUnknown, errors.New("no Slave_IO_Running/Slave_SQL_Running column in replica status")
	}
	if null {
		return nines.ThreadUnknown, fmt.Errorf("%s is NULL", col)
	}
	switch strings.ToLower(v) {
	case "yes":
		return nines.ThreadRunning, nil
	case "no":
		return nines.ThreadStopped, nil
	case "connecting":
		if withConnecting {
			return nines.ThreadConnecting, nil
		}
	}
	want := "Yes or No"
	if withConnecting {
		want = "Yes, No or Connecting"
	}
	return nines.ThreadUnknown, fmt.Errorf("%s %q: want %s", col, v, want)
}

// ReplicaStatusMetrics adds mysql_slave_status_* for every numeric column
// of each channel, labelled as mysqld_exporter labels them. A NULL
// Seconds_Behind_Master produces no series, so lag rules never read a
// stopped replica as "0 s behind".
func ReplicaStatusMetrics(set *metric.Set, replicas []nines.ReplicaStatus) {
	for _, r := range replicas {
		lower := make(map[string]string, len(r.Fields))
		for k, v := range r.Fields {
			lower[strings.ToLower(k)] = v
		}
		labels := []string{
			"master_host", r.SourceHost,
			"master_uuid", firstOf(lower, "master_uuid", "source_uuid"),
			"channel_name", lower["channel_name"],
			"connection_name", lower["connection_name"],
		}
		for col, raw := range lower {
			if (col == "seconds_behind_master" || col == "seconds_behind_source") && r.SecondsBehind == nil {
				continue
			}
			v, ok := ParseValue(raw)
			if !ok {
				continue
			}
			set.Add("mysql_slave_status_"+col, "Generic metric from SHOW SLAVE STATUS.", metric.Untyped, v, labels...)
		}
		// mysqld_exporter's slave_io_running is 0 for Connecting as for
		// No; these tell them apart. An unreadable state has no series.
		if v, ok := threadStateValue(r.IOThread); ok {
			set.Add("nines_replication_io_thread_state", "Slave_IO_Running: 0 No (stopped), 1 Yes (running), 2 Connecting (retrying its source).", metric.Gauge, v, labels...)
		}
		if v, ok := threadStateValue(r.SQLThread); ok {
			set.Add("nines_replication_sql_thread_state", "Slave_SQL_Running: 0 No (stopped), 1 Yes (running).", metric.Gauge, v, labels...)
		}
	}
}

// threadStateValue is the documented number of a thread state.
func threadStateValue(t nines.ThreadState) (float64, bool) {
	switch t {
	case nines.ThreadStopped:
		return 0, true
	case nines.ThreadRunning:
		return 1, true
	case nines.ThreadConnecting:
		return 2, true
	}
	return 0, false
}

func firstOf(m map[string]string, keys ...string) string {
	for _, k := range keys {
		if v, ok := m[k]; ok {
			return v
		}
	}
	return ""
}
