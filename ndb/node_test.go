package ndb

import (
	"fmt"
	"testing"
)

func TestGroups(t *testing.T) {
	nodes := []Node{
		{ID: 3, Type: TypeNDB, Status: StatusStarted, NodeGroup: 1},
		{ID: 1, Type: TypeNDB, Status: StatusNoContact, NodeGroup: 0},
		{ID: 2, Type: TypeNDB, Status: StatusStarted, NodeGroup: 0},
		{ID: 4, Type: TypeNDB, Status: StatusStarting, NodeGroup: 1},
		{ID: 5, Type: TypeNDB, Status: StatusNoContact, NodeGroup: 2},
		{ID: 6, Type: TypeNDB, Status: StatusRestarting, NodeGroup: 2},
		{ID: 7, Type: TypeNDB, Status: StatusStarted, NodeGroup: NoNodeGroup},
		{ID: 100, Type: TypeAPI, Status: StatusConnected},
	}
	var got []string
	for _, g := range Groups(nodes) {
		got = append(got, fmt.Sprintf("%d%v up=%d lost=%v exposed=%v", g.ID, g.Nodes, g.Up, g.Lost(), g.Exposed()))
	}
	want := "[0[1 2] up=1 lost=false exposed=true 1[3 4] up=1 lost=false exposed=true 2[5 6] up=0 lost=true exposed=false]"
	if fmt.Sprint(got) != want {
		t.Fatalf("groups %v\nwant   %s", got, want)
	}
}
