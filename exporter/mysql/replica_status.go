package mysql

import (
	"context"
	"database/sql"
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
// server that replicates from nobody returns no rows and no error.
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
		out = append(out, replicaFromFields(fields, nulls))
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("%s: %w", query, err)
	}
	return out, nil
}

// replicaFromFields reads the typed fields under either vocabulary
// (Slave_/Master_ or Replica_/Source_). nulls holds lower-cased column
// names whose value was SQL NULL.
func replicaFromFields(fields map[string]string, nulls map[string]bool) nines.ReplicaStatus {
	lower := make(map[string]string, len(fields))
	for k, v := range fields {
		lower[strings.ToLower(k)] = v
	}
	pick := func(names ...string) (string, string) {
		for _, n := range names {
			if v, ok := lower[n]; ok {
				return n, v
			}
		}
		return "", ""
	}
	r := nines.ReplicaStatus{Fields: fields}
	_, r.Channel = pick("connection_name", "channel_name")
	_, r.SourceHost = pick("master_host", "source_host")
	_, port := pick("master_port", "source_port")
	r.SourcePort, _ = strconv.Atoi(port)
	_, r.IOState = pick("slave_io_running", "replica_io_running")
	r.IORunning = strings.EqualFold(r.IOState, "yes")
	_, sqlState := pick("slave_sql_running", "replica_sql_running")
	r.SQLRunning = strings.EqualFold(sqlState, "yes")
	if col, v := pick("seconds_behind_master", "seconds_behind_source"); col != "" && !nulls[col] {
		if n, err := strconv.ParseInt(v, 10, 64); err == nil {
			r.SecondsBehind = &n
		}
	}
	_, r.LastIOError = pick("last_io_error")
	_, r.LastSQLError = pick("last_sql_error")
	_, r.GTIDIOPos = pick("gtid_io_pos", "retrieved_gtid_set")
	return r
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
	}
}

func firstOf(m map[string]string, keys ...string) string {
	for _, k := range keys {
		if v, ok := m[k]; ok {
			return v
		}
	}
	return ""
}
