// Package replication holds the runbooks of GTID replication clusters:
// failover when the primary dies, a planned switchover, and the rejoin of
// a node that stopped replicating (the old primary after a failover).
// They act only through Node, which the appliance implements over each
// host's nines agent, decide with the pure top-level replication package,
// and move the writer of the cluster's load balancer when there is one.
package replication

import (
	"context"
	"fmt"
	"net"
	"strconv"
	"sync"
	"time"

	"github.com/nines-project/nines/replication"
)

// Node is one server of a replication cluster as the runbooks drive it.
// Every method reads or acts on the live server through its agent.
type Node interface {
	// Name is the node's configured SQL address (host:port).
	Name() string
	// Observe reads the node; a node whose agent does not answer comes
	// back with Reachable false and the error.
	Observe(ctx context.Context) replication.Node
	// Fence makes the server refuse application writes (read_only=ON);
	// with stop, or when read_only cannot be set, it stops the server.
	// It returns the server's gtid_binlog_state and gtid_binlog_pos when
	// it could read them.
	Fence(ctx context.Context, stop bool) (Fenced, error)
	// WaitApplied waits until the replica applied what it received, or
	// the position until when set, and returns its gtid_binlog_state.
	WaitApplied(ctx context.Context, until string, limit time.Duration) (string, error)
	// Promote stops replication and makes the server a source (semi-sync
	// on when asked); with open it also takes writes.
	Promote(ctx context.Context, semiSync, open bool) (Promoted, error)
	// Replicate points the server at source (host:port) with GTID;
	// fromBinlog first sets its slave position to its own binlog
	// position (a former primary).
	Replicate(ctx context.Context, source string, semiSync, fromBinlog bool) error
}

// Fenced is what a fence left.
type Fenced struct {
	ReadOnly  bool   `json:"read_only"`
	Stopped   bool   `json:"stopped"`
	Binlog    string `json:"gtid_binlog_state,omitempty"`
	BinlogPos string `json:"gtid_binlog_pos,omitempty"`
	Note      string `json:"note,omitempty"`
}

// Promoted is what a promotion left.
type Promoted struct {
	Binlog          string `json:"gtid_binlog_state"`
	SemiSyncClients int    `json:"semi_sync_clients"`
	ReadOnly        bool   `json:"read_only"`
	Note            string `json:"note,omitempty"`
}

// Cluster gives a runbook the nodes of a cluster, in configuration
// order.
type Cluster func(name string) ([]Node, error)

// Writer moves a cluster's writer in its load balancer at once, instead
// of waiting for the health checks to notice: Fence takes a server out
// of the writer pool (maintenance), Admit puts one in and marks it up,
// Release gives a fenced server back to the health checks (a former
// primary that became a replica: the writer check keeps it down).
type Writer interface {
	Fence(ctx context.Context, node string) error
	Admit(ctx context.Context, node string) error
	Release(ctx context.Context, node string) error
}

// Writers gives the load balancer of a cluster; nil, nil when it has none.
type Writers func(cluster string) (Writer, error)

// observeAll reads every node at once: a dead host's agent costs its
// timeout once, not once per node.
func observeAll(ctx context.Context, nodes []Node) []replication.Node {
	out := make([]replication.Node, len(nodes))
	var wg sync.WaitGroup
	for i, n := range nodes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			out[i] = n.Observe(ctx)
		}()
	}
	wg.Wait()
	return out
}

func find(nodes []Node, name string) (Node, error) {
	for _, n := range nodes {
		if n.Name() == name {
			return n, nil
		}
	}
	return nil, fmt.Errorf("%s is not a node of this cluster", name)
}

func view(views []replication.Node, name string) replication.Node {
	for _, v := range views {
		if v.Name == name {
			return v
		}
	}
	return replication.Node{Name: name}
}

// semiSync reports whether the cluster ran semi-sync: a source or a
// replica with it enabled. A failover turns it back on where it was.
func semiSync(views []replication.Node) bool {
	for _, v := range views {
		if v.SemiSyncMaster || v.SemiSyncSlave {
			return true
		}
	}
	return false
}

// SplitAddress splits host:port for CHANGE MASTER.
func SplitAddress(addr string) (string, int, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return "", 0, fmt.Errorf("address %q: %w", addr, err)
	}
	p, err := strconv.Atoi(port)
	if err != nil || p <= 0 || p > 65535 {
		return "", 0, fmt.Errorf("address %q: port is not 1..65535", addr)
	}
	return host, p, nil
}

// Seeder is a Node that can be rebuilt from a physical copy of another
// node (replication-reseed): the appliance's nodes, through their agents.
type Seeder interface {
	// Reseed rebuilds the node from a fresh mariadb-backup of donor,
	// keeping its old datadir aside, and makes it a replica of source
	// (host:port) from the backup's GTID position.
	Reseed(ctx context.Context, donor Node, source string, semiSync bool) (Reseeded, error)
	// Diverged lists the GTIDs of the node's binary logs that than (a
	// gtid_binlog_state) lacks: exactly what a rebuild gives up.
	Diverged(ctx context.Context, than string) (DivergedGTIDs, error)
}

// DivergedGTIDs is what a node's binary logs hold that another lacks.
type DivergedGTIDs struct {
	GTIDs []string `json:"gtids"`
	// Count counts them all; GTIDs keeps the newest 1000.
	Count int      `json:"count"`
	Files []string `json:"binlog_files"`
}

// Reseeded is what a reseed did.
type Reseeded struct {
	OldDataDir     string `json:"old_datadir"`
	DataDir        string `json:"datadir"`
	SlavePos       string `json:"gtid_slave_pos"`
	DonorBinlogPos string `json:"donor_gtid_binlog_pos,omitempty"`
	StreamBytes    int64  `json:"stream_bytes"`
	StreamMs       int64  `json:"stream_ms"`
	PrepareMs      int64  `json:"prepare_ms"`
	DownMs         int64  `json:"down_ms"`
	TookMs         int64  `json:"took_ms"`
}
