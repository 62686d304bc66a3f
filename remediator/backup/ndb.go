package backup

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/nines-project/nines/ndb"
	"github.com/nines-project/nines/remediator"
)

// Native NDB backups (method "ndb"): START BACKUP WAIT COMPLETED through a
// management server, after which every data node has written its part
// into its BackupDataDir: BACKUP/BACKUP-<id>/ with BACKUP-<id>.<node>.ctl,
// BACKUP-<id>-0.<node>.data and BACKUP-<id>.<node>.log [facts A.3]. The
// data nodes' agents list those files (name, size, sha256) and delete a
// backup id for retention; the catalog shows one entry per backup id with
// the files per node.
//
// Verification: the documented restore is ndb_restore once per data
// node's fileset into a cluster [facts A.4]. nines has no scratch NDB
// cluster to restore into, so a native backup's verification checks only
// the files: every configured data node has its three files, none empty,
// unchanged between the backup's end and the check (same size and
// sha256). It says so in the job log and in the catalog (Scope).

// MethodNDB is a native NDB backup (START BACKUP through the management
// server).
const MethodNDB = "ndb"

// ScopeFiles is the Scope of a verification that checked only a native
// backup's files, without restoring it.
const ScopeFiles = "files-only"

// filesOnlyNote is what the job log and the catalog say of such a
// verification, in words.
const filesOnlyNote = "only the files were checked: ndb_restore was not run (nines has no ndb_restore and scratch cluster to restore into), so the backup was not restored; " +
	"checked: each data node's control, data and log file present and non-empty, sizes and sha256 recorded and unchanged since the backup ended"

// Management is an NDB management server as a native backup uses it;
// exporter/ndb's Mgm is one.
type Management interface {
	GetStatus(ctx context.Context, types ...ndb.NodeType) ([]ndb.Node, error)
	// StartBackup with ndb.BackupWaitStarted returns the backup's id
	// once the data nodes started it.
	StartBackup(ctx context.Context, wait ndb.BackupWait) (int, error)
	// AbortBackup sends ABORT BACKUP <id>.
	AbortBackup(ctx context.Context, id int) error
	// ListenEventsReady streams the server's events of filter to fn,
	// calling ready once the server accepted the listener, until ctx
	// ends or the stream fails.
	ListenEventsReady(ctx context.Context, filter ndb.Filter, ready func(), fn func(ndb.Event)) error
}

// MgmServer is a management server and its address, in the configured
// order of failover.
type MgmServer struct {
	Addr string
	Mgm  Management
}

// NDBBackup is a native backup's part of a manifest: its id and each data
// node's files. One agent lists its own node; the catalog merges the
// nodes of one backup id.
type NDBBackup struct {
	BackupID int            `json:"backup_id"`
	Nodes    []NDBNodeFiles `json:"nodes"`
}

// NDBNodeFiles are one data node's files of a native backup.
type NDBNodeFiles struct {
	NodeID int `json:"node_id"`
	// Holder is the host (its agent) that listed them.
	Holder string `json:"holder,omitempty"`
	Files  []File `json:"files"`
	// Missing names the expected files the node lacks.
	Missing []string `json:"missing,omitempty"`
}

// NDBStarted is the output of a native backup's start-backup step.
type NDBStarted struct {
	BackupID   int    `json:"backup_id"`
	Management string `json:"management"`
	// Unanswered are the management servers tried before, with why.
	Unanswered []string `json:"unanswered,omitempty"`
	// StartedAt is when START BACKUP was sent, EndedAt when the
	// BackupCompleted event came (zero while the backup runs).
	StartedAt time.Time `json:"started_at"`
	EndedAt   time.Time `json:"ended_at"`
	// mgm is the server that took START BACKUP, where an abort goes.
	mgm Management
}

// running reports whether the backup started and did not end: a job
// that stops waiting for it then must abort it.
func (s NDBStarted) running() bool { return s.BackupID > 0 && s.EndedAt.IsZero() && s.mgm != nil }

// NDBAborted is the output of a native backup's abort-backup step.
type NDBAborted struct {
	BackupID   int    `json:"backup_id"`
	Management string `json:"management"`
	// Confirmed: the BackupAborted event of the id came back, with its
	// error (1321, aborted by user request [facts A.3]).
	Confirmed bool `json:"confirmed"`
	Error     int  `json:"error,omitempty"`
	// Note says what is known when the abort was not confirmed.
	Note string `json:"note,omitempty"`
}

// AbortTimeout bounds the abort of a native backup whose job ended: the
// job's own context is gone by then, so the abort gets its own.
const AbortTimeout = 15 * time.Second

// backupEvents is the listen filter a native backup job uses: the backup
// category only (BackupStarted, Completed, Aborted, FailedToStart).
var backupEvents = ndb.Filter{ndb.CategoryBackup: 15}

// NDBCollected is the output of a native backup's collect-files step:
// what each data node's agent lists of the backup.
type NDBCollected struct {
	BackupID int            `json:"backup_id"`
	Nodes    []NDBNodeFiles `json:"nodes"`
	// Without are the data nodes whose agent lists no file of the
	// backup; Unlisted those whose agent could not be asked, with why.
	Without  []int    `json:"without,omitempty"`
	Unlisted []string `json:"unlisted,omitempty"`
}

// startNDBBackup starts a native backup on the first management server
// that answers `get status`, in order, and waits for it to complete.
// Once START BACKUP was sent to one, no other is tried: a second server
// would start a second backup.
//
// It listens to the server's backup events first, then sends START
// BACKUP WAIT STARTED, which returns the id as soon as the data nodes
// began, and waits for that id's BackupCompleted or BackupAborted event.
// (WAIT COMPLETED would give the id only at the end, so a job stopped
// midway could not name the backup to abort.) On any error after the
// start, the result carries the id and running() tells whether the
// backup may still run.
func startNDBBackup(ctx context.Context, mgms []MgmServer, now func() time.Time) (NDBStarted, error) {
	var out NDBStarted
	for _, m := range mgms {
		pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		_, err := m.Mgm.GetStatus(pctx)
		cancel()
		if err != nil {
			out.Unanswered = append(out.Unanswered, fmt.Sprintf("%s: %v", m.Addr, err))
			continue
		}
		lctx, stop := context.WithCancel(ctx)
		defer stop()
		events, ended, err := listenBackups(lctx, m.Mgm)
		if err != nil {
			out.Unanswered = append(out.Unanswered, fmt.Sprintf("%s: %v", m.Addr, err))
			continue
		}
		out.Management, out.StartedAt, out.mgm = m.Addr, now(), m.Mgm
		id, err := m.Mgm.StartBackup(ctx, ndb.BackupWaitStarted)
		if err != nil {
			// Stopped while waiting for the start: a BackupStarted seen
			// meanwhile is this one (one job per cluster), so it can
			// still be aborted.
			for drained := false; !drained; {
				select {
				case ev := <-events:
					if ev.Type == ndb.EventBackupStarted {
						out.BackupID, _ = ev.Get("backup_id")
					}
				default:
					drained = true
				}
			}
			return out, fmt.Errorf("START BACKUP WAIT STARTED on ndb_mgmd %s: %w", m.Addr, err)
		}
		out.BackupID = id
		for {
			select {
			case ev := <-events:
				if got, _ := ev.Get("backup_id"); got != id {
					continue
				}
				switch ev.Type {
				case ndb.EventBackupCompleted:
					out.EndedAt = now()
					return out, nil
				case ndb.EventBackupAborted:
					out.EndedAt = now()
					code, _ := ev.Get("error")
					return out, fmt.Errorf("native backup %d was aborted by the data nodes (error %d), ordered through ndb_mgmd %s", id, code, m.Addr)
				}
			case err := <-ended:
				if ctx.Err() != nil {
					return out, fmt.Errorf("backup %d still running when the job ended: %w", id, ctx.Err())
				}
				return out, fmt.Errorf("backup %d: the event stream of ndb_mgmd %s ended before its BackupCompleted event, so its outcome is unknown: %v", id, m.Addr, err)
			case <-ctx.Done():
				return out, fmt.Errorf("backup %d still running when the job ended: %w", id, ctx.Err())
			}
		}
	}
	return out, fmt.Errorf("no management server answered, no backup was started: %s", strings.Join(out.Unanswered, "; "))
}

// listenBackups opens mgm's backup event stream and returns once the
// server accepted it (so no later event is missed): events carries them
// until ctx ends, ended the stream's end.
func listenBackups(ctx context.Context, mgm Management) (<-chan ndb.Event, <-chan error, error) {
	events := make(chan ndb.Event, 64)
	ended := make(chan error, 1)
	ready := make(chan struct{})
	go func() {
		ended <- mgm.ListenEventsReady(ctx, backupEvents, func() { close(ready) }, func(ev ndb.Event) {
			select {
			case events <- ev:
			case <-ctx.Done():
			}
		})
	}()
	select {
	case <-ready:
		return events, ended, nil
	case err := <-ended:
		return nil, nil, fmt.Errorf("listen to backup events: %w", err)
	case <-time.After(10 * time.Second):
		return nil, nil, errors.New("listen to backup events: not accepted within 10s")
	}
}

// abortNDBBackup sends ABORT BACKUP id to the server that started it and
// waits, within ctx, for the data nodes' BackupAborted event of the id.
// ndb_mgmd answers Ok whether or not the backup still ran ("Abort of
// backup n ordered" [facts A.3]), so the event is the confirmation.
func abortNDBBackup(ctx context.Context, started NDBStarted) (NDBAborted, error) {
	out := NDBAborted{BackupID: started.BackupID, Management: started.Management}
	lctx, stop := context.WithCancel(ctx)
	defer stop()
	events, _, lerr := listenBackups(lctx, started.mgm)
	if err := started.mgm.AbortBackup(ctx, started.BackupID); err != nil {
		return out, fmt.Errorf("ABORT BACKUP %d on ndb_mgmd %s: %w", started.BackupID, started.Management, err)
	}
	if lerr != nil {
		out.Note = fmt.Sprintf("ABORT BACKUP answered Ok; the data nodes' BackupAborted event could not be awaited (%v)", lerr)
		return out, nil
	}
	for {
		select {
		case ev := <-events:
			if got, _ := ev.Get("backup_id"); got != started.BackupID {
				continue
			}
			switch ev.Type {
			case ndb.EventBackupAborted:
				out.Confirmed = true
				out.Error, _ = ev.Get("error")
				return out, nil
			case ndb.EventBackupCompleted:
				// It completed before the abort arrived; the job still
				// does not record it as good, since it never checked it.
				out.Note = "the backup completed before the abort reached the data nodes; it is still recorded as aborted, since the job did not see it through"
				return out, nil
			}
		case <-ctx.Done():
			out.Note = fmt.Sprintf("ABORT BACKUP answered Ok; no BackupAborted event within %s", AbortTimeout)
			return out, nil
		}
	}
}

// collectNDB asks every data node's agent for its files of backup id.
func collectNDB(ctx context.Context, hosts []Host, id int) NDBCollected {
	out := NDBCollected{BackupID: id}
	for _, h := range hosts {
		lctx, cancel := context.WithTimeout(ctx, time.Minute)
		infos, err := h.Agent.List(lctx, "")
		cancel()
		if err != nil {
			out.Unlisted = append(out.Unlisted, fmt.Sprintf("%s (data node %d): %v", h.Node, h.NDBNodeID, err))
			continue
		}
		found := false
		for _, in := range infos {
			if in.NDB == nil || in.NDB.BackupID != id {
				continue
			}
			for _, n := range in.NDB.Nodes {
				n.Holder = h.Node
				out.Nodes = append(out.Nodes, n)
				found = true
			}
		}
		if !found {
			out.Without = append(out.Without, h.NDBNodeID)
		}
	}
	sort.Slice(out.Nodes, func(i, j int) bool { return out.Nodes[i].NodeID < out.Nodes[j].NodeID })
	return out
}

// ndbExpected are the three files data node node writes for backup id.
// The data file's suffix is ".data" per the facts; ".Data" is accepted.
func ndbExpected(id, node int) []string {
	return []string{fmt.Sprintf("BACKUP-%d.%d.ctl", id, node), fmt.Sprintf("BACKUP-%d-0.%d.data", id, node), fmt.Sprintf("BACKUP-%d.%d.log", id, node)}
}

// verifyNDBFiles checks a native backup's files: for each data node that
// is configured (hosts), its three files present and non-empty, and, for
// a node in before (what the backup step collected), the same size and
// sha256 as then. Only files: Scope says so.
func verifyNDBFiles(id int, hosts []Host, now NDBCollected, before NDBCollected) VerifyResult {
	res := VerifyResult{ID: fmt.Sprint(id), OK: true, Scope: ScopeFiles, Note: filesOnlyNote}
	fail := func(c Check) {
		res.Checks = append(res.Checks, c)
		if !c.OK {
			res.OK = false
		}
	}
	byNode := func(c NDBCollected) map[int]NDBNodeFiles {
		m := map[int]NDBNodeFiles{}
		for _, n := range c.Nodes {
			m[n.NodeID] = n
		}
		return m
	}
	cur, prev := byNode(now), byNode(before)
	ids := make([]int, 0, len(hosts))
	for _, h := range hosts {
		ids = append(ids, h.NDBNodeID)
	}
	sort.Ints(ids)
	for _, node := range ids {
		name := fmt.Sprintf("files:data-node-%d", node)
		n, ok := cur[node]
		if !ok {
			fail(Check{Name: name, OK: false, Detail: fmt.Sprintf("data node %d's agent lists no file of backup %d (was the node down during the backup, or its agent unreachable?)", node, id)})
			continue
		}
		files := map[string]File{}
		for _, f := range n.Files {
			files[strings.Replace(f.Name, ".Data", ".data", 1)] = f
		}
		old := map[string]File{}
		for _, f := range prev[node].Files {
			old[strings.Replace(f.Name, ".Data", ".data", 1)] = f
		}
		var problems, seen []string
		for _, want := range ndbExpected(id, node) {
			f, ok := files[want]
			switch {
			case !ok:
				problems = append(problems, want+" missing")
			case f.Size == 0:
				problems = append(problems, want+" is empty")
			default:
				if o, ok := old[want]; ok && (o.Size != f.Size || o.SHA256 != f.SHA256) {
					problems = append(problems, fmt.Sprintf("%s changed since the backup ended (size %d→%d, sha256 %s→%s)", want, o.Size, f.Size, short(o.SHA256), short(f.SHA256)))
				}
				seen = append(seen, fmt.Sprintf("%s %d B sha256 %s", f.Name, f.Size, short(f.SHA256)))
			}
		}
		if len(problems) > 0 {
			fail(Check{Name: name, OK: false, Detail: strings.Join(problems, "; ")})
		} else {
			fail(Check{Name: name, OK: true, Detail: strings.Join(seen, ", ")})
		}
	}
	if !res.OK {
		res.Error = res.Failure()
	}
	return res
}

func short(sum string) string {
	if len(sum) > 12 {
		return sum[:12]
	}
	return sum
}

// runNDB is the backup runbook for method ndb. Steps: act start-backup
// (START BACKUP WAIT COMPLETED, failing over between the management
// servers only before one was asked); observe collect-files (every data
// node's files of the backup id); act verify when the plan says so (the
// files only, said in the step and in verify-scope); act retention (old
// backup ids deleted on every data node's agent).
func (rb Runbook) runNDB(ctx context.Context, r *remediator.Run, p params, hosts []Host) error {
	if rb.Management == nil {
		return fmt.Errorf("no management servers are known for %s: native backups need ndb.management", r.Cluster())
	}
	mgms, err := rb.Management(r.Cluster())
	if err != nil {
		return err
	}
	if len(mgms) == 0 {
		return fmt.Errorf("no management servers are configured for %s (ndb.management)", r.Cluster())
	}
	addrs := make([]string, len(mgms))
	for i, m := range mgms {
		addrs[i] = m.Addr
	}
	r.SetTarget("ndb_mgmd")
	jobStart := rb.now()
	var run NDBStarted
	started, err := remediator.Act(ctx, r, "start-backup", map[string]any{"management": addrs, "wait": "started, then the BackupCompleted event"}, func(ctx context.Context) (NDBStarted, error) {
		var err error
		run, err = startNDBBackup(ctx, mgms, rb.now)
		return run, err
	})
	if err != nil {
		if run.running() {
			// The job was cancelled or timed out (or lost the event
			// stream) with the backup running: abort it, so that no
			// backup outlives its job, and record it as aborted, never
			// good. The job's context is gone: the abort has its own.
			actx, cancel := context.WithTimeout(context.Background(), AbortTimeout)
			defer cancel()
			_, aerr := remediator.Act(actx, r, "abort-backup", map[string]any{"backup_id": run.BackupID, "management": run.Management, "why": err.Error()},
				func(ctx context.Context) (NDBAborted, error) { return abortNDBBackup(ctx, run) })
			return errors.Join(err, aerr)
		}
		return err
	}
	if r.DryRun() {
		return nil
	}
	id := started.BackupID
	collected, err := remediator.Observe(r, "collect-files", map[string]any{"backup_id": id}, func(ctx context.Context) (NDBCollected, error) {
		c := collectNDB(ctx, hosts, id)
		if len(c.Nodes) == 0 {
			return c, fmt.Errorf("backup %d completed on ndb_mgmd %s, but no data node's agent lists its files (without: %v; unlisted: %s)", id, started.Management, c.Without, strings.Join(c.Unlisted, "; "))
		}
		return c, nil
	})
	if err != nil {
		return err
	}
	if p.Verify {
		v, err := remediator.Act(ctx, r, "verify", map[string]any{"id": fmt.Sprint(id), "scope": ScopeFiles}, func(ctx context.Context) (Verification, error) {
			now := collectNDB(ctx, hosts, id)
			return Verification{ID: fmt.Sprint(id), Node: "all data nodes", Method: MethodNDB, Result: verifyNDBFiles(id, hosts, now, collected)}, nil
		})
		if err != nil {
			return err
		}
		if err := r.Logf("verify-scope", "backup %d: %s", id, filesOnlyNote); err != nil {
			return err
		}
		if !v.Result.OK {
			return fmt.Errorf("verification of native backup %d failed: %s", id, v.Result.Failure())
		}
	}
	pol := Policy{Method: MethodNDB, Keep: p.Keep, MaxAge: p.MaxAge}
	res, err := remediator.Act(ctx, r, "retention", pol, func(ctx context.Context) (RetentionResult, error) {
		return rb.retainNDB(ctx, r.Cluster(), hosts, pol, jobStart)
	})
	if err != nil {
		return err
	}
	if len(res.Unlisted) > 0 {
		return r.Logf("retention-partial", "the backups of %s could not be listed; retention there waits for the next run", strings.Join(res.Unlisted, ", "))
	}
	return nil
}

// retainNDB applies retention to native backups: the ids are decided once
// over every data node's listing merged, and a backup id that goes is
// deleted on every data node's agent that lists it. A deletion that fails
// fails the step, after every other was tried.
func (rb Runbook) retainNDB(ctx context.Context, cluster string, hosts []Host, pol Policy, started time.Time) (RetentionResult, error) {
	all, unlisted, _ := listAll(ctx, hosts, "")
	var failed func(string) bool
	if rb.Failed != nil {
		failed = func(id string) bool { return rb.Failed(cluster, id) }
	}
	keep, del := Retain(all, pol, rb.now(), started, failed)
	res := RetentionResult{Kept: keep, Unlisted: unlisted}
	var errs []error
	for _, d := range del {
		var on []string
		for _, in := range all {
			if in.ID != d.ID || in.Method != MethodNDB {
				continue
			}
			h, ok := findHost(hosts, in.Holder)
			if !ok {
				continue
			}
			if err := h.Agent.Delete(ctx, "", d.ID); err != nil {
				errs = append(errs, fmt.Errorf("delete native backup %s on %s: %w", d.ID, h.Node, err))
				continue
			}
			on = append(on, h.Node)
		}
		d.Holder = strings.Join(on, ",")
		res.Deleted = append(res.Deleted, d)
	}
	sort.Slice(res.Deleted, func(i, j int) bool { return res.Deleted[i].ID < res.Deleted[j].ID })
	return res, errors.Join(errs...)
}

// mergeNDB folds another data node's listing b of the same native backup
// into a: its node's files join, sizes add up, the span widens, and the
// backup is complete only when every node's part is.
func mergeNDB(a *Info, b Info) {
	for _, n := range b.NDB.Nodes {
		if n.Holder == "" {
			n.Holder = b.Holder
		}
		a.NDB.Nodes = append(a.NDB.Nodes, n)
	}
	sort.Slice(a.NDB.Nodes, func(i, j int) bool { return a.NDB.Nodes[i].NodeID < a.NDB.Nodes[j].NodeID })
	a.Files = append(a.Files, b.Files...)
	a.SizeBytes += b.SizeBytes
	if !b.StartedAt.IsZero() && (a.StartedAt.IsZero() || b.StartedAt.Before(a.StartedAt)) {
		a.StartedAt = b.StartedAt
	}
	if b.EndedAt.After(a.EndedAt) {
		a.EndedAt = b.EndedAt
	}
	if !a.EndedAt.IsZero() && !a.StartedAt.IsZero() {
		a.DurationSeconds = a.EndedAt.Sub(a.StartedAt).Seconds()
	}
	if !b.Complete() {
		a.State = StateIncomplete
	}
	if b.Error != "" {
		a.Error = strings.TrimPrefix(a.Error+"; "+b.Error, "; ")
	}
}
