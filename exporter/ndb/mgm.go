// Package ndb reads an NDB Cluster for the exporter. mgm.go is the
// management server's client: it speaks only the mgm text protocol
// (package nines/ndb's messages), so it runs unchanged against a real
// ndb_mgmd and against the sandbox's simulator.
package ndb

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"time"

	ndbmsg "github.com/nines-project/nines/ndb"
)

// MgmConfig configures a Mgm client. Zero durations take the defaults.
type MgmConfig struct {
	Addr        string        // host:port of ndb_mgmd, usually port 1186
	DialTimeout time.Duration // default 5 s
	// Timeout bounds one request/reply when the context has no earlier
	// deadline; default 10 s. STOP and RESTART wait for the nodes, so
	// they get SlowTimeout (mgmapi's ndb_mgm_call_slow: 5 min [OPER]).
	Timeout     time.Duration
	SlowTimeout time.Duration
	// IdleTimeout ends ListenEvents when neither an event nor a <PING>
	// arrived for this long; default 30 s (ndb_mgmd pings far more often).
	IdleTimeout time.Duration
}

// Mgm is a client of one management server. Requests are serialised on
// one connection, dialled on first use and again after any I/O error
// (a failed exchange leaves the stream mid-frame, so it is never reused).
// Safe for concurrent use.
type Mgm struct {
	cfg MgmConfig

	mu   sync.Mutex
	conn net.Conn
	r    *bufio.Reader
}

// NewMgm returns a client; it does not connect yet.
func NewMgm(cfg MgmConfig) *Mgm {
	if cfg.DialTimeout == 0 {
		cfg.DialTimeout = 5 * time.Second
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = 10 * time.Second
	}
	if cfg.SlowTimeout == 0 {
		cfg.SlowTimeout = 5 * time.Minute
	}
	if cfg.IdleTimeout == 0 {
		cfg.IdleTimeout = 30 * time.Second
	}
	return &Mgm{cfg: cfg}
}

// Close drops the connection, if any.
func (m *Mgm) Close() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.closeLocked()
}

func (m *Mgm) closeLocked() error {
	if m.conn == nil {
		return nil
	}
	err := m.conn.Close()
	m.conn, m.r = nil, nil
	return err
}

func (m *Mgm) dial(ctx context.Context) (net.Conn, error) {
	d := net.Dialer{Timeout: m.cfg.DialTimeout}
	conn, err := d.DialContext(ctx, "tcp", m.cfg.Addr)
	if err != nil {
		return nil, fmt.Errorf("connect to ndb_mgmd %s: %w", m.cfg.Addr, err)
	}
	return conn, nil
}

// call sends one request and reads its reply within timeout (or the
// context's deadline, whichever is first; 0 means the context only).
func (m *Mgm) call(ctx context.Context, req ndbmsg.Message, timeout time.Duration) (ndbmsg.Message, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.conn == nil {
		conn, err := m.dial(ctx)
		if err != nil {
			return ndbmsg.Message{}, err
		}
		m.conn, m.r = conn, bufio.NewReader(conn)
	}
	deadline := time.Time{}
	if timeout > 0 {
		deadline = time.Now().Add(timeout)
	}
	ctxDeadline, hasCtxDeadline := ctx.Deadline()
	if hasCtxDeadline && (deadline.IsZero() || ctxDeadline.Before(deadline)) {
		deadline = ctxDeadline
	}
	conn := m.conn // the AfterFunc may run after closeLocked clears m.conn
	conn.SetDeadline(deadline)
	stop := context.AfterFunc(ctx, func() { conn.SetDeadline(time.Now()) })
	defer stop()
	reply, err := m.exchange(req)
	if err != nil {
		m.closeLocked()
		// The socket deadline may fire just before the context notices
		// its own: report the context's error either way.
		if ctx.Err() != nil {
			err = fmt.Errorf("%w (%v)", ctx.Err(), err)
		} else if hasCtxDeadline && !time.Now().Before(ctxDeadline) {
			err = fmt.Errorf("%w (%v)", context.DeadlineExceeded, err)
		}
		return reply, fmt.Errorf("ndb_mgmd %s %q: %w", m.cfg.Addr, req.Header, err)
	}
	return reply, nil
}

func (m *Mgm) exchange(req ndbmsg.Message) (ndbmsg.Message, error) {
	if _, err := req.WriteTo(m.conn); err != nil {
		return ndbmsg.Message{}, err
	}
	return ndbmsg.ReadMessage(m.r, ":")
}

// wrap names the server in a reply's protocol error.
func (m *Mgm) wrap(what string, err error) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf("ndb_mgmd %s %s: %w", m.cfg.Addr, what, err)
}

// GetStatus returns every node's entry of `get status` (data nodes, then
// management, then API, as the server lists them), or only those of the
// given types.
func (m *Mgm) GetStatus(ctx context.Context, types ...ndbmsg.NodeType) ([]ndbmsg.Node, error) {
	reply, err := m.call(ctx, ndbmsg.StatusRequest(types...), m.cfg.Timeout)
	if err != nil {
		return nil, err
	}
	nodes, err := ndbmsg.ParseStatus(reply)
	return nodes, m.wrap("get status", err)
}

// Version returns the server's `get version` reply.
func (m *Mgm) Version(ctx context.Context) (ndbmsg.VersionInfo, error) {
	reply, err := m.call(ctx, ndbmsg.Message{Header: ndbmsg.CmdGetVersion}, m.cfg.Timeout)
	if err != nil {
		return ndbmsg.VersionInfo{}, err
	}
	v, err := ndbmsg.ParseVersion(reply)
	return v, m.wrap("get version", err)
}

// Stop stops data nodes (`stop v2`) and returns how many stopped. A
// refusal (e.g. the node group would be left empty without Force) is a
// *ndb.ResultError carrying the server's text.
func (m *Mgm) Stop(ctx context.Context, req ndbmsg.StopRequest) (int, error) {
	reply, err := m.call(ctx, req.Message(), m.cfg.SlowTimeout)
	if err != nil {
		return 0, err
	}
	n, err := ndbmsg.ParseCountReply(reply, ndbmsg.HeaderStop, "stopped")
	return n, m.wrap("stop", err)
}

// Restart restarts data nodes (`restart node v2`) and returns how many.
func (m *Mgm) Restart(ctx context.Context, req ndbmsg.RestartRequest) (int, error) {
	reply, err := m.call(ctx, req.Message(), m.cfg.SlowTimeout)
	if err != nil {
		return 0, err
	}
	n, err := ndbmsg.ParseCountReply(reply, ndbmsg.HeaderRestart, "restarted")
	return n, m.wrap("restart", err)
}

// Start starts a data node waiting after RESTART -n (`start`).
func (m *Mgm) Start(ctx context.Context, node int) error {
	var req ndbmsg.Message
	req.Header = ndbmsg.CmdStart
	req.Add("node", fmt.Sprint(node))
	reply, err := m.call(ctx, req, m.cfg.Timeout)
	if err != nil {
		return err
	}
	return m.wrap("start", ndbmsg.CheckResultReply(reply, ndbmsg.HeaderStart))
}

// StartBackup starts a native backup and returns its id (0 with
// BackupNoWait, whose reply carries none). WAIT COMPLETED can take hours
// (mgmapi allows 48 h), so only ctx bounds the wait for it.
func (m *Mgm) StartBackup(ctx context.Context, wait ndbmsg.BackupWait) (int, error) {
	timeout := m.cfg.SlowTimeout
	if wait == ndbmsg.BackupWaitCompleted {
		timeout = 0
	}
	reply, err := m.call(ctx, ndbmsg.StartBackupRequest{Wait: wait}.Message(), timeout)
	if err != nil {
		return 0, err
	}
	id, err := ndbmsg.ParseStartBackup(reply)
	return id, m.wrap("start backup", err)
}

// AbortBackup orders a backup aborted (`abort backup`).
func (m *Mgm) AbortBackup(ctx context.Context, id int) error {
	var req ndbmsg.Message
	req.Header = ndbmsg.CmdAbortBackup
	req.Add("id", fmt.Sprint(id))
	reply, err := m.call(ctx, req, m.cfg.Timeout)
	if err != nil {
		return err
	}
	return m.wrap("abort backup", ndbmsg.CheckResultReply(reply, ndbmsg.HeaderAbortBackup))
}

// DefaultFilter asks for what nines acts on: start and stop, node
// failures and arbitration, connections and backups, all levels; and
// checkpoints up to level 10, which brings GlobalCheckpointStarted and
// Completed (levels 9 and 10 in EventLogger's matrix) and leaves out the
// checkpoint category's more verbose levels.
var DefaultFilter = ndbmsg.Filter{
	ndbmsg.CategoryStartup: 15, ndbmsg.CategoryShutdown: 15, ndbmsg.CategoryNodeRestart: 15,
	ndbmsg.CategoryConnection: 15, ndbmsg.CategoryBackup: 15, ndbmsg.CategoryError: 15,
	ndbmsg.CategoryCheckpoint: 10,
}

// ErrIdle ends ListenEvents when the server went silent (no event and no
// <PING>) for IdleTimeout: the connection is presumed dead.
var ErrIdle = errors.New("no event or ping from ndb_mgmd")

// ListenEvents opens its own connection, sends `listen event` with
// filter (DefaultFilter when nil) and calls fn for every event until ctx
// ends (then it returns ctx.Err()) or the stream fails. Pings only keep
// the stream alive. Reconnecting is the caller's business: after an
// error, events may have been missed, so re-read `get status` too.
func (m *Mgm) ListenEvents(ctx context.Context, filter ndbmsg.Filter, fn func(ndbmsg.Event)) error {
	return m.ListenEventsReady(ctx, filter, nil, fn)
}

// ListenEventsReady is ListenEvents that also calls ready (if not nil)
// once the server accepted the listen request, so the caller knows from
// when on no event is missed.
func (m *Mgm) ListenEventsReady(ctx context.Context, filter ndbmsg.Filter, ready func(), fn func(ndbmsg.Event)) error {
	if filter == nil {
		filter = DefaultFilter
	}
	conn, err := m.dial(ctx)
	if err != nil {
		return err
	}
	defer conn.Close()
	stop := context.AfterFunc(ctx, func() { conn.SetDeadline(time.Now()) })
	defer stop()
	r := bufio.NewReader(conn)
	// Each deadline set below could undo the one a cancellation just
	// set; checking ctx after setting it closes that gap (a cancel after
	// the check sets its deadline after ours). Without it, a stream kept
	// alive by pings outlived its context.
	conn.SetDeadline(time.Now().Add(m.cfg.Timeout))
	if err := ctx.Err(); err != nil {
		return err
	}
	if _, err := ndbmsg.ListenRequest(filter).WriteTo(conn); err != nil {
		return m.streamErr(ctx, err)
	}
	reply, err := ndbmsg.ReadMessage(r, ":")
	if err != nil {
		return m.streamErr(ctx, err)
	}
	if err := ndbmsg.CheckListenReply(reply); err != nil {
		return m.wrap("listen event", err)
	}
	if ready != nil {
		ready()
	}
	for {
		conn.SetDeadline(time.Now().Add(m.cfg.IdleTimeout))
		if err := ctx.Err(); err != nil {
			return err
		}
		ev, ping, err := ndbmsg.ReadStreamItem(r)
		if err != nil {
			var ne net.Error
			if ctx.Err() == nil && errors.As(err, &ne) && ne.Timeout() {
				err = fmt.Errorf("%w for %s", ErrIdle, m.cfg.IdleTimeout)
			}
			return m.streamErr(ctx, err)
		}
		if !ping {
			fn(ev)
		}
	}
}

func (m *Mgm) streamErr(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return ctx.Err()
	}
	return m.wrap("listen event", err)
}
