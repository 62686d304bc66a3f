package galera

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/nines-project/nines/galera"
	"github.com/nines-project/nines/remediator"
)

// QuorumRecovery is the galera-quorum-recovery runbook: a cluster with no
// Primary component (lost quorum, or every node crashed) is bootstrapped
// again from its most advanced node, and the other nodes rejoin one at a
// time.
//
// Safety (DESIGN.md, rule 3): the choice is galera.Decide's, over every
// configured node (one that cannot be read may be Primary). The runbook
// observes and decides again while the decision is to wait for nodes that
// do not answer, re-checks that no node is Primary right before the
// bootstrap, and fails (which pages) when the decision is to refuse.
type QuorumRecovery struct {
	Nodes       Cluster
	SyncTimeout time.Duration // per node; default 2 m
	// PositionWait is how long a cluster's recovery waits for nodes that
	// do not answer before it decides without them; nil or 0: 2 m.
	PositionWait func(cluster string) time.Duration
	// History lists the cluster's jobs from the durable job log, for the
	// one-bootstrap-per-incident rule (priorBootstrap). nil: no history.
	History func(cluster string) ([]*remediator.Job, error)
	Clock   Clock // nil: the real clock
}

var _ remediator.Runbook = QuorumRecovery{}

func (QuorumRecovery) Name() string { return remediator.RunbookGaleraQuorumRecovery }

// DefaultPositionWait is remediation.position_wait's default.
const DefaultPositionWait = 2 * time.Minute

// decidePoll is how often a waiting recovery observes and decides again.
const decidePoll = 5 * time.Second

// VantagePoint is implemented by nodes whose host can say how many
// Galera ports of its cluster address it reaches (the agent's
// /v1/peers). A quorum recovery asks every readable node while some node
// does not answer: a missing node whose Galera port is reached runs.
type VantagePoint interface {
	Vantage(ctx context.Context) galera.Vantage
}

// BootstrapClearer is implemented by nodes that can set grastate's
// safe_to_bootstrap back to 0 once a bootstrap start failed, so that no
// later plain start of that node forms a Primary component by itself.
type BootstrapClearer interface {
	ClearBootstrapFields(ctx context.Context) error
}

func (rb QuorumRecovery) Run(ctx context.Context, r *remediator.Run) error {
	nodes, err := rb.Nodes(r.Cluster())
	if err != nil {
		return err
	}
	limit := rb.SyncTimeout
	if limit <= 0 {
		limit = 2 * time.Minute
	}
	// A job resumed after its bootstrap went through must not check for
	// "no Primary" again: the Primary is its own doing. It goes on with the
	// other nodes.
	var chosen Node
	if name, done := r.DoneStep("bootstrap:"); done {
		if chosen, err = find(nodes, strings.TrimPrefix(name, "bootstrap:")); err != nil {
			return err
		}
		if err := r.Logf("resume", "bootstrap of %s was done before the interruption; continuing with the other nodes", chosen.Name()); err != nil {
			return err
		}
	} else {
		if chosen, err = rb.bootstrap(ctx, r, nodes, limit); err != nil || chosen == nil {
			return err
		}
	}

	// The position the new history starts from: a stopped node past it
	// holds transactions the bootstrap gave up (an admin's force_node, or
	// nodes that answered only after the decision) and is not started.
	fork, ok := bootstrapPosition(r, chosen)
	if !ok {
		return fmt.Errorf("the bootstrap step of %s has no readable position in the job log", chosen.Name())
	}
	var refused []string

	// The others, one at a time: running ones join the new component by
	// themselves; stopped ones start at their recovered position (IST).
	for _, n := range nodes {
		if n == chosen {
			continue
		}
		st, err := remediator.Observe(r, "observe:"+n.Name(), nil, func(ctx context.Context) (NodeState, error) { return n.State(ctx), nil })
		if err != nil {
			return err
		}
		switch {
		case !st.Reachable:
			if err := r.Logf("skip:"+n.Name(), "the agent of %s does not answer (%s): left for its own rejoin", n.Name(), st.Error); err != nil {
				return err
			}
			continue
		case st.Running && !st.Primary():
			// It runs, so it joins by itself once it reaches the new
			// component; if it does not soon, it is cut off from it (a
			// partition), and the job must not block its own retries
			// and the other nodes' alerts until the sync limit.
			joined, err := remediator.Observe(r, "join-running:"+n.Name(), map[string]string{"limit": runningJoinLimit.String()}, func(ctx context.Context) (bool, error) {
				return waitMember(ctx, clockOr(rb.Clock), n, runningJoinLimit), nil
			})
			if err != nil {
				return err
			}
			if !joined {
				if err := r.Logf("skip:"+n.Name(), "%s runs but did not join the Primary component of %s within %s (cut off from it?): left for its own alert", n.Name(), chosen.Name(), runningJoinLimit); err != nil {
					return err
				}
				continue
			}
		case !st.Running:
			// Named apart from the candidates' positions: this one is
			// read after the bootstrap, right before the node's start.
			pos, err := remediator.Act(ctx, r, "rejoin-position:"+n.Name(), map[string]string{"node": n.Name()}, func(ctx context.Context) (galera.Position, error) {
				return n.Recover(ctx)
			})
			if err != nil {
				return err
			}
			if why := pastFork(pos, fork); why != "" {
				if err := r.Logf("refuse:"+n.Name(), "%s recovered %s, %s the bootstrap position %s of %s: not started, a state transfer would overwrite what only it holds", n.Name(), pos, why, fork, chosen.Name()); err != nil {
					return err
				}
				refused = append(refused, fmt.Sprintf("%s at %s", n.Name(), pos))
				continue
			}
			if _, err := remediator.Act(ctx, r, "start:"+n.Name(), map[string]string{"node": n.Name(), "position": pos.String()}, func(ctx context.Context) (string, error) {
				if st := n.State(ctx); st.Running {
					return "already running", nil
				}
				return "started", n.Start(ctx, pos, false)
			}); err != nil {
				return err
			}
		}
		if _, err := remediator.Wait(ctx, r, "wait-synced:"+n.Name(), nil, func(ctx context.Context) (NodeState, error) {
			return waitSynced(ctx, clockOr(rb.Clock), n, nodes, limit)
		}); err != nil {
			return err
		}
	}
	if len(refused) > 0 {
		return remediator.Refused("%s bootstrapped at %s; not started, holding transactions past it: %s; a person must decide", chosen.Name(), fork, strings.Join(refused, ", "))
	}
	return nil
}

// bootstrapPosition reads the position of this job's done bootstrap step.
func bootstrapPosition(r *remediator.Run, chosen Node) (galera.Position, bool) {
	var in struct{ Position string }
	if err := json.Unmarshal(r.StepInput("bootstrap:"+chosen.Name()), &in); err != nil {
		return galera.Position{}, false
	}
	pos, err := galera.ParsePosition(in.Position)
	return pos, err == nil
}

// pastFork says how pos is not a prefix of the history that starts at
// fork ("" when it is: behind or equal on the same history, or a fresh
// datadir).
func pastFork(pos, fork galera.Position) string {
	switch {
	case pos.Undefined():
		return ""
	case pos.UUID != fork.UUID:
		return "of another history than"
	case !pos.Known():
		return "with no committed seqno, perhaps past"
	case pos.Seqno > fork.Seqno:
		return fmt.Sprintf("%d transactions past", pos.Seqno-fork.Seqno)
	}
	return ""
}

// bootstrap decides which node to bootstrap, waiting while the decision
// is to wait, and forms a Primary component on it. It returns nil (and no
// error) in a dry run, after recording the plan.
func (rb QuorumRecovery) bootstrap(ctx context.Context, r *remediator.Run, nodes []Node, limit time.Duration) (Node, error) {
	clock := clockOr(rb.Clock)
	prior, err := rb.priorBootstrap(r)
	if err != nil {
		return nil, err
	}
	var d galera.Decision
	for {
		var in galera.DecideInput
		if d, in, err = rb.decide(ctx, r, clock, nodes, prior); err != nil || d.Action != galera.ActBootstrap {
			return nil, err
		}
		// Re-observe right before the irreversible step: still no Primary,
		// and no node the decision did without has come back (it may be
		// the most advanced); if one has, decide again.
		states, err := rb.noPrimary(r, clock, nodes, "recheck-before-bootstrap")
		if err != nil {
			return nil, err
		}
		back := returned(in.Nodes, states)
		if back == "" {
			break
		}
		if err := r.Logf("decide-again", "%s answers again since the decision: deciding again", back); err != nil {
			return nil, err
		}
	}
	for i, w := range d.Warnings {
		if err := r.Logf(fmt.Sprintf("warning:%d", i+1), "%s", w); err != nil {
			return nil, err
		}
	}
	chosen, err := find(nodes, d.Node)
	if err != nil {
		return nil, err
	}
	if _, err := remediator.Act(ctx, r, "bootstrap:"+chosen.Name(), map[string]string{"node": chosen.Name(), "position": d.Position.String()}, func(ctx context.Context) (string, error) {
		return bootstrapNode(ctx, chosen, d.Position)
	}); err != nil {
		return nil, err
	}
	if _, err := remediator.Wait(ctx, r, "wait-synced:"+chosen.Name(), nil, func(ctx context.Context) (NodeState, error) {
		return waitBootstrapped(ctx, clock, chosen, nodes, limit)
	}); err != nil {
		return nil, errors.Join(err, clearAfterFailedStart(ctx, r, chosen))
	}
	return chosen, nil
}

// returned names the nodes unreadable at the decision that answer now.
func returned(decided []galera.Observed, now []NodeState) string {
	var back []string
	for i, s := range now {
		if i < len(decided) && s.Reachable && !decided[i].Reachable {
			back = append(back, s.Name)
		}
	}
	return strings.Join(back, ", ")
}

// decide observes the cluster and asks galera.Decide until the decision
// is no longer to wait. The wait counts from this run's first look, also
// after a resume, so a restart never shortens it. The decision, with
// every node's observed state as its input, is the "decide" step.
func (rb QuorumRecovery) decide(ctx context.Context, r *remediator.Run, clock Clock, nodes []Node, prior string) (galera.Decision, galera.DecideInput, error) {
	began := clock.Now()
	wait := DefaultPositionWait
	if rb.PositionWait != nil && rb.PositionWait(r.Cluster()) > 0 {
		wait = rb.PositionWait(r.Cluster())
	}
	for {
		states, err := remediator.Observe(r, "observe-cluster", nil, func(ctx context.Context) ([]NodeState, error) {
			return observeSettled(ctx, clock, nodes, settleLimit), nil
		})
		if err != nil {
			return galera.Decision{}, galera.DecideInput{}, err
		}
		// A Primary ends the job before any recovery is run.
		for _, s := range states {
			if s.Primary() {
				return galera.Decision{}, galera.DecideInput{}, remediator.Aborted("%s is Primary (%s): the cluster has a Primary component, nothing to recover", s.Name, describe(s))
			}
		}
		if r.DryRun() {
			return galera.Decision{}, galera.DecideInput{}, r.Logf("plan", "would recover the position of every stopped node, then bootstrap only if %s (waiting up to %s for nodes that do not answer), then start the others one at a time", decideRule, wait)
		}
		in := galera.DecideInput{Waited: clock.Now().Sub(began), PositionWait: wait, Force: r.Force(), PriorBootstrap: prior}
		for i, s := range states {
			o, err := rb.observed(ctx, r, nodes[i], s)
			if err != nil {
				return galera.Decision{}, galera.DecideInput{}, err
			}
			in.Nodes = append(in.Nodes, o)
		}
		askVantagePoints(ctx, nodes, in.Nodes)
		d := galera.Decide(in)
		if _, err := remediator.Observe(r, "decide", in, func(context.Context) (galera.Decision, error) { return d, nil }); err != nil {
			return d, in, err
		}
		switch d.Action {
		case galera.ActNone:
			return d, in, remediator.Aborted("%s", d.Reason)
		case galera.ActRefuse:
			return d, in, fmt.Errorf("refusing to bootstrap: %s (an admin may start a job by hand with force_node)", d.Reason)
		case galera.ActBootstrap:
			return d, in, nil
		}
		select {
		case <-ctx.Done():
			return d, in, ctx.Err()
		case <-clock.After(decidePoll):
		}
	}
}

// askVantagePoints fills in each readable node's vantage when some node
// did not answer.
func askVantagePoints(ctx context.Context, nodes []Node, obs []galera.Observed) {
	missing := false
	for _, o := range obs {
		missing = missing || !o.Reachable
	}
	if !missing {
		return
	}
	for i, n := range nodes {
		if vp, ok := n.(VantagePoint); ok && obs[i].Reachable {
			v := vp.Vantage(ctx)
			obs[i].Vantage = &v
		}
	}
}

// decideRule is the bootstrap rule in words, for the dry-run plan.
const decideRule = "every node answered, none is Primary and the chosen node holds the highest position, or, after the wait, the nodes that answered are a majority of the configured nodes and of the last Primary view"

// observed is what the decision needs of one node: its state and, for a
// readable stopped node, the position --wsrep-recover finds (once per
// job: a stopped node's position does not move). A failed recovery is
// recorded, not fatal: the decision refuses with it as the reason.
func (rb QuorumRecovery) observed(ctx context.Context, r *remediator.Run, n Node, s NodeState) (galera.Observed, error) {
	o := galera.Observed{Name: n.Name(), Reachable: s.Reachable, Running: s.Running, Error: s.Error, Wsrep: s.Wsrep, Grastate: s.Grastate, Gvwstate: s.Gvwstate}
	if !s.Reachable || s.Running {
		return o, nil
	}
	rec, err := remediator.Act(ctx, r, "candidate-position:"+n.Name(), map[string]string{"node": n.Name()}, func(ctx context.Context) (recovered, error) {
		p, err := n.Recover(ctx)
		if err != nil {
			return recovered{Error: err.Error()}, nil
		}
		return recovered{Position: &p}, nil
	})
	o.Recovered, o.RecoverError = rec.Position, rec.Error
	return o, err
}

// recovered is a candidate-position step's output.
type recovered struct {
	Position *galera.Position `json:"position,omitempty"`
	Error    string           `json:"error,omitempty"`
}

// noPrimary observes the settled cluster and aborts if a node is Primary.
func (rb QuorumRecovery) noPrimary(r *remediator.Run, clock Clock, nodes []Node, name string) ([]NodeState, error) {
	return remediator.Observe(r, name, nil, func(ctx context.Context) ([]NodeState, error) {
		states := observeSettled(ctx, clock, nodes, settleLimit)
		for _, s := range states {
			if s.Primary() {
				return states, remediator.Aborted("%s is Primary (%s): the cluster has a Primary component, nothing to recover", s.Name, describe(s))
			}
		}
		return states, nil
	})
}

// bootstrapNode forms a Primary component on n at pos: pc.bootstrap on a
// running node, else grastate's bootstrap fields and --wsrep-new-cluster.
// When that start fails, safe_to_bootstrap is set back to 0.
func bootstrapNode(ctx context.Context, n Node, pos galera.Position) (string, error) {
	if st := n.State(ctx); st.Running {
		return "pc.bootstrap on the running node", n.PCBootstrap(ctx)
	}
	if err := n.SetBootstrapFields(ctx, pos); err != nil {
		return "", err
	}
	if err := n.Start(ctx, pos, true); err != nil {
		if c, ok := n.(BootstrapClearer); ok {
			err = errors.Join(err, c.ClearBootstrapFields(ctx))
		}
		return "", err
	}
	return "grastate safe_to_bootstrap + --wsrep-new-cluster", nil
}

// clearAfterFailedStart sets safe_to_bootstrap back to 0 on a bootstrapped
// node that stopped before it was Synced.
func clearAfterFailedStart(ctx context.Context, r *remediator.Run, n Node) error {
	c, ok := n.(BootstrapClearer)
	if !ok {
		return nil
	}
	if st := n.State(ctx); !st.Reachable || st.Running {
		return nil
	}
	_, err := remediator.Act(ctx, r, "clear-safe-to-bootstrap:"+n.Name(), map[string]string{"node": n.Name()}, func(ctx context.Context) (string, error) {
		return "safe_to_bootstrap: 0", c.ClearBootstrapFields(ctx)
	})
	return err
}
