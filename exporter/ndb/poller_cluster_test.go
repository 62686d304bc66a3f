//go:build cluster

package ndb

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/nines-project/nines/internal/metric"
	"github.com/nines-project/nines/internal/testbin"
	ndbmsg "github.com/nines-project/nines/ndb"
	"github.com/nines-project/nines/sandbox/ndbsim"
)

// readings collects what a poller hands its sink.
type readings struct {
	mu   sync.Mutex
	all  []seen
	news chan struct{}
}

type seen struct {
	r       *Reading
	changed bool
	at      time.Time
}

func (rs *readings) sink(r *Reading, changed bool) {
	rs.mu.Lock()
	rs.all = append(rs.all, seen{r, changed, time.Now()})
	rs.mu.Unlock()
	select {
	case rs.news <- struct{}{}:
	default:
	}
}

// await returns the first reading after index from that satisfies ok,
// and its index; it fails the test after limit.
func (rs *readings) await(t *testing.T, from int, limit time.Duration, what string, ok func(*Reading) bool) (seen, int) {
	t.Helper()
	deadline := time.After(limit)
	for {
		rs.mu.Lock()
		for i := from; i < len(rs.all); i++ {
			if ok(rs.all[i].r) {
				s := rs.all[i]
				rs.mu.Unlock()
				return s, i + 1
			}
		}
		from = len(rs.all)
		rs.mu.Unlock()
		select {
		case <-rs.news:
		case <-deadline:
			t.Fatalf("no reading where %s within %s", what, limit)
		}
	}
}

func (rs *readings) count() int {
	rs.mu.Lock()
	defer rs.mu.Unlock()
	return len(rs.all)
}

// TestPoller drives the poller against the simulated ndb_mgmd and a real
// MariaDB carrying the simulator's ndbinfo, reached as two SQL nodes:
// its metrics appear with cluster and instance; a data node failure in
// the model wakes a round through the event stream well before the next
// tick; the management server going away is nines_ndb_mgm_up 0 and the
// second address takes over (reads and events); an SQL node going away
// moves the ndbinfo read to the next.
func TestPoller(t *testing.T) {
	c, err := ndbsim.NewCluster(ndbsim.Config{DataNodes: 4, Replicas: 2})
	if err != nil {
		t.Fatal(err)
	}
	mgm1, err := ndbsim.Serve(c, "127.0.0.1:0", ndbsim.ServerConfig{})
	if err != nil {
		t.Fatal(err)
	}
	defer mgm1.Close()
	port, err := testbin.ClusterPorts.Next()
	if err != nil {
		t.Fatal(err)
	}
	mgm2Addr := fmt.Sprintf("127.0.0.1:%d", port) // nobody listens yet
	mirror(t, c)
	exec(t, "CREATE OR REPLACE USER nines@localhost IDENTIFIED BY 'ndb-poller-test'", "GRANT SELECT ON ndbinfo.* TO nines@localhost")
	sqlA, sqlB := forward(t, sqlNode.Server.Socket), forward(t, sqlNode.Server.Socket)

	p, err := NewPoller(PollerConfig{
		Cluster: "tel", Mgm: []string{mgm1.Addr(), mgm2Addr},
		SQL: []SQLNode{{Address: sqlA.Addr(), User: "nines", Password: "ndb-poller-test"}, {Address: sqlB.Addr(), User: "nines", Password: "ndb-poller-test"}},
		// The 1 s of the appliance, and no burst: a round sooner than
		// the tick can only be the event stream's doing.
		Interval: time.Second, BurstInterval: time.Second, MaxBackoff: 300 * time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	rs := &readings{news: make(chan struct{}, 1)}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); p.Run(ctx, rs.sink) }()
	defer func() { cancel(); <-done }()

	// 1. Metrics: nines_ndb_* under the mgmd, mysql_ndbinfo_* under the
	// SQL node read, every series with cluster.
	s, next := rs.await(t, 0, 5*time.Second, "mgm1 and SQL node A were read with the stream open", func(r *Reading) bool {
		return r.Mgm() == mgm1.Addr() && r.SQL() == sqlA.Addr() && r.Stream == mgm1.Addr()
	})
	got := series(&metric.Set{Metrics: s.r.Metrics()})
	expectSeries(t, got, map[string]float64{
		fmt.Sprintf(`nines_ndb_mgm_up{cluster="tel",instance=%q}`, mgm1.Addr()):                                                      1,
		fmt.Sprintf(`nines_ndb_node_status{cluster="tel",instance=%q,node_id="2",type="NDB",node_group="0"}`, mgm1.Addr()):           float64(ndbmsg.StatusStarted),
		fmt.Sprintf(`nines_ndb_node_group_nodes_started{cluster="tel",instance=%q,node_group="1"}`, mgm1.Addr()):                     2,
		fmt.Sprintf(`nines_ndb_event_stream_up{cluster="tel",instance=%q}`, mgm1.Addr()):                                             1,
		fmt.Sprintf(`nines_ndbinfo_read_success{cluster="tel",instance=%q}`, sqlA.Addr()):                                            1,
		fmt.Sprintf(`mysql_ndbinfo_nodes_status{cluster="tel",instance=%q,node_id="3"}`, sqlA.Addr()):                                3,
		fmt.Sprintf(`mysql_ndbinfo_memoryusage_total{cluster="tel",instance=%q,node_id="1",memory_type="Data memory"}`, sqlA.Addr()): 104857600,
	})
	for _, m := range s.r.Metrics() {
		if !hasLabels(m, "cluster", "instance") {
			t.Errorf("%s %v lacks cluster or instance", m.Name, m.Labels)
		}
	}
	if v := s.r.View(); len(v.Groups) != 2 || v.Groups[0].Up != 2 || v.Arbitrator != 50 {
		t.Errorf("view: %+v", v)
	}

	// 2. A data node fails: the event stream wakes a round at once.
	time.Sleep(100 * time.Millisecond) // away from the round the stream's opening woke
	t0 := time.Now()
	if _, err := c.Stop([]int{2}, ndbsim.StopOptions{}); err != nil {
		t.Fatal(err)
	}
	s, next = rs.await(t, next, 3*time.Second, "data node 2 is NO_CONTACT", func(r *Reading) bool { return statusOf(r, 2) == ndbmsg.StatusNoContact })
	took := s.at.Sub(t0)
	t.Logf("data node 2 stopped in the model -> reading showing it NO_CONTACT: %s (poll interval 1s)", took)
	if !s.r.Woken || !s.changed || took > 500*time.Millisecond {
		t.Errorf("failure seen after %s, woken %v, changed %v: want a woken, changed round well under the 1 s interval", took, s.r.Woken, s.changed)
	}
	got = series(&metric.Set{Metrics: s.r.Metrics()})
	expectSeries(t, got, map[string]float64{
		fmt.Sprintf(`nines_ndb_node_up{cluster="tel",instance=%q,node_id="2",type="NDB",node_group="0"}`, mgm1.Addr()): 0,
		fmt.Sprintf(`nines_ndb_node_group_nodes_started{cluster="tel",instance=%q,node_group="0"}`, mgm1.Addr()):       1,
	})

	// 3. The management server goes away; nothing listens at the second
	// address yet: both are mgm_up 0, the stream is down, ndbinfo goes on.
	mgm1.Close()
	s, next = rs.await(t, next, 3*time.Second, "no management server answers", func(r *Reading) bool { return r.Mgm() == "" })
	got = series(&metric.Set{Metrics: s.r.Metrics()})
	expectSeries(t, got, map[string]float64{
		fmt.Sprintf(`nines_ndb_mgm_up{cluster="tel",instance=%q}`, mgm1.Addr()):           0,
		fmt.Sprintf(`nines_ndb_mgm_up{cluster="tel",instance=%q}`, mgm2Addr):              0,
		fmt.Sprintf(`nines_ndbinfo_read_success{cluster="tel",instance=%q}`, sqlA.Addr()): 1,
	})
	expectNoSeries(t, got, "nines_ndb_node_status")

	// 4. A management server starts at the second address: it is read,
	// the first stays mgm_up 0, and the event stream moves there.
	mgm2, err := ndbsim.Serve(c, mgm2Addr, ndbsim.ServerConfig{})
	if err != nil {
		t.Fatal(err)
	}
	defer mgm2.Close()
	s, next = rs.await(t, next, 5*time.Second, "the second management server is read with its stream open", func(r *Reading) bool {
		return r.Mgm() == mgm2Addr && r.Stream == mgm2Addr
	})
	got = series(&metric.Set{Metrics: s.r.Metrics()})
	expectSeries(t, got, map[string]float64{
		fmt.Sprintf(`nines_ndb_mgm_up{cluster="tel",instance=%q}`, mgm1.Addr()):                                         0,
		fmt.Sprintf(`nines_ndb_mgm_up{cluster="tel",instance=%q}`, mgm2Addr):                                            1,
		fmt.Sprintf(`nines_ndb_node_status{cluster="tel",instance=%q,node_id="2",type="NDB",node_group="0"}`, mgm2Addr): float64(ndbmsg.StatusNoContact),
	})
	time.Sleep(100 * time.Millisecond)
	t0 = time.Now()
	if err := c.Boot(2, false); err != nil {
		t.Fatal(err)
	}
	s, next = rs.await(t, next, 3*time.Second, "data node 2 is STARTING", func(r *Reading) bool { return statusOf(r, 2) == ndbmsg.StatusStarting })
	t.Logf("data node 2 booted -> reading through the second mgmd showing it STARTING: %s", s.at.Sub(t0))
	if !s.r.Woken || s.at.Sub(t0) > 500*time.Millisecond {
		t.Errorf("start seen after %s, woken %v: the second server's event stream did not wake the round", s.at.Sub(t0), s.r.Woken)
	}

	// 5. SQL node A goes away: the next round reads ndbinfo through B.
	sqlA.Close()
	s, _ = rs.await(t, next, 3*time.Second, "ndbinfo is read through SQL node B", func(r *Reading) bool { return r.SQL() == sqlB.Addr() })
	if len(s.r.SQLTried) != 2 || s.r.SQLTried[0].Err == nil {
		t.Errorf("SQL nodes tried: %+v, want A failed then B", s.r.SQLTried)
	}
	got = series(&metric.Set{Metrics: s.r.Metrics()})
	expectSeries(t, got, map[string]float64{
		fmt.Sprintf(`nines_ndbinfo_read_success{cluster="tel",instance=%q}`, sqlA.Addr()):             0,
		fmt.Sprintf(`nines_ndbinfo_read_success{cluster="tel",instance=%q}`, sqlB.Addr()):             1,
		fmt.Sprintf(`mysql_ndbinfo_nodes_status{cluster="tel",instance=%q,node_id="3"}`, sqlB.Addr()): 3,
	})
	t.Logf("%d readings in all", rs.count())
}

func hasLabels(m metric.Metric, names ...string) bool {
	for _, n := range names {
		found := false
		for _, l := range m.Labels {
			found = found || (l.Name == n && l.Value != "")
		}
		if !found {
			return false
		}
	}
	return true
}
