package backup

import (
	"context"
	"encoding/json"
	"log/slog"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/nines-project/nines/internal/metric"
	"github.com/nines-project/nines/remediator"
)

// Verified is the latest verification of one backup, from the job log.
type Verified struct {
	OK             bool      `json:"ok"`
	RestoreSeconds float64   `json:"restore_seconds"`
	CheckSeconds   float64   `json:"check_seconds"`
	Failure        string    `json:"failure,omitempty"`
	At             time.Time `json:"at"`
	Job            string    `json:"job"`
	Method         string    `json:"-"`
	// Scope is ScopeFiles when only the files were checked (no restore),
	// with Note saying so in words.
	Scope string `json:"scope,omitempty"`
	Note  string `json:"note,omitempty"`
}

// Verifications reads every verify step of the backup jobs in a job log:
// the latest verification of each backup, by cluster and backup id.
func Verifications(jobs []*remediator.Job) map[string]map[string]Verified {
	out := map[string]map[string]Verified{}
	for _, j := range jobs {
		if j.Runbook != (Runbook{}).Name() && j.Runbook != (VerifyRunbook{}).Name() {
			continue
		}
		for _, s := range j.Steps {
			if s.Name != "verify" || s.State != remediator.StepDone || len(s.Output) == 0 {
				continue
			}
			var v Verification
			if json.Unmarshal(s.Output, &v) != nil || v.ID == "" {
				continue
			}
			if out[j.Cluster] == nil {
				out[j.Cluster] = map[string]Verified{}
			}
			if cur, ok := out[j.Cluster][v.ID]; ok && cur.At.After(s.EndedAt) {
				continue
			}
			out[j.Cluster][v.ID] = Verified{OK: v.Result.OK, RestoreSeconds: v.Result.RestoreSeconds, CheckSeconds: v.Result.CheckSeconds,
				Failure: v.Result.Failure(), At: s.EndedAt, Job: j.ID, Method: v.Method, Scope: v.Result.Scope, Note: v.Result.Note}
		}
	}
	return out
}

// Sources reads which node each backup was taken from, by cluster and
// backup id, from the backup steps of a job log. (A manifest names the
// agent, and a directory several agents share is listed by each.)
func Sources(jobs []*remediator.Job) map[string]map[string]string {
	out := map[string]map[string]string{}
	for _, j := range jobs {
		if j.Runbook != (Runbook{}).Name() {
			continue
		}
		for _, s := range j.Steps {
			if s.Name == "start-backup" && s.State == remediator.StepDone && len(s.Output) > 0 {
				// A native backup: taken by every data node, ordered
				// through this management server.
				var st NDBStarted
				if json.Unmarshal(s.Output, &st) == nil && st.BackupID > 0 {
					if out[j.Cluster] == nil {
						out[j.Cluster] = map[string]string{}
					}
					out[j.Cluster][strconv.Itoa(st.BackupID)] = "ndb_mgmd " + st.Management
				}
				continue
			}
			node, ok := strings.CutPrefix(s.Name, "backup:")
			if !ok || s.State != remediator.StepDone || len(s.Output) == 0 {
				continue
			}
			var m Manifest
			if json.Unmarshal(s.Output, &m) != nil || m.ID == "" {
				continue
			}
			if out[j.Cluster] == nil {
				out[j.Cluster] = map[string]string{}
			}
			out[j.Cluster][m.ID] = node
		}
	}
	return out
}

// StateAborted is the state nines gives a native backup whose job
// aborted it (abort-backup step): whatever files its data nodes left,
// complete-looking or not, it is never a good backup.
const StateAborted = "aborted"

// AbortedNDB reads the native backups the backup jobs aborted, by cluster
// and backup id, with why. An abort step that failed still counts: its
// job gave the backup up unfinished.
func AbortedNDB(jobs []*remediator.Job) map[string]map[string]string {
	out := map[string]map[string]string{}
	for _, j := range jobs {
		if j.Runbook != (Runbook{}).Name() {
			continue
		}
		for _, s := range j.Steps {
			if s.Name != "abort-backup" || len(s.Input) == 0 {
				continue
			}
			var in struct {
				BackupID int    `json:"backup_id"`
				Why      string `json:"why"`
			}
			if json.Unmarshal(s.Input, &in) != nil || in.BackupID <= 0 {
				continue
			}
			if out[j.Cluster] == nil {
				out[j.Cluster] = map[string]string{}
			}
			out[j.Cluster][strconv.Itoa(in.BackupID)] = "aborted by job " + j.ID + ": " + in.Why
		}
	}
	return out
}

// Entry is one backup of a cluster as nines lists it: the manifest, where
// it is, the node it was taken from, and its latest verification, if any.
type Entry struct {
	Info
	// Source is the node (SQL address) the backup was taken from, as the
	// job log says; the holder when the log does not say.
	Source       string    `json:"source"`
	Verification *Verified `json:"verification,omitempty"`
}

// Catalog keeps every cluster's backups as the agents list them,
// refreshed periodically and after each backup job, together with the
// verifications the job log holds. What it derives survives an appliance
// restart: the agents and the job log are the record, not the catalog.
type Catalog struct {
	plans map[string][]Plan // by cluster
	order []string
	hosts Hosts
	jobs  func() ([]*remediator.Job, error)
	log   *slog.Logger

	mu       sync.Mutex
	lists    map[string]map[string][]Info // cluster → node\x00dir → its list (the last one read)
	verified map[string]map[string]Verified
	sources  map[string]map[string]string
	aborted  map[string]map[string]string // native backups their job aborted, with why
}

// NewCatalog returns a catalog of plans' clusters; jobs reads the job log.
func NewCatalog(plans []Plan, hosts Hosts, jobs func() ([]*remediator.Job, error), log *slog.Logger) *Catalog {
	if log == nil {
		log = slog.Default()
	}
	c := &Catalog{plans: map[string][]Plan{}, hosts: hosts, jobs: jobs, log: log,
		lists: map[string]map[string][]Info{}, verified: map[string]map[string]Verified{}}
	for _, p := range plans {
		if c.plans[p.Cluster] == nil {
			c.order = append(c.order, p.Cluster)
		}
		c.plans[p.Cluster] = append(c.plans[p.Cluster], p)
	}
	return c
}

// Refresh re-reads the agents' lists of cluster (every cluster when
// empty). A node whose agent does not answer keeps its last list: its
// backups did not vanish because its agent is down.
func (c *Catalog) Refresh(ctx context.Context, cluster string) {
	for _, name := range c.order {
		if cluster != "" && name != cluster {
			continue
		}
		hosts, err := c.hosts(name)
		if err != nil {
			continue
		}
		fresh := map[string][]Info{}
		for _, dir := range planDirs(c.plans[name]) {
			for _, h := range hosts {
				lctx, cancel := context.WithTimeout(ctx, 10*time.Second)
				infos, err := h.Agent.List(lctx, dir)
				cancel()
				key := h.Node + "\x00" + dir
				if err != nil {
					c.log.Debug("list backups", "cluster", name, "node", h.Node, "dir", dir, "err", err)
					c.mu.Lock()
					if old, ok := c.lists[name][key]; ok {
						fresh[key] = old
					}
					c.mu.Unlock()
					continue
				}
				for i := range infos {
					infos[i].Holder, infos[i].Dir = h.Node, dir
				}
				fresh[key] = infos
			}
		}
		c.mu.Lock()
		c.lists[name] = fresh
		c.mu.Unlock()
	}
}

// ReadJobs re-reads the job log for the verifications and the backups'
// source nodes. They change only when a backup job ends: call it then
// (and once at start), before the cluster's next job can start, so that
// job's retention knows every failed verification.
func (c *Catalog) ReadJobs() {
	if c.jobs == nil || len(c.order) == 0 {
		return
	}
	jobs, err := c.jobs()
	if err != nil {
		c.log.Warn("read job log for backup verifications", "err", err)
	}
	v, src, ab := Verifications(jobs), Sources(jobs), AbortedNDB(jobs)
	c.mu.Lock()
	c.verified, c.sources, c.aborted = v, src, ab
	c.mu.Unlock()
}

// Failed reports whether backup id of cluster failed its latest
// verification, or was aborted by its job: retention then never counts
// it as a good backup.
func (c *Catalog) Failed(cluster, id string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.aborted[cluster][id]; ok {
		return true
	}
	v, ok := c.verified[cluster][id]
	return ok && !v.OK
}

// Entries returns a cluster's backups, newest first, each once (a backup
// in a directory several agents share is listed by each).
func (c *Catalog) Entries(cluster string) []Entry {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.entries(cluster)
}

func (c *Catalog) entries(cluster string) []Entry {
	var all []Info
	keys := make([]string, 0, len(c.lists[cluster]))
	for k := range c.lists[cluster] {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		all = append(all, c.lists[cluster][k]...)
	}
	var out []Entry
	for _, in := range merge(all) {
		e := Entry{Info: in, Source: in.Holder}
		if why, ok := c.aborted[cluster][in.ID]; ok && in.Method == MethodNDB {
			e.State, e.Running = StateAborted, false
			e.Error = strings.TrimPrefix(e.Error+"; "+why, "; ")
		}
		if src := c.sources[cluster][in.ID]; src != "" {
			e.Source = src
		}
		if v, ok := c.verified[cluster][in.ID]; ok {
			e.Verification = &v
		}
		out = append(out, e)
	}
	sort.SliceStable(out, func(i, j int) bool {
		if !out[i].StartedAt.Equal(out[j].StartedAt) {
			return out[i].StartedAt.After(out[j].StartedAt)
		}
		return out[i].ID > out[j].ID
	})
	return out
}

// Metrics are the nines_backup_* series of each plan (cluster, method):
// the newest good backup (complete, and not failed verification) and the
// latest verification. A plan without any backup yet has none of them;
// the schedule's series stand in (see the NinesBackupStale rule).
func (c *Catalog) Metrics() []metric.Metric {
	c.mu.Lock()
	defer c.mu.Unlock()
	set := &metric.Set{}
	for _, cluster := range c.order {
		entries := c.entries(cluster)
		for _, p := range c.plans[cluster] {
			var last *Entry
			var lastV *Verified
			for i := range entries {
				e := &entries[i]
				if e.Method != p.Method {
					continue
				}
				if last == nil && e.Complete() && (e.Verification == nil || e.Verification.OK) {
					last = e
				}
			}
			// The latest verification of the method, also of a backup
			// deleted since: a failure stays reported until a later
			// verification succeeds.
			for _, v := range c.verified[cluster] {
				if v.Method == p.Method && (lastV == nil || v.At.After(lastV.At)) {
					lastV = &v
				}
			}
			labels := []string{"cluster", cluster, "method", p.Method}
			if last != nil {
				end := last.EndedAt
				if end.IsZero() {
					end = last.StartedAt
				}
				set.Add("nines_backup_last_success_timestamp_seconds", "When the newest complete backup not known to be bad ended.", metric.Gauge, float64(end.UnixMilli())/1000, labels...)
				set.Add("nines_backup_size_bytes", "Size of the newest complete backup.", metric.Gauge, float64(last.SizeBytes), labels...)
				set.Add("nines_backup_duration_seconds", "How long the newest complete backup took.", metric.Gauge, last.DurationSeconds, labels...)
			}
			if lastV != nil {
				ok := 0.0
				if lastV.OK {
					ok = 1
				}
				set.Add("nines_backup_verified", "1 when the latest verification (a restore on the side) of a backup succeeded, 0 when it failed.", metric.Gauge, ok, labels...)
				set.Add("nines_backup_restore_seconds", "How long the latest verification took to restore the backup.", metric.Gauge, lastV.RestoreSeconds, labels...)
			}
		}
	}
	return set.Metrics
}
