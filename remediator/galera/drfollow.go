package galera

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/nines-project/nines/remediator"
	"github.com/nines-project/nines/replication"
)

// A disaster-recovery (DR) replica of a Galera cluster is a server outside
// the cluster that replicates from one of its nodes by GTID (a second
// site). With wsrep_gtid_mode every node writes the cluster's write sets
// under the same GTIDs, so when the source node dies the replica can
// continue from another node at its slave position: nothing is skipped,
// nothing applied twice.

// DRReplica is a DR replica as the runbook drives it, through its agent.
type DRReplica interface {
	Name() string
	// Observe reads the replica's GTID state and replica connection.
	Observe(ctx context.Context) replication.Node
	// Replicate points it at source (host:port) with
	// master_use_gtid=slave_pos.
	Replicate(ctx context.Context, source string, semiSync, fromBinlog bool) error
}

// DRSource is a Galera node a DR replica may follow: its wsrep state
// (NodeState) and its GTID binlog state (Observe), both through its agent.
type DRSource interface {
	Name() string
	State(ctx context.Context) NodeState
	Observe(ctx context.Context) replication.Node
}

// DRFollow is the galera-dr-follow runbook: a DR replica whose source
// node is gone (down, unreachable, or not Synced in a Primary component)
// is repointed to the first node, in configuration order, that is Synced,
// in a Primary component, wsrep_ready, and holds every transaction the
// replica holds or received. A replica whose source is fine is left alone.
type DRFollow struct {
	// Sources gives the cluster's nodes in configuration order.
	Sources func(cluster string) ([]DRSource, error)
	// Replica gives the cluster's DR replica named by its address.
	Replica func(cluster, name string) (DRReplica, error)
	// CatchUp bounds how long the choice waits for a Synced node to have
	// written to its binlog what the replica already received from the
	// dead source (Galera applies write sets asynchronously). Default 5 s.
	CatchUp time.Duration
	// ReplicatingTimeout bounds the wait for both replica threads to run
	// against the new source. Default 30 s.
	ReplicatingTimeout time.Duration
}

var _ remediator.Runbook = DRFollow{}

func (DRFollow) Name() string { return remediator.RunbookGaleraDRFollow }

// DRMember is one node as the DR decision sees it.
type DRMember struct {
	State NodeState `json:"state"`
	// Binlog is the node's gtid_binlog_state; BinlogError says why it is
	// unknown (then the node is no candidate).
	Binlog      replication.State `json:"gtid_binlog_state,omitempty"`
	BinlogError string            `json:"binlog_error,omitempty"`
}

// DRPlan is the decision, recorded as the repoint's input.
type DRPlan struct {
	Replica string `json:"replica"`
	From    string `json:"from"`
	To      string `json:"to"`
	// Why the source is given up.
	Why string `json:"why"`
	// Holds is what the replica holds or received, which To covers.
	Holds string `json:"holds"`
}

// errDRLacking marks a decision that found Synced nodes which have not
// yet written what the replica holds: worth observing again shortly.
var errDRLacking = errors.New("lacking")

// DecideDRFollow decides whether and where a DR replica follows. members
// are the cluster's nodes in configuration order (the preference). It
// returns an Abort when there is nothing to do or not yet a node to
// follow, a Refusal for a state a person must resolve, and a plain error
// when the replica cannot be read.
func DecideDRFollow(dr replication.Node, members []DRMember) (DRPlan, error) {
	p := DRPlan{Replica: dr.Name}
	switch {
	case !dr.Reachable:
		return p, fmt.Errorf("the agent of DR replica %s does not answer (%s): cannot repoint it", dr.Name, dr.Error)
	case !dr.Readable:
		return p, remediator.Aborted("DR replica %s is not running or cannot be read (%s): nothing to repoint", dr.Name, dr.Error)
	case dr.Link == nil:
		return p, remediator.Aborted("DR replica %s replicates from nobody: left as it is (a person may have stopped it)", dr.Name)
	}
	p.From = dr.Link.Source
	src := -1
	for i, m := range members {
		if m.State.Name == p.From {
			src = i
		}
	}
	if src < 0 {
		return p, remediator.Refused("DR replica %s replicates from %s, which is not a node of the cluster: a person decides where it replicates from", dr.Name, p.From)
	}
	s := members[src].State
	switch {
	case s.Synced():
		return p, remediator.Aborted("the source %s of DR replica %s is Synced in a Primary component (IO thread %s): nothing to follow", p.From, dr.Name, dr.Link.IO)
	case !s.Reachable && dr.Link.IO == "Yes":
		// The agent may be down while the server serves: the replica's
		// own connection is the better witness.
		return p, remediator.Aborted("the agent of the source %s does not answer (%s), but DR replica %s still receives from it: nothing to follow", p.From, s.Error, dr.Name)
	case !s.Reachable:
		p.Why = fmt.Sprintf("%s unreachable (%s), IO thread %s", p.From, s.Error, dr.Link.IO)
	default:
		p.Why = fmt.Sprintf("%s %s", p.From, describeState(s))
	}
	holds := dr.Holds()
	p.Holds = holds.String()
	var synced, lacking []string
	for _, m := range members {
		if m.State.Name == p.From || !m.State.Synced() {
			continue
		}
		synced = append(synced, m.State.Name)
		switch {
		case m.BinlogError != "":
			lacking = append(lacking, fmt.Sprintf("%s: gtid_binlog_state unreadable (%s)", m.State.Name, m.BinlogError))
		case !m.Binlog.Covers(holds):
			lacking = append(lacking, fmt.Sprintf("%s lacks %s", m.State.Name, strings.Join(holds.Lacking(m.Binlog), ", ")))
		default:
			p.To = m.State.Name
			return p, nil
		}
	}
	if len(synced) == 0 {
		var states []string
		for _, m := range members {
			states = append(states, m.State.Name+": "+describeState(m.State))
		}
		return p, remediator.NotYet("no node other than %s is Synced in a Primary component (%s): DR replica %s waits", p.From, strings.Join(states, "; "), dr.Name)
	}
	return p, fmt.Errorf("%w: no Synced node holds everything DR replica %s holds (%s): %s", errDRLacking, dr.Name, p.Holds, strings.Join(lacking, "; "))
}

// describeState is a node's state in a few words for the job log.
func describeState(s NodeState) string {
	switch {
	case !s.Reachable:
		return "unreachable: " + s.Error
	case !s.Running:
		return "not running"
	case s.Wsrep == nil:
		return "wsrep status unreadable: " + s.Error
	case !s.Wsrep.Primary():
		return "not in a Primary component"
	case !s.Wsrep.Synced():
		return fmt.Sprintf("not Synced (local state %s, ready %v)", s.Wsrep.LocalStateComment, s.Wsrep.Ready)
	}
	return "Synced"
}

func (rb DRFollow) Run(ctx context.Context, r *remediator.Run) error {
	target := r.Target()
	if target == "" {
		return remediator.Aborted("no DR replica named: the alert carries no instance label")
	}
	dr, err := rb.Replica(r.Cluster(), target)
	if err != nil {
		return remediator.Aborted("%v", err)
	}
	sources, err := rb.Sources(r.Cluster())
	if err != nil {
		return err
	}
	catchUp := rb.CatchUp
	if catchUp <= 0 {
		catchUp = 5 * time.Second
	}
	// One step: observed again, for a moment, while Synced nodes still
	// apply what the replica received from the dead source.
	p, err := remediator.Observe(r, "decide:"+target, map[string]string{"catch_up": catchUp.String()}, func(ctx context.Context) (DRPlan, error) {
		deadline := time.Now().Add(catchUp)
		for {
			p, err := DecideDRFollow(dr.Observe(ctx), observeMembers(ctx, sources))
			if !errors.Is(err, errDRLacking) || time.Now().After(deadline) {
				if errors.Is(err, errDRLacking) {
					return p, remediator.NotYet("%v", err)
				}
				return p, err
			}
			select {
			case <-ctx.Done():
				return p, ctx.Err()
			case <-time.After(100 * time.Millisecond):
			}
		}
	})
	if err != nil {
		return err
	}
	if _, err := remediator.Act(ctx, r, "repoint:"+target, p, func(ctx context.Context) (string, error) {
		return "replicating from " + p.To + " with master_use_gtid=slave_pos", dr.Replicate(ctx, p.To, false, false)
	}); err != nil {
		return err
	}
	limit := rb.ReplicatingTimeout
	if limit <= 0 {
		limit = 30 * time.Second
	}
	_, err = remediator.Wait(ctx, r, "wait-replicating:"+target, map[string]string{"source": p.To, "timeout": limit.String()}, func(ctx context.Context) (string, error) {
		return waitDRReplicating(ctx, dr, p.To, limit)
	})
	return err
}

// observeMembers reads every node at once: a dead host's agent costs its
// timeout once, not once per node.
func observeMembers(ctx context.Context, sources []DRSource) []DRMember {
	out := make([]DRMember, len(sources))
	done := make(chan struct{}, len(sources))
	for i, s := range sources {
		go func() {
			defer func() { done <- struct{}{} }()
			m := DRMember{State: s.State(ctx)}
			if m.State.Synced() {
				n := s.Observe(ctx)
				if n.Readable {
					m.Binlog = n.Binlog
				} else {
					m.BinlogError = n.Error
				}
			}
			out[i] = m
		}()
	}
	for range sources {
		<-done
	}
	return out
}

// waitDRReplicating polls the replica until both threads run against
// source.
func waitDRReplicating(ctx context.Context, dr DRReplica, source string, limit time.Duration) (string, error) {
	deadline := time.Now().Add(limit)
	for {
		n := dr.Observe(ctx)
		if l := n.Link; l != nil && l.Source == source && l.IO == "Yes" && l.SQLRunning {
			return "replicating from " + source + " at " + n.Holds().String(), nil
		}
		if time.Now().After(deadline) {
			state := "cannot be read: " + n.Error
			if l := n.Link; n.Readable && l != nil {
				state = fmt.Sprintf("source %s, IO %s (%s), SQL running %v (%s)", l.Source, l.IO, l.LastIOError, l.SQLRunning, l.LastSQLError)
			}
			return "", fmt.Errorf("%s does not replicate from %s after %s: %s", dr.Name(), source, limit, state)
		}
		select {
		case <-ctx.Done():
			return "", ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}
