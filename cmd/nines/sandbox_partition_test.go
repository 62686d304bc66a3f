package main

import (
	"strings"
	"testing"
)

func TestPartitionFlags(t *testing.T) {
	nodes := []string{"n1", "n2", "n3"}
	ok := []struct {
		f    partitionFlags
		want partitionAction
	}{
		{partitionFlags{isolate: "n2", from: "nodes"}, partitionAction{"isolate", "n2", "nodes"}},
		{partitionFlags{isolate: "n2", from: "appliance", fromChanged: true}, partitionAction{"isolate", "n2", "appliance"}},
		{partitionFlags{isolate: "n3", from: "all", fromChanged: true}, partitionAction{"isolate", "n3", "all"}},
		{partitionFlags{heal: true, from: "nodes"}, partitionAction{kind: "heal"}},
		{partitionFlags{cut: "n1:n2", from: "nodes"}, partitionAction{"cut", "n1", "n2"}},
		{partitionFlags{cut: "appliance:n3", from: "nodes"}, partitionAction{"cut", "appliance", "n3"}},
		{partitionFlags{mend: "n2:appliance", from: "nodes"}, partitionAction{"mend", "n2", "appliance"}},
	}
	for _, c := range ok {
		got, err := c.f.parse(nodes)
		if err != nil || got != c.want {
			t.Errorf("%+v: got %+v, %v; want %+v", c.f, got, err, c.want)
		}
	}
	bad := []struct {
		f    partitionFlags
		want []string
	}{
		{partitionFlags{from: "nodes"}, []string{"--isolate", "--heal"}},
		{partitionFlags{isolate: "n2", heal: true, from: "nodes"}, []string{"only one of --isolate, --heal"}},
		{partitionFlags{isolate: "n9", from: "nodes"}, []string{"--isolate", `"n9"`, "n1, n2, n3"}},
		{partitionFlags{isolate: "appliance", from: "nodes"}, []string{"--isolate", "n1, n2, n3"}},
		{partitionFlags{isolate: "n2", from: "world", fromChanged: true}, []string{"--from", "nodes, appliance or all"}},
		{partitionFlags{heal: true, from: "all", fromChanged: true}, []string{"--from goes with --isolate"}},
		{partitionFlags{cut: "n1", from: "nodes"}, []string{"--cut", "A:B", "n1, n2, n3"}},
		{partitionFlags{cut: "n1:x", from: "nodes"}, []string{"--cut", `"x"`, "n1, n2, n3, or appliance"}},
		{partitionFlags{mend: "zz:n1", from: "nodes"}, []string{"--mend", `"zz"`, "n1, n2, n3"}},
		{partitionFlags{cut: "n1:n1", from: "nodes"}, []string{"--cut", "two different ends"}},
	}
	for _, c := range bad {
		_, err := c.f.parse(nodes)
		if err == nil {
			t.Errorf("%+v: no error", c.f)
			continue
		}
		for _, w := range c.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("%+v: error %q lacks %q", c.f, err, w)
			}
		}
	}
}
