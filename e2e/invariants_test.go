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
	state   string // wsrep_local_state: 2 Donor/Desynced, 3 Joined, 4 Synced
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
			v.synced, v.state = val == "4", val
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
	table  string
	cancel context.CancelFunc
	wg     sync.WaitGroup
	start  time.Time

	mu      sync.Mutex
	acked   map[string][]int64
	ackAt   []time.Time // when each write was acknowledged, in order
	sentAt  []time.Time // when each acknowledged write was sent, in the same order
	lastAck time.Time
	stall   time.Duration // longest time without any acknowledged write
	stallAt time.Time
	errs    map[string]int
	stopped time.Time
}

// drillTable is where the drill writer writes through the nodes as the
// monitoring account; appTable where it writes as the application
// account, whose grants are on database app only.
const (
	drillTable = "nines.e2e_writes" // nines.drill_writes is the appliance's drill writer's
	appTable   = "app.drill_writes"
)

func startDrillWriter(t *testing.T, sb *sandbox.Sandbox) *drillWriter {
	t.Helper()
	pass, err := os.ReadFile(sb.PasswordPath())
	if err != nil {
		t.Fatal(err)
	}
	var targets []writeTarget
	for _, n := range sb.Nodes() {
		targets = append(targets, writeTarget{name: n.Name, addr: n.Address(), user: "nines", pass: strings.TrimSpace(string(pass))})
	}
	return startDrillWriterAt(t, sb, targets)
}

// writeTarget is one address the drill writer writes through, as one
// application would: a node, or the load balancer's writer listener.
type writeTarget struct {
	name, addr, user, pass string
}

// open is one client connection to the target with an application's
// usual driver settings: a connection that hangs (behind a cut link, to
// a dead node) is given up after 2 s and a new one is made; a write that
// committed anyway is simply not counted as acknowledged.
func (tg writeTarget) open(t testing.TB) *sql.DB {
	t.Helper()
	cfg := mysql.NewConfig()
	cfg.User, cfg.Passwd = tg.user, tg.pass
	cfg.Net, cfg.Addr = "tcp", tg.addr
	cfg.Timeout, cfg.ReadTimeout, cfg.WriteTimeout = time.Second, 2*time.Second, 2*time.Second
	cfg.Logger = &mysql.NopLogger{}
	conn, err := mysql.NewConnector(cfg)
	if err != nil {
		t.Fatal(err)
	}
	db := sql.OpenDB(conn)
	db.SetMaxOpenConns(1)
	return db
}

// appWriter is the target of an application writing through the
// sandbox's HAProxy writer listener with the application account.
func appWriter(t testing.TB, sb *sandbox.Sandbox) writeTarget {
	t.Helper()
	pass, err := os.ReadFile(sb.AppPasswordPath())
	if err != nil {
		t.Fatal(err)
	}
	return writeTarget{name: "haproxy", addr: sb.WriterAddress(), user: sandbox.AppUser, pass: strings.TrimSpace(string(pass))}
}

func startDrillWriterAt(t testing.TB, sb *sandbox.Sandbox, targets []writeTarget) *drillWriter {
	t.Helper()
	admin, err := sb.DB(primaryName(t, sb))
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	table := drillTable
	if targets[0].user == sandbox.AppUser {
		table = appTable
	}
	if _, err := admin.Exec("CREATE TABLE IF NOT EXISTS " + table + " (node VARCHAR(16) NOT NULL, seq BIGINT NOT NULL, at TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3), PRIMARY KEY (node, seq))"); err != nil {
		t.Fatalf("create %s: %v", table, err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	w := &drillWriter{sb: sb, table: table, cancel: cancel, acked: map[string][]int64{}, errs: map[string]int{}, start: time.Now()}
	w.lastAck = w.start
	for _, tg := range targets {
		db := tg.open(t)
		w.wg.Add(1)
		go func() {
			defer w.wg.Done()
			defer db.Close()
			w.write(ctx, tg.name, db)
		}()
	}
	t.Cleanup(w.stop)
	return w
}

// writableSource reports whether node is read_only=OFF and has no
// replica connection: a primary.
func writableSource(t testing.TB, sb *sandbox.Sandbox, node string) bool {
	t.Helper()
	db, err := sb.DB(node)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var ro int
	if err := db.QueryRow("SELECT @@global.read_only").Scan(&ro); err != nil || ro != 0 {
		return false
	}
	rows, err := db.Query("SHOW SLAVE STATUS")
	if err != nil {
		return false
	}
	defer rows.Close()
	return !rows.Next()
}

// primaryName is the node writes go to first: n1 of a Galera sandbox, the
// primary of a replication one.
func primaryName(t testing.TB, sb *sandbox.Sandbox) string {
	t.Helper()
	if sb.Kind() != nines.KindReplication {
		return sb.Nodes()[0].Name
	}
	for _, n := range sb.Nodes() {
		if writableSource(t, sb, n.Name) {
			return n.Name
		}
	}
	t.Fatal("no writable node without a replica connection: no primary")
	return ""
}

func (w *drillWriter) write(ctx context.Context, node string, db *sql.DB) {
	for seq := int64(1); ctx.Err() == nil; seq++ {
		wctx, cancel := context.WithTimeout(ctx, 3*time.Second)
		sent := time.Now()
		_, err := db.ExecContext(wctx, "INSERT INTO "+w.table+" (node, seq) VALUES (?, ?)", node, seq)
		cancel()
		now := time.Now()
		w.mu.Lock()
		if err == nil {
			w.acked[node] = append(w.acked[node], seq)
			w.ackAt = append(w.ackAt, now)
			w.sentAt = append(w.sentAt, sent)
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
func (w *drillWriter) waitAcked(t testing.TB, n int, limit time.Duration) {
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
	caughtUp := func(string) {}
	if w.sb.Kind() == nines.KindReplication {
		caughtUp = replicasCaughtUp(t, w.sb)
	}
	for _, n := range w.sb.Nodes() {
		if pid, _ := w.sb.Pid(n.Name); !strict && pid == 0 {
			continue
		}
		caughtUp(n.Name)
		have := w.rowsOn(t, n.Name)
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

// rowsOn reads the drill's rows on node: (writer target, seq) pairs.
func (w *drillWriter) rowsOn(t *testing.T, node string) map[string]map[int64]bool {
	t.Helper()
	db, err := w.sb.DB(node)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	have := map[string]map[int64]bool{}
	err = causalRead(w.sb, db, func(rows *sql.Rows) error {
		var target string
		var seq int64
		if err := rows.Scan(&target, &seq); err != nil {
			return err
		}
		if have[target] == nil {
			have[target] = map[int64]bool{}
		}
		have[target][seq] = true
		return nil
	}, "SELECT node, seq FROM "+w.table)
	if err != nil {
		t.Fatalf("read %s on %s: %v", w.table, node, err)
	}
	return have
}

// lostOn stops the writer and returns the acknowledged writes node
// lacks, after it applied what the primary has.
func (w *drillWriter) lostOn(t *testing.T, node string) []int64 {
	t.Helper()
	w.stop()
	replicasCaughtUp(t, w.sb)(node)
	have := w.rowsOn(t, node)
	w.mu.Lock()
	defer w.mu.Unlock()
	var lost []int64
	for target, seqs := range w.acked {
		for _, s := range seqs {
			if !have[target][s] {
				lost = append(lost, s)
			}
		}
	}
	return lost
}

// firstAckAfter is when the first write sent after at was acknowledged,
// zero if none. A write sent before at (to a primary killed at at) may
// still be acknowledged a moment after it: that is not the new primary
// taking writes.
func (w *drillWriter) firstAckAfter(at time.Time) time.Time {
	w.mu.Lock()
	defer w.mu.Unlock()
	for i, a := range w.ackAt {
		if w.sentAt[i].After(at) {
			return a
		}
	}
	return time.Time{}
}

// replicasCaughtUp returns a function that waits until a replica applied
// everything the primary had when it was called: a replica applies a
// moment after the primary acknowledged, and a read right after the
// writes stop would report writes as lost that are only not applied yet.
// On the primary, and on a node not replicating, it returns at once.
func replicasCaughtUp(t *testing.T, sb *sandbox.Sandbox) func(string) {
	t.Helper()
	primary := primaryName(t, sb)
	db, err := sb.DB(primary)
	if err != nil {
		t.Fatal(err)
	}
	var pos string
	err = db.QueryRow("SELECT @@global.gtid_binlog_pos").Scan(&pos)
	db.Close()
	if err != nil {
		t.Fatalf("read the primary %s's position: %v", primary, err)
	}
	return func(node string) {
		if node == primary {
			return
		}
		db, err := sb.DB(node)
		if err != nil {
			t.Fatal(err)
		}
		defer db.Close()
		var reached sql.NullInt64
		var replicating bool
		if rows, err := db.Query("SHOW SLAVE STATUS"); err == nil {
			replicating = rows.Next()
			rows.Close()
		}
		if !replicating {
			return
		}
		if err := db.QueryRow("SELECT MASTER_GTID_WAIT(?, 30)", pos).Scan(&reached); err != nil || reached.Int64 != 0 {
			t.Logf("%s did not apply up to the primary %s's %s within 30 s (%v): its rows are read as they are", node, primary, pos, err)
		}
	}
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
