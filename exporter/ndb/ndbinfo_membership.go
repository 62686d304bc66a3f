package ndb

import (
	"context"
	"strconv"

	"github.com/nines-project/nines/internal/metric"
)

const membershipQuery = `SELECT node_id, group_id, president, successor, arbitrator, arb_ticket, arb_state, arb_connected FROM ndbinfo.membership`

// ArbState is membership.arb_state: ARBIT_NULL..ARBIT_CRASH (0..8), or
// ArbUnknown for the view's "UNKNOWN" and any other text [A.1.1].
type ArbState int

const ArbUnknown ArbState = -1

const ArbRun ArbState = 6 // ARBIT_RUN: the healthy state on every node [A.4]

var arbStateNames = []string{"ARBIT_NULL", "ARBIT_INIT", "ARBIT_FIND", "ARBIT_PREP1", "ARBIT_PREP2", "ARBIT_START", "ARBIT_RUN", "ARBIT_CHOOSE", "ARBIT_CRASH"}

func (s ArbState) String() string {
	if s >= 0 && int(s) < len(arbStateNames) {
		return arbStateNames[s]
	}
	return "UNKNOWN"
}

// MembershipRow is one started data node's view of the heartbeat ring
// and the arbitrator. In a healthy cluster every node agrees on
// president, successor, arbitrator, ticket and state [A.1.1].
type MembershipRow struct {
	NodeID, GroupID      int
	President, Successor int
	Arbitrator           int
	ArbTicket            string // hex, as the view shows it
	ArbState             ArbState
	// ArbConnected is 1 (Yes), 0 (No) or -1 for anything else.
	ArbConnected int
}

func readMembership(ctx context.Context, q Querier, n *Ndbinfo) error {
	return scan(ctx, q, membershipQuery, func(c *cells) {
		id, ok := c.id("node_id")
		if !ok {
			return
		}
		r := MembershipRow{NodeID: id, GroupID: int(c.uint("group_id")), President: int(c.uint("president")),
			Successor: int(c.uint("successor")), Arbitrator: int(c.uint("arbitrator")), ArbTicket: c.str("arb_ticket"),
			ArbState: ArbState(c.enum("arb_state", arbStateNames))}
		switch c.enum("arb_connected", []string{"No", "Yes"}) {
		case 1:
			r.ArbConnected = 1
		case 0:
			r.ArbConnected = 0
		default:
			r.ArbConnected = -1
		}
		if _, err := strconv.ParseUint(r.ArbTicket, 16, 64); err != nil && r.ArbTicket != "" {
			c.fail("arb_ticket", "%q is not a hexadecimal ticket", r.ArbTicket)
		}
		n.Membership = append(n.Membership, r)
	})
}

// membershipMetrics: the fork's six series with node_id and group_id
// [A.5]; arb_ticket is the hex ticket as a number (the fork's
// CONV(arb_ticket,16,10)), -1 when it cannot be read.
func membershipMetrics(set *metric.Set, rows []MembershipRow) {
	for _, r := range rows {
		l := []string{"node_id", itoa(r.NodeID), "group_id", itoa(r.GroupID)}
		ticket := -1.0
		if v, err := strconv.ParseUint(r.ArbTicket, 16, 64); err == nil {
			ticket = float64(v)
		}
		set.Add("mysql_ndbinfo_membership_president", "Node id of the president (master) as this node sees it.", metric.Gauge, float64(r.President), l...)
		set.Add("mysql_ndbinfo_membership_successor", "Node id of the president's successor as this node sees it.", metric.Gauge, float64(r.Successor), l...)
		set.Add("mysql_ndbinfo_membership_arbitrator", "Node id of the arbitrator as this node sees it, 0 if none.", metric.Gauge, float64(r.Arbitrator), l...)
		set.Add("mysql_ndbinfo_membership_arb_ticket", "Arbitration ticket as a number; all nodes should agree.", metric.Gauge, ticket, l...)
		set.Add("mysql_ndbinfo_membership_arb_state", "Arbitration state: 0 ARBIT_NULL .. 6 ARBIT_RUN .. 8 ARBIT_CRASH, -1 unknown.", metric.Gauge, float64(r.ArbState), l...)
		set.Add("mysql_ndbinfo_membership_arb_connected", "1 when this node is connected to the arbitrator, 0 when not, -1 unknown.", metric.Gauge, float64(r.ArbConnected), l...)
	}
}
