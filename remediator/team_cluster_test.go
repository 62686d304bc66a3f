//go:build cluster

package remediator

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nines-project/nines/agent"
	"github.com/nines-project/nines/ha"
	"github.com/nines-project/nines/internal/testbin"
)

// handoverRunbook acts, waits for the test to release it, and acts
// again, each act a call to an agent; the agent stand-in records the
// fencing token of every call.
type handoverRunbook struct {
	agent   *agent.Client
	first   atomic.Int32
	second  atomic.Int32
	started chan struct{}
	release chan struct{}
	once    sync.Once
}

func (h *handoverRunbook) Name() string { return "handover" }
func (h *handoverRunbook) Run(ctx context.Context, r *Run) error {
	if _, err := Act(ctx, r, "first", nil, func(ctx context.Context) (bool, error) {
		h.first.Add(1)
		_, err := h.agent.Stop(ctx, agent.StopRequest{})
		return true, err
	}); err != nil {
		return err
	}
	h.once.Do(func() { close(h.started) })
	select {
	case <-h.release:
	case <-ctx.Done():
		return ctx.Err()
	}
	_, err := Act(ctx, r, "second", nil, func(ctx context.Context) (bool, error) {
		h.second.Add(1)
		_, err := h.agent.Stop(ctx, agent.StopRequest{})
		return true, err
	})
	return err
}

// TestLeaderDiesMidJobNextLeaderResumes runs two remediators, each with
// its own elector on one real etcd. The leader's job acts once and is
// then cut off from etcd as by kill -9: the other appliance takes the
// cluster, resumes the job from the team's log without repeating the
// done act, and its act carries a larger fencing token.
func TestLeaderDiesMidJobNextLeaderResumes(t *testing.T) {
	const lease = 2 * time.Second
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	etcd, err := testbin.StartEtcd(ctx, testbin.ClusterPorts)
	if err != nil {
		t.Fatal(err)
	}
	defer etcd.Stop()

	var mu sync.Mutex
	var tokens []int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n, _ := strconv.ParseInt(r.Header.Get(agent.HeaderFenceToken), 10, 64)
		mu.Lock()
		tokens = append(tokens, n)
		mu.Unlock()
		w.Write([]byte(`{"was_running":false}`))
	}))
	defer srv.Close()
	rb := &handoverRunbook{agent: agent.NewClient(srv.URL, "t", nil), started: make(chan struct{}), release: make(chan struct{})}

	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	if testing.Verbose() {
		quiet = slog.Default()
	}
	type appliance struct {
		el       *ha.Elector
		stopEl   context.CancelFunc
		rem      *Remediator
		log      *JobLog
		stopRem  context.CancelFunc
		done     sync.WaitGroup
		name     string
		clusters []string
	}
	apps := map[string]*appliance{}
	for _, name := range []string{"a", "b"} {
		el, err := ha.New(ha.Config{Name: name, Endpoints: []string{etcd.URL}, Lease: lease, Logger: quiet}, []string{"c1"})
		if err != nil {
			t.Fatal(err)
		}
		log, err := OpenJobLog(t.TempDir())
		if err != nil {
			t.Fatal(err)
		}
		rem, err := New(Options{Log: log, Runbooks: []Runbook{rb}, Policies: map[string]Policy{"c1": {Mode: ModeAuto}},
			Settle: 10 * time.Millisecond, Team: el, Logger: quiet.With("appliance", name)})
		if err != nil {
			t.Fatal(err)
		}
		ap := &appliance{el: el, rem: rem, log: log, name: name}
		ectx, ecancel := context.WithCancel(context.Background())
		rctx, rcancel := context.WithCancel(context.Background())
		ap.stopEl, ap.stopRem = ecancel, rcancel
		ap.done.Add(2)
		go func() { defer ap.done.Done(); el.Run(ectx) }()
		go func() { defer ap.done.Done(); rem.Run(rctx) }()
		apps[name] = ap
	}
	defer func() {
		for _, ap := range apps {
			ap.stopRem()
			ap.stopEl()
			ap.done.Wait()
			ap.el.Close()
		}
	}()

	// Both appliances get the alert, as each evaluates the rules.
	at := time.Now()
	for _, ap := range apps {
		ap.rem.Receive(alert("fp1", "c1", "handover", at))
	}
	select {
	case <-rb.started:
	case <-time.After(15 * time.Second):
		t.Fatal("no appliance started the job within 15 s")
	}
	var leader, follower *appliance
	for _, ap := range apps {
		if _, _, ok := ap.el.Lead("c1"); ok {
			leader = ap
		} else {
			follower = ap
		}
	}
	if leader == nil || follower == nil {
		t.Fatal("want one leader and one follower")
	}
	_, tok1, _ := leader.el.Lead("c1")

	// The leader's connection to etcd dies (kill -9 as etcd sees it); its
	// remediator goes on, as a paused process would after SIGCONT.
	died := time.Now()
	leader.stopEl()
	leader.el.Close()
	deadline := time.Now().Add(10 * time.Second)
	for {
		if _, _, ok := follower.el.Lead("c1"); ok {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the follower did not take the cluster within 10 s")
		}
		time.Sleep(20 * time.Millisecond)
	}
	took := time.Since(died)
	t.Logf("%s leads c1 %s after %s lost etcd (lease %s)", follower.name, took.Round(time.Millisecond), leader.name, lease)
	if took > 10*time.Second {
		t.Fatalf("takeover took %s, want within 10 s", took)
	}
	// The follower resumes the job (the act "first" is not repeated) and
	// blocks at the release; then it finishes.
	waitFor := func(what string, cond func() bool) {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for !cond() {
			if time.Now().After(deadline) {
				t.Fatalf("%s: not within 10 s", what)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	waitFor("the follower resumes the job", func() bool {
		js, _ := follower.log.List()
		return len(js) == 1 && js[0].Resumes == 1
	})
	close(rb.release)
	waitFor("the resumed job succeeds", func() bool {
		js, _ := follower.log.List()
		return len(js) == 1 && js[0].State == JobSucceeded
	})
	if n, m := rb.first.Load(), rb.second.Load(); n != 1 || m != 1 {
		t.Fatalf("act first ran %d times and second %d times, want once each", n, m)
	}
	mu.Lock()
	got := append([]int64(nil), tokens...)
	mu.Unlock()
	if len(got) != 2 || got[0] != tok1 || got[1] <= tok1 {
		t.Fatalf("agent saw tokens %v, want [%d, larger]", got, tok1)
	}
	// The deposed leader never recorded the job as ended.
	js, _ := leader.log.List()
	if len(js) != 1 || js[0].State.Done() {
		t.Fatalf("deposed leader's log: %+v, want the job still running there", js)
	}
	if raw, err := follower.el.RunningJobs(ctx, "c1"); err != nil || len(raw) != 0 {
		t.Fatalf("team log after the job ended: %d jobs, %v; want none", len(raw), err)
	}
}
