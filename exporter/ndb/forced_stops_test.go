package ndb

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/nines-project/nines/internal/metric"
	ndbmsg "github.com/nines-project/nines/ndb"
	"github.com/nines-project/nines/sandbox/ndbsim"
)

func TestForcedStopReason(t *testing.T) {
	for _, tt := range []struct {
		name string
		ev   ndbmsg.Event
		want string
	}{
		{"GCP stop (error 2303)", ndbmsg.ForcedStop(3, 2303), ReasonGCPStop},
		{"declared dead (another error)", ndbmsg.ForcedStop(3, 2315), ReasonOther},
		{"killed by a signal, no error", ndbmsg.Event{Type: ndbmsg.EventNDBStopForced, SourceNodeID: 3}.With("action", 0, "signum", 9, "error", 0, "sphase", 255, "extra", 0), ReasonOther},
		{"no error token", ndbmsg.Event{Type: ndbmsg.EventNDBStopForced, SourceNodeID: 3}, ReasonOther},
	} {
		if got := ForcedStopReason(tt.ev); got != tt.want {
			t.Errorf("%s: reason %q, want %q", tt.name, got, tt.want)
		}
	}
}

// TestForcedStopsCountOnlyDataNodeStops: other events and source ids
// ndb_mgmd cannot have add no series.
func TestForcedStopsCountOnlyDataNodeStops(t *testing.T) {
	var f forcedStops
	for _, ev := range []ndbmsg.Event{
		{Type: ndbmsg.EventNDBStopCompleted, SourceNodeID: 2},
		{Type: ndbmsg.EventNodeFailRep, SourceNodeID: 1},
		ndbmsg.ForcedStop(0, 2303),
		ndbmsg.ForcedStop(1000, 2303),
	} {
		if f.add(ev) {
			t.Errorf("counted %v from node %d", ev.Type, ev.SourceNodeID)
		}
	}
	if s := f.snapshot(); s != nil {
		t.Errorf("snapshot %v, want nil", s)
	}
	f.add(ndbmsg.ForcedStop(2, 2303))
	f.add(ndbmsg.ForcedStop(2, 2303))
	s := f.snapshot()
	f.add(ndbmsg.ForcedStop(2, 2303))
	if got := s[ForcedStopKey{2, ReasonGCPStop}]; got != 2 {
		t.Errorf("snapshot holds %d GCP stops of node 2, want 2 (taken before the third)", got)
	}
}

func TestForcedStopMetrics(t *testing.T) {
	nodes := []ndbmsg.Node{
		{ID: 1, Type: ndbmsg.TypeNDB, Status: ndbmsg.StatusStarted},
		{ID: 2, Type: ndbmsg.TypeNDB, Status: ndbmsg.StatusNoContact},
		{ID: 50, Type: ndbmsg.TypeMGM, Status: ndbmsg.StatusConnected},
		{ID: 100, Type: ndbmsg.TypeAPI, Status: ndbmsg.StatusConnected},
	}
	set := &metric.Set{Const: []metric.Label{{Name: "cluster", Value: "tel"}, {Name: "instance", Value: "mgm1:1186"}}}
	// Node 7 is no longer listed (removed from the config) but its count stays.
	ForcedStopMetrics(set, nodes, map[ForcedStopKey]uint64{{2, ReasonGCPStop}: 1, {7, ReasonOther}: 3})
	for _, m := range set.Metrics {
		if m.Type != metric.Counter {
			t.Errorf("%s is %v, want a counter", m.Name, m.Type)
		}
	}
	checkSeries(t, series(set), map[string]float64{
		`nines_ndb_node_forced_stops_total{cluster="tel",instance="mgm1:1186",node_id="1",reason="gcp_stop"}`: 0,
		`nines_ndb_node_forced_stops_total{cluster="tel",instance="mgm1:1186",node_id="1",reason="other"}`:    0,
		`nines_ndb_node_forced_stops_total{cluster="tel",instance="mgm1:1186",node_id="2",reason="gcp_stop"}`: 1,
		`nines_ndb_node_forced_stops_total{cluster="tel",instance="mgm1:1186",node_id="2",reason="other"}`:    0,
		`nines_ndb_node_forced_stops_total{cluster="tel",instance="mgm1:1186",node_id="7",reason="gcp_stop"}`: 0,
		`nines_ndb_node_forced_stops_total{cluster="tel",instance="mgm1:1186",node_id="7",reason="other"}`:    3,
	})
}

// TestPollerCountsForcedStops: a data node killed for a GCP stop in the
// in-process simulator reaches nines_ndb_node_forced_stops_total with
// reason gcp_stop, another forced stop with reason other, and the node
// failures that follow them count nothing more.
func TestPollerCountsForcedStops(t *testing.T) {
	c, err := ndbsim.NewCluster(ndbsim.Config{DataNodes: 4, Replicas: 2})
	if err != nil {
		t.Fatal(err)
	}
	srv, err := ndbsim.Serve(c, "127.0.0.1:0", ndbsim.ServerConfig{})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	p, err := NewPoller(PollerConfig{Cluster: "tel", Mgm: []string{srv.Addr()}, Interval: 10 * time.Second, BurstInterval: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	ch := make(chan *Reading, 64)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); p.Run(ctx, func(r *Reading, _ bool) { ch <- r }) }()
	defer func() { cancel(); <-done }()
	next := func(what string, ok func(*Reading) bool) *Reading {
		t.Helper()
		timeout := time.After(5 * time.Second)
		for {
			select {
			case r := <-ch:
				if ok(r) {
					return r
				}
			case <-timeout:
				t.Fatalf("no reading where %s", what)
			}
		}
	}
	key := func(node int, reason string) string {
		return fmt.Sprintf(`nines_ndb_node_forced_stops_total{cluster="tel",instance=%q,node_id="%d",reason=%q}`, srv.Addr(), node, reason)
	}
	r := next("the stream is open", func(r *Reading) bool { return r.Stream == srv.Addr() })
	want := map[string]float64{}
	for id := 1; id <= 4; id++ {
		want[key(id, ReasonGCPStop)], want[key(id, ReasonOther)] = 0, 0
	}
	expectSeries(t, series(&metric.Set{Metrics: r.Metrics()}), want)

	if err := c.ForcedStop(4, ndbmsg.ExitGCPStop); err != nil {
		t.Fatal(err)
	}
	if err := c.ForcedStop(1, 2315); err != nil {
		t.Fatal(err)
	}
	r = next("both forced stops are counted and both nodes down", func(r *Reading) bool {
		return len(r.ForcedStops) == 2 && statusOf(r, 4) == ndbmsg.StatusNoContact && statusOf(r, 1) == ndbmsg.StatusNoContact
	})
	want[key(4, ReasonGCPStop)] = 1
	want[key(1, ReasonOther)] = 1
	checkForced := func(r *Reading) {
		t.Helper()
		got := series(&metric.Set{Metrics: r.Metrics()})
		expectSeries(t, got, want)
		n := 0
		for k := range got {
			if strings.HasPrefix(k, "nines_ndb_node_forced_stops_total{") {
				n++
			}
		}
		if n != len(want) {
			t.Errorf("%d forced stop series, want %d", n, len(want))
		}
	}
	checkForced(r)
	// A later round, after the node failures' events, counts nothing more.
	p.Kick()
	checkForced(next("a later round", func(r *Reading) bool { return r.Woken }))
}
