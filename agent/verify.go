package agent

import (
	"bufio"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/nines-project/nines/internal/mariadbd"
)

// A verification restores a backup into a scratch server and checks it
// against the facts its manifest recorded at backup time. The scratch
// server lives in Dir/.verify-<id>/: its own datadir, socket, pid file and
// error log, listening on 127.0.0.1 only, with wsrep off so it can never
// join the cluster. It is killed and its directory removed whatever the
// outcome: nothing of it is worth keeping but the result.

const (
	// scratchStartTimeout bounds the scratch server's start; a prepared
	// datadir starts in well under a second, a dump's fresh one too.
	scratchStartTimeout = 10 * time.Minute
	// maxSocketPath keeps unix socket paths under the kernel's 108 bytes.
	maxSocketPath = 100
	// scratchUser is the OS user the scratch server runs as when the agent
	// runs as root, as Debian runs mariadbd.
	scratchUser = "mysql"
)

// scratchOptions are the scratch server's settings beside its paths.
//
//	skip-slave-start         a restored replica must not reconnect to its primary
//	wsrep-on=OFF             and a Galera node's copy must never join the cluster
//	skip-log-bin             nothing replicates from it
//	event-scheduler=DISABLED restored events must not change what is checked
//	max-allowed-packet=1G    a dump's rows are as large as the source allowed
const scratchOptions = `bind-address=127.0.0.1
skip-name-resolve
skip-slave-start
wsrep-on=OFF
skip-log-bin
event-scheduler=DISABLED
performance-schema=OFF
innodb-buffer-pool-size=128M
max-allowed-packet=1G
`

// verifyResult collects the checks of one verification.
type verifyResult struct{ VerifyResult }

func (r *verifyResult) check(name string, ok bool, detail string) bool {
	r.Checks = append(r.Checks, VerifyCheck{Name: name, OK: ok, Detail: detail})
	if !ok && r.Error == "" {
		r.Error = name + ": " + detail
	}
	return ok
}

// done is the answer: OK when every check passed.
func (r *verifyResult) done() VerifyResult {
	r.OK = r.Error == "" && len(r.Checks) > 0
	return r.VerifyResult
}

// verifyBackup is POST /v1/backups/{id}/verify.
func (a *Agent) verifyBackup(ctx context.Context, r *http.Request, req VerifyRequest) (VerifyResult, error) {
	id := r.PathValue("id")
	if err := checkBackupID(id); err != nil {
		return VerifyResult{}, badRequest(err)
	}
	dir, err := a.backupDir(req.Dir)
	if err != nil {
		return VerifyResult{}, err
	}
	if req.Port < 0 || req.Port > 65535 {
		return VerifyResult{}, badRequest(fmt.Errorf("port %d: want 0 (any free port) or 1 to 65535", req.Port))
	}
	target, err := backupTarget(dir, id)
	if err != nil {
		return VerifyResult{}, err
	}
	if busy := a.bk.busyWith(dir, id); busy != "" {
		return VerifyResult{}, conflict(fmt.Errorf("verify refused: backup %q: %s", id, busy))
	}
	m, err := readManifest(target)
	if errors.Is(err, fs.ErrNotExist) {
		return VerifyResult{}, conflict(fmt.Errorf("verify refused: backup %q is incomplete (no %s)", id, ManifestFile))
	}
	res := &verifyResult{VerifyResult{ID: id, Method: m.Method, Checks: []VerifyCheck{}}}
	if err != nil {
		res.check("manifest", false, err.Error())
		return res.done(), nil
	}
	need := []tool{toolMariadbd}
	switch m.Method {
	case MethodMariabackup:
		need = append(need, toolMbstream, toolBackup)
	case MethodDump:
		need = append(need, toolInstallDB, toolClient)
	default:
		res.check("manifest", false, fmt.Sprintf("unknown method %q", m.Method))
		return res.done(), nil
	}
	tools, err := findTools(need...)
	if err != nil {
		return VerifyResult{}, fmt.Errorf("verify %q: %w", id, err)
	}
	if m.Method == MethodDump {
		if err := checkClient(ctx, tools[toolClient]); err != nil {
			return VerifyResult{}, fmt.Errorf("verify %q: %w", id, err)
		}
	}
	a.bk.mu.Lock()
	if v := a.bk.verify; v != nil {
		a.bk.mu.Unlock()
		return VerifyResult{}, conflict(fmt.Errorf("verify refused: the verification of %q is running (for %v)", v.id, a.now().Sub(v.since).Round(time.Millisecond)))
	}
	a.bk.verify = &job{dir: dir, id: id, since: a.now()}
	a.bk.mu.Unlock()
	defer a.bk.set(&a.bk.verify, nil)

	start := a.now()
	if !a.checksums(ctx, res, target, m) {
		res.ChecksumSeconds = a.now().Sub(start).Seconds()
		return res.done(), nil
	}
	res.ChecksumSeconds = a.now().Sub(start).Seconds()

	sc, err := a.newScratch(ctx, dir, id, req.Port)
	if err != nil {
		return VerifyResult{}, fmt.Errorf("verify %q: %w", id, err)
	}
	sc.srv.Mariadbd = tools[toolMariadbd]
	res.Port = sc.port
	defer func() {
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cleanupTimeout)
		defer cancel()
		if err := a.removeScratch(cctx, dir, id); err != nil {
			a.log.Error("remove the verification's scratch server", "id", id, "error", err)
		}
	}()
	start = a.now()
	var restored bool
	if m.Method == MethodMariabackup {
		restored = a.restoreMariabackup(ctx, res, sc, tools, filepath.Join(target, MariabackupFile))
	} else {
		restored = a.restoreDump(ctx, res, sc, tools, filepath.Join(target, DumpFile))
	}
	res.RestoreSeconds = a.now().Sub(start).Seconds()
	if ctx.Err() != nil {
		// The caller is gone: a cut-short restore says nothing of the backup.
		return VerifyResult{}, fmt.Errorf("verify %q: %w", id, ctx.Err())
	}
	if !restored {
		return res.done(), nil
	}
	start = a.now()
	err = compareFacts(ctx, res, sc, m)
	res.CheckSeconds = a.now().Sub(start).Seconds()
	if err == nil {
		err = ctx.Err()
	}
	if err != nil {
		return VerifyResult{}, fmt.Errorf("verify %q: %w", id, err)
	}
	return res.done(), nil
}

// checksums compares every file's SHA-256 with the manifest, before
// anything reads the files as a backup.
func (a *Agent) checksums(ctx context.Context, res *verifyResult, target string, m Manifest) bool {
	ok := len(m.Files) > 0
	if !ok {
		res.check("manifest", false, "lists no files")
	}
	for _, f := range m.Files {
		name := "checksum:" + f.Name
		if f.Name != filepath.Base(f.Name) || strings.HasPrefix(f.Name, ".") {
			ok = res.check(name, false, fmt.Sprintf("file name %q is not a plain name", f.Name)) && ok
			continue
		}
		sum, size, err := fileSHA256(ctx, filepath.Join(target, f.Name))
		switch {
		case err != nil:
			ok = res.check(name, false, fmt.Sprintf("%s: %v", f.Name, err)) && ok
		case sum != f.SHA256 || size != f.Size:
			ok = res.check(name, false, fmt.Sprintf("%s: sha256 %s (%d bytes), the manifest says %s (%d bytes): the file is corrupt",
				f.Name, sum, size, f.SHA256, f.Size)) && ok
		default:
			res.check(name, true, fmt.Sprintf("sha256 %s, %d bytes", sum, size))
		}
	}
	return ok
}

// scratch is the scratch server of one verification.
type scratch struct {
	now  func() time.Time
	dir  string
	srv  *mariadbd.Server
	port int
	// uid and gid own the scratch files: the server's OS user when the
	// agent runs as root, else -1 (unchanged).
	uid, gid int
}

func scratchDir(dir, id string) string { return filepath.Join(dir, verifyDirPrefix+id) }

// socketDirRecord is the file of a scratch directory naming the private
// directory its socket is in, when the scratch path is too long for a
// unix socket; socketDirPrefix starts that directory's name in the
// system's temporary directory.
const (
	socketDirRecord = "socket-dir"
	socketDirPrefix = "nines-verify-"
)

// scratchServer is the scratch server of dir/id, whether this agent
// started it or a previous run left it behind. Its socket is in its
// directory, or in the private directory the scratch directory records
// (see newScratch).
func scratchServer(dir, id string) *mariadbd.Server {
	sdir := scratchDir(dir, id)
	sock := filepath.Join(sdir, "mysqld.sock")
	if d, ok := recordedSocketDir(sdir); ok {
		sock = filepath.Join(d, "mysqld.sock")
	}
	return &mariadbd.Server{
		Name: "verify-" + id, DefaultsFile: filepath.Join(sdir, "my.cnf"), Dir: sdir,
		DataDir: filepath.Join(sdir, "data"), Socket: sock,
		PidFile: filepath.Join(sdir, "mysqld.pid"), ErrorLog: filepath.Join(sdir, "error.log"),
	}
}

// recordedSocketDir reads the socket directory a scratch directory
// records. It is trusted only if it is what os.MkdirTemp makes for it (a
// socketDirPrefix directory right in the temporary directory), since it
// is removed with the scratch directory.
func recordedSocketDir(sdir string) (string, bool) {
	b, err := readNoFollow(filepath.Join(sdir, socketDirRecord))
	if err != nil {
		return "", false
	}
	d := filepath.Clean(strings.TrimSpace(string(b)))
	if filepath.Dir(d) != filepath.Clean(os.TempDir()) || !strings.HasPrefix(filepath.Base(d), socketDirPrefix) {
		return "", false
	}
	return d, true
}

// removeScratch kills the scratch server of dir/id if it runs and removes
// its files. A verification calls it when it ends, and before it begins
// in case an agent crash left one behind; DELETE calls it too.
func (a *Agent) removeScratch(ctx context.Context, dir, id string) error {
	srv := scratchServer(dir, id)
	if pid, err := srv.Pid(); err == nil && pid != 0 {
		// Its data is thrown away: no need for a clean shutdown.
		if _, err := srv.StopPID(ctx, pid, 0); err != nil {
			return fmt.Errorf("stop the scratch server: %w", err)
		}
	}
	if filepath.Dir(srv.Socket) != srv.Dir {
		_ = os.RemoveAll(filepath.Dir(srv.Socket))
	}
	if err := os.RemoveAll(srv.Dir); err != nil {
		return fmt.Errorf("remove the scratch directory: %w", err)
	}
	return nil
}

// newScratch lays out an empty scratch directory and chooses the port.
// Errors are the agent's own (a missing user, a port in use, a backup
// directory the server's user cannot reach), not the backup's.
func (a *Agent) newScratch(ctx context.Context, dir, id string, port int) (*scratch, error) {
	if err := a.removeScratch(ctx, dir, id); err != nil {
		return nil, err
	}
	sc := &scratch{now: a.now, srv: scratchServer(dir, id), uid: -1, gid: -1}
	sc.dir = sc.srv.Dir
	if os.Geteuid() == 0 {
		u, err := user.Lookup(scratchUser)
		if err != nil {
			return nil, fmt.Errorf("look up the server's OS user %q (install mariadb-server): %w", scratchUser, err)
		}
		sc.uid, _ = strconv.Atoi(u.Uid)
		sc.gid, _ = strconv.Atoi(u.Gid)
		if err := searchable(dir, u); err != nil {
			return nil, err
		}
	}
	for _, d := range []string{sc.dir, sc.srv.DataDir, filepath.Join(sc.dir, "tmp")} {
		if err := os.MkdirAll(d, 0o750); err != nil {
			return nil, fmt.Errorf("create the scratch directory: %w", err)
		}
	}
	if len(sc.srv.Socket) > maxSocketPath {
		if err := sc.privateSocketDir(); err != nil {
			return nil, err
		}
	}
	if err := sc.chown(); err != nil {
		return nil, err
	}
	var err error
	if sc.port, err = choosePort(port); err != nil {
		return nil, err
	}
	return sc, nil
}

// privateSocketDir moves the socket to a new directory of the system's
// temporary directory, for a scratch path too long for a unix socket.
// os.MkdirTemp makes it unpredictable and ours: a predictable name could
// be made first by any local user, who would then own the socket.
func (sc *scratch) privateSocketDir() error {
	d, err := os.MkdirTemp("", socketDirPrefix)
	if err != nil {
		return fmt.Errorf("create the scratch server's socket directory: %w", err)
	}
	if err := os.WriteFile(filepath.Join(sc.dir, socketDirRecord), []byte(d+"\n"), 0o640); err != nil {
		os.Remove(d)
		return fmt.Errorf("create the scratch server's socket directory: %w", err)
	}
	sc.srv.Socket = filepath.Join(d, "mysqld.sock")
	return nil
}

// choosePort returns port if it is free on 127.0.0.1, or any free port
// for 0. A port taken by then makes the scratch server fail to start.
//
// A port asked for by number may still be held for a moment by the scratch
// server of the verification just before (seen in tests: a back-to-back
// verification on the same port), so a busy port is tried again for a few
// seconds before the verification is refused.
func choosePort(port int) (int, error) {
	deadline := time.Now().Add(5 * time.Second)
	for {
		l, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
		if err == nil {
			defer l.Close()
			return l.Addr().(*net.TCPAddr).Port, nil
		}
		if port == 0 || time.Now().After(deadline) {
			return 0, conflict(fmt.Errorf("verify refused: port %d on 127.0.0.1 is in use: %w", port, err))
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// searchable checks that u may reach dir: every directory on its path
// must be searchable by u, or the scratch server cannot open its datadir.
func searchable(dir string, u *user.User) error {
	uid, _ := strconv.ParseUint(u.Uid, 10, 32)
	groups := map[uint64]bool{}
	gids, _ := u.GroupIds()
	for _, g := range append(gids, u.Gid) {
		if n, err := strconv.ParseUint(g, 10, 32); err == nil {
			groups[n] = true
		}
	}
	for p := dir; ; p = filepath.Dir(p) {
		fi, err := os.Stat(p)
		if err != nil {
			return err
		}
		st, ok := fi.Sys().(*syscall.Stat_t)
		if ok {
			mode := fi.Mode().Perm()
			if !(mode&0o001 != 0 || uint64(st.Uid) == uid && mode&0o100 != 0 || groups[uint64(st.Gid)] && mode&0o010 != 0) {
				return fmt.Errorf("the scratch server runs as %s, which cannot reach %q: %q is mode %04o; make it searchable (chmod o+x) or put the backups elsewhere",
					u.Username, dir, p, mode)
			}
		}
		if p == filepath.Dir(p) {
			return nil
		}
	}
}

// chown gives the scratch files to the server's OS user, when the agent
// runs as root.
func (sc *scratch) chown() error {
	if sc.uid < 0 {
		return nil
	}
	dirs := []string{sc.dir}
	if d := filepath.Dir(sc.srv.Socket); d != sc.dir {
		dirs = append(dirs, d)
	}
	for _, d := range dirs {
		err := filepath.WalkDir(d, func(p string, _ fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			return os.Lchown(p, sc.uid, sc.gid)
		})
		if err != nil {
			return fmt.Errorf("give the scratch directory to %s: %w", scratchUser, err)
		}
	}
	return nil
}

// writeConfig writes the scratch server's my.cnf: settings carried over
// from the backup first (InnoDB's page size, data files, redo log size),
// then the scratch server's own.
func (sc *scratch) writeConfig(carried []string) error {
	var b strings.Builder
	b.WriteString("# A backup verification's scratch server, written by the nines agent; removed with it.\n[mysqld]\n")
	for _, l := range carried {
		b.WriteString(l + "\n")
	}
	if sc.uid >= 0 {
		b.WriteString("user=" + scratchUser + "\n")
	}
	fmt.Fprintf(&b, "datadir=%s\ntmpdir=%s\nsocket=%s\npid-file=%s\nlog-error=%s\nport=%d\n",
		sc.srv.DataDir, filepath.Join(sc.dir, "tmp"), sc.srv.Socket, sc.srv.PidFile, sc.srv.ErrorLog, sc.port)
	b.WriteString(scratchOptions)
	fmt.Fprintf(&b, "[client]\nsocket=%s\nuser=%s\n", sc.srv.Socket, mariadbd.SocketUser())
	return os.WriteFile(sc.srv.DefaultsFile, []byte(b.String()), 0o640)
}

// start starts the scratch server and waits until it answers; a server
// that does not is the check server_starts failing, with its error log.
func (sc *scratch) start(ctx context.Context, res *verifyResult) bool {
	start := sc.now()
	p, err := sc.srv.Start(mariadbd.StartOptions{})
	if err != nil {
		return res.check("server_starts", false, err.Error())
	}
	wctx, cancel := context.WithTimeout(ctx, scratchStartTimeout)
	defer cancel()
	if err := sc.srv.WaitReady(wctx, p); err != nil {
		return res.check("server_starts", false, err.Error())
	}
	return res.check("server_starts", true, fmt.Sprintf("answered on 127.0.0.1:%d after %.2f s", sc.port, sc.now().Sub(start).Seconds()))
}

// openGzip opens a gzipped backup file for reading.
func openGzip(path string) (*gzip.Reader, func(), error) {
	f, err := openNoFollow(path)
	if err != nil {
		return nil, nil, err
	}
	gz, err := gzip.NewReader(bufio.NewReaderSize(f, 1<<20))
	if err != nil {
		f.Close()
		return nil, nil, fmt.Errorf("%s: %w", filepath.Base(path), err)
	}
	return gz, func() { gz.Close(); f.Close() }, nil
}

// restoreMariabackup extracts the stream into the scratch datadir,
// prepares it and starts the server on it. The tools run as the server's
// OS user, and the backup's own backup-my.cnf is only read as data: a
// planted backup must not get root's rights nor choose the tools' options.
func (a *Agent) restoreMariabackup(ctx context.Context, res *verifyResult, sc *scratch, tools map[tool]string, file string) bool {
	step := func() error {
		gz, closeFile, err := openGzip(file)
		if err != nil {
			return &stepError{Step: "decompress", Err: err}
		}
		defer closeFile()
		stderr := &stderrTail{}
		if err := runStep("mbstream -x", sc.asServerUser(command(ctx, tools[toolMbstream], []string{"-x", "-C", sc.srv.DataDir}, gz, nil, stderr)), stderr); err != nil {
			return err
		}
		carried, err := carriedSettings(filepath.Join(sc.srv.DataDir, "backup-my.cnf"))
		if err != nil {
			return &stepError{Step: "read backup-my.cnf", Err: err}
		}
		prepareCnf, err := sc.writePrepareConfig(carried)
		if err != nil {
			return &stepError{Step: "write prepare.cnf", Err: err}
		}
		// --prepare reads the InnoDB settings carried over, and nothing of
		// the host's own configuration.
		stderr = &stderrTail{}
		args := []string{"--defaults-file=" + prepareCnf, "--prepare", "--target-dir=" + sc.srv.DataDir}
		if err := runStep("mariadb-backup --prepare", sc.asServerUser(command(ctx, tools[toolBackup], args, nil, nil, stderr)), stderr); err != nil {
			return err
		}
		if err := sc.writeConfig(carried); err != nil {
			return err
		}
		return sc.chown()
	}()
	if step != nil {
		return res.check("restore", false, step.Error())
	}
	res.check("restore", true, "extracted and prepared")
	return sc.start(ctx, res)
}

// asServerUser makes cmd run as the server's OS user when the agent runs
// as root: a tool misled by a planted backup then has mysql's rights, not
// root's.
func (sc *scratch) asServerUser(cmd *exec.Cmd) *exec.Cmd {
	if sc.uid >= 0 {
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uint32(sc.uid), Gid: uint32(sc.gid)}}
	}
	return cmd
}

// writePrepareConfig writes the option file of mariadb-backup --prepare
// in the scratch directory: the carried InnoDB settings only.
func (sc *scratch) writePrepareConfig(carried []string) (string, error) {
	p := filepath.Join(sc.dir, "prepare.cnf")
	body := "# mariadb-backup --prepare of a verification, written by the nines agent.\n[mysqld]\n" + strings.Join(carried, "\n") + "\n"
	return p, os.WriteFile(p, []byte(body), 0o644)
}

// innodbSettings reads the innodb_* lines of backup-my.cnf: the settings
// a server needs to open the backup's InnoDB files.
func innodbSettings(path string) ([]string, error) {
	b, err := readNoFollow(path)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, l := range strings.Split(string(b), "\n") {
		l = strings.TrimSpace(l)
		if strings.HasPrefix(l, "innodb_") && strings.Contains(l, "=") {
			out = append(out, l)
		}
	}
	return out, nil
}

var (
	sizeValue     = regexp.MustCompile(`^[0-9]{1,20}[KMGkmg]?$`)
	dataFile      = `[A-Za-z0-9_][A-Za-z0-9_.-]{0,63}:[0-9]{1,20}[KMGkmg]?(:autoextend(:max:[0-9]{1,20}[KMGkmg]?)?)?`
	dataFilePath  = regexp.MustCompile(`^` + dataFile + `(;` + dataFile + `)*$`)
	checksumAlgos = []string{"crc32", "strict_crc32", "full_crc32", "strict_full_crc32", "innodb", "strict_innodb", "none", "strict_none"}
)

// carriedSettingChecks are the settings of backup-my.cnf carried over
// (those mariadb-backup writes there), each with what its value may be:
// plain names and numbers, never a path outside the datadir.
var carriedSettingChecks = map[string]func(string) bool{
	"innodb_checksum_algorithm": func(v string) bool { return slices.Contains(checksumAlgos, v) },
	"innodb_data_file_path":     dataFilePath.MatchString,
	"innodb_log_file_size":      sizeValue.MatchString,
	"innodb_page_size": func(v string) bool {
		return slices.Contains([]string{"4096", "8192", "16384", "32768", "65536", "4k", "8k", "16k", "32k", "64k"}, strings.ToLower(v))
	},
	"innodb_undo_directory":     func(v string) bool { return v == "." || v == "./" },
	"innodb_undo_tablespaces":   intIn(0, 127),
	"innodb_compression_level":  intIn(0, 9),
	"innodb_log_files_in_group": intIn(1, 100),
}

func intIn(lo, hi int) func(string) bool {
	return func(v string) bool {
		n, err := strconv.Atoi(v)
		return err == nil && lo <= n && n <= hi
	}
}

// carriedSettings reads the InnoDB settings of a backup's backup-my.cnf
// and checks each against carriedSettingChecks. The file comes with the
// backup: anything else in it is refused rather than passed on.
func carriedSettings(path string) ([]string, error) {
	lines, err := innodbSettings(path)
	if err != nil {
		return nil, err
	}
	out := make([]string, 0, len(lines))
	for _, l := range lines {
		k, v, _ := strings.Cut(l, "=")
		k = strings.ReplaceAll(strings.TrimSpace(k), "-", "_")
		v = strings.TrimSpace(v)
		ok, known := carriedSettingChecks[k]
		switch {
		case !known:
			return nil, fmt.Errorf("%s is not a setting the verification carries over", k)
		case !ok(v):
			return nil, fmt.Errorf("%s=%q is not a value the verification accepts", k, v)
		}
		out = append(out, k+"="+v)
	}
	return out, nil
}

// restoreDump installs a fresh datadir, starts the server on it and loads
// the dump.
func (a *Agent) restoreDump(ctx context.Context, res *verifyResult, sc *scratch, tools map[tool]string, file string) bool {
	if err := sc.writeConfig(nil); err != nil {
		return res.check("restore", false, (&stepError{Step: "write my.cnf", Err: err}).Error())
	}
	if err := sc.chown(); err != nil {
		return res.check("restore", false, err.Error())
	}
	sc.srv.InstallDB = tools[toolInstallDB]
	if err := sc.srv.Install(ctx); err != nil {
		return res.check("server_starts", false, (&stepError{Step: "mariadb-install-db", Err: err}).Error())
	}
	if !sc.start(ctx, res) {
		return false
	}
	err := func() error {
		gz, closeFile, err := openGzip(file)
		if err != nil {
			return &stepError{Step: "decompress", Err: err}
		}
		defer closeFile()
		stderr := &stderrTail{}
		return runStep("load the dump (mariadb)", sc.asServerUser(command(ctx, tools[toolClient], sc.loadArgs(), gz, nil, stderr)), stderr)
	}()
	if err != nil {
		return res.check("restore", false, err.Error())
	}
	return res.check("restore", true, "dump loaded")
}

// loadArgs are the mariadb client's options for loading a dump. A dump
// could plant client commands (\! runs a shell command, \. reads a
// file): --binary-mode stops the client parsing them (all but \C and
// DELIMITER), and --sandbox refuses any that would still touch the host.
// As root, the client runs as the server's OS user
// and connects as its account, which mariadb-install-db gave unix_socket
// authentication (as the scratch my.cnf says user=mysql).
func (sc *scratch) loadArgs() []string {
	args := []string{"--defaults-file=" + sc.srv.DefaultsFile, "--binary-mode", "--sandbox", "--max-allowed-packet=1G"}
	if sc.uid >= 0 {
		args = append(args, "--user="+scratchUser)
	}
	return args
}

// safeClientFlags are the client options loadArgs needs for safety.
var safeClientFlags = []string{"--sandbox", "--binary-mode"}

// checkClient refuses a mariadb client without the options that keep a
// dump from running commands on the host: a verification then fails
// loudly rather than load a dump unsafely.
func checkClient(ctx context.Context, bin string) error {
	out, err := exec.CommandContext(ctx, bin, "--no-defaults", "--help").Output()
	if err != nil {
		return fmt.Errorf("%s --help: %w", bin, err)
	}
	for _, f := range safeClientFlags {
		if !strings.Contains(string(out), f) {
			return fmt.Errorf("the mariadb client %s has no %s: refusing to load a dump without it (install mariadb-client 10.5.25, 10.6.18, 10.11.8 or newer)", bin, f)
		}
	}
	return nil
}

// compareFacts checks the restored server against the manifest's facts:
// tables per schema, the row counts, and CHECK TABLE on the counted (the
// largest) tables. An error is the agent failing to ask, not a check
// failing.
func compareFacts(ctx context.Context, res *verifyResult, sc *scratch, m Manifest) error {
	db, err := adminDB(sc.srv.Socket)
	if err != nil {
		return err
	}
	defer db.Close()
	hint := ""
	if !m.FactsExact {
		hint = " (the source facts were read near, not at, the backup point: writes in between may explain a difference)"
	}
	got, err := tablesPerSchema(ctx, db)
	if err != nil {
		return fmt.Errorf("restored server: %w", err)
	}
	if diff := diffTables(m.Tables, got); diff != "" {
		res.check("tables", false, diff+hint)
	} else {
		res.check("tables", true, fmt.Sprintf("%d schemas, %d tables", len(got), sumValues(got)))
	}
	byKey, err := restoredTables(ctx, db)
	if err != nil {
		return err
	}
	keys := make([]string, 0, len(m.RowCounts))
	for k := range m.RowCounts {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		t, ok := byKey[k]
		if !ok {
			res.check("row_count:"+k, false, "the table is missing")
			continue
		}
		n, err := countRows(ctx, db, t)
		switch {
		case err != nil:
			res.check("row_count:"+k, false, err.Error())
		case n != m.RowCounts[k]:
			res.check("row_count:"+k, false, fmt.Sprintf("%d rows, %d at backup time%s", n, m.RowCounts[k], hint))
		default:
			res.check("row_count:"+k, true, fmt.Sprintf("%d rows", n))
		}
	}
	for _, k := range keys {
		if t, ok := byKey[k]; ok {
			ok, detail, err := checkTable(ctx, db, t)
			if err != nil {
				detail, ok = err.Error(), false
			}
			res.check("check_table:"+k, ok, detail)
		}
	}
	return nil
}

// restoredTables maps "schema.table" to the base tables of the restored
// server (system schemas and nines left out, as in the facts).
func restoredTables(ctx context.Context, db sqlConn) (map[string]tableRef, error) {
	rows, err := db.QueryContext(ctx, `SELECT table_schema, table_name FROM information_schema.tables
WHERE table_type IN ('BASE TABLE', 'SYSTEM VERSIONED') AND table_schema NOT IN (`+factsSkipSchemas+`)`)
	if err != nil {
		return nil, fmt.Errorf("restored server: list tables: %w", err)
	}
	defer rows.Close()
	out := map[string]tableRef{}
	for rows.Next() {
		var t tableRef
		if err := rows.Scan(&t.Schema, &t.Name); err != nil {
			return nil, err
		}
		out[t.key()] = t
	}
	return out, rows.Err()
}

// checkTable runs CHECK TABLE; it passes when the final status is OK and
// no row says error.
func checkTable(ctx context.Context, db sqlConn, t tableRef) (bool, string, error) {
	rows, err := db.QueryContext(ctx, "CHECK TABLE "+t.quoted())
	if err != nil {
		return false, "", fmt.Errorf("CHECK TABLE %s: %w", t.key(), err)
	}
	defer rows.Close()
	var msgs []string
	ok, last := true, ""
	for rows.Next() {
		var table, op, typ, text string
		if err := rows.Scan(&table, &op, &typ, &text); err != nil {
			return false, "", err
		}
		if strings.EqualFold(typ, "error") {
			ok = false
		}
		msgs = append(msgs, typ+": "+text)
		if strings.EqualFold(typ, "status") {
			last = text
		}
	}
	if err := rows.Err(); err != nil {
		return false, "", err
	}
	return ok && last == "OK", strings.Join(msgs, "; "), nil
}

// diffTables describes how the restored tables per schema differ from
// the manifest's; "" when they are equal.
func diffTables(want, got map[string]int) string {
	var d []string
	for s, n := range want {
		switch g, ok := got[s]; {
		case !ok:
			d = append(d, fmt.Sprintf("schema %s is missing (%d tables at backup time)", s, n))
		case g != n:
			d = append(d, fmt.Sprintf("schema %s has %d tables, %d at backup time", s, g, n))
		}
	}
	for s, g := range got {
		if _, ok := want[s]; !ok {
			d = append(d, fmt.Sprintf("schema %s (%d tables) was not there at backup time", s, g))
		}
	}
	sort.Strings(d)
	return strings.Join(d, "; ")
}

func sumValues(m map[string]int) int {
	n := 0
	for _, v := range m {
		n += v
	}
	return n
}
