package agent

import (
	"bufio"
	"compress/gzip"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/nines-project/nines"
	"github.com/nines-project/nines/internal/mariadbd"
)

// Backups run by the agent on its host, next to the server, as the local
// admin over the unix socket (root by unix_socket, as pc-bootstrap), so no
// database credential is configured or crosses the network.
//
// A backup holds the agent's action lock for its whole run: start, stop,
// restart, recover, bootstrap-fields and pc-bootstrap are refused with 409
// meanwhile, and so is a second backup. Stopping the server under a
// running mariadb-backup would fail the backup at best; refusing makes the
// conflict visible to the one who asked. To stop the server during a
// backup, cancel the backup request first: the agent then kills the tool,
// sets wsrep_desync OFF again, removes the partial backup and releases the
// lock before it answers.
//
// A backup that fails is removed. A directory without a manifest is
// therefore a backup running now or one cut short by a crash of the agent
// or the host; the listing calls it incomplete, and DELETE removes it when
// it holds the MarkerFile every backup writes first.
//
// Every dir a request names must lie in backup_dirs (Agent.backupDir).

// Waits of the backups.
const (
	// backupLockWait bounds how long the dump waits for BACKUP STAGE
	// locks (lock_wait_timeout): commits that are running when it asks
	// must finish first, and a backup must never queue writes behind it
	// for long.
	backupLockWait = 30 * time.Second
	// dumpSnapshotWait bounds how long commits stay blocked while
	// mariadb-dump opens its snapshot (it takes milliseconds).
	dumpSnapshotWait = 30 * time.Second
	// cleanupTimeout bounds the cleanups that run after a request ended:
	// wsrep_desync OFF, BACKUP STAGE END, stopping a scratch server.
	cleanupTimeout = 30 * time.Second
)

// backupJobs are the backup and the verification running now, if any.
type backupJobs struct {
	mu     sync.Mutex
	backup *job
	verify *job
}

// job is a backup or verification that runs: its directory and id.
type job struct {
	dir, id string
	since   time.Time
}

func (b *backupJobs) set(slot **job, j *job) {
	b.mu.Lock()
	*slot = j
	b.mu.Unlock()
}

// running reports whether a backup and a verification run.
func (b *backupJobs) running() (backup, verify bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.backup != nil, b.verify != nil
}

// busyWith names what runs on dir/id, or "" when nothing does.
func (b *backupJobs) busyWith(dir, id string) string {
	b.mu.Lock()
	defer b.mu.Unlock()
	switch {
	case b.backup.is(dir, id):
		return "its backup is running"
	case b.verify.is(dir, id):
		return "its verification is running"
	}
	return ""
}

// backingUp reports whether dir/id is the backup being written.
func (b *backupJobs) backingUp(dir, id string) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.backup.is(dir, id)
}

func (j *job) is(dir, id string) bool { return j != nil && j.dir == dir && j.id == id }

// handleIn is handle for actions that read the URL as well: the backup id
// in the path, the directory in the query.
func handleIn[Req, Resp any](a *Agent, name string, do func(context.Context, *http.Request, Req) (Resp, error)) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		handle(a, name, func(ctx context.Context, req Req) (Resp, error) {
			return do(ctx, r, req)
		}).ServeHTTP(w, r)
	})
}

// checkBackupID accepts 1 to 128 of [A-Za-z0-9._-], not starting with a
// dot: never a path separator, never "." or "..", never one of the
// agent's own hidden scratch directories.
func checkBackupID(id string) error {
	if id == "" || len(id) > maxBackupIDChars {
		return fmt.Errorf("backup id %q: want 1 to %d characters", id, maxBackupIDChars)
	}
	if id[0] == '.' {
		return fmt.Errorf("backup id %q: must not start with a dot", id)
	}
	for _, c := range id {
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '.' || c == '_' || c == '-') {
			return fmt.Errorf("backup id %q: only A-Z, a-z, 0-9, '.', '_' and '-' are allowed", id)
		}
	}
	return nil
}

// backupDir checks a backup directory a request names: absolute, and,
// once cleaned and with the symlinks of its existing part resolved, inside
// one of backup_dirs (resolved too). It returns the resolved directory,
// which is what the agent then works on, so a symlink swapped in later on
// the checked path is not followed. The agent runs as root and the dir
// comes from the network: without this, DELETE could remove any tree.
func (a *Agent) backupDir(dir string) (string, error) {
	if dir == "" {
		return "", badRequest(errors.New("dir is required: an absolute directory on the agent's host"))
	}
	if !filepath.IsAbs(dir) {
		return "", badRequest(fmt.Errorf("dir %q is not absolute", dir))
	}
	resolved, err := resolvePath(dir)
	if err != nil {
		return "", forbidden(fmt.Errorf("dir %q: %w", dir, err))
	}
	for _, allowed := range a.cfg.BackupDirs {
		root, err := resolvePath(allowed)
		if err == nil && within(resolved, root) {
			return resolved, nil
		}
	}
	shown := dir
	if resolved != filepath.Clean(dir) {
		shown = fmt.Sprintf("%s (resolved %s)", dir, resolved)
	}
	return "", forbidden(fmt.Errorf("dir %s is not inside an allowed backup directory (backup_dirs in the agent's config: %s)",
		shown, strings.Join(a.cfg.BackupDirs, ", ")))
}

// resolvePath cleans p and resolves the symlinks of its longest existing
// prefix; the rest does not exist, so holds no symlink yet. A dangling
// symlink on the way is an error: following it later could lead anywhere.
func resolvePath(p string) (string, error) {
	p = filepath.Clean(p)
	var rest []string
	for cur := p; ; {
		r, err := filepath.EvalSymlinks(cur)
		if err == nil {
			return filepath.Join(append([]string{r}, rest...)...), nil
		}
		if !errors.Is(err, fs.ErrNotExist) {
			return "", err
		}
		if _, lerr := os.Lstat(cur); lerr == nil {
			return "", fmt.Errorf("%q is a dangling symlink", cur)
		}
		parent := filepath.Dir(cur)
		if parent == cur {
			return p, nil
		}
		rest = append([]string{filepath.Base(cur)}, rest...)
		cur = parent
	}
}

// within reports whether p is root or below it; both are clean.
func within(p, root string) bool {
	rel, err := filepath.Rel(root, p)
	return err == nil && rel != ".." && !strings.HasPrefix(rel, "../")
}

// backupTarget is dir/id for a backup that must exist: a real directory,
// not a symlink to one elsewhere. 404 when there is none.
func backupTarget(dir, id string) (string, error) {
	target := filepath.Join(dir, id)
	fi, err := os.Lstat(target)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return "", &httpError{http.StatusNotFound, fmt.Errorf("no backup %q in %q", id, dir)}
	case err != nil:
		return "", err
	case !fi.IsDir():
		return "", forbidden(fmt.Errorf("%q is not a directory (a symlink or a file): not a backup of nines", target))
	}
	return target, nil
}

func (a *Agent) backup(ctx context.Context, req BackupRequest) (m Manifest, err error) {
	var t tool
	switch req.Method {
	case MethodMariabackup:
		t = toolBackup
	case MethodDump:
		t = toolDump
	default:
		return m, badRequest(fmt.Errorf("method %q: want %q or %q", req.Method, MethodMariabackup, MethodDump))
	}
	dir, err := a.backupDir(req.Dir)
	if err != nil {
		return m, err
	}
	if err := checkBackupID(req.ID); err != nil {
		return m, badRequest(err)
	}
	if req.Desync && (req.Method != MethodMariabackup || !a.cfg.IsGalera()) {
		return m, badRequest(errors.New("desync applies to mariabackup on a Galera server only"))
	}
	bin, err := t.find()
	if err != nil {
		return m, fmt.Errorf("backup %q: %w", req.ID, err)
	}
	release, err := a.acquire("backup")
	if err != nil {
		return m, err
	}
	defer release()
	pid, err := a.ctl.pid()
	if err != nil {
		return m, err
	}
	if pid == 0 {
		return m, conflict(errors.New("backup refused: the server is not running"))
	}
	target := filepath.Join(dir, req.ID)
	switch _, err := os.Lstat(target); {
	case err == nil:
		return m, conflict(fmt.Errorf("backup refused: %q exists; delete it or choose another id", target))
	case !errors.Is(err, fs.ErrNotExist):
		return m, fmt.Errorf("backup %q: %w", req.ID, err)
	}
	a.bk.set(&a.bk.backup, &job{dir: dir, id: req.ID, since: a.now()})
	defer a.bk.set(&a.bk.backup, nil)

	db, err := adminDB(a.srv.Socket)
	if err != nil {
		return m, err
	}
	defer db.Close()
	if err := a.checkBackupSource(ctx, db); err != nil {
		return m, err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return m, fmt.Errorf("backup %q: create the backup directory: %w", req.ID, err)
	}
	if err := os.Mkdir(target, 0o750); err != nil {
		return m, fmt.Errorf("backup %q: %w", req.ID, err)
	}
	defer func() {
		if err != nil {
			if rerr := os.RemoveAll(target); rerr != nil {
				err = joinErr(err, fmt.Errorf("remove the failed backup: %w", rerr))
			}
		}
	}()
	if err := os.WriteFile(filepath.Join(target, MarkerFile), []byte("a backup of the nines agent\n"), 0o640); err != nil {
		return m, fmt.Errorf("backup %q: %w", req.ID, err)
	}
	host, _ := os.Hostname()
	m = Manifest{Version: manifestVersion, ID: req.ID, Method: req.Method, Node: a.cfg.Name, Host: host, StartedAt: a.now().UTC()}
	vctx, cancel := context.WithTimeout(ctx, sqlTimeout)
	err = db.QueryRowContext(vctx, "SELECT VERSION()").Scan(&m.ServerVersion)
	cancel()
	if err != nil {
		return m, fmt.Errorf("backup %q: read the server version: %w", req.ID, err)
	}
	if req.Method == MethodMariabackup {
		err = a.runMariabackup(ctx, db, bin, target, req.Desync, &m)
	} else {
		err = a.runDump(ctx, db, bin, target, &m)
	}
	if err != nil {
		return m, fmt.Errorf("backup %q: %w", req.ID, err)
	}
	m.EndedAt = a.now().UTC()
	m.DurationSeconds = m.EndedAt.Sub(m.StartedAt).Seconds()
	for _, f := range m.Files {
		m.SizeBytes += f.Size
	}
	if err := writeManifest(target, m); err != nil {
		return m, fmt.Errorf("backup %q: %w", req.ID, err)
	}
	return m, nil
}

// checkBackupSource refuses to back up a server that does not answer
// (503) or, on Galera, a node that is not a Synced (or already Donor)
// member of a Primary component: a joiner's data is not the cluster's.
func (a *Agent) checkBackupSource(ctx context.Context, db *sql.DB) error {
	qctx, cancel := context.WithTimeout(ctx, sqlTimeout)
	defer cancel()
	if err := db.PingContext(qctx); err != nil {
		return unavailable(fmt.Errorf("backup: the server does not answer over %s: %w", a.srv.Socket, err))
	}
	if !a.cfg.IsGalera() {
		return nil
	}
	w, err := mariadbd.QueryWsrep(qctx, db)
	if err != nil {
		return unavailable(fmt.Errorf("backup: read wsrep status: %w", err))
	}
	if !w.Primary() || (w.LocalState != nines.LocalStateSynced && w.LocalState != nines.LocalStateDonor) {
		return conflict(fmt.Errorf("backup refused: the node is %s/%s, not a Synced member of a Primary component", w.ClusterStatus, w.LocalStateComment))
	}
	return nil
}

// compressed writes a gzip stream into a new file of dir, hashing what
// reaches the disk. BestSpeed: a backup is bound by the copy and by the
// two cores it shares with the server; level 1 still shrinks InnoDB
// pages several times.
type compressed struct {
	file *hashedFile
	buf  *bufio.Writer
	gz   *gzip.Writer
}

func createCompressed(path string) (*compressed, error) {
	f, err := createHashed(path)
	if err != nil {
		return nil, err
	}
	buf := bufio.NewWriterSize(f, 1<<20)
	gz, err := gzip.NewWriterLevel(buf, gzip.BestSpeed)
	if err != nil {
		f.abort()
		return nil, err
	}
	return &compressed{file: f, buf: buf, gz: gz}, nil
}

func (c *compressed) Write(p []byte) (int, error) { return c.gz.Write(p) }

// finish ends the gzip stream and syncs the file.
func (c *compressed) finish() (BackupFile, error) {
	err := c.gz.Close()
	if err == nil {
		err = c.buf.Flush()
	}
	if err != nil {
		c.file.abort()
		return BackupFile{}, err
	}
	return c.file.finish()
}

func (c *compressed) abort() { c.file.abort() }

var _ io.Writer = (*compressed)(nil)

// writeManifest writes dir/manifest.json atomically: a temporary file,
// synced, renamed, and the directory synced, so a manifest exists only
// complete, and only after every file it lists is on disk.
func writeManifest(dir string, m Manifest) error {
	b, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return fmt.Errorf("encode the manifest: %w", err)
	}
	tmp := filepath.Join(dir, ManifestFile+".tmp")
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o640)
	if err != nil {
		return fmt.Errorf("write the manifest: %w", err)
	}
	_, err = f.Write(append(b, '\n'))
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, filepath.Join(dir, ManifestFile))
	}
	if err == nil {
		err = syncDir(dir)
	}
	if err != nil {
		return fmt.Errorf("write the manifest: %w", err)
	}
	return nil
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

func readManifest(dir string) (Manifest, error) {
	var m Manifest
	b, err := readNoFollow(filepath.Join(dir, ManifestFile))
	if err != nil {
		return m, err
	}
	if err := json.Unmarshal(b, &m); err != nil {
		return m, fmt.Errorf("read %s: %w", filepath.Join(dir, ManifestFile), err)
	}
	return m, nil
}

// listBackups is GET /v1/backups?dir=: every backup directory of dir,
// newest first. A dir that does not exist holds no backups.
func (a *Agent) listBackups(_ context.Context, r *http.Request, _ struct{}) ([]BackupInfo, error) {
	dir, err := a.backupDir(r.URL.Query().Get("dir"))
	if err != nil {
		return nil, err
	}
	entries, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return []BackupInfo{}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("list backups: %w", err)
	}
	out := []BackupInfo{}
	for _, e := range entries {
		if !e.IsDir() || strings.HasPrefix(e.Name(), ".") {
			continue
		}
		out = append(out, a.backupInfo(dir, e.Name()))
	}
	sort.SliceStable(out, func(i, j int) bool {
		if !out[i].StartedAt.Equal(out[j].StartedAt) {
			return out[i].StartedAt.After(out[j].StartedAt)
		}
		return out[i].ID > out[j].ID
	})
	return out, nil
}

func (a *Agent) backupInfo(dir, id string) BackupInfo {
	target := filepath.Join(dir, id)
	m, err := readManifest(target)
	if err == nil {
		return BackupInfo{Manifest: m, State: BackupComplete}
	}
	info := BackupInfo{State: BackupIncomplete, Running: a.bk.backingUp(dir, id)}
	if !errors.Is(err, fs.ErrNotExist) {
		info.Error = err.Error()
	}
	info.ID = id
	if fi, err := os.Stat(target); err == nil {
		info.StartedAt = fi.ModTime().UTC()
	}
	info.SizeBytes = dirSize(target)
	switch {
	case fileExists(filepath.Join(target, MariabackupFile)):
		info.Method = MethodMariabackup
	case fileExists(filepath.Join(target, DumpFile)):
		info.Method = MethodDump
	}
	return info
}

// madeByNines reports whether target holds a manifest or the marker a
// backup writes first. Only such a directory may be deleted over the
// network: a backup cut short by a crash has no manifest yet but has the
// marker, while a directory that merely sits in a backup dir (someone's
// copy, a mount point) has neither and is left alone.
func madeByNines(target string) bool {
	for _, name := range []string{ManifestFile, MarkerFile} {
		if fi, err := os.Lstat(filepath.Join(target, name)); err == nil && fi.Mode().IsRegular() {
			return true
		}
	}
	return false
}

func fileExists(p string) bool {
	_, err := os.Lstat(p)
	return err == nil
}

// dirSize is the bytes of the regular files under dir.
func dirSize(dir string) int64 {
	var n int64
	_ = filepath.WalkDir(dir, func(_ string, d fs.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() {
			if fi, err := d.Info(); err == nil {
				n += fi.Size()
			}
		}
		return nil
	})
	return n
}

// deleteBackup is DELETE /v1/backups/{id}?dir=: it removes dir/id, and
// what a verification of it may have left behind after a crash.
func (a *Agent) deleteBackup(ctx context.Context, r *http.Request, _ struct{}) (BackupDeleteResult, error) {
	id := r.PathValue("id")
	if err := checkBackupID(id); err != nil {
		return BackupDeleteResult{}, badRequest(err)
	}
	dir, err := a.backupDir(r.URL.Query().Get("dir"))
	if err != nil {
		return BackupDeleteResult{}, err
	}
	if busy := a.bk.busyWith(dir, id); busy != "" {
		return BackupDeleteResult{}, conflict(fmt.Errorf("delete refused: backup %q in %q: %s", id, dir, busy))
	}
	target, err := backupTarget(dir, id)
	if err != nil {
		return BackupDeleteResult{}, err
	}
	if !madeByNines(target) {
		return BackupDeleteResult{}, forbidden(fmt.Errorf("delete refused: %q holds neither %s nor %s, so it is not a backup of nines; remove it by hand if it should go",
			target, ManifestFile, MarkerFile))
	}
	res := BackupDeleteResult{ID: id, FreedBytes: dirSize(target)}
	if err := a.removeScratch(ctx, dir, id); err != nil {
		return res, err
	}
	if err := os.RemoveAll(target); err != nil {
		return res, fmt.Errorf("delete backup %q: %w", id, err)
	}
	return res, nil
}
