package mariadbd

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"syscall"
	"time"

	"github.com/go-sql-driver/mysql"

	"github.com/nines-project/nines"
	"github.com/nines-project/nines/galera"
)

// DB opens a pool to the server over its unix socket as SocketUser. The
// caller closes it. Timeouts are short because every caller polls: a
// server that does not answer within seconds is reported, not waited on.
func (s *Server) DB() (*sql.DB, error) {
	cfg := mysql.NewConfig()
	cfg.User = SocketUser()
	cfg.Net = "unix"
	cfg.Addr = s.Socket
	cfg.Timeout = 2 * time.Second
	cfg.ReadTimeout = 10 * time.Second
	cfg.WriteTimeout = 10 * time.Second
	// Polling a starting or dying server breaks connections as a matter of
	// course; the driver's default logger would print each to stderr.
	cfg.Logger = &mysql.NopLogger{}
	c, err := mysql.NewConnector(cfg)
	if err != nil {
		return nil, fmt.Errorf("connect to %s: %w", s.Name, err)
	}
	db := sql.OpenDB(c)
	db.SetMaxOpenConns(2)
	db.SetConnMaxIdleTime(30 * time.Second)
	return db, nil
}

// Check is one poll of a wait: done reports success, state describes what
// was seen (it ends up in the timeout error), and err is a failed query,
// which counts as "not yet" and is shown as the state.
type Check func(ctx context.Context, db *sql.DB) (done bool, state string, err error)

// WaitError is a wait that did not end in the wanted state. It names the
// server, what was wanted, the last state seen and the end of the error
// log written since the start, which is usually where the reason is.
type WaitError struct {
	Server  string
	Want    string
	Last    string
	After   time.Duration
	LogTail string
	Err     error
}

func (e *WaitError) Error() string {
	return fmt.Sprintf("wait for %s: %s gave up after %v, last state %q: %v%s",
		e.Want, e.Server, e.After.Round(time.Millisecond), e.Last, e.Err, e.LogTail)
}

func (e *WaitError) Unwrap() error { return e.Err }

// Wait polls check every 100 ms until it reports done, ctx ends, or p (if
// not nil) exits. The error is a *WaitError wrapping ctx.Err() or ErrExited.
func (s *Server) Wait(ctx context.Context, p *Process, want string, check Check) error {
	db, err := s.DB()
	if err != nil {
		return err
	}
	defer db.Close()
	start := time.Now()
	last := "not checked yet"
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		qctx, cancel := context.WithTimeout(ctx, 3*time.Second)
		done, state, err := check(qctx, db)
		cancel()
		switch {
		case err != nil && ctx.Err() == nil:
			last = "not answering SQL: " + describeConnErr(err)
			if logged := s.loggedWsrepState(p); logged != "" {
				last += "; error.log: " + logged
			}
		case err == nil:
			last = state
		}
		if done && err == nil {
			return nil
		}
		var cause error
		select {
		case <-ctx.Done():
			cause = ctx.Err()
		case <-p.Done():
			cause = fmt.Errorf("%w: %v", ErrExited, p.Err())
		case <-tick.C:
			continue
		}
		var offset int64
		if p != nil {
			offset = p.LogOffset
		}
		return &WaitError{Server: s.Name, Want: want, Last: last, After: time.Since(start),
			LogTail: tailBlock(s.ErrorLog, offset), Err: cause}
	}
}

// WaitReady waits until the server answers SQL.
func (s *Server) WaitReady(ctx context.Context, p *Process) error {
	return s.Wait(ctx, p, "SQL", func(ctx context.Context, db *sql.DB) (bool, string, error) {
		if err := db.PingContext(ctx); err != nil {
			return false, "", err
		}
		return true, "answering", nil
	})
}

// WaitSynced waits until the server is a Synced member of a Primary
// component with wsrep_ready=ON, the state in which it serves clients.
func (s *Server) WaitSynced(ctx context.Context, p *Process) error {
	return s.Wait(ctx, p, "Synced", func(ctx context.Context, db *sql.DB) (bool, string, error) {
		st, err := QueryWsrep(ctx, db)
		if errors.Is(err, galera.ErrBadStatus) {
			// The server answers but says something odd: not yet, and
			// the timeout error shows what.
			return false, err.Error(), nil
		}
		if err != nil {
			return false, "", err
		}
		return st.Synced(), galera.Describe(st), nil
	})
}

// QueryWsrep reads the wsrep status of the server behind db and parses
// it with galera.ParseStatus. An odd value gives an error wrapping
// galera.ErrBadStatus that names it.
func QueryWsrep(ctx context.Context, db *sql.DB) (*nines.GaleraStatus, error) {
	g, _, err := QueryWsrepVars(ctx, db)
	return g, err
}

// QueryWsrepVars is QueryWsrep that also reads the named global
// variables (lower case, such as "wsrep_desync"), in the same statement:
// a health check pays one round trip. The variables are returned even
// when the status cannot be parsed.
func QueryWsrepVars(ctx context.Context, db *sql.DB, names ...string) (*nines.GaleraStatus, map[string]string, error) {
	query, args := `SHOW GLOBAL STATUS LIKE 'wsrep\_%'`, []any(nil)
	if len(names) > 0 {
		// Variables come back marked with '@', apart from the status.
		query = `SELECT VARIABLE_NAME, VARIABLE_VALUE FROM information_schema.GLOBAL_STATUS WHERE VARIABLE_NAME LIKE 'WSREP\_%'
UNION ALL
SELECT CONCAT('@', VARIABLE_NAME), VARIABLE_VALUE FROM information_schema.GLOBAL_VARIABLES WHERE VARIABLE_NAME IN (?` + strings.Repeat(", ?", len(names)-1) + `)`
		for _, n := range names {
			args = append(args, strings.ToUpper(n))
		}
	}
	rows, err := db.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, nil, err
	}
	defer rows.Close()
	status, vars := map[string]string{}, map[string]string{}
	for rows.Next() {
		var name, value string
		if err := rows.Scan(&name, &value); err != nil {
			return nil, nil, err
		}
		if v, ok := strings.CutPrefix(name, "@"); ok {
			vars[strings.ToLower(v)] = value
		} else {
			status[strings.ToLower(name)] = value
		}
	}
	if err := rows.Err(); err != nil {
		return nil, nil, err
	}
	if status["wsrep_cluster_status"] == "" && status["wsrep_local_state_comment"] == "" {
		return nil, vars, errors.New("no wsrep status: wsrep is off on this server")
	}
	if len(names) == 0 {
		vars = nil
	}
	g, err := galera.ParseStatus(status, vars)
	return g, vars, err
}

// LogTail returns the last lines of the error log written at or after
// offset (a Process's LogOffset; 0 for the whole file).
func (s *Server) LogTail(offset int64) string {
	return tail(s.ErrorLog, offset, tailLines)
}

const (
	tailLines = 20
	tailBytes = 64 << 10
)

// tailBlock formats the end of a log for appending to an error message.
func tailBlock(path string, offset int64) string {
	t := tail(path, offset, tailLines)
	if t == "" {
		return ""
	}
	return fmt.Sprintf("\n--- last lines of %s ---\n%s", path, t)
}

func tail(path string, offset int64, lines int) string {
	f, err := os.Open(path)
	if err != nil {
		return ""
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return ""
	}
	// A log rotated or truncated since offset was taken is read whole.
	if offset > fi.Size() {
		offset = 0
	}
	if fi.Size()-offset > tailBytes {
		offset = fi.Size() - tailBytes
	}
	if _, err := f.Seek(offset, io.SeekStart); err != nil {
		return ""
	}
	b, err := io.ReadAll(f)
	if err != nil {
		return ""
	}
	all := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(all) > lines {
		all = all[len(all)-lines:]
	}
	return strings.TrimSpace(strings.Join(all, "\n"))
}

// describeConnErr shortens the usual reasons a starting server does not
// answer; a joiner receiving a state transfer refuses connections for
// seconds.
func describeConnErr(err error) string {
	switch {
	case errors.Is(err, syscall.ENOENT):
		return "no socket yet"
	case errors.Is(err, syscall.ECONNREFUSED):
		return "connection refused"
	}
	return firstLine(err.Error())
}

// loggedWsrepState is the last wsrep state change the error log shows
// since p started ("Shifting PRIMARY -> JOINER (TO: 2)"): while a server
// does not answer SQL, the log is the only place its state can be seen.
func (s *Server) loggedWsrepState(p *Process) string {
	var offset int64
	if p != nil {
		offset = p.LogOffset
	}
	lines := strings.Split(tail(s.ErrorLog, offset, 200), "\n")
	for i := len(lines) - 1; i >= 0; i-- {
		if _, after, ok := strings.Cut(lines[i], "WSREP: Shifting "); ok {
			return "Shifting " + after
		}
	}
	return ""
}

func firstLine(s string) string {
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		return s[:i]
	}
	return s
}

// logSinceMax bounds LogSince: a joiner's start logs some 10 KiB.
const logSinceMax = 4 << 20

// LogSince returns the error log written at or after offset (a
// Process's LogOffset), at most its last 4 MiB.
func (s *Server) LogSince(offset int64) string {
	f, err := os.Open(s.ErrorLog)
	if err != nil {
		return ""
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return ""
	}
	if offset > fi.Size() { // rotated or truncated since
		offset = 0
	}
	if fi.Size()-offset > logSinceMax {
		offset = fi.Size() - logSinceMax
	}
	b, err := io.ReadAll(io.NewSectionReader(f, offset, fi.Size()-offset))
	if err != nil {
		return ""
	}
	return string(b)
}
