package replication

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/nines-project/nines/remediator"
	"github.com/nines-project/nines/replication"
)

// Restartable is a replication node a planned restart stops, starts and
// describes. The appliance's agent nodes are; a node without an agent
// is not.
type Restartable interface {
	Node
	// Stop stops the server gracefully.
	Stop(ctx context.Context) error
	// Start starts the stopped server and returns once it answers SQL.
	// It comes back read-only with replication stopped (skip_slave_start):
	// the runbook points it at the primary.
	Start(ctx context.Context) error
	// Info reads the running server's pid, version and uptime.
	Info(ctx context.Context) (ServerInfo, error)
}

// ServerInfo is what the job log records of a node before and after its
// restart.
type ServerInfo struct {
	Pid           int    `json:"pid"`
	Version       string `json:"version"`
	UptimeSeconds int64  `json:"uptime_seconds"`
}

// RollingRestart is the replication-rolling-restart runbook, run by hand
// to roll out a config change or a minor upgrade: the replicas one at a
// time (stopped, started, pointed at the primary again and waited for
// until they replicate and applied what they received), then a
// switchover (replication-switchover's steps: the job's node, if named,
// is the new primary, else the most advanced replica), then the old
// primary, now a replica, like the others. Writes stop only for the
// switchover.
//
// It refuses, before each node, unless the primary is writable and every
// other node replicates from it with both threads running: a replica
// restarted while another is broken could leave the primary with no
// replica to switch over to.
type RollingRestart struct {
	Nodes        Cluster
	Writers      Writers
	ApplyTimeout time.Duration
	// ReplicateTimeout bounds each restarted node's wait until it
	// replicates and caught up; default 2 m.
	ReplicateTimeout time.Duration
}

var (
	_ remediator.Runbook = RollingRestart{}
	_ remediator.Bounded = RollingRestart{}
)

func (RollingRestart) Name() string { return remediator.RunbookReplicationRollingRestart }

// Timeout bounds the job: dozens of nodes at the per-node bound.
func (RollingRestart) Timeout() time.Duration { return 2 * time.Hour }

func (rb RollingRestart) Run(ctx context.Context, r *remediator.Run) error {
	all, err := rb.Nodes(r.Cluster())
	if err != nil {
		return err
	}
	nodes := map[string]Restartable{}
	for _, n := range all {
		rn, ok := n.(Restartable)
		if !ok {
			return remediator.Refused("%s has no agent: nines cannot restart it, and a rolling restart restarts every node", n.Name())
		}
		nodes[n.Name()] = rn
	}
	if len(all) < 2 {
		return remediator.Refused("a rolling restart of a single node is an outage: restart it by hand in a maintenance window")
	}
	// A resumed job keeps the plan it recorded as the plan step's input,
	// and skips the first health check: a replica it stopped may be
	// down, or the switchover may have moved the primary.
	var first rollingPlan
	if raw := r.StepInput("plan"); raw != nil {
		if err := json.Unmarshal(raw, &first); err != nil {
			return fmt.Errorf("read the plan recorded before the restart: %w", err)
		}
	} else {
		first, err = remediator.Observe(r, "rolling-plan", nil, func(ctx context.Context) (rollingPlan, error) {
			primary, err := healthy(observeAll(ctx, all), "")
			if err != nil {
				return rollingPlan{}, err
			}
			p := rollingPlan{Primary: primary}
			for _, n := range all {
				if n.Name() != primary {
					p.Replicas = append(p.Replicas, n.Name())
				}
			}
			return p, nil
		})
		if err != nil {
			return err
		}
		if _, err := remediator.Observe(r, "plan", first, func(context.Context) (string, error) {
			return fmt.Sprintf("restart %s, switch over from %s, restart %s", strings.Join(first.Replicas, ", "), first.Primary, first.Primary), nil
		}); err != nil {
			return err
		}
	}
	for _, name := range first.Replicas {
		if err := rb.restartReplica(ctx, r, all, nodes[name]); err != nil {
			return err
		}
	}
	if !doneExactly(r, "switched-over") {
		if _, err := remediator.Observe(r, "switchover", nil, func(context.Context) (string, error) {
			return "every replica restarted; switching over from " + first.Primary, nil
		}); err != nil {
			return err
		}
		if err := (Switchover{Nodes: rb.Nodes, Writers: rb.Writers, ApplyTimeout: rb.ApplyTimeout}).Run(ctx, r); err != nil {
			return fmt.Errorf("switchover from %s: %w", first.Primary, err)
		}
		if err := r.Logf("switched-over", "%s handed the primary over; restarting it now", first.Primary); err != nil {
			return err
		}
	}
	if r.DryRun() {
		return r.Logf("restarted:"+first.Primary, "dry run: %s would be restarted as a replica of the new primary", first.Primary)
	}
	return rb.restartReplica(ctx, r, all, nodes[first.Primary])
}

// rollingPlan is the primary at the start and the replicas, in
// configuration order.
type rollingPlan struct {
	Primary  string   `json:"primary"`
	Replicas []string `json:"replicas"`
}

// restartReplica restarts n, a replica of the current primary, and
// points it at that primary again.
func (rb RollingRestart) restartReplica(ctx context.Context, r *remediator.Run, all []Node, n Restartable) error {
	name := n.Name()
	if doneExactly(r, "restarted:"+name) {
		return nil
	}
	stop := "stop:" + name
	var primary string
	var before ServerInfo
	if !doneExactly(r, stop) {
		views, err := remediator.Observe(r, "check-before:"+name, nil, func(ctx context.Context) ([]replication.Node, error) {
			views := observeAll(ctx, all)
			p, err := healthy(views, "")
			primary = p
			return views, err
		})
		if err != nil {
			return err
		}
		semi := semiSync(views)
		before, err = remediator.Observe(r, "before:"+name, map[string]any{"primary": primary, "semi_sync": semi}, func(ctx context.Context) (ServerInfo, error) {
			return n.Info(ctx)
		})
		if err != nil {
			return err
		}
	}
	var in struct {
		Primary  string `json:"primary"`
		SemiSync bool   `json:"semi_sync"`
		Pid      int    `json:"pid"`
	}
	if raw := r.StepInput(stop); raw != nil {
		// Resumed after the stop: its input holds the plan.
		_ = json.Unmarshal(raw, &in)
		primary, before.Pid = in.Primary, in.Pid
	} else {
		in.Primary, in.Pid = primary, before.Pid
		in.SemiSync = semiSync(observeAll(ctx, all))
	}
	if _, err := remediator.Act(ctx, r, stop, in, func(ctx context.Context) (string, error) {
		return "stopped", n.Stop(ctx)
	}); err != nil {
		return err
	}
	if _, err := remediator.Act(ctx, r, "start:"+name, map[string]string{"node": name}, func(ctx context.Context) (string, error) {
		return "answering", n.Start(ctx)
	}); err != nil {
		return err
	}
	if _, err := remediator.Act(ctx, r, "replicate:"+name, map[string]any{"source": primary, "semi_sync": in.SemiSync}, func(ctx context.Context) (string, error) {
		return "replicating from " + primary, n.Replicate(ctx, primary, in.SemiSync, false)
	}); err != nil {
		return err
	}
	limit := rb.ReplicateTimeout
	if limit <= 0 {
		limit = 2 * time.Minute
	}
	if _, err := remediator.Wait(ctx, r, "wait-replicating:"+name, map[string]string{"source": primary, "timeout": limit.String()}, func(ctx context.Context) (string, error) {
		out, err := waitReplicating(ctx, n, primary, limit)
		if err != nil {
			return out, err
		}
		applied, err := n.WaitApplied(ctx, "", limit)
		return out + "; applied " + applied, err
	}); err != nil {
		return err
	}
	if r.DryRun() {
		return r.Logf("restarted:"+name, "dry run: %s would be stopped, started and pointed at %s again", name, primary)
	}
	after, err := remediator.Observe(r, "after:"+name, map[string]int{"pid_before": before.Pid}, func(ctx context.Context) (ServerInfo, error) {
		return n.Info(ctx)
	})
	if err != nil {
		return err
	}
	return r.Logf("restarted:"+name, "%s restarted: pid %d -> %d, version %s -> %s, uptime %ds before; replicating from %s again",
		name, before.Pid, after.Pid, before.Version, after.Version, before.UptimeSeconds, primary)
}

// healthy returns the primary when it is writable and every other node
// is a replica of it with both threads running; otherwise a refusal
// naming what is wrong.
func healthy(views []replication.Node, _ string) (string, error) {
	primary, why, ok := replication.Primary(views)
	if !ok {
		return "", remediator.Refused("cannot tell which node is the primary: %s", why)
	}
	var bad []string
	for _, v := range views {
		if v.Name == primary {
			if !v.Writable() {
				bad = append(bad, fmt.Sprintf("the primary %s is not writable (%s)", primary, orError(v)))
			}
			continue
		}
		if l := v.Link; !v.Readable || l == nil || l.Source != primary || l.IO != "Yes" || !l.SQLRunning {
			bad = append(bad, fmt.Sprintf("%s does not replicate from %s: %s", v.Name, primary, describeLink(v)))
		}
	}
	if len(bad) > 0 {
		return primary, remediator.Refused("the cluster is degraded, and a rolling restart takes one more node down: %s; repair it first", strings.Join(bad, "; "))
	}
	return primary, nil
}

func orError(v replication.Node) string {
	if v.Error != "" {
		return v.Error
	}
	return "read_only ON"
}

// doneExactly reports whether the step called exactly name is done
// (DoneStep matches a prefix).
func doneExactly(r *remediator.Run, name string) bool {
	got, ok := r.DoneStep(name)
	return ok && got == name
}
