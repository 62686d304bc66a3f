package ndb

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/nines-project/nines/agent"
	"github.com/nines-project/nines/ndb"
	"github.com/nines-project/nines/remediator"
)

// Bounds of the wait for STARTED (param timeout). A node restart copies
// what changed from its group peer; 5 minutes covers a busy production
// node, the simulator takes seconds.
const (
	DefaultStartTimeout = 5 * time.Minute
	MaxStartTimeout     = 30 * time.Minute
	defaultPoll         = 500 * time.Millisecond
	stopHungGrace       = 30 * time.Second
)

// Parameters of ndb-data-node-restart. All are optional: an alert's
// node_id and node_group labels name the node.
const (
	ParamNodeID    = "node_id"
	ParamNodeGroup = "node_group"
	// ParamInitial "true" starts with --initial: the node's own data is
	// thrown away and reloaded from its group. Only a person sets it.
	ParamInitial = "initial"
	// ParamKillHung "true" stops a process that runs while ndb_mgmd does
	// not see the node, before starting it again.
	ParamKillHung = "kill_hung"
	// ParamTimeout bounds the wait for STARTED (a Go duration).
	ParamTimeout = "timeout"
)

// DataNodeRestart is the ndb-data-node-restart runbook: a data node that
// ndb_mgmd reports down (NO_CONTACT, NOT_STARTED, UNKNOWN) is started
// again, normally, through its host agent, and followed through its
// start phases until STARTED.
//
// Preconditions, observed on the management server before the start:
// the node is not STARTED nor starting (else the job aborts: the
// condition is gone), every other node of its node group is STARTED
// (else refused: a start could not help a lost group, and two starting
// nodes in a group is the risk NDB's own rolling restart avoids), no
// other NDB job of the cluster runs, and the node's process does not run
// (a process that runs but is not connected is hung: a person's call,
// unless kill_hung=true).
type DataNodeRestart struct {
	Access
}

// Access is how the restart runbooks reach an NDB cluster, and their
// waits.
type Access struct {
	// Mgm returns the cluster's management servers, usually Failover
	// over an exporter/ndb Mgm per configured address.
	Mgm func(cluster string) (StatusSource, error)
	// Agent returns the host agent of data node id.
	Agent func(cluster string, id int) (Agent, error)
	// History returns the cluster's jobs (the durable job log): a job's
	// own trigger labels (node_id, node_group of NdbDataNodeDown), the
	// other NDB jobs still running, earlier system restarts. nil: params
	// and target only.
	History func(cluster string) ([]*remediator.Job, error)
	// StartTimeout is the default of param timeout; 0 is
	// DefaultStartTimeout.
	StartTimeout time.Duration
	// Poll is how often `get status` is read while waiting; 0 is 500 ms.
	Poll  time.Duration
	Clock Clock
}

var (
	_ remediator.Runbook  = DataNodeRestart{}
	_ remediator.Preparer = DataNodeRestart{}
	_ remediator.Bounded  = DataNodeRestart{}
)

func (DataNodeRestart) Name() string { return remediator.RunbookNdbDataNodeRestart }

// Timeout bounds the job: the longest wait allowed and the checks
// around it.
func (DataNodeRestart) Timeout() time.Duration { return MaxStartTimeout + 5*time.Minute }

// Prepare checks a manual request: the node is the target or node_id.
func (rb DataNodeRestart) Prepare(_, target string, params map[string]string) (map[string]string, string, error) {
	if params[ParamNodeID] == "" && target != "" {
		params[ParamNodeID] = target
	}
	for k := range params {
		switch k {
		case ParamNodeID, ParamNodeGroup, ParamInitial, ParamKillHung, ParamTimeout:
		default:
			return nil, "", fmt.Errorf("unknown parameter %q (want node_id, node_group, initial, kill_hung, timeout)", k)
		}
	}
	if _, err := nodeID(params[ParamNodeID]); err != nil {
		return nil, "", fmt.Errorf("param node_id: %w", err)
	}
	if g := params[ParamNodeGroup]; g != "" {
		if _, err := strconv.Atoi(g); err != nil {
			return nil, "", fmt.Errorf("param node_group %q: not a number", g)
		}
	}
	for _, k := range []string{ParamInitial, ParamKillHung} {
		if v := params[k]; v != "" && v != "true" && v != "false" {
			return nil, "", fmt.Errorf("param %s %q: want true or false", k, v)
		}
	}
	if _, err := rb.timeout(params[ParamTimeout]); err != nil {
		return nil, "", err
	}
	return params, params[ParamNodeID], nil
}

func nodeID(s string) (int, error) {
	if s == "" {
		return 0, fmt.Errorf("no data node named")
	}
	id, err := strconv.Atoi(strings.TrimPrefix(s, "node-"))
	if err != nil || id < 1 || id > agent.MaxNdbDataNodeID {
		return 0, fmt.Errorf("%q is not a data node id (1 to %d)", s, agent.MaxNdbDataNodeID)
	}
	return id, nil
}

func (rb Access) timeout(s string) (time.Duration, error) {
	if s == "" {
		if rb.StartTimeout > 0 {
			return rb.StartTimeout, nil
		}
		return DefaultStartTimeout, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil || d <= 0 || d > MaxStartTimeout {
		return 0, fmt.Errorf("param timeout %q: want a duration above 0 and at most %s", s, MaxStartTimeout)
	}
	return d, nil
}

// target is what the job was asked about: the node and, from the alert,
// its node group (-1 when not given).
type target struct {
	ID    int `json:"node_id"`
	Group int `json:"node_group"`
}

// resolve finds the node: param node_id, else the alert's node_id label
// (the job's target is then the alert's instance, the ndb_mgmd address),
// else a target that is a node id.
func (rb DataNodeRestart) resolve(r *remediator.Run) (target, error) {
	labels := map[string]string{}
	if rb.History != nil {
		jobs, err := rb.History(r.Cluster())
		if err != nil {
			return target{}, fmt.Errorf("read the job log for the alert's labels: %w", err)
		}
		for _, j := range jobs {
			if j.ID == r.JobID() {
				labels = j.Trigger.Labels
			}
		}
	}
	pick := func(key string) string {
		if v := r.Param(key); v != "" {
			return v
		}
		return labels[key]
	}
	s := pick(ParamNodeID)
	if s == "" {
		s = r.Target()
	}
	id, err := nodeID(s)
	if err != nil {
		return target{}, remediator.Aborted("which data node to restart: %v (give param node_id, or an alert with a node_id label)", err)
	}
	t := target{ID: id, Group: -1}
	if g := pick(ParamNodeGroup); g != "" {
		if t.Group, err = strconv.Atoi(g); err != nil {
			return target{}, remediator.Aborted("node_group %q is not a number", g)
		}
	}
	return t, nil
}

func (rb DataNodeRestart) Run(ctx context.Context, r *remediator.Run) error {
	t, err := rb.resolve(r)
	if err != nil {
		return err
	}
	r.SetTarget(strconv.Itoa(t.ID))
	limit, err := rb.timeout(r.Param(ParamTimeout))
	if err != nil {
		return remediator.Aborted("%v", err)
	}
	mgm, err := rb.Mgm(r.Cluster())
	if err != nil {
		return fmt.Errorf("management servers of %s: %w", r.Cluster(), err)
	}
	ag, err := rb.Agent(r.Cluster(), t.ID)
	if err != nil {
		return fmt.Errorf("agent of data node %d: %w", t.ID, err)
	}
	initial := r.Param(ParamInitial) == "true"
	startStep := fmt.Sprintf("start:node-%d", t.ID)
	// A job resumed after its start only follows the start again: the
	// checks before it would now see the node starting and abort.
	if _, started := r.DoneStep(startStep); !started {
		if err := rb.prepare(ctx, r, mgm, ag, t, initial); err != nil {
			return err
		}
	}
	if _, err := remediator.Act(ctx, r, startStep, map[string]any{"node_id": t.ID, "initial": initial}, func(ctx context.Context) (agent.StartResult, error) {
		return ag.Start(ctx, agent.StartRequest{Initial: initial})
	}); err != nil {
		return err
	}
	_, err = remediator.Wait(ctx, r, fmt.Sprintf("wait-started:node-%d", t.ID), map[string]string{"timeout": limit.String()}, func(ctx context.Context) (ndb.Node, error) {
		return follow(ctx, r, followOpts{mgm: mgm, agent: ag, id: t.ID, limit: limit, poll: rb.Poll, clock: rb.Clock})
	})
	return err
}

// prepare runs the checks before the start, and stops a hung process
// when a person allowed it.
func (rb DataNodeRestart) prepare(ctx context.Context, r *remediator.Run, mgm StatusSource, ag Agent, t target, initial bool) error {
	if initial {
		if err := r.Logf("initial", "a person asked for an initial start: node %d's file system and redo log will be thrown away and reloaded from its node group", t.ID); err != nil {
			return err
		}
	}
	if _, err := rb.observe(r, "observe-cluster", mgm, t); err != nil {
		return err
	}
	if err := rb.otherJobs(r); err != nil {
		return err
	}
	st, err := remediator.Observe(r, fmt.Sprintf("agent-status:node-%d", t.ID), nil, func(ctx context.Context) (agent.Status, error) {
		st, err := ag.Status(ctx)
		if err != nil {
			return st, fmt.Errorf("the agent of data node %d does not answer: %w", t.ID, err)
		}
		if st.Kind != agent.KindNdbDataNode || st.NdbNodeID != t.ID {
			return st, remediator.Refused("the agent configured for data node %d runs %q node %d: fix the appliance's agent mapping", t.ID, st.Kind, st.NdbNodeID)
		}
		return st, nil
	})
	if err != nil {
		return err
	}
	if st.Running {
		if r.Param(ParamKillHung) != "true" {
			return remediator.Refused("data node %d's process runs (pid %d) but the management server does not see the node started: it may be hung, or wait for START after RESTART -n (ndb_mgm -e '%d START'); a person decides, or reruns this with kill_hung=true to stop it and start it again",
				t.ID, st.Pid, t.ID)
		}
		if _, err := remediator.Act(ctx, r, fmt.Sprintf("stop-hung:node-%d", t.ID), map[string]any{"node_id": t.ID, "pid": st.Pid}, func(ctx context.Context) (agent.StopResult, error) {
			return ag.Stop(ctx, agent.StopRequest{GraceSeconds: int(stopHungGrace.Seconds())})
		}); err != nil {
			return err
		}
	}
	// Right before the start: the cluster may have moved on.
	_, err = rb.observe(r, "recheck-before-start", mgm, t)
	return err
}

// observation is what the checks saw of the node and its group.
type observation struct {
	Node  string            `json:"node"`
	Group int               `json:"node_group"`
	Peers map[string]string `json:"peers"`
}

// observe reads `get status` and decides whether the node may start.
func (rb DataNodeRestart) observe(r *remediator.Run, name string, mgm StatusSource, t target) (observation, error) {
	return remediator.Observe(r, name, t, func(ctx context.Context) (observation, error) {
		nodes, err := mgm.GetStatus(ctx)
		if err != nil {
			return observation{}, err
		}
		n, ok := find(nodes, t.ID)
		if !ok {
			return observation{}, remediator.Aborted("the management server lists no data node %d", t.ID)
		}
		obs := observation{Node: describe(n), Group: t.Group, Peers: map[string]string{}}
		switch n.Status {
		case ndb.StatusStarted, ndb.StatusSingleUser:
			return obs, remediator.Aborted("data node %d is %s again: nothing to do", t.ID, n.Status)
		case ndb.StatusStarting, ndb.StatusRestarting:
			return obs, remediator.Aborted("data node %d is %s: a start is under way (NdbNodeRestartingTooLong watches it)", t.ID, describe(n))
		case ndb.StatusShuttingDown:
			return obs, remediator.NotYet("data node %d is shutting down: start it once it is down", t.ID)
		}
		if obs.Group < 0 {
			obs.Group = n.NodeGroup
		}
		if obs.Group < 0 || obs.Group == ndb.NoNodeGroup {
			return obs, remediator.Refused("data node %d's node group is not known (get status gives %d for a node not connected): not started; give param node_group", t.ID, n.NodeGroup)
		}
		var down []string
		for _, p := range nodes {
			if p.Type != ndb.TypeNDB || p.ID == t.ID || p.NodeGroup != obs.Group {
				continue
			}
			obs.Peers[strconv.Itoa(p.ID)] = describe(p)
			if !p.Status.Up(ndb.TypeNDB) {
				down = append(down, fmt.Sprintf("node %d is %s", p.ID, describe(p)))
			}
		}
		if len(down) > 0 {
			why := "a start could not help a group without a serving node, and a second node starting in a group is a risk a person must take"
			if clusterDown(nodes) {
				// Every data node is down: one node's start would only wait
				// in phase 1 for the others.
				why = "no data node of the cluster runs, so this is a system restart, the runbook " + remediator.RunbookNdbSystemRestart + " (NdbNodeGroupLost), which starts them all"
			}
			return obs, remediator.Refused("node group %d of data node %d is not otherwise STARTED (%s): %s; not started",
				obs.Group, t.ID, strings.Join(down, ", "), why)
		}
		return obs, nil
	})
}

// clusterDown: no data node is STARTED, starting or shutting down.
func clusterDown(nodes []ndb.Node) bool {
	for _, n := range nodes {
		if n.Type == ndb.TypeNDB && (n.Status.Up(ndb.TypeNDB) || n.Status == ndb.StatusStarting || n.Status == ndb.StatusRestarting || n.Status == ndb.StatusShuttingDown) {
			return false
		}
	}
	return true
}

// otherJobs refuses while another NDB job of the cluster runs (an
// interrupted one adopted after an appliance restart).
func (rb Access) otherJobs(r *remediator.Run) error {
	if rb.History == nil {
		return nil
	}
	jobs, err := rb.History(r.Cluster())
	if err != nil {
		return fmt.Errorf("read the job log: %w", err)
	}
	for _, j := range jobs {
		if j.ID != r.JobID() && j.Cluster == r.Cluster() && j.State == remediator.JobRunning && strings.HasPrefix(j.Runbook, "ndb-") {
			return remediator.Refused("job %s (%s on node %s) still runs: one NDB restart at a time", j.ID, j.Runbook, j.Target)
		}
	}
	return nil
}

// followOpts says what follow waits for.
type followOpts struct {
	mgm StatusSource
	// agent, when set, is asked whether the process still runs while
	// the node is not connected.
	agent Agent
	id    int
	limit time.Duration
	poll  time.Duration
	clock Clock
	// before, when set, is the node as it was before a RESTART command:
	// STARTED counts only once it is another incarnation (a new dynamic
	// id, or seen down in between), since ndb_mgmd may still show the
	// old one STARTED for a moment after the command.
	before *ndb.Node
}

// nodeWatch is one data node followed through its start phases, by
// follow and by the system restart's followAll alike: each status and
// phase change logged as a step, done once the node is STARTED, failed
// when it falls back after starting or its process exits unconnected.
type nodeWatch struct {
	id     int
	agent  Agent     // optional: asked whether the process still runs
	before *ndb.Node // see followOpts.before
	// what names the start in a failure ("its start", "the system
	// restart").
	what                   string
	start                  time.Time
	lastSeen               string
	seenStarting, seenDown bool
}

// observe takes the node's latest status: done once it is STARTED (and,
// with before, another incarnation), an error when its start failed.
func (w *nodeWatch) observe(ctx context.Context, r *remediator.Run, clock Clock, n ndb.Node) (bool, error) {
	if seen := fmt.Sprintf("%s-%d", n.Status, n.StartPhase); seen != w.lastSeen {
		w.lastSeen = seen
		took := clock.Now().Sub(w.start).Round(time.Millisecond)
		if err := r.Logf(fmt.Sprintf("phase:node-%d:%s", w.id, seen), "data node %d is %s after %v", w.id, describe(n), took); err != nil {
			return false, err
		}
	}
	switch n.Status {
	case ndb.StatusStarted, ndb.StatusSingleUser:
		return w.before == nil || w.seenDown || n.DynamicID != w.before.DynamicID, nil
	case ndb.StatusStarting, ndb.StatusRestarting:
		w.seenStarting, w.seenDown = true, true
	case ndb.StatusNotStarted, ndb.StatusNoContact:
		w.seenDown = true
		if w.seenStarting {
			return false, fmt.Errorf("data node %d fell back to %s after starting: %s failed; read its error log (ndb_%d_error.log) before another attempt", w.id, n.Status, w.what, w.id)
		}
		if n.Status == ndb.StatusNoContact && w.agent != nil {
			// Not connected yet: make sure the process still runs.
			if st, err := w.agent.Status(ctx); err == nil && !st.Running {
				exit := "no exit recorded"
				if st.LastExit != nil {
					exit = st.LastExit.Status
				}
				return false, fmt.Errorf("data node %d's process exited before it connected (%s); read its log on the host", w.id, exit)
			}
		}
	}
	return false, nil
}

// follow reads `get status` until the node is STARTED, logging each
// status and phase change as a step. It fails when limit passes, when
// the node falls back to NOT_STARTED or NO_CONTACT after it was seen
// starting, and when its process exits before it connected.
func follow(ctx context.Context, r *remediator.Run, o followOpts) (ndb.Node, error) {
	clock := clockOr(o.clock)
	poll := o.poll
	if poll <= 0 {
		poll = defaultPoll
	}
	id := o.id
	w := &nodeWatch{id: id, agent: o.agent, before: o.before, what: "its start", start: clock.Now()}
	deadline := w.start.Add(o.limit)
	var last ndb.Node
	lastErr := ""
	for {
		nodes, err := o.mgm.GetStatus(ctx)
		n, ok := find(nodes, id)
		switch {
		case err != nil:
			lastErr = err.Error()
		case !ok:
			return last, fmt.Errorf("the management server no longer lists data node %d", id)
		default:
			last = n
			done, err := w.observe(ctx, r, clock, n)
			if err != nil || done {
				return n, err
			}
		}
		if !clock.Now().Before(deadline) {
			why := "last seen " + describe(last)
			if last.Status == ndb.StatusNotStarted {
				why += ": it waits for START (was its command given --nostart?)"
			}
			if lastErr != "" {
				why += "; last error: " + lastErr
			}
			return last, fmt.Errorf("data node %d not STARTED after %v (%s)", id, o.limit, why)
		}
		select {
		case <-ctx.Done():
			return last, ctx.Err()
		case <-clock.After(poll):
		}
	}
}
