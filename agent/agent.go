package agent

import (
	"context"
	"crypto/subtle"
	"crypto/tls"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/nines-project/nines"
	"github.com/nines-project/nines/galera"
	"github.com/nines-project/nines/internal/mariadbd"
)

// Defaults of the action requests.
const (
	DefaultStartTimeout = 2 * time.Minute
	MaxStartTimeout     = time.Hour
	DefaultStopGrace    = 30 * time.Second
	// sqlTimeout bounds one look at the server over its socket: a hung
	// (SIGSTOPped) server must not hang the status call.
	sqlTimeout = 3 * time.Second
	// pcBootstrapWait is how long pc-bootstrap waits to see the node
	// Primary; it takes about 0.06 s on loopback.
	pcBootstrapWait = 5 * time.Second
)

// Options are the agent's collaborators; zero values take defaults.
type Options struct {
	// Logger receives one line per action; nil logs to stderr.
	Logger *slog.Logger
	// Now is the clock; nil is time.Now.
	Now func() time.Time
	// Systemctl is the systemctl program (systemd mode); empty is
	// "systemctl" in PATH.
	Systemctl string
	// Ready is called with the listen address once Run accepts requests.
	Ready func(addr string)

	// readTimeout replaces serverReadTimeout in tests.
	readTimeout time.Duration
}

// Limits of the HTTP server. Requests are small JSON bodies, so reading
// one may take little time; answers may stream for as long as a backup
// runs, so there is no write timeout.
const (
	serverReadTimeout = 30 * time.Second
	serverIdleTimeout = 2 * time.Minute
	maxHeaderBytes    = 64 << 10
	// maxBodyBytes bounds every request body; more is answered 413.
	maxBodyBytes = 1 << 20
)

// Agent serves the API for one local server.
type Agent struct {
	cfg *Config
	log *slog.Logger
	now func() time.Time
	srv *mariadbd.Server
	ctl controller
	// ndb is set, and srv and ctl are nil, when the agent runs an NDB
	// data node (ndb.go).
	ndb *ndbControl
	met *metrics
	// fence checks the fencing tokens of mutating requests (fencing.go).
	fencing *fencer

	mu sync.Mutex
	// busy names the one action that may change the server now ("" when
	// none runs) and busySince when it began.
	busy      string
	busySince time.Time
	lastExit  *Exit
	watched   map[int]bool // supervised pids still running
	// joined is where the error log of the last server this agent
	// started begins, and its start position: how it joined (IST or
	// SST) is read from there (serverInfo).
	joined   joinStart
	stopping map[int]bool // pids being stopped on request

	bk backupJobs
}

// New builds the agent for cfg.
func New(cfg *Config, opts Options) (*Agent, error) {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.NewTextHandler(os.Stderr, nil))
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if cfg.IsNDB() {
		return newNdbAgent(cfg, opts)
	}
	l := cfg.Local()
	if l.DefaultsFile == "" || l.DataDir == "" {
		return nil, errors.New("agent: config not validated (use Load or Parse)")
	}
	a := &Agent{
		cfg: cfg,
		log: opts.Logger.With("agent", cfg.Name),
		now: opts.Now,
		srv: &mariadbd.Server{
			Name: cfg.Name, DefaultsFile: l.DefaultsFile, Dir: l.Dir, DataDir: l.DataDir,
			Socket: l.Socket, PidFile: l.PidFile, ErrorLog: l.ErrorLog,
		},
		watched:  map[int]bool{},
		stopping: map[int]bool{},
	}
	switch cfg.Mode() {
	case ModeSystemd:
		sc := opts.Systemctl
		if sc == "" {
			sc = "systemctl"
		}
		a.ctl = &systemdControl{unit: cfg.Server.Systemd.Unit, systemctl: sc}
	default:
		a.ctl = &processControl{srv: a.srv}
	}
	if err := a.openFence(); err != nil {
		return nil, err
	}
	a.met = newMetrics(a)
	return a, nil
}

// Run serves the API on cfg.Listen (with TLS when configured) until ctx
// ends, then shuts down, giving requests in flight 10 s. The server is
// left as it is: stopping the agent never stops the database.
func Run(ctx context.Context, cfg *Config, opts Options) error {
	a, err := New(cfg, opts)
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return fmt.Errorf("agent: listen: %w", err)
	}
	hs := a.httpServer(opts)
	scheme := "http"
	if cfg.TLS != nil {
		scheme = "https"
		hs.TLSConfig = &tls.Config{MinVersion: tls.VersionTLS12}
		if cfg.TLS.ClientCAs != nil {
			hs.TLSConfig.ClientCAs = cfg.TLS.ClientCAs
			hs.TLSConfig.ClientAuth = tls.RequireAndVerifyClientCert
		}
	}
	if fi, err := os.Stat(cfg.TokenFile); err == nil && fi.Mode().Perm()&0o077 != 0 {
		a.log.Warn("token file is readable by others; chmod 600 it", "file", cfg.TokenFile, "mode", fmt.Sprintf("%04o", fi.Mode().Perm()))
	}
	served := make(chan error, 1)
	go func() {
		if cfg.TLS != nil {
			served <- hs.ServeTLS(ln, cfg.TLS.CertFile, cfg.TLS.KeyFile)
		} else {
			served <- hs.Serve(ln)
		}
	}()
	if a.ndb != nil {
		a.log.Info("agent listening", "url", scheme+"://"+ln.Addr().String(), "server", a.ndb.kind,
			"node_id", a.ndb.cfg.NodeID, "command", a.ndb.cfg.Command)
	} else {
		a.log.Info("agent listening", "url", scheme+"://"+ln.Addr().String(), "mode", cfg.Mode(), "galera", cfg.IsGalera(),
			"defaults_file", a.srv.DefaultsFile, "data_dir", a.srv.DataDir)
	}
	if opts.Ready != nil {
		opts.Ready(ln.Addr().String())
	}
	select {
	case err := <-served:
		return fmt.Errorf("agent: serve: %w", err)
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	err = hs.Shutdown(sctx)
	if errors.Is(err, context.DeadlineExceeded) {
		err = hs.Close()
	}
	a.log.Info("agent stopped")
	return err
}

// httpServer is the agent's server with its limits: a client that sends
// its request slowly is cut off, so a few of them cannot hold the agent's
// connections (and memory) forever.
func (a *Agent) httpServer(opts Options) *http.Server {
	read := serverReadTimeout
	if opts.readTimeout > 0 {
		read = opts.readTimeout
	}
	return &http.Server{
		Handler:           a.Handler(),
		ReadHeaderTimeout: min(10*time.Second, read),
		ReadTimeout:       read,
		IdleTimeout:       serverIdleTimeout,
		MaxHeaderBytes:    maxHeaderBytes,
		ErrorLog:          slog.NewLogLogger(a.log.Handler(), slog.LevelWarn),
	}
}

// Handler is the agent's HTTP API. Every request body is limited to
// maxBodyBytes.
func (a *Agent) Handler() http.Handler {
	mux := a.routes()
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != reseedPath {
			r.Body = http.MaxBytesReader(w, r.Body, maxBodyBytes)
		}
		mux.ServeHTTP(w, r)
	})
}

func (a *Agent) routes() *http.ServeMux {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		_, _ = io.WriteString(w, "ok\n")
	})
	mux.Handle("GET /metrics", a.auth(a.met.handler()))
	// MariaDB-only endpoints answer 409 on an agent of an NDB data node.
	mdb := func(name string, h http.Handler) http.Handler {
		if a.ndb != nil {
			return a.auth(a.notForNdb(name))
		}
		return a.auth(h)
	}
	if a.ndb != nil {
		mux.Handle("GET /v1/status", a.auth(handle(a, "status", func(ctx context.Context, _ struct{}) (Status, error) {
			return a.Status(ctx), nil
		})))
		mux.Handle("POST /v1/start", a.auth(handle(a, "start", a.ndbStart)))
		mux.Handle("POST /v1/stop", a.auth(handle(a, "stop", a.ndbStop)))
	} else {
		mux.Handle("GET /v1/status", a.auth(handle(a, "status", func(ctx context.Context, _ struct{}) (Status, error) {
			return a.Status(ctx), nil
		})))
		mux.Handle("POST /v1/start", a.auth(handle(a, "start", a.start)))
		mux.Handle("POST /v1/stop", a.auth(handle(a, "stop", a.stop)))
	}
	mux.Handle("GET /v1/grastate", mdb("grastate", handle(a, "grastate", func(_ context.Context, _ struct{}) (galera.Grastate, error) {
		return a.grastate()
	})))
	mux.Handle("GET /v1/server-info", mdb("server-info", handle(a, "server-info", a.serverInfo)))
	mux.Handle("GET /v1/peers", mdb("peers", handle(a, "peers", a.peers)))
	mux.Handle("GET /v1/health/{role}", mdb("health", http.HandlerFunc(a.health)))
	mux.Handle("POST /v1/recover", mdb("recover", handle(a, "recover", a.recover)))
	mux.Handle("POST /v1/restart", mdb("restart", handle(a, "restart", a.restart)))
	mux.Handle("POST /v1/bootstrap-fields", mdb("bootstrap-fields", handle(a, "bootstrap-fields", a.bootstrapFields)))
	mux.Handle("POST /v1/pc-bootstrap", mdb("pc-bootstrap", handle(a, "pc-bootstrap", a.pcBootstrap)))
	mux.Handle("GET /v1/replication", mdb("replication", handle(a, "replication", a.replicationStatus)))
	mux.Handle("POST /v1/replication/fence", mdb("fence", handle(a, "fence", a.fence)))
	mux.Handle("POST /v1/replication/wait-applied", mdb("wait-applied", handle(a, "wait-applied", a.waitApplied)))
	mux.Handle("POST /v1/replication/promote", mdb("promote", handle(a, "promote", a.promote)))
	mux.Handle("POST /v1/replication/replicate", mdb("replicate", handle(a, "replicate", a.replicate)))
	mux.Handle("POST /v1/replication/diverged", mdb("diverged", handle(a, "diverged", a.diverged)))
	mux.Handle("POST /v1/replication/seed-stream", mdb("seed-stream", http.HandlerFunc(a.seedStream)))
	mux.Handle("POST "+reseedPath, mdb("reseed", http.HandlerFunc(a.reseedHTTP)))
	mux.Handle("POST /v1/backups", mdb("backup", handle(a, "backup", a.backup)))
	mux.Handle("POST /v1/drill/kill", mdb("drill-kill", handle(a, "drill-kill", a.drillKill)))
	if a.ndb != nil {
		// The data node writes its native backups itself (START BACKUP
		// through the management server); its agent lists and deletes
		// them (ndb_backup.go).
		mux.Handle("GET /v1/backups", a.auth(handleIn(a, "backups", a.listNdbBackups)))
		mux.Handle("DELETE /v1/backups/{id}", a.auth(handleIn(a, "backup-delete", a.deleteNdbBackup)))
	} else {
		mux.Handle("GET /v1/backups", a.auth(handleIn(a, "backups", a.listBackups)))
		mux.Handle("DELETE /v1/backups/{id}", a.auth(handleIn(a, "backup-delete", a.deleteBackup)))
	}
	mux.Handle("POST /v1/backups/{id}/verify", mdb("verify", handleIn(a, "verify", a.verifyBackup)))
	mux.Handle("/v1/", a.auth(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusNotFound, errorBody{Error: fmt.Sprintf("no endpoint %s %s", r.Method, r.URL.Path)})
	})))
	return mux
}

// auth admits requests carrying the token. The comparison takes the same
// time whichever byte differs.
func (a *Agent) auth(next http.Handler) http.Handler {
	want := []byte(a.cfg.Token.Reveal())
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		if !ok || subtle.ConstantTimeCompare([]byte(got), want) != 1 {
			a.log.Warn("unauthenticated request refused", "method", r.Method, "path", r.URL.Path, "remote", r.RemoteAddr)
			w.Header().Set("WWW-Authenticate", `Bearer realm="nines-agent"`)
			writeJSON(w, http.StatusUnauthorized, errorBody{Error: "a valid bearer token is required"})
			return
		}
		// Only an authenticated caller may raise the highest token.
		if r.Method != http.MethodGet {
			if err := a.fencing.check(r); err != nil {
				status := statusOf(err)
				if status == http.StatusConflict {
					w.Header().Set(headerFenced, "1")
					a.met.fenced.WithLabelValues(r.Header.Get(HeaderFenceCluster)).Inc()
				}
				a.log.Warn("fencing refused a request", "method", r.Method, "path", r.URL.Path, "remote", r.RemoteAddr, "status", status, "error", err)
				writeJSON(w, status, errorBody{Error: err.Error()})
				return
			}
		}
		next.ServeHTTP(w, r)
	})
}

// readOnly reports the calls that only read. They are polled (the
// appliance may read status every second), so they are logged at debug
// level and not counted as actions.
func readOnly(name string) bool {
	return name == "status" || name == "grastate" || name == "backups" || name == "replication" || name == "diverged"
}

// handle decodes the request, runs do, logs and counts the outcome and
// writes the answer or the error with its status.
func handle[Req, Resp any](a *Agent, name string, do func(context.Context, Req) (Resp, error)) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := a.now()
		var req Req
		var resp Resp
		err := decodeBody(r, &req)
		if err == nil {
			resp, err = do(r.Context(), req)
		}
		status := http.StatusOK
		if err != nil {
			status = statusOf(err)
		}
		took := a.now().Sub(start).Round(time.Millisecond)
		attrs := []any{"action", name, "input", req, "status", status, "took", took}
		switch {
		case readOnly(name) && err == nil:
			a.log.Debug("action", attrs...)
		case err == nil:
			a.log.Info("action", append(attrs, "result", resp)...)
		case status < 500:
			a.log.Warn("action refused", append(attrs, "error", err)...)
		default:
			a.log.Error("action failed", append(attrs, "error", err)...)
		}
		if !readOnly(name) {
			a.met.count(name, status)
		}
		if err != nil {
			writeJSON(w, status, errorBody{Error: err.Error()})
			return
		}
		writeJSON(w, http.StatusOK, resp)
	})
}

func decodeBody(r *http.Request, v any) error {
	if r.Method == http.MethodGet {
		return nil
	}
	dec := json.NewDecoder(r.Body)
	dec.DisallowUnknownFields()
	err := dec.Decode(v)
	var tooBig *http.MaxBytesError
	switch {
	case errors.As(err, &tooBig):
		return &httpError{http.StatusRequestEntityTooLarge, fmt.Errorf("request body: larger than %d bytes", tooBig.Limit)}
	case err != nil && !errors.Is(err, io.EOF):
		return badRequest(fmt.Errorf("request body: %w", err))
	}
	return nil
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// httpError gives an error its status code.
type httpError struct {
	status int
	err    error
}

func (e *httpError) Error() string { return e.err.Error() }
func (e *httpError) Unwrap() error { return e.err }

func badRequest(err error) error { return &httpError{http.StatusBadRequest, err} }
func conflict(err error) error   { return &httpError{http.StatusConflict, err} }
func forbidden(err error) error  { return &httpError{http.StatusForbidden, err} }
func unavailable(err error) error {
	return &httpError{http.StatusServiceUnavailable, err}
}

// statusOf maps an action's error to its HTTP status, in one place.
func statusOf(err error) int {
	var he *httpError
	var we *mariadbd.WaitError
	switch {
	case errors.As(err, &he):
		return he.status
	case errors.Is(err, mariadbd.ErrRunning):
		return http.StatusConflict
	case errors.As(err, &we) && errors.Is(err, context.DeadlineExceeded):
		return http.StatusGatewayTimeout
	}
	return http.StatusInternalServerError
}

// acquire takes the action lock or refuses with 409 naming the holder.
func (a *Agent) acquire(action string) (release func(), err error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.busy != "" {
		return nil, conflict(fmt.Errorf("%s refused: %s is in progress (for %v)", action, a.busy, a.now().Sub(a.busySince).Round(time.Millisecond)))
	}
	a.busy, a.busySince = action, a.now()
	return func() {
		a.mu.Lock()
		a.busy = ""
		a.mu.Unlock()
	}, nil
}

// Status reads the server's state; parts that cannot be read are reported
// in the *Error fields, so the call itself never fails.
func (a *Agent) Status(ctx context.Context) Status {
	if a.ndb != nil {
		return a.ndbStatus()
	}
	st := Status{Name: a.cfg.Name, Kind: KindMariaDB, Mode: a.cfg.Mode(), Galera: a.cfg.IsGalera(), DataDir: a.srv.DataDir, DrillAllowed: a.cfg.Drill.Allowed}
	pid, err := a.ctl.pid()
	if err != nil {
		st.Error = err.Error()
	}
	st.Running, st.Pid = pid != 0, pid
	a.mu.Lock()
	st.Supervised = pid != 0 && a.watched[pid]
	if a.lastExit != nil {
		e := *a.lastExit
		st.LastExit = &e
	}
	a.mu.Unlock()
	if free, total, err := diskUsage(a.srv.DataDir); err != nil {
		st.DiskError = err.Error()
	} else {
		st.FreeBytes, st.TotalBytes = free, total
	}
	if st.Galera {
		if g, err := a.grastate(); err != nil {
			st.GrastateError = err.Error()
		} else {
			st.Grastate = &g
		}
		if g, err := a.srv.Gvwstate(); err != nil {
			st.GvwstateError = err.Error()
		} else {
			st.Gvwstate = &g
		}
		if st.Running {
			if w, err := a.readWsrep(ctx); err != nil {
				st.WsrepError = err.Error()
			} else {
				st.Wsrep = w
			}
		}
	}
	return st
}

func (a *Agent) grastate() (galera.Grastate, error) {
	if !a.cfg.IsGalera() {
		return galera.Grastate{}, badRequest(errors.New("not a Galera server (server.galera is false)"))
	}
	g, err := a.srv.Grastate()
	if errors.Is(err, fs.ErrNotExist) {
		return galera.Grastate{}, &httpError{http.StatusNotFound, err}
	}
	if err != nil {
		return galera.Grastate{}, err
	}
	return g, nil
}

// readWsrep reads the wsrep status over the local socket.
func (a *Agent) readWsrep(ctx context.Context) (*nines.GaleraStatus, error) {
	db, err := a.srv.DB()
	if err != nil {
		return nil, err
	}
	defer db.Close()
	return queryWsrep(ctx, db)
}

// queryWsrep reads the wsrep status within sqlTimeout. A value that does
// not parse is an error naming it: the status is then not reported at
// all rather than reported half-known.
func queryWsrep(ctx context.Context, db *sql.DB) (*nines.GaleraStatus, error) {
	ctx, cancel := context.WithTimeout(ctx, sqlTimeout)
	defer cancel()
	return mariadbd.QueryWsrep(ctx, db)
}

func (a *Agent) recover(ctx context.Context, _ struct{}) (RecoverResult, error) {
	if !a.cfg.IsGalera() {
		return RecoverResult{}, badRequest(errors.New("not a Galera server (server.galera is false)"))
	}
	release, err := a.acquireStopped("recover")
	if err != nil {
		return RecoverResult{}, err
	}
	defer release()
	p, err := a.recoverPosition(ctx)
	if err != nil {
		return RecoverResult{}, err
	}
	return RecoverResult{Position: p, Text: p.String()}, nil
}

// recoverPosition runs --wsrep-recover within server.recover_timeout.
func (a *Agent) recoverPosition(ctx context.Context) (galera.Position, error) {
	limit := a.cfg.Server.RecoverTimeout
	if limit <= 0 {
		limit = DefaultRecoverTimeout
	}
	rctx, cancel := context.WithTimeout(ctx, limit)
	defer cancel()
	p, err := a.srv.Recover(rctx)
	if err != nil && rctx.Err() != nil && ctx.Err() == nil {
		return p, fmt.Errorf("%w (server.recover_timeout %s passed; raise it for a larger redo log)", err, limit)
	}
	return p, err
}

// checkUnitPosition makes sure, in systemd mode, that the unit will start
// the server at pos. No position can be passed to Debian's
// mariadb.service: its ExecStart runs galera_recovery and appends the
// --wsrep_start_position it prints after $MYSQLD_OPTS, so that one wins
// (older units set _WSREP_START_POSITION in their own ExecStartPre,
// overwriting any value set before). What the unit recovers is what
// --wsrep-recover finds on the stopped datadir, so the agent runs it
// first: the same position means the unit starts where asked; another
// one means the datadir moved since the caller recovered it, and the
// start is refused before anything changed (grastate.dat included).
func (a *Agent) checkUnitPosition(ctx context.Context, action string, pos galera.Position) error {
	if a.cfg.Mode() != ModeSystemd {
		return nil
	}
	got, err := a.recoverPosition(ctx)
	if err != nil {
		return fmt.Errorf("%s: systemd mode: check the position the unit will recover: %w", action, err)
	}
	if got.UUID != pos.UUID || got.Seqno != pos.Seqno {
		return conflict(fmt.Errorf("%s refused: systemd mode: the unit starts at the position --wsrep-recover finds now, %s, not the %s asked for; recover again", action, got, pos))
	}
	return nil
}

// acquireStopped takes the action lock for an action that needs the
// datadir to itself, and refuses it (409) while the server runs.
func (a *Agent) acquireStopped(action string) (release func(), err error) {
	if release, err = a.acquire(action); err != nil {
		return nil, err
	}
	if err := a.requireStopped(action); err != nil {
		release()
		return nil, err
	}
	return release, nil
}

// requireStopped refuses, with 409, actions that need the datadir to
// themselves.
func (a *Agent) requireStopped(action string) error {
	pid, err := a.ctl.pid()
	if err != nil {
		return err
	}
	if pid != 0 {
		return conflict(fmt.Errorf("%s refused: the server is running (pid %d): %w", action, pid, mariadbd.ErrRunning))
	}
	return nil
}

// startPlan is a checked StartRequest.
type startPlan struct {
	req     StartRequest
	pos     *galera.Position
	wait    string
	timeout time.Duration
}

func (a *Agent) plan(req StartRequest) (startPlan, error) {
	p := startPlan{req: req, wait: req.Wait, timeout: DefaultStartTimeout}
	if req.Initial {
		return p, badRequest(errors.New("initial applies to NDB data nodes only (--initial); this agent runs a MariaDB server"))
	}
	if p.wait == "" {
		p.wait = WaitReady
	}
	switch p.wait {
	case WaitNone, WaitReady:
	case WaitSynced:
		if !a.cfg.IsGalera() {
			return p, badRequest(errors.New("wait synced: not a Galera server; use ready"))
		}
	default:
		return p, badRequest(fmt.Errorf("wait %q: want none, ready or synced", req.Wait))
	}
	if req.TimeoutSeconds < 0 || time.Duration(req.TimeoutSeconds)*time.Second > MaxStartTimeout {
		return p, badRequest(fmt.Errorf("timeout_seconds %d: want 1 to %d", req.TimeoutSeconds, int(MaxStartTimeout.Seconds())))
	}
	if req.TimeoutSeconds > 0 {
		p.timeout = time.Duration(req.TimeoutSeconds) * time.Second
	}
	if !a.cfg.IsGalera() && (req.NewCluster || req.Position != "") {
		return p, badRequest(errors.New("position and new_cluster apply to Galera servers only"))
	}
	if req.Position != "" {
		pos, err := galera.ParsePosition(req.Position)
		if err != nil {
			return p, badRequest(err)
		}
		p.pos = &pos
	}
	return p, nil
}

func (a *Agent) start(ctx context.Context, req StartRequest) (StartResult, error) {
	plan, err := a.plan(req)
	if err != nil {
		return StartResult{}, err
	}
	release, err := a.acquire("start")
	if err != nil {
		return StartResult{}, err
	}
	res, proc, err := a.launch(ctx, plan)
	release()
	if err != nil {
		return res, err
	}
	return a.wait(ctx, plan, proc, res)
}

// launch starts the server as plan says; the caller holds the action
// lock. A Galera server in process mode always gets a start position: the
// one asked for, or what --wsrep-recover finds now. Starting without one
// after a crash would need a full state transfer, and after a whole
// cluster crash would form a Primary component that forgot its history.
func (a *Agent) launch(ctx context.Context, plan startPlan) (StartResult, *mariadbd.Process, error) {
	start := a.now()
	if err := a.requireStopped("start"); err != nil {
		return StartResult{}, nil, err
	}
	opts := mariadbd.StartOptions{NewCluster: plan.req.NewCluster, Position: plan.pos}
	if opts.Position != nil {
		if err := a.checkUnitPosition(ctx, "start", *opts.Position); err != nil {
			return StartResult{}, nil, err
		}
	}
	if a.cfg.Mode() == ModeProcess && a.cfg.IsGalera() && opts.Position == nil {
		pos, err := a.recoverPosition(ctx)
		if err != nil {
			return StartResult{}, nil, fmt.Errorf("start: %w", err)
		}
		opts.Position = &pos
	}
	res := StartResult{}
	if opts.Position != nil {
		res.Position = opts.Position.String()
	}
	p, err := a.ctl.start(ctx, opts)
	if err != nil {
		return res, nil, err
	}
	if p != nil {
		res.Pid = p.Pid
		a.mu.Lock()
		a.joined = joinStart{pid: p.Pid, offset: p.LogOffset, pos: opts.Position}
		a.mu.Unlock()
		a.watch(p)
	} else if pid, err := a.ctl.pid(); err == nil {
		res.Pid = pid
	}
	res.TookMs = a.now().Sub(start).Milliseconds()
	return res, p, nil
}

// watch records how a supervised server ends. It never restarts it.
func (a *Agent) watch(p *mariadbd.Process) {
	a.watchExit(p.Pid, p.Done(), p.Err, func() string { return firstError(a.srv.LogTail(p.LogOffset)) })
}

// firstError returns the first line of a MariaDB error log tail that
// carries [ERROR], without its timestamp prefix.
func firstError(tail string) string {
	for _, line := range strings.Split(tail, "\n") {
		if i := strings.Index(line, "[ERROR] "); i >= 0 {
			return strings.TrimSpace(line[i+len("[ERROR] "):])
		}
	}
	return ""
}

// watchExit records how the supervised process pid ends, once done is
// closed and status tells how; reason, if not nil, reads why it ended.
func (a *Agent) watchExit(pid int, done <-chan struct{}, status func() error, reason func() string) {
	a.mu.Lock()
	a.watched[pid] = true
	a.mu.Unlock()
	go func() {
		<-done
		exit := Exit{Pid: pid, At: a.now().UTC().Format("2006-01-02T15:04:05.000Z07:00"), Status: status().Error()}
		if reason != nil {
			exit.Reason = reason()
		}
		a.mu.Lock()
		exit.Requested = a.stopping[pid]
		delete(a.stopping, pid)
		delete(a.watched, pid)
		a.lastExit = &exit
		a.mu.Unlock()
		if exit.Requested {
			a.log.Info("server exited", "pid", exit.Pid, "status", exit.Status)
		} else {
			a.log.Warn("server exited unexpectedly; the agent does not restart it", "pid", exit.Pid, "status", exit.Status, "reason", exit.Reason)
		}
	}()
}

// wait waits as plan says for the server launch started.
func (a *Agent) wait(ctx context.Context, plan startPlan, p *mariadbd.Process, res StartResult) (StartResult, error) {
	start := a.now().Add(-time.Duration(res.TookMs) * time.Millisecond)
	if plan.wait == WaitNone {
		return res, nil
	}
	wctx, cancel := context.WithTimeout(ctx, plan.timeout)
	defer cancel()
	var err error
	if plan.wait == WaitSynced {
		err = a.srv.WaitSynced(wctx, p)
		res.State = "Synced"
	} else {
		err = a.srv.WaitReady(wctx, p)
		res.State = "answering"
	}
	res.TookMs = a.now().Sub(start).Milliseconds()
	if err != nil {
		res.State = ""
		return res, fmt.Errorf("start: %w", err)
	}
	if pid, err := a.ctl.pid(); err == nil && pid != 0 {
		res.Pid = pid
	}
	return res, nil
}

func stopOptions(graceful *bool, graceSeconds int) (bool, time.Duration, error) {
	g := graceful == nil || *graceful
	grace := DefaultStopGrace
	switch {
	case graceSeconds < 0 || time.Duration(graceSeconds)*time.Second > MaxStartTimeout:
		return false, 0, badRequest(fmt.Errorf("grace_seconds %d: want 0 to %d", graceSeconds, int(MaxStartTimeout.Seconds())))
	case graceSeconds > 0:
		grace = time.Duration(graceSeconds) * time.Second
	}
	return g, grace, nil
}

func (a *Agent) stop(ctx context.Context, req StopRequest) (StopResult, error) {
	graceful, grace, err := stopOptions(req.Graceful, req.GraceSeconds)
	if err != nil {
		return StopResult{}, err
	}
	release, err := a.acquire("stop")
	if err != nil {
		return StopResult{}, err
	}
	defer release()
	return a.stopLocked(ctx, graceful, grace)
}

func (a *Agent) stopLocked(ctx context.Context, graceful bool, grace time.Duration) (StopResult, error) {
	start := a.now()
	pid, err := a.ctl.pid()
	if err != nil || pid == 0 {
		return StopResult{}, err
	}
	a.mu.Lock()
	a.stopping[pid] = true
	a.mu.Unlock()
	killed, err := a.ctl.stop(ctx, pid, graceful, grace)
	res := StopResult{WasRunning: true, Pid: pid, Killed: killed, TookMs: a.now().Sub(start).Milliseconds()}
	return res, err
}

func (a *Agent) restart(ctx context.Context, req RestartRequest) (RestartResult, error) {
	plan, err := a.plan(req.StartRequest)
	if err != nil {
		return RestartResult{}, err
	}
	_, grace, err := stopOptions(nil, req.GraceSeconds)
	if err != nil {
		return RestartResult{}, err
	}
	release, err := a.acquire("restart")
	if err != nil {
		return RestartResult{}, err
	}
	var res RestartResult
	res.Stop, err = a.stopLocked(ctx, true, grace)
	if err != nil {
		release()
		return res, fmt.Errorf("restart: %w", err)
	}
	var proc *mariadbd.Process
	res.Start, proc, err = a.launch(ctx, plan)
	release()
	if err != nil {
		return res, err
	}
	res.Start, err = a.wait(ctx, plan, proc, res.Start)
	return res, err
}

// bootstrapFields edits grastate.dat so the stopped server may bootstrap
// a new Primary component at uuid:seqno without starting a new history:
// safe_to_bootstrap AND seqno are set (galera.BootstrapGrastate says
// why both). It refuses, unless forced, to overwrite another history or a
// higher saved seqno: either would make the node claim data it lacks.
func (a *Agent) bootstrapFields(ctx context.Context, req BootstrapFieldsRequest) (BootstrapFieldsResult, error) {
	if !a.cfg.IsGalera() {
		return BootstrapFieldsResult{}, badRequest(errors.New("not a Galera server (server.galera is false)"))
	}
	if req.Clear {
		return a.clearBootstrapFields()
	}
	pos, err := galera.ParsePosition(fmt.Sprintf("%s:%d", req.UUID, req.Seqno))
	if err != nil {
		return BootstrapFieldsResult{}, badRequest(err)
	}
	if !pos.Known() {
		return BootstrapFieldsResult{}, badRequest(fmt.Errorf("position %s is not a committed position: run /v1/recover and pass what it returns", pos))
	}
	release, err := a.acquireStopped("bootstrap-fields")
	if err != nil {
		return BootstrapFieldsResult{}, err
	}
	defer release()
	// The start that follows must be able to use pos: check before the
	// edit, not after it.
	if err := a.checkUnitPosition(ctx, "bootstrap-fields", pos); err != nil {
		return BootstrapFieldsResult{}, err
	}
	var res BootstrapFieldsResult
	cur, err := a.srv.Grastate()
	replace := false
	switch {
	case errors.Is(err, fs.ErrNotExist):
	case err != nil:
		if !req.Force {
			return res, conflict(fmt.Errorf("bootstrap-fields refused: %w; pass force to replace it", err))
		}
		replace = true
	case cur.UUID != galera.UndefinedUUID && cur.UUID != pos.UUID:
		if !req.Force {
			return res, conflict(fmt.Errorf("bootstrap-fields refused: grastate.dat holds cluster %s, not %s: %w; pass force to replace it",
				cur.UUID, pos.UUID, galera.ErrUUIDMismatch))
		}
		replace = true
	case cur.Seqno > pos.Seqno && !req.Force:
		return res, conflict(fmt.Errorf("bootstrap-fields refused: grastate.dat saved seqno %d, above the requested %d; pass force to lower it",
			cur.Seqno, pos.Seqno))
	}
	if replace {
		res.Backup = a.srv.GrastatePath() + ".bak-" + a.now().UTC().Format("20060102T150405.000Z")
		if err := os.Rename(a.srv.GrastatePath(), res.Backup); err != nil {
			return res, fmt.Errorf("bootstrap-fields: keep the old grastate.dat: %w", err)
		}
	}
	if err := a.srv.PrepareBootstrap(pos); err != nil {
		return res, err
	}
	res.Grastate, err = a.grastate()
	return res, err
}

// clearBootstrapFields sets safe_to_bootstrap back to 0 on the stopped
// server.
func (a *Agent) clearBootstrapFields() (BootstrapFieldsResult, error) {
	release, err := a.acquireStopped("bootstrap-fields")
	if err != nil {
		return BootstrapFieldsResult{}, err
	}
	defer release()
	if err := a.srv.ClearBootstrap(); err != nil {
		return BootstrapFieldsResult{}, err
	}
	var res BootstrapFieldsResult
	res.Grastate, err = a.grastate()
	return res, err
}

// pcBootstrap makes a running node outside any Primary component form one
// (pc.bootstrap=YES), the repair for a node left alone when the rest of
// its cluster died. It runs as the local admin over the unix socket, so no
// admin credential ever crosses the network. The node must be non-Primary
// right before the statement: in a live Primary component it would split
// the cluster in two. Choosing the right node (the most advanced one,
// with no Primary component anywhere) is the caller's job.
func (a *Agent) pcBootstrap(ctx context.Context, _ struct{}) (PCBootstrapResult, error) {
	if !a.cfg.IsGalera() {
		return PCBootstrapResult{}, badRequest(errors.New("not a Galera server (server.galera is false)"))
	}
	release, err := a.acquire("pc-bootstrap")
	if err != nil {
		return PCBootstrapResult{}, err
	}
	defer release()
	start := a.now()
	pid, err := a.ctl.pid()
	if err != nil {
		return PCBootstrapResult{}, err
	}
	if pid == 0 {
		return PCBootstrapResult{}, conflict(errors.New("pc-bootstrap refused: the server is not running"))
	}
	db, err := a.srv.DB()
	if err != nil {
		return PCBootstrapResult{}, err
	}
	defer db.Close()
	var res PCBootstrapResult
	// The re-check, right before acting: whatever the caller saw may be
	// gone by now.
	before, err := queryWsrep(ctx, db)
	if err != nil {
		return res, unavailable(fmt.Errorf("pc-bootstrap: read wsrep status over %s: %w", a.srv.Socket, err))
	}
	res.Before = *before
	if res.Before.Primary() {
		return res, conflict(fmt.Errorf("pc-bootstrap refused: the node is in a Primary component (size %d, %s)",
			res.Before.ClusterSize, res.Before.LocalStateComment))
	}
	ectx, cancel := context.WithTimeout(ctx, sqlTimeout)
	_, err = db.ExecContext(ectx, "SET GLOBAL wsrep_provider_options='pc.bootstrap=YES'")
	cancel()
	if err != nil {
		return res, fmt.Errorf("pc-bootstrap: SET GLOBAL wsrep_provider_options: %w", err)
	}
	deadline := a.now().Add(pcBootstrapWait)
	for {
		after, err := queryWsrep(ctx, db)
		if after != nil {
			res.After = *after
		}
		if err == nil && res.After.Primary() {
			break
		}
		if a.now().After(deadline) || ctx.Err() != nil {
			res.TookMs = a.now().Sub(start).Milliseconds()
			if err != nil {
				return res, fmt.Errorf("pc-bootstrap: statement ran, then reading the status failed: %w", err)
			}
			return res, fmt.Errorf("pc-bootstrap: statement ran, but the node is %s after %v", res.After.ClusterStatus, pcBootstrapWait)
		}
		time.Sleep(20 * time.Millisecond)
	}
	res.TookMs = a.now().Sub(start).Milliseconds()
	if !res.After.Synced() {
		res.Note = "Primary, not yet Synced: " + res.After.LocalStateComment
	}
	return res, nil
}

// diskUsage is the free (for unprivileged writers) and total bytes of the
// file system holding path.
func diskUsage(path string) (free, total uint64, err error) {
	var st syscall.Statfs_t
	if err := syscall.Statfs(path, &st); err != nil {
		return 0, 0, fmt.Errorf("statfs %q: %w", path, err)
	}
	bs := uint64(st.Bsize)
	return st.Bavail * bs, st.Blocks * bs, nil
}
