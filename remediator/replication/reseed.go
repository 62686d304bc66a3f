package replication

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/nines-project/nines/remediator"
	"github.com/nines-project/nines/replication"
)

// Reseed is the replication-reseed runbook, run by hand: it rebuilds a
// node whose history diverged from the primary's (the rejoin refused it)
// from a fresh mariadb-backup of a healthy replica, streamed through the
// appliance from the donor's agent to the target's. The diverged GTIDs
// are written to the job log before anything is touched, and the node's
// old datadir is kept beside the new one: nothing is deleted.
//
// It never acts on the primary, never copies from it, and rebuilds a
// node that is not diverged (or cannot be read) only when force_node
// names it.
type Reseed struct {
	Nodes Cluster
	// ReplicatingTimeout bounds the wait for both replica threads to run
	// after the rebuild; default 60 s.
	ReplicatingTimeout time.Duration
	// Limit bounds a job: a large database streams for hours. Default 12 h.
	Limit time.Duration
}

var (
	_ remediator.Runbook     = Reseed{}
	_ remediator.Preparer    = Reseed{}
	_ remediator.Bounded     = Reseed{}
	_ remediator.Preemptible = Reseed{}
)

// ParamDonor names the node to copy from (host:port as configured).
const ParamDonor = "donor"

func (Reseed) Name() string { return remediator.RunbookReplicationReseed }

func (rb Reseed) Timeout() time.Duration {
	if rb.Limit > 0 {
		return rb.Limit
	}
	return 12 * time.Hour
}

// Preemptible: a copy runs for as long as the database is large, and a
// failover must not wait for it. Cancelled while streaming, the target
// keeps its old datadir and server; the agent finishes a swap it began.
func (Reseed) Preemptible() bool { return true }

// Prepare requires the node to rebuild and accepts a donor only.
func (Reseed) Prepare(_, target string, params map[string]string) (map[string]string, string, error) {
	if target == "" {
		return nil, "", errors.New("name the node to rebuild (node)")
	}
	for k := range params {
		if k != ParamDonor {
			return nil, "", fmt.Errorf("unknown parameter %q (have %s)", k, ParamDonor)
		}
	}
	if params[ParamDonor] == target {
		return nil, "", fmt.Errorf("donor %s is the node to rebuild", target)
	}
	return params, target, nil
}

// reseedPlan is the decision, recorded in the job log.
type reseedPlan struct {
	Primary  string             `json:"primary"`
	Donor    replication.Choice `json:"donor"`
	SemiSync bool               `json:"semi_sync"`
	// Diverged are the target's transactions the primary lacks: lost to
	// the cluster, kept in the old datadir.
	Diverged      []string `json:"diverged"`
	DivergedCount uint64   `json:"diverged_count"`
	TargetBinlog  string   `json:"target_gtid_binlog_state,omitempty"`
	// PrimaryBinlog is what the primary holds, to compare the target's
	// binary logs with.
	PrimaryBinlog string `json:"primary_gtid_binlog_state,omitempty"`
	// Fence: the target takes writes and is made read-only first.
	Fence  bool   `json:"fence,omitempty"`
	Forced bool   `json:"forced,omitempty"`
	Note   string `json:"note,omitempty"`
}

func (rb Reseed) Run(ctx context.Context, r *remediator.Run) error {
	nodes, err := rb.Nodes(r.Cluster())
	if err != nil {
		return err
	}
	target := r.Target()
	node, err := find(nodes, target)
	if err != nil {
		return remediator.Aborted("%v", err)
	}
	seeder, ok := node.(Seeder)
	if !ok {
		return remediator.Aborted("%s cannot be rebuilt: its agent is not known", target)
	}
	views, err := remediator.Observe(r, "observe-cluster", nil, func(ctx context.Context) ([]replication.Node, error) {
		return observeAll(ctx, nodes), nil
	})
	if err != nil {
		return err
	}
	p, err := remediator.Observe(r, "plan:"+target, map[string]string{"donor": r.Param(ParamDonor)}, func(context.Context) (reseedPlan, error) {
		return decideReseed(target, views, r.Param(ParamDonor), r.Force() == target)
	})
	if err != nil {
		return err
	}
	// The diverged GTIDs go to the log on their own, before anything is
	// touched: they are what a person may want to save.
	if _, err := remediator.Observe(r, "diverged:"+target, nil, func(ctx context.Context) (string, error) {
		if p.Note != "" || len(p.Diverged) == 0 {
			return divergedNote(target, p, nil, nil), nil
		}
		exact, err := seeder.Diverged(ctx, p.PrimaryBinlog)
		return divergedNote(target, p, &exact, err), nil
	}); err != nil {
		return err
	}
	donor, err := find(nodes, p.Donor.Node)
	if err != nil {
		return err
	}
	if p.Fence {
		if _, err := remediator.Act(ctx, r, "fence:"+target, nil, func(ctx context.Context) (Fenced, error) {
			return node.Fence(ctx, false)
		}); err != nil {
			return err
		}
	}
	// Re-observe right before the irreversible step: the primary and the
	// donor must be as planned, and the target still not the primary.
	if _, err := remediator.Observe(r, "recheck:"+target, nil, func(ctx context.Context) (string, error) {
		now := observeAll(ctx, nodes)
		again, err := decideReseed(target, now, p.Donor.Node, true)
		switch {
		case err != nil:
			return "", err
		case again.Primary != p.Primary:
			return "", remediator.Aborted("the primary changed from %s to %s since the plan: start again", p.Primary, again.Primary)
		}
		return fmt.Sprintf("primary %s, donor %s fit, %s not a source", p.Primary, p.Donor.Node, target), nil
	}); err != nil {
		return err
	}
	res, err := remediator.Act(ctx, r, "reseed:"+target, map[string]any{"donor": p.Donor.Node, "source": p.Primary, "semi_sync": p.SemiSync},
		func(ctx context.Context) (Reseeded, error) {
			return seeder.Reseed(ctx, donor, p.Primary, p.SemiSync)
		})
	if err != nil {
		return err
	}
	limit := rb.ReplicatingTimeout
	if limit <= 0 {
		limit = time.Minute
	}
	if _, err = remediator.Wait(ctx, r, "wait-replicating:"+target, map[string]string{"timeout": limit.String()}, func(ctx context.Context) (string, error) {
		return waitReplicating(ctx, node, p.Primary, limit)
	}); err != nil {
		return err
	}
	if r.DryRun() {
		return nil
	}
	_, err = remediator.Observe(r, "verify:"+target, nil, func(ctx context.Context) (string, error) {
		now := observeAll(ctx, nodes)
		return verifyReseed(view(now, target), view(now, p.Primary), res.SlavePos, p)
	})
	return err
}

// decideReseed plans the rebuild of target from views. force rebuilds a
// node that is not diverged or cannot be read.
func decideReseed(target string, views []replication.Node, donor string, force bool) (reseedPlan, error) {
	var p reseedPlan
	t := view(views, target)
	if !t.Reachable {
		return p, fmt.Errorf("the agent of %s does not answer (%s): cannot act on it", target, t.Error)
	}
	if primary, _, ok := replication.Primary(views); ok && primary == target {
		return p, remediator.Refused("%s is the primary (its replicas replicate from it): it is never rebuilt; switch over first", target)
	}
	primary, why, ok := replication.Primary(exclude(views, target))
	if !ok {
		return p, remediator.Aborted("cannot tell the primary among the other nodes: %s", why)
	}
	pv := view(views, primary)
	if !pv.Writable() {
		return p, remediator.Aborted("the primary %s is not running and writable (%s): rebuild %s once it is", primary, pv.Error, target)
	}
	p.Primary, p.SemiSync, p.Forced = primary, semiSync(views), force
	if !t.Readable {
		if !force {
			return p, remediator.Refused("%s cannot be read (%s): what it holds cannot be listed; name it as force_node to rebuild it anyway (its datadir is kept)", target, t.Error)
		}
		p.Note = "the target could not be read: its diverged transactions, if any, are unknown; they stay in its old datadir"
	} else {
		p.TargetBinlog, p.PrimaryBinlog = t.Binlog.String(), pv.Holds().String()
		p.Diverged, p.DivergedCount = replication.Rejoin(t, pv), t.Binlog.Count(pv.Holds())
		p.Fence = !t.ReadOnly
		if len(p.Diverged) == 0 && !force {
			return p, remediator.Aborted("%s holds nothing the primary %s lacks: replication-rejoin makes it a replica without a copy; name it as force_node to rebuild it anyway", target, primary)
		}
	}
	choice, err := replication.Donor(primary, target, views, donor)
	if err != nil {
		return p, remediator.Refused("%v", err)
	}
	p.Donor = choice
	return p, nil
}

// divergedNote says what the rebuild gives up: the GTIDs read from the
// node's binary logs when it could (exact), else the ranges of the GTID
// states.
func divergedNote(target string, p reseedPlan, exact *DivergedGTIDs, err error) string {
	switch {
	case p.Note != "":
		return p.Note
	case len(p.Diverged) == 0:
		return fmt.Sprintf("%s holds nothing the primary %s lacks (rebuilt by force)", target, p.Primary)
	case err == nil && exact != nil && exact.Count > 0:
		more := ""
		if exact.Count > len(exact.GTIDs) {
			more = fmt.Sprintf(" (the newest %d shown)", len(exact.GTIDs))
		}
		return fmt.Sprintf("%s holds %d transaction(s) the primary %s lacks, lost to the cluster once rebuilt (they stay in its old datadir): %s%s; read from its binary logs %s",
			target, exact.Count, p.Primary, strings.Join(exact.GTIDs, ", "), more, strings.Join(exact.Files, ", "))
	}
	why := ""
	if err != nil {
		why = fmt.Sprintf(" (its binary logs could not be read: %v)", err)
	}
	// gtid_binlog_state keeps each server's last GTID only: the last of
	// each range is certain, its start a bound.
	return fmt.Sprintf("%s holds transactions the primary %s lacks, lost to the cluster once rebuilt (they stay in its old datadir): %s (at most %d; the last GTID of each range is certain, its start a bound)%s",
		target, p.Primary, strings.Join(p.Diverged, ", "), p.DivergedCount, why)
}

// verifyReseed checks the rebuilt node: it replicates from the primary,
// holds the backup's position, and its history is a prefix of the
// primary's (no diverged transaction left on the live server).
func verifyReseed(t, pv replication.Node, slavePos string, p reseedPlan) (string, error) {
	if !t.Readable || !pv.Readable {
		return "", fmt.Errorf("cannot read %s (%s) or the primary %s (%s)", t.Name, t.Error, pv.Name, pv.Error)
	}
	at, err := replication.ParseState(slavePos)
	if err != nil {
		return "", fmt.Errorf("the backup's position %q: %w", slavePos, err)
	}
	if !t.Holds().Covers(at) {
		return "", fmt.Errorf("%s holds %s, short of the backup's position %s", t.Name, t.Holds(), at)
	}
	if extra := replication.Rejoin(t, pv); len(extra) > 0 {
		return "", fmt.Errorf("%s still holds transactions the primary %s lacks: %s", t.Name, pv.Name, strings.Join(extra, ", "))
	}
	if !t.ReadOnly {
		return "", fmt.Errorf("%s takes writes after the rebuild", t.Name)
	}
	return fmt.Sprintf("%s replicates from %s, holds %s (backup point %s), nothing the primary lacks", t.Name, p.Primary, t.Holds(), at), nil
}
