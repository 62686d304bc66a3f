package probe

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/go-sql-driver/mysql"
)

// writer performs the probe's SQL through one endpoint. sqlWriter is the
// real one; the accounting tests substitute fakes. Calls for one endpoint
// never overlap.
type writer interface {
	// prepare creates the schema if it is missing and returns the highest
	// seq already logged for this source and endpoint (0 if none), so a
	// restarted prober continues the sequence.
	prepare(ctx context.Context) (lastSeq uint64, err error)
	// write runs one probe with seq: the heartbeat upsert and the log row
	// in one transaction, then the read-back.
	write(ctx context.Context, seq uint64) attempt
	// prune deletes one batch of log rows older than pruneAge and returns
	// how many it deleted.
	prune(ctx context.Context) (int64, error)
	close() error
}

// attempt is what one write through an endpoint came to.
type attempt struct {
	// acked: COMMIT returned OK, so the write is acknowledged and must
	// survive any failure the cluster is built to survive.
	acked bool
	// uncertain: COMMIT was sent but no answer came back (error or
	// timeout). The write may or may not have committed; it is never
	// counted as acknowledged.
	uncertain bool
	// err is nil only when the write was acknowledged and read back.
	err error
}

// The probe's tables. heartbeat holds one row per (source, endpoint), so
// probes through different endpoints never conflict in Galera's
// certification. probe_log keeps every acknowledged seq for a day, which
// makes "no acknowledged write was lost" checkable after a drill
// (VerifyNoLoss). written_at is the server's clock, the same clock prune
// compares it with.
const (
	tablesPresentSQL = `SELECT COUNT(*) FROM information_schema.TABLES
WHERE TABLE_SCHEMA = 'nines' AND TABLE_NAME IN ('heartbeat', 'probe_log')`
	createSchemaSQL    = `CREATE DATABASE IF NOT EXISTS nines`
	createHeartbeatSQL = `CREATE TABLE IF NOT EXISTS nines.heartbeat (
  source VARCHAR(64) NOT NULL,
  endpoint VARCHAR(255) NOT NULL,
  seq BIGINT UNSIGNED NOT NULL,
  written_at TIMESTAMP(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6),
  PRIMARY KEY (source, endpoint)
) ENGINE=%s`
	createProbeLogSQL = `CREATE TABLE IF NOT EXISTS nines.probe_log (
  source VARCHAR(64) NOT NULL,
  endpoint VARCHAR(255) NOT NULL,
  seq BIGINT UNSIGNED NOT NULL,
  written_at TIMESTAMP(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6),
  PRIMARY KEY (source, endpoint, seq)
) ENGINE=%s`
	lastSeqSQL = `SELECT COALESCE(MAX(seq), 0) FROM nines.probe_log WHERE source = ? AND endpoint = ?`

	// The seq of a write that was not acknowledged is written again by the
	// next probe (see Prober), and that write may find the row of an
	// uncertain commit that did go through: both statements are upserts.
	upsertHeartbeatSQL = `INSERT INTO nines.heartbeat (source, endpoint, seq, written_at)
VALUES (?, ?, ?, NOW(6)) ON DUPLICATE KEY UPDATE seq = ?, written_at = NOW(6)`
	logWriteSQL = `INSERT INTO nines.probe_log (source, endpoint, seq, written_at)
VALUES (?, ?, ?, NOW(6)) ON DUPLICATE KEY UPDATE written_at = NOW(6)`
	readBackSQL = `SELECT seq FROM nines.heartbeat WHERE source = ? AND endpoint = ?`

	// pruneSQL walks the (source, endpoint) range of the primary key from
	// its oldest seq and stops after one batch, so it stays cheap however
	// large the log is; a full batch makes the next prune come soon after.
	pruneSQL = `DELETE FROM nines.probe_log
WHERE source = ? AND endpoint = ? AND written_at < NOW(6) - INTERVAL 1 DAY
ORDER BY seq LIMIT 1000`
	pruneBatch = 1000
)

// sqlWriter probes one endpoint over one connection kept open between
// probes, so a probe measures a write, not a connect. The connection is
// dropped after any error, so the next probe dials afresh instead of
// reusing a socket in an unknown state.
type sqlWriter struct {
	db       *sql.DB
	source   string
	endpoint string
	// ddl is shared by the writers of one Prober: one token, taken to
	// create the schema (see prepare).
	ddl chan struct{}
	// engine is the tables' storage engine (Options.Engine).
	engine string
}

var _ writer = (*sqlWriter)(nil)

// newSQLWriter prepares a writer for ep; it connects on first use.
// timeout bounds the dial and each network read and write, a backstop
// behind the per-probe context.
func newSQLWriter(ep Endpoint, source, engine string, timeout time.Duration, ddl chan struct{}, log *slog.Logger) (*sqlWriter, error) {
	cfg := mysql.NewConfig()
	cfg.Net = "tcp"
	cfg.Addr = ep.Address
	cfg.User = ep.User
	cfg.Passwd = ep.Password
	cfg.TLS = ep.TLS
	cfg.Timeout = timeout
	cfg.ReadTimeout = 2 * timeout
	cfg.WriteTimeout = 2 * timeout
	// One round trip per statement instead of prepare, execute, close: the
	// probe's latency is the server's, not the protocol's.
	cfg.InterpolateParams = true
	// The driver reports a pooled connection found dead; the probe's own
	// error already says so, once per change of state.
	cfg.Logger = driverLogger{log.With("instance", ep.Address)}
	conn, err := mysql.NewConnector(cfg)
	if err != nil {
		return nil, fmt.Errorf("probe connector for %s: %w", ep.Address, err)
	}
	db := sql.OpenDB(conn)
	db.SetMaxOpenConns(1)
	db.SetMaxIdleConns(1)
	db.SetConnMaxLifetime(0)
	db.SetConnMaxIdleTime(0)
	return &sqlWriter{db: db, source: source, endpoint: ep.Address, ddl: ddl, engine: engine}, nil
}

func (w *sqlWriter) prepare(ctx context.Context) (uint64, error) {
	conn, err := w.db.Conn(ctx)
	if err != nil {
		return 0, fmt.Errorf("connect to %s: %w", w.endpoint, err)
	}
	ok := false
	defer func() { release(conn, ok) }()

	// Look before creating: CREATE TABLE IF NOT EXISTS is still DDL, which
	// Galera runs in total order isolation, briefly stalling the whole
	// cluster and aborting transactions on the table (ERROR 1213), on
	// every appliance start.
	present, err := tablesPresent(ctx, conn)
	if err != nil {
		return 0, fmt.Errorf("look for the probe tables on %s: %w", w.endpoint, err)
	}
	if !present {
		// On a first start every endpoint finds the tables missing. One
		// creates them while the others wait and look again, so they do
		// not each replay the DDL and abort the first writes of the
		// endpoints already probing.
		select {
		case w.ddl <- struct{}{}:
		case <-ctx.Done():
			return 0, fmt.Errorf("wait to create the probe schema on %s: %w", w.endpoint, ctx.Err())
		}
		err := w.createSchema(ctx, conn)
		<-w.ddl
		if err != nil {
			return 0, err
		}
	}
	var last uint64
	if err := conn.QueryRowContext(ctx, lastSeqSQL, w.source, w.endpoint).Scan(&last); err != nil {
		return 0, fmt.Errorf("read the last probe seq on %s: %w", w.endpoint, err)
	}
	ok = true
	return last, nil
}

// tablesPresent reports whether both probe tables exist.
func tablesPresent(ctx context.Context, conn *sql.Conn) (bool, error) {
	var n int
	if err := conn.QueryRowContext(ctx, tablesPresentSQL).Scan(&n); err != nil {
		return false, err
	}
	return n == 2, nil
}

// createSchema creates what is still missing once it holds the DDL token.
func (w *sqlWriter) createSchema(ctx context.Context, conn *sql.Conn) error {
	present, err := tablesPresent(ctx, conn)
	if err != nil {
		return fmt.Errorf("look for the probe tables on %s: %w", w.endpoint, err)
	}
	if present {
		return nil
	}
	for _, q := range []string{createSchemaSQL, fmt.Sprintf(createHeartbeatSQL, w.engine), fmt.Sprintf(createProbeLogSQL, w.engine)} {
		if _, err := conn.ExecContext(ctx, q); err != nil {
			return fmt.Errorf("create the probe schema on %s: %w", w.endpoint, err)
		}
	}
	return nil
}

// missingTable reports a statement that failed because a probe table is
// gone (ERROR 1146): someone dropped it, and prepare must run again.
func missingTable(err error) bool {
	var me *mysql.MySQLError
	return errors.As(err, &me) && me.Number == 1146
}

func (w *sqlWriter) write(ctx context.Context, seq uint64) (a attempt) {
	conn, err := w.db.Conn(ctx)
	if err != nil {
		return attempt{err: fmt.Errorf("connect to %s: %w", w.endpoint, err)}
	}
	defer func() { release(conn, a.err == nil) }()

	// A non-Primary Galera node refuses these statements at once (ERROR
	// 1047): a bad probe, and a quick one.
	if _, err := conn.ExecContext(ctx, "START TRANSACTION"); err != nil {
		return attempt{err: fmt.Errorf("begin probe write %d on %s: %w", seq, w.endpoint, err)}
	}
	if _, err := conn.ExecContext(ctx, upsertHeartbeatSQL, w.source, w.endpoint, seq, seq); err != nil {
		return attempt{err: fmt.Errorf("upsert heartbeat %d on %s: %w", seq, w.endpoint, err)}
	}
	if _, err := conn.ExecContext(ctx, logWriteSQL, w.source, w.endpoint, seq); err != nil {
		return attempt{err: fmt.Errorf("log probe write %d on %s: %w", seq, w.endpoint, err)}
	}
	if _, err := conn.ExecContext(ctx, "COMMIT"); err != nil {
		return attempt{uncertain: true, err: fmt.Errorf("commit probe write %d on %s (outcome unknown): %w", seq, w.endpoint, err)}
	}
	var got uint64
	if err := conn.QueryRowContext(ctx, readBackSQL, w.source, w.endpoint).Scan(&got); err != nil {
		return attempt{acked: true, err: fmt.Errorf("read back probe write %d on %s: %w", seq, w.endpoint, err)}
	}
	if got != seq {
		return attempt{acked: true, err: fmt.Errorf("read back probe write %d on %s: %w: found seq %d", seq, w.endpoint, ErrReadBack, got)}
	}
	return attempt{acked: true}
}

func (w *sqlWriter) prune(ctx context.Context) (int64, error) {
	res, err := w.db.ExecContext(ctx, pruneSQL, w.source, w.endpoint)
	if err != nil {
		w.resetPool()
		return 0, fmt.Errorf("prune the probe log on %s: %w", w.endpoint, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return 0, fmt.Errorf("prune the probe log on %s: %w", w.endpoint, err)
	}
	return n, nil
}

func (w *sqlWriter) close() error { return w.db.Close() }

// resetPool drops the idle connection so the next statement dials again.
func (w *sqlWriter) resetPool() {
	w.db.SetMaxIdleConns(0)
	w.db.SetMaxIdleConns(1)
}

// release returns conn to the pool when the work on it succeeded and
// closes it otherwise: after an error the session may hold an open
// transaction or a half-read reply, and a dead server's socket would make
// the next probe wait instead of dial.
func release(conn *sql.Conn, ok bool) {
	if !ok {
		// Raw returning ErrBadConn makes database/sql discard the driver
		// connection instead of pooling it.
		_ = conn.Raw(func(any) error { return driver.ErrBadConn })
	}
	_ = conn.Close()
}

// driverLogger sends the driver's messages to slog at debug level.
type driverLogger struct{ log *slog.Logger }

func (l driverLogger) Print(v ...any) { l.log.Debug("mysql driver: " + fmt.Sprint(v...)) }

// ErrReadBack means the heartbeat row read back after an acknowledged
// commit did not hold the seq just written.
var ErrReadBack = errors.New("heartbeat read back a different seq")
