package galera

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/nines-project/nines"
	"github.com/nines-project/nines/galera"
	"github.com/nines-project/nines/remediator"
)

// Restartable is a Galera node a planned restart stops and describes.
// The appliance's agent nodes are; a node without an agent is not.
type Restartable interface {
	Node
	// Stop stops the running server gracefully, so it saves its seqno
	// and can rejoin by IST.
	Stop(ctx context.Context) error
	// Info reads the running server's pid, version, uptime and how it
	// last joined.
	Info(ctx context.Context) (ServerInfo, error)
}

// ServerInfo is what the job log records of a node before and after its
// restart.
type ServerInfo struct {
	Pid           int    `json:"pid"`
	Version       string `json:"version"`
	UptimeSeconds int64  `json:"uptime_seconds"`
	// StateTransfer is galera.TransferIST or galera.TransferSST, from
	// the node's error log since its start; "" when unknown.
	StateTransfer     string `json:"state_transfer,omitempty"`
	StateTransferLine string `json:"state_transfer_line,omitempty"`
}

// Writer is a cluster's HAProxy writer backend, as the rolling restart
// moves writes off the node it is about to stop.
type Writer interface {
	// Current names the node the writer sends writes to; "" when none.
	Current(ctx context.Context) (string, error)
	// Fence takes node out of the writer pool and closes its sessions,
	// so clients reconnect to the next writer before the stop, not after
	// HAProxy's checks noticed it.
	Fence(ctx context.Context, node string) error
	// Release hands node back to the health checks.
	Release(ctx context.Context, node string) error
}

// Stall is the probe's write stall over one node's restart, as the
// store has it.
type Stall struct {
	// BadSeconds are SLI seconds in which no probe write committed.
	BadSeconds float64 `json:"bad_seconds"`
	// FailedWrites are probe writes that failed.
	FailedWrites float64 `json:"failed_writes"`
}

// RollingRestart is the galera-rolling-restart runbook, run by hand to
// roll out a config change or a minor upgrade: one node at a time, a
// graceful stop and a start at its recovered position, each back Synced,
// by IST, before the next.
//
// It refuses (the job fails and says why) when the cluster is degraded,
// at the start and again before each node: every configured node must be
// Synced in one Primary component of all of them. Before a node is
// stopped the cluster must have no state transfer in progress, so a
// node serving one as donor is never stopped (a joiner would lose its
// donor). The nodes HAProxy's writer does not send to go first, the
// writer's last, so writes move once. A node that rejoined by SST, not
// IST, ends the job: its gcache was too small for the time it was down,
// and the next would cost another full copy; the job log says so.
//
// Each node's job log records its version, uptime and pid before and
// after, IST or SST, and the probe's write stall over its restart.
type RollingRestart struct {
	Nodes Cluster
	// Writer is the cluster's HAProxy writer backend; nil (or a nil
	// func) when it has none: the configured order, nothing fenced.
	Writer func(cluster string) Writer
	// Stall reads the probe's write stall of cluster in [from, to) from
	// the store; nil: not recorded.
	Stall func(ctx context.Context, cluster string, from, to time.Time) (Stall, error)
	// SyncTimeout bounds each node's wait for Synced; default 2 m.
	SyncTimeout time.Duration
	// HealthyWait bounds the wait for a healthy cluster before each node
	// (a donor back to Synced after the previous IST); default 30 s.
	HealthyWait time.Duration
	Clock       Clock
}

var (
	_ remediator.Runbook = RollingRestart{}
	_ remediator.Bounded = RollingRestart{}
)

func (RollingRestart) Name() string { return remediator.RunbookGaleraRollingRestart }

// Timeout bounds the job: dozens of nodes at the per-node bound.
func (RollingRestart) Timeout() time.Duration { return 2 * time.Hour }

func (rb RollingRestart) Run(ctx context.Context, r *remediator.Run) error {
	all, err := rb.Nodes(r.Cluster())
	if err != nil {
		return err
	}
	nodes := make([]Restartable, 0, len(all))
	for _, n := range all {
		rn, ok := n.(Restartable)
		if !ok {
			return remediator.Refused("%s has no agent: nines cannot restart it, and a rolling restart restarts every node", n.Name())
		}
		nodes = append(nodes, rn)
	}
	if len(nodes) < 2 {
		return remediator.Refused("a rolling restart of a single node is an outage: restart it by hand in a maintenance window")
	}
	// A resumed job keeps the order it recorded as the plan step's input,
	// and skips the first health check: a node it stopped may be down.
	// HAProxy may name another writer by then, and the node fenced as
	// the writer must still be released. Before each further node the
	// cluster is checked as usual.
	var order plan
	if raw := r.StepInput("plan"); raw != nil {
		if err := json.Unmarshal(raw, &order); err != nil {
			return fmt.Errorf("read the order recorded before the restart: %w", err)
		}
	} else {
		if _, err := remediator.Observe(r, "observe-cluster", nil, func(ctx context.Context) ([]NodeState, error) {
			return rb.waitRestartable(ctx, all, "")
		}); err != nil {
			return err
		}
		if order, err = remediator.Observe(r, "order", nil, func(ctx context.Context) (plan, error) {
			return rb.order(ctx, r.Cluster(), all), nil
		}); err != nil {
			return err
		}
		if _, err := remediator.Observe(r, "plan", order, func(context.Context) (string, error) {
			return "restart " + strings.Join(order.Order, ", ") + " in this order", nil
		}); err != nil {
			return err
		}
	}
	limit := rb.SyncTimeout
	if limit <= 0 {
		limit = 2 * time.Minute
	}
	for _, name := range order.Order {
		if done(r, "restarted:"+name) {
			continue
		}
		n := nodes[indexOf(all, name)]
		var w Writer
		if name == order.Writer {
			w = rb.writer(r.Cluster())
		}
		if err := rb.restartOne(ctx, r, all, n, w, limit); err != nil {
			return err
		}
	}
	_, err = remediator.Observe(r, "check-cluster", nil, func(ctx context.Context) ([]NodeState, error) {
		states := observeSettled(ctx, clockOr(rb.Clock), all, settleLimit)
		return states, degraded(states)
	})
	return err
}

// order restarts the nodes HAProxy's writer does not use first, in the
// configured order, and the writer's last.
func (rb RollingRestart) order(ctx context.Context, cluster string, all []Node) plan {
	w := rb.writer(cluster)
	if w == nil {
		return plan{Order: restartOrder(names(all), "")}
	}
	writer, err := w.Current(ctx)
	if err != nil {
		// Unknown: the configured order, and the job log says why.
		return plan{Order: restartOrder(names(all), ""), WriterError: err.Error()}
	}
	return plan{Order: restartOrder(names(all), writer), Writer: writer}
}

// plan is the order the nodes restart in, and why.
type plan struct {
	Order       []string `json:"order"`
	Writer      string   `json:"writer,omitempty"`
	WriterError string   `json:"writer_error,omitempty"`
}

func (rb RollingRestart) writer(cluster string) Writer {
	if rb.Writer == nil {
		return nil
	}
	return rb.Writer(cluster)
}

// restartOne restarts n; w is set when n is HAProxy's writer.
func (rb RollingRestart) restartOne(ctx context.Context, r *remediator.Run, all []Node, n Restartable, w Writer, limit time.Duration) (err error) {
	name := n.Name()
	stop := "stop:" + name
	var before ServerInfo
	began := clockOr(rb.Clock).Now()
	if !done(r, stop) {
		if _, err := remediator.Observe(r, "check-before:"+name, nil, func(ctx context.Context) ([]NodeState, error) {
			return rb.waitRestartable(ctx, all, name)
		}); err != nil {
			return err
		}
		info, err := remediator.Observe(r, "before:"+name, nil, func(ctx context.Context) (ServerInfo, error) {
			return n.Info(ctx)
		})
		if err != nil {
			return err
		}
		before = info
	} else {
		// Resumed after the stop: its input kept the old pid.
		var in struct {
			Pid int `json:"pid"`
		}
		_ = json.Unmarshal(r.StepInput(stop), &in)
		before.Pid = in.Pid
	}
	if w != nil {
		if _, err := remediator.Act(ctx, r, "fence-writer:"+name, map[string]string{"node": name}, func(ctx context.Context) (string, error) {
			return "out of the writer pool, sessions closed", w.Fence(ctx, name)
		}); err != nil {
			return err
		}
		defer func() {
			// Hand it back to the checks whatever happened: fenced, it
			// would never take writes again.
			if _, rerr := remediator.Act(ctx, r, "release-writer:"+name, map[string]string{"node": name}, func(ctx context.Context) (string, error) {
				return "handed back to HAProxy's checks", w.Release(ctx, name)
			}); rerr != nil && err == nil {
				err = rerr
			}
		}()
	}
	if _, err := remediator.Act(ctx, r, stop, map[string]any{"node": name, "pid": before.Pid}, func(ctx context.Context) (string, error) {
		return "stopped", n.Stop(ctx)
	}); err != nil {
		return err
	}
	pos, err := remediator.Act(ctx, r, "recover-position:"+name, map[string]string{"node": name}, func(ctx context.Context) (galera.Position, error) {
		return n.Recover(ctx)
	})
	if err != nil {
		return err
	}
	if _, err := remediator.Act(ctx, r, "start:"+name, map[string]string{"node": name, "position": pos.String()}, func(ctx context.Context) (string, error) {
		if st := n.State(ctx); st.Running {
			return "already running", nil // an interrupted earlier attempt got this far
		}
		return "started", n.Start(ctx, pos, false)
	}); err != nil {
		return err
	}
	if _, err := remediator.Wait(ctx, r, "wait-synced:"+name, map[string]string{"timeout": limit.String()}, func(ctx context.Context) (NodeState, error) {
		return waitSynced(ctx, clockOr(rb.Clock), n, all, limit)
	}); err != nil {
		return err
	}
	if r.DryRun() {
		return r.Logf("restarted:"+name, "dry run: %s would be stopped, started at its recovered position and waited for until Synced", name)
	}
	after, err := remediator.Observe(r, "after:"+name, map[string]any{"pid_before": before.Pid}, func(ctx context.Context) (ServerInfo, error) {
		return rb.joinedInfo(ctx, n)
	})
	if err != nil {
		return err
	}
	stall := "not recorded"
	if rb.Stall != nil {
		st, err := remediator.Observe(r, "stall:"+name, map[string]string{"from": began.Format(time.RFC3339Nano)}, func(ctx context.Context) (Stall, error) {
			return rb.Stall(ctx, r.Cluster(), began, clockOr(rb.Clock).Now())
		})
		if err == nil {
			stall = fmt.Sprintf("%g bad probe seconds, %g failed probe writes", st.BadSeconds, st.FailedWrites)
		} else {
			stall = "unknown: " + err.Error()
		}
	}
	if err := r.Logf("restarted:"+name, "%s restarted: pid %d -> %d, version %s -> %s, uptime %ds before, joined by %s; write stall: %s",
		name, before.Pid, after.Pid, before.Version, after.Version, before.UptimeSeconds, orUnknown(after.StateTransfer), stall); err != nil {
		return err
	}
	if after.StateTransfer == galera.TransferSST {
		return remediator.Refused("%s rejoined by a full SST, not IST (%s): its donor's gcache no longer held the writesets it missed; raise gcache.size before restarting the others, which are left as they are", name, after.StateTransferLine)
	}
	return nil
}

// joinedInfo reads n's info once it shows a new pid and how it joined;
// the log line is written before Synced, so a few reads suffice.
func (rb RollingRestart) joinedInfo(ctx context.Context, n Restartable) (ServerInfo, error) {
	clock := clockOr(rb.Clock)
	deadline := clock.Now().Add(5 * time.Second)
	for {
		info, err := n.Info(ctx)
		if err == nil && info.StateTransfer != "" {
			return info, nil
		}
		if clock.Now().After(deadline) {
			return info, err // how it joined stays unknown, logged as such
		}
		select {
		case <-ctx.Done():
			return info, ctx.Err()
		case <-clock.After(200 * time.Millisecond):
		}
	}
}

// waitRestartable waits until target may be stopped: the cluster is
// healthy (degraded is nil) and no state transfer runs. It refuses
// after HealthyWait.
func (rb RollingRestart) waitRestartable(ctx context.Context, all []Node, target string) ([]NodeState, error) {
	clock := clockOr(rb.Clock)
	wait := rb.HealthyWait
	if wait <= 0 {
		wait = 30 * time.Second
	}
	deadline := clock.Now().Add(wait)
	for {
		states := observeSettled(ctx, clock, all, settleLimit)
		err := restartable(states, target)
		if err == nil || clock.Now().After(deadline) || ctx.Err() != nil {
			return states, err
		}
		select {
		case <-ctx.Done():
			return states, ctx.Err()
		case <-clock.After(250 * time.Millisecond):
		}
	}
}

// degraded is a refusal naming what is wrong unless every node is
// Synced in one Primary component counting all of them.
func degraded(states []NodeState) error {
	var bad []string
	for _, s := range states {
		if !s.Synced() {
			bad = append(bad, fmt.Sprintf("%s is %s", s.Name, describe(s)))
			continue
		}
		if s.Wsrep.ClusterSize != len(states) {
			bad = append(bad, fmt.Sprintf("%s's Primary component counts %d members of %d configured", s.Name, s.Wsrep.ClusterSize, len(states)))
		}
	}
	if len(bad) > 0 {
		return remediator.Refused("the cluster is degraded, and a rolling restart takes one more node down: %s; repair it first", strings.Join(bad, "; "))
	}
	return nil
}

// restartable refuses to stop target while the cluster is degraded or
// target serves a state transfer as donor.
func restartable(states []NodeState, target string) error {
	for _, s := range states {
		if s.Name == target && s.Running && s.Wsrep != nil && s.Wsrep.LocalState == nines.LocalStateDonor {
			return remediator.Refused("%s is the donor of a state transfer (%s): stopping it would fail the joiner's transfer", target, describe(s))
		}
	}
	return degraded(states)
}

// restartOrder is the configured order with the writer moved last:
// writes move to another node once, when it goes, and not at every step.
func restartOrder(nodes []string, writer string) []string {
	out := make([]string, 0, len(nodes))
	found := false
	for _, n := range nodes {
		if n == writer {
			found = true
			continue
		}
		out = append(out, n)
	}
	if found {
		out = append(out, writer)
	}
	return out
}

func names(nodes []Node) []string {
	out := make([]string, len(nodes))
	for i, n := range nodes {
		out[i] = n.Name()
	}
	return out
}

func indexOf(nodes []Node, name string) int {
	for i, n := range nodes {
		if n.Name() == name {
			return i
		}
	}
	return -1
}

// done reports whether the step called exactly name is done (DoneStep
// matches a prefix, and db1:3306 may be a prefix of db1:33061).
func done(r *remediator.Run, name string) bool {
	got, ok := r.DoneStep(name)
	return ok && got == name
}

func orUnknown(s string) string {
	if s == "" {
		return "unknown (no state transfer line in its error log)"
	}
	return s
}
