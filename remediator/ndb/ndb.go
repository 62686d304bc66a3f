// Package ndb holds the NDB Cluster runbooks. They observe the cluster
// through a management server's `get status` (the mgm protocol, package
// nines/ndb) and ndbinfo on the SQL nodes, and act through the management
// server (RESTART of a data node) or a node's host agent (a data node's
// start, a management server's or SQL node's restart), so the appliance
// wires exporter/ndb's Mgm clients, SQL connections and agent.Clients
// behind the small interfaces below, and tests wire the simulator.
package ndb

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nines-project/nines/agent"
	exporterndb "github.com/nines-project/nines/exporter/ndb"
	"github.com/nines-project/nines/ndb"
)

// StatusSource reads `get status` from a management server.
type StatusSource interface {
	GetStatus(ctx context.Context, types ...ndb.NodeType) ([]ndb.Node, error)
}

var _ StatusSource = (*exporterndb.Mgm)(nil)

// Failover is a StatusSource over several management servers: each is
// asked in turn until one answers, as ndb_mgm tries the hosts of its
// connect string. The error, when none answers, names every failure.
func Failover(srcs ...StatusSource) StatusSource { return failover(srcs) }

type failover []StatusSource

func (f failover) GetStatus(ctx context.Context, types ...ndb.NodeType) ([]ndb.Node, error) {
	if len(f) == 0 {
		return nil, errors.New("no management server configured")
	}
	var errs []error
	for _, s := range f {
		nodes, err := s.GetStatus(ctx, types...)
		if err == nil {
			return nodes, nil
		}
		errs = append(errs, err)
		if ctx.Err() != nil {
			break
		}
	}
	return nil, fmt.Errorf("no management server answered: %w", errors.Join(errs...))
}

// Agent is a data node's host agent (agent.Client).
type Agent interface {
	Status(ctx context.Context) (agent.Status, error)
	Start(ctx context.Context, req agent.StartRequest) (agent.StartResult, error)
	Stop(ctx context.Context, req agent.StopRequest) (agent.StopResult, error)
}

var _ Agent = (*agent.Client)(nil)

// Clock is the time the runbooks wait on. Nil means the real clock.
type Clock interface {
	Now() time.Time
	After(d time.Duration) <-chan time.Time
}

type realClock struct{}

func (realClock) Now() time.Time                         { return time.Now() }
func (realClock) After(d time.Duration) <-chan time.Time { return time.After(d) }

func clockOr(c Clock) Clock {
	if c == nil {
		return realClock{}
	}
	return c
}

// find returns data node id from a `get status` reply.
func find(nodes []ndb.Node, id int) (ndb.Node, bool) {
	for _, n := range nodes {
		if n.ID == id && n.Type == ndb.TypeNDB {
			return n, true
		}
	}
	return ndb.Node{}, false
}

// describe is a node's status as an operator reads it in the job log.
func describe(n ndb.Node) string {
	if n.Status == ndb.StatusStarting {
		return fmt.Sprintf("%s (start phase %d)", n.Status, n.StartPhase)
	}
	return n.Status.String()
}
