//go:build cluster

// Package e2e drives the built nines binary against real MariaDB Galera
// clusters started on loopback by the sandbox, as an operator would.
//
// The binary is built once, with the race detector, and run as its own
// process (the embedded store allows one instance per process). Tests that
// leave the cluster healthy share one sandbox; each destructive drill gets
// a fresh one.
package e2e

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/nines-project/nines/appliance/apiclient"
	"github.com/nines-project/nines/internal/testbin"
	"github.com/nines-project/nines/sandbox"
)

var (
	ninesBin string

	// races holds the race reports of every process the tests start.
	races *testbin.Races

	sharedOnce sync.Once
	shared     *sandbox.Sandbox
	sharedErr  error

	portMu      sync.Mutex
	listenPorts *testbin.Ports // ports for appliances and hooks, one block of the range
	nextBase    = 14306        // clear of the demo (13306); past 32768 the installer reserves the ports from the kernel's ephemeral range
)

func TestMain(m *testing.M) {
	// The tests need real servers: a missing tool is a failure, not a skip.
	for _, tool := range []string{"mariadbd", "mariadb-install-db", "rsync", "socat"} {
		if _, err := exec.LookPath(tool); err != nil {
			fmt.Fprintf(os.Stderr, "e2e: %s not found: run scripts/install-deps.sh (make test does)\n", tool)
			os.Exit(1)
		}
	}
	var err error
	if races, err = testbin.WatchRaces(); err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		os.Exit(1)
	}
	bin, cleanup, err := testbin.Build(true)
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		os.Exit(1)
	}
	ninesBin = bin
	// Two e2e runs at once (developers working side by side) need port
	// ranges of their own.
	if v := os.Getenv("NINES_E2E_BASE_PORT"); v != "" {
		p, err := strconv.Atoi(v)
		if err != nil || p < 1024 || p > 30000 {
			fmt.Fprintf(os.Stderr, "e2e: NINES_E2E_BASE_PORT=%q: want a port between 1024 and 30000\n", v)
			os.Exit(1)
		}
		nextBase, firstBase = p, p
	}

	code := m.Run()

	if shared != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		if err := shared.Stop(ctx); err != nil {
			fmt.Fprintln(os.Stderr, "e2e: stop shared sandbox:", err)
		}
		cancel()
		os.RemoveAll(shared.Dir())
	}
	// The shared sandbox's agents ran through every test and stopped just
	// now: a race they reported after the last test's check fails the run.
	for _, rep := range races.New() {
		fmt.Fprintf(os.Stderr, "e2e: FAIL: data race in a process the tests started:\n%s\n", rep)
		code = 1
	}
	races.Close()
	cleanup()
	plainCleanup()
	os.Exit(code)
}

// watchRaces fails tb, when it ends, with the race reports that the
// processes the tests started wrote meanwhile (see testbin.Races). Called
// by every helper that starts or uses processes; the first call in a test
// registers the cleanup that runs last, after its sandboxes and
// appliances stopped, so reports written at shutdown are seen too.
func watchRaces(tb testing.TB) {
	tb.Cleanup(func() { races.Check(tb) })
}

// sandboxDir makes a directory the mysql user can traverse (t.TempDir is
// mode 0700 under a 0700 parent, which mariadbd could not enter).
func sandboxDir(tb testing.TB, keep bool) string {
	tb.Helper()
	watchRaces(tb)
	dir, err := os.MkdirTemp("/tmp", "nines-e2e-")
	if err != nil {
		tb.Fatal(err)
	}
	if err := os.Chmod(dir, 0o755); err != nil {
		tb.Fatal(err)
	}
	if !keep {
		tb.Cleanup(func() {
			if !tb.Failed() {
				os.RemoveAll(dir)
			} else {
				tb.Logf("sandbox dir kept for inspection: %s", dir)
			}
		})
	}
	return dir
}

// A sandbox uses ports from its base to base+400 (agents at +200, HAProxy
// at +300, NDB agents at +300+N), so each gets a block of portBlock.
// The blocks must stay below 52000: from there up the kernel hands ports
// to client sockets (scripts/install-deps.sh reserves 32768-51999 for
// listeners), and a node restarted by a drill found its Galera port taken
// by a client once the run's 40th sandbox had climbed to 54306. So the
// blocks wrap around, skipping the ports other tests fix, and reuse the
// block of a sandbox long stopped, never one still pinned.
const (
	portBlock    = 1000
	portBlockTop = 52000 // the kernel's client ports start here
)

// fixedPorts are ranges other tests use at fixed ports: the backup drill
// and its benchmark, testbin.ClusterPorts, the fleet benchmark.
var fixedPorts = [][2]int{{29306, 31306}, {31000, 32000}, {46000, 48000}}

var (
	firstBase  = nextBase
	pinnedBase = map[int]bool{} // blocks in use for the whole run
)

// basePort returns the base of a port block for one sandbox or set of
// listeners.
// waitsSideBySide marks a drill that spends most of its time waiting on
// a clock (a 2-minute receiver outage, a 60 s alert threshold, a slow
// client's 30 s timeout, a backup schedule, position_wait) and whose
// bounds are a minute or more, loose enough not to mind a neighbour: go
// test runs such tests after the others, two at a time (-parallel 2 in
// the Makefile), each on its own sandbox and ports, or on the shared
// sandbox without changing it and with no other appliance probing it
// (two appliances on one host write the same probe rows). Their
// invariants (no acknowledged write lost, never two Primary components,
// nothing acted) hold whatever the load; one after the other they cost
// minutes of CI. Tests with tight bounds (an alert within 3 s, a failover
// within 5 s) never carry it.
func waitsSideBySide(t *testing.T) { t.Parallel() }

func basePort() int {
	portMu.Lock()
	defer portMu.Unlock()
	return nextBlockLocked()
}

// pinBasePort is basePort for a block kept the whole run (the shared
// sandbox, the listener ports): the wrap-around never hands it out again.
func pinBasePort() int {
	portMu.Lock()
	defer portMu.Unlock()
	p := nextBlockLocked()
	pinnedBase[p] = true
	return p
}

func nextBlockLocked() int {
	for tries := 0; tries < 2*(portBlockTop-firstBase)/portBlock+2; tries++ {
		p := nextBase
		nextBase += portBlock
		if nextBase+portBlock > portBlockTop {
			nextBase = firstBase
		}
		if pinnedBase[p] || overlapsFixed(p) || !blockFree(p) {
			continue
		}
		return p
	}
	panic("e2e: no free port block below 52000: are sandboxes of an earlier test still running?")
}

func overlapsFixed(p int) bool {
	for _, r := range fixedPorts {
		if p < r[1] && p+portBlock > r[0] {
			return true
		}
	}
	return false
}

// blockFree reports whether nobody listens on the block's sandbox ports:
// a block handed out again must be one whose sandbox has stopped.
func blockFree(p int) bool {
	for port := p; port < p+500; port++ {
		ln, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", port))
		if err != nil {
			return false
		}
		ln.Close()
	}
	return true
}

// sharedGalera returns the 3-node sandbox shared by tests that leave it
// healthy. It is stopped in TestMain.
func sharedGalera(tb testing.TB) *sandbox.Sandbox {
	tb.Helper()
	watchRaces(tb) // its agents may race during this test
	sharedOnce.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
		defer cancel()
		start := time.Now()
		shared, sharedErr = sandbox.StartGalera(ctx, sandbox.Options{Dir: sandboxDir(tb, true), Nodes: 3, BasePort: pinBasePort(), ClusterName: "shared", AgentBinary: ninesBin})
		if sharedErr == nil {
			fmt.Fprintf(os.Stderr, "e2e: shared 3-node Galera sandbox up in %s\n", time.Since(start).Round(time.Millisecond))
		}
	})
	if sharedErr != nil {
		tb.Fatalf("shared sandbox: %v", sharedErr)
	}
	return shared
}

// freshGalera starts a 3-node sandbox for one destructive drill and stops
// it when the test ends.
func freshGalera(tb testing.TB, name string) *sandbox.Sandbox {
	tb.Helper()
	return startGalera(tb, name, ninesBin, basePort())
}

// startGalera is freshGalera with the agents' binary and the base port
// chosen by the caller (benchmarks run their agents unraced).
func startGalera(tb testing.TB, name, bin string, port int) *sandbox.Sandbox {
	tb.Helper()
	return startSandbox(tb, sandbox.Options{BasePort: port, ClusterName: name, AgentBinary: bin})
}

// startSandbox starts a fresh 3-node Galera sandbox described by o (a new
// directory, and the next base port and the e2e nines binary unless o
// names them) and stops it when the test ends.
func startSandbox(tb testing.TB, o sandbox.Options) *sandbox.Sandbox {
	tb.Helper()
	watchRaces(tb)
	o.Dir, o.Nodes = sandboxDir(tb, false), 3
	if o.BasePort == 0 {
		o.BasePort = basePort()
	}
	if o.AgentBinary == "" {
		o.AgentBinary = ninesBin
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	if o.Netns {
		// A sandbox picks a free /24 when it is made and takes it when
		// its bridge comes up: two drills side by side must not both
		// pick the same one in between.
		netnsMu.Lock()
		defer netnsMu.Unlock()
	}
	start := time.Now()
	return started(tb, o, "3-node Galera", func() (*sandbox.Sandbox, error) { return sandbox.StartGalera(ctx, o) }, start)
}

var netnsMu sync.Mutex

// startReplicationSandbox is startSandbox for a primary and two replicas.
func startReplicationSandbox(tb testing.TB, o sandbox.Options) *sandbox.Sandbox {
	tb.Helper()
	watchRaces(tb)
	o.Dir, o.Nodes = sandboxDir(tb, false), 3
	if o.BasePort == 0 {
		o.BasePort = basePort()
	}
	if o.AgentBinary == "" {
		o.AgentBinary = ninesBin
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	what := "replication (primary and 2 replicas"
	if o.SemiSync {
		what += ", semi-sync"
	}
	return started(tb, o, what+")", func() (*sandbox.Sandbox, error) { return sandbox.StartReplication(ctx, o) }, time.Now())
}

func started(tb testing.TB, o sandbox.Options, what string, start func() (*sandbox.Sandbox, error), t0 time.Time) *sandbox.Sandbox {
	tb.Helper()
	sb, err := start()
	if err != nil {
		tb.Fatalf("start sandbox: %v", err)
	}
	how := ""
	if o.Netns {
		how = " in network namespaces"
	}
	if o.HAProxy {
		how += " behind HAProxy"
	}
	tb.Logf("fresh %s sandbox %q%s up in %s", what, o.ClusterName, how, time.Since(t0).Round(time.Millisecond))
	tb.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		if err := sb.Stop(ctx); err != nil {
			tb.Errorf("stop sandbox: %v", err)
		}
	})
	return sb
}

// clusterConfig begins an appliance config for sandbox sb listening on
// addr: data_dir, the sandbox's API token (admin) under tokenName, its
// webhook token as "alertmanager", and the cluster
// with its nodes (and their agents, when agents is set) and credentials.
// Callers append the cluster's other settings, indented by four spaces,
// then any top-level sections.
func clusterConfig(sb *sandbox.Sandbox, addr, tokenName string, agents bool) *strings.Builder {
	b := &strings.Builder{}
	fmt.Fprintf(b, "listen: %s\ndata_dir: data\napi:\n  tokens: [{name: %s, role: admin, token_file: %s}, {name: alertmanager, role: webhook, token_file: %s}]\n",
		addr, tokenName, sb.TokenPath(), sb.WebhookTokenPath())
	fmt.Fprintf(b, "clusters:\n  - name: %s\n    kind: %s\n    nodes:\n", sb.ClusterName(), sb.Kind())
	for _, n := range sb.Nodes() {
		if agents && n.IP != "" {
			// A sandbox in network namespaces: its agents speak plain
			// HTTP across the sandbox's own bridge on this machine.
			fmt.Fprintf(b, "      - {address: %q, agent: %q, insecure: true}\n", n.Address(), n.AgentURL())
		} else if agents {
			fmt.Fprintf(b, "      - {address: %q, agent: %q}\n", n.Address(), n.AgentURL())
		} else {
			fmt.Fprintf(b, "      - {address: %q}\n", n.Address())
		}
	}
	fmt.Fprintf(b, "    credentials: {user: nines, password_file: %s}\n", sb.PasswordPath())
	if agents {
		fmt.Fprintf(b, "    agent_token_file: %s\n", sb.AgentTokenPath())
		if drs := sb.DRReplicas(); len(drs) > 0 {
			b.WriteString("    dr_replicas:\n")
			for _, d := range drs {
				fmt.Fprintf(b, "      - {address: %q, agent: %q}\n", d.Address(), d.AgentURL())
			}
		}
	}
	// Behind HAProxy the probe writes through it and the remediator moves
	// the writer in it, as the sandbox's own nines.yaml says.
	b.WriteString(sb.HAProxyConfigKeys())
	// An NDB sandbox: its management server and data node agents.
	b.WriteString(sb.NDBConfigKeys())
	return b
}

// freePort returns a loopback port nobody listens on right now, from a
// block of the e2e port range, never from the kernel's ephemeral ports.
func freePort(tb testing.TB) int {
	tb.Helper()
	portMu.Lock()
	if listenPorts == nil {
		p := nextBlockLocked()
		pinnedBase[p] = true
		listenPorts = testbin.NewPorts(p, p+portBlock)
	}
	portMu.Unlock()
	port, err := listenPorts.Next()
	if err != nil {
		tb.Fatal(err)
	}
	return port
}

// safeBuffer collects a process's output for the test log.
type safeBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *safeBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *safeBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// appliance is a running `nines run` process.
type appliance struct {
	tb      testing.TB
	cmd     *exec.Cmd
	base    string
	token   string
	output  *safeBuffer
	started time.Time
	exited  chan struct{}
	rootCAs *x509.CertPool // trusted for an HTTPS appliance
}

// startAppliance runs `nines run --config cfg` on a free port and stops it
// (SIGTERM) when the test ends.
func startAppliance(tb testing.TB, cfg, tokenFile string, extra ...string) *appliance {
	tb.Helper()
	return startApplianceBin(tb, ninesBin, cfg, tokenFile, extra...)
}

// startApplianceBin is startAppliance with another build of nines.
func startApplianceBin(tb testing.TB, bin, cfg, tokenFile string, extra ...string) *appliance {
	tb.Helper()
	return startApplianceOn(tb, bin, fmt.Sprintf("127.0.0.1:%d", freePort(tb)), cfg, tokenFile, extra...)
}

// startApplianceOn runs nines on addr, for configs that must know the
// appliance's address in advance (Alertmanager calling the remediator).
func startApplianceOn(tb testing.TB, bin, addr, cfg, tokenFile string, extra ...string) *appliance {
	tb.Helper()
	return startApplianceIn(tb, "", bin, addr, cfg, tokenFile, extra...)
}

// startApplianceIn is startApplianceOn inside network namespace netns
// ("": this one). `ip netns exec` execs the program, so the process the
// test signals is the appliance itself.
func startApplianceIn(tb testing.TB, netns, bin, addr, cfg, tokenFile string, extra ...string) *appliance {
	tb.Helper()
	watchRaces(tb)
	tok, err := os.ReadFile(tokenFile)
	if err != nil {
		tb.Fatal(err)
	}
	args := append([]string{"run", "--config", cfg, "--listen", addr}, extra...)
	a := &appliance{tb: tb, base: "http://" + addr, token: strings.TrimSpace(string(tok)), output: &safeBuffer{}, exited: make(chan struct{})}
	a.cmd = exec.Command(bin, args...)
	if netns != "" {
		a.cmd = exec.Command("ip", append([]string{"netns", "exec", netns, bin}, args...)...)
	}
	a.cmd.Stdout, a.cmd.Stderr = a.output, a.output
	a.started = time.Now()
	if err := a.cmd.Start(); err != nil {
		tb.Fatalf("start nines: %v", err)
	}
	go func() { _ = a.cmd.Wait(); close(a.exited) }()
	tb.Cleanup(func() {
		a.stop()
		if tb.Failed() {
			// To a file, not the test log: the test's own errors then stay
			// the last lines a CI summary shows.
			f, err := os.CreateTemp("/tmp", "nines-e2e-output-*.log")
			if err != nil {
				tb.Logf("nines output:\n%s", a.output.String())
				return
			}
			_, _ = f.WriteString(a.output.String())
			f.Close()
			tb.Logf("nines output kept in %s", f.Name())
		}
	})
	return a
}

// kill ends the appliance with SIGKILL, as a crash would.
func (a *appliance) kill() {
	_ = a.cmd.Process.Kill()
	<-a.exited
}

// stop sends SIGTERM and waits for a clean exit.
func (a *appliance) stop() {
	select {
	case <-a.exited:
		return
	default:
	}
	_ = a.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-a.exited:
		code := a.cmd.ProcessState.ExitCode()
		switch {
		case code == 66 && races.OnlyKnownUpstream(a.cmd.Process.Pid):
			// The race detector's exit code, for the upstream race only
			// (testbin.KnownUpstream); the race watcher logs the report.
			a.tb.Logf("nines exited with 66 after SIGTERM: the race detector's code, for a race known upstream and not nines'")
		case code != 0:
			a.tb.Errorf("nines exited with %d after SIGTERM:\n%s", code, a.output.String())
		}
	case <-time.After(30 * time.Second):
		_ = a.cmd.Process.Kill()
		a.tb.Errorf("nines did not stop within 30 s of SIGTERM")
	}
}

// api is the client of the appliance's API that the CLI uses too
// (timeouts, body limits, the error envelope), with the test's token and,
// for an HTTPS appliance, the roots to trust.
func (a *appliance) api() *apiclient.Client {
	a.tb.Helper()
	c, err := apiclient.New(apiclient.Options{BaseURL: a.base, Token: a.token, RootCAs: a.rootCAs})
	if err != nil {
		a.tb.Fatal(err)
	}
	return c
}

// get calls the API and decodes the whole JSON answer (envelope included)
// into out. An answer other than 2xx returns its status and the
// *apiclient.Error that carries the appliance's message.
func (a *appliance) get(path string, params url.Values, out any) (int, error) {
	if len(params) > 0 {
		path += "?" + params.Encode()
	}
	r, err := a.api().Raw(context.Background(), http.MethodGet, path, nil)
	if err != nil {
		if e, ok := err.(*apiclient.Error); ok {
			return e.Status, err
		}
		return 0, err
	}
	if out != nil {
		if err := json.Unmarshal(r.Body, out); err != nil {
			return r.Status, fmt.Errorf("decode %s: %w: %s", path, err, r.Body)
		}
	}
	return r.Status, nil
}

// post sends body as JSON to path and returns the status and the answer;
// an answer other than 2xx is not an error here (tests check the status).
func (a *appliance) post(path string, body any) (int, []byte, error) {
	r, err := a.api().Raw(context.Background(), http.MethodPost, path, body)
	if e, ok := err.(*apiclient.Error); ok {
		return e.Status, e.Body, nil
	}
	if err != nil {
		return 0, nil, err
	}
	return r.Status, r.Body, nil
}

// sample is one series of an instant query.
type sample = apiclient.Sample

// promResponse is a query or query_range answer as the API sends it.
type promResponse struct {
	Status string `json:"status"`
	Data   struct {
		Result []struct {
			Metric map[string]string `json:"metric"`
			Value  []any             `json:"value"`
			Values [][]any           `json:"values"`
		} `json:"result"`
	} `json:"data"`
}

// query runs an instant query; a transport error or a non-200 answer
// returns nil so pollers can retry.
func (a *appliance) query(expr string) []sample {
	out, err := a.api().Query(context.Background(), expr)
	if err != nil {
		return nil
	}
	return out
}

// byInstance maps instance label to value.
func byInstance(ss []sample) map[string]float64 {
	out := map[string]float64{}
	for _, s := range ss {
		out[s.Labels["instance"]] = s.Value
	}
	return out
}

// waitFor polls cond every 50 ms until it holds or limit passes, and
// returns how long it took from since.
func waitFor(tb testing.TB, since time.Time, limit time.Duration, what string, cond func() bool) time.Duration {
	tb.Helper()
	for {
		ok := cond()
		took := time.Since(since)
		if ok && took <= limit {
			return took
		}
		if took > limit {
			tb.Fatalf("%s: not true within %s", what, limit)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
