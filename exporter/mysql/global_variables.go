package mysql

import (
	"context"
	"strings"

	"github.com/nines-project/nines/galera"
	"github.com/nines-project/nines/internal/metric"
)

const globalVariablesQuery = `SHOW GLOBAL VARIABLES`

// ReadGlobalVariables runs SHOW GLOBAL VARIABLES: one statement. Variables
// change rarely, so the exporter reads them far less often than status.
func ReadGlobalVariables(ctx context.Context, q Querier) (map[string]string, error) {
	return readNameValue(ctx, q, globalVariablesQuery)
}

// FastVariables are the variables read on every scrape, not every
// variables interval: a failover, a switchover or a backup changes them
// at runtime, and alerts (two writable nodes, a node that replicates
// from nobody, a desynced Galera node) must see that within seconds.
// (The semi-sync switches are read every scrape by ReadReplicationState.)
var FastVariables = []string{"read_only", "wsrep_desync"}

var fastVariablesQuery = "SHOW GLOBAL VARIABLES WHERE Variable_name IN ('" + strings.Join(FastVariables, "','") + "')"

// ReadFastVariables reads FastVariables in one statement; a server that
// lacks one (MySQL has no wsrep_desync) returns the other.
func ReadFastVariables(ctx context.Context, q Querier) (map[string]string, error) {
	return readNameValue(ctx, q, fastVariablesQuery)
}

// GlobalVariablesMetrics adds mysql_global_variables_* for every numeric
// variable, mysql_version_info, and on Galera mysql_galera_variables_info
// and mysql_galera_gcache_size_bytes, as mysqld_exporter names them.
func GlobalVariablesMetrics(set *metric.Set, vars map[string]string) {
	for key, raw := range vars {
		if v, ok := ParseValue(raw); ok {
			set.Add("mysql_global_variables_"+strings.ToLower(key), "Generic gauge metric from SHOW GLOBAL VARIABLES.", metric.Gauge, v)
		}
	}
	if vars["version"] != "" {
		set.Add("mysql_version_info", "MySQL version and distribution.", metric.Gauge, 1,
			"version", vars["version"], "innodb_version", vars["innodb_version"], "version_comment", vars["version_comment"])
	}
	if name := vars["wsrep_cluster_name"]; name != "" {
		set.Add("mysql_galera_variables_info", "PXC/Galera variables information.", metric.Gauge, 1, "wsrep_cluster_name", name)
	}
	if size, ok := GcacheSize(vars["wsrep_provider_options"]); ok {
		set.Add("mysql_galera_gcache_size_bytes", "PXC/Galera gcache size.", metric.Gauge, size)
	}
}

// GcacheSize reads gcache.size from wsrep_provider_options
// ("...; gcache.size = 32M; ..."), honouring K/M/G suffixes.
func GcacheSize(opts string) (float64, bool) {
	val, ok := galera.ProviderOption(opts, "gcache.size")
	if !ok {
		return 0, false
	}
	mult := 1.0
	if n := len(val); n > 0 {
		switch val[n-1] {
		case 'K', 'k':
			mult, val = 1<<10, val[:n-1]
		case 'M', 'm':
			mult, val = 1<<20, val[:n-1]
		case 'G', 'g':
			mult, val = 1<<30, val[:n-1]
		case 'T', 't':
			mult, val = 1<<40, val[:n-1]
		}
	}
	v, ok := ParseValue(val)
	if !ok || v < 0 {
		return 0, false
	}
	return v * mult, true
}
