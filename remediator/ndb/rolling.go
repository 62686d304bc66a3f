package ndb

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/nines-project/nines/agent"
	exporterndb "github.com/nines-project/nines/exporter/ndb"
	"github.com/nines-project/nines/ndb"
	"github.com/nines-project/nines/remediator"
)

// Restarter is a management server that restarts data nodes (ndb_mgm
// `N RESTART`) besides reporting their status.
type Restarter interface {
	StatusSource
	Restart(ctx context.Context, req ndb.RestartRequest) (int, error)
}

var _ Restarter = (*exporterndb.Mgm)(nil)

// FailoverRestarter is a Restarter over several management servers. A
// status read fails over as Failover does; a restart goes to the first
// server that answers `get status` right before it and is never sent to
// a second one: a command that timed out may have been carried out, and
// repeating it would restart a node twice.
func FailoverRestarter(srcs ...Restarter) Restarter { return failoverRestarter(srcs) }

type failoverRestarter []Restarter

func (f failoverRestarter) GetStatus(ctx context.Context, types ...ndb.NodeType) ([]ndb.Node, error) {
	srcs := make([]StatusSource, len(f))
	for i, s := range f {
		srcs[i] = s
	}
	return failover(srcs).GetStatus(ctx, types...)
}

func (f failoverRestarter) Restart(ctx context.Context, req ndb.RestartRequest) (int, error) {
	var errs []error
	for _, s := range f {
		if _, err := s.GetStatus(ctx); err != nil {
			errs = append(errs, err)
			continue
		}
		return s.Restart(ctx, req)
	}
	return 0, fmt.Errorf("no management server answered: %w", errors.Join(errs...))
}

// MgmServer is one management server as the rolling restart sees it:
// its own `get status` (not failed over to another one, so the wait
// knows this server answers) and the agent on its host.
type MgmServer struct {
	Addr   string
	Status StatusSource
	// Agent restarts the server; nil when none is configured (the
	// server is then left to a person, and the job log says so).
	Agent Agent
}

// NdbinfoReader reads ndbinfo.nodes through one SQL node (an
// exporter/ndb.Querier over its connection): the data nodes' config
// generations, and proof that the SQL node answers queries.
type NdbinfoReader interface {
	ReadNodes(ctx context.Context) ([]exporterndb.NodeRow, error)
}

// SQLNode is one SQL node: a mysqld connected to the cluster as an API
// node, and the agent on its host.
type SQLNode struct {
	Name  string
	SQL   NdbinfoReader
	Agent Agent // nil: not restarted by nines
}

// Bounds of the management server and SQL node restarts: both restart in
// seconds; a minute covers a slow host.
const (
	DefaultMgmTimeout = time.Minute
	DefaultSQLTimeout = 2 * time.Minute
	restartGrace      = 30 * time.Second
)

// RollingRestart is the ndb-rolling-restart runbook, in the order of
// NDB's rolling restart [DOC8 §25.6.5]:
//
//  1. each management server in turn, through its host agent (stop,
//     start), followed until it answers `get status` again. With several,
//     one is restarted only while every other answers; with a single one,
//     the data and SQL nodes keep serving without it (the job log says
//     what is missing meanwhile: the arbitrator, status, events).
//  2. each data node in turn, by ascending id, with the management
//     server's RESTART (never -i, never -f), followed until STARTED; the
//     next one only once every data node is STARTED again, so a node
//     group never has two nodes down. ndbinfo.nodes.config_generation is
//     logged before and after each.
//  3. each SQL node in turn, through its host agent, only while every
//     other SQL node answers (the application always has one), followed
//     until it answers queries and `get status` shows as many API nodes
//     connected as before.
//
// The job succeeds only when every data node runs the newest config
// generation; otherwise it fails naming the nodes behind. Before each
// act it re-observes and refuses while a data node is not STARTED. A
// resumed job skips what its log shows done and never repeats an act.
type RollingRestart struct {
	Mgm func(cluster string) (Restarter, error)
	// MgmServers are the cluster's management servers in order; nil or
	// none: phase 1 is skipped, logged.
	MgmServers func(cluster string) ([]MgmServer, error)
	// SQLNodes are the cluster's SQL nodes in order; at least one is
	// needed to read the config generations.
	SQLNodes func(cluster string) ([]SQLNode, error)
	// NodeTimeout bounds each data node's wait for STARTED; 0 is
	// DefaultStartTimeout. MgmTimeout and SQLTimeout bound the other
	// waits; 0 is their default.
	NodeTimeout time.Duration
	MgmTimeout  time.Duration
	SQLTimeout  time.Duration
	Poll        time.Duration
	Clock       Clock
}

var (
	_ remediator.Runbook = RollingRestart{}
	_ remediator.Bounded = RollingRestart{}
)

func (RollingRestart) Name() string { return remediator.RunbookNdbRollingRestart }

// Timeout bounds the job: a few hours covers dozens of data nodes at the
// default per-node bound.
func (RollingRestart) Timeout() time.Duration { return 4 * time.Hour }

func (rb RollingRestart) Run(ctx context.Context, r *remediator.Run) error {
	mgm, err := rb.Mgm(r.Cluster())
	if err != nil {
		return fmt.Errorf("management servers of %s: %w", r.Cluster(), err)
	}
	var servers []MgmServer
	if rb.MgmServers != nil {
		if servers, err = rb.MgmServers(r.Cluster()); err != nil {
			return fmt.Errorf("management servers of %s: %w", r.Cluster(), err)
		}
	}
	var sqls []SQLNode
	if rb.SQLNodes != nil {
		if sqls, err = rb.SQLNodes(r.Cluster()); err != nil {
			return fmt.Errorf("SQL nodes of %s: %w", r.Cluster(), err)
		}
	}
	nodes, err := remediator.Observe(r, "observe-cluster", nil, func(ctx context.Context) ([]int, error) {
		return allStarted(ctx, mgm)
	})
	if err != nil {
		return err
	}
	if _, err := remediator.Observe(r, "generations-before", nil, func(ctx context.Context) (map[string]uint64, error) {
		return readGenerations(ctx, sqls)
	}); err != nil && !isSoft(err) {
		return err
	}
	if err := rb.mgmPhase(ctx, r, mgm, servers); err != nil {
		return err
	}
	if err := rb.dataPhase(ctx, r, mgm, nodes, sqls); err != nil {
		return err
	}
	if err := rb.sqlPhase(ctx, r, mgm, sqls); err != nil {
		return err
	}
	if r.DryRun() {
		// Nothing was restarted: the generations are as they were.
		return r.Logf("check-generations", "dry run: the generations are checked after a real rolling restart")
	}
	_, err = remediator.Observe(r, "check-generations", nil, func(ctx context.Context) (map[string]uint64, error) {
		gens, err := readGenerations(ctx, sqls)
		if err != nil {
			return gens, fmt.Errorf("the rolling restart is done but config_generation could not be checked: %w", err)
		}
		return gens, behind(gens, nodes)
	})
	return err
}

// done reports whether the step called exactly name is done (DoneStep
// matches a prefix, and node-1 is a prefix of node-10).
func done(r *remediator.Run, name string) bool {
	got, ok := r.DoneStep(name)
	return ok && got == name
}

// mgmPhase restarts each management server in turn through its agent.
func (rb RollingRestart) mgmPhase(ctx context.Context, r *remediator.Run, mgm StatusSource, servers []MgmServer) error {
	if len(servers) == 0 {
		return r.Logf("mgm-phase", "no management server is configured for this runbook: none restarted")
	}
	limit := rb.MgmTimeout
	if limit <= 0 {
		limit = DefaultMgmTimeout
	}
	for i, s := range servers {
		name := "mgm-" + s.Addr
		if done(r, "restarted:"+name) {
			continue
		}
		if s.Agent == nil {
			if err := r.Logf("not-restarted:"+name, "management server %s has no agent configured (ndb.management[%d].agent): not restarted; restart it by hand (ndb_mgmd --reload loads a changed config.ini)", s.Addr, i); err != nil {
				return err
			}
			continue
		}
		stop, start := "stop:"+name, "start:"+name
		if !done(r, stop) {
			if _, err := remediator.Observe(r, "check-before:"+name, nil, func(ctx context.Context) (string, error) {
				if _, err := allStarted(ctx, mgm); err != nil {
					return "", err
				}
				if err := agentKind(ctx, s.Agent, agent.KindNdbMgmd, "management server "+s.Addr); err != nil {
					return "", err
				}
				for _, o := range servers {
					if o.Addr == s.Addr {
						continue
					}
					if _, err := o.Status.GetStatus(ctx); err != nil {
						return "", remediator.Refused("management server %s does not answer (%v): restarting %s now would leave the cluster with no management server", o.Addr, err, s.Addr)
					}
				}
				if len(servers) == 1 {
					return fmt.Sprintf("%s is the only management server: while it restarts the data nodes and SQL nodes keep serving (they need it only to start), but there is no get status, no event stream and no management-server arbitrator (ArbitrationRank 1); a data node failure needing arbitration meanwhile has only SQL nodes of rank > 0 to ask", s.Addr), nil
				}
				return "every other management server answers", nil
			}); err != nil {
				return err
			}
		}
		if _, err := remediator.Act(ctx, r, stop, map[string]any{"mgm": s.Addr}, func(ctx context.Context) (agent.StopResult, error) {
			return s.Agent.Stop(ctx, agent.StopRequest{GraceSeconds: int(restartGrace.Seconds())})
		}); err != nil {
			return err
		}
		if _, err := remediator.Act(ctx, r, start, map[string]any{"mgm": s.Addr}, func(ctx context.Context) (agent.StartResult, error) {
			return s.Agent.Start(ctx, agent.StartRequest{Wait: agent.WaitNone})
		}); err != nil {
			return err
		}
		if _, err := remediator.Wait(ctx, r, "wait-answering:"+name, map[string]string{"timeout": limit.String()}, func(ctx context.Context) (string, error) {
			return rb.poll(ctx, limit, func(ctx context.Context) (string, error) {
				if _, err := s.Status.GetStatus(ctx); err != nil {
					return "", fmt.Errorf("management server %s does not answer get status: %w", s.Addr, err)
				}
				if _, err := allStarted(ctx, s.Status); err != nil {
					return "", fmt.Errorf("after management server %s restarted: %w", s.Addr, err)
				}
				return "answers get status; every data node STARTED", nil
			})
		}); err != nil {
			return err
		}
		if err := r.Logf("restarted:"+name, "management server %s restarted and answering", s.Addr); err != nil {
			return err
		}
	}
	return nil
}

// dataPhase restarts each data node in turn with RESTART, logging the
// config generations before and after each.
func (rb RollingRestart) dataPhase(ctx context.Context, r *remediator.Run, mgm Restarter, nodes []int, sqls []SQLNode) error {
	limit := rb.NodeTimeout
	if limit <= 0 {
		limit = DefaultStartTimeout
	}
	gens := func(step string) error {
		_, err := remediator.Observe(r, step, nil, func(ctx context.Context) (map[string]uint64, error) {
			return readGenerations(ctx, sqls)
		})
		if isSoft(err) {
			return nil // logged; the final check decides
		}
		return err
	}
	for _, id := range nodes {
		if done(r, fmt.Sprintf("restarted:node-%d", id)) {
			continue
		}
		act := fmt.Sprintf("restart:node-%d", id)
		before, err := remediator.Observe(r, fmt.Sprintf("check-before:node-%d", id), nil, func(ctx context.Context) (ndb.Node, error) {
			if done(r, act) {
				return ndb.Node{}, nil // resumed mid-restart: only the wait is left
			}
			if _, err := allStarted(ctx, mgm); err != nil {
				return ndb.Node{}, err
			}
			ns, err := mgm.GetStatus(ctx)
			if err != nil {
				return ndb.Node{}, err
			}
			n, _ := find(ns, id)
			return n, nil
		})
		if err != nil {
			return err
		}
		if !done(r, act) {
			if err := gens(fmt.Sprintf("generations-before:node-%d", id)); err != nil {
				return err
			}
		}
		if _, err := remediator.Act(ctx, r, act, map[string]any{"node_id": id, "initial": false, "force": false}, func(ctx context.Context) (int, error) {
			return mgm.Restart(ctx, ndb.RestartRequest{Nodes: []int{id}})
		}); err != nil {
			return err
		}
		var prev *ndb.Node
		if before.ID == id {
			prev = &before
		}
		if _, err := remediator.Wait(ctx, r, fmt.Sprintf("wait-started:node-%d", id), map[string]string{"timeout": limit.String()}, func(ctx context.Context) (ndb.Node, error) {
			return follow(ctx, r, followOpts{mgm: mgm, id: id, limit: limit, poll: rb.Poll, clock: rb.Clock, before: prev})
		}); err != nil {
			return err
		}
		if err := gens(fmt.Sprintf("generations-after:node-%d", id)); err != nil {
			return err
		}
		if err := r.Logf(fmt.Sprintf("restarted:node-%d", id), "data node %d restarted and STARTED", id); err != nil {
			return err
		}
	}
	return nil
}

// sqlPhase restarts each SQL node in turn through its agent, never while
// another SQL node does not answer.
func (rb RollingRestart) sqlPhase(ctx context.Context, r *remediator.Run, mgm StatusSource, sqls []SQLNode) error {
	limit := rb.SQLTimeout
	if limit <= 0 {
		limit = DefaultSQLTimeout
	}
	for i, s := range sqls {
		name := "sql-" + s.Name
		if done(r, "restarted:"+name) {
			continue
		}
		if s.Agent == nil {
			if err := r.Logf("not-restarted:"+name, "SQL node %s has no agent configured (nodes[%d].agent): not restarted; restart it by hand once the others answer", s.Name, i); err != nil {
				return err
			}
			continue
		}
		stop, start := "stop:"+name, "start:"+name
		var connected int
		if done(r, stop) {
			var in struct {
				APIConnected int `json:"api_connected_before"`
			}
			_ = json.Unmarshal(r.StepInput(stop), &in)
			connected = in.APIConnected
		} else {
			obs, err := remediator.Observe(r, "check-before:"+name, nil, func(ctx context.Context) (int, error) {
				if _, err := allStarted(ctx, mgm); err != nil {
					return 0, err
				}
				if err := agentKind(ctx, s.Agent, agent.KindMariaDB, "SQL node "+s.Name); err != nil {
					return 0, err
				}
				for _, o := range sqls {
					if o.Name == s.Name {
						continue
					}
					if _, err := o.SQL.ReadNodes(ctx); err != nil {
						return 0, remediator.Refused("SQL node %s does not answer (%v): restarting %s now could leave the application without an SQL node", o.Name, err, s.Name)
					}
				}
				return apiConnected(ctx, mgm)
			})
			if err != nil {
				return err
			}
			connected = obs
			if len(sqls) == 1 {
				if err := r.Logf("alone:"+name, "%s is the only SQL node: the application has no SQL node while it restarts", s.Name); err != nil {
					return err
				}
			}
		}
		if _, err := remediator.Act(ctx, r, stop, map[string]any{"sql": s.Name, "api_connected_before": connected}, func(ctx context.Context) (agent.StopResult, error) {
			return s.Agent.Stop(ctx, agent.StopRequest{GraceSeconds: int(restartGrace.Seconds())})
		}); err != nil {
			return err
		}
		if _, err := remediator.Act(ctx, r, start, map[string]any{"sql": s.Name}, func(ctx context.Context) (agent.StartResult, error) {
			return s.Agent.Start(ctx, agent.StartRequest{})
		}); err != nil {
			return err
		}
		if _, err := remediator.Wait(ctx, r, "wait-connected:"+name, map[string]any{"timeout": limit.String(), "api_connected": connected}, func(ctx context.Context) (string, error) {
			return rb.poll(ctx, limit, func(ctx context.Context) (string, error) {
				if _, err := s.SQL.ReadNodes(ctx); err != nil {
					return "", fmt.Errorf("SQL node %s does not answer ndbinfo: %w", s.Name, err)
				}
				n, err := apiConnected(ctx, mgm)
				if err != nil {
					return "", err
				}
				if n < connected {
					return "", fmt.Errorf("get status shows %d API nodes connected, %d before %s restarted", n, connected, s.Name)
				}
				return fmt.Sprintf("answers queries; %d API nodes connected", n), nil
			})
		}); err != nil {
			return err
		}
		if err := r.Logf("restarted:"+name, "SQL node %s restarted, connected and answering", s.Name); err != nil {
			return err
		}
	}
	return nil
}

// agentKind refuses when the agent configured for what does not answer
// or controls another kind of server: a wrong mapping in the config
// would restart the wrong process.
func agentKind(ctx context.Context, a Agent, kind, what string) error {
	st, err := a.Status(ctx)
	if err != nil {
		return fmt.Errorf("the agent of %s does not answer: %w", what, err)
	}
	if st.Kind != kind {
		return remediator.Refused("the agent configured for %s controls %q, not %s: fix the appliance's agent mapping", what, st.Kind, kind)
	}
	return nil
}

// poll runs check until it succeeds or limit passes; the error is then
// the last check's.
func (rb RollingRestart) poll(ctx context.Context, limit time.Duration, check func(context.Context) (string, error)) (string, error) {
	clock := clockOr(rb.Clock)
	every := rb.Poll
	if every <= 0 {
		every = defaultPoll
	}
	deadline := clock.Now().Add(limit)
	for {
		out, err := check(ctx)
		if err == nil {
			return out, nil
		}
		if !clock.Now().Before(deadline) {
			return "", fmt.Errorf("not done after %v: %w", limit, err)
		}
		select {
		case <-ctx.Done():
			return "", ctx.Err()
		case <-clock.After(every):
		}
	}
}

// apiConnected counts the API (SQL) nodes `get status` shows connected.
func apiConnected(ctx context.Context, mgm StatusSource) (int, error) {
	nodes, err := mgm.GetStatus(ctx)
	if err != nil {
		return 0, err
	}
	n := 0
	for _, nd := range nodes {
		if nd.Type == ndb.TypeAPI && nd.Status.Up(ndb.TypeAPI) {
			n++
		}
	}
	return n, nil
}

// errNoGenerations is a config generation read that no SQL node could
// answer: logged during the restart, fatal only at the final check.
var errNoGenerations = errors.New("no SQL node answered ndbinfo.nodes")

func isSoft(err error) bool { return errors.Is(err, errNoGenerations) }

// readGenerations reads each running data node's config_generation
// through the first SQL node that answers, as exporter/ndb does.
func readGenerations(ctx context.Context, sqls []SQLNode) (map[string]uint64, error) {
	if len(sqls) == 0 {
		return nil, fmt.Errorf("%w: no SQL node is configured", errNoGenerations)
	}
	var errs []error
	for _, s := range sqls {
		rows, err := s.SQL.ReadNodes(ctx)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", s.Name, err))
			continue
		}
		out := map[string]uint64{}
		for _, row := range rows {
			out[fmt.Sprintf("node-%d", row.NodeID)] = row.ConfigGeneration
		}
		return out, nil
	}
	return nil, fmt.Errorf("%w: %w", errNoGenerations, errors.Join(errs...))
}

// behind is nil when every data node of ids reports the newest
// generation; otherwise an error naming those behind or missing.
func behind(gens map[string]uint64, ids []int) error {
	var newest uint64
	for _, g := range gens {
		newest = max(newest, g)
	}
	var late []string
	for _, id := range ids {
		g, ok := gens[fmt.Sprintf("node-%d", id)]
		switch {
		case !ok:
			late = append(late, fmt.Sprintf("node %d (no ndbinfo.nodes row: not running)", id))
		case g < newest:
			late = append(late, fmt.Sprintf("node %d (generation %d)", id, g))
		}
	}
	if len(late) > 0 {
		return fmt.Errorf("data nodes behind config generation %d after the rolling restart: %s; restart them (ndb-rolling-restart again, or ndb_mgm -e 'N RESTART')", newest, strings.Join(late, ", "))
	}
	return nil
}

// allStarted returns the data node ids, ascending, when every data node
// is STARTED; otherwise a refusal naming those that are not.
func allStarted(ctx context.Context, mgm StatusSource) ([]int, error) {
	nodes, err := mgm.GetStatus(ctx)
	if err != nil {
		return nil, err
	}
	var ids []int
	var down []string
	for _, n := range nodes {
		if n.Type != ndb.TypeNDB {
			continue
		}
		ids = append(ids, n.ID)
		if !n.Status.Up(ndb.TypeNDB) {
			down = append(down, fmt.Sprintf("node %d is %s", n.ID, describe(n)))
		}
	}
	sort.Ints(ids)
	if len(ids) == 0 {
		return nil, remediator.Aborted("the management server lists no data node")
	}
	if len(down) > 0 {
		return ids, remediator.Refused("a rolling restart restarts a node only while every data node is STARTED, and %s; bring it back first (ndb-data-node-restart)", strings.Join(down, ", "))
	}
	return ids, nil
}
