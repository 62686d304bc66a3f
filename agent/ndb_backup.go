package agent

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Native NDB backups on a data node's host. The data node itself writes
// them when the management server runs START BACKUP: under its
// BackupDataDir, BACKUP/BACKUP-<id>/ holds BACKUP-<id>.<node>.ctl,
// BACKUP-<id>-0.<node>.data and BACKUP-<id>.<node>.log [facts A.3; the
// 8.0 manual spells the data file ".data", ndb_print_backup_file's page
// ".Data": both are accepted]. The agent only lists them (with each
// file's size and sha256) and deletes one backup id for retention:
//
//	GET    /v1/backups            the backups in backup_data_dir, newest first
//	DELETE /v1/backups/{id}       removes BACKUP/BACKUP-<id>/ (id a number)
//
// The request's dir, when given, must be backup_data_dir itself: the data
// node, not the request, decides where backups go.

// MethodNdb is a native NDB backup (START BACKUP), one fileset per data
// node.
const MethodNdb = "ndb"

// NdbBackup is what a listing says of one NDB backup on this data node.
type NdbBackup struct {
	BackupID int `json:"backup_id"`
	NodeID   int `json:"node_id"`
	// Missing names the expected files (control, data, log) this node
	// does not have; the backup is complete here when none is missing.
	Missing []string `json:"missing,omitempty"`
}

// ndbBackupFiles are the three files data node node writes for backup id;
// the data file's suffix is ".data" as the facts have it.
func ndbBackupFiles(id, node int) (ctl, data, log string) {
	return fmt.Sprintf("BACKUP-%d.%d.ctl", id, node), fmt.Sprintf("BACKUP-%d-0.%d.data", id, node), fmt.Sprintf("BACKUP-%d.%d.log", id, node)
}

// ndbBackupRoot is backup_data_dir/BACKUP, or an error when the agent has
// no backup_data_dir or the request names another dir.
func (a *Agent) ndbBackupRoot(r *http.Request) (string, error) {
	dir := a.ndb.cfg.BackupDataDir
	if dir == "" {
		return "", conflict(fmt.Errorf("this data node's agent has no server.ndb_data_node.backup_data_dir: set it to the node's BackupDataDir (by default its DataDir) to list its native backups"))
	}
	if q := r.URL.Query().Get("dir"); q != "" && filepath.Clean(q) != dir {
		return "", badRequest(fmt.Errorf("dir %q: native NDB backups are where the data node writes them, in backup_data_dir %q; leave dir out", q, dir))
	}
	return filepath.Join(dir, "BACKUP"), nil
}

// ndbBackupID parses BACKUP-<id> or the id alone: a positive decimal
// number without sign or leading zero.
func ndbBackupID(s string) (int, bool) {
	s = strings.TrimPrefix(s, "BACKUP-")
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 || strconv.Itoa(n) != s {
		return 0, false
	}
	return n, true
}

// ndbOwnFile reports whether name is a file NDB writes for backup id:
// BACKUP-<id>.<node>.ctl|log or BACKUP-<id>-<n>.<node>.data|Data.
func ndbOwnFile(name string, id int) bool {
	p := "BACKUP-" + strconv.Itoa(id)
	rest, ok := strings.CutPrefix(name, p)
	if !ok || rest == "" {
		return false
	}
	ext := filepath.Ext(rest)
	switch ext {
	case ".ctl", ".log", ".data", ".Data":
	default:
		return false
	}
	return rest[0] == '.' || rest[0] == '-'
}

// ndbSums caches files' sha256 by path, size and modification time, so a
// listing every 30 s hashes only what changed.
type ndbSums struct {
	mu   sync.Mutex
	sums map[string]ndbSum
}

type ndbSum struct {
	size int64
	mod  time.Time
	sum  string
}

func (s *ndbSums) sha256(path string, fi os.FileInfo, seen map[string]ndbSum) (string, error) {
	s.mu.Lock()
	c, ok := s.sums[path]
	s.mu.Unlock()
	if ok && c.size == fi.Size() && c.mod.Equal(fi.ModTime()) {
		seen[path] = c
		return c.sum, nil
	}
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", err
	}
	c = ndbSum{size: fi.Size(), mod: fi.ModTime(), sum: hex.EncodeToString(h.Sum(nil))}
	seen[path] = c
	return c.sum, nil
}

// listNdbBackups is GET /v1/backups on a data node's agent.
func (a *Agent) listNdbBackups(_ context.Context, r *http.Request, _ struct{}) ([]BackupInfo, error) {
	root, err := a.ndbBackupRoot(r)
	if err != nil {
		return nil, err
	}
	entries, err := os.ReadDir(root)
	if errors.Is(err, fs.ErrNotExist) {
		return []BackupInfo{}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("list native backups: %w", err)
	}
	seen := map[string]ndbSum{}
	out := []BackupInfo{}
	for _, e := range entries {
		id, ok := ndbBackupID(e.Name())
		if !ok || !e.IsDir() || e.Name() != "BACKUP-"+strconv.Itoa(id) {
			continue
		}
		out = append(out, a.ndbBackupInfo(filepath.Join(root, e.Name()), id, seen))
	}
	a.ndb.sums.mu.Lock()
	a.ndb.sums.sums = seen
	a.ndb.sums.mu.Unlock()
	sort.SliceStable(out, func(i, j int) bool {
		if !out[i].StartedAt.Equal(out[j].StartedAt) {
			return out[i].StartedAt.After(out[j].StartedAt)
		}
		return out[i].NDB.BackupID > out[j].NDB.BackupID
	})
	return out, nil
}

// ndbBackupInfo describes backup id in dir: its files (NDB's own names
// only), complete when this node's control, data and log files are all
// there. NDB writes no end marker, so StartedAt and EndedAt are the
// oldest and newest file modification times.
func (a *Agent) ndbBackupInfo(dir string, id int, seen map[string]ndbSum) BackupInfo {
	node := a.ndb.cfg.NodeID
	host, _ := os.Hostname()
	info := BackupInfo{Manifest: Manifest{Version: manifestVersion, ID: strconv.Itoa(id), Method: MethodNdb, Node: a.cfg.Name, Host: host,
		NDB: &NdbBackup{BackupID: id, NodeID: node}}}
	entries, err := os.ReadDir(dir)
	if err != nil {
		info.State, info.Error = BackupIncomplete, err.Error()
		return info
	}
	have := map[string]bool{}
	var errs []string
	for _, e := range entries {
		if !e.Type().IsRegular() || !ndbOwnFile(e.Name(), id) {
			continue
		}
		fi, err := e.Info()
		if err != nil {
			errs = append(errs, err.Error())
			continue
		}
		p := filepath.Join(dir, e.Name())
		sum, err := a.ndb.sums.sha256(p, fi, seen)
		if err != nil {
			errs = append(errs, fmt.Sprintf("checksum %s: %v", e.Name(), err))
		}
		info.Files = append(info.Files, BackupFile{Name: e.Name(), Size: fi.Size(), SHA256: sum})
		info.SizeBytes += fi.Size()
		mod := fi.ModTime().UTC()
		if info.StartedAt.IsZero() || mod.Before(info.StartedAt) {
			info.StartedAt = mod
		}
		if mod.After(info.EndedAt) {
			info.EndedAt = mod
		}
		have[strings.Replace(e.Name(), ".Data", ".data", 1)] = true
	}
	info.DurationSeconds = info.EndedAt.Sub(info.StartedAt).Seconds()
	ctl, data, log := ndbBackupFiles(id, node)
	for _, f := range []string{ctl, data, log} {
		if !have[f] {
			info.NDB.Missing = append(info.NDB.Missing, f)
		}
	}
	info.State = BackupComplete
	if len(info.NDB.Missing) > 0 {
		info.State = BackupIncomplete
	}
	if len(errs) > 0 {
		info.Error = strings.Join(errs, "; ")
	}
	return info
}

// deleteNdbBackup is DELETE /v1/backups/{id} on a data node's agent: it
// removes BACKUP/BACKUP-<id>/ when it holds only NDB's files of that id,
// so nothing else that was put there is lost.
func (a *Agent) deleteNdbBackup(_ context.Context, r *http.Request, _ struct{}) (BackupDeleteResult, error) {
	id, ok := ndbBackupID(r.PathValue("id"))
	if !ok {
		return BackupDeleteResult{}, badRequest(fmt.Errorf("backup id %q: want a native backup id, a number such as 7", r.PathValue("id")))
	}
	root, err := a.ndbBackupRoot(r)
	if err != nil {
		return BackupDeleteResult{}, err
	}
	target := filepath.Join(root, "BACKUP-"+strconv.Itoa(id))
	fi, err := os.Lstat(target)
	if errors.Is(err, fs.ErrNotExist) {
		return BackupDeleteResult{}, &httpError{http.StatusNotFound, fmt.Errorf("no native backup %d in %s", id, root)}
	}
	if err != nil {
		return BackupDeleteResult{}, fmt.Errorf("delete native backup %d: %w", id, err)
	}
	if !fi.IsDir() {
		return BackupDeleteResult{}, forbidden(fmt.Errorf("delete refused: %q is not a directory", target))
	}
	entries, err := os.ReadDir(target)
	if err != nil {
		return BackupDeleteResult{}, fmt.Errorf("delete native backup %d: %w", id, err)
	}
	for _, e := range entries {
		if !e.Type().IsRegular() || !ndbOwnFile(e.Name(), id) {
			return BackupDeleteResult{}, forbidden(fmt.Errorf("delete refused: %q holds %q, which is not a file NDB writes for backup %d; remove it by hand if it should go", target, e.Name(), id))
		}
	}
	res := BackupDeleteResult{ID: strconv.Itoa(id), FreedBytes: dirSize(target)}
	if err := os.RemoveAll(target); err != nil {
		return res, fmt.Errorf("delete native backup %d: %w", id, err)
	}
	a.log.Info("native backup deleted", "backup_id", id, "freed_bytes", res.FreedBytes)
	return res, nil
}
