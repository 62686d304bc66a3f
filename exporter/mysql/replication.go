package mysql

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	driver "github.com/go-sql-driver/mysql"

	"github.com/nines-project/nines"
	"github.com/nines-project/nines/internal/metric"
	"github.com/nines-project/nines/replication"
)

// replicationStateQuery reads, in one statement, what a MariaDB node of a
// replication cluster says about its GTID positions and semi-sync
// switches. MySQL has neither variable: the exporter reads this on
// MariaDB only.
const replicationStateQuery = `SELECT @@global.gtid_binlog_pos, @@global.gtid_slave_pos,
  @@global.rpl_semi_sync_master_enabled, @@global.rpl_semi_sync_slave_enabled,
  @@global.rpl_semi_sync_master_wait_point`

// heartbeatQuery reads how old the newest heartbeat row of one probe
// source is, as the node sees it. written_at is NOW(6) on the primary when
// the probe wrote it (a replica applies the primary's value), and NOW(6)
// here is the node's own clock: the appliance's clock plays no part, and
// on the primary itself the result is the age of the probe's last write.
// The rows of other sources (other appliances) are left out: only this
// appliance's probe is known to be running (nines_probe_success).
// TIMESTAMPDIFF reads both values in the session's time zone, which the
// scraper sets to UTC, so a DST change cannot shift the result.
const heartbeatQuery = `SELECT TIMESTAMPDIFF(MICROSECOND, MAX(written_at), NOW(6)), COUNT(*)
FROM nines.heartbeat WHERE source = ?`

// ErrNoHeartbeat: the node holds no heartbeat row of the probe source, or
// no heartbeat table at all.
var ErrNoHeartbeat = errors.New("no heartbeat")

// ReadReplicationState runs replicationStateQuery: one statement. A NULL
// or unreadable value is an error naming the variable and the value; the
// state is then nil, never a guess. A position too long to export whole
// is an error too, returned with the state.
func ReadReplicationState(ctx context.Context, q Querier) (*nines.ReplicationState, error) {
	rows, err := q.QueryContext(ctx, replicationStateQuery)
	if err != nil {
		return nil, fmt.Errorf("read replication state: %w", err)
	}
	defer rows.Close()
	names := []string{"gtid_binlog_pos", "gtid_slave_pos", "rpl_semi_sync_master_enabled", "rpl_semi_sync_slave_enabled", "rpl_semi_sync_master_wait_point"}
	vals := make([]sql.NullString, len(names))
	if !rows.Next() {
		if err := rows.Err(); err != nil {
			return nil, fmt.Errorf("read replication state: %w", err)
		}
		return nil, errors.New("read replication state: no row")
	}
	if err := rows.Scan(&vals[0], &vals[1], &vals[2], &vals[3], &vals[4]); err != nil {
		return nil, fmt.Errorf("read replication state: %w", err)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read replication state: %w", err)
	}
	raw := map[string]*string{}
	for i, n := range names {
		if vals[i].Valid {
			raw[n] = &vals[i].String
		}
	}
	st, err := parseReplicationState(raw)
	if err != nil {
		return st, fmt.Errorf("read replication state: %w", err)
	}
	return st, nil
}

// parseReplicationState checks the variables of replicationStateQuery; a
// nil entry was NULL. See ReadReplicationState for what comes back.
func parseReplicationState(raw map[string]*string) (*nines.ReplicationState, error) {
	var errs, capErrs []error
	get := func(name string) string {
		v := raw[name]
		if v == nil {
			errs = append(errs, fmt.Errorf("@@%s is NULL", name))
			return ""
		}
		return *v
	}
	st := &nines.ReplicationState{GTIDBinlogPos: get("gtid_binlog_pos"), GTIDSlavePos: get("gtid_slave_pos")}
	for _, name := range []string{"gtid_binlog_pos", "gtid_slave_pos"} {
		if raw[name] != nil {
			pos, err := replication.ParseState(*raw[name])
			switch {
			case err != nil:
				errs = append(errs, fmt.Errorf("@@%s: %w", name, err))
			case len(pos) > maxGTIDStreams:
				// Kept, but only the first streams become series.
				capErrs = append(capErrs, fmt.Errorf("@@%s: %d (domain, server) streams, over the %d nines exports", name, len(pos), maxGTIDStreams))
			}
		}
	}
	for _, b := range []struct {
		name string
		dst  *bool
	}{{"rpl_semi_sync_master_enabled", &st.SemiSyncMasterEnabled}, {"rpl_semi_sync_slave_enabled", &st.SemiSyncSlaveEnabled}} {
		v := get(b.name)
		switch strings.ToUpper(v) {
		case "1", "ON":
			*b.dst = true
		case "0", "OFF":
		default:
			if raw[b.name] != nil {
				errs = append(errs, fmt.Errorf("@@%s %q: want 0 or 1", b.name, v))
			}
		}
	}
	st.SemiSyncWaitPoint = strings.ToUpper(get("rpl_semi_sync_master_wait_point"))
	if raw["rpl_semi_sync_master_wait_point"] != nil && st.SemiSyncWaitPoint != "AFTER_SYNC" && st.SemiSyncWaitPoint != "AFTER_COMMIT" {
		errs = append(errs, fmt.Errorf("@@rpl_semi_sync_master_wait_point %q: want AFTER_SYNC or AFTER_COMMIT", *raw["rpl_semi_sync_master_wait_point"]))
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return st, errors.Join(capErrs...)
}

// ReadHeartbeatLag runs heartbeatQuery for source: one statement. A
// missing table or row is an error wrapping ErrNoHeartbeat that says
// which, never a lag of 0.
func ReadHeartbeatLag(ctx context.Context, q Querier, source string) (time.Duration, error) {
	rows, err := q.QueryContext(ctx, heartbeatQuery, source)
	if err != nil {
		var me *driver.MySQLError
		if errors.As(err, &me) && me.Number == 1146 { // ER_NO_SUCH_TABLE
			return 0, fmt.Errorf("read heartbeat lag: table nines.heartbeat does not exist on this node (the probe creates it on the primary; it reaches replicas through replication): %w", ErrNoHeartbeat)
		}
		return 0, fmt.Errorf("read heartbeat lag: %w", err)
	}
	defer rows.Close()
	var micros sql.NullInt64
	var n int64
	if rows.Next() {
		if err := rows.Scan(&micros, &n); err != nil {
			return 0, fmt.Errorf("read heartbeat lag: %w", err)
		}
	}
	if err := rows.Err(); err != nil {
		return 0, fmt.Errorf("read heartbeat lag: %w", err)
	}
	if n == 0 || !micros.Valid {
		return 0, fmt.Errorf("read heartbeat lag: nines.heartbeat holds no row of probe source %q on this node (is the probe of this cluster writing?): %w", source, ErrNoHeartbeat)
	}
	return time.Duration(micros.Int64) * time.Microsecond, nil
}

// maxGTIDStreams bounds the (domain, server) series per node and position:
// a position lists every server that ever wrote in each domain, a handful
// in practice; more than this is a history worth a look, not a metric.
// A longer position is a scrape error; its first streams are exported.
const maxGTIDStreams = 64

// HeartbeatMetrics adds nines_replication_heartbeat_lag_seconds; nothing
// when lag is nil (not read).
func HeartbeatMetrics(set *metric.Set, lag *time.Duration) {
	if lag != nil {
		set.Add("nines_replication_heartbeat_lag_seconds", "Node's clock minus written_at of the newest heartbeat row of this appliance's probe that the node holds: replication lag, IO thread included; about the probe interval when caught up, the probe's write age on the primary.", metric.Gauge, lag.Seconds())
	}
}

// ReplicationMetrics adds the nines_replication_* series of st: the
// semi-sync switches and the GTID positions as one sequence number per
// (domain, server_id), lowest first, at most maxGTIDStreams of each.
func ReplicationMetrics(set *metric.Set, st *nines.ReplicationState) {
	if st == nil {
		return
	}
	set.Add("nines_replication_semi_sync_master_enabled", "@@rpl_semi_sync_master_enabled, read every scrape: 1 when the node, as primary, waits for a replica's acknowledgement.", metric.Gauge, b2f(st.SemiSyncMasterEnabled))
	set.Add("nines_replication_semi_sync_slave_enabled", "@@rpl_semi_sync_slave_enabled, read every scrape: 1 when the node, as replica, acknowledges events.", metric.Gauge, b2f(st.SemiSyncSlaveEnabled))
	set.Add("nines_replication_semi_sync_wait_point_info", "@@rpl_semi_sync_master_wait_point (AFTER_SYNC or AFTER_COMMIT); constant 1.", metric.Gauge, 1, "wait_point", st.SemiSyncWaitPoint)
	for _, p := range []struct{ name, help, raw string }{
		{"nines_replication_gtid_binlog_seq", "Sequence number of the last GTID of each (domain, server_id) in @@gtid_binlog_pos: what the node's binlog holds.", st.GTIDBinlogPos},
		{"nines_replication_gtid_slave_seq", "Sequence number of the last GTID of each (domain, server_id) in @@gtid_slave_pos: what the node applied as a replica.", st.GTIDSlavePos},
	} {
		pos, err := replication.ParseState(p.raw)
		if err != nil {
			continue // ReadReplicationState reported it
		}
		keys := pos.Streams()
		if len(keys) > maxGTIDStreams {
			keys = keys[:maxGTIDStreams]
		}
		for _, k := range keys {
			// float64 is exact up to 2^53 transactions per stream.
			set.Add(p.name, p.help, metric.Gauge, float64(pos[k]),
				"domain", strconv.FormatUint(uint64(k.Domain), 10), "server_id", strconv.FormatUint(uint64(k.Server), 10))
		}
	}
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
