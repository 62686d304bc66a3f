//go:build cluster

package e2e

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/cookiejar"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"golang.org/x/crypto/bcrypt"

	"github.com/nines-project/nines/internal/testbrowser"
	"github.com/nines-project/nines/sandbox"
)

// browser is one headless Chromium tab on the console at base
// (testbrowser), with the lower-case helpers the e2e tests call.
type browser struct {
	*testbrowser.Browser
	t    *testing.T
	base string
}

func newBrowser(t *testing.T, base string) *browser {
	t.Helper()
	return &browser{Browser: testbrowser.New(t), t: t, base: base}
}

func (b *browser) do(what string, steps ...chromedp.Action[chromedp.Void]) {
	b.t.Helper()
	b.Do(what, steps...)
}

// eval evaluates a JavaScript expression (awaiting a promise) in the page.
func eval[T any](b *browser, expr string) T {
	b.t.Helper()
	return testbrowser.Eval[T](b.Browser, expr)
}

// screenshot saves the whole page as a numbered PNG among the artefacts.
func (b *browser) screenshot(name string) {
	b.t.Helper()
	b.Screenshot(name)
}

// login fills in the login form as a user would.
func (b *browser) login(user, password string) {
	b.t.Helper()
	b.Login(user, password)
}

// nodeStates reads the overview's node rows: instance → state word.
func (b *browser) nodeStates() map[string]string {
	b.t.Helper()
	rows := eval[[][2]string](b, `[...document.querySelectorAll('#overview tr[data-node]')].map(r => [r.dataset.node, r.dataset.state])`)
	out := map[string]string{}
	for _, r := range rows {
		out[r[0]] = r[1]
	}
	return out
}

// loadedAt is set once when the page loads: unchanged means no reload.
func (b *browser) loadedAt() float64 {
	b.t.Helper()
	return eval[float64](b, `window.ninesLoadedAt`)
}

// consoleSandbox is freshGalera with the appliance's address written into
// the sandbox's nines.yaml and alertmanager.yml, so the sandbox's own
// config (console admin, remediation in auto mode, Alertmanager calling
// the remediator) runs as `nines demo` runs it.
func consoleSandbox(t *testing.T, name, listen string) *sandbox.Sandbox {
	t.Helper()
	return startSandbox(t, sandbox.Options{ClusterName: name, Listen: listen})
}

// addViewer adds a viewer to the sandbox's console users.
func addViewer(t *testing.T, sb *sandbox.Sandbox, name, password string) {
	t.Helper()
	addConsoleUser(t, sb, name, "viewer", password)
}

// consoleUserYAML is a console: section of nines.yaml with one user, for
// appliances whose config a test writes itself.
func consoleUserYAML(t *testing.T, name, role, password string) string {
	t.Helper()
	hash, err := bcrypt.GenerateFromPassword([]byte(password), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	return fmt.Sprintf("console:\n  users:\n    - {name: %s, role: %s, password_hash: %q}\n", name, role, hash)
}

// addConsoleUser adds a user with role to the sandbox's console users
// (the last section of its nines.yaml).
func addConsoleUser(t *testing.T, sb *sandbox.Sandbox, name, role, password string) {
	t.Helper()
	hash, err := bcrypt.GenerateFromPassword([]byte(password), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := os.ReadFile(sb.ConfigPath())
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimRight(string(cfg), "\n"), "\n")
	if !strings.Contains(string(cfg), "console:\n  users:\n") || !strings.HasPrefix(lines[len(lines)-1], "    - {name: ") {
		t.Fatalf("sandbox nines.yaml has no console users:\n%s", cfg)
	}
	cfg = fmt.Appendf(cfg, "    - {name: %s, role: %s, password_hash: %q}\n", name, role, hash)
	if err := os.WriteFile(sb.ConfigPath(), cfg, 0o600); err != nil {
		t.Fatal(err)
	}
}

// TestConsoleFollowsKillAndRejoin is the console's acceptance drill: log in
// through the form, see three Synced nodes, kill -9 one, and watch the
// page show it down and then rejoined by nines, without a reload. A viewer
// then sees no way to start a job, and the API refuses them one.
func TestConsoleFollowsKillAndRejoin(t *testing.T) {
	listen := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	sb := consoleSandbox(t, "console", listen)
	addViewer(t, sb, "vic", "viewer-password-1")
	pw, err := os.ReadFile(sb.ConsolePasswordPath())
	if err != nil {
		t.Fatalf("sandbox console password: %v", err)
	}
	a := startApplianceOn(t, ninesBin, listen, sb.ConfigPath(), sb.TokenPath())
	waitFor(t, a.started, 30*time.Second, "appliance ready", func() bool {
		code, err := a.get("/readyz", nil, nil)
		return err == nil && code == 200
	})

	b := newBrowser(t, a.base)
	b.do("open the console", chromedp.Navigate(a.base+"/"))
	b.screenshot("login")
	b.login(sandbox.ConsoleUser, strings.TrimSpace(string(pw)))
	b.do("overview", chromedp.WaitVisible(chromedp.ID("overview")))
	loaded := b.loadedAt()

	synced := func() int {
		n := 0
		for _, s := range b.nodeStates() {
			if s == "Synced" {
				n++
			}
		}
		return n
	}
	waitFor(t, time.Now(), 30*time.Second, "the overview to show three Synced nodes", func() bool { return synced() == 3 })
	if got := eval[string](b, `document.querySelector('#overview [data-cluster="console"]').dataset.clusterState`); got != "healthy" {
		t.Errorf("cluster state word %q, want healthy", got)
	}
	b.screenshot("overview-three-synced")

	// The rule that sends nines to rejoin a node needs nines_cluster_info,
	// and a few seconds of history keep the drill from racing the
	// appliance's start (as the remediation drills do).
	waitFor(t, a.started, 60*time.Second, "nines_cluster_info and 4 s of scrapes", func() bool {
		return len(a.query(`nines_cluster_info{cluster="console"}`)) == 1 &&
			len(a.query(`count_over_time(mysql_up{cluster="console"}[5s]) >= 4`)) == 3
	})
	victim := sb.Nodes()[1]
	killed := kill(t, sb, victim.Name)
	down := waitFor(t, killed, 15*time.Second, "the overview to show "+victim.Address()+" not Synced", func() bool {
		s, ok := b.nodeStates()[victim.Address()]
		return ok && s != "Synced"
	})
	state := b.nodeStates()[victim.Address()]
	b.screenshot("overview-node-down")
	t.Logf("measured: console showed %s as %q %s after kill -9", victim.Address(), state, down.Round(time.Millisecond))
	if state != "down" && state != "non-Primary" && state != "Joining" {
		t.Errorf("killed node shown as %q, want down", state)
	}

	rejoined := waitFor(t, killed, 40*time.Second, "the overview to show three Synced nodes again", func() bool { return synced() == 3 })
	b.screenshot("overview-rejoined")
	t.Logf("measured: console showed three Synced nodes again %s after kill -9", rejoined.Round(time.Millisecond))
	if got := b.loadedAt(); got != loaded {
		t.Fatalf("the page was reloaded (load marker %v, was %v): it must update in place", got, loaded)
	}
	if n := eval[int](b, `window.ninesRefreshes`); n < int(rejoined.Seconds()) {
		t.Errorf("%d refreshes in %s: want about one a second", n, rejoined)
	}

	// The SLO budget left, once the SLO rules (every 10 s) have run: at
	// most the 30-day budget of 99.999 %, 25.92 s.
	budgetJS := `document.querySelector('#overview [data-cluster="console"] [data-budget-seconds]').dataset.budgetSeconds`
	waitFor(t, time.Now(), 40*time.Second, "the overview to show the SLO budget left", func() bool { return eval[string](b, budgetJS) != "" })
	var budget float64
	if _, err := fmt.Sscan(eval[string](b, budgetJS), &budget); err != nil || budget < 0 || budget > 25.92 {
		t.Errorf("SLO budget left %q (%v): want seconds between 0 and 25.92", eval[string](b, budgetJS), err)
	}
	t.Logf("measured: SLO budget left shown after the drill: %.2f s", budget)
	b.screenshot("overview-budget")

	// The cluster page lists the kill among its state changes, the
	// rejoin job nines ran, and charts drawn from the store.
	b.do("cluster page", chromedp.Navigate(a.base+"/#/cluster/console"), chromedp.WaitVisible(chromedp.ID("topology")))
	waitFor(t, time.Now(), 20*time.Second, "state changes to list the killed node going down", func() bool {
		return eval[bool](b, fmt.Sprintf(`[...document.querySelectorAll('#changes tr')].some(r => r.textContent.includes(%q) && r.textContent.includes('down'))`, victim.Address()))
	})
	waitFor(t, time.Now(), 20*time.Second, "the job list to show the rejoin job", func() bool {
		return eval[bool](b, `[...document.querySelectorAll('#jobs details')].some(d => d.textContent.includes('galera-node-rejoin'))`)
	})
	waitFor(t, time.Now(), 10*time.Second, "five charts with lines", func() bool {
		return eval[int](b, `document.querySelectorAll('#charts .chart path').length`) >= 5
	})
	if !eval[bool](b, `document.getElementById('start-job') !== null`) {
		t.Fatalf("the admin sees no start-job form on the cluster page")
	}
	// A job started from the page is the user's in the job log: a dry run
	// of a rejoin of the node that is back (the sandbox has no backups).
	b.do("start a dry-run rejoin",
		chromedp.SetValue(chromedp.CSS(`#start-job select[name=kind]`), "rejoin"),
		chromedp.SetValue(chromedp.CSS(`#start-job select[name=node]`), victim.Address()),
		chromedp.Click(chromedp.CSS(`#start-job input[name=dry_run]`)),
		chromedp.Click(chromedp.CSS(`#start-job button`)))
	waitFor(t, time.Now(), 10*time.Second, "the page to report the job's start", func() bool {
		return eval[string](b, `document.getElementById('status').textContent`) != ""
	})
	if st := eval[string](b, `document.getElementById('status').textContent`); !strings.HasSuffix(st, ": done") {
		t.Fatalf("starting a dry-run rejoin from the page: %s", st)
	}
	waitFor(t, time.Now(), 20*time.Second, "the dry-run rejoin in the job list, by admin", func() bool {
		return eval[bool](b, `[...document.querySelectorAll('#jobs details')].some(d => d.textContent.includes('galera-node-rejoin') && d.textContent.includes('(dry run)') && d.textContent.includes('manual by admin'))`)
	})
	eval[bool](b, `[...document.querySelectorAll('#jobs details')].find(d => d.textContent.includes('galera-node-rejoin')).open = true`)
	waitFor(t, time.Now(), 5*time.Second, "the rejoin job's steps", func() bool {
		return eval[int](b, `document.querySelectorAll('#jobs details[open] tbody tr').length`) > 0
	})
	b.screenshot("cluster-page")

	// An operator's silence, made and expired through the page (the
	// embedded Alertmanager's API behind the console's CSRF check).
	b.do("create a silence",
		chromedp.Navigate(a.base+"/#/alerts"),
		chromedp.WaitVisible(chromedp.ID("new-silence")),
		chromedp.SendKeys(chromedp.CSS(`#new-silence input[name=matchers]`), `alertname="ConsoleDrill", cluster="console"`),
		chromedp.SendKeys(chromedp.CSS(`#new-silence input[name=comment]`), "e2e drill"),
		chromedp.Click(chromedp.CSS(`#new-silence button`)))
	silenceRow := `[...document.querySelectorAll('#silences tr[data-silence]')].find(r => r.textContent.includes('ConsoleDrill'))`
	waitFor(t, time.Now(), 10*time.Second, "the new silence listed as active, by admin", func() bool {
		return eval[bool](b, `(() => { const r = `+silenceRow+`; return !!r && r.textContent.includes('active') && r.textContent.includes('admin'); })()`)
	})
	b.screenshot("alerts-and-silences")
	eval[bool](b, `(`+silenceRow+`).querySelector('button').click() === undefined`)
	waitFor(t, time.Now(), 10*time.Second, "the silence expired", func() bool {
		return eval[bool](b, `(() => { const r = `+silenceRow+`; return !!r && r.textContent.includes('expired'); })()`)
	})

	b.do("backups page", chromedp.Navigate(a.base+"/#/backups"), chromedp.WaitVisible(chromedp.CSS(`#backup-actions button`)))
	waitFor(t, time.Now(), 20*time.Second, "the backups list", func() bool {
		return eval[bool](b, `document.getElementById('backups').textContent.length > 0`)
	})
	b.screenshot("backups")
	b.do("reports page", chromedp.Navigate(a.base+"/#/reports"), chromedp.WaitVisible(chromedp.ID("report")))
	waitFor(t, time.Now(), 10*time.Second, "the report link", func() bool {
		return strings.Contains(eval[string](b, `document.getElementById('report-link').href`), "/api/v1/reports/uptime?cluster=console&")
	})
	if code := eval[int](b, `fetch(document.getElementById('report-link').href).then(r => r.status)`); code != 200 {
		t.Errorf("the report link answers %d, want 200", code)
	}
	b.screenshot("reports")

	// Log out; the viewer logs in on the same page.
	b.do("log out", chromedp.Click(chromedp.ID("logout")), chromedp.WaitVisible(chromedp.ID("login-user")))
	if code := eval[int](b, `fetch('/api/v1/jobs').then(r => r.status)`); code != 401 {
		t.Errorf("API after logout: %d, want 401", code)
	}
	b.login("vic", "viewer-password-1")
	if role := eval[string](b, `document.getElementById('who-role').textContent`); role != "viewer" {
		t.Errorf("role shown %q, want viewer", role)
	}
	b.do("the viewer's cluster page", chromedp.Navigate(a.base+"/#/cluster/console"))
	waitFor(t, time.Now(), 10*time.Second, "the viewer's cluster page", func() bool {
		return eval[int](b, `document.querySelectorAll('#topology tr[data-node]').length`) == 3
	})
	if eval[bool](b, `document.getElementById('start-job') !== null || document.querySelectorAll('#actions button').length > 0`) {
		t.Errorf("a viewer sees a start-job form or button")
	}
	waitFor(t, time.Now(), 10*time.Second, "the viewer's job list and charts", func() bool {
		return eval[bool](b, `document.querySelectorAll('#jobs details').length > 0 && document.querySelectorAll('#charts .chart').length === 5`)
	})
	b.screenshot("viewer-cluster-page")
	code := eval[int](b, `fetch('/console/session').then(r => r.json()).then(s => fetch('/api/v1/jobs', {method: 'POST',
		headers: {'Content-Type': 'application/json', 'X-Nines-CSRF': s.data.csrf}, body: JSON.stringify({cluster: 'console', kind: 'backup'})})).then(r => r.status)`)
	if code != 403 {
		t.Errorf("a viewer's POST /api/v1/jobs: %d, want 403", code)
	}

	// Sessions live in the appliance's memory: after a restart the open
	// page asks for a new login by itself, and the login works again.
	marker := b.loadedAt()
	a.stop()
	a = startApplianceOn(t, ninesBin, listen, sb.ConfigPath(), sb.TokenPath())
	waitFor(t, a.started, 30*time.Second, "the restarted appliance to answer", func() bool {
		code, err := a.get("/healthz", nil, nil)
		return err == nil && code == 200
	})
	ended := waitFor(t, a.started, 15*time.Second, "the open page to ask for a new login", func() bool {
		return eval[bool](b, `(() => { const f = document.getElementById('login'); return !!f && !f.hidden && document.getElementById('login-error').textContent.includes('session ended'); })()`)
	})
	t.Logf("measured: the page asked for a new login %s after the appliance restarted", ended.Round(time.Millisecond))
	b.screenshot("session-ended-by-restart")
	if got := b.loadedAt(); got != marker {
		t.Errorf("the page was reloaded across the restart (load marker %v, was %v)", got, marker)
	}
	// The form keeps the last user name for a quick login; the admin
	// replaces it.
	eval[string](b, `document.getElementById('login-user').value = ''`)
	b.login(sandbox.ConsoleUser, strings.TrimSpace(string(pw)))
	eval[string](b, `location.hash = '#/'`)
	waitFor(t, time.Now(), 20*time.Second, "the overview again after logging in anew", func() bool { return synced() == 3 })
}

// demoConsoleLogin: `nines demo` prints the console's URL, user and
// password file, and that user can log in and read the API. Part of
// TestDemo: a demo of its own costs half a minute of CI.
func demoConsoleLogin(t *testing.T, listen, dir string, banner *safeBuffer) {
	t.Helper()
	consoleRe := regexp.MustCompile(`Console:\s+(\S+)\s+\(user (\S+), password in (\S+)\)`)
	var m []string
	waitFor(t, time.Now(), 10*time.Second, "nines demo to print the console line", func() bool {
		m = consoleRe.FindStringSubmatch(banner.String())
		return m != nil
	})
	if m[1] != "http://"+listen+"/" || m[2] != sandbox.ConsoleUser || m[3] != filepath.Join(dir, "console-password") {
		t.Errorf("console line %q: want URL http://%s/, user %s, file %s", m[0], listen, sandbox.ConsoleUser, filepath.Join(dir, "console-password"))
	}
	pw, err := os.ReadFile(m[3])
	if err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(m[3]); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("console password file mode: %v %v, want 0600", fi.Mode(), err)
	}
	cfg, err := os.ReadFile(filepath.Join(dir, "nines.yaml"))
	if err != nil || strings.Contains(string(cfg), strings.TrimSpace(string(pw))) {
		t.Errorf("nines.yaml holds the console password in clear (or cannot be read: %v)", err)
	}

	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	client := &http.Client{Jar: jar, Timeout: 10 * time.Second}
	body, _ := json.Marshal(map[string]string{"user": m[2], "password": strings.TrimSpace(string(pw))})
	resp, err := client.Post(m[1]+"console/login", "application/json", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("login with the demo's console user: %d", resp.StatusCode)
	}
	resp, err = client.Get(m[1] + "api/v1/clusters/demo")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var cl struct{ Data struct{ Nodes []any } }
	if err := json.NewDecoder(resp.Body).Decode(&cl); err != nil || resp.StatusCode != http.StatusOK || len(cl.Data.Nodes) != 3 {
		t.Errorf("GET /api/v1/clusters/demo with the console session: %d %v %+v", resp.StatusCode, err, cl)
	}
}
