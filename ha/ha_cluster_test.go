//go:build cluster

package ha

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/nines-project/nines/internal/testbin"
)

// team is two or more Electors running against one etcd.
type team struct {
	t      *testing.T
	etcd   *testbin.Etcd
	cancel map[string]context.CancelFunc
	el     map[string]*Elector
	wg     sync.WaitGroup
}

func startTeam(t *testing.T, lease time.Duration, names ...string) *team {
	t.Helper()
	return startTeamWith(t, Config{Lease: lease}, []string{"c1", "c2"}, names...)
}

// startTeamWith starts an Elector per name for clusters, each with cfg
// but its own name and the test's etcd.
func startTeamWith(t *testing.T, cfg Config, clusters []string, names ...string) *team {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	e, err := testbin.StartEtcd(ctx, testbin.ClusterPorts)
	if err != nil {
		t.Fatal(err)
	}
	tm := &team{t: t, etcd: e, cancel: map[string]context.CancelFunc{}, el: map[string]*Elector{}}
	t.Cleanup(func() {
		for _, c := range tm.cancel {
			c()
		}
		tm.wg.Wait()
		for _, el := range tm.el {
			el.Close()
		}
		e.Stop()
	})
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	if testing.Verbose() {
		log = slog.Default()
	}
	for _, n := range names {
		c := cfg
		c.Name, c.Endpoints, c.Logger = n, []string{e.URL}, log
		el, err := New(c, clusters)
		if err != nil {
			t.Fatal(err)
		}
		rctx, rcancel := context.WithCancel(context.Background())
		tm.cancel[n], tm.el[n] = rcancel, el
		tm.wg.Add(1)
		go func() {
			defer tm.wg.Done()
			el.Run(rctx)
		}()
	}
	return tm
}

// leader waits up to within for exactly one elector to lead cluster and
// returns its name and token.
func (tm *team) leader(cluster string, within time.Duration, except string) (string, int64) {
	tm.t.Helper()
	deadline := time.Now().Add(within)
	for time.Now().Before(deadline) {
		var who []string
		var tok int64
		for n, el := range tm.el {
			if _, tk, ok := el.Lead(cluster); ok {
				who, tok = append(who, n), tk
			}
		}
		if len(who) > 1 {
			tm.t.Fatalf("cluster %s has two leaders: %v", cluster, who)
		}
		if len(who) == 1 && who[0] != except {
			return who[0], tok
		}
		time.Sleep(20 * time.Millisecond)
	}
	tm.t.Fatalf("no leader of %s (other than %q) within %s", cluster, except, within)
	return "", 0
}

func TestOneLeaderAndFailover(t *testing.T) {
	const lease = 2 * time.Second
	tm := startTeam(t, lease, "a", "b")
	first, tok1 := tm.leader("c1", 10*time.Second, "")
	if tok1 <= 0 {
		t.Fatalf("token %d, want > 0", tok1)
	}
	lctx, _, _ := tm.el[first].Lead("c1")

	// The leader records a job, fenced by its leadership.
	if err := tm.el[first].PutJob("c1", "job-1", []byte(`{"id":"job-1"}`), false); err != nil {
		t.Fatalf("leader's PutJob: %v", err)
	}
	other := "a"
	if first == "a" {
		other = "b"
	}
	if err := tm.el[other].PutJob("c1", "job-x", []byte(`{}`), false); !errors.Is(err, ErrNotLeader) {
		t.Fatalf("follower's PutJob: %v, want ErrNotLeader", err)
	}

	// The leader dies without giving up its lease (its connection to etcd
	// closes, as with kill -9): the other takes over once the lease ends.
	died := time.Now()
	tm.cancel[first]()
	tm.el[first].cli.Close()
	second, tok2 := tm.leader("c1", 10*time.Second, first)
	took := time.Since(died)
	t.Logf("leader %s died; %s leads c1 after %s (lease %s), token %d -> %d", first, second, took.Round(time.Millisecond), lease, tok1, tok2)
	if took > 10*time.Second {
		t.Fatalf("takeover took %s, want within 10 s", took)
	}
	if tok2 <= tok1 {
		t.Fatalf("new token %d not above the old %d", tok2, tok1)
	}
	select {
	case <-lctx.Done():
	case <-time.After(lease):
		t.Fatal("the dead leader's context was not cancelled")
	}

	// The new leader finds the job the old one left and ends it.
	jobs, err := tm.el[second].RunningJobs(context.Background(), "c1")
	if err != nil || len(jobs) != 1 || string(jobs[0]) != `{"id":"job-1"}` {
		t.Fatalf("RunningJobs = %q, %v; want the old leader's job-1", jobs, err)
	}
	if err := tm.el[second].PutJob("c1", "job-1", nil, true); err != nil {
		t.Fatal(err)
	}
	if jobs, _ := tm.el[second].RunningJobs(context.Background(), "c1"); len(jobs) != 0 {
		t.Fatalf("a done job stays in etcd: %q", jobs)
	}
}

func TestEtcdUnreachableEndsLeadership(t *testing.T) {
	const lease = 2 * time.Second
	tm := startTeam(t, lease, "a", "b")
	who, tok1 := tm.leader("c1", 10*time.Second, "")
	lctx, _, _ := tm.el[who].Lead("c1")
	if !tm.el["a"].EtcdUp() && !tm.el["b"].EtcdUp() {
		time.Sleep(1500 * time.Millisecond)
	}
	if err := tm.etcd.Pause(); err != nil {
		t.Fatal(err)
	}
	paused := time.Now()
	select {
	case <-lctx.Done():
	case <-time.After(3 * lease):
		t.Fatalf("leadership of %s still on %s %s after etcd froze", "c1", who, 3*lease)
	}
	t.Logf("etcd frozen: %s's leadership ended after %s (lease %s)", who, time.Since(paused).Round(time.Millisecond), lease)
	time.Sleep(1500 * time.Millisecond)
	for n, el := range tm.el {
		if _, _, ok := el.Lead("c1"); ok {
			t.Errorf("%s leads c1 while etcd is unreachable", n)
		}
		if el.EtcdUp() {
			t.Errorf("%s says etcd is up while it is frozen", n)
		}
		for _, m := range el.Metrics() {
			if m.Name == "nines_ha_etcd_up" && m.Value != 0 {
				t.Errorf("%s: nines_ha_etcd_up %v, want 0", n, m.Value)
			}
		}
	}
	if err := tm.etcd.Resume(); err != nil {
		t.Fatal(err)
	}
	_, tok2 := tm.leader("c1", 15*time.Second, "")
	if tok2 <= tok1 {
		t.Fatalf("token after etcd came back %d, want above %d", tok2, tok1)
	}
}

// Sharding: three appliances, six clusters: each cluster is led by its
// rendezvous owner; one appliance dies without revoking its lease: its
// clusters go to the survivors (each to its new owner) within 10 s, the
// others stay where they were.
func TestShardMovesTheDeadMembersClusters(t *testing.T) {
	const lease = 2 * time.Second
	clusters := []string{"billing", "aaa", "iptv", "voip", "crm", "radius"}
	names := []string{"a", "b", "c"}
	tm := startTeamWith(t, Config{Lease: lease, Shard: true}, clusters, names...)
	leaders := func(live []string, within time.Duration) (map[string]string, time.Duration) {
		t.Helper()
		start := time.Now()
		var got map[string]string
		for time.Since(start) < within {
			got = map[string]string{}
			ok := true
			for _, c := range clusters {
				who, _ := tm.leader(c, within, "")
				got[c] = who
				ok = ok && who == Owner(c, live)
			}
			for _, n := range live {
				ok = ok && len(tm.el[n].Members()) == len(live)
			}
			if ok {
				return got, time.Since(start)
			}
			time.Sleep(50 * time.Millisecond)
		}
		t.Fatalf("leaders %v after %s; want each cluster led by its owner among %v", got, within, live)
		return nil, 0
	}
	before, _ := leaders(names, 15*time.Second)
	victim := before["billing"]
	for n, el := range tm.el {
		for _, c := range clusters {
			if el.Owns(c) != (before[c] == n) {
				t.Errorf("%s.Owns(%s) = %v, but %s leads it", n, c, el.Owns(c), before[c])
			}
		}
	}

	died := time.Now()
	tm.cancel[victim]()
	tm.el[victim].cli.Close() // as kill -9: the lease is not revoked
	var live []string
	for _, n := range names {
		if n != victim {
			live = append(live, n)
		}
	}
	after, _ := leaders(live, 10*time.Second)
	took := time.Since(died)
	t.Logf("measured: %s died; its clusters led by the survivors after %s (bound 10 s, lease %s): %v -> %v", victim, took.Round(time.Millisecond), lease, before, after)
	if took > 10*time.Second {
		t.Fatalf("move took %s, want within 10 s", took)
	}
	for _, c := range clusters {
		if before[c] != victim && after[c] != before[c] {
			t.Errorf("%s moved from live %s to %s", c, before[c], after[c])
		}
	}
}
