// Package mysql reads a MySQL or MariaDB server's status, variables and
// replica status, and names the results as mysqld_exporter does so the
// community's dashboards and rules work on nines unchanged.
//
// Readers take a Querier, not a connection pool, so the caller decides how
// many connections a node gets (nines keeps exactly one open per node).
package mysql

import (
	"context"
	"database/sql"
	"fmt"
	"regexp"
	"strings"

	"github.com/nines-project/nines/internal/metric"
)

// Querier is the part of *sql.DB, *sql.Conn or *sql.Tx the readers use.
type Querier interface {
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
}

const globalStatusQuery = `SHOW GLOBAL STATUS`

// ReadGlobalStatus runs SHOW GLOBAL STATUS: one statement.
func ReadGlobalStatus(ctx context.Context, q Querier) (map[string]string, error) {
	return readNameValue(ctx, q, globalStatusQuery)
}

func readNameValue(ctx context.Context, q Querier, query string) (map[string]string, error) {
	rows, err := q.QueryContext(ctx, query)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", query, err)
	}
	defer rows.Close()
	out := make(map[string]string, 700)
	var name string
	var value sql.RawBytes
	for rows.Next() {
		if err := rows.Scan(&name, &value); err != nil {
			return nil, fmt.Errorf("%s: %w", query, err)
		}
		out[name] = string(value)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("%s: %w", query, err)
	}
	return out, nil
}

// Status variables that mysqld_exporter folds into labelled families.
var globalStatusRE = regexp.MustCompile(`^(com|handler|connection_errors|innodb_buffer_pool_pages|innodb_rows|performance_schema)_(.*)$`)

// GlobalStatusMetrics adds the mysql_global_status_* families for status to
// set, plus mysql_galera_status_info and mysql_galera_evs_repl_latency_* on
// Galera nodes. Values that carry no number are left out, as mysqld_exporter
// does; the Galera package keeps the string states that matter.
func GlobalStatusMetrics(set *metric.Set, status map[string]string) {
	for key, raw := range status {
		key = strings.ToLower(key)
		if key == "wsrep_evs_repl_latency" {
			evsReplLatency(set, raw)
			continue
		}
		v, ok := ParseValue(raw)
		if !ok {
			continue
		}
		m := globalStatusRE.FindStringSubmatch(key)
		if m == nil {
			set.Add("mysql_global_status_"+key, "Generic metric from SHOW GLOBAL STATUS.", metric.Untyped, v)
			continue
		}
		switch m[1] {
		case "com":
			set.Add("mysql_global_status_commands_total", "Total number of executed MySQL commands.", metric.Counter, v, "command", m[2])
		case "handler":
			set.Add("mysql_global_status_handlers_total", "Total number of executed MySQL handlers.", metric.Counter, v, "handler", m[2])
		case "connection_errors":
			set.Add("mysql_global_status_connection_errors_total", "Total number of MySQL connection errors.", metric.Counter, v, "error", m[2])
		case "innodb_buffer_pool_pages":
			switch m[2] {
			case "data", "dirty", "free", "misc":
				set.Add("mysql_global_status_buffer_pool_pages", "Innodb buffer pool pages by state.", metric.Gauge, v, "state", m[2])
			default:
				set.Add("mysql_global_status_buffer_pool_page_changes_total", "Innodb buffer pool page state changes.", metric.Counter, v, "operation", m[2])
			}
		case "innodb_rows":
			set.Add("mysql_global_status_innodb_row_ops_total", "Total number of MySQL InnoDB row operations.", metric.Counter, v, "operation", m[2])
		case "performance_schema":
			set.Add("mysql_global_status_performance_schema_lost_total", "Total number of MySQL instrumentations that could not be loaded or created due to memory constraints.", metric.Counter, v, "instrumentation", m[2])
		}
	}
	if uuid := status["wsrep_local_state_uuid"]; uuid != "" {
		set.Add("mysql_galera_status_info", "PXC/Galera status information.", metric.Gauge, 1,
			"wsrep_local_state_uuid", uuid,
			"wsrep_cluster_state_uuid", status["wsrep_cluster_state_uuid"],
			"wsrep_provider_version", status["wsrep_provider_version"])
	}
}

// evsReplLatency splits wsrep_evs_repl_latency, "min/avg/max/stddev/count"
// in seconds, into the mysql_galera_evs_repl_latency_* gauges. A value with
// another shape is dropped: the server reports it empty before the first
// stats period ends.
func evsReplLatency(set *metric.Set, raw string) {
	parts := strings.Split(raw, "/")
	if len(parts) != 5 {
		return
	}
	names := []string{"min_seconds", "avg_seconds", "max_seconds", "stdev", "sample_size"}
	for i, p := range parts {
		if v, ok := ParseValue(p); ok {
			set.Add("mysql_galera_evs_repl_latency_"+names[i], "PXC/Galera group communication latency.", metric.Gauge, v)
		}
	}
}
