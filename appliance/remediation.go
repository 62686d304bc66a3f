package appliance

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"path/filepath"
	"strconv"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/nines-project/nines"
	"github.com/nines-project/nines/agent"
	"github.com/nines-project/nines/appliance/config"
	"github.com/nines-project/nines/galera"
	"github.com/nines-project/nines/remediator"
	"github.com/nines-project/nines/remediator/backup"
	galerarb "github.com/nines-project/nines/remediator/galera"
	replrb "github.com/nines-project/nines/remediator/replication"
	"github.com/nines-project/nines/replication"
)

// agentNode drives one Galera node through its host agent for the
// runbooks. Its name is the node's SQL address, the instance label alerts
// carry.
type agentNode struct {
	name string
	c    *agent.Client
}

var _ galerarb.Node = (*agentNode)(nil)

// agentTimeout bounds one call to an agent that answers at once.
const agentTimeout = 20 * time.Second

// recoverCallTimeout bounds the calls that run mariadbd --wsrep-recover
// on the host: recover, and in systemd mode start and bootstrap-fields
// (which check the position the unit will recover; systemctl start also
// waits for the unit to be ready). Crash recovery of a large redo log
// takes minutes, so the call waits as long as any agent's
// server.recover_timeout may be; the job's own timeout still bounds it.
const recoverCallTimeout = agent.MaxRecoverTimeout

func (n *agentNode) Name() string { return n.name }

func (n *agentNode) State(ctx context.Context) galerarb.NodeState {
	ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	st, err := n.c.Status(ctx)
	if err != nil {
		return galerarb.NodeState{Name: n.name, Error: err.Error()}
	}
	out := galerarb.NodeState{Name: n.name, Reachable: true, Running: st.Running, Error: st.Error}
	if st.WsrepError != "" && out.Error == "" {
		out.Error = st.WsrepError
	}
	if !st.Running && out.Error == "" && st.LastExit != nil && !st.LastExit.Requested {
		// Why a node a job started went away: "stopped while joining:
		// <this>" then names the cause, not nothing.
		out.Error = "exited (" + st.LastExit.Status + ")"
		if st.LastExit.Reason != "" {
			out.Error += ": " + st.LastExit.Reason
		}
	}
	if st.Running {
		out.Wsrep = st.Wsrep // as galera.ParseStatus read it on the host, wsrep_ready included
	}
	out.Grastate, out.Gvwstate = st.Grastate, st.Gvwstate
	return out
}

// ClearBootstrapFields sets safe_to_bootstrap back to 0 after a failed
// bootstrap start.
func (n *agentNode) ClearBootstrapFields(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, agentTimeout)
	defer cancel()
	if _, err := n.c.SetBootstrapFields(ctx, agent.BootstrapFieldsRequest{Clear: true}); err != nil {
		return fmt.Errorf("clear safe_to_bootstrap on %s: %w", n.name, err)
	}
	return nil
}

var (
	_ galerarb.BootstrapClearer = (*agentNode)(nil)
	_ galerarb.VantagePoint     = (*agentNode)(nil)
)

// Vantage asks the node's agent which Galera peers its host reaches.
func (n *agentNode) Vantage(ctx context.Context) galera.Vantage {
	ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	res, err := n.c.Peers(ctx)
	if err != nil {
		return galera.Vantage{Error: err.Error()}
	}
	v := galera.Vantage{Of: len(res.Peers)}
	for _, p := range res.Peers {
		if p.Reachable {
			v.Reached++
		}
	}
	return v
}

// noAgentNode is a configured node without an agent: never readable, so
// the quorum decision counts it (it may be Primary) and never acts on it.
// Config validation allows it only outside remediation.mode auto.
type noAgentNode struct{ name string }

var _ galerarb.Node = noAgentNode{}

var errNoAgent = errors.New("no agent configured for this node")

func (n noAgentNode) Name() string { return n.name }
func (n noAgentNode) State(context.Context) galerarb.NodeState {
	return galerarb.NodeState{Name: n.name, Error: errNoAgent.Error()}
}
func (n noAgentNode) Recover(context.Context) (galera.Position, error) {
	return galera.Position{}, errNoAgent
}
func (n noAgentNode) Start(context.Context, galera.Position, bool) error        { return errNoAgent }
func (n noAgentNode) SetBootstrapFields(context.Context, galera.Position) error { return errNoAgent }
func (n noAgentNode) PCBootstrap(context.Context) error                         { return errNoAgent }

func (n *agentNode) Recover(ctx context.Context) (galera.Position, error) {
	ctx, cancel := context.WithTimeout(ctx, recoverCallTimeout)
	defer cancel()
	p, err := n.c.Recover(ctx)
	if err != nil {
		return galera.Position{}, fmt.Errorf("recover position of %s: %w", n.name, err)
	}
	return p.Position, nil
}

func (n *agentNode) Start(ctx context.Context, pos galera.Position, newCluster bool) error {
	ctx, cancel := context.WithTimeout(ctx, recoverCallTimeout)
	defer cancel()
	if _, err := n.c.Start(ctx, agent.StartRequest{Position: pos.String(), NewCluster: newCluster, Wait: "none"}); err != nil {
		return fmt.Errorf("start %s: %w", n.name, err)
	}
	return nil
}

func (n *agentNode) SetBootstrapFields(ctx context.Context, pos galera.Position) error {
	ctx, cancel := context.WithTimeout(ctx, recoverCallTimeout)
	defer cancel()
	if _, err := n.c.SetBootstrapFields(ctx, agent.BootstrapFieldsRequest{UUID: pos.UUID, Seqno: pos.Seqno}); err != nil {
		return fmt.Errorf("set bootstrap fields on %s: %w", n.name, err)
	}
	return nil
}

func (n *agentNode) PCBootstrap(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, agentTimeout)
	defer cancel()
	if _, err := n.c.PCBootstrap(ctx); err != nil {
		return fmt.Errorf("pc.bootstrap on %s: %w", n.name, err)
	}
	return nil
}

// clusterNodes returns every configured node of c for the runbooks, with
// an agent or not (the quorum decision's denominator is the configured
// node count, and a node without an agent counts as unreadable; a
// replication failover counts it among the observers it could not ask),
// and the backup hosts, which are the nodes with an agent.
func clusterNodes(c config.Cluster) ([]galerarb.Node, []replrb.Node, []backup.Host) {
	var nodes []galerarb.Node
	var repl []replrb.Node
	var hosts []backup.Host
	for _, n := range c.Nodes {
		if n.Agent == "" {
			nodes = append(nodes, noAgentNode{name: n.Address})
			repl = append(repl, &replNode{name: n.Address, priority: n.Priority})
			continue
		}
		tlsConf := c.AgentTLS
		if tlsConf == nil { // a config not read by config.Load
			tlsConf = &tls.Config{MinVersion: tls.VersionTLS12}
		}
		client := agent.NewClient(n.Agent, c.AgentToken.Reveal(), tlsConf)
		nodes = append(nodes, &agentNode{name: n.Address, c: client})
		repl = append(repl, &replNode{name: n.Address, priority: n.Priority, c: client})
		hosts = append(hosts, backup.Host{Node: n.Address, Agent: agentBackups{c: client}})
	}
	return nodes, repl, hosts
}

// newRemediator builds the remediator over the clusters' agents, with
// the backup runbooks and scheduler (a.backups). silenced (may be nil)
// pauses remediation for silenced alerts.
func newRemediator(cfg *config.Config, silenced func(map[string]string) bool, a *App) (*remediator.Remediator, *remediator.JobLog, error) {
	nodes := map[string][]galerarb.Node{}
	replNodes := map[string][]replrb.Node{}
	withAgent := map[string]int{}
	hosts := map[string][]backup.Host{}
	policies := map[string]remediator.Policy{}
	positionWait := map[string]time.Duration{}
	for _, c := range cfg.Clusters {
		pol := remediator.Policy{Mode: remediator.Mode(c.Remediation.Mode), Kind: c.Kind, MaxRecoveries: c.Remediation.MaxRecoveries, Window: c.Remediation.Window.Duration}
		if c.Kind == nines.KindReplication {
			// A failover decides on the live cluster, not on the alerts
			// that arrived: waiting to collect more only delays it.
			pol.Settle = -1
		}
		policies[c.Name] = pol
		positionWait[c.Name] = c.Remediation.PositionWait.Duration
		nodes[c.Name], replNodes[c.Name], hosts[c.Name] = clusterNodes(c)
		withAgent[c.Name] = len(hosts[c.Name])
	}
	cluster := func(name string) ([]galerarb.Node, error) {
		ns := nodes[name]
		if withAgent[name] == 0 {
			return nil, fmt.Errorf("cluster %q has no node with an agent: nines cannot act on it", name)
		}
		return ns, nil
	}
	replCluster := func(name string) ([]replrb.Node, error) {
		if withAgent[name] == 0 {
			return nil, fmt.Errorf("cluster %q has no node with an agent: nines cannot act on it", name)
		}
		return replNodes[name], nil
	}
	writers := lbWriters(cfg)
	drFollow := newDRFollow(cfg)
	log, err := remediator.OpenJobLog(filepath.Join(cfg.DataDir, "jobs"))
	if err != nil {
		return nil, nil, err
	}
	a.backups = newBackups(cfg, hosts, a.snapshotsOf, log, a.log.With("component", "backups"))
	var team remediator.Team // a nil *ha.Elector must stay a nil interface
	if a.team != nil {
		team = a.team
	}
	rem, err := remediator.New(remediator.Options{
		Log:  log,
		Team: team,
		// Priority: a cluster without a Primary component comes first; a
		// single node's rejoin waits for it. No alert names the backup
		// runbooks: they run by schedule or by hand, and give way to a
		// repair (they are preemptible).
		Runbooks: append([]remediator.Runbook{galerarb.QuorumRecovery{
			Nodes:        cluster,
			PositionWait: func(name string) time.Duration { return positionWait[name] },
			History:      func(string) ([]*remediator.Job, error) { return log.List() },
			// A DR replica's follow (a second) goes before a node's
			// rejoin (seconds): once the dead source is back, the
			// replica would only wait for it.
		}, drFollow, galerarb.Rejoin{Nodes: cluster, History: func(string) ([]*remediator.Job, error) { return log.List() }},
			galerarb.RollingRestart{Nodes: cluster, Writer: galeraWriters(cfg), Stall: a.probeStall},
			replrb.Failover{Nodes: replCluster, Writers: writers}, replrb.Switchover{Nodes: replCluster, Writers: writers}, replrb.RollingRestart{Nodes: replCluster, Writers: writers}, replrb.Rejoin{Nodes: replCluster, Writers: writers}, replrb.Reseed{Nodes: replCluster},
		}, append(ndbRunbooks(cfg, func(string) ([]*remediator.Job, error) { return log.List() }), a.backups.runbooks()...)...),
		Policies: policies,
		Silenced: silenced,
		OnEnd:    a.backups.jobEnded,
		Logger:   a.log.With("component", "remediator"),
	})
	if err != nil {
		return nil, nil, err
	}
	if err := a.backups.startScheduler(rem); err != nil {
		return nil, nil, err
	}
	return rem, log, nil
}

// webhook receives Alertmanager's notifications for the remediator.
func (a *App) webhook(c echo.Context) error {
	var msg remediator.WebhookMessage
	if err := json.NewDecoder(http.MaxBytesReader(c.Response(), c.Request().Body, 4<<20)).Decode(&msg); err != nil {
		return c.JSON(http.StatusBadRequest, apiError{Status: "error", ErrorType: "bad_data", Error: "decode Alertmanager webhook message: " + err.Error()})
	}
	n := a.rem.Receive(msg)
	return c.JSON(http.StatusOK, map[string]any{"status": "success", "accepted": n})
}

// listJobs is GET /api/v1/jobs[?cluster=C][&limit=N]: the job log, newest
// first; the console polls it with a limit, so a month of jobs is not sent
// every second.
func (a *App) listJobs(c echo.Context) error {
	limit := 0
	if v := c.QueryParam("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			return c.JSON(http.StatusBadRequest, apiError{Status: "error", ErrorType: "bad_data", Error: fmt.Sprintf("limit %q: want a positive number", v)})
		}
		limit = n
	}
	cluster := c.QueryParam("cluster")
	jobs, err := a.jobs.List()
	if err != nil && len(jobs) == 0 {
		return c.JSON(http.StatusInternalServerError, apiError{Status: "error", ErrorType: "internal", Error: err.Error()})
	}
	out := jobs[:0]
	for _, j := range jobs {
		if cluster == "" || j.Cluster == cluster {
			out = append(out, j)
		}
	}
	if limit > 0 && len(out) > limit {
		out = out[:limit]
	}
	return c.JSON(http.StatusOK, map[string]any{"status": "success", "data": out})
}

func (a *App) getJob(c echo.Context) error {
	j, err := a.jobs.Get(c.Param("id"))
	if errors.Is(err, remediator.ErrNoJob) {
		return c.JSON(http.StatusNotFound, apiError{Status: "error", ErrorType: "not_found", Error: err.Error()})
	}
	if err != nil {
		return c.JSON(http.StatusInternalServerError, apiError{Status: "error", ErrorType: "internal", Error: err.Error()})
	}
	return c.JSON(http.StatusOK, map[string]any{"status": "success", "data": j})
}

// startJob is POST /api/v1/jobs: a runbook started by hand.
func (a *App) startJob(c echo.Context) error {
	var req remediator.ManualRequest
	if err := json.NewDecoder(http.MaxBytesReader(c.Response(), c.Request().Body, 1<<20)).Decode(&req); err != nil {
		return c.JSON(http.StatusBadRequest, apiError{Status: "error", ErrorType: "bad_data", Error: "decode job request: " + err.Error()})
	}
	req.User, _ = c.Get("token").(string)
	if msg, refused := forceRefused(c, req); refused {
		return c.JSON(http.StatusForbidden, apiError{Status: "error", ErrorType: "forbidden", Error: msg})
	}
	job, err := a.rem.Start(a.runCtx, req)
	switch {
	case errors.Is(err, remediator.ErrBusy), errors.Is(err, remediator.ErrNotLeader):
		return c.JSON(http.StatusConflict, apiError{Status: "error", ErrorType: "conflict", Error: err.Error()})
	case errors.Is(err, remediator.ErrStopping):
		return c.JSON(http.StatusServiceUnavailable, apiError{Status: "error", ErrorType: "unavailable", Error: err.Error()})
	case err != nil:
		return c.JSON(http.StatusBadRequest, apiError{Status: "error", ErrorType: "bad_data", Error: err.Error()})
	}
	return c.JSON(http.StatusAccepted, map[string]any{"status": "success", "data": job})
}

// forceRefused says why req may not run when it names a force_node and
// the caller is not admin: forcing a bootstrap node overrides the safety
// checks, so operate is not enough, for sessions and tokens alike.
func forceRefused(c echo.Context, req remediator.ManualRequest) (string, bool) {
	role, _ := c.Get("role").(string)
	if req.Force == "" || config.Allows(role, config.RoleAdmin) {
		return "", false
	}
	return fmt.Sprintf("force_node overrides the bootstrap safety checks and needs role admin; %s has role %s", req.User, role), true
}

func (a *App) remediationStatus(c echo.Context) error {
	return c.JSON(http.StatusOK, map[string]any{"status": "success", "data": a.rem.Status()})
}

func (a *App) resumeRemediation(c echo.Context) error {
	if err := a.rem.Resume(c.Param("cluster")); err != nil {
		return c.JSON(http.StatusNotFound, apiError{Status: "error", ErrorType: "not_found", Error: err.Error()})
	}
	return c.JSON(http.StatusOK, map[string]any{"status": "success"})
}

// drSource is a Galera node as galera-dr-follow reads it: wsrep state and
// GTID binlog state, both through its agent.
type drSource struct {
	*agentNode
	repl *replNode
}

func (d drSource) Observe(ctx context.Context) replication.Node { return d.repl.Observe(ctx) }

// noAgentSource is a node without an agent: never readable, so never a
// DR replica's next source.
type noAgentSource struct{ noAgentNode }

func (noAgentSource) Observe(context.Context) replication.Node {
	return replication.Node{Error: errNoAgent.Error()}
}

// newDRFollow builds the galera-dr-follow runbook over the agents of the
// Galera clusters' nodes and DR replicas.
func newDRFollow(cfg *config.Config) galerarb.DRFollow {
	sources := map[string][]galerarb.DRSource{}
	replicas := map[string]map[string]galerarb.DRReplica{}
	for _, c := range cfg.Clusters {
		if len(c.DRReplicas) == 0 {
			continue
		}
		tlsConf := c.AgentTLS
		if tlsConf == nil { // a config not read by config.Load
			tlsConf = &tls.Config{MinVersion: tls.VersionTLS12}
		}
		for _, n := range c.Nodes {
			if n.Agent == "" {
				sources[c.Name] = append(sources[c.Name], noAgentSource{noAgentNode{name: n.Address}})
				continue
			}
			client := agent.NewClient(n.Agent, c.AgentToken.Reveal(), tlsConf)
			sources[c.Name] = append(sources[c.Name], drSource{&agentNode{name: n.Address, c: client}, &replNode{name: n.Address, c: client}})
		}
		replicas[c.Name] = map[string]galerarb.DRReplica{}
		for _, d := range c.DRReplicas {
			rn := &replNode{name: d.Address}
			if d.Agent != "" {
				rn.c = agent.NewClient(d.Agent, c.AgentToken.Reveal(), tlsConf)
			}
			replicas[c.Name][d.Address] = rn
		}
	}
	return galerarb.DRFollow{
		Sources: func(cluster string) ([]galerarb.DRSource, error) {
			if len(sources[cluster]) == 0 {
				return nil, fmt.Errorf("cluster %q has no DR replicas configured (dr_replicas)", cluster)
			}
			return sources[cluster], nil
		},
		Replica: func(cluster, name string) (galerarb.DRReplica, error) {
			d, ok := replicas[cluster][name]
			if !ok {
				return nil, fmt.Errorf("%s is not a DR replica of cluster %q (dr_replicas)", name, cluster)
			}
			return d, nil
		},
	}
}
