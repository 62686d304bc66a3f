package replication

import (
	"strings"
	"testing"
)

func TestDonorIsTheMostAdvancedHealthyReplicaNeverThePrimary(t *testing.T) {
	primary := Node{Name: "h:1", Reachable: true, Running: true, Readable: true, ServerID: 1, Binlog: st(t, "0-1-20")}
	behind := replica("h:2", "h:1", "Yes", "0-1-15", "0-1-18", t)
	ahead := replica("h:3", "h:1", "Yes", "0-1-20", "0-1-20", t)
	target := Node{Name: "h:4", Reachable: true, Running: true, Readable: true, ServerID: 4, Binlog: st(t, "0-1-10,0-4-11")}
	nodes := []Node{primary, behind, ahead, target}

	c, err := Donor("h:1", "h:4", nodes, "")
	if err != nil || c.Node != "h:3" {
		t.Fatalf("Donor: %+v %v, want h:3 (the most advanced replica)", c, err)
	}
	if c, err := Donor("h:1", "h:4", nodes, "h:2"); err != nil || c.Node != "h:2" {
		t.Errorf("a named fit donor: %+v %v", c, err)
	}
	for want, why := range map[string]string{"h:1": "is the primary", "h:4": "node to rebuild", "h:9": "not a node"} {
		if _, err := Donor("h:1", "h:4", nodes, want); err == nil || !strings.Contains(err.Error(), why) {
			t.Errorf("donor %s: %v, want an error saying %q", want, err, why)
		}
	}

	// Unfit replicas are passed over with the reason; none left is an error.
	stopped := replica("h:2", "h:1", "No", "0-1-15", "0-1-15", t)
	errant := replica("h:3", "h:1", "Yes", "0-1-20,0-3-21", "0-1-20", t)
	writable := replica("h:5", "h:1", "Yes", "0-1-20", "0-1-20", t)
	writable.ReadOnly = false
	_, err = Donor("h:1", "h:4", []Node{primary, stopped, errant, writable, target}, "")
	if err == nil {
		t.Fatal("no fit donor: want an error")
	}
	for _, why := range []string{"IO No", "errant transactions 0-3-1..0-3-21", "read_only OFF", "the primary is never used"} {
		if !strings.Contains(err.Error(), why) {
			t.Errorf("error %q does not say %q", err, why)
		}
	}
}
