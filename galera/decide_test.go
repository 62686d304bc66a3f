package galera

import (
	"strings"
	"testing"
	"time"

	"github.com/nines-project/nines"
)

const (
	hist  = "9130690e-e921-11f1-b504-f6cb6679f2e6"
	other = "11111111-e921-11f1-b504-f6cb6679f2e6"
	// member UUIDs of the nodes in saved views
	mX = "aaaaaaaa-0000-0000-0000-000000000001"
	mY = "aaaaaaaa-0000-0000-0000-000000000002"
	mZ = "aaaaaaaa-0000-0000-0000-000000000003"
)

// Recorded node states, as the agents report them.

func crashed(name string, seqno int64) Observed {
	return Observed{Name: name, Reachable: true, Grastate: &Grastate{UUID: hist, Seqno: -1},
		Recovered: &Position{UUID: hist, Seqno: seqno}}
}

func gone(name string) Observed {
	return Observed{Name: name, Error: "context deadline exceeded"}
}

func nonPrim(name string, seqno int64) Observed {
	return Observed{Name: name, Reachable: true, Running: true, Grastate: &Grastate{UUID: hist, Seqno: -1},
		Wsrep: &nines.GaleraStatus{ClusterStatus: nines.ClusterStatusNonPrimary, ClusterStateUUID: hist, LastCommitted: seqno, ClusterSize: 1}}
}

func primary(name string, size int) Observed {
	return Observed{Name: name, Reachable: true, Running: true,
		Wsrep: &nines.GaleraStatus{ClusterStatus: nines.ClusterStatusPrimary, ClusterStateUUID: hist, LastCommitted: 90, ClusterSize: size}}
}

// inView gives o a saved Primary view: its own member UUID and the members.
func inView(o Observed, me string, seq int64, members ...string) Observed {
	g := &Gvwstate{MyUUID: me, View: ViewID{Type: ViewPrimary, UUID: members[0], Seq: seq}}
	for _, m := range members {
		g.Members = append(g.Members, Member{UUID: m})
	}
	o.Gvwstate = g
	return o
}

// seen gives o a vantage answer: it reaches that many of 3 Galera ports.
func seen(o Observed, reached int) Observed {
	o.Vantage = &Vantage{Reached: reached, Of: 3}
	return o
}

func with(o Observed, f func(*Observed)) Observed { f(&o); return o }

func TestDecide(t *testing.T) {
	wait := 2 * time.Minute
	cases := []struct {
		name   string
		in     DecideInput
		action Action
		node   string
		reason string // substring of the reason
		warn   string // substring of one warning
	}{
		{
			name:   "whole cluster crashed, every node answers: the most advanced, no wait",
			in:     DecideInput{Nodes: []Observed{crashed("n1", 40), crashed("n2", 42), crashed("n3", 41)}, PositionWait: wait},
			action: ActBootstrap, node: "n2", reason: "every node answered",
			warn: "no grastate.dat has safe_to_bootstrap",
		},
		{
			name:   "a Primary exists: nothing to do",
			in:     DecideInput{Nodes: []Observed{primary("n1", 2), crashed("n2", 3), primary("n3", 2)}, PositionWait: wait},
			action: ActNone, reason: "n1 is Primary",
		},
		{
			name:   "safe_to_bootstrap read and reported",
			in:     DecideInput{Nodes: []Observed{crashed("n1", 40), with(crashed("n2", 44), func(o *Observed) { o.Grastate.SafeToBootstrap = true }), crashed("n3", 41)}, PositionWait: wait},
			action: ActBootstrap, node: "n2", warn: "safe_to_bootstrap: 1 on n2",
		},
		{
			// Finding 1: X was bootstrapped, misses one status deadline;
			// Y and Z are 2 of 3 and answer. Before the position wait: wait.
			name: "finding 1 without an earlier bootstrap on record: wait first",
			in: DecideInput{Nodes: []Observed{gone("X"), inView(nonPrim("Y", 50), mY, 7, mX, mY, mZ), inView(nonPrim("Z", 50), mZ, 7, mX, mY, mZ)},
				Waited: 3 * time.Second, PositionWait: wait},
			action: ActWait, reason: "X did not answer",
		},
		{
			name: "finding 1: the node bootstrapped in this incident is unreadable: refuse, never a second Primary",
			in: DecideInput{Nodes: []Observed{gone("X"), inView(nonPrim("Y", 50), mY, 7, mX, mY, mZ), inView(nonPrim("Z", 50), mZ, 7, mX, mY, mZ)},
				Waited: time.Hour, PositionWait: wait, PriorBootstrap: "X"},
			action: ActRefuse, reason: "X was bootstrapped automatically earlier in this incident",
		},
		{
			name: "finding 1, earlier bootstrap readable and not Primary: decided as usual",
			in: DecideInput{Nodes: []Observed{nonPrim("X", 52), nonPrim("Y", 50), nonPrim("Z", 50)},
				PositionWait: wait, PriorBootstrap: "X"},
			action: ActBootstrap, node: "X",
		},
		{
			name:   "seqno -1 with a UUID after recovery: blocks",
			in:     DecideInput{Nodes: []Observed{crashed("n1", 40), crashed("n2", -1), crashed("n3", 41)}, PositionWait: wait},
			action: ActRefuse, reason: "n2: its position " + hist + ":-1 names a history without a seqno",
		},
		{
			name: "a readable node whose position cannot be learned blocks",
			in: DecideInput{Nodes: []Observed{crashed("n1", 40), with(crashed("n2", 0), func(o *Observed) { o.Recovered, o.RecoverError = nil, "InnoDB: corrupted page" }), crashed("n3", 41)},
				PositionWait: wait},
			action: ActRefuse, reason: "n2: --wsrep-recover failed: InnoDB: corrupted page",
		},
		{
			name:   "running node without a wsrep status blocks",
			in:     DecideInput{Nodes: []Observed{crashed("n1", 40), with(nonPrim("n2", 0), func(o *Observed) { o.Wsrep = nil }), crashed("n3", 41)}, PositionWait: wait},
			action: ActRefuse, reason: "n2: it runs but its wsrep status cannot be read",
		},
		{
			name: "UUID mismatch: refuse",
			in: DecideInput{Nodes: []Observed{crashed("n1", 50), crashed("n2", 51), with(crashed("n3", 60), func(o *Observed) { o.Recovered.UUID = other })},
				PositionWait: wait},
			action: ActRefuse, reason: "disagree on the cluster state UUID",
		},
		{
			name: "force: the transactions given up are counted",
			in: DecideInput{Nodes: []Observed{crashed("n1", 40), crashed("n2", 47), gone("n3")},
				PositionWait: wait, Force: "n1"},
			action: ActBootstrap, node: "n1", reason: "an admin forced n1",
			warn: "the override gives up 7 transactions: n2 is at seqno 47, n1 at 40",
		},
		{
			name:   "force never overrides a live Primary",
			in:     DecideInput{Nodes: []Observed{primary("n1", 1), crashed("n2", 47), gone("n3")}, PositionWait: wait, Force: "n2"},
			action: ActNone, reason: "n1 is Primary",
		},
		{
			name:   "force on an unreadable node: refuse",
			in:     DecideInput{Nodes: []Observed{crashed("n1", 40), crashed("n2", 47), gone("n3")}, PositionWait: wait, Force: "n3"},
			action: ActRefuse, reason: "force_node n3 cannot be read",
		},
		{
			name: "one node never came back: wait before position_wait",
			in: DecideInput{Nodes: []Observed{inView(crashed("n1", 40), mX, 9, mX, mY, mZ), inView(crashed("n2", 42), mY, 9, mX, mY, mZ), gone("n3")},
				Waited: time.Minute, PositionWait: wait},
			action: ActWait, reason: "n3 did not answer",
		},
		{
			name: "one node never came back: after position_wait, the most advanced of a majority, with the warning",
			in: DecideInput{Nodes: []Observed{seen(inView(crashed("n1", 40), mX, 9, mX, mY, mZ), 0), seen(inView(crashed("n2", 42), mY, 9, mX, mY, mZ), 0), gone("n3")},
				Waited: wait, PositionWait: wait},
			action: ActBootstrap, node: "n2", reason: "of the 2 nodes that answered",
			warn: "n3 did not answer within position_wait 2m0s: they may hold later transactions",
		},
		{
			// n3's agent is down but its server runs: n2's host reaches
			// its Galera port (n1 and n2 are stopped, so they reach none).
			name: "a vantage point reaches a Galera port of a node that did not answer: refuse",
			in: DecideInput{Nodes: []Observed{seen(inView(crashed("n1", 40), mX, 9, mX, mY, mZ), 0), seen(inView(crashed("n2", 42), mY, 9, mX, mY, mZ), 1), gone("n3")},
				Waited: wait, PositionWait: wait},
			action: ActRefuse, reason: "vantage point n2 reaches 1 Galera ports of its 3 peers, but only 0 of the nodes that answered run: n3 may run",
		},
		{
			name: "running survivors reach each other, not the missing node: bootstrap",
			in: DecideInput{Nodes: []Observed{seen(inView(nonPrim("n1", 40), mX, 9, mX, mY, mZ), 2), seen(inView(nonPrim("n2", 42), mY, 9, mX, mY, mZ), 2), gone("n3")},
				Waited: wait, PositionWait: wait},
			action: ActBootstrap, node: "n2",
		},
		{
			name: "no vantage point could be asked: refuse",
			in: DecideInput{Nodes: []Observed{inView(crashed("n1", 40), mX, 9, mX, mY, mZ), with(inView(crashed("n2", 42), mY, 9, mX, mY, mZ), func(o *Observed) { o.Vantage = &Vantage{Error: "no option file"} }), gone("n3")},
				Waited: wait, PositionWait: wait},
			action: ActRefuse, reason: "no vantage point could say whether n3 still runs",
		},
		{
			name: "two of three never came back: refuse after position_wait",
			in: DecideInput{Nodes: []Observed{inView(crashed("n1", 40), mX, 9, mX, mY, mZ), gone("n2"), gone("n3")},
				Waited: wait, PositionWait: wait},
			action: ActRefuse, reason: "only 1 of 3 configured nodes answered",
		},
		{
			// n1 and n2 left the cluster gracefully earlier (no gvwstate),
			// n3..n5 went on as Primary, then crashed; n3 alone comes back.
			// n1, n2, n3 are 3 of 5, but only 1 of the last view's 3.
			name: "a majority of the configured nodes but a minority of the last Primary view: refuse",
			in: DecideInput{Nodes: []Observed{
				with(crashed("n1", 30), func(o *Observed) { o.Grastate.Seqno = 30 }),
				with(crashed("n2", 30), func(o *Observed) { o.Grastate.Seqno = 30 }),
				inView(crashed("n3", 45), mX, 12, mX, mY, mZ),
				gone("n4"), gone("n5"),
			}, Waited: wait, PositionWait: wait},
			action: ActRefuse, reason: "only 1 of the 3 members of the last Primary view",
		},
		{
			name: "no answered node saved a Primary view: refuse",
			in: DecideInput{Nodes: []Observed{crashed("n1", 40), crashed("n2", 42), gone("n3")},
				Waited: wait, PositionWait: wait},
			action: ActRefuse, reason: "no node that answered saved a Primary view",
		},
		{
			name: "the newest saved view counts, not an older one",
			in: DecideInput{Nodes: []Observed{inView(crashed("n1", 40), mX, 3, mX, mY, mZ), inView(crashed("n2", 42), mY, 8, mY, mZ, "aaaaaaaa-0000-0000-0000-000000000004"), gone("n3")},
				Waited: wait, PositionWait: wait},
			action: ActRefuse, reason: "only 1 of the 3 members of the last Primary view (gvwstate.dat, view seq 8)",
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			d := Decide(c.in)
			if d.Action != c.action || d.Node != c.node {
				t.Fatalf("decision %s %q (%s), want %s %q", d.Action, d.Node, d.Reason, c.action, c.node)
			}
			if !strings.Contains(d.Reason, c.reason) {
				t.Errorf("reason %q lacks %q", d.Reason, c.reason)
			}
			if c.warn != "" && !strings.Contains(strings.Join(d.Warnings, "\n"), c.warn) {
				t.Errorf("warnings %q lack %q", d.Warnings, c.warn)
			}
			if d.Action == ActBootstrap && c.in.Force == "" && !d.Position.Known() {
				t.Errorf("bootstrap at unknown position %s", d.Position)
			}
		})
	}
}
