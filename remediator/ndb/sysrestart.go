package ndb

import (
	"context"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/nines-project/nines/agent"
	"github.com/nines-project/nines/ndb"
	"github.com/nines-project/nines/remediator"
)

// Bounds of the system restart.
const (
	// DefaultSystemRestartBackoff: an automatic system restart is not
	// repeated for a cluster that falls again within this long of the
	// last one that brought it back. A cluster that loses a node group
	// twice in ten minutes has a cause a restart does not fix.
	DefaultSystemRestartBackoff = 10 * time.Minute
	// processExitWait is how long the checks wait for data node
	// processes still shutting down: a lost node group shuts every data
	// node down, and the survivors' processes end a moment after the
	// management server sees them gone.
	processExitWait = 10 * time.Second
)

// SystemRestart is the ndb-system-restart runbook: a cluster that shut
// itself down (a lost node group: "Arbitration check failed: missing
// node group") is started again by starting every data node, normally,
// through its host agent; the nodes recover from their own checkpoints
// and redo together (NDB's system restart) and are followed through
// their start phases until every one is STARTED.
//
// Preconditions, observed right before the starts:
//   - a management server answers `get status` (else refused: without it
//     nothing says that no data node runs);
//   - no data node is STARTED, starting, restarting or in single user
//     mode (else aborted: a cluster that runs needs node restarts,
//     NdbDataNodeDown's runbook, not a system restart); one shutting down
//     is waited for (not yet);
//   - every data node's agent answers, controls that node, and reports
//     its process gone (else refused, see below);
//   - no other NDB job of the cluster runs, and for an automatic job no
//     earlier automatic system restart of the cluster failed, or brought
//     it back less than Backoff ago (else refused: a person looks).
//
// An agent that does not answer is a refusal, not a partial start: the
// node's process may run unseen (cut off from the management server, or
// restarted by its angel), and the others started without it would wait
// StartPartialTimeout and then start partially, or, were it running in
// another partition, make a partitioned start, NDB's split-brain risk
// (StartPartitionedTimeout). Whether that node is really down is a
// person's check on its host. Never --initial: that throws a node's
// data away and stays a person's choice (ndb-data-node-restart's
// initial=true, node by node).
type SystemRestart struct {
	Access
	// Backoff is DefaultSystemRestartBackoff when 0.
	Backoff time.Duration
	// ExitWait is how long the checks wait for processes still ending
	// after the cluster shut down; 0 is processExitWait.
	ExitWait time.Duration
}

var (
	_ remediator.Runbook  = SystemRestart{}
	_ remediator.Preparer = SystemRestart{}
	_ remediator.Bounded  = SystemRestart{}
)

func (SystemRestart) Name() string { return remediator.RunbookNdbSystemRestart }

// Timeout bounds the job: the longest wait allowed and the checks
// around it.
func (SystemRestart) Timeout() time.Duration { return MaxStartTimeout + 5*time.Minute }

// Prepare checks a manual request: only timeout may be given. There is
// deliberately no initial parameter.
func (rb SystemRestart) Prepare(_, target string, params map[string]string) (map[string]string, string, error) {
	for k := range params {
		if k != ParamTimeout {
			return nil, "", fmt.Errorf("unknown parameter %q (want timeout; a system restart never starts a node --initial: use ndb-data-node-restart with initial=true node by node)", k)
		}
	}
	if target != "" {
		return nil, "", fmt.Errorf("a system restart starts every data node: name no node (got %q)", target)
	}
	if _, err := rb.timeout(params[ParamTimeout]); err != nil {
		return nil, "", err
	}
	return params, "", nil
}

// AgentView is what one data node's agent answered before the start.
type AgentView struct {
	// Err is why the agent could not be asked or did not answer; "" when
	// it answered.
	Err     string `json:"error,omitempty"`
	Kind    string `json:"kind,omitempty"`
	NodeID  int    `json:"ndb_node_id,omitempty"`
	Running bool   `json:"running"`
	Pid     int    `json:"pid,omitempty"`
}

// SystemRestartPlan is the decision: the data nodes to start, by id.
type SystemRestartPlan struct {
	Nodes []int `json:"nodes"`
	// Groups is each node group's data nodes, as get status lists them.
	Groups map[string][]int `json:"node_groups"`
}

// DecideSystemRestart decides from one `get status` reply and every data
// node's agent whether the cluster is down and may be started as a
// whole. It returns an *Abort (the cluster runs: nothing for a system
// restart to do), a NotYet (a node still shutting down) or a *Refusal
// (a fact only a person may settle), each naming the nodes.
func DecideSystemRestart(nodes []ndb.Node, agents map[int]AgentView) (SystemRestartPlan, error) {
	plan := SystemRestartPlan{Groups: map[string][]int{}}
	var running, shutting []string
	for _, n := range nodes {
		if n.Type != ndb.TypeNDB {
			continue
		}
		plan.Nodes = append(plan.Nodes, n.ID)
		switch n.Status {
		case ndb.StatusStarted, ndb.StatusSingleUser, ndb.StatusStarting, ndb.StatusRestarting:
			running = append(running, fmt.Sprintf("node %d is %s", n.ID, describe(n)))
		case ndb.StatusShuttingDown:
			shutting = append(shutting, strconv.Itoa(n.ID))
		}
		if n.NodeGroup != ndb.NoNodeGroup {
			g := strconv.Itoa(n.NodeGroup)
			plan.Groups[g] = append(plan.Groups[g], n.ID)
		}
	}
	sort.Ints(plan.Nodes)
	if len(plan.Nodes) == 0 {
		return plan, remediator.Refused("the management server lists no data node")
	}
	if len(running) > 0 {
		return plan, remediator.Aborted("the cluster is not down (%s): a system restart is only for a cluster whose every data node is down; a node that is down in a running cluster gets a node restart (ndb-data-node-restart)", strings.Join(running, ", "))
	}
	if len(shutting) > 0 {
		return plan, remediator.NotYet("data nodes %s are shutting down: the system restart waits until every data node is down", strings.Join(shutting, ", "))
	}
	var silent, alive, wrong []string
	for _, id := range plan.Nodes {
		v, ok := agents[id]
		switch {
		case !ok:
			silent = append(silent, fmt.Sprintf("node %d: not asked", id))
		case v.Err != "":
			silent = append(silent, fmt.Sprintf("node %d: %s", id, v.Err))
		case v.Kind != agent.KindNdbDataNode || v.NodeID != id:
			wrong = append(wrong, fmt.Sprintf("the agent configured for data node %d runs %q node %d", id, v.Kind, v.NodeID))
		case v.Running:
			alive = append(alive, fmt.Sprintf("%d (pid %d)", id, v.Pid))
		}
	}
	if len(wrong) > 0 {
		return plan, remediator.Refused("%s: fix the appliance's agent mapping (ndb.data_nodes); nothing started", strings.Join(wrong, "; "))
	}
	if len(silent) > 0 {
		return plan, remediator.Refused("the agents of some data nodes do not answer (%s), so whether their processes run is not known: "+
			"started without them, the others would wait StartPartialTimeout and start partially, and were a missing node running apart "+
			"from the management server that would be a partitioned start, NDB's split-brain risk; nothing started. "+
			"A person checks those hosts, then starts the data nodes (or reruns ndb-system-restart once the agents answer)", strings.Join(silent, "; "))
	}
	if len(alive) > 0 {
		return plan, remediator.Refused("the processes of data nodes %s run although the management server sees no data node: "+
			"hung, cut off from the management server, or started outside nines; a system restart must not start the others beside them. "+
			"Nothing started: a person looks at those hosts (ndb_mgm -e SHOW, the nodes' error logs)", strings.Join(alive, ", "))
	}
	return plan, nil
}

// PriorSystemRestart applies the anti-loop rule to jobs for the job
// self of cluster at now: it returns why an automatic system restart is
// not repeated, "" when it may run. An earlier automatic system restart
// that started nodes and did not succeed leaves the incident to a
// person (the manual's advice: read the error logs; --initial only when
// system restarts repeatedly fail); one that succeeded less than backoff
// ago means the cluster fell again soon after. A system restart a
// person started by hand closes both: its own job and later ones run.
func PriorSystemRestart(jobs []*remediator.Job, cluster, self string, now time.Time, backoff time.Duration) string {
	var mine []*remediator.Job
	for _, j := range jobs {
		if j.Cluster == cluster && j.Runbook == remediator.RunbookNdbSystemRestart && !j.DryRun {
			mine = append(mine, j)
		}
	}
	sort.SliceStable(mine, func(a, b int) bool { return mine[a].CreatedAt.Before(mine[b].CreatedAt) })
	why := ""
	for _, j := range mine {
		if j.Trigger.Source == "manual" {
			why = ""
		}
		if j.ID == self {
			if j.Trigger.Source == "manual" {
				return ""
			}
			return why
		}
		if !startedNodes(j) {
			continue
		}
		switch {
		case j.State == remediator.JobSucceeded && !j.EndedAt.IsZero() && now.Sub(j.EndedAt) < backoff:
			why = fmt.Sprintf("job %s brought the cluster back by a system restart %s ago, less than the %s backoff: it fell again, and a cause a restart does not fix needs a person", j.ID, now.Sub(j.EndedAt).Round(time.Second), backoff)
		case j.State == remediator.JobSucceeded:
			why = ""
		case j.State.Done():
			why = fmt.Sprintf("job %s started the data nodes in a system restart that did not succeed (%s): a person reads the nodes' error logs before another attempt", j.ID, j.Reason)
		}
	}
	return why
}

func startedNodes(j *remediator.Job) bool {
	for _, s := range j.Steps {
		if s.Kind == "act" && s.State == remediator.StepDone && strings.HasPrefix(s.Name, "start:node-") {
			return true
		}
	}
	return false
}

func (rb SystemRestart) Run(ctx context.Context, r *remediator.Run) error {
	limit, err := rb.timeout(r.Param(ParamTimeout))
	if err != nil {
		return remediator.Aborted("%v", err)
	}
	mgm, err := rb.Mgm(r.Cluster())
	if err != nil {
		return remediator.Refused("management servers of %s: %v", r.Cluster(), err)
	}
	var plan SystemRestartPlan
	_, resumed := r.DoneStep("start:node-")
	if resumed {
		// A job resumed after a start only finishes the starts and the
		// wait: the checks would now see its own nodes starting.
		if plan, err = rb.planFromStatus(r, mgm); err != nil {
			return err
		}
		if err := r.Logf("resume", "data nodes were started before the interruption; starting the rest and following the start phases"); err != nil {
			return err
		}
	} else {
		if err := rb.limits(r); err != nil {
			return err
		}
		if plan, err = rb.check(ctx, r, mgm, "observe-cluster"); err != nil {
			return err
		}
		// Right before the starts: nothing came back meanwhile.
		if plan, err = rb.check(ctx, r, mgm, "recheck-before-start"); err != nil {
			return err
		}
	}
	agents := map[int]Agent{}
	for _, id := range plan.Nodes {
		ag, err := rb.Agent(r.Cluster(), id)
		if err != nil {
			return remediator.Refused("agent of data node %d: %v", id, err)
		}
		agents[id] = ag
	}
	for _, id := range plan.Nodes {
		ag := agents[id]
		if _, err := remediator.Act(ctx, r, fmt.Sprintf("start:node-%d", id), map[string]any{"node_id": id, "initial": false}, func(ctx context.Context) (agent.StartResult, error) {
			return ag.Start(ctx, agent.StartRequest{Initial: false, Wait: agent.WaitNone})
		}); err != nil {
			return err
		}
	}
	_, err = remediator.Wait(ctx, r, "wait-started", map[string]any{"nodes": plan.Nodes, "timeout": limit.String()}, func(ctx context.Context) (map[string]string, error) {
		return rb.followAll(ctx, r, mgm, agents, plan.Nodes, limit)
	})
	return err
}

// limits refuses while another NDB job of the cluster runs, and an
// automatic job under PriorSystemRestart's rule.
func (rb SystemRestart) limits(r *remediator.Run) error {
	if rb.History == nil {
		return nil
	}
	if err := rb.otherJobs(r); err != nil {
		return err
	}
	jobs, err := rb.History(r.Cluster())
	if err != nil {
		return fmt.Errorf("read the job log: %w", err)
	}
	backoff := rb.Backoff
	if backoff <= 0 {
		backoff = DefaultSystemRestartBackoff
	}
	if why := PriorSystemRestart(jobs, r.Cluster(), r.JobID(), clockOr(rb.Clock).Now(), backoff); why != "" {
		return remediator.Refused("no automatic system restart: %s; a person starts one by hand (nines jobs start --cluster %s --runbook %s) once the cause is known", why, r.Cluster(), remediator.RunbookNdbSystemRestart)
	}
	return nil
}

// check observes the management server and every agent and decides.
// While processes are still ending after the cluster's shutdown it
// observes again, for up to processExitWait.
func (rb SystemRestart) check(ctx context.Context, r *remediator.Run, mgm StatusSource, name string) (SystemRestartPlan, error) {
	clock := clockOr(rb.Clock)
	wait := rb.ExitWait
	if wait <= 0 {
		wait = processExitWait
	}
	deadline := clock.Now().Add(wait)
	for {
		var ns []ndb.Node
		_, err := remediator.Observe(r, name+":get-status", nil, func(ctx context.Context) ([]string, error) {
			var err error
			if ns, err = mgm.GetStatus(ctx); err != nil {
				return nil, remediator.Refused("no management server answers get status (%v), so nothing says that no data node runs: nothing started", err)
			}
			var out []string
			for _, n := range ns {
				if n.Type == ndb.TypeNDB {
					out = append(out, fmt.Sprintf("node %d (group %d): %s", n.ID, n.NodeGroup, describe(n)))
				}
			}
			return out, nil
		})
		if err != nil {
			return SystemRestartPlan{}, err
		}
		views := map[int]AgentView{}
		for _, n := range ns {
			if n.Type == ndb.TypeNDB {
				views[n.ID] = rb.ask(r, n.ID)
			}
		}
		plan, err := remediator.Observe(r, name, views, func(context.Context) (SystemRestartPlan, error) {
			return DecideSystemRestart(ns, views)
		})
		if err == nil || !processesEnding(ns, views) || !clock.Now().Before(deadline) {
			return plan, err
		}
		select {
		case <-ctx.Done():
			return plan, ctx.Err()
		case <-clock.After(rb.poll()):
		}
	}
}

func (rb Access) poll() time.Duration {
	if rb.Poll > 0 {
		return rb.Poll
	}
	return defaultPoll
}

// ask reads one data node's agent; an agent that cannot be reached is
// an answer too (Err), for the decision to weigh.
func (rb SystemRestart) ask(r *remediator.Run, id int) AgentView {
	ag, err := rb.Agent(r.Cluster(), id)
	if err != nil {
		return AgentView{Err: err.Error()}
	}
	st, err := remediator.Observe(r, fmt.Sprintf("agent-status:node-%d", id), nil, func(ctx context.Context) (agent.Status, error) {
		return ag.Status(ctx)
	})
	if err != nil {
		return AgentView{Err: err.Error()}
	}
	return AgentView{Kind: st.Kind, NodeID: st.NdbNodeID, Running: st.Running, Pid: st.Pid}
}

// processesEnding: every data node is down in get status and the only
// objection is a process that still runs, as survivors' processes do
// for a moment after the cluster shut down.
func processesEnding(nodes []ndb.Node, views map[int]AgentView) bool {
	running := false
	for _, n := range nodes {
		if n.Type != ndb.TypeNDB {
			continue
		}
		if n.Status != ndb.StatusNoContact && n.Status != ndb.StatusNotStarted && n.Status != ndb.StatusUnknown {
			return false
		}
		v := views[n.ID]
		if v.Err != "" || v.Kind != agent.KindNdbDataNode || v.NodeID != n.ID {
			return false
		}
		running = running || v.Running
	}
	return running
}

// planFromStatus rebuilds the plan of a resumed job: every data node the
// management server lists.
func (rb SystemRestart) planFromStatus(r *remediator.Run, mgm StatusSource) (SystemRestartPlan, error) {
	return remediator.Observe(r, "resume:get-status", nil, func(ctx context.Context) (SystemRestartPlan, error) {
		ns, err := mgm.GetStatus(ctx)
		if err != nil {
			return SystemRestartPlan{}, err
		}
		plan := SystemRestartPlan{Groups: map[string][]int{}}
		for _, n := range ns {
			if n.Type == ndb.TypeNDB {
				plan.Nodes = append(plan.Nodes, n.ID)
				g := strconv.Itoa(n.NodeGroup)
				plan.Groups[g] = append(plan.Groups[g], n.ID)
			}
		}
		sort.Ints(plan.Nodes)
		return plan, nil
	})
}

// followAll reads get status until every node of ids is STARTED, with a
// nodeWatch per node as follow has for one: each node's status and phase
// changes logged as steps, a failure when a node falls back after it was
// seen starting or its process exits before it connected. It fails when
// limit passes, naming each node not STARTED and where it is.
func (rb SystemRestart) followAll(ctx context.Context, r *remediator.Run, mgm StatusSource, agents map[int]Agent, ids []int, limit time.Duration) (map[string]string, error) {
	clock := clockOr(rb.Clock)
	start := clock.Now()
	deadline := start.Add(limit)
	watches := map[int]*nodeWatch{}
	for _, id := range ids {
		watches[id] = &nodeWatch{id: id, agent: agents[id], what: "the system restart", start: start}
	}
	last := map[int]ndb.Node{}
	lastErr := ""
	for {
		nodes, err := mgm.GetStatus(ctx)
		if err != nil {
			lastErr = err.Error()
		} else {
			lastErr = ""
			done := map[string]string{}
			for _, id := range ids {
				n, ok := find(nodes, id)
				if !ok {
					return nil, fmt.Errorf("the management server no longer lists data node %d", id)
				}
				last[id] = n
				started, err := watches[id].observe(ctx, r, clock, n)
				if err != nil {
					return nil, err
				}
				if started {
					done[strconv.Itoa(id)] = describe(n)
				}
			}
			if len(done) == len(ids) {
				return done, nil
			}
		}
		if !clock.Now().Before(deadline) {
			var behind []string
			for _, id := range ids {
				if n, ok := last[id]; !ok {
					behind = append(behind, fmt.Sprintf("node %d never seen", id))
				} else if n.Status != ndb.StatusStarted && n.Status != ndb.StatusSingleUser {
					behind = append(behind, fmt.Sprintf("node %d %s", id, describe(n)))
				}
			}
			why := strings.Join(behind, ", ")
			if lastErr != "" {
				why += "; last error: " + lastErr
			}
			return nil, fmt.Errorf("system restart: not every data node STARTED after %v (%s); nodes waiting in start phase 1 wait for the nodes still down (a system restart needs one node of every node group)", limit, why)
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-clock.After(rb.poll()):
		}
	}
}
