package agent

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/nines-project/nines/internal/mariadbd"
)

// DefaultNdbStartTimeout bounds how long a data node start waits for the
// process to write its pid file; ndbmtd writes it within its first second.
// Joining the cluster (the start phases) is followed on the management
// server by the caller, not here.
const DefaultNdbStartTimeout = 30 * time.Second

// ndbControl runs an NDB data node as a detached process: its own
// session, output appended to the log, found again by its pid file.
type ndbControl struct {
	cfg  NdbDataNode
	kind string // KindNdbDataNode or KindNdbMgmd
	// sd is set when the node runs as a systemd unit (cfg.Unit).
	sd *systemdControl

	mu   sync.Mutex
	proc *ndbProcess // the last process this agent started

	sums ndbSums // checksums of the native backup files (ndb_backup.go)
}

// ndbProcess is a data node process this agent started and reaps.
type ndbProcess struct {
	pid  int
	done chan struct{}
	err  error
}

func (p *ndbProcess) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

func newNdbAgent(cfg *Config, opts Options) (*Agent, error) {
	n, kind := cfg.ndbProcess()
	ctl := &ndbControl{cfg: *n, kind: kind}
	switch {
	case n.Unit != "":
		sc := opts.Systemctl
		if sc == "" {
			sc = "systemctl"
		}
		ctl.sd = &systemdControl{unit: n.Unit, systemctl: sc}
	case len(n.Command) == 0 || n.PidFile == "" || n.Log == "":
		return nil, errors.New("agent: config not validated (use Load or Parse)")
	}
	a := &Agent{
		cfg:      cfg,
		log:      opts.Logger.With("agent", cfg.Name, "ndb_node_id", n.NodeID),
		now:      opts.Now,
		ndb:      ctl,
		watched:  map[int]bool{},
		stopping: map[int]bool{},
	}
	if err := a.openFence(); err != nil {
		return nil, err
	}
	a.met = newMetrics(a)
	return a, nil
}

// serverPid is the running server's pid (0 when stopped), either kind.
func (a *Agent) serverPid() (int, error) {
	if a.ndb != nil {
		return a.ndb.pid()
	}
	return a.ctl.pid()
}

// dataDir is the directory whose file system the disk fields report.
func (a *Agent) dataDir() string {
	if a.ndb != nil {
		return a.ndb.cfg.Dir
	}
	return a.srv.DataDir
}

// notForNdb answers a MariaDB-only endpoint on a data node's agent.
func (a *Agent) notForNdb(name string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		err := fmt.Errorf("%s refused: this agent runs an ndb data node (node %d), not a MariaDB server; it serves /v1/status, /v1/start, /v1/stop, and GET and DELETE of /v1/backups (native backups)",
			name, a.ndb.cfg.NodeID)
		a.log.Warn("action refused", "action", name, "status", http.StatusConflict, "error", err)
		writeJSON(w, http.StatusConflict, errorBody{Error: err.Error()})
	})
}

// owns reports whether pid is a live process started by the configured
// command: the same program, then the configured arguments in order
// (a start may have appended initial_arg). A stale pid file whose pid
// now belongs to another program is so never taken for the node.
func (c *ndbControl) owns(pid int) bool {
	argv, ok := mariadbd.ProcessArgs(pid)
	if !ok || !processLive(pid) {
		return false
	}
	want := c.cfg.Command
	if filepath.Base(argv[0]) != filepath.Base(want[0]) || len(argv) < len(want) {
		return false
	}
	for i, w := range want[1:] {
		if argv[i+1] != w {
			return false
		}
	}
	return true
}

// pid is the running node's pid from its pid file, or that of the
// process this agent just started and that has not written it yet; 0
// when the node does not run.
func (c *ndbControl) pid() (int, error) {
	if c.sd != nil {
		return c.sd.pid()
	}
	b, err := os.ReadFile(c.cfg.PidFile)
	switch {
	case errors.Is(err, os.ErrNotExist):
	case err != nil:
		return 0, fmt.Errorf("read pid file of ndb node %d: %w", c.cfg.NodeID, err)
	default:
		if pid, err := strconv.Atoi(strings.TrimSpace(string(b))); err == nil && pid > 0 && c.owns(pid) {
			return pid, nil
		}
	}
	c.mu.Lock()
	p := c.proc
	c.mu.Unlock()
	if p != nil && !p.exited() && c.owns(p.pid) {
		return p.pid, nil
	}
	return 0, nil
}

// pidFromFile is pid without the fallback to the started process.
func (c *ndbControl) pidFromFile() int {
	b, err := os.ReadFile(c.cfg.PidFile)
	if err != nil {
		return 0
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || pid <= 0 || !c.owns(pid) {
		return 0
	}
	return pid
}

// launch starts the command detached, with initial_arg appended when
// initial.
func (c *ndbControl) launch(initial bool, now time.Time) (*ndbProcess, error) {
	args := append([]string{}, c.cfg.Command[1:]...)
	if initial {
		args = append(args, c.cfg.InitialArg)
	}
	out, err := os.OpenFile(c.cfg.Log, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o640)
	if err != nil {
		return nil, fmt.Errorf("start ndb node %d: open log: %w", c.cfg.NodeID, err)
	}
	defer out.Close()
	fmt.Fprintf(out, "--- %s nines agent starts: %s\n", now.UTC().Format(time.RFC3339), strings.Join(append([]string{c.cfg.Command[0]}, args...), " "))
	cmd := exec.Command(c.cfg.Command[0], args...)
	cmd.Dir = c.cfg.Dir
	cmd.Stdout, cmd.Stderr = out, out
	// Its own session: the node outlives the agent, and a signal to the
	// agent's terminal or process group never reaches it.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start ndb node %d: %w", c.cfg.NodeID, err)
	}
	p := &ndbProcess{pid: cmd.Process.Pid, done: make(chan struct{})}
	go func() {
		// Reaped at once, so an exited node is no zombie that looks alive.
		p.err = cmd.Wait()
		if p.err == nil {
			p.err = errors.New("exit status 0")
		}
		close(p.done)
	}()
	c.mu.Lock()
	c.proc = p
	c.mu.Unlock()
	return p, nil
}

func (a *Agent) ndbStatus() Status {
	n := a.ndb.cfg
	st := Status{Name: a.cfg.Name, Kind: a.ndb.kind, NdbNodeID: n.NodeID, Mode: ModeProcess, DataDir: n.Dir}
	if a.ndb.sd != nil {
		st.Mode = ModeSystemd
	}
	pid, err := a.ndb.pid()
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
	if free, total, err := diskUsage(n.Dir); err != nil {
		st.DiskError = err.Error()
	} else {
		st.FreeBytes, st.TotalBytes = free, total
	}
	return st
}

// ndbStart starts the data node unless it runs. It returns once the
// process wrote its pid file (or runs as the one started); whether the
// node then joins the cluster is for the caller to follow on ndb_mgmd.
func (a *Agent) ndbStart(ctx context.Context, req StartRequest) (StartResult, error) {
	n := a.ndb.cfg
	switch {
	case req.Position != "" || req.NewCluster:
		return StartResult{}, badRequest(errors.New("position and new_cluster apply to Galera servers; this agent runs an ndb data node"))
	case req.Wait != "" && req.Wait != WaitNone:
		return StartResult{}, badRequest(fmt.Errorf("wait %q: an ndb data node start waits only for its process (none); follow its start phases on the management server", req.Wait))
	case req.TimeoutSeconds < 0 || time.Duration(req.TimeoutSeconds)*time.Second > MaxStartTimeout:
		return StartResult{}, badRequest(fmt.Errorf("timeout_seconds %d: want 1 to %d", req.TimeoutSeconds, int(MaxStartTimeout.Seconds())))
	}
	limit := DefaultNdbStartTimeout
	if req.TimeoutSeconds > 0 {
		limit = time.Duration(req.TimeoutSeconds) * time.Second
	}
	release, err := a.acquire("start")
	if err != nil {
		return StartResult{}, err
	}
	defer release()
	start := a.now()
	pid, err := a.ndb.pid()
	if err != nil {
		return StartResult{}, err
	}
	if pid != 0 {
		if req.Initial {
			return StartResult{Pid: pid}, conflict(fmt.Errorf("start refused: ndb node %d already runs (pid %d); it was not restarted with %s: stop it first", n.NodeID, pid, n.InitialArg))
		}
		return StartResult{Pid: pid, AlreadyRunning: true, State: "already running"}, nil
	}
	if req.Initial {
		a.log.Warn("STARTING NDB DATA NODE WITH "+n.InitialArg+": its file system and redo log are thrown away and reloaded from its node group",
			"node_id", n.NodeID, "command", n.Command, "unit", n.Unit)
	}
	if a.ndb.sd != nil {
		return a.ndbStartUnit(ctx, req.Initial, start)
	}
	p, err := a.ndb.launch(req.Initial, a.now())
	if err != nil {
		return StartResult{}, err
	}
	a.watchExit(p.pid, p.done, func() error { return p.err }, nil)
	res := StartResult{Pid: p.pid, Initial: req.Initial}
	err = a.ndbWaitPidFile(ctx, p, limit)
	res.TookMs = a.now().Sub(start).Milliseconds()
	if pid := a.ndb.pidFromFile(); pid != 0 {
		res.Pid = pid
	}
	if err != nil {
		return res, err
	}
	res.State = "running"
	return res, nil
}

// ndbStartUnit starts the node's systemd unit; the caller holds the
// action lock and saw the unit stopped.
func (a *Agent) ndbStartUnit(ctx context.Context, initial bool, start time.Time) (StartResult, error) {
	sd := a.ndb.sd
	if initial {
		if _, err := sd.run(ctx, "set-environment", NdbInitialEnv+"="+a.ndb.cfg.InitialArg); err != nil {
			return StartResult{}, err
		}
		defer func() {
			uctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
			defer cancel()
			if _, err := sd.run(uctx, "unset-environment", NdbInitialEnv); err != nil {
				a.log.Error("could not unset "+NdbInitialEnv+": the next start of any unit using it would be initial", "error", err)
			}
		}()
	}
	if _, err := sd.run(ctx, "start", sd.unit); err != nil {
		return StartResult{}, err
	}
	res := StartResult{Initial: initial, State: "running"}
	res.Pid, _ = sd.pid()
	res.TookMs = a.now().Sub(start).Milliseconds()
	return res, nil
}

// ndbWaitPidFile waits until the pid file names a live node process (a
// daemonizing ndbmtd's started process may exit 0 after writing it), or
// fails when the started process exited without one.
func (a *Agent) ndbWaitPidFile(ctx context.Context, p *ndbProcess, limit time.Duration) error {
	deadline := time.NewTimer(limit)
	defer deadline.Stop()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		if a.ndb.pidFromFile() != 0 {
			return nil
		}
		select {
		case <-p.done:
			if a.ndb.pidFromFile() != 0 {
				return nil
			}
			return fmt.Errorf("start ndb node %d: the process exited (%v) without a running node; see %s: %s",
				a.ndb.cfg.NodeID, p.err, a.ndb.cfg.Log, logTail(a.ndb.cfg.Log, 512))
		case <-ctx.Done():
			return fmt.Errorf("start ndb node %d: wait for pid file %s: %w", a.ndb.cfg.NodeID, a.ndb.cfg.PidFile, ctx.Err())
		case <-deadline.C:
			return &httpError{http.StatusGatewayTimeout, fmt.Errorf("start ndb node %d: pid %d runs but wrote no pid file %s within %v",
				a.ndb.cfg.NodeID, p.pid, a.ndb.cfg.PidFile, limit)}
		case <-tick.C:
		}
	}
}

// ndbStop stops the data node: SIGTERM to the node, then, after the
// grace period, SIGKILL to its whole session so no child outlives it.
func (a *Agent) ndbStop(ctx context.Context, req StopRequest) (StopResult, error) {
	graceful, grace, err := stopOptions(req.Graceful, req.GraceSeconds)
	if err != nil {
		return StopResult{}, err
	}
	release, err := a.acquire("stop")
	if err != nil {
		return StopResult{}, err
	}
	defer release()
	start := a.now()
	pid, err := a.ndb.pid()
	if err != nil || pid == 0 {
		return StopResult{}, err
	}
	a.mu.Lock()
	a.stopping[pid] = true
	a.mu.Unlock()
	res := StopResult{WasRunning: true, Pid: pid}
	if a.ndb.sd != nil {
		res.Killed, err = a.ndb.sd.stop(ctx, pid, graceful, grace)
		res.TookMs = a.now().Sub(start).Milliseconds()
		return res, err
	}
	alive := func() bool { return a.ndb.owns(pid) }
	if graceful {
		if err := syscall.Kill(pid, syscall.SIGTERM); err != nil && !errors.Is(err, syscall.ESRCH) {
			return res, fmt.Errorf("stop ndb node %d: SIGTERM pid %d: %w", a.ndb.cfg.NodeID, pid, err)
		}
		if waitGone(ctx, alive, grace, "") == nil {
			res.TookMs = a.now().Sub(start).Milliseconds()
			return res, nil
		}
		if ctx.Err() != nil {
			return res, fmt.Errorf("stop ndb node %d: wait for pid %d to exit: %w", a.ndb.cfg.NodeID, pid, ctx.Err())
		}
	}
	if alive() {
		target := pid
		if pgid, err := syscall.Getpgid(pid); err == nil && pgid == pid {
			target = -pid // its session's group: children (ndbmtd's worker) too
		}
		if err := syscall.Kill(target, syscall.SIGKILL); err != nil && !errors.Is(err, syscall.ESRCH) {
			return res, fmt.Errorf("stop ndb node %d: SIGKILL pid %d: %w", a.ndb.cfg.NodeID, pid, err)
		}
		res.Killed = true
	}
	err = waitGone(ctx, alive, 10*time.Second, fmt.Sprintf("ndb node %d pid %d still alive after SIGKILL", a.ndb.cfg.NodeID, pid))
	res.TookMs = a.now().Sub(start).Milliseconds()
	return res, err
}

// processLive reports whether pid exists and is not a zombie.
func processLive(pid int) bool {
	b, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "stat"))
	if err != nil {
		return false
	}
	i := strings.LastIndexByte(string(b), ')')
	if i < 0 || i+2 >= len(b) {
		return false
	}
	return b[i+2] != 'Z' && b[i+2] != 'X'
}

// logTail is the last n bytes of a log, for an error message.
func logTail(path string, n int64) string {
	f, err := os.Open(path)
	if err != nil {
		return ""
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return ""
	}
	off := max(fi.Size()-n, 0)
	b := make([]byte, fi.Size()-off)
	_, _ = f.ReadAt(b, off)
	return strings.TrimSpace(string(b))
}
