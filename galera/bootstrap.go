package galera

import (
	"errors"
	"fmt"
	"strings"
)

// Candidate is one node's recovered position, as input to ChooseBootstrap.
type Candidate struct {
	Name     string
	Position Position
}

var (
	// ErrUUIDMismatch means nodes belong to different histories. Picking
	// one would throw away the other's writes, so a human must decide.
	ErrUUIDMismatch = errors.New("nodes disagree on the cluster state UUID")
	// ErrNoCandidate means no node has a known committed seqno.
	ErrNoCandidate = errors.New("no node has a known position")
	// ErrUnknownPosition means a position without a committed seqno was
	// used where one is needed.
	ErrUnknownPosition = errors.New("position has no committed seqno")
)

// ChooseBootstrap returns the index of the node that must bootstrap the
// new Primary component: the one with the highest seqno of the cluster's
// history. Ties go to the lowest index so the same input always gives the
// same node.
//
// A node at the undefined position (all-zero UUID, seqno -1) has no
// history to contribute, like a freshly installed one, and is left out. A
// node with a real UUID but seqno -1 is not eligible, since its committed
// seqno is unknown, nor is one with the all-zero UUID and a seqno, which
// names no history a joiner could follow; but their UUIDs still count: every node that states a
// UUID must state the same one, else ErrUUIDMismatch. When no node is
// eligible the error wraps ErrNoCandidate; the caller decides what a
// cluster without any history means (a sandbox bootstraps its first node,
// the remediator pages a human).
func ChooseBootstrap(cands []Candidate) (int, error) {
	best := -1
	uuidOwner := -1
	for i, c := range cands {
		p := c.Position
		if p.Undefined() {
			continue
		}
		if uuidOwner < 0 {
			uuidOwner = i
		} else if p.UUID != cands[uuidOwner].Position.UUID {
			return -1, fmt.Errorf("%w: %s has %q, %s has %q", ErrUUIDMismatch,
				nameOf(cands, uuidOwner), cands[uuidOwner].Position.UUID, nameOf(cands, i), p.UUID)
		}
		if !p.Known() {
			continue
		}
		if best < 0 || p.Seqno > cands[best].Position.Seqno {
			best = i
		}
	}
	if best < 0 {
		return -1, fmt.Errorf("%w among %s", ErrNoCandidate, describe(cands))
	}
	return best, nil
}

func nameOf(cands []Candidate, i int) string {
	if cands[i].Name != "" {
		return fmt.Sprintf("%q", cands[i].Name)
	}
	return fmt.Sprintf("node %d", i)
}

func describe(cands []Candidate) string {
	if len(cands) == 0 {
		return "no nodes"
	}
	parts := make([]string, len(cands))
	for i, c := range cands {
		parts[i] = nameOf(cands, i) + " at " + fmt.Sprintf("%q", c.Position.String())
	}
	return strings.Join(parts, ", ")
}
