package replication

import (
	"fmt"
	"strings"
)

// DonorUnfit says why n may not give its data to rebuild another node, or
// "": a donor is a readable, read-only replica of primary with both
// threads running, no failed SQL thread and no errant transaction. The
// primary is never a donor (a backup would load it).
func DonorUnfit(n Node, primary string, nodes []Node) string {
	switch {
	case n.Name == primary:
		return "it is the primary"
	case !n.Readable:
		return "cannot be read (" + n.Error + ")"
	case !n.ReadOnly:
		return "it takes writes (read_only OFF)"
	case n.Link == nil:
		return "it replicates from nobody"
	case n.Link.Source != primary:
		return "it replicates from " + n.Link.Source + ", not from the primary " + primary
	case n.Link.IO != "Yes" || !n.Link.SQLRunning:
		return fmt.Sprintf("its replica threads do not both run (IO %s, SQL running %v)", n.Link.IO, n.Link.SQLRunning)
	case n.Link.LastSQLErrno != 0:
		return fmt.Sprintf("its SQL thread failed (error %d)", n.Link.LastSQLErrno)
	}
	if errant := Errant(n, nodes); len(errant) > 0 {
		return "errant transactions " + strings.Join(errant, ", ")
	}
	return ""
}

// Donor picks the replica whose copy rebuilds target: want when given
// (and fit), otherwise the most advanced fit replica of primary, ties
// broken by priority, then configuration order.
func Donor(primary, target string, nodes []Node, want string) (Choice, error) {
	var cands []candidate
	var passed []string
	for i, n := range nodes {
		if n.Name == target {
			continue
		}
		if why := DonorUnfit(n, primary, nodes); why != "" {
			if n.Name == want {
				return Choice{}, fmt.Errorf("donor %s may not give its data: %s", want, why)
			}
			if n.Name != primary {
				passed = append(passed, n.Name+": "+why)
			}
			continue
		}
		if want == "" || n.Name == want {
			cands = append(cands, candidate{n, i})
		}
	}
	switch {
	case want == target && want != "":
		return Choice{}, fmt.Errorf("donor %s is the node to rebuild", want)
	case want != "" && len(cands) == 0:
		return Choice{}, fmt.Errorf("donor %s is not a node of this cluster", want)
	case len(cands) == 0:
		return Choice{Passed: passed}, fmt.Errorf("no healthy replica of %s to copy from (the primary is never used): %s", primary, strings.Join(passed, "; "))
	}
	rank(cands)
	best := cands[0]
	reason := "the most advanced healthy replica"
	if want != "" {
		reason = "named by the operator"
	}
	return Choice{Node: best.n.Name, Holds: best.n.Holds().String(), Passed: passed, Reasons: reason}, nil
}
