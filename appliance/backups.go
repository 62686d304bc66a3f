package appliance

import (
	"github.com/nines-project/nines/galera"

	"context"
	"crypto/tls"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/nines-project/nines"
	"github.com/nines-project/nines/agent"
	"github.com/nines-project/nines/appliance/config"
	exporterndb "github.com/nines-project/nines/exporter/ndb"
	"github.com/nines-project/nines/internal/metric"
	"github.com/nines-project/nines/remediator"
	"github.com/nines-project/nines/remediator/backup"
)

// catalogInterval is how often the agents' backup lists are re-read for
// the nines_backup_* series (and after every backup job): often enough
// that a backup deleted by hand shows within a minute, rarely enough that
// listing costs the agents nothing.
const catalogInterval = 30 * time.Second

// agentBackups drives backups through one host agent.
type agentBackups struct{ c *agent.Client }

var _ backup.Agent = agentBackups{}

func (a agentBackups) Backup(ctx context.Context, req backup.Request) (backup.Manifest, error) {
	// No deadline of its own: the job's bounds the backup, and cancelling
	// it makes the agent stop the tool and remove what it wrote.
	m, err := a.c.Backup(ctx, agent.BackupRequest{Method: req.Method, Dir: req.Dir, Desync: req.Desync, ID: req.ID})
	if err != nil {
		return backup.Manifest{}, err
	}
	return manifestOf(m), nil
}

func (a agentBackups) List(ctx context.Context, dir string) ([]backup.Info, error) {
	infos, err := a.c.Backups(ctx, dir)
	if err != nil {
		return nil, err
	}
	out := make([]backup.Info, len(infos))
	for i, in := range infos {
		out[i] = backup.Info{Manifest: manifestOf(in.Manifest), State: in.State, Running: in.Running, Error: in.Error}
		if n := in.NDB; n != nil {
			// A data node's agent lists its own part of a native backup.
			out[i].NDB = &backup.NDBBackup{BackupID: n.BackupID, Nodes: []backup.NDBNodeFiles{{NodeID: n.NodeID, Files: out[i].Files, Missing: n.Missing}}}
		}
	}
	return out, nil
}

func (a agentBackups) Delete(ctx context.Context, dir, id string) error {
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	return a.c.DeleteBackup(ctx, dir, id)
}

func (a agentBackups) Verify(ctx context.Context, dir, id string) (backup.VerifyResult, error) {
	r, err := a.c.VerifyBackup(ctx, id, agent.VerifyRequest{Dir: dir})
	if err != nil {
		return backup.VerifyResult{}, err
	}
	out := backup.VerifyResult{ID: r.ID, OK: r.OK, ChecksumSeconds: r.ChecksumSeconds, RestoreSeconds: r.RestoreSeconds, CheckSeconds: r.CheckSeconds, Error: r.Error}
	for _, c := range r.Checks {
		out.Checks = append(out.Checks, backup.Check{Name: c.Name, OK: c.OK, Detail: c.Detail})
	}
	return out, nil
}

func manifestOf(m agent.Manifest) backup.Manifest {
	out := backup.Manifest{ID: m.ID, Method: m.Method, Node: m.Node, Host: m.Host, StartedAt: m.StartedAt, EndedAt: m.EndedAt,
		DurationSeconds: m.DurationSeconds, SizeBytes: m.SizeBytes, GTID: m.GTID, BinlogFile: m.BinlogFile, BinlogPos: m.BinlogPos,
		Desynced: m.Desynced, Tables: m.Tables, RowCounts: m.RowCounts, FactsExact: m.FactsExact, ServerVersion: m.ServerVersion}
	for _, f := range m.Files {
		out.Files = append(out.Files, backup.File{Name: f.Name, Size: f.Size, SHA256: f.SHA256})
	}
	if m.Galera != nil {
		out.Galera = &galera.Position{UUID: m.Galera.UUID, Seqno: m.Galera.Seqno}
	}
	return out
}

// backups is the appliance's backup side: the runbooks' environment, the
// catalog of what the agents hold, and the scheduler.
type backups struct {
	plans   []backup.Plan
	env     backup.Env
	catalog *backup.Catalog
	sched   *backup.Scheduler
	refresh chan string // a cluster whose backup job ended
	log     *slog.Logger
}

// plansOf turns the clusters' backup configs into plans.
func plansOf(cfg *config.Config) []backup.Plan {
	var out []backup.Plan
	for _, c := range cfg.Clusters {
		for _, b := range c.Backups {
			out = append(out, backup.Plan{Cluster: c.Name, Kind: c.Kind, Method: b.Method, Schedule: b.Schedule, Keep: b.Keep,
				MaxAge: b.MaxAge.Duration, Verify: b.Verify, Dir: b.Dir, Node: b.Node, Desync: b.Desync})
		}
	}
	return out
}

func newBackups(cfg *config.Config, hosts map[string][]backup.Host, snapshots func(string) []*nines.Snapshot, jobs *remediator.JobLog, log *slog.Logger) *backups {
	b := &backups{plans: plansOf(cfg), refresh: make(chan string, 16), log: log}
	// An ndb cluster is backed up natively: its backup hosts are the data
	// nodes' agents, and START BACKUP goes to its management servers.
	ndbHosts, mgms := ndbBackupHosts(cfg)
	hostsOf := func(cluster string) ([]backup.Host, error) {
		if hs, ok := ndbHosts[cluster]; ok {
			if len(hs) == 0 {
				return nil, fmt.Errorf("ndb cluster %q names no data node agent (ndb.data_nodes): nines cannot list its backup files", cluster)
			}
			return hs, nil
		}
		hs := hosts[cluster]
		if len(hs) == 0 {
			return nil, fmt.Errorf("cluster %q has no node with an agent: nines cannot back it up", cluster)
		}
		return hs, nil
	}
	b.catalog = backup.NewCatalog(b.plans, hostsOf, jobs.List, log)
	b.env = backup.Env{
		Plans: func(cluster string) []backup.Plan {
			var out []backup.Plan
			for _, p := range b.plans {
				if p.Cluster == cluster {
					out = append(out, p)
				}
			}
			return out
		},
		Hosts:     hostsOf,
		Snapshots: snapshots,
		Failed:    b.catalog.Failed,
		Management: func(cluster string) ([]backup.MgmServer, error) {
			ms := mgms[cluster]
			if len(ms) == 0 {
				return nil, fmt.Errorf("cluster %q is not an ndb cluster with management servers", cluster)
			}
			return ms, nil
		},
	}
	return b
}

func (b *backups) runbooks() []remediator.Runbook {
	return []remediator.Runbook{backup.Runbook{Env: b.env}, backup.VerifyRunbook{Env: b.env}}
}

// startScheduler creates the scheduler over rem; call once rem exists.
func (b *backups) startScheduler(rem *remediator.Remediator) error {
	var err error
	b.sched, err = backup.NewScheduler(b.plans, rem.Start, backup.SchedulerOptions{Note: rem.Note, Logger: b.log})
	return err
}

// jobEnded runs when a job ended, before its cluster's slot is free: the
// catalog re-reads the job log at once (so the next backup's retention
// knows this verification) and the agents' lists soon after, so the
// nines_backup_* series follow.
func (b *backups) jobEnded(j remediator.Job) {
	if j.Runbook != (backup.Runbook{}).Name() && j.Runbook != (backup.VerifyRunbook{}).Name() {
		return
	}
	b.catalog.ReadJobs()
	select {
	case b.refresh <- j.Cluster:
	default: // a refresh is queued already
	}
}

// run schedules backups and keeps the catalog fresh until ctx ends.
func (b *backups) run(ctx context.Context) {
	done := make(chan struct{})
	go func() { defer close(done); b.sched.Run(ctx) }()
	defer func() { <-done }()
	t := time.NewTicker(catalogInterval)
	defer t.Stop()
	b.catalog.ReadJobs()
	b.catalog.Refresh(ctx, "")
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			b.catalog.Refresh(ctx, "")
		case c := <-b.refresh:
			b.catalog.Refresh(ctx, c)
		}
	}
}

func (b *backups) metrics() []metric.Metric {
	return append(b.catalog.Metrics(), b.sched.Metrics()...)
}

// snapshotsOf returns the latest snapshot of each node of cluster.
func (a *App) snapshotsOf(cluster string) []*nines.Snapshot {
	var out []*nines.Snapshot
	for _, s := range a.exp.Latest() {
		if s.Cluster == cluster {
			out = append(out, s)
		}
	}
	return out
}

// backupView is one backup as GET /api/v1/backups lists it.
type backupView struct {
	Cluster string `json:"cluster"`
	backup.Entry
}

// listBackups is GET /api/v1/backups[?cluster=C]: every backup the
// agents hold (read again now), merged per cluster, newest first, with
// the latest verification from the job log, and the schedules.
func (a *App) listBackups(c echo.Context) error {
	cluster := c.QueryParam("cluster")
	if cluster != "" {
		known := false
		for _, cl := range a.cfg.Clusters {
			known = known || cl.Name == cluster
		}
		if !known {
			return c.JSON(http.StatusNotFound, apiError{Status: "error", ErrorType: "not_found", Error: "no cluster named " + cluster})
		}
	}
	ctx, cancel := context.WithTimeout(c.Request().Context(), 20*time.Second)
	defer cancel()
	a.backups.catalog.ReadJobs()
	a.backups.catalog.Refresh(ctx, cluster)
	out := []backupView{}
	for _, cl := range a.cfg.Clusters {
		if cluster != "" && cl.Name != cluster {
			continue
		}
		for _, e := range a.backups.catalog.Entries(cl.Name) {
			out = append(out, backupView{Cluster: cl.Name, Entry: e})
		}
	}
	scheds := []backup.ScheduleStatus{}
	for _, s := range a.backups.sched.Status() {
		if cluster == "" || s.Cluster == cluster {
			scheds = append(scheds, s)
		}
	}
	return c.JSON(http.StatusOK, map[string]any{"status": "success", "data": map[string]any{"backups": out, "schedules": scheds}})
}

// ndbBackupHosts returns, for each kind ndb cluster, its data nodes'
// agents as backup hosts (data-node-N) and its management servers in the
// configured order. A native backup may take hours: only the job's
// deadline bounds the wait for its BackupCompleted event.
func ndbBackupHosts(cfg *config.Config) (map[string][]backup.Host, map[string][]backup.MgmServer) {
	hosts := map[string][]backup.Host{}
	mgms := map[string][]backup.MgmServer{}
	for _, c := range cfg.Clusters {
		if c.Kind != nines.KindNDB || c.NDB == nil {
			continue
		}
		hosts[c.Name] = []backup.Host{}
		tlsConf := c.AgentTLS
		if tlsConf == nil { // a config not read by config.Load
			tlsConf = &tls.Config{MinVersion: tls.VersionTLS12}
		}
		for _, d := range c.NDB.DataNodes {
			if d.Agent == "" {
				continue
			}
			client := agent.NewClient(d.Agent, c.AgentToken.Reveal(), tlsConf)
			hosts[c.Name] = append(hosts[c.Name], backup.Host{Node: backup.DataNodeName(d.NodeID), NDBNodeID: d.NodeID, Agent: agentBackups{c: client}})
		}
		for _, addr := range c.NDB.ManagementAddresses() {
			mgms[c.Name] = append(mgms[c.Name], backup.MgmServer{Addr: addr,
				Mgm: exporterndb.NewMgm(exporterndb.MgmConfig{Addr: addr, DialTimeout: 2 * time.Second, Timeout: 5 * time.Second})})
		}
	}
	return hosts, mgms
}
