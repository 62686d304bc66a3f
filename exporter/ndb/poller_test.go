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

// TestPollerMgmOnly: with no SQL node the poller still reads the
// management server every round and is woken by its events; a restart
// of a data node in the model is seen as a change without waiting for
// the (here 10 s) tick.
func TestPollerMgmOnly(t *testing.T) {
	c, err := ndbsim.NewCluster(ndbsim.Config{DataNodes: 2, Replicas: 2})
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
	type got struct {
		r       *Reading
		changed bool
	}
	ch := make(chan got, 64)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); p.Run(ctx, func(r *Reading, changed bool) { ch <- got{r, changed} }) }()
	defer func() { cancel(); <-done }()
	next := func(what string, ok func(got) bool) got {
		t.Helper()
		timeout := time.After(5 * time.Second)
		for {
			select {
			case g := <-ch:
				if ok(g) {
					return g
				}
			case <-timeout:
				t.Fatalf("no reading where %s", what)
			}
		}
	}
	g := next("the stream is open", func(g got) bool { return g.r.Stream == srv.Addr() })
	s := series(&metric.Set{Metrics: g.r.Metrics()})
	expectSeries(t, s, map[string]float64{
		fmt.Sprintf(`nines_ndb_mgm_up{cluster="tel",instance=%q}`, srv.Addr()):          1,
		fmt.Sprintf(`nines_ndb_event_stream_up{cluster="tel",instance=%q}`, srv.Addr()): 1,
	})
	expectNoSeries(t, s, "nines_ndbinfo_read_success", "mysql_ndbinfo_")
	if _, err := c.Restart([]int{1}, ndbsim.StopOptions{}); err != nil {
		t.Fatal(err)
	}
	g = next("node 1 is starting", func(g got) bool { return statusOf(g.r, 1) == ndbmsg.StatusStarting })
	if !g.changed || !g.r.Woken {
		t.Errorf("restart reading: changed %v woken %v, want both", g.changed, g.r.Woken)
	}
}

func TestChangedReading(t *testing.T) {
	base := &Reading{MgmTried: []Attempt{{Address: "m1"}}, Status: []ndbmsg.Node{{ID: 1, Type: ndbmsg.TypeNDB, Status: ndbmsg.StatusStarted}}}
	same := &Reading{MgmTried: []Attempt{{Address: "m1"}}, Status: []ndbmsg.Node{{ID: 1, Type: ndbmsg.TypeNDB, Status: ndbmsg.StatusStarted}}}
	phase := &Reading{MgmTried: []Attempt{{Address: "m1"}}, Status: []ndbmsg.Node{{ID: 1, Type: ndbmsg.TypeNDB, Status: ndbmsg.StatusStarted, StartPhase: 3}}}
	other := &Reading{MgmTried: []Attempt{{Address: "m1", Err: context.DeadlineExceeded}, {Address: "m2"}}, Status: same.Status}
	for _, tt := range []struct {
		name       string
		prev, cur  *Reading
		wantChange bool
	}{
		{"first reading", nil, base, false},
		{"nothing moved", base, same, false},
		{"a start phase moved", base, phase, true},
		{"another management server answers", base, other, true},
		{"the management server stopped answering", base, &Reading{MgmTried: []Attempt{{Address: "m1", Err: context.DeadlineExceeded}}}, true},
	} {
		if got := changedReading(tt.prev, tt.cur); got != tt.wantChange {
			t.Errorf("%s: changed %v, want %v", tt.name, got, tt.wantChange)
		}
	}
}

func statusOf(r *Reading, id int) ndbmsg.NodeStatus {
	for _, n := range r.Status {
		if n.ID == id {
			return n.Status
		}
	}
	return -1
}

func expectNoSeries(t *testing.T, got map[string]float64, prefixes ...string) {
	t.Helper()
	for k := range got {
		for _, p := range prefixes {
			if strings.HasPrefix(k, p) {
				t.Errorf("unexpected series %s", k)
			}
		}
	}
}
