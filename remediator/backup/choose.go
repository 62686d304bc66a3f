package backup

import (
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/nines-project/nines"
)

// staleAfter is how old a node's latest snapshot may be and still be
// trusted to say the node is healthy: the exporter reads every node every
// second, so an older one means its scraper is stuck.
const staleAfter = 30 * time.Second

// Candidate is one node as the choice saw it.
type Candidate struct {
	Node string `json:"node"`
	// Eligible nodes may be backed up; Why says why not otherwise.
	Eligible       bool   `json:"eligible"`
	Why            string `json:"why,omitempty"`
	RecvQueue      int64  `json:"recv_queue"`
	ThreadsRunning int64  `json:"threads_running"`
	SecondsBehind  int64  `json:"seconds_behind,omitempty"`
	Replica        bool   `json:"replica,omitempty"`
}

// Choice is the node a backup runs on and how it was chosen.
type Choice struct {
	Node       string      `json:"node"`
	Why        string      `json:"why"`
	Candidates []Candidate `json:"candidates"`
}

// ErrNoNode means no node may be backed up now.
var ErrNoNode = errors.New("no node can be backed up")

// Choose picks the node to back up from the nodes' latest snapshots.
// Only nodes with an agent (hosts) are considered.
//
// Galera: a Synced member of a Primary component, the least loaded by
// wsrep_local_recv_queue, then Threads_running (a backup reads the whole
// dataset; the node with the least to apply and the fewest queries feels
// it least). Replication: a running replica, the least behind, then the
// least busy; a primary only when no replica can serve.
//
// A pinned node is taken only when it is itself eligible: the job fails
// rather than backing up a node that is joining, lagging or down.
func Choose(kind nines.Kind, snaps []*nines.Snapshot, hosts []string, pin string, now time.Time) (Choice, error) {
	byNode := map[string]*nines.Snapshot{}
	for _, s := range snaps {
		byNode[s.Instance] = s
	}
	var cands []Candidate
	for _, h := range hosts {
		cands = append(cands, candidate(kind, h, byNode[h], now))
	}
	sort.SliceStable(cands, func(i, j int) bool { return less(cands[i], cands[j]) })
	ch := Choice{Candidates: cands}
	if pin != "" {
		for _, c := range cands {
			if c.Node != pin {
				continue
			}
			if !c.Eligible {
				return ch, fmt.Errorf("pinned node %s cannot be backed up now: %s", pin, c.Why)
			}
			ch.Node, ch.Why = pin, "pinned by the configuration or the request"
			return ch, nil
		}
		return ch, fmt.Errorf("pinned node %s has no agent in cluster (nodes with agents: %s)", pin, strings.Join(hosts, ", "))
	}
	if kind == nines.KindReplication {
		// Replicas first; the primary only when none can serve.
		for _, c := range cands {
			if c.Eligible && c.Replica {
				ch.Node, ch.Why = c.Node, fmt.Sprintf("the replica least behind (%d s) and least busy (%d threads running)", c.SecondsBehind, c.ThreadsRunning)
				return ch, nil
			}
		}
		for _, c := range cands {
			if c.Eligible {
				ch.Node, ch.Why = c.Node, "no replica can serve: the primary"
				return ch, nil
			}
		}
	} else {
		for _, c := range cands {
			if c.Eligible {
				ch.Node, ch.Why = c.Node, fmt.Sprintf("the least loaded Synced node (recv queue %d, %d threads running)", c.RecvQueue, c.ThreadsRunning)
				return ch, nil
			}
		}
	}
	var why []string
	for _, c := range cands {
		why = append(why, c.Node+": "+c.Why)
	}
	if len(why) == 0 {
		return ch, fmt.Errorf("%w: the cluster has no node with an agent", ErrNoNode)
	}
	return ch, fmt.Errorf("%w (%s)", ErrNoNode, strings.Join(why, "; "))
}

func candidate(kind nines.Kind, node string, s *nines.Snapshot, now time.Time) Candidate {
	c := Candidate{Node: node}
	switch {
	case s == nil:
		c.Why = "not scraped yet"
		return c
	case now.Sub(s.Time) > staleAfter:
		c.Why = fmt.Sprintf("last scraped %s ago", now.Sub(s.Time).Round(time.Second))
		return c
	case !s.Up:
		c.Why = "down: " + s.Err
		return c
	}
	c.ThreadsRunning, _ = strconv.ParseInt(s.Status["Threads_running"], 10, 64)
	switch kind {
	case nines.KindReplication:
		for _, r := range s.Replicas {
			c.Replica = true
			if !r.IORunning || !r.SQLRunning {
				c.Why = fmt.Sprintf("replica channel %q is not running", r.Channel)
				return c
			}
			if r.SecondsBehind != nil {
				c.SecondsBehind = max(c.SecondsBehind, *r.SecondsBehind)
			}
		}
		c.Eligible = true
	default:
		g := s.Galera
		if !g.Synced() {
			state := "no wsrep status"
			if g != nil {
				state = fmt.Sprintf("%s/%s", g.ClusterStatus, g.LocalStateComment)
			}
			c.Why = "not Synced in a Primary component: " + state
			return c
		}
		c.RecvQueue = g.LocalRecvQueue
		c.Eligible = true
	}
	return c
}

// less orders candidates: eligible first, then the least loaded, then by
// name so the choice is stable.
func less(a, b Candidate) bool {
	if a.Eligible != b.Eligible {
		return a.Eligible
	}
	if a.Replica != b.Replica {
		return a.Replica
	}
	if a.SecondsBehind != b.SecondsBehind {
		return a.SecondsBehind < b.SecondsBehind
	}
	if a.RecvQueue != b.RecvQueue {
		return a.RecvQueue < b.RecvQueue
	}
	if a.ThreadsRunning != b.ThreadsRunning {
		return a.ThreadsRunning < b.ThreadsRunning
	}
	return a.Node < b.Node
}
