//go:build cluster

package probe

import (
	"bytes"
	"context"
	"database/sql"
	"log/slog"
	"math"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"

	"github.com/nines-project/nines/sandbox"
)

// probeBasePort keeps this package's sandbox clear of the other packages'
// (sandbox tests use 23306, e2e its own range).
const probeBasePort = 26306

// TestProbeGaleraLosesQuorum runs the probe against a real 3-node Galera
// sandbox: about five seconds all good, then kill -9 of two nodes. The
// survivor stalls writes until it evicts the dead (evs timeouts, about
// 2.5 s here), then leaves the Primary component and refuses writes with
// ERROR 1047: every second from the kill on is bad. The counted seconds
// must add up to the run's wall time, and every write the probe saw
// acknowledged must be in the survivor's log.
func TestProbeGaleraLosesQuorum(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	dir := sandboxDir(t)

	startSB := time.Now()
	sb, err := sandbox.StartGalera(ctx, sandbox.Options{Dir: dir, Nodes: 3, BasePort: probeBasePort, ClusterName: "probe", Log: t.Output(), AgentBinary: ninesBin})
	if err != nil {
		t.Fatalf("start 3-node Galera sandbox (needs mariadbd and galera-4): %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		if err := sb.Stop(ctx); err != nil {
			t.Errorf("stop sandbox: %v", err)
		}
	})
	t.Logf("TIMING sandbox start: %v", time.Since(startSB).Round(time.Millisecond))

	pass, err := os.ReadFile(sb.PasswordPath())
	if err != nil {
		t.Fatalf("read password file: %v", err)
	}
	var eps []Endpoint
	for _, n := range sb.Nodes() {
		eps = append(eps, Endpoint{Address: n.Address(), User: sandbox.MonitorUser, Password: string(bytes.TrimSpace(pass))})
	}
	survivor, victims := sb.Nodes()[0], sb.Nodes()[1:]

	const source = "probe-test"
	p, err := New("probe", eps, Options{Source: source, Logger: slog.New(slog.NewTextHandler(t.Output(), nil))})
	if err != nil {
		t.Fatal(err)
	}
	runCtx, stopRun := context.WithCancel(ctx)
	defer stopRun()
	done := make(chan struct{})
	runStart := time.Now()
	go func() {
		defer close(done)
		p.Run(runCtx)
	}()

	// Phase 1: a healthy cluster. Every second is good.
	waitFor(t, 20*time.Second, "5 seconds counted", func() bool { return p.Seconds().Total() >= 5 })
	healthy := p.Seconds()
	if healthy.Bad != 0 || healthy.Unknown != 0 {
		t.Errorf("healthy cluster: %+v, want every second good", healthy)
	}
	var slowest time.Duration
	for _, r := range p.Latest() {
		if !r.Success || r.Seq < 4 {
			t.Errorf("healthy cluster, latest probe of %s: %+v", r.Instance, r)
		}
		slowest = max(slowest, r.Duration)
	}
	t.Logf("TIMING healthy: %+v; slowest latest probe %v", healthy, slowest)

	// Phase 2: kill -9 two of three nodes.
	killAt := time.Now()
	for _, n := range victims {
		pid, err := sb.Pid(n.Name)
		if err != nil || pid == 0 {
			t.Fatalf("pid of %s: %d, %v", n.Name, pid, err)
		}
		if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
			t.Fatalf("kill -9 %s (pid %d): %v", n.Name, pid, err)
		}
	}
	atKill := p.Seconds()
	var firstBad, nonPrimary time.Duration
	deadline := time.Now().Add(40 * time.Second)
	for {
		s := p.Seconds()
		if firstBad == 0 && s.Bad > atKill.Bad {
			firstBad = time.Since(killAt)
		}
		if nonPrimary == 0 && strings.Contains(p.Latest()[0].Err, "1047") {
			nonPrimary = time.Since(killAt)
		}
		// Run on until five seconds after the survivor refused writes.
		if nonPrimary != 0 && time.Since(killAt) > nonPrimary+5*time.Second {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("survivor %s never refused writes with ERROR 1047 within 40 s; latest %+v", survivor.Name, p.Latest())
		}
		time.Sleep(50 * time.Millisecond)
	}
	stopRun()
	<-done
	runEnd := time.Now()

	final := p.Seconds()
	wall := runEnd.Sub(runStart).Seconds()
	t.Logf("TIMING kill -9 of %d nodes: first bad second counted after %v, survivor non-Primary (ERROR 1047) after %v",
		len(victims), firstBad.Round(time.Millisecond), nonPrimary.Round(time.Millisecond))
	t.Logf("TIMING run: %.3f s of wall time, counted %+v = %d s", wall, final, final.Total())
	if math.Abs(float64(final.Total())-wall) > 1 {
		t.Errorf("counted %d seconds over %.3f s of wall time: more than 1 s apart", final.Total(), wall)
	}
	if final.Unknown != 0 {
		t.Errorf("%d unknown seconds: the prober never stalled, every second had a probe", final.Unknown)
	}
	// The second the kill fell in may still have been good; none after it.
	if extra := final.Good - atKill.Good; extra > 1 {
		t.Errorf("%d good seconds after killing two of three nodes, want at most the one the kill fell in", extra)
	}
	// The survivor refused writes for the last five seconds of the run:
	// each of them, at least, was bad.
	if after := final.Bad - atKill.Bad; after < 5 {
		t.Errorf("%d bad seconds after the kill, want at least the 5 the survivor refused writes in", after)
	}
	for _, r := range p.Latest()[1:] {
		if r.Success || r.Err == "" {
			t.Errorf("killed node %s: latest probe %+v, want a failure", r.Instance, r)
		}
	}

	// Every acknowledged write, through any node, must be on the survivor.
	db := survivorDB(t, survivor.Address(), string(bytes.TrimSpace(pass)))
	for _, ep := range eps {
		from, to := p.AcknowledgedSeqs(ep.Address)
		if from == 0 {
			t.Errorf("%s: no acknowledged write at all", ep.Address)
			continue
		}
		missing, err := VerifyNoLoss(ctx, db, source, ep.Address, from, to)
		if err != nil {
			t.Fatalf("verify writes through %s on the survivor: %v", ep.Address, err)
		}
		if len(missing) > 0 {
			t.Errorf("writes acknowledged through %s lost on the survivor: seqs %v of %d..%d", ep.Address, missing, from, to)
		}
		t.Logf("%s: acknowledged seqs %d..%d all present on the survivor", ep.Address, from, to)
	}
	sli, _, _ := p.SLI()
	for _, m := range append(p.Metrics(), sli...) {
		if strings.HasPrefix(m.Name, "nines_probe_writes") || m.Name == MetricSeconds {
			t.Logf("%s%v = %v", m.Name, m.Labels, m.Value)
		}
	}
}

// survivorDB connects to the survivor as the probe's user with
// wsrep_dirty_reads, as a non-Primary node refuses plain reads too.
func survivorDB(t *testing.T, addr, pass string) *sql.DB {
	t.Helper()
	cfg := mysql.NewConfig()
	cfg.Net = "tcp"
	cfg.Addr = addr
	cfg.User = sandbox.MonitorUser
	cfg.Passwd = pass
	cfg.Timeout = 5 * time.Second
	cfg.Params = map[string]string{"wsrep_dirty_reads": "ON"}
	c, err := mysql.NewConnector(cfg)
	if err != nil {
		t.Fatal(err)
	}
	db := sql.OpenDB(c)
	t.Cleanup(func() { db.Close() })
	return db
}

// sandboxDir makes a directory user mysql can traverse: mariadbd runs as
// mysql when the tests run as root, and t.TempDir's parents are 0700.
func sandboxDir(t *testing.T) string {
	watchRaces(t) // first, so the check runs after the sandbox stopped
	t.Helper()
	dir, err := os.MkdirTemp("/tmp", "nines-probe-")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("sandbox dir kept for inspection: %s", dir)
			return
		}
		os.RemoveAll(dir)
	})
	return dir
}

// waitFor polls cond until it holds or d passes.
func waitFor(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not true after %v", what, d)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
