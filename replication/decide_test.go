package replication

import (
	"strings"
	"testing"
)

func st(t *testing.T, s string) State {
	t.Helper()
	v, err := ParseState(s)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func TestParseStateErrorsNameThePart(t *testing.T) {
	for _, bad := range []string{"0-1", "0-1-x", "a-1-2", "0-1-2-3", "0-99999999999-1"} {
		_, err := ParseState("0-1-5," + bad)
		if err == nil || !strings.Contains(err.Error(), bad) {
			t.Errorf("ParseState(%q): %v, want an error naming it", bad, err)
		}
	}
	s, err := ParseState(" 0-1-5,\n0-2-9, 1-1-3,0-1-4 ")
	if err != nil || s.String() != "0-1-5,0-2-9,1-1-3" {
		t.Fatalf("got %v %v", s, err)
	}
	if s, err := ParseState(""); err != nil || len(s) != 0 {
		t.Fatalf("empty: %v %v", s, err)
	}
}

func TestLackingAndAhead(t *testing.T) {
	old, cur := st(t, "0-1-105,0-3-50"), st(t, "0-1-103,0-2-110,0-3-50")
	if got := strings.Join(old.Lacking(cur), " "); got != "0-1-104..0-1-105" {
		t.Errorf("Lacking: %q", got)
	}
	if n := old.Count(cur); n != 2 {
		t.Errorf("Count: %d", n)
	}
	if !cur.Covers(st(t, "0-1-100")) || cur.Covers(old) {
		t.Error("Covers")
	}
	if c, ok := st(t, "0-1-10").Ahead(st(t, "0-1-9")); !ok || c != 1 {
		t.Errorf("Ahead: %d %v", c, ok)
	}
	if c, ok := st(t, "0-1-10,1-1-1").Ahead(st(t, "0-1-11")); ok {
		t.Errorf("two histories compared as %d", c)
	}
}

func replica(name, source, io string, binlog, received string, t *testing.T) Node {
	return Node{Name: name, Reachable: true, Running: true, Readable: true, ReadOnly: true, ServerID: serverID(name),
		Binlog: st(t, binlog), Link: &Link{Source: source, IO: io, SQLRunning: true, Received: st(t, received)}}
}

func serverID(name string) uint32 { return uint32(name[len(name)-1] - '0') }

func TestPrimaryFromLinksEvenWhenDead(t *testing.T) {
	nodes := []Node{{Name: "h:1", Error: "connection refused"}, replica("h:2", "h:1", "Connecting", "0-1-5", "0-1-5", t), replica("h:3", "h:1", "Connecting", "0-1-5", "0-1-5", t)}
	if p, why, ok := Primary(nodes); !ok || p != "h:1" {
		t.Fatalf("Primary: %q %q %v", p, why, ok)
	}
	nodes[2].Link.Source = "h:2"
	if _, why, ok := Primary(nodes); ok || !strings.Contains(why, "different sources") {
		t.Fatalf("split sources: %q %v", why, ok)
	}
}

func TestAssessNeedsMoreThanOneObserver(t *testing.T) {
	dead := Node{Name: "h:1", Error: "dial tcp: i/o timeout"}
	cases := []struct {
		name  string
		nodes []Node
		dead  bool
		why   string
	}{
		{"agent says gone", []Node{{Name: "h:1", Reachable: true}, replica("h:2", "h:1", "Yes", "", "", t)}, true, "not running"},
		{"primary answers its agent", []Node{{Name: "h:1", Reachable: true, Running: true, Readable: true}, replica("h:2", "h:1", "Connecting", "", "", t)}, false, "answers its agent"},
		{"replicas agree", []Node{dead, replica("h:2", "h:1", "Connecting", "", "", t), replica("h:3", "h:1", "No", "", "", t)}, true, "lost it"},
		{"one replica still connected", []Node{dead, replica("h:2", "h:1", "Connecting", "", "", t), replica("h:3", "h:1", "Yes", "", "", t)}, false, "h:3 still replicate"},
		{"the only replica asked is not a majority", []Node{dead, replica("h:2", "h:1", "Connecting", "", "", t), {Name: "h:3", Link: &Link{Source: "h:1"}}}, false, "not a majority"},
		{"no replica", []Node{dead}, false, "no replica"},
	}
	for _, c := range cases {
		v := Assess("h:1", c.nodes)
		if v.Dead != c.dead || !strings.Contains(v.Why, c.why) {
			t.Errorf("%s: %+v, want dead %v and %q", c.name, v, c.dead, c.why)
		}
	}
}

func TestChoose(t *testing.T) {
	p := Node{Name: "h:1", Error: "down"}
	behind := replica("h:2", "h:1", "Connecting", "0-1-8", "0-1-9", t)
	ahead := replica("h:3", "h:1", "Connecting", "0-1-8", "0-1-10", t)
	c, err := Choose("h:1", []Node{p, behind, ahead}, "")
	if err != nil || c.Node != "h:3" {
		t.Fatalf("most advanced: %+v %v", c, err)
	}
	// Equal: priority, then order.
	even := replica("h:3", "h:1", "Connecting", "0-1-8", "0-1-9", t)
	if c, _ := Choose("h:1", []Node{p, behind, even}, ""); c.Node != "h:2" || !strings.Contains(c.Reasons, "priority") {
		t.Errorf("tie by order: %+v", c)
	}
	even.Priority = 5
	if c, _ := Choose("h:1", []Node{p, behind, even}, ""); c.Node != "h:3" {
		t.Errorf("tie by priority: %+v", c)
	}
	// Errant writes and a failed SQL thread pass a replica over.
	errant := replica("h:3", "h:1", "Connecting", "0-1-8,0-3-2", "0-1-10", t)
	if c, _ := Choose("h:1", []Node{p, behind, errant}, ""); c.Node != "h:2" || !strings.Contains(strings.Join(c.Passed, ";"), "errant transactions 0-3-1..0-3-2") {
		t.Errorf("errant: %+v", c)
	}
	broken := replica("h:3", "h:1", "Connecting", "0-1-8", "0-1-10", t)
	broken.Link.LastSQLErrno, broken.Link.LastSQLError = 1062, "Duplicate entry"
	if c, _ := Choose("h:1", []Node{p, behind, broken}, ""); c.Node != "h:2" {
		t.Errorf("broken SQL thread: %+v", c)
	}
	if c, err := Choose("h:1", []Node{p, behind, broken}, "h:3"); err != nil || c.Node != "h:3" || !c.Forced || !strings.Contains(c.Reasons, "1062") {
		t.Errorf("forced: %+v %v", c, err)
	}
	if _, err := Choose("h:1", []Node{p, {Name: "h:2", Link: &Link{Source: "h:1"}, Error: "timeout"}}, ""); err == nil {
		t.Error("no readable replica: chosen anyway")
	}
	// A former primary's stream that the others replicated is not errant.
	former := replica("h:3", "h:1", "Connecting", "0-3-5,0-1-8", "0-1-10", t)
	other := replica("h:2", "h:1", "Connecting", "0-3-5,0-1-8", "0-1-9", t)
	if c, _ := Choose("h:1", []Node{p, other, former}, ""); c.Node != "h:3" {
		t.Errorf("former primary's stream taken as errant: %+v", c)
	}
}

func TestRejoinPrefix(t *testing.T) {
	newPrimary := Node{Binlog: st(t, "0-1-103,0-2-110")}
	if d := Rejoin(Node{Binlog: st(t, "0-1-103")}, newPrimary); len(d) != 0 {
		t.Errorf("prefix: diverged %v", d)
	}
	if d := Rejoin(Node{Binlog: st(t, "0-1-105")}, newPrimary); strings.Join(d, ",") != "0-1-104..0-1-105" {
		t.Errorf("diverged: %v", d)
	}
}
