package ndb

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

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

// RollingRestart is the ndb-rolling-restart runbook's data node phase:
// each data node in turn, by ascending id, is restarted normally with the
// management server's RESTART (never -i, never -f) and followed until
// STARTED, and the next one is touched only when every data node is
// STARTED again, so a node group never has two nodes down [DOC8 §25.6.5].
//
// Not done here (a person does them, the job log says so): restarting
// the management servers first, and the SQL nodes last; checking
// ndbinfo.nodes.config_generation, which `get status` does not carry.
type RollingRestart struct {
	Mgm func(cluster string) (Restarter, error)
	// NodeTimeout bounds each node's wait for STARTED; 0 is
	// DefaultStartTimeout.
	NodeTimeout time.Duration
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
	limit := rb.NodeTimeout
	if limit <= 0 {
		limit = DefaultStartTimeout
	}
	nodes, err := remediator.Observe(r, "observe-cluster", nil, func(ctx context.Context) ([]int, error) {
		return allStarted(ctx, mgm)
	})
	if err != nil {
		return err
	}
	for _, id := range nodes {
		if _, done := r.DoneStep(fmt.Sprintf("restarted:node-%d", id)); done {
			continue
		}
		act := fmt.Sprintf("restart:node-%d", id)
		before, err := remediator.Observe(r, fmt.Sprintf("check-before:node-%d", id), nil, func(ctx context.Context) (ndb.Node, error) {
			if _, acted := r.DoneStep(act); acted {
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
		if err := r.Logf(fmt.Sprintf("restarted:node-%d", id), "data node %d restarted and STARTED", id); err != nil {
			return err
		}
	}
	return r.Logf("not-done", "data nodes %v restarted one at a time; restart the SQL nodes now, one at a time, and check ndbinfo.nodes.config_generation: this runbook restarts neither them nor the management servers", nodes)
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
