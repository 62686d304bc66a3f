package ndb

import (
	"bufio"
	"errors"
	"strings"
	"testing"
)

func read(t *testing.T, s, sep string) (Message, error) {
	t.Helper()
	return ReadMessage(bufio.NewReader(strings.NewReader(s)), sep)
}

func TestStatusRoundTrip(t *testing.T) {
	in := "node status\nnodes: 3\n" +
		"node.1.type: NDB\nnode.1.status: STARTED\nnode.1.version: 524332\nnode.1.mysql_version: 524332\nnode.1.startphase: 0\nnode.1.dynamic_id: 1\nnode.1.node_group: 0\nnode.1.connect_count: 0\nnode.1.address: 10.0.0.1\n" +
		"node.2.type: NDB\nnode.2.status: SINGLE USER MODE\nnode.2.version: 524332\nnode.2.mysql_version: 524332\nnode.2.startphase: 0\nnode.2.dynamic_id: 2\nnode.2.node_group: 0\nnode.2.connect_count: 3\nnode.2.address: 10.0.0.2\n" +
		"node.100.type: API\nnode.100.status: NO_CONTACT\nnode.100.version: 0\nnode.100.mysql_version: 0\nnode.100.startphase: 0\nnode.100.dynamic_id: 0\nnode.100.node_group: 0\nnode.100.connect_count: 0\nnode.100.address: \n\n"
	m, err := read(t, in, ":")
	if err != nil {
		t.Fatal(err)
	}
	nodes, err := ParseStatus(m)
	if err != nil {
		t.Fatal(err)
	}
	if len(nodes) != 3 || nodes[1].Status != StatusSingleUser || nodes[1].ConnectCount != 3 || nodes[2].Type != TypeAPI || nodes[2].Address != "" {
		t.Fatalf("parsed %+v", nodes)
	}
	if nodes[0].Version.String() != "8.0.44" {
		t.Fatalf("version %q, want 8.0.44", nodes[0].Version)
	}
	if got := string(FormatStatus(nodes).Bytes()); got != in {
		t.Fatalf("formatted again:\n%s\nwant:\n%s", got, in)
	}
	if Master(nodes) != 1 {
		t.Fatalf("master %d, want 1", Master(nodes))
	}
}

// Each malformed reply is refused with an error naming its line and fault.
func TestStatusRejectsMalformed(t *testing.T) {
	good := FormatStatus([]Node{{ID: 1, Type: TypeNDB, Status: StatusStarted}})
	text := string(good.Bytes())
	cases := []struct{ name, in, want string }{
		{"odd status", strings.Replace(text, "STARTED", "DANCING", 1), `line 4 "node.1.status: DANCING": unknown node status "DANCING"`},
		{"unknown field", strings.Replace(text, "node.1.address", "node.1.colour", 1), `line 11 "node.1.colour: ": unknown field "colour"`},
		{"bad number", strings.Replace(text, "dynamic_id: 0", "dynamic_id: x", 1), `dynamic_id is not a number`},
		{"count", strings.Replace(text, "nodes: 1", "nodes: 2", 1), `line 2 "nodes: 2": reply lists 1 nodes`},
		{"missing field", strings.Replace(text, "node.1.startphase: 0\n", "", 1), `missing field(s) startphase`},
		{"twice", strings.Replace(text, "node.1.startphase: 0\n", "node.1.startphase: 0\nnode.1.startphase: 1\n", 1), `field given twice`},
		{"bad key", strings.Replace(text, "node.1.type", "nod.1.type", 1), `line 3 "nod.1.type: NDB": want node.<id>.<field>`},
		{"header", strings.Replace(text, "node status", "node statu", 1), `line 1 "node statu": want header "node status"`},
		{"no colon", strings.Replace(text, "node.1.type: NDB", "node.1.type NDB", 1), `line 3 "node.1.type NDB": no ":" between name and value`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			m, err := read(t, c.in, ":")
			if err == nil {
				_, err = ParseStatus(m)
			}
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("error %v, want it to contain %s", err, c.want)
			}
		})
	}
}

func TestProtocolErrorReply(t *testing.T) {
	m, err := read(t, "result: Unknown command, 'get statuz'\n\n", ":")
	if err != nil {
		t.Fatal(err)
	}
	_, err = ParseStatus(m)
	var pe *ProtocolError
	if !errors.As(err, &pe) || pe.Msg != BadUnknownCommand || pe.Token != "get statuz" {
		t.Fatalf("error %#v, want a ProtocolError for 'get statuz'", err)
	}
}

func TestTruncatedFrame(t *testing.T) {
	_, err := read(t, "node status\nnodes: 1\n", ":")
	if err == nil || !strings.Contains(err.Error(), "unexpected EOF") {
		t.Fatalf("error %v, want unexpected EOF", err)
	}
}

func TestVersion(t *testing.T) {
	v := MakeVersion(8, 0, 44)
	if v != 524332 {
		t.Fatalf("8.0.44 encodes as %d, want 524332 (facts A.2.3)", v)
	}
	info := VersionInfo{ID: v, Major: 8, Build: 44, String: "mysql-8.0.44 ndb-8.0.44", MySQLMajor: 8, MySQLBuild: 44}
	got, err := ParseVersion(FormatVersion(info))
	if err != nil || got != info {
		t.Fatalf("round trip %+v, %v", got, err)
	}
	bad := FormatVersion(info)
	bad.Fields[3].Value = "45"
	if _, err := ParseVersion(bad); err == nil || !strings.Contains(err.Error(), "is not major.minor.build") {
		t.Fatalf("inconsistent id accepted: %v", err)
	}
}

func TestResultReplies(t *testing.T) {
	n, err := ParseCountReply(FormatCountReply(HeaderStop, ResultOk, "stopped", 1, true, false), HeaderStop, "stopped")
	if err != nil || n != 1 {
		t.Fatalf("stop reply: %d, %v", n, err)
	}
	_, err = ParseCountReply(ResultReply(HeaderStop, "empty node list"), HeaderStop, "stopped")
	var re *ResultError
	if !errors.As(err, &re) || re.Result != "empty node list" {
		t.Fatalf("error %v, want ResultError empty node list", err)
	}
	id, err := ParseStartBackup(FormatStartBackup(BackupWaitStarted, 7))
	if err != nil || id != 7 {
		t.Fatalf("backup reply: %d, %v", id, err)
	}
	id, err = ParseStartBackup(FormatStartBackup(BackupNoWait, 7))
	if err != nil || id != 0 {
		t.Fatalf("NOWAIT reply carries no id: %d, %v", id, err)
	}
	if got := string(MgmdNodeIDReply(50).Bytes()); got != "get mgmd nodeid reply\nnodeid:50\n\n" {
		t.Fatalf("mgmd nodeid reply %q", got)
	}
}

func TestEventStream(t *testing.T) {
	ev := Event{Type: EventNodeFailRep, SourceNodeID: 1}.With("failed_node", 2, "failure_state", 0)
	stream := Ping + "\n" + string(ev.Message().Bytes())
	r := bufio.NewReader(strings.NewReader(stream))
	_, ping, err := ReadStreamItem(r)
	if err != nil || !ping {
		t.Fatalf("want a ping first: %v %v", ping, err)
	}
	got, ping, err := ReadStreamItem(r)
	if err != nil || ping || got.Type != EventNodeFailRep || got.SourceNodeID != 1 {
		t.Fatalf("event %+v ping %v err %v", got, ping, err)
	}
	if n, ok := got.Get("failed_node"); !ok || n != 2 {
		t.Fatalf("failed_node %d %v", n, ok)
	}
	if _, err := ParseEvent(Message{Header: HeaderEvent, Fields: []Field{{Key: "type", Value: "x"}}}); err == nil || !strings.Contains(err.Error(), "type is not a number") {
		t.Fatalf("bad type accepted: %v", err)
	}
}

func TestFilter(t *testing.T) {
	f, err := ParseFilter("250=15 BACKUP:7,noderestart=1")
	if err != nil {
		t.Fatal(err)
	}
	if f.String() != "250=15 254=1 261=7" {
		t.Fatalf("filter %q", f.String())
	}
	for in, want := range map[string]string{"": "Empty filter specification", "999=1": "Unknown category: >999<", "250=16": "Invalid level: >16<", "250": "Invalid filter specification"} {
		if _, err := ParseFilter(in); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("ParseFilter(%q) = %v, want %s", in, err, want)
		}
	}
}

func TestNodeVocabulary(t *testing.T) {
	for _, s := range []string{"UNKNOWN", "NO_CONTACT", "NOT_STARTED", "STARTING", "STARTED", "SHUTTING_DOWN", "RESTARTING", "SINGLE USER MODE", "RESUME", "CONNECTED"} {
		st, err := ParseNodeStatus(s)
		if err != nil || st.String() != s {
			t.Errorf("status %q: %v %v", s, st, err)
		}
	}
	for in, want := range map[string]NodeType{"NDB": TypeNDB, "ndbd": TypeNDB, "mysqld": TypeAPI, "ndb_mgmd": TypeMGM} {
		if got, err := ParseNodeType(in); err != nil || got != want {
			t.Errorf("type %q: %v %v", in, got, err)
		}
	}
	if StatusStarted.CLIText() != "started" || StatusSingleUser.CLIText() != "single user mode" {
		t.Error("CLI texts")
	}
}
