package galera

import (
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/nines-project/nines"
)

// Observed is what a quorum recovery knows about one configured node at
// one moment. A node whose agent did not answer (or that has no agent)
// has Reachable false and nothing else: it may be anything, Primary
// included.
type Observed struct {
	Name      string `json:"name"`
	Reachable bool   `json:"reachable"`
	Running   bool   `json:"running"`
	// Error says why the node could not be read, when it could not.
	Error string `json:"error,omitempty"`
	// Wsrep is the running server's status; nil when it could not be read.
	Wsrep *nines.GaleraStatus `json:"wsrep,omitempty"`
	// Grastate is grastate.dat as the agent read it; nil when missing.
	Grastate *Grastate `json:"grastate,omitempty"`
	// Gvwstate is the last Primary view the node saved; nil when it has
	// none (left gracefully, never Primary) or it could not be read.
	Gvwstate *Gvwstate `json:"gvwstate,omitempty"`
	// Recovered is the stopped node's --wsrep-recover position; RecoverError
	// says why there is none.
	Recovered    *Position `json:"recovered,omitempty"`
	RecoverError string    `json:"recover_error,omitempty"`
	// Vantage is what the node's host sees of the Galera network, asked
	// while some node does not answer; nil when not asked.
	Vantage *Vantage `json:"vantage,omitempty"`
}

// Vantage is one host's view of its cluster's Galera ports: how many of
// the peers in its wsrep_cluster_address (its own included) accept a
// connection. Error says why it could not tell.
type Vantage struct {
	Reached int    `json:"reached"`
	Of      int    `json:"of"`
	Error   string `json:"error,omitempty"`
}

// Action is what a quorum recovery does next.
type Action string

const (
	// ActBootstrap forms a Primary component on Decision.Node.
	ActBootstrap Action = "bootstrap"
	// ActWait observes again later: some nodes have not answered yet.
	ActWait Action = "wait"
	// ActRefuse ends the recovery as failed (which pages): no node may be
	// bootstrapped without a person's decision.
	ActRefuse Action = "refuse"
	// ActNone ends it as aborted: a node is Primary, nothing to recover.
	ActNone Action = "none"
)

// DecideInput is everything a bootstrap decision rests on.
type DecideInput struct {
	// Nodes holds one entry per configured node, in config order; the
	// majority denominator is always len(Nodes).
	Nodes []Observed `json:"nodes"`
	// Waited is how long the recovery has waited for nodes to answer;
	// PositionWait how long it waits at most.
	Waited       time.Duration `json:"waited_ns"`
	PositionWait time.Duration `json:"position_wait_ns"`
	// Force is the node an admin named to override the refusals.
	Force string `json:"force_node,omitempty"`
	// PriorBootstrap is the node an automatic bootstrap of the same
	// incident already made Primary ("" when none): while it cannot be
	// read it may still be Primary, so no second one is made.
	PriorBootstrap string `json:"prior_bootstrap,omitempty"`
}

// Decision is the outcome: the action, the node and position for a
// bootstrap, why, and what the job log must warn about.
type Decision struct {
	Action   Action   `json:"action"`
	Node     string   `json:"node,omitempty"`
	Position Position `json:"position"`
	Reason   string   `json:"reason"`
	Warnings []string `json:"warnings,omitempty"`
}

// Decide is the quorum-recovery bootstrap decision (DESIGN.md rule 3):
//
//   - any readable node is Primary: nothing to do;
//   - the node an earlier bootstrap of this incident made cannot be read:
//     refuse, it may be Primary;
//   - a readable node whose position cannot be learned, or nodes on
//     different histories: refuse, a bootstrap could drop the newest data;
//   - every node answered: bootstrap the most advanced;
//   - some did not: wait up to PositionWait, then bootstrap the most
//     advanced of those that answered only if they are a majority of the
//     configured nodes and of the last Primary view saved on disk.
//
// Force overrides the refusals and the wait, never a live Primary.
func Decide(in DecideInput) Decision {
	if d, ok := primaryExists(in.Nodes); ok {
		return d
	}
	if in.Force != "" {
		return forced(in)
	}
	if d, ok := priorBootstrapUnread(in); ok {
		return d
	}
	cands, blocked := positions(in.Nodes)
	if len(blocked) > 0 {
		return refuse("cannot learn the position of %s: a bootstrap could leave out the most advanced node", strings.Join(blocked, "; "))
	}
	missing := unreadable(in.Nodes)
	if len(missing) > 0 && in.Waited < in.PositionWait {
		return Decision{Action: ActWait, Reason: fmt.Sprintf("%s did not answer: they may hold later transactions; waiting up to %s more for them",
			strings.Join(missing, ", "), (in.PositionWait - in.Waited).Round(time.Second))}
	}
	if len(missing) > 0 {
		if d, ok := noMajority(in.Nodes, missing); ok {
			return d
		}
		if d, ok := missingNodeRuns(in.Nodes, missing); ok {
			return d
		}
	}
	i, err := ChooseBootstrap(cands)
	if err != nil {
		return refuse("%v", err)
	}
	d := Decision{Action: ActBootstrap, Node: cands[i].Name, Position: cands[i].Position}
	if len(missing) == 0 {
		d.Reason = fmt.Sprintf("every node answered and none is Primary; %s holds the highest position %s", d.Node, d.Position)
	} else {
		d.Reason = fmt.Sprintf("%s holds the highest position %s of the %d nodes that answered, a majority of the %d configured and of the last Primary view",
			d.Node, d.Position, len(in.Nodes)-len(missing), len(in.Nodes))
		d.Warnings = append(d.Warnings, fmt.Sprintf("%s did not answer within position_wait %s: they may hold later transactions, which this bootstrap gives up",
			strings.Join(missing, ", "), in.PositionWait))
	}
	d.Warnings = append(d.Warnings, safeToBootstrapNotes(in.Nodes, d.Node)...)
	return d
}

func refuse(format string, args ...any) Decision {
	return Decision{Action: ActRefuse, Reason: fmt.Sprintf(format, args...)}
}

func primaryExists(nodes []Observed) (Decision, bool) {
	for _, n := range nodes {
		if n.Reachable && n.Running && n.Wsrep.Primary() {
			return Decision{Action: ActNone, Reason: fmt.Sprintf("%s is Primary (size %d): the cluster has a Primary component, nothing to recover", n.Name, n.Wsrep.ClusterSize)}, true
		}
	}
	return Decision{}, false
}

func priorBootstrapUnread(in DecideInput) (Decision, bool) {
	if in.PriorBootstrap == "" {
		return Decision{}, false
	}
	for _, n := range in.Nodes {
		if n.Name == in.PriorBootstrap && n.Reachable {
			return Decision{}, false // readable and, as checked, not Primary
		}
	}
	return refuse("%s was bootstrapped automatically earlier in this incident and cannot be read now: it may be Primary, and a second bootstrap would make two; a person must decide (a job started by hand, force_node to override)", in.PriorBootstrap), true
}

// learned is one readable node's position, or why it is unknown.
func learned(n Observed) (Position, error) {
	var p Position
	switch {
	case n.Running && n.Wsrep == nil:
		return Position{}, errors.New("it runs but its wsrep status cannot be read")
	case n.Running:
		p = CommittedPosition(n.Wsrep)
	case n.RecoverError != "":
		return Position{}, fmt.Errorf("--wsrep-recover failed: %s", n.RecoverError)
	case n.Recovered == nil:
		return Position{}, errors.New("its position was not recovered")
	default:
		p = *n.Recovered
	}
	if p.UUID != UndefinedUUID && !p.Known() {
		// A history without a committed seqno: bootstrapping or skipping
		// the node could both lose transactions.
		return Position{}, fmt.Errorf("its position %s names a history without a seqno", p)
	}
	return p, nil
}

// positions returns the candidates (readable nodes with a learned
// position) and, for readable nodes without one, why.
func positions(nodes []Observed) (cands []Candidate, blocked []string) {
	for _, n := range nodes {
		if !n.Reachable {
			continue
		}
		p, err := learned(n)
		if err != nil {
			blocked = append(blocked, n.Name+": "+err.Error())
			continue
		}
		cands = append(cands, Candidate{Name: n.Name, Position: p})
	}
	return cands, blocked
}

func unreadable(nodes []Observed) []string {
	var out []string
	for _, n := range nodes {
		if !n.Reachable {
			out = append(out, n.Name)
		}
	}
	return out
}

// noMajority refuses unless the readable nodes are a majority of the
// configured nodes and of the latest Primary view any of them saved. The
// view check catches a Primary component that formed without them (say,
// after they left gracefully): its members hold later transactions.
func noMajority(nodes []Observed, missing []string) (Decision, bool) {
	answered := len(nodes) - len(missing)
	if answered*2 <= len(nodes) {
		return refuse("only %d of %d configured nodes answered (%s did not): not a majority, so the missing ones may be Primary or hold later transactions",
			answered, len(nodes), strings.Join(missing, ", ")), true
	}
	view, ok := lastPrimaryView(nodes)
	if !ok {
		return refuse("no node that answered saved a Primary view (gvwstate.dat): %s may have formed the last Primary component after them",
			strings.Join(missing, ", ")), true
	}
	in := 0
	for _, n := range nodes {
		if n.Reachable && n.Gvwstate != nil && view.Has(n.Gvwstate.MyUUID) {
			in++
		}
	}
	if in*2 <= len(view.Members) {
		return refuse("only %d of the %d members of the last Primary view (gvwstate.dat, view seq %d) answered: not a majority of it",
			in, len(view.Members), view.View.Seq), true
	}
	return Decision{}, false
}

// missingNodeRuns refuses when a vantage point (the agent of a node that
// answered) reaches more Galera ports than there are running nodes among
// those that answered: a node that did not answer runs then, and may be
// Primary. It refuses too when no vantage point could be asked.
func missingNodeRuns(nodes []Observed, missing []string) (Decision, bool) {
	running, asked := 0, 0
	for _, n := range nodes {
		if n.Reachable && n.Running {
			running++
		}
	}
	for _, n := range nodes {
		if !n.Reachable || n.Vantage == nil || n.Vantage.Error != "" {
			continue
		}
		asked++
		if n.Vantage.Reached > running {
			return refuse("vantage point %s reaches %d Galera ports of its %d peers, but only %d of the nodes that answered run: %s may run, and be Primary",
				n.Name, n.Vantage.Reached, n.Vantage.Of, running, strings.Join(missing, ", ")), true
		}
	}
	if asked == 0 {
		return refuse("no vantage point could say whether %s still runs (no agent that answered could reach the Galera ports)", strings.Join(missing, ", ")), true
	}
	return Decision{}, false
}

// lastPrimaryView is the saved view with the highest sequence number among
// the readable nodes.
func lastPrimaryView(nodes []Observed) (Gvwstate, bool) {
	var best *Gvwstate
	for _, n := range nodes {
		if n.Reachable && n.Gvwstate != nil && (best == nil || n.Gvwstate.View.Seq > best.View.Seq) {
			best = n.Gvwstate
		}
	}
	if best == nil {
		return Gvwstate{}, false
	}
	return *best, true
}

// forced bootstraps the node an admin named, saying what it may give up.
func forced(in DecideInput) Decision {
	var chosen *Observed
	for i := range in.Nodes {
		if in.Nodes[i].Name == in.Force {
			chosen = &in.Nodes[i]
		}
	}
	if chosen == nil {
		return refuse("force_node %q is not a node of the cluster", in.Force)
	}
	if !chosen.Reachable {
		return refuse("force_node %s cannot be read (%s): nothing can be done on it", in.Force, chosen.Error)
	}
	d := Decision{Action: ActBootstrap, Node: in.Force, Reason: fmt.Sprintf("an admin forced %s", in.Force)}
	pos, err := learned(*chosen)
	if err != nil {
		d.Warnings = append(d.Warnings, fmt.Sprintf("the position of %s is unknown (%v): how many transactions the override gives up cannot be told", in.Force, err))
	} else {
		d.Position = pos
		d.Warnings = append(d.Warnings, givenUp(in.Nodes, in.Force, pos)...)
	}
	if missing := unreadable(in.Nodes); len(missing) > 0 {
		d.Warnings = append(d.Warnings, fmt.Sprintf("%s did not answer: they may hold later transactions", strings.Join(missing, ", ")))
	}
	return d
}

// givenUp compares the forced node's position with the others'.
func givenUp(nodes []Observed, name string, pos Position) []string {
	var out []string
	var max int64 = -1
	ahead := ""
	for _, n := range nodes {
		if n.Name == name || !n.Reachable {
			continue
		}
		p, err := learned(n)
		switch {
		case err != nil:
			out = append(out, fmt.Sprintf("the position of %s is unknown (%v)", n.Name, err))
		case p.UUID != pos.UUID && !p.Undefined():
			out = append(out, fmt.Sprintf("%s is on another history (%s): its data will be replaced when it joins", n.Name, p.UUID))
		case p.Seqno > max:
			max, ahead = p.Seqno, n.Name
		}
	}
	if max > pos.Seqno && pos.Known() {
		out = append(out, fmt.Sprintf("the override gives up %d transactions: %s is at seqno %d, %s at %d", max-pos.Seqno, ahead, max, name, pos.Seqno))
	} else if pos.Known() {
		out = append(out, fmt.Sprintf("no node that answered is ahead of %s: the override gives up no transaction known here", name))
	}
	return out
}

// safeToBootstrapNotes reports grastate's safe_to_bootstrap: Galera sets
// it on the last node to leave a Primary component gracefully.
func safeToBootstrapNotes(nodes []Observed, chosen string) []string {
	var safe []string
	for _, n := range nodes {
		if n.Grastate != nil && n.Grastate.SafeToBootstrap {
			safe = append(safe, n.Name)
		}
	}
	sort.Strings(safe)
	if len(safe) == 0 {
		return []string{"no grastate.dat has safe_to_bootstrap: 1 (the nodes crashed or lost quorum); the choice rests on the positions"}
	}
	note := fmt.Sprintf("safe_to_bootstrap: 1 on %s", strings.Join(safe, ", "))
	for _, s := range safe {
		if s == chosen {
			return []string{note}
		}
	}
	return []string{note + fmt.Sprintf("; %s is chosen by its higher position", chosen)}
}
