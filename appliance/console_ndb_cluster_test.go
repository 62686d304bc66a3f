//go:build cluster

package appliance

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"golang.org/x/crypto/bcrypt"

	"github.com/nines-project/nines/appliance/config"
	"github.com/nines-project/nines/internal/testbin"
	"github.com/nines-project/nines/internal/testbrowser"
	ndbmsg "github.com/nines-project/nines/ndb"
	"github.com/nines-project/nines/sandbox/ndbsim"
)

// TestConsoleNDBClusterPage is the console's cluster page of a kind ndb
// cluster in real Chromium, against the whole appliance polling the
// simulated ndb_mgmd and a real MariaDB as the SQL node (as
// TestNDBClusterInTheAppliance runs it). What an operator checks: both
// node groups ok with their data nodes STARTED; DataMemory and redo bars
// at the percentages set in the model, with the 80/90 % marks; the
// management server as arbitrator and the SQL node; a stopped data node
// shown down (NO_CONTACT, no bars) with its group degraded; the node
// starting again with its start phase; the group ok once it is back. A
// Galera cluster of the same appliance still gets its own table.
func TestConsoleNDBClusterPage(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	db, err := testbin.StartMariaDB(ctx, "appliance-console-ndb-sql")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Stop()
	c, err := ndbsim.NewCluster(ndbsim.Config{DataNodes: 4, Replicas: 2})
	if err != nil {
		t.Fatal(err)
	}
	cfgSim := c.Config()
	usable := cfgSim.DataMemoryPages * 95 / 100 // 3040 of the default 3200 pages
	// DataMemory: node 1 at 85 % of usable (over the 80 % mark), node 3
	// at 50 %, node 4 at 95 % (over 90 %). Redo: node 1's part 2 at 75 %,
	// node 3's part 1 at 87.5 % (over 80 %).
	for id, pages := range map[int]int{1: usable * 85 / 100, 3: usable / 2, 4: usable * 95 / 100} {
		if err := c.SetDataMemoryUsed(id, pages); err != nil {
			t.Fatal(err)
		}
	}
	if err := c.SetRedoUsed(1, 2, cfgSim.RedoPartBytes*3/4); err != nil {
		t.Fatal(err)
	}
	if err := c.SetRedoUsed(3, 1, cfgSim.RedoPartBytes*7/8); err != nil {
		t.Fatal(err)
	}
	mgm, err := ndbsim.Serve(c, "127.0.0.1:0", ndbsim.ServerConfig{})
	if err != nil {
		t.Fatal(err)
	}
	defer mgm.Close()
	if err := ndbsim.InstallNdbinfo(ctx, db.DB); err != nil {
		t.Fatal(err)
	}
	syncCtx, stopSync := context.WithCancel(ctx)
	var syncWG sync.WaitGroup
	syncWG.Add(1)
	go func() {
		defer syncWG.Done()
		ndbsim.NewSyncer(db.DB, c).Run(syncCtx, 200*time.Millisecond, func(err error) { t.Logf("ndbinfo sync: %v", err) })
	}()
	defer func() { stopSync(); syncWG.Wait() }()
	for _, q := range []string{
		"CREATE USER nines@localhost IDENTIFIED BY 'ndb-console-test'",
		"GRANT SELECT, PROCESS ON *.* TO nines@localhost",
		"GRANT ALL ON nines.* TO nines@localhost",
	} {
		if _, err := db.DB.ExecContext(ctx, q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	sqlAddr := forwardSocket(t, db.Server.Socket)

	const user, password = "ops", "console-ndb-password-1"
	hash, err := bcrypt.GenerateFromPassword([]byte(password), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	t.Setenv("NINES_NDB_TEST_TOKEN", ndbTestToken)
	t.Setenv("NINES_NDB_TEST_PASSWORD", "ndb-console-test")
	cfg, err := config.Parse(filepath.Join(dir, "nines.yaml"), []byte(fmt.Sprintf(`data_dir: data
api: {tokens: [{name: t, role: admin, token_env: NINES_NDB_TEST_TOKEN}]}
clusters:
  - name: tel
    kind: ndb
    nodes: [{address: %q}]
    credentials: {user: nines, password_env: NINES_NDB_TEST_PASSWORD}
    probe: {engine: InnoDB}  # the stand-in SQL node, a MariaDB, has no NDB engine
    ndb:
      management: [{address: %q}]
  - name: gal
    kind: galera
    nodes: [{address: "127.0.0.1:1"}]  # nothing listens: one node, down
    credentials: {user: nines, password_env: NINES_NDB_TEST_PASSWORD}
console:
  users:
    - {name: %s, role: operator, password_hash: %q}
`, sqlAddr, mgm.Addr(), user, hash)))
	if err != nil {
		t.Fatal(err)
	}
	runCtx, stop := context.WithCancel(context.Background())
	ready := make(chan string, 1)
	done := make(chan error, 1)
	logw := &lockedWriter{w: os.Stderr}
	go func() {
		done <- Run(runCtx, cfg, Options{Listen: "127.0.0.1:0", Logger: slog.New(slog.NewTextHandler(logw, &slog.HandlerOptions{Level: slog.LevelError})),
			Ready: func(a string) { ready <- a }})
	}()
	defer func() {
		stop()
		if err := <-done; err != nil {
			t.Errorf("appliance: %v", err)
		}
	}()
	var base string
	select {
	case a := <-ready:
		base = "http://" + a
	case err := <-done:
		t.Fatalf("appliance did not start: %v", err)
	case <-time.After(time.Minute):
		t.Fatal("appliance did not start within a minute")
	}

	b := testbrowser.New(t)
	b.Do("open the console", chromedp.Navigate(base+"/"))
	b.Login(user, password)
	b.Do("the NDB cluster page", chromedp.Navigate(base+"/#/cluster/tel"), chromedp.WaitVisible(chromedp.ID("topology")))

	groups := func() string {
		return testbrowser.Eval[string](b, `[...document.querySelectorAll('#topology [data-group]')].map(g => g.dataset.group + ':' + g.dataset.health).join(' ')`)
	}
	nodes := func() string {
		return testbrowser.Eval[string](b, `[...document.querySelectorAll('#topology [data-group] tr[data-ndb-node]')].map(r => r.dataset.ndbNode + ':' + r.dataset.state + ':' + r.dataset.up).join(' ')`)
	}
	// bars is each data node's bar of kind as node:percent:level.
	bars := func(kind string) string {
		return testbrowser.Eval[string](b, fmt.Sprintf(`[...document.querySelectorAll('#topology [data-group] tr[data-ndb-node]')].map(r => {
			const x = r.querySelector('[data-bar=%q]'); return r.dataset.ndbNode + ':' + (x ? x.dataset.pct + ':' + (x.dataset.level || '') : 'none'); }).join(' ')`, kind))
	}
	const healthyNodes = "1:STARTED:yes 2:STARTED:yes 3:STARTED:yes 4:STARTED:yes"
	const wantMemory = "1:85.0:warn 2:0.0:ok 3:50.0:ok 4:95.0:bad"
	const wantRedo = "1:75.0:ok 2:0.0:ok 3:87.5:warn 4:0.0:ok"
	waitFor(t, 30*time.Second, "two ok node groups of STARTED data nodes with their bars", func() bool {
		return groups() == "0:ok 1:ok" && nodes() == healthyNodes && bars("memory") == wantMemory && bars("redo") == wantRedo
	})
	if g, n, m, r := groups(), nodes(), bars("memory"), bars("redo"); g != "0:ok 1:ok" || n != healthyNodes || m != wantMemory || r != wantRedo {
		t.Fatalf("healthy cluster page:\ngroups %s\nnodes  %s\nmemory %s (want %s)\nredo   %s (want %s)", g, n, m, wantMemory, r, wantRedo)
	}
	// What the operator reads: the percentage as text, the DataMemory
	// bar's marks at 80 and 90 %, the redo bar's at 80 %, the fill as
	// wide as the percentage.
	if got := testbrowser.Eval[string](b, `document.querySelector('tr[data-ndb-node="1"] [data-bar=memory] .pct').textContent`); got != "85.0 %" {
		t.Errorf("node 1 DataMemory reads %q, want 85.0 %%", got)
	}
	if got := testbrowser.Eval[string](b, `[...document.querySelectorAll('tr[data-ndb-node="1"] [data-bar=memory] .mark')].map(m => m.style.left).join(' ')`); got != "80% 90%" {
		t.Errorf("DataMemory bar marks at %q, want 80%% 90%%", got)
	}
	if got := testbrowser.Eval[string](b, `[...document.querySelectorAll('tr[data-ndb-node="3"] [data-bar=redo] .mark')].map(m => m.style.left).join(' ')`); got != "80%" {
		t.Errorf("redo bar marks at %q, want 80%%", got)
	}
	if got := testbrowser.Eval[string](b, `document.querySelector('tr[data-ndb-node="4"] [data-bar=memory] .fill').style.width`); got != "95%" {
		t.Errorf("node 4 DataMemory fill %q wide, want 95%%", got)
	}
	if got := testbrowser.Eval[string](b, `document.querySelector('tr[data-ndb-node="3"] [data-bar=redo]').textContent`); !containsAll(got, "87.5 %", "part 1, the fullest of 4") {
		t.Errorf("node 3 redo bar reads %q, want 87.5 %% in part 1, the fullest of 4", got)
	}
	// The management server is the arbitrator; the SQL node is listed.
	waitFor(t, 10*time.Second, "the management server as arbitrator and the SQL node", func() bool {
		return testbrowser.Eval[bool](b, `!!document.querySelector('#ndb-mgm tr[data-ndb-node="50"][data-up=yes] [data-arbitrator]') &&
			document.querySelectorAll('#ndb-sql tr[data-ndb-node]').length === 1`)
	})
	t.Logf("SQL node row: %s", testbrowser.Eval[string](b, `document.querySelector('#ndb-sql tr[data-ndb-node]').textContent`))
	// The NDB charts replace the Galera ones, and the start-job form
	// offers the NDB runbooks on data node ids.
	waitFor(t, 20*time.Second, "the NDB charts", func() bool {
		return testbrowser.Eval[string](b, `[...document.querySelectorAll('#charts .chart .title')].map(x => x.textContent).join('|')`) ==
			"Data nodes serving|DataMemory used (% of usable)|Redo log, fullest part (%)|Probe latency"
	})
	if got := testbrowser.Eval[string](b, `[...document.querySelectorAll('#start-job select[name=kind] option')].map(o => o.value).join(' ') + ' / ' +
		[...document.querySelectorAll('#start-job select[name=node] option')].map(o => o.value).filter(v => v).join(' ')`); got != "ndb-restart ndb-system-restart ndb-rolling-restart / 1 2 3 4" {
		t.Errorf("start-job form offers %q, want the NDB runbooks on data nodes 1-4", got)
	}
	// The DataMemory chart draws a line per data node from the store.
	waitFor(t, 30*time.Second, "the DataMemory chart's four lines", func() bool {
		return testbrowser.Eval[int](b, `(() => { const c = [...document.querySelectorAll('#charts .chart')].find(x => x.querySelector('.title').textContent.startsWith('DataMemory'));
			return c ? [...c.querySelectorAll('path')].filter(p => p.getAttribute('d')).length : 0; })()`) == 4
	})
	b.Screenshot("ndb-healthy")

	// Data node 2 stops: shown down with the management server's word,
	// without bars, its group degraded; the other group stays ok.
	stopped := time.Now()
	if _, err := c.Stop([]int{2}, ndbsim.StopOptions{}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "node 2 down and node group 0 degraded", func() bool {
		return groups() == "0:degraded 1:ok" && nodes() == "1:STARTED:yes 2:NO_CONTACT:no 3:STARTED:yes 4:STARTED:yes"
	})
	t.Logf("measured: the page showed node 2 down and its group degraded %s after the stop", time.Since(stopped).Round(time.Millisecond))
	waitFor(t, 10*time.Second, "node 2 without bars", func() bool {
		return bars("memory") == "1:85.0:warn 2:: 3:50.0:ok 4:95.0:bad"
	})
	if got := testbrowser.Eval[string](b, `document.querySelector('[data-group="0"] h3').textContent`); !containsAll(got, "degraded", "1 of 2 serving") {
		t.Errorf("node group 0 heading %q, want degraded, 1 of 2 serving", got)
	}
	if got := testbrowser.Eval[string](b, `getComputedStyle(document.querySelector('tr[data-ndb-node="2"] .state')).color`); got != "rgb(198, 40, 40)" {
		t.Errorf("node 2's state colour %s, want the page's bad red", got)
	}
	b.Screenshot("ndb-node-2-down")

	// It starts again: STARTING with its start phase, then STARTED.
	if err := c.SetStatus(2, ndbmsg.StatusStarting, 4); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "node 2 STARTING in phase 4", func() bool {
		return testbrowser.Eval[string](b, `(() => { const r = document.querySelector('tr[data-ndb-node="2"]'); return r ? r.dataset.state + r.querySelector('td:nth-child(2)').textContent : ''; })()`) == "STARTINGSTARTING phase 4"
	})
	b.Screenshot("ndb-node-2-starting")
	if err := c.SetStatus(2, ndbmsg.StatusStarted, 0); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "both node groups ok again", func() bool { return groups() == "0:ok 1:ok" && nodes() == healthyNodes })

	// The Galera cluster's page still shows its node table.
	b.Do("the Galera cluster page", chromedp.Navigate(base+"/#/cluster/gal"))
	waitFor(t, 15*time.Second, "the Galera node table with its node down", func() bool {
		return testbrowser.Eval[string](b, `[...document.querySelectorAll('#topology tr[data-node]')].map(r => r.dataset.node + ':' + r.dataset.state).join(' ')`) == "127.0.0.1:1:down" &&
			testbrowser.Eval[bool](b, `!document.getElementById('ndb')`)
	})
	b.Screenshot("galera-page")
}

func containsAll(s string, parts ...string) bool {
	for _, p := range parts {
		if !strings.Contains(s, p) {
			return false
		}
	}
	return true
}
