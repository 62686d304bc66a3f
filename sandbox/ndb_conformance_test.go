//go:build cluster

package sandbox

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"slices"
	"strings"
	"testing"
	"time"

	mgm "github.com/nines-project/nines/exporter/ndb"
	"github.com/nines-project/nines/internal/ndbtranscript"
	"github.com/nines-project/nines/internal/testbin"
	"github.com/nines-project/nines/ndb"
)

// TestNDBConformanceOverProcesses replays the facts' mgm transcripts
// (part A.2, internal/ndbtranscript: the same ones sandbox/ndbsim's
// TestConformance replays in process) against the management port of a
// `nines sandbox ndb` run as real processes. One sandbox per cluster
// shape the transcripts name, transcripts in file order; before/after
// actions go through what an operator has (the mgm protocol, killing
// or stopping a process), and after each transcript the sandbox is
// brought back to every node started. The nodes report 127.0.0.1, which
// stands for the transcripts' host=10.0.0.1.
func TestNDBConformanceOverProcesses(t *testing.T) {
	sideBySide(t)
	all, err := ndbtranscript.Load()
	if err != nil {
		t.Fatal(err)
	}
	if len(all) < 25 {
		t.Fatalf("read %d transcripts, want the 25 of transcripts.txt", len(all))
	}
	type shape struct{ data, replicas, sql int }
	var shapes []shape
	groups := map[shape][]*ndbtranscript.Transcript{}
	for _, tr := range all {
		s := shape{tr.Cluster.DataNodes, tr.Cluster.Replicas, tr.Cluster.SQLNodes}
		if groups[s] == nil {
			shapes = append(shapes, s)
		}
		groups[s] = append(groups[s], tr)
	}
	for _, s := range shapes {
		t.Run(fmt.Sprintf("data=%d,replicas=%d,sql=%d", s.data, s.replicas, s.sql), func(t *testing.T) {
			dir := sandboxDir(t)
			stopOnCleanup(t, dir)
			ctx := testContext(t, 10*time.Minute)
			opts := NDBOptions{Dir: dir, DataNodes: s.data, Replicas: s.replicas, SQLNodes: s.sql, BasePort: ndbClusterBasePort(t, s.sql), Binary: ninesBin, Log: t.Output()}
			n, err := StartNDB(ctx, opts)
			if err != nil {
				t.Fatal(err)
			}
			p := &procTarget{t: t, ctx: ctx, n: n, opts: opts}
			tg := ndbtranscript.Target{Addr: n.MgmAddress(), Host: "127.0.0.1", Act: p.act, Timeout: 10 * time.Second}
			for _, tr := range groups[s] {
				t.Run(tr.Name, func(t *testing.T) { ndbtranscript.Replay(t, tr, tg) })
				p.reset()
			}
		})
	}
}

// ndbClusterBasePort takes from testbin.ClusterPorts a base port whose
// NDB sandbox ports are all free: mgm P, link P+1, SQL nodes P+10+i and
// their agents P+200+i. Every port up to the highest is taken from the
// block, so no later caller gets one of them.
func ndbClusterBasePort(t *testing.T, sql int) int {
	t.Helper()
	for tries := 0; tries < 3; tries++ {
		base, err := testbin.ClusterPorts.Next()
		if err != nil {
			t.Fatal(err)
		}
		need := []int{base + 1}
		for i := 0; i < sql; i++ {
			need = append(need, base+10+i, base+agentPortOffset+i)
		}
		top := slices.Max(need)
		got := map[int]bool{}
		for p := base; p < top; {
			if p, err = testbin.ClusterPorts.Next(); err != nil {
				t.Fatal(err)
			}
			got[p] = true
		}
		free := true
		for _, p := range need {
			free = free && got[p]
		}
		if free {
			return base
		}
	}
	t.Fatal("no base port with every NDB sandbox port free in testbin.ClusterPorts")
	return 0
}

// procTarget acts on a process sandbox for the transcripts.
type procTarget struct {
	t    *testing.T
	ctx  context.Context
	n    *NDB
	opts NDBOptions
}

// call sends one mgm request and wants result: Ok (or no result line).
func (p *procTarget) call(lines ...string) error {
	conn, err := net.DialTimeout("tcp", p.n.MgmAddress(), 5*time.Second)
	if err != nil {
		return err
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := fmt.Fprint(conn, strings.Join(lines, "\n")+"\n\n"); err != nil {
		return err
	}
	reply, err := ndbtranscript.ReadFrame(bufio.NewReader(conn), false)
	if err != nil {
		return fmt.Errorf("%s: %w", lines[0], err)
	}
	for _, l := range reply {
		if r, ok := strings.CutPrefix(l, "result: "); ok && r != "Ok" {
			return fmt.Errorf("%s: %s", lines[0], strings.Join(reply, " | "))
		}
	}
	return nil
}

func (p *procTarget) status(id int) (ndb.NodeStatus, error) {
	c := mgm.NewMgm(mgm.MgmConfig{Addr: p.n.MgmAddress()})
	defer c.Close()
	nodes, err := c.GetStatus(p.ctx)
	if err != nil {
		return 0, err
	}
	return statusOf(nodes, id), nil
}

func (p *procTarget) waitStatus(id int, want ndb.NodeStatus) error {
	deadline := time.Now().Add(10 * time.Second)
	for {
		st, err := p.status(id)
		if err == nil && st == want {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("node %d is %v, want %v (%v)", id, st, want, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// act: down kills a data node's process or stops an SQL node's server;
// stop, restart-nostart and single-user are mgm requests, as ndb_mgm
// sends them. Each returns once get status shows the result.
func (p *procTarget) act(a ndbtranscript.Action) error {
	l := p.n.ndb()
	switch a.Verb {
	case "down":
		if i := slices.Index(l.SQLNodeIDs, a.Node); i >= 0 {
			if err := p.n.StopNode(p.ctx, p.n.Nodes()[i].Name); err != nil {
				return err
			}
		} else if err := p.n.Kill(a.Node); err != nil {
			return err
		}
		return p.waitStatus(a.Node, ndb.StatusNoContact)
	case "stop":
		if err := p.call("stop v2", fmt.Sprintf("node: %d", a.Node), "abort: 0", "force: 0"); err != nil {
			return err
		}
		return p.waitStatus(a.Node, ndb.StatusNoContact)
	case "restart-nostart":
		if err := p.call("restart node v2", fmt.Sprintf("node: %d", a.Node), "abort: 0", "initialstart: 0", "nostart: 1", "force: 0"); err != nil {
			return err
		}
		return p.waitStatus(a.Node, ndb.StatusNotStarted)
	case "single-user":
		return p.call("enter single user", fmt.Sprintf("nodeId: %d", a.Node))
	}
	return fmt.Errorf("unknown action %q", a)
}

// reset brings the sandbox back to every node started after a
// transcript: single user mode left, nodes waiting after RESTART -n
// started, processes that a STOP or a kill ended run again.
func (p *procTarget) reset() {
	t := p.t
	t.Helper()
	if err := p.call("exit single user"); err != nil {
		t.Fatalf("reset: %v", err)
	}
	c := mgm.NewMgm(mgm.MgmConfig{Addr: p.n.MgmAddress()})
	defer c.Close()
	nodes, err := c.GetStatus(p.ctx)
	if err != nil {
		t.Fatalf("reset: %v", err)
	}
	if p.allRunning(nodes) {
		// Most transcripts only read: a StartNDB that finds nothing to
		// start still costs about 2 s (provisioning, the wait), 25 times.
		return
	}
	for _, nd := range nodes {
		if nd.Type != ndb.TypeNDB {
			continue
		}
		switch nd.Status {
		case ndb.StatusNotStarted:
			if err := p.call("start", fmt.Sprintf("node: %d", nd.ID)); err != nil {
				t.Fatalf("reset: %v", err)
			}
		case ndb.StatusNoContact:
			// mgmd tells the process to shut down; start it once gone.
			waitFor(t, 5*time.Second, fmt.Sprintf("data node %d's process to end", nd.ID), func() (bool, error) {
				pid, err := p.n.DataNodePid(nd.ID)
				return pid == 0, err
			})
		}
	}
	// What is not running starts again (SQL nodes first, then data
	// nodes), and this returns once all are STARTED and synced.
	o := p.opts
	o.Log = t.Output()
	n, err := StartNDB(p.ctx, o)
	if err != nil {
		t.Fatalf("reset: %v", err)
	}
	p.n = n
}

// allRunning reports whether every data node is STARTED and every data
// and SQL node's process runs: nothing for reset to do.
func (p *procTarget) allRunning(nodes []ndb.Node) bool {
	for _, nd := range nodes {
		if nd.Type != ndb.TypeNDB {
			continue
		}
		if nd.Status != ndb.StatusStarted {
			return false
		}
		if pid, err := p.n.DataNodePid(nd.ID); err != nil || pid == 0 {
			return false
		}
	}
	for _, sql := range p.n.Nodes() {
		if pid, err := p.n.Pid(sql.Name); err != nil || pid == 0 {
			return false
		}
	}
	return true
}
