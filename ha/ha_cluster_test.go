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
		el, err := New(Config{Name: n, Endpoints: []string{e.URL}, Lease: lease, Logger: log}, []string{"c1", "c2"})
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
