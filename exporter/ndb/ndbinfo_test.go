package ndb

import (
	"database/sql"
	"errors"
	"testing"

	ndbmsg "github.com/nines-project/nines/ndb"
)

// TestStatusValue: the fork's encoding of mysql_ndbinfo_nodes_status.
func TestStatusValue(t *testing.T) {
	for _, c := range []struct {
		row  NodeRow
		want float64
	}{
		{NodeRow{State: NodeStarted}, 3},
		{NodeRow{State: NodeStarting, StartPhase: 4}, 2.4},
		{NodeRow{State: NodeStarting, StartPhase: 101}, 2.101},
		{NodeRow{State: NodeStopping4}, 8},
		{NodeRow{State: NodeStateUnknown}, -1},
	} {
		if got := statusValue(c.row); got != c.want {
			t.Errorf("%v phase %d: %v, want %v", c.row.State, c.row.StartPhase, got, c.want)
		}
	}
}

// TestCellsUint: DECIMAL sums are read when integral; negatives,
// fractions and NULL are errors naming row and column.
func TestCellsUint(t *testing.T) {
	for _, c := range []struct {
		in   sql.NullString
		want uint64
		bad  bool
	}{
		{sql.NullString{String: "94371840", Valid: true}, 94371840, false},
		{sql.NullString{String: "94371840.0", Valid: true}, 94371840, false},
		{sql.NullString{String: "-3", Valid: true}, 0, true},
		{sql.NullString{String: "1.5", Valid: true}, 0, true},
		{sql.NullString{}, 0, true},
	} {
		cl := &cells{row: 4, cols: []string{"used"}, vals: []sql.NullString{c.in}}
		got := cl.uint("used")
		if got != c.want || (len(cl.errs) > 0) != c.bad {
			t.Errorf("%+v: %d, errors %v", c.in, got, cl.errs)
		}
		if c.bad && !errors.Is(cl.errs[0], ErrBadValue) {
			t.Errorf("%v does not wrap ErrBadValue", cl.errs[0])
		}
	}
}

// TestBuildView: node groups from `get status`, ndbinfo states over mgm
// statuses, a lost group, and disagreeing arbitration.
func TestBuildView(t *testing.T) {
	status := []ndbmsg.Node{
		{ID: 1, Type: ndbmsg.TypeNDB, Status: ndbmsg.StatusStarted, NodeGroup: 0, DynamicID: 1},
		{ID: 2, Type: ndbmsg.TypeNDB, Status: ndbmsg.StatusStarted, NodeGroup: 0, DynamicID: 2},
		{ID: 3, Type: ndbmsg.TypeNDB, Status: ndbmsg.StatusNoContact, NodeGroup: 1},
		{ID: 4, Type: ndbmsg.TypeNDB, Status: ndbmsg.StatusNoContact, NodeGroup: 1},
		{ID: 50, Type: ndbmsg.TypeMGM, Status: ndbmsg.StatusConnected},
	}
	info := &Ndbinfo{
		Nodes: []NodeRow{{NodeID: 1, State: NodeStarted}, {NodeID: 2, State: NodeSingleUser}},
		Membership: []MembershipRow{
			{NodeID: 1, President: 1, Arbitrator: 50, ArbTicket: "a1", ArbState: ArbRun},
			{NodeID: 2, President: 1, Arbitrator: 50, ArbTicket: "b2", ArbState: ArbRun},
		},
	}
	v := BuildView(status, info)
	if len(v.Groups) != 2 || v.Groups[0].Up != 2 || !v.Groups[1].Lost() || v.Groups[1].Nodes[0].Serving() {
		t.Fatalf("groups = %+v", v.Groups)
	}
	if v.ArbitrationAgreed || v.ArbState != ArbUnknown || v.President != 1 || len(v.Mgm) != 1 {
		t.Errorf("view = %+v", v)
	}
	info.Membership[1].ArbTicket = "a1"
	if v = BuildView(status, info); !v.ArbitrationAgreed || v.Arbitrator != 50 || v.ArbState != ArbRun {
		t.Errorf("agreeing view = %+v", v)
	}
}
