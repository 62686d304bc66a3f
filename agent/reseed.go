package agent

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/nines-project/nines/internal/mariadbd"
)

// Reseeding rebuilds a replica from a physical copy of another one: the
// donor's agent streams `mariadb-backup --backup --stream=mbstream
// --slave-info` (POST /v1/replication/seed-stream) and the target's agent
// takes that stream as the body of POST /v1/replication/reseed. The
// caller (the appliance) relays the stream from one to the other: agents
// trust the appliance's token only and never call each other, so no
// agent holds another host's credentials.
//
// The target keeps its old datadir, renamed beside the new one: a
// diverged node's own transactions are still on disk for a person to
// save. The new datadir is extracted and prepared beside the old one
// while the old server still runs, so a stream that breaks leaves the
// node as it was; the server is stopped only for the swap.

const (
	// SeedStatusTrailer is the HTTP trailer of a seed stream: "ok" when
	// mariadb-backup finished, otherwise why not. A stream without it
	// was cut short.
	SeedStatusTrailer = "X-Nines-Seed-Status"
	// slaveInfoFile is what --slave-info writes from a replica:
	// "SET GLOBAL gtid_slave_pos = '0-1-7';\nCHANGE MASTER TO ...".
	slaveInfoFile = "xtrabackup_slave_info"
	// reseedPath takes a stream as its body, so it is exempt from the
	// body limit and the read timeout of the other endpoints.
	reseedPath = "/v1/replication/reseed"
)

// SeedStreamRequest is POST /v1/replication/seed-stream. The answer is
// the mbstream itself (application/octet-stream) with the trailer
// SeedStatusTrailer; a refusal before the stream starts is a JSON error.
type SeedStreamRequest struct {
	// AllowPrimary lets a server that is not a read-only replica be the
	// donor: the backup then loads the primary. The runbook sets it only
	// when an operator forced it.
	AllowPrimary bool `json:"allow_primary,omitempty"`
}

// ReseedRequest is POST /v1/replication/reseed, as query parameters: the
// body is the donor's stream. The server is rebuilt from it and becomes
// a replica of SourceHost:SourcePort from the backup's GTID position.
type ReseedRequest struct {
	SourceHost string
	SourcePort int
	SemiSync   bool
}

// ReseedResult says what the reseed did.
type ReseedResult struct {
	// Aside is where the old datadir went (kept whole).
	Aside   string `json:"old_datadir"`
	DataDir string `json:"datadir"`
	// SlavePos is the gtid_slave_pos set from the backup: the donor's
	// position at the backup point.
	SlavePos string `json:"gtid_slave_pos"`
	// DonorBinlogPos is the donor's gtid_binlog_pos at the backup point
	// (xtrabackup_binlog_info), for the record.
	DonorBinlogPos string `json:"donor_gtid_binlog_pos,omitempty"`
	StreamBytes    int64  `json:"stream_bytes"`
	StreamMs       int64  `json:"stream_ms"`
	PrepareMs      int64  `json:"prepare_ms"`
	// DownMs is how long the server was stopped (stop, swap, start).
	DownMs int64  `json:"down_ms"`
	TookMs int64  `json:"took_ms"`
	IO     string `json:"io"`
}

// seedStream is POST /v1/replication/seed-stream. It holds the action
// lock for the whole stream, as a backup does.
func (a *Agent) seedStream(w http.ResponseWriter, r *http.Request) {
	start := a.now()
	var req SeedStreamRequest
	fail := func(err error) {
		status := statusOf(err)
		a.log.Warn("action refused", "action", "seed-stream", "input", req, "status", status, "error", err)
		a.met.count("seed-stream", status)
		writeJSON(w, status, errorBody{Error: err.Error()})
	}
	if err := decodeBody(r, &req); err != nil {
		fail(err)
		return
	}
	bin, err := toolBackup.find()
	if err != nil {
		fail(fmt.Errorf("seed stream: %w", err))
		return
	}
	release, err := a.acquire("seed-stream")
	if err != nil {
		fail(err)
		return
	}
	defer release()
	var st ReplicationStatus
	if err := a.withSQL(r.Context(), func(ctx context.Context, db *sql.DB) error { return readReplication(ctx, db, &st) }); err != nil {
		fail(fmt.Errorf("seed stream refused: read the server: %w", err))
		return
	}
	if !req.AllowPrimary && (!st.ReadOnly || st.Replica == nil || st.Replica.IO != "Yes" || !st.Replica.SQLRunning) {
		fail(conflict(errors.New("seed stream refused: this server is not a read-only replica with both replica threads running; a primary is a donor only when forced")))
		return
	}
	tmp, err := os.MkdirTemp("", "nines-seed-")
	if err != nil {
		fail(fmt.Errorf("seed stream: %w", err))
		return
	}
	defer os.RemoveAll(tmp)
	args := []string{
		"--defaults-file=" + a.srv.DefaultsFile, "--backup", "--stream=mbstream", "--slave-info", "--target-dir=" + tmp,
		"--user=" + mariadbd.SocketUser(), "--socket=" + a.srv.Socket,
	}
	w.Header().Set("Trailer", SeedStatusTrailer)
	w.Header().Set("Content-Type", "application/octet-stream")
	w.WriteHeader(http.StatusOK)
	cw := &countWriter{w: w}
	stderr := &stderrTail{}
	cmd := command(r.Context(), bin, args, nil, cw, stderr)
	cmd.Dir = tmp
	err = runStep("mariadb-backup --backup", cmd, stderr)
	status := "ok"
	if err != nil {
		// Headers are sent: the trailer carries the failure.
		status = "failed: " + strings.ReplaceAll(err.Error(), "\n", " ")
	}
	w.Header().Set(SeedStatusTrailer, status)
	took := a.now().Sub(start).Round(time.Millisecond)
	code := http.StatusOK
	if err != nil {
		code = http.StatusInternalServerError
		a.log.Error("action failed", "action", "seed-stream", "input", req, "bytes", cw.n, "took", took, "error", err)
	} else {
		a.log.Info("action", "action", "seed-stream", "input", req, "bytes", cw.n, "took", took)
	}
	a.met.count("seed-stream", code)
}

type countWriter struct {
	w io.Writer
	n int64
}

func (c *countWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

// reseedHTTP is POST /v1/replication/reseed: parameters in the query, the
// stream in the body, the ReseedResult (or an error) as JSON.
func (a *Agent) reseedHTTP(w http.ResponseWriter, r *http.Request) {
	// The body is a whole backup: no read deadline, no size limit.
	_ = http.NewResponseController(w).SetReadDeadline(time.Time{})
	start := a.now()
	q := r.URL.Query()
	req := ReseedRequest{SourceHost: q.Get("source_host"), SemiSync: q.Get("semi_sync") == "true"}
	var err error
	var res ReseedResult
	if req.SourcePort, err = strconv.Atoi(q.Get("source_port")); err != nil {
		err = badRequest(fmt.Errorf("source_port %q: not a number", q.Get("source_port")))
	} else {
		res, err = a.reseed(r.Context(), req, r.Body)
	}
	status := http.StatusOK
	attrs := []any{"action", "reseed", "input", req, "took", a.now().Sub(start).Round(time.Millisecond)}
	if err != nil {
		status = statusOf(err)
		if status < 500 {
			a.log.Warn("action refused", append(attrs, "status", status, "error", err)...)
		} else {
			a.log.Error("action failed", append(attrs, "status", status, "error", err)...)
		}
		a.met.count("reseed", status)
		writeJSON(w, status, errorBody{Error: err.Error()})
		return
	}
	a.log.Info("action", append(attrs, "status", status, "result", res)...)
	a.met.count("reseed", status)
	writeJSON(w, status, res)
}

func (a *Agent) reseed(ctx context.Context, req ReseedRequest, stream io.Reader) (ReseedResult, error) {
	start := a.now()
	var res ReseedResult
	acct := a.cfg.Replication
	switch {
	case a.cfg.IsGalera():
		return res, badRequest(errors.New("reseed: a Galera node rebuilds itself by state transfer"))
	case acct == nil:
		return res, conflict(errors.New("reseed refused: this agent has no replication account (replication: {user, password_file} in its config)"))
	case req.SourceHost == "" || strings.ContainsAny(req.SourceHost, "'\\ ") || req.SourcePort <= 0 || req.SourcePort > 65535:
		return res, badRequest(fmt.Errorf("source %q:%d: want a host name or address and a port 1..65535", req.SourceHost, req.SourcePort))
	}
	tools, err := findTools(toolBackup, toolMbstream)
	if err != nil {
		return res, fmt.Errorf("reseed: %w", err)
	}
	release, err := a.acquire("reseed")
	if err != nil {
		return res, err
	}
	defer release()
	if err := a.checkReseedTarget(ctx); err != nil {
		return res, err
	}
	dataDir := filepath.Clean(a.srv.DataDir)
	if err := logsWithin(a.srv.DefaultsFile, dataDir); err != nil {
		return res, err
	}
	// The copy is about as large as the old datadir, which stays.
	need := dirSize(dataDir)
	if free, _, err := diskUsage(filepath.Dir(dataDir)); err == nil && uint64(need) > free {
		return res, conflict(fmt.Errorf("reseed refused: %s has %d bytes free, the old datadir holds %d and is kept: make room first", filepath.Dir(dataDir), free, need))
	}
	uid, gid, err := serverOwner()
	if err != nil {
		return res, err
	}
	stamp := a.now().UTC().Format("20060102T150405Z")
	fresh := dataDir + ".reseed-" + stamp
	res.Aside, res.DataDir = dataDir+".diverged-"+stamp, dataDir
	if err := os.Mkdir(fresh, 0o750); err != nil {
		return res, fmt.Errorf("reseed: create the new datadir: %w", err)
	}
	swapped := false
	defer func() {
		if !swapped {
			os.RemoveAll(fresh)
		}
	}()
	if err := chownTree(fresh, uid, gid); err != nil {
		return res, err
	}

	// Extract the stream as it comes; the capture checks its chunks and
	// keeps the position files.
	t0 := a.now()
	capture := newXBCapture(slaveInfoFile, binlogInfoFile)
	counted := &countReader{r: stream}
	stderr := &stderrTail{}
	cmd := asUser(command(ctx, tools[toolMbstream], []string{"-x", "-C", fresh}, io.TeeReader(counted, capture), nil, stderr), uid, gid)
	if err := runStep("mbstream -x", cmd, stderr); err != nil {
		return res, fmt.Errorf("reseed: receive the stream after %d bytes: %w", counted.n, err)
	}
	res.StreamBytes, res.StreamMs = counted.n, a.now().Sub(t0).Milliseconds()
	files, err := capture.result()
	if err != nil {
		return res, fmt.Errorf("reseed: the stream after %d bytes: %w", counted.n, err)
	}
	if res.SlavePos, res.DonorBinlogPos, err = seedPosition(files); err != nil {
		return res, fmt.Errorf("reseed: %w", err)
	}

	t0 = a.now()
	carried, err := carriedSettings(filepath.Join(fresh, "backup-my.cnf"))
	if err != nil {
		return res, fmt.Errorf("reseed: read backup-my.cnf: %w", err)
	}
	prepareCnf := fresh + ".prepare.cnf"
	body := "# mariadb-backup --prepare of a reseed, written by the nines agent.\n[mysqld]\n" + strings.Join(carried, "\n") + "\n"
	if err := os.WriteFile(prepareCnf, []byte(body), 0o644); err != nil {
		return res, fmt.Errorf("reseed: %w", err)
	}
	defer os.Remove(prepareCnf)
	stderr = &stderrTail{}
	cmd = asUser(command(ctx, tools[toolBackup], []string{"--defaults-file=" + prepareCnf, "--prepare", "--target-dir=" + fresh}, nil, nil, stderr), uid, gid)
	if err := runStep("mariadb-backup --prepare", cmd, stderr); err != nil {
		return res, fmt.Errorf("reseed: %w", err)
	}
	res.PrepareMs = a.now().Sub(t0).Milliseconds()
	if err := chownTree(fresh, uid, gid); err != nil {
		return res, err
	}

	// Check again right before the irreversible part: the server must
	// still not be a primary.
	if err := a.checkReseedTarget(ctx); err != nil {
		return res, err
	}
	// From the stop on, finish even if the caller goes away (a preempted
	// job): every step below is bounded, and stopping half-way would leave
	// the node without a server.
	ctx = context.WithoutCancel(ctx)
	down := a.now()
	if _, err := a.stopLocked(ctx, true, DefaultStopGrace); err != nil {
		return res, fmt.Errorf("reseed: stop the server: %w", err)
	}
	if err := os.Rename(dataDir, res.Aside); err != nil {
		return res, fmt.Errorf("reseed: move the old datadir aside (the server is stopped, its data untouched): %w", err)
	}
	if err := os.Rename(fresh, dataDir); err != nil {
		if berr := os.Rename(res.Aside, dataDir); berr != nil {
			return res, fmt.Errorf("reseed: put the new datadir in place: %w; and moving the old one back failed: %v (it is at %s)", err, berr, res.Aside)
		}
		return res, fmt.Errorf("reseed: put the new datadir in place (the old one is back, the server stopped): %w", err)
	}
	swapped = true
	// Process mode: the first start is read-only and does not replicate
	// with the donor's replica settings; systemd mode relies on the
	// server's my.cnf (read_only=ON) and the statements below.
	p, err := a.ctl.start(ctx, mariadbd.StartOptions{Args: []string{"--read-only", "--skip-slave-start"}})
	if err != nil {
		return res, fmt.Errorf("reseed: start the server on the new datadir (the old one is at %s): %w", res.Aside, err)
	}
	if p != nil {
		a.watch(p)
		wctx, cancel := context.WithTimeout(ctx, DefaultStartTimeout)
		err = a.srv.WaitReady(wctx, p)
		cancel()
		if err != nil {
			return res, fmt.Errorf("reseed: start the server on the new datadir (the old one is at %s): %w", res.Aside, err)
		}
	}
	res.DownMs = a.now().Sub(down).Milliseconds()
	err = a.withSQL(ctx, func(ctx context.Context, db *sql.DB) error {
		// The donor's replica settings came with the copy: forget them.
		for _, q := range []string{"SET GLOBAL read_only=ON", "STOP SLAVE", "RESET SLAVE ALL"} {
			if _, err := db.ExecContext(ctx, q); err != nil {
				return fmt.Errorf("%s: %w", q, err)
			}
		}
		r, err := a.pointAt(ctx, db, ReplicateRequest{SourceHost: req.SourceHost, SourcePort: req.SourcePort, SemiSync: req.SemiSync}, res.SlavePos)
		res.IO = r.IO
		return err
	})
	if err != nil {
		return res, fmt.Errorf("reseed: replicate from %s:%d (the server runs on the new datadir; the old one is at %s): %w", req.SourceHost, req.SourcePort, res.Aside, err)
	}
	res.TookMs = a.now().Sub(start).Milliseconds()
	return res, nil
}

// checkReseedTarget refuses to rebuild a server that takes writes or has
// replicas connected: it may be the primary.
func (a *Agent) checkReseedTarget(ctx context.Context) error {
	pid, err := a.ctl.pid()
	if err != nil {
		return err
	}
	if pid == 0 {
		return nil
	}
	return a.withSQL(ctx, func(ctx context.Context, db *sql.DB) error {
		var ro int
		if err := db.QueryRowContext(ctx, "SELECT @@global.read_only").Scan(&ro); err != nil {
			return err
		}
		if ro == 0 {
			return conflict(errors.New("reseed refused: the server takes writes (read_only OFF); it may be the primary: fence it first"))
		}
		var n int
		if err := db.QueryRowContext(ctx, "SELECT COUNT(*) FROM information_schema.processlist WHERE command LIKE 'Binlog Dump%'").Scan(&n); err != nil {
			return err
		}
		if n > 0 {
			return conflict(fmt.Errorf("reseed refused: %d replica(s) replicate from this server: it is a source", n))
		}
		return nil
	})
}

// logsWithin refuses a server whose binary or relay logs live outside
// its datadir: moving the datadir aside would leave them behind, and the
// rebuilt server would start with the old, diverged binary log.
func logsWithin(defaultsFile, dataDir string) error {
	opts, err := printDefaults(defaultsFile)
	if err != nil {
		return fmt.Errorf("reseed: %w", err)
	}
	for _, k := range []string{"log_bin", "log_bin_index", "relay_log", "relay_log_index"} {
		v, ok := opts[k]
		if !ok || v == "" || !filepath.IsAbs(v) {
			continue
		}
		if !within(filepath.Clean(v), dataDir) {
			return conflict(fmt.Errorf("reseed refused: %s=%s is outside the datadir %s; the agent moves the datadir aside only", k, v, dataDir))
		}
	}
	return nil
}

var slaveInfoGTID = regexp.MustCompile(`gtid_slave_pos\s*=\s*'([0-9,\-\s]*)'`)

// seedPosition reads the backup's GTID position: the donor's
// gtid_slave_pos from xtrabackup_slave_info (a replica donor), else its
// gtid_binlog_pos from xtrabackup_binlog_info (a primary donor).
func seedPosition(files map[string][]byte) (slavePos, binlogPos string, err error) {
	if b, ok := files[binlogInfoFile]; ok {
		if _, binlogPos, err = parseBinlogInfo(b); err != nil {
			return "", "", err
		}
	}
	if b, ok := files[slaveInfoFile]; ok {
		m := slaveInfoGTID.FindSubmatch(b)
		if m == nil {
			return "", "", fmt.Errorf("%s: no gtid_slave_pos in %q", slaveInfoFile, b)
		}
		parts := strings.Split(string(m[1]), ",")
		for i := range parts {
			parts[i] = strings.TrimSpace(parts[i])
		}
		slavePos = strings.Join(parts, ",")
	}
	if slavePos == "" {
		slavePos = binlogPos
	}
	if slavePos == "" {
		return "", "", fmt.Errorf("the stream holds no GTID position (neither %s nor %s)", slaveInfoFile, binlogInfoFile)
	}
	// Checked before the server is stopped: it goes into a statement.
	if !gtidPosition.MatchString(slavePos) {
		return "", "", fmt.Errorf("the stream's GTID position %q is not domain-server-seqno[,...]", slavePos)
	}
	return slavePos, binlogPos, nil
}

type countReader struct {
	r io.Reader
	n int64
}

func (c *countReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

// serverOwner is the OS user the server's files belong to when the agent
// runs as root (-1, -1 otherwise: the agent's own user runs the server).
func serverOwner() (int, int, error) {
	if os.Geteuid() != 0 {
		return -1, -1, nil
	}
	u, err := user.Lookup(scratchUser)
	if err != nil {
		return -1, -1, fmt.Errorf("reseed: look up the server's OS user %q: %w", scratchUser, err)
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	return uid, gid, nil
}

func asUser(cmd *exec.Cmd, uid, gid int) *exec.Cmd {
	if uid >= 0 {
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}}
	}
	return cmd
}

func chownTree(dir string, uid, gid int) error {
	if uid < 0 {
		return nil
	}
	err := filepath.Walk(dir, func(p string, _ os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		return os.Lchown(p, uid, gid)
	})
	if err != nil {
		return fmt.Errorf("reseed: give %s to %s: %w", dir, scratchUser, err)
	}
	return nil
}
