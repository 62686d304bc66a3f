//go:build cluster

package e2e

import (
	"context"
	"database/sql"
	"fmt"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/go-sql-driver/mysql"

	"github.com/nines-project/nines/internal/mariadbd"
	"github.com/nines-project/nines/sandbox"
)

// qanDigest is a digest row of /api/v1/clusters/<name>/queries.
type qanDigest struct {
	Instance, Schema, Digest, Text, Example string
	Seconds, Calls                          float64
}

// qanLockWait is a lock wait of /api/v1/clusters/<name>/blocking.
type qanLockWait struct {
	WaitingID        int64    `json:"waiting_id"`
	WaitingStatement string   `json:"waiting_statement"`
	WaitSeconds      float64  `json:"wait_seconds"`
	BlockingID       int64    `json:"blocking_id"`
	BlockingRecent   []string `json:"blocking_recent_statements"`
}

// TestQueryAnalyticsAndBlocking is issue 16's acceptance on the shared
// sandbox (it leaves it as it found it): a query made slow on purpose is
// the top digest by time within a minute, with its calls; a lock wait
// between two sessions shows both statements and the wait; both console
// pages show them in Chromium, with screenshots.
func TestQueryAnalyticsAndBlocking(t *testing.T) {
	wall := time.Now()
	defer func() { t.Logf("measured: wall time %s", time.Since(wall).Round(time.Millisecond)) }()
	sb := sharedGalera(t)
	name := sb.ClusterName()
	n1 := sb.Nodes()[0]
	a := startAppliance(t, sb.ConfigPath(), sb.TokenPath())
	path := "/api/v1/clusters/" + name

	type queriesAnswer struct {
		Data struct {
			Nodes []struct {
				Instance, Digests, Why string
				ReadAt                 *time.Time `json:"read_at"`
			}
			Digests []qanDigest
		}
	}
	queries := func(params url.Values) queriesAnswer {
		var r queriesAnswer
		if _, err := a.get(path+"/queries", params, &r); err != nil {
			t.Fatalf("GET %s/queries: %v", path, err)
		}
		return r
	}
	// The collector's first read of a node is its baseline: the drill's
	// statements must come after it to be an interval's work.
	waitFor(t, a.started, 30*time.Second, "every node's first digest read, with performance_schema on", func() bool {
		var r queriesAnswer
		if _, err := a.get(path+"/queries", nil, &r); err != nil {
			return false
		}
		for _, n := range r.Data.Nodes {
			if n.Digests != "on" {
				return false
			}
		}
		return len(r.Data.Nodes) == 3
	})

	db := openDB(t, sb, n1.Name)
	mustExec(t, db, "CREATE DATABASE IF NOT EXISTS qan_drill")
	// The shared sandbox is left as found.
	t.Cleanup(func() {
		if _, err := db.Exec("DROP DATABASE IF EXISTS qan_drill"); err != nil {
			t.Errorf("drop the drill's database: %v", err)
		}
	})
	mustExec(t, db, "CREATE TABLE IF NOT EXISTS qan_drill.t (id INT PRIMARY KEY, v INT NOT NULL)")
	mustExec(t, db, "INSERT IGNORE INTO qan_drill.t VALUES (1, 0), (2, 0)")

	// The slow query: 6 calls of half a second each, 3 s in all, far more
	// than the scrapes' and the probe's statements over the same minute.
	const calls = 6
	slowStart := time.Now()
	for range calls {
		mustExec(t, db, "SELECT SLEEP(0.5), v FROM qan_drill.t WHERE id = 1")
	}
	var top qanDigest
	took := waitFor(t, slowStart, 60*time.Second, "the slow query at the top of the digests by time, with its 6 calls", func() bool {
		r := queries(url.Values{"window": {"5m"}, "sort": {"time"}, "node": {n1.Address()}})
		if len(r.Data.Digests) == 0 {
			return false
		}
		top = r.Data.Digests[0]
		return strings.Contains(top.Text, "SLEEP") && top.Calls == calls
	})
	t.Logf("measured: slow query top of /queries %s after its first call: %d calls, %.2f s, text %q, example %q",
		took.Round(time.Millisecond), int(top.Calls), top.Seconds, top.Text, top.Example)
	if top.Seconds < 3 || top.Seconds > 4 || top.Instance != n1.Address() || top.Schema != "" && top.Schema != "qan_drill" {
		t.Errorf("top digest %+v: want about 3 s on %s", top, n1.Address())
	}
	// The same digest sorted by calls on the whole cluster is still found,
	// with the same count (the other nodes never ran it).
	found := false
	for _, d := range queries(url.Values{"window": {"5m"}, "sort": {"calls"}, "by": {"cluster"}, "limit": {"500"}}).Data.Digests {
		if d.Digest == top.Digest {
			found = true
			if d.Calls != calls || d.Instance != "" {
				t.Errorf("whole-cluster row %+v: want %d calls and no instance", d, calls)
			}
		}
	}
	if !found {
		t.Errorf("digest %s missing from the whole-cluster view", top.Digest)
	}
	// Bounded cardinality: the latest interval holds at most the top 20
	// digests per node.
	for inst, n := range byInstance(a.query(fmt.Sprintf(`count by (instance) (nines_query_digest_seconds{cluster=%q})`, name))) {
		if n > 20 {
			t.Errorf("%s has %v digest series in the latest interval, want at most 20", inst, n)
		}
	}
	if code, err := a.get(path+"/queries", url.Values{"sort": {"fastest"}}, nil); code != 400 || err == nil || !strings.Contains(err.Error(), "sort") {
		t.Errorf("sort=fastest: %d %v, want 400 naming sort", code, err)
	}

	// A lock wait: session A updates row 2 and stays in its transaction;
	// session B's update of the same row waits. Each session has a pool
	// of its own without the sandbox pools' 10 s read timeout.
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Second)
	defer cancel()
	waiterDB, holderDB := sessionDB(t, n1), sessionDB(t, n1)
	holder, err := holderDB.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer holder.Close()
	for _, q := range []string{"BEGIN", "UPDATE qan_drill.t SET v = v + 1 WHERE id = 2"} {
		if _, err := holder.ExecContext(ctx, q); err != nil {
			t.Fatalf("session A: %s: %v", q, err)
		}
	}
	waiterDone := make(chan error, 1)
	go func() {
		_, err := waiterDB.ExecContext(ctx, "UPDATE qan_drill.t SET v = v + 10 WHERE id = 2")
		waiterDone <- err
	}()
	released := false
	release := func() {
		if released {
			return
		}
		released = true
		if _, err := holder.ExecContext(ctx, "ROLLBACK"); err != nil {
			t.Errorf("session A: ROLLBACK: %v", err)
		}
		if err := <-waiterDone; err != nil {
			t.Errorf("session B after A's rollback: %v", err)
		}
	}
	defer release()
	type blockingAnswer struct {
		Data struct {
			Nodes []struct {
				Instance          string
				Error             string
				PerformanceSchema bool          `json:"performance_schema"`
				LockWaits         []qanLockWait `json:"lock_waits"`
				Transactions      []struct {
					ID               int64
					State, Statement string
				}
				Galera *struct {
					RecvQueue float64 `json:"recv_queue"`
				}
			}
		}
	}
	var br blockingAnswer
	var wait *qanLockWait
	defer func() {
		if t.Failed() {
			t.Logf("last /blocking answer: %+v", br.Data.Nodes)
			rows, err := db.Query("SELECT trx_mysql_thread_id, trx_state, IFNULL(trx_query, '') FROM information_schema.INNODB_TRX")
			if err != nil {
				t.Logf("INNODB_TRX: %v", err)
				return
			}
			defer rows.Close()
			for rows.Next() {
				var id int64
				var st, q string
				_ = rows.Scan(&id, &st, &q)
				t.Logf("INNODB_TRX on %s: %d %s %q", n1.Address(), id, st, q)
			}
		}
	}()
	blocked := time.Now()
	// An answer is reused for 5 s: the first may predate B's wait.
	took = waitFor(t, blocked, 20*time.Second, "/blocking to show session B waiting for session A", func() bool {
		var r blockingAnswer
		asked := time.Now()
		if _, err := a.get(path+"/blocking", nil, &r); err != nil {
			t.Fatalf("GET %s/blocking: %v", path, err)
		}
		if d := time.Since(asked); d > 5*time.Second {
			t.Errorf("/blocking took %s, over its 5 s timeout", d)
		}
		br = r
		for _, n := range r.Data.Nodes {
			if n.Instance == n1.Address() && len(n.LockWaits) > 0 {
				wait = &n.LockWaits[0]
				return true
			}
		}
		return false
	})
	t.Logf("measured: /blocking showed the lock wait %s after session B started", took.Round(time.Millisecond))
	for _, n := range br.Data.Nodes {
		if n.Error != "" || !n.PerformanceSchema || n.Galera == nil {
			t.Errorf("node %s: error %q, performance_schema %v, galera %v: want a full read", n.Instance, n.Error, n.PerformanceSchema, n.Galera != nil)
		}
	}
	t.Logf("measured: lock wait %+v", *wait)
	if !strings.Contains(wait.WaitingStatement, "v = v + 10") || len(wait.BlockingRecent) == 0 || !strings.Contains(wait.BlockingRecent[0], "v = v + 1 ") || wait.WaitSeconds <= 0 {
		t.Errorf("lock wait %+v: want B's statement waiting, A's update as the holder's latest statement, a wait time", *wait)
	}

	// The console pages, in Chromium.
	pw, err := os.ReadFile(sb.ConsolePasswordPath())
	if err != nil {
		t.Fatalf("sandbox console password: %v", err)
	}
	b := newBrowser(t, a.base)
	b.do("open the console", chromedp.Navigate(a.base+"/"))
	b.login(sandbox.ConsoleUser, strings.TrimSpace(string(pw)))
	b.do("blocking page", chromedp.Navigate(a.base+"/#/cluster/"+name+"/blocking"), chromedp.WaitVisible(chromedp.ID("blocking-read-at")))
	rowJS := fmt.Sprintf(`(() => { const r = document.querySelector('[data-blocking-node=%q] tr[data-lock-wait]'); return r ? r.textContent : ''; })()`, n1.Address())
	waitFor(t, time.Now(), 15*time.Second, "the blocking page to show the lock wait with both statements", func() bool {
		s := eval[string](b, rowJS)
		return strings.Contains(s, "v = v + 10") && strings.Contains(s, "v = v + 1 ")
	})
	b.screenshot("blocking")
	release()

	b.do("queries page", chromedp.Navigate(a.base+"/#/cluster/"+name+"/queries?window=5m"), chromedp.WaitVisible(chromedp.ID("qan-window")))
	firstJS := `(() => { const r = document.querySelector('#qan-table tbody tr'); return r ? [r.dataset.digest, r.dataset.calls] : ['', '']; })()`
	waitFor(t, time.Now(), 15*time.Second, "the queries page to list the slow query first", func() bool {
		got := eval[[]string](b, firstJS)
		return got[0] == top.Digest && got[1] == fmt.Sprint(calls)
	})
	b.screenshot("queries-by-time")
	// Sorting by a column header re-reads in that order.
	eval[bool](b, `document.querySelector('#qan-table th[data-sort=calls]').click() === undefined`)
	waitFor(t, time.Now(), 15*time.Second, "the queries page sorted by calls", func() bool {
		return eval[bool](b, `!!document.querySelector('#qan-table th.sorted[data-sort=calls]')`)
	})
	b.screenshot("queries-by-calls")

	// The advice page: an IST window and an eviction row per node.
	b.do("advice page", chromedp.Navigate(a.base+"/#/cluster/"+name+"/advice"), chromedp.WaitVisible(chromedp.ID("advice-read")))
	waitFor(t, time.Now(), 20*time.Second, "the advice page to show both topics for every node", func() bool {
		return eval[int](b, `document.querySelectorAll('#advice-table tr[data-advice-topic]').length`) == 2*len(sb.Nodes())
	})
	b.screenshot("advice")
}

// sessionDB is one client session's pool on node n, over its socket as
// the sandbox's admin, without the sandbox pools' 10 s read timeout: a
// session in a lock wait waits longer than that.
func sessionDB(t *testing.T, n sandbox.Node) *sql.DB {
	t.Helper()
	cfg := mysql.NewConfig()
	cfg.User, cfg.Net, cfg.Addr = mariadbd.SocketUser(), "unix", n.Socket
	cfg.Timeout = 2 * time.Second
	c, err := mysql.NewConnector(cfg)
	if err != nil {
		t.Fatal(err)
	}
	db := sql.OpenDB(c)
	t.Cleanup(func() { db.Close() })
	return db
}
