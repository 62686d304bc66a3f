package ndb

import (
	"bufio"
	"errors"
	"fmt"
	"sort"
	"strings"
	"testing"

	"github.com/nines-project/nines/internal/metric"
	ndbmsg "github.com/nines-project/nines/ndb"
)

// statusNode is one node's lines of a `get status` reply, in the field
// order of the facts' transcript (A.2.3).
func statusNode(id int, typ, status string, phase, group, connects int) string {
	p := fmt.Sprintf("node.%d.", id)
	return p + "type: " + typ + "\n" + p + "status: " + status + "\n" + p + "version: 524332\n" + p + "mysql_version: 524332\n" +
		fmt.Sprintf("%sstartphase: %d\n%sdynamic_id: %d\n%snode_group: %d\n%sconnect_count: %d\n%saddress: 10.0.0.%d\n", p, phase, p, id, p, group, p, connects, p, id)
}

// parseStatus reads a reply as the client does: package ndb's reader and
// parser.
func parseStatus(t *testing.T, nodes ...string) []ndbmsg.Node {
	t.Helper()
	in := fmt.Sprintf("node status\nnodes: %d\n%s\n", len(nodes), strings.Join(nodes, ""))
	m, err := ndbmsg.ReadMessage(bufio.NewReader(strings.NewReader(in)), ":")
	if err != nil {
		t.Fatal(err)
	}
	parsed, err := ndbmsg.ParseStatus(m)
	if err != nil {
		t.Fatal(err)
	}
	return parsed
}

// series renders a set as name{labels} → value, labels in their order.
func series(set *metric.Set) map[string]float64 {
	out := map[string]float64{}
	for _, m := range set.Metrics {
		ls := make([]string, len(m.Labels))
		for i, l := range m.Labels {
			ls[i] = fmt.Sprintf("%s=%q", l.Name, l.Value)
		}
		out[m.Name+"{"+strings.Join(ls, ",")+"}"] = m.Value
	}
	return out
}

// expectSeries checks that got holds every series of want, with its value.
func expectSeries(t *testing.T, got map[string]float64, want map[string]float64) {
	t.Helper()
	for k, v := range want {
		g, ok := got[k]
		if !ok {
			t.Errorf("missing %s", k)
			continue
		}
		if g != v {
			t.Errorf("%s = %v, want %v", k, g, v)
		}
	}
}

// checkSeries checks that got is exactly want.
func checkSeries(t *testing.T, got map[string]float64, want map[string]float64) {
	t.Helper()
	expectSeries(t, got, want)
	if len(got) != len(want) {
		var extra []string
		for k := range got {
			if _, ok := want[k]; !ok {
				extra = append(extra, k)
			}
		}
		sort.Strings(extra)
		t.Errorf("%d series, want %d; unexpected: %v", len(got), len(want), extra)
	}
}

func TestMgmMetricsHealthyAndDegraded(t *testing.T) {
	// Four data nodes in two node groups; node 2 killed (NO_CONTACT),
	// node 4 restarting in phase 4; the mgmd and one SQL node connected,
	// a spare API slot never used.
	nodes := parseStatus(t,
		statusNode(1, "NDB", "STARTED", 0, 0, 1),
		statusNode(2, "NDB", "NO_CONTACT", 0, 0, 1),
		statusNode(3, "NDB", "STARTED", 0, 1, 1),
		statusNode(4, "NDB", "STARTING", 4, 1, 2),
		statusNode(50, "MGM", "CONNECTED", 0, 0, 0),
		statusNode(100, "API", "CONNECTED", 0, 0, 3),
		statusNode(101, "API", "NO_CONTACT", 0, 0, 0),
	)
	set := &metric.Set{Const: []metric.Label{{Name: "cluster", Value: "tel"}, {Name: "instance", Value: "mgm1:1186"}}}
	if err := MgmMetrics(set, MgmReading{Nodes: nodes}); err != nil {
		t.Fatal(err)
	}
	c := `cluster="tel",instance="mgm1:1186"`
	data := func(name string, id, group int, v float64) (string, float64) {
		return fmt.Sprintf(`%s{%s,node_id="%d",type="NDB",node_group="%d"}`, name, c, id, group), v
	}
	want := map[string]float64{
		`nines_ndb_mgm_up{` + c + `}`:                                  1,
		`nines_ndb_node_group_nodes{` + c + `,node_group="0"}`:         2,
		`nines_ndb_node_group_nodes_started{` + c + `,node_group="0"}`: 1,
		`nines_ndb_node_group_nodes{` + c + `,node_group="1"}`:         2,
		`nines_ndb_node_group_nodes_started{` + c + `,node_group="1"}`: 1,
	}
	add := func(k string, v float64) { want[k] = v }
	// Status codes: STARTED 4, NO_CONTACT 1, STARTING 3, CONNECTED 9.
	for _, d := range []struct {
		id, group    int
		status, up   float64
		phase, conns float64
	}{{1, 0, 4, 1, 0, 1}, {2, 0, 1, 0, 0, 1}, {3, 1, 4, 1, 0, 1}, {4, 1, 3, 0, 4, 2}} {
		add(data("nines_ndb_node_status", d.id, d.group, d.status))
		add(data("nines_ndb_node_up", d.id, d.group, d.up))
		add(fmt.Sprintf(`nines_ndb_node_start_phase{%s,node_id="%d",node_group="%d"}`, c, d.id, d.group), d.phase)
		add(fmt.Sprintf(`nines_ndb_node_connect_count{%s,node_id="%d",type="NDB"}`, c, d.id), d.conns)
	}
	for _, o := range []struct {
		id          int
		typ         string
		status, up  float64
		connections float64
	}{{50, "MGM", 9, 1, 0}, {100, "API", 9, 1, 3}, {101, "API", 1, 0, 0}} {
		l := fmt.Sprintf(`{%s,node_id="%d",type="%s"}`, c, o.id, o.typ)
		add("nines_ndb_node_status"+l, o.status)
		add("nines_ndb_node_up"+l, o.up)
		add("nines_ndb_node_connect_count"+l, o.connections)
	}
	checkSeries(t, series(set), want)
}

func TestMgmMetricsGroupLostAndConfigGroups(t *testing.T) {
	// Both nodes of group 0 down; the reply puts node 2 in group 0 while
	// disconnected (unreliable [OPER]); the config says group 1 for it.
	nodes := parseStatus(t,
		statusNode(1, "NDB", "NO_CONTACT", 0, 0, 1),
		statusNode(2, "NDB", "NO_CONTACT", 0, 0, 1),
		statusNode(3, "NDB", "STARTED", 0, 1, 1),
		statusNode(4, "NDB", "STARTED", 0, 65536, 1),
	)
	set := &metric.Set{}
	if err := MgmMetrics(set, MgmReading{Nodes: nodes}); err != nil {
		t.Fatal(err)
	}
	got := series(set)
	if got[`nines_ndb_node_group_nodes_started{node_group="0"}`] != 0 || got[`nines_ndb_node_group_nodes{node_group="0"}`] != 2 {
		t.Errorf("group 0 should be lost: %v", got)
	}
	// A node in no node group is labelled, not dropped, and counts in no group.
	if v, ok := got[`nines_ndb_node_up{node_id="4",type="NDB",node_group="none"}`]; !ok || v != 1 {
		t.Errorf("node 4 in no node group: %v %v", v, ok)
	}
	if _, ok := got[`nines_ndb_node_group_nodes{node_group="none"}`]; ok {
		t.Errorf("a node group counted for nodes in none")
	}

	set = &metric.Set{}
	if err := MgmMetrics(set, MgmReading{Nodes: nodes, NodeGroups: map[int]int{1: 0, 2: 1, 3: 1}}); err != nil {
		t.Fatal(err)
	}
	got = series(set)
	if got[`nines_ndb_node_group_nodes{node_group="0"}`] != 1 || got[`nines_ndb_node_group_nodes{node_group="1"}`] != 2 || got[`nines_ndb_node_group_nodes_started{node_group="1"}`] != 1 {
		t.Errorf("the config's node groups should win: %v", got)
	}
	if _, ok := got[`nines_ndb_node_status{node_id="2",type="NDB",node_group="1"}`]; !ok {
		t.Errorf("node 2 not labelled with its configured group: %v", got)
	}
}

func TestMgmMetricsFailedReading(t *testing.T) {
	cause := errors.New("connect to ndb_mgmd mgm1:1186: connection refused")
	set := &metric.Set{}
	err := MgmMetrics(set, MgmReading{Err: cause, Nodes: parseStatus(t, statusNode(1, "NDB", "STARTED", 0, 0, 1))})
	if !errors.Is(err, cause) {
		t.Errorf("error = %v, want the reading's", err)
	}
	checkSeries(t, series(set), map[string]float64{`nines_ndb_mgm_up{}`: 0})
}

// TestMgmOddStatusIsAnError: a status outside mgmapi's table fails the
// reading (mgm_up 0 with the parser's reason), it never becomes a
// silently unknown node.
func TestMgmOddStatusIsAnError(t *testing.T) {
	in := "node status\nnodes: 1\n" + strings.Replace(statusNode(1, "NDB", "STARTED", 0, 0, 1), "STARTED", "HALF_STARTED", 1) + "\n"
	m, err := ndbmsg.ReadMessage(bufio.NewReader(strings.NewReader(in)), ":")
	if err != nil {
		t.Fatal(err)
	}
	_, perr := ndbmsg.ParseStatus(m)
	if perr == nil || !strings.Contains(perr.Error(), "HALF_STARTED") {
		t.Fatalf("parse error = %v, want one naming the status", perr)
	}
	set := &metric.Set{}
	if err := MgmMetrics(set, MgmReading{Err: perr}); err == nil {
		t.Error("no error from a failed reading")
	}
	checkSeries(t, series(set), map[string]float64{`nines_ndb_mgm_up{}`: 0})
}

// TestNodeStatusHelpNamesEveryCode: the help text is the code table.
func TestNodeStatusHelpNamesEveryCode(t *testing.T) {
	for s := ndbmsg.StatusUnknown; s <= ndbmsg.StatusConnected; s++ {
		if !strings.Contains(nodeStatusHelp, fmt.Sprintf("%d %s", int(s), s)) {
			t.Errorf("help lacks %d %s: %s", int(s), s, nodeStatusHelp)
		}
	}
	if s := ndbmsg.StatusConnected + 1; !strings.HasPrefix(s.String(), "NodeStatus(") {
		t.Errorf("a status after CONNECTED exists (%s): add it to the help text's range", s)
	}
}
