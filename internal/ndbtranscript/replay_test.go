package ndbtranscript

import (
	"bufio"
	"strings"
	"testing"
)

// TestLoad: the 25 sections of transcripts.txt, each with what Replay needs.
func TestLoad(t *testing.T) {
	all, err := Load()
	if err != nil {
		t.Fatal(err)
	}
	if len(all) != 25 {
		t.Fatalf("read %d transcripts, want the 25 of transcripts.txt", len(all))
	}
	for _, tr := range all {
		if tr.Kind == "stream" {
			continue
		}
		steps, err := tr.Steps()
		if err != nil || len(steps) == 0 {
			t.Errorf("%s: %d steps, %v", tr.Name, len(steps), err)
		}
	}
	if tr := all[0]; tr.Name != "get status" || tr.Cluster != (Shape{DataNodes: 2, Replicas: 2, SQLNodes: 1, Host: "10.0.0.1"}) || len(tr.Before) != 1 || tr.Before[0] != (Action{"down", 100}) {
		t.Errorf("first section read as %+v", tr)
	}
}

// The matcher itself must refuse what differs, or the conformance tests
// could not fail.
func TestMatchRefusesDifferences(t *testing.T) {
	exp := []string{"node status", "nodes: 4", "...", "node.100.address:"}
	if !Match(exp, []string{"node status", "nodes: 4", "a", "b", "node.100.address:"}, nil) {
		t.Error("ellipsis did not match lines")
	}
	for _, act := range [][]string{
		{"node status", "nodes: 5", "node.100.address:"},
		{"node status", "nodes: 4", "node.100.address: 10.0.0.1"},
		{"node status", "nodes: 4"},
	} {
		if Match(exp, act, nil) {
			t.Errorf("matched %q", act)
		}
	}
	if Match([]string{"id: <N>"}, []string{"id: x"}, nil) || !Match([]string{"id: <N>"}, []string{"id: 12"}, nil) {
		t.Error("numeric placeholder")
	}
	if Match([]string{"restarted: 1"}, []string{"restarted: 2"}, nil) || !Match([]string{"restarted: 1"}, []string{"restarted: 2"}, map[string]bool{"restarted": true}) {
		t.Error("shape keys")
	}
	if Clean("> node: 2 3              (space-separated ids)") != "> node: 2 3" || Clean("> (types: NDB)      <- optional") != "> (types: NDB)" {
		t.Error("annotations")
	}
}

func TestReadFrameSkipsPingsOnStreams(t *testing.T) {
	in := "<PING>\nlog event reply\ntype=17\n<PING>\n\n"
	got, err := ReadFrame(bufio.NewReader(strings.NewReader(in)), true)
	if err != nil || strings.Join(got, "|") != "log event reply|type=17" {
		t.Errorf("stream frame %q, %v", got, err)
	}
	got, _ = ReadFrame(bufio.NewReader(strings.NewReader(in)), false)
	if len(got) == 0 || got[0] != "<PING>" {
		t.Errorf("a reply frame dropped a line: %q", got)
	}
}
