package agent

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/nines-project/nines/internal/mariadbd"
)

// The replication actions: what a failover, switchover or rejoin does to
// one server of a GTID replication cluster, each a few statements over the
// local socket. The runbook decides; the agent carries out one step and
// reports what it saw. The replication password never leaves the host.

// ReplicationStatus is GET /v1/replication: the server's GTID state, its
// replica connection and semi-sync settings, read in one look.
type ReplicationStatus struct {
	Running bool `json:"running"`
	// Readable is true when the server answered over its socket; the
	// fields below are set only then, and Error says why not.
	Readable        bool   `json:"readable"`
	Error           string `json:"error,omitempty"`
	ServerID        uint32 `json:"server_id,omitempty"`
	ReadOnly        bool   `json:"read_only"`
	GTIDBinlogState string `json:"gtid_binlog_state"`
	GTIDBinlogPos   string `json:"gtid_binlog_pos"`
	GTIDSlavePos    string `json:"gtid_slave_pos"`
	SemiSyncMaster  bool   `json:"semi_sync_master"`
	SemiSyncSlave   bool   `json:"semi_sync_slave"`
	// SemiSyncClients is Rpl_semi_sync_master_clients: replicas
	// acknowledging this server's commits.
	SemiSyncClients int `json:"semi_sync_clients"`
	// Replica is the default replica connection; nil when none is set up.
	Replica *ReplicaConn `json:"replica,omitempty"`
}

// ReplicaConn is SHOW SLAVE STATUS of the default connection.
type ReplicaConn struct {
	SourceHost   string `json:"source_host"`
	SourcePort   int    `json:"source_port"`
	IO           string `json:"io"` // Slave_IO_Running: Yes, Connecting, No
	SQLRunning   bool   `json:"sql_running"`
	GTIDIOPos    string `json:"gtid_io_pos"`
	UsingGTID    string `json:"using_gtid"`
	LastIOError  string `json:"last_io_error,omitempty"`
	LastSQLErrno int    `json:"last_sql_errno,omitempty"`
	LastSQLError string `json:"last_sql_error,omitempty"`
	// SecondsBehind is nil when the server reports NULL.
	SecondsBehind *int64 `json:"seconds_behind,omitempty"`
}

// Source is SourceHost:SourcePort.
func (c *ReplicaConn) Source() string {
	return net.JoinHostPort(c.SourceHost, strconv.Itoa(c.SourcePort))
}

// replicationStatus reads the server's replication state. A stopped or
// hung server is reported, not an error: the caller decides with it.
// replicationReadTimeout bounds the status read well inside the
// appliance's 3 s observation of a node: a hung server is then reported
// by its agent as running but unreadable, a fact a failover decides on,
// rather than the agent itself seeming gone.
const replicationReadTimeout = 1500 * time.Millisecond

func (a *Agent) replicationStatus(ctx context.Context, _ struct{}) (ReplicationStatus, error) {
	var st ReplicationStatus
	pid, err := a.ctl.pid()
	if err != nil {
		st.Error = err.Error()
		return st, nil
	}
	st.Running = pid != 0
	if !st.Running {
		st.Error = "the server is not running"
		return st, nil
	}
	db, err := a.srv.DB()
	if err != nil {
		st.Error = err.Error()
		return st, nil
	}
	defer db.Close()
	ctx, cancel := context.WithTimeout(ctx, replicationReadTimeout)
	defer cancel()
	if err := readReplication(ctx, db, &st); err != nil {
		st.Error = fmt.Sprintf("read over %s: %v", a.srv.Socket, err)
		return st, nil
	}
	st.Readable = true
	return st, nil
}

func readReplication(ctx context.Context, db *sql.DB, st *ReplicationStatus) error {
	var ro int
	var master, slave sql.NullInt64
	err := db.QueryRowContext(ctx, `SELECT @@global.server_id, @@global.read_only, @@global.gtid_binlog_state,
		@@global.gtid_binlog_pos, @@global.gtid_slave_pos,
		@@global.rpl_semi_sync_master_enabled, @@global.rpl_semi_sync_slave_enabled`).
		Scan(&st.ServerID, &ro, &st.GTIDBinlogState, &st.GTIDBinlogPos, &st.GTIDSlavePos, &master, &slave)
	if err != nil {
		return err
	}
	st.ReadOnly, st.SemiSyncMaster, st.SemiSyncSlave = ro != 0, master.Int64 != 0, slave.Int64 != 0
	var name, clients string
	err = db.QueryRowContext(ctx, "SHOW GLOBAL STATUS LIKE 'Rpl_semi_sync_master_clients'").Scan(&name, &clients)
	switch {
	case errors.Is(err, sql.ErrNoRows):
	case err != nil:
		return err
	default:
		if st.SemiSyncClients, err = strconv.Atoi(clients); err != nil {
			return fmt.Errorf("Rpl_semi_sync_master_clients %q: not a number", clients)
		}
	}
	fields, found, err := mariadbd.QueryRow(ctx, db, "SHOW SLAVE STATUS")
	if err != nil || !found {
		return err
	}
	c := &ReplicaConn{
		SourceHost: fields["Master_Host"], IO: fields["Slave_IO_Running"], SQLRunning: fields["Slave_SQL_Running"] == "Yes",
		GTIDIOPos: fields["Gtid_IO_Pos"], UsingGTID: fields["Using_Gtid"],
		LastIOError: fields["Last_IO_Error"], LastSQLError: fields["Last_SQL_Error"],
	}
	if c.SourcePort, err = strconv.Atoi(fields["Master_Port"]); err != nil {
		return fmt.Errorf("SHOW SLAVE STATUS: Master_Port %q: not a number", fields["Master_Port"])
	}
	if v := fields["Last_SQL_Errno"]; v != "" {
		if c.LastSQLErrno, err = strconv.Atoi(v); err != nil {
			return fmt.Errorf("SHOW SLAVE STATUS: Last_SQL_Errno %q: not a number", v)
		}
	}
	if v, ok := fields["Seconds_Behind_Master"]; ok && v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return fmt.Errorf("SHOW SLAVE STATUS: Seconds_Behind_Master %q: not a number", v)
		}
		c.SecondsBehind = &n
	}
	switch c.IO {
	case "Yes", "No", "Connecting":
	default:
		return fmt.Errorf("SHOW SLAVE STATUS: Slave_IO_Running %q: want Yes, No or Connecting", c.IO)
	}
	st.Replica = c
	return nil
}

// FenceRequest is POST /v1/replication/fence: make the server refuse
// application writes (read_only=ON; the application accounts have no
// privilege past it). Stop also stops the server, for a primary that is
// alive but cut off from its replicas: a fence that holds even if
// read_only cannot be set.
type FenceRequest struct {
	Stop bool `json:"stop,omitempty"`
}

// FenceResult says what the fence did.
type FenceResult struct {
	ReadOnly  bool   `json:"read_only"`
	Stopped   bool   `json:"stopped"`
	Binlog    string `json:"gtid_binlog_state,omitempty"`
	BinlogPos string `json:"gtid_binlog_pos,omitempty"`
	Note      string `json:"note,omitempty"`
}

// fenceStopSQLTimeout bounds the read_only attempt of a fence that stops
// the server anyway.
const fenceStopSQLTimeout = time.Second

func (a *Agent) fence(ctx context.Context, req FenceRequest) (FenceResult, error) {
	release, err := a.acquire("fence")
	if err != nil {
		return FenceResult{}, err
	}
	defer release()
	var res FenceResult
	pid, err := a.ctl.pid()
	if err != nil {
		return res, err
	}
	if pid == 0 {
		res.Note = "the server is not running: nothing can write to it"
		return res, nil
	}
	// A server asked to stop was found unreadable: it is likely hung, and
	// every second spent on read_only is a second more without a primary.
	// A server that answers does so over its socket in milliseconds.
	limit := sqlTimeout
	if req.Stop {
		limit = fenceStopSQLTimeout
	}
	err = a.withSQL(ctx, func(ctx context.Context, db *sql.DB) error {
		if _, err := db.ExecContext(ctx, "SET GLOBAL read_only=ON"); err != nil {
			return err
		}
		res.ReadOnly = true
		return db.QueryRowContext(ctx, "SELECT @@global.gtid_binlog_state, @@global.gtid_binlog_pos").Scan(&res.Binlog, &res.BinlogPos)
	}, limit)
	if err == nil && !req.Stop {
		return res, nil
	}
	if err != nil {
		res.Note = "read_only could not be set: " + err.Error()
	}
	// SIGKILL: a fenced primary may be hung, and its transactions are
	// durable (InnoDB) whichever way it stops.
	if _, err := a.stopLocked(ctx, false, 0); err != nil {
		return res, fmt.Errorf("fence: stop the server: %w", err)
	}
	res.Stopped = true
	return res, nil
}

// WaitAppliedRequest is POST /v1/replication/wait-applied.
type WaitAppliedRequest struct {
	TimeoutSeconds int `json:"timeout_seconds"`
	// Until is a GTID position to wait for; empty is everything the IO
	// thread has received (Gtid_IO_Pos) at the time of the call.
	Until string `json:"until,omitempty"`
}

// WaitAppliedResult is the position reached.
type WaitAppliedResult struct {
	Waited string `json:"waited_for"`
	Binlog string `json:"gtid_binlog_state"`
	TookMs int64  `json:"took_ms"`
}

func (a *Agent) waitApplied(ctx context.Context, req WaitAppliedRequest) (WaitAppliedResult, error) {
	if req.TimeoutSeconds <= 0 || req.TimeoutSeconds > 3600 {
		return WaitAppliedResult{}, badRequest(fmt.Errorf("timeout_seconds %d: want 1..3600", req.TimeoutSeconds))
	}
	start := a.now()
	var res WaitAppliedResult
	err := a.withSQL(ctx, func(ctx context.Context, db *sql.DB) error {
		res.Waited = req.Until
		if res.Waited == "" {
			fields, found, err := mariadbd.QueryRow(ctx, db, "SHOW SLAVE STATUS")
			if err != nil {
				return err
			}
			if !found {
				return conflict(errors.New("not a replica: nothing to apply"))
			}
			res.Waited = fields["Gtid_IO_Pos"]
		}
		var reached sql.NullInt64
		if err := db.QueryRowContext(ctx, "SELECT MASTER_GTID_WAIT(?, ?)", res.Waited, req.TimeoutSeconds).Scan(&reached); err != nil {
			return err
		}
		if reached.Int64 != 0 {
			return unavailable(fmt.Errorf("did not apply up to %s within %d s", res.Waited, req.TimeoutSeconds))
		}
		return db.QueryRowContext(ctx, "SELECT @@global.gtid_binlog_state").Scan(&res.Binlog)
	}, time.Duration(req.TimeoutSeconds)*time.Second+sqlTimeout)
	res.TookMs = a.now().Sub(start).Milliseconds()
	return res, err
}

// PromoteRequest is POST /v1/replication/promote: the server stops
// replicating and forgets its source, turns semi-sync on as a source when
// asked (waiting up to SemiSyncWaitMs for a replica to connect, so the
// first commits are not held for rpl_semi_sync_master_timeout), and, with
// Open, takes writes (read_only=OFF). A runbook promotes without Open,
// repoints the replicas, then promotes again with Open: no write is
// acknowledged before a replica can receive it.
type PromoteRequest struct {
	SemiSync       bool `json:"semi_sync"`
	SemiSyncWaitMs int  `json:"semi_sync_wait_ms,omitempty"`
	Open           bool `json:"open"`
}

// PromoteResult is what the promotion left.
type PromoteResult struct {
	Binlog          string `json:"gtid_binlog_state"`
	SemiSyncClients int    `json:"semi_sync_clients"`
	ReadOnly        bool   `json:"read_only"`
	Note            string `json:"note,omitempty"`
}

func (a *Agent) promote(ctx context.Context, req PromoteRequest) (PromoteResult, error) {
	if req.SemiSyncWaitMs < 0 || req.SemiSyncWaitMs > 60000 {
		return PromoteResult{}, badRequest(fmt.Errorf("semi_sync_wait_ms %d: want 0..60000", req.SemiSyncWaitMs))
	}
	release, err := a.acquire("promote")
	if err != nil {
		return PromoteResult{}, err
	}
	defer release()
	var res PromoteResult
	err = a.withSQL(ctx, func(ctx context.Context, db *sql.DB) error {
		for _, q := range []string{"STOP SLAVE", "RESET SLAVE ALL", "SET GLOBAL rpl_semi_sync_slave_enabled=OFF"} {
			if _, err := db.ExecContext(ctx, q); err != nil {
				return fmt.Errorf("%s: %w", q, err)
			}
		}
		semi := "OFF"
		if req.SemiSync {
			semi = "ON"
		}
		if _, err := db.ExecContext(ctx, "SET GLOBAL rpl_semi_sync_master_enabled="+semi); err != nil {
			return fmt.Errorf("semi-sync: %w", err)
		}
		if req.SemiSync && req.Open {
			res.SemiSyncClients = waitSemiSyncClients(ctx, db, time.Duration(req.SemiSyncWaitMs)*time.Millisecond)
			if res.SemiSyncClients == 0 {
				res.Note = fmt.Sprintf("no semi-sync replica connected within %d ms: the first commits wait rpl_semi_sync_master_timeout, then run asynchronously until one does", req.SemiSyncWaitMs)
			}
		}
		res.ReadOnly = true
		if req.Open {
			if _, err := db.ExecContext(ctx, "SET GLOBAL read_only=OFF"); err != nil {
				return err
			}
			res.ReadOnly = false
		}
		return db.QueryRowContext(ctx, "SELECT @@global.gtid_binlog_state").Scan(&res.Binlog)
	}, time.Duration(req.SemiSyncWaitMs)*time.Millisecond+sqlTimeout)
	return res, err
}

func waitSemiSyncClients(ctx context.Context, db *sql.DB, limit time.Duration) int {
	deadline := time.Now().Add(limit)
	for {
		var name string
		var n int
		if err := db.QueryRowContext(ctx, "SHOW GLOBAL STATUS LIKE 'Rpl_semi_sync_master_clients'").Scan(&name, &n); err == nil && n > 0 {
			return n
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return 0
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// ReplicateRequest is POST /v1/replication/replicate: the server becomes
// a replica of SourceHost:SourcePort (read_only=ON first), with GTID from
// its slave position. FromBinlog first sets gtid_slave_pos to the
// server's own gtid_binlog_pos: a former primary's slave position is from
// before it was promoted, and would replay or skip transactions.
type ReplicateRequest struct {
	SourceHost string `json:"source_host"`
	SourcePort int    `json:"source_port"`
	SemiSync   bool   `json:"semi_sync"`
	FromBinlog bool   `json:"from_binlog,omitempty"`
}

// ReplicateResult is the replica connection as it stood after START SLAVE.
type ReplicateResult struct {
	SlavePos string `json:"gtid_slave_pos"`
	IO       string `json:"io"`
}

func (a *Agent) replicate(ctx context.Context, req ReplicateRequest) (ReplicateResult, error) {
	acct := a.cfg.Replication
	switch {
	case acct == nil:
		return ReplicateResult{}, conflict(errors.New("this agent has no replication account (replication: {user, password_file} in its config)"))
	case req.SourceHost == "" || strings.ContainsAny(req.SourceHost, "'\\ ") || req.SourcePort <= 0 || req.SourcePort > 65535:
		return ReplicateResult{}, badRequest(fmt.Errorf("source %q:%d: want a host name or address and a port 1..65535", req.SourceHost, req.SourcePort))
	}
	release, err := a.acquire("replicate")
	if err != nil {
		return ReplicateResult{}, err
	}
	defer release()
	var res ReplicateResult
	err = a.withSQL(ctx, func(ctx context.Context, db *sql.DB) error {
		var err error
		res, err = a.pointAt(ctx, db, req, "")
		return err
	})
	return res, err
}

// gtidPosition is a GTID position as SET GLOBAL gtid_slave_pos takes it;
// checked because it is written into the statement.
var gtidPosition = regexp.MustCompile(`^[0-9]+-[0-9]+-[0-9]+(,[0-9]+-[0-9]+-[0-9]+)*$`)

// pointAt makes the server a replica of req's source: read_only, semi-sync
// as asked, gtid_slave_pos from its binlog (FromBinlog) or slavePos when
// set, CHANGE MASTER with the replication account, START SLAVE.
func (a *Agent) pointAt(ctx context.Context, db *sql.DB, req ReplicateRequest, slavePos string) (ReplicateResult, error) {
	var res ReplicateResult
	acct := a.cfg.Replication
	if acct == nil {
		return res, conflict(errors.New("this agent has no replication account (replication: {user, password_file} in its config)"))
	}
	semi := "OFF"
	if req.SemiSync {
		semi = "ON"
	}
	stmts := []string{"SET GLOBAL read_only=ON", "STOP SLAVE", "SET GLOBAL rpl_semi_sync_master_enabled=OFF", "SET GLOBAL rpl_semi_sync_slave_enabled=" + semi}
	if req.FromBinlog {
		stmts = append(stmts, "SET GLOBAL gtid_slave_pos=@@global.gtid_binlog_pos")
	}
	for _, q := range stmts {
		if _, err := db.ExecContext(ctx, q); err != nil {
			return res, fmt.Errorf("%s: %w", q, err)
		}
	}
	if slavePos != "" {
		if !gtidPosition.MatchString(slavePos) {
			return res, badRequest(fmt.Errorf("gtid_slave_pos %q: want domain-server-seqno[,...]", slavePos))
		}
		if _, err := db.ExecContext(ctx, "SET GLOBAL gtid_slave_pos='"+slavePos+"'"); err != nil {
			return res, fmt.Errorf("SET GLOBAL gtid_slave_pos=%q: %w", slavePos, err)
		}
	}
	// The password is checked for quotes at config load; the statement
	// is never logged.
	change := fmt.Sprintf("CHANGE MASTER TO master_host='%s', master_port=%d, master_user='%s', master_password='%s', master_use_gtid=slave_pos, master_connect_retry=1",
		req.SourceHost, req.SourcePort, acct.User, acct.Password.Reveal())
	if _, err := db.ExecContext(ctx, change); err != nil {
		return res, errors.New("CHANGE MASTER TO: " + strings.ReplaceAll(err.Error(), acct.Password.Reveal(), "<redacted>"))
	}
	if _, err := db.ExecContext(ctx, "START SLAVE"); err != nil {
		return res, fmt.Errorf("START SLAVE: %w", err)
	}
	fields, _, err := mariadbd.QueryRow(ctx, db, "SHOW SLAVE STATUS")
	if err != nil {
		return res, err
	}
	res.SlavePos, res.IO = fields["Gtid_Slave_Pos"], fields["Slave_IO_Running"]
	return res, nil
}

// withSQL runs do over the local socket with sqlTimeout, or limit when
// given; a server that is not running is a conflict, one that does not
// answer is unavailable.
func (a *Agent) withSQL(ctx context.Context, do func(context.Context, *sql.DB) error, limit ...time.Duration) error {
	pid, err := a.ctl.pid()
	if err != nil {
		return err
	}
	if pid == 0 {
		return conflict(errors.New("the server is not running"))
	}
	db, err := a.srv.DB()
	if err != nil {
		return err
	}
	defer db.Close()
	d := sqlTimeout
	if len(limit) > 0 {
		d = limit[0]
	}
	ctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	err = do(ctx, db)
	var he *httpError
	if err != nil && !errors.As(err, &he) {
		return unavailable(fmt.Errorf("over %s: %w", a.srv.Socket, err))
	}
	return err
}
