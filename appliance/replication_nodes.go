package appliance

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/nines-project/nines/agent"
	replrb "github.com/nines-project/nines/remediator/replication"
	"github.com/nines-project/nines/replication"
)

// replNode drives one server of a replication cluster through its host
// agent for the replication runbooks. Its name is the node's SQL address.
type replNode struct {
	name     string
	priority int
	c        *agent.Client // nil: the node has no agent
}

var _ replrb.Node = (*replNode)(nil)

func (n *replNode) Name() string { return n.name }

// Observe reads the node through its agent within 3 s: a failover
// decides on fresh reads and must not wait on a dead host for long.
func (n *replNode) Observe(ctx context.Context) replication.Node {
	out := replication.Node{Name: n.name, Priority: n.priority}
	if n.c == nil {
		out.Error = errNoAgent.Error()
		return out
	}
	ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	st, err := n.c.Replication(ctx)
	if err != nil {
		out.Error = err.Error()
		return out
	}
	out.Reachable, out.Running, out.Error = true, st.Running, st.Error
	if !st.Readable {
		return out
	}
	binlog, err := replication.ParseState(st.GTIDBinlogState)
	if err != nil {
		out.Error = fmt.Sprintf("gtid_binlog_state: %v", err)
		return out
	}
	out.Readable, out.ServerID, out.ReadOnly, out.Binlog = true, st.ServerID, st.ReadOnly, binlog
	out.SemiSyncMaster, out.SemiSyncSlave = st.SemiSyncMaster, st.SemiSyncSlave
	if c := st.Replica; c != nil {
		recv, err := replication.ParseState(c.GTIDIOPos)
		if err != nil {
			// Unreadable is never a candidate: better than a wrong position.
			out.Readable, out.Error = false, fmt.Sprintf("Gtid_IO_Pos: %v", err)
			return out
		}
		out.Link = &replication.Link{Source: c.Source(), IO: c.IO, SQLRunning: c.SQLRunning, Received: recv,
			LastIOError: c.LastIOError, LastSQLErrno: c.LastSQLErrno, LastSQLError: c.LastSQLError}
	}
	return out
}

func (n *replNode) client() (*agent.Client, error) {
	if n.c == nil {
		return nil, errNoAgent
	}
	return n.c, nil
}

func (n *replNode) Fence(ctx context.Context, stop bool) (replrb.Fenced, error) {
	c, err := n.client()
	if err != nil {
		return replrb.Fenced{}, err
	}
	res, err := c.Fence(ctx, agent.FenceRequest{Stop: stop})
	if err != nil {
		return replrb.Fenced{}, fmt.Errorf("fence %s: %w", n.name, err)
	}
	return replrb.Fenced{ReadOnly: res.ReadOnly, Stopped: res.Stopped, Binlog: res.Binlog, BinlogPos: res.BinlogPos, Note: res.Note}, nil
}

func (n *replNode) WaitApplied(ctx context.Context, until string, limit time.Duration) (string, error) {
	c, err := n.client()
	if err != nil {
		return "", err
	}
	secs := max(1, int(limit.Seconds()))
	ctx, cancel := context.WithTimeout(ctx, limit+agentTimeout)
	defer cancel()
	res, err := c.WaitApplied(ctx, agent.WaitAppliedRequest{TimeoutSeconds: secs, Until: until})
	if err != nil {
		return "", fmt.Errorf("wait for %s to apply: %w", n.name, err)
	}
	return res.Binlog, nil
}

// semiSyncWait is how long an opening primary waits for a semi-sync
// replica to connect: the repointed replicas connect within
// master_connect_retry (1 s) of START SLAVE.
const semiSyncWait = 2 * time.Second

func (n *replNode) Promote(ctx context.Context, semiSync, open bool) (replrb.Promoted, error) {
	c, err := n.client()
	if err != nil {
		return replrb.Promoted{}, err
	}
	ctx, cancel := context.WithTimeout(ctx, agentTimeout)
	defer cancel()
	res, err := c.Promote(ctx, agent.PromoteRequest{SemiSync: semiSync, Open: open, SemiSyncWaitMs: int(semiSyncWait.Milliseconds())})
	if err != nil {
		return replrb.Promoted{}, fmt.Errorf("promote %s: %w", n.name, err)
	}
	return replrb.Promoted{Binlog: res.Binlog, SemiSyncClients: res.SemiSyncClients, ReadOnly: res.ReadOnly, Note: res.Note}, nil
}

func (n *replNode) Replicate(ctx context.Context, source string, semiSync, fromBinlog bool) error {
	c, err := n.client()
	if err != nil {
		return err
	}
	host, port, err := replrb.SplitAddress(source)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, agentTimeout)
	defer cancel()
	if _, err := c.Replicate(ctx, agent.ReplicateRequest{SourceHost: host, SourcePort: port, SemiSync: semiSync, FromBinlog: fromBinlog}); err != nil {
		return fmt.Errorf("point %s at %s: %w", n.name, source, err)
	}
	return nil
}

var _ replrb.Seeder = (*replNode)(nil)

// Reseed relays a seed stream from the donor's agent to this node's: the
// appliance already holds both agents' tokens and TLS settings, so the
// agents need no trust in each other. The stream passes through here
// once, never stored.
func (n *replNode) Reseed(ctx context.Context, donor replrb.Node, source string, semiSync bool) (replrb.Reseeded, error) {
	c, err := n.client()
	if err != nil {
		return replrb.Reseeded{}, err
	}
	d, ok := donor.(*replNode)
	if !ok || d.c == nil {
		return replrb.Reseeded{}, fmt.Errorf("donor %s: %w", donor.Name(), errNoAgent)
	}
	host, port, err := replrb.SplitAddress(source)
	if err != nil {
		return replrb.Reseeded{}, err
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stream, err := d.c.SeedStream(ctx, agent.SeedStreamRequest{})
	if err != nil {
		return replrb.Reseeded{}, fmt.Errorf("start the copy of %s: %w", d.name, err)
	}
	defer stream.Close()
	rec := &readErr{r: stream}
	res, err := c.Reseed(ctx, agent.ReseedRequest{SourceHost: host, SourcePort: port, SemiSync: semiSync}, rec)
	if err != nil {
		if rec.err != nil {
			// The donor's side broke first: say so, not only that the
			// upload was cut.
			err = fmt.Errorf("%w (the donor's stream: %v)", err, rec.err)
		}
		return replrb.Reseeded{}, fmt.Errorf("rebuild %s from %s: %w", n.name, d.name, err)
	}
	return replrb.Reseeded{OldDataDir: res.Aside, DataDir: res.DataDir, SlavePos: res.SlavePos, DonorBinlogPos: res.DonorBinlogPos,
		StreamBytes: res.StreamBytes, StreamMs: res.StreamMs, PrepareMs: res.PrepareMs, DownMs: res.DownMs, TookMs: res.TookMs}, nil
}

func (n *replNode) Diverged(ctx context.Context, than string) (replrb.DivergedGTIDs, error) {
	c, err := n.client()
	if err != nil {
		return replrb.DivergedGTIDs{}, err
	}
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	res, err := c.Diverged(ctx, agent.DivergedRequest{Than: than})
	if err != nil {
		return replrb.DivergedGTIDs{}, fmt.Errorf("read the binary logs of %s: %w", n.name, err)
	}
	return replrb.DivergedGTIDs{GTIDs: res.GTIDs, Count: res.Count, Files: res.Files}, nil
}

// readErr remembers the first error other than EOF of the reader.
type readErr struct {
	r   io.Reader
	err error
}

func (e *readErr) Read(p []byte) (int, error) {
	n, err := e.r.Read(p)
	if err != nil && err != io.EOF && e.err == nil {
		e.err = err
	}
	return n, err
}
