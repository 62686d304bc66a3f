//go:build cluster

package e2e

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"

	"github.com/nines-project/nines"
	"github.com/nines-project/nines/sandbox"
)

// The drills' two independent witnesses. Neither goes through nines: the
// writer is an application writing over the network, the checker a DBA
// watching every node through its unix socket (which no partition cuts).

// nodeView is one node as the checker read it at one poll.
type nodeView struct {
	ok      bool
	primary bool
	synced  bool
	size    int
	confID  string
	members []string // wsrep_incoming_addresses, sorted
}

// splitBrainChecker polls every node every 100 ms, all nodes at once, and
// records a violation whenever two nodes report Primary with memberships
// that share no node: two Primary components, each able to take writes.
type splitBrainChecker struct {
	sb     *sandbox.Sandbox
	dbs    map[string]*sql.DB
	cancel context.CancelFunc
	done   chan struct{}

	mu          sync.Mutex
	polls       int
	violations  []string
	last        map[string]nodeView
	healthySeen time.Time // first poll since markHeal with every node Synced in one Primary component of all
	healFrom    time.Time
}

func startSplitBrainChecker(t *testing.T, sb *sandbox.Sandbox) *splitBrainChecker {
	t.Helper()
	c := &splitBrainChecker{sb: sb, dbs: map[string]*sql.DB{}, done: make(chan struct{})}
	for _, n := range sb.Nodes() {
		db, err := sb.DB(n.Name)
		if err != nil {
			t.Fatal(err)
		}
		db.SetMaxOpenConns(1)
		c.dbs[n.Name] = db
	}
	ctx, cancel := context.WithCancel(context.Background())
	c.cancel = cancel
	go c.run(ctx)
	t.Cleanup(func() { c.stop() })
	return c
}

func (c *splitBrainChecker) run(ctx context.Context) {
	defer close(c.done)
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		c.poll(ctx)
	}
}

func (c *splitBrainChecker) poll(ctx context.Context) {
	at := time.Now()
	views := make(map[string]nodeView, len(c.dbs))
	var mu sync.Mutex
	var wg sync.WaitGroup
	for name, db := range c.dbs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			v := readView(ctx, db)
			mu.Lock()
			views[name] = v
			mu.Unlock()
		}()
	}
	wg.Wait()
	names := make([]string, 0, len(views))
	for n := range views {
		names = append(names, n)
	}
	sort.Strings(names)
	c.mu.Lock()
	defer c.mu.Unlock()
	c.polls++
	c.last = views
	for i, a := range names {
		for _, b := range names[i+1:] {
			va, vb := views[a], views[b]
			if !va.primary || !vb.primary || overlaps(va.members, vb.members) {
				continue
			}
			c.violations = append(c.violations, fmt.Sprintf("%s: %s Primary (conf %s, members %v) and %s Primary (conf %s, members %v): two Primary components",
				at.Format("15:04:05.000"), a, va.confID, va.members, b, vb.confID, vb.members))
		}
	}
	if !c.healFrom.IsZero() && c.healthySeen.IsZero() && allHealthy(views, len(c.dbs)) {
		c.healthySeen = at
	}
}

func readView(ctx context.Context, db *sql.DB) nodeView {
	ctx, cancel := context.WithTimeout(ctx, 500*time.Millisecond)
	defer cancel()
	rows, err := db.QueryContext(ctx, "SHOW GLOBAL STATUS WHERE Variable_name IN ('wsrep_cluster_status','wsrep_cluster_conf_id','wsrep_incoming_addresses','wsrep_cluster_size','wsrep_local_state')")
	if err != nil {
		return nodeView{}
	}
	defer rows.Close()
	v := nodeView{ok: true}
	for rows.Next() {
		var k, val string
		if rows.Scan(&k, &val) != nil {
			return nodeView{}
		}
		switch strings.ToLower(k) {
		case "wsrep_cluster_status":
			v.primary = val == "Primary"
		case "wsrep_cluster_conf_id":
			v.confID = val
		case "wsrep_incoming_addresses":
			for _, m := range strings.Split(val, ",") {
				if m = strings.TrimSpace(m); m != "" {
					v.members = append(v.members, m)
				}
			}
			sort.Strings(v.members)
		case "wsrep_cluster_size":
			fmt.Sscan(val, &v.size)
		case "wsrep_local_state":
			v.synced = val == "4"
		}
	}
	if rows.Err() != nil {
		return nodeView{}
	}
	return v
}

// overlaps reports whether two memberships share a node. A Primary node
// whose membership could not be read counts as overlapping: the checker
// claims a split only on evidence.
func overlaps(a, b []string) bool {
	if len(a) == 0 || len(b) == 0 {
		return true
	}
	for _, m := range a {
		if slices.Contains(b, m) {
			return true
		}
	}
	return false
}

func allHealthy(views map[string]nodeView, n int) bool {
	if len(views) != n {
		return false
	}
	for _, v := range views {
		if !v.ok || !v.primary || !v.synced || v.size != n {
			return false
		}
	}
	return true
}

// markHeal starts the clock for "Primary and Synced again after heal".
func (c *splitBrainChecker) markHeal(at time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.healFrom, c.healthySeen = at, time.Time{}
}

// waitHealed waits until a poll saw every node Synced in one Primary
// component of all of them, and returns the time from markHeal.
func (c *splitBrainChecker) waitHealed(t *testing.T, limit time.Duration) time.Duration {
	t.Helper()
	c.mu.Lock()
	from := c.healFrom
	c.mu.Unlock()
	var took time.Duration
	waitFor(t, from, limit, "every node Synced in one Primary component (as the checker sees it)", func() bool {
		c.mu.Lock()
		defer c.mu.Unlock()
		if c.healthySeen.IsZero() {
			return false
		}
		took = c.healthySeen.Sub(from)
		return true
	})
	return took
}

// primaries returns the nodes the last poll saw Primary.
func (c *splitBrainChecker) primaries() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []string
	for n, v := range c.last {
		if v.primary {
			out = append(out, n)
		}
	}
	sort.Strings(out)
	return out
}

// synced reports whether the last poll saw node Synced in a Primary
// component of every node.
func (c *splitBrainChecker) synced(node string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	v := c.last[node]
	return v.ok && v.primary && v.synced && v.size == len(c.dbs)
}

// stop ends the polling; check then reports what it saw.
func (c *splitBrainChecker) stop() {
	c.cancel()
	<-c.done
	for _, db := range c.dbs {
		db.Close()
	}
}

// check fails t on any violation and prints how much was checked. A
// checker that polled a handful of times proved nothing.
func (c *splitBrainChecker) check(t *testing.T) {
	t.Helper()
	c.stop()
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.polls < 50 {
		t.Errorf("split-brain checker polled only %d times: the drill was not watched", c.polls)
	}
	for _, v := range c.violations {
		t.Error(v)
	}
	t.Logf("measured: split-brain checker: %d polls of every node, %d instants with two Primary components", c.polls, len(c.violations))
}

// drillWriter writes numbered rows through every node's SQL address over
// TCP, as an application would, and remembers which commits were
// acknowledged. Afterwards every acknowledged row must be on every node.
type drillWriter struct {
	sb     *sandbox.Sandbox
	cancel context.CancelFunc
	wg     sync.WaitGroup
	start  time.Time

	mu      sync.Mutex
	acked   map[string][]int64
	lastAck time.Time
	stall   time.Duration // longest time without any acknowledged write
	stallAt time.Time
	errs    map[string]int
	stopped time.Time
}

const drillTable = "nines.drill_writes"

func startDrillWriter(t *testing.T, sb *sandbox.Sandbox) *drillWriter {
	t.Helper()
	admin, err := sb.DB(sb.Nodes()[0].Name)
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	if _, err := admin.Exec("CREATE TABLE IF NOT EXISTS " + drillTable + " (node VARCHAR(16) NOT NULL, seq BIGINT NOT NULL, at TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3), PRIMARY KEY (node, seq))"); err != nil {
		t.Fatalf("create %s: %v", drillTable, err)
	}
	pass, err := os.ReadFile(sb.PasswordPath())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	w := &drillWriter{sb: sb, cancel: cancel, acked: map[string][]int64{}, errs: map[string]int{}, start: time.Now()}
	w.lastAck = w.start
	for _, n := range sb.Nodes() {
		cfg := mysql.NewConfig()
		cfg.User, cfg.Passwd = "nines", strings.TrimSpace(string(pass))
		cfg.Net, cfg.Addr = "tcp", n.Address()
		// Short: a write stuck behind a cut link is given up, not waited
		// for; if it committed anyway it is simply not counted.
		cfg.Timeout, cfg.ReadTimeout, cfg.WriteTimeout = time.Second, 2*time.Second, 2*time.Second
		cfg.Logger = &mysql.NopLogger{}
		conn, err := mysql.NewConnector(cfg)
		if err != nil {
			t.Fatal(err)
		}
		db := sql.OpenDB(conn)
		db.SetMaxOpenConns(1)
		w.wg.Add(1)
		go func() {
			defer w.wg.Done()
			defer db.Close()
			w.write(ctx, n.Name, db)
		}()
	}
	t.Cleanup(w.stop)
	return w
}

func (w *drillWriter) write(ctx context.Context, node string, db *sql.DB) {
	for seq := int64(1); ctx.Err() == nil; seq++ {
		wctx, cancel := context.WithTimeout(ctx, 3*time.Second)
		_, err := db.ExecContext(wctx, "INSERT INTO "+drillTable+" (node, seq) VALUES (?, ?)", node, seq)
		cancel()
		now := time.Now()
		w.mu.Lock()
		if err == nil {
			w.acked[node] = append(w.acked[node], seq)
			if gap := now.Sub(w.lastAck); gap > w.stall {
				w.stall, w.stallAt = gap, w.lastAck
			}
			w.lastAck = now
		} else if ctx.Err() == nil {
			w.errs[node]++
		}
		w.mu.Unlock()
		pause := 20 * time.Millisecond
		if err != nil {
			pause = 100 * time.Millisecond
		}
		select {
		case <-ctx.Done():
		case <-time.After(pause):
		}
	}
}

func (w *drillWriter) stop() {
	w.cancel()
	w.wg.Wait()
	w.mu.Lock()
	if w.stopped.IsZero() {
		w.stopped = time.Now()
	}
	w.mu.Unlock()
}

// ackedCount is the number of acknowledged writes so far.
func (w *drillWriter) ackedCount() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	n := 0
	for _, s := range w.acked {
		n += len(s)
	}
	return n
}

// waitAcked waits until at least n more writes were acknowledged.
func (w *drillWriter) waitAcked(t *testing.T, n int, limit time.Duration) {
	t.Helper()
	want := w.ackedCount() + n
	waitFor(t, time.Now(), limit, fmt.Sprintf("%d more acknowledged writes", n), func() bool { return w.ackedCount() >= want })
}

// check stops the writer and verifies that every acknowledged row is on
// every node, read through the nodes' sockets; it prints what was
// written, what was lost and the longest stall.
func (w *drillWriter) check(t *testing.T) { w.verify(t, true) }

// report is check for a drill in which a person knowingly gave writes up
// (force_node): the loss is counted and printed, not failed, and only
// the running nodes are read.
func (w *drillWriter) report(t *testing.T) { w.verify(t, false) }

func (w *drillWriter) verify(t *testing.T, strict bool) {
	t.Helper()
	w.stop()
	w.mu.Lock()
	defer w.mu.Unlock()
	total := 0
	for _, s := range w.acked {
		total += len(s)
	}
	if total < 20 {
		t.Errorf("the drill writer got only %d acknowledged writes: nothing to lose, the check proves nothing", total)
	}
	lost := 0
	for _, n := range w.sb.Nodes() {
		if pid, _ := w.sb.Pid(n.Name); !strict && pid == 0 {
			continue
		}
		db, err := w.sb.DB(n.Name)
		if err != nil {
			t.Fatal(err)
		}
		have := map[string]map[int64]bool{}
		err = causalRead(w.sb, db, func(rows *sql.Rows) error {
			var node string
			var seq int64
			if err := rows.Scan(&node, &seq); err != nil {
				return err
			}
			if have[node] == nil {
				have[node] = map[int64]bool{}
			}
			have[node][seq] = true
			return nil
		}, "SELECT node, seq FROM "+drillTable)
		db.Close()
		if err != nil {
			t.Fatalf("read %s on %s: %v", drillTable, n.Name, err)
		}
		for node, seqs := range w.acked {
			var missing []int64
			for _, s := range seqs {
				if !have[node][s] {
					missing = append(missing, s)
				}
			}
			if len(missing) > 0 {
				lost += len(missing)
				if !strict {
					t.Logf("given up by the override: %s lacks %d of the %d writes acknowledged through %s", n.Name, len(missing), len(seqs), node)
					continue
				}
				t.Errorf("%s lacks %d of the %d writes acknowledged through %s (first %v)", n.Name, len(missing), len(seqs), node, missing[:min(len(missing), 5)])
			}
		}
	}
	stall := w.stall
	if gap := w.stopped.Sub(w.lastAck); gap > stall {
		stall = gap
	}
	t.Logf("measured: drill writer: %d acknowledged writes (%v per node), %d lost, longest write stall %s (from %s), failed attempts %v",
		total, perNode(w.acked), lost, stall.Round(time.Millisecond), w.stallAt.Format("15:04:05.000"), w.errs)
}

func perNode(m map[string][]int64) map[string]int {
	out := map[string]int{}
	for k, v := range m {
		out[k] = len(v)
	}
	return out
}

// causalRead runs query on one connection of db and hands each row to
// scan. On a Galera node the session first sets wsrep_sync_wait=1: a
// node applies what the others certified a moment later (one that has
// just joined, or one behind a busy applier, may not have applied a write
// another node acknowledged), and without the wait a read right after the
// writes stop reports writes as lost that are only not applied yet.
func causalRead(sb *sandbox.Sandbox, db *sql.DB, scan func(*sql.Rows) error, query string, args ...any) error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := db.Conn(ctx)
	if err != nil {
		return err
	}
	defer conn.Close()
	if sb.Kind() == nines.KindGalera {
		if _, err := conn.ExecContext(ctx, "SET SESSION wsrep_sync_wait = 1"); err != nil {
			return fmt.Errorf("SET wsrep_sync_wait: %w", err)
		}
	}
	rows, err := conn.QueryContext(ctx, query, args...)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		if err := scan(rows); err != nil {
			return err
		}
	}
	return rows.Err()
}
