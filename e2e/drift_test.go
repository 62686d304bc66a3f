//go:build cluster

package e2e

import (
	"fmt"
	"github.com/chromedp/chromedp"
	"github.com/nines-project/nines/sandbox"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// driftFor is ConfigDrift's wait in TestConfigDrift (alert_for).
const driftFor = 5 * time.Second

// TestConfigDrift (issue 16): the shared sandbox's nodes agree, so no
// drift is reported; sql_mode changed on one node with SET GLOBAL (which
// Galera does not replicate) is reported with each node's value and its
// ConfigDrift alert goes pending, then fires at a webhook receiver after
// its for: (shortened with alert_for); set back, the drift clears and
// the alert resolves.
func TestConfigDrift(t *testing.T) {
	sb := sharedGalera(t)
	addr := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	cfg := clusterConfig(sb, addr, "drift", false)
	// Variables every 2 s instead of every minute, so the test need not
	// wait a minute for each read.
	cfg.WriteString("scrape: {variables_interval: 2s}\n")
	cfg.WriteString(consoleUserYAML(t, "vera", "viewer", "viewer-password-1"))
	// ConfigDrift waits 10 minutes in its pack; alert_for shortens it here
	// as a site would, so the test sees the shipped rule reach a receiver.
	hk := newHook(t)
	dir := t.TempDir()
	am := fmt.Sprintf("route: {receiver: test, group_by: ['...'], group_wait: 1s, group_interval: 1s, repeat_interval: 1h}\nreceivers:\n  - name: test\n    webhook_configs: [{url: %s, send_resolved: true}]\n", hk.url)
	if err := os.WriteFile(filepath.Join(dir, "alertmanager.yml"), []byte(am), 0o600); err != nil {
		t.Fatal(err)
	}
	fmt.Fprintf(cfg, "alertmanager: {embedded: %s}\nalert_for: {ConfigDrift: %s}\n", filepath.Join(dir, "alertmanager.yml"), driftFor)
	path := filepath.Join(dir, "nines.yaml")
	if err := os.WriteFile(path, []byte(cfg.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	a := startApplianceOn(t, ninesBin, addr, path, sb.TokenPath())
	type driftAnswer struct {
		Data struct {
			Drift []struct {
				Variable string            `json:"variable"`
				Values   map[string]string `json:"values"`
			} `json:"drift"`
		} `json:"data"`
	}
	drift := func() map[string]map[string]string {
		var ans driftAnswer
		if code, err := a.get("/api/v1/clusters/"+sb.ClusterName(), nil, &ans); err != nil || code != http.StatusOK {
			return nil
		}
		out := map[string]map[string]string{}
		for _, d := range ans.Data.Drift {
			out[d.Variable] = d.Values
		}
		return out
	}
	waitFor(t, a.started, 30*time.Second, "every node read", func() bool {
		return len(a.query(`nines_config_drift_variables{cluster="`+sb.ClusterName()+`"}`)) == 1
	})
	if d := drift(); len(d) != 0 {
		t.Fatalf("drift reported on the sandbox's nodes, which agree: %v", d)
	}

	victim := sb.Nodes()[1]
	db, err := sb.DB(victim.Name)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var old string
	if err := db.QueryRow("SELECT @@GLOBAL.sql_mode").Scan(&old); err != nil {
		t.Fatal(err)
	}
	restored := false
	restore := func() {
		if restored {
			return
		}
		restored = true
		if _, err := db.Exec("SET GLOBAL sql_mode = ?", old); err != nil {
			t.Errorf("restore sql_mode on %s: %v", victim.Name, err)
		}
	}
	changed := time.Now()
	if _, err := db.Exec("SET GLOBAL sql_mode = CONCAT(@@GLOBAL.sql_mode, ',ANSI_QUOTES')"); err != nil {
		t.Fatal(err)
	}
	defer restore() // the shared sandbox must be left as found
	waitFor(t, changed, 10*time.Second, "sql_mode reported as drift", func() bool {
		v := drift()["sql_mode"]
		return v != nil && v[victim.Address()] != v[sb.Nodes()[0].Address()]
	})
	t.Logf("measured: drift reported %s after SET GLOBAL (variables read every 2 s): %v", time.Since(changed).Round(time.Millisecond), drift()["sql_mode"])
	if d := drift(); len(d) != 1 {
		t.Errorf("drift %v, want sql_mode only", d)
	}
	// The cluster page shows it, one column per node.
	b := newBrowser(t, a.base)
	b.do("open the cluster page", chromedp.Navigate(a.base+"/#/cluster/"+sb.ClusterName()))
	b.login("vera", "viewer-password-1")
	const cellJS = `(() => { const r = document.querySelector('#drift tr[data-drift-variable=sql_mode]'); return r ? r.textContent : ''; })()`
	waitFor(t, time.Now(), 15*time.Second, "the cluster page to show sql_mode's drift", func() bool {
		return strings.Contains(eval[string](b, cellJS), "ANSI_QUOTES")
	})
	b.screenshot("config-drift")

	// The rule engine's own view (GET /api/v1/alerts), as the console
	// shows it.
	driftAlert := func() string {
		var ans struct {
			Data struct {
				Alerts []struct {
					Labels map[string]string `json:"labels"`
					State  string            `json:"state"`
				} `json:"alerts"`
			} `json:"data"`
		}
		if code, err := a.get("/api/v1/alerts", nil, &ans); err != nil || code != http.StatusOK {
			return "unreadable"
		}
		for _, al := range ans.Data.Alerts {
			if al.Labels["alertname"] == "ConfigDrift" && al.Labels["variable"] == "sql_mode" {
				return al.State
			}
		}
		return ""
	}
	waitFor(t, changed, 15*time.Second, "ConfigDrift pending for sql_mode", func() bool { return driftAlert() == "pending" })
	sqlMode := func(l map[string]string) bool {
		return l["alertname"] == "ConfigDrift" && l["variable"] == "sql_mode" && l["cluster"] == sb.ClusterName()
	}
	// Firing once the drift has lasted driftFor, reaching the receiver
	// through the embedded Alertmanager (group_wait 1 s).
	waitFor(t, changed, driftFor+15*time.Second, "ConfigDrift firing at the webhook", func() bool {
		_, ok := hk.first("firing", sqlMode)
		return ok
	})
	fired, _ := hk.first("firing", sqlMode)
	t.Logf("measured: ConfigDrift at the webhook %s after SET GLOBAL (alert_for %s)", fired.Sub(changed).Round(time.Millisecond), driftFor)
	if fired.Sub(changed) < driftFor {
		t.Errorf("ConfigDrift notified %s after the change, before its for: of %s", fired.Sub(changed), driftFor)
	}
	if st := driftAlert(); st != "firing" {
		t.Errorf("the rule engine shows ConfigDrift %q, want firing", st)
	}

	restore()
	back := time.Now()
	waitFor(t, back, 10*time.Second, "the drift cleared", func() bool {
		s := a.query(`nines_config_drift_variables{cluster="` + sb.ClusterName() + `"}`)
		return len(s) == 1 && s[0].Value == 0 && len(drift()) == 0
	})
	waitFor(t, back, 10*time.Second, "ConfigDrift gone", func() bool { return driftAlert() == "" })
	waitFor(t, back, 15*time.Second, "ConfigDrift resolved at the webhook", func() bool {
		_, ok := hk.first("resolved", sqlMode)
		return ok
	})

	t.Run("advice", func(t *testing.T) { adviceOnSandbox(t, a, sb) })
}

// adviceOnSandbox: GET /api/v1/clusters/NAME/advice on the shared sandbox
// gives, for each node, its IST window (its 32 MiB gcache against the
// probe's trickle of writes and the 10-minute restart floor) and its
// eviction timeouts (the sandbox's evs.suspect_timeout of 1.5 s: already
// short).
func adviceOnSandbox(t *testing.T, a *appliance, sb *sandbox.Sandbox) {
	type item struct {
		Topic, Node, Measured, Setting, Suggestion string
		Warning                                    bool
		Values                                     map[string]float64
	}
	var ans struct {
		Data struct {
			RestartSeconds float64 `json:"restart_seconds"`
			Advice         []item
			Errors         []string
		}
	}
	waitFor(t, time.Now(), 20*time.Second, "advice for every node", func() bool {
		code, err := a.get("/api/v1/clusters/"+sb.ClusterName()+"/advice", nil, &ans)
		return err == nil && code == http.StatusOK && len(ans.Data.Advice) == 2*len(sb.Nodes())
	})
	if ans.Data.RestartSeconds != 600 || len(ans.Data.Errors) != 0 {
		t.Errorf("restart %v s (want the 600 s floor: no restart measured by this appliance), errors %v", ans.Data.RestartSeconds, ans.Data.Errors)
	}
	for _, it := range ans.Data.Advice {
		switch it.Topic {
		case "ist_window":
			if it.Values["gcache_bytes"] != 32<<20 || it.Values["fill_bytes_per_second"] <= 0 || it.Values["window_seconds"] <= 600 || it.Warning {
				t.Errorf("%s IST window: %+v; want 32 MiB filled by the probe's writes, far over 10 minutes", it.Node, it)
			}
		case "eviction":
			if it.Values["suspect_timeout_seconds"] != 1.5 || it.Suggestion != "already short; leave it" {
				t.Errorf("%s eviction: %+v; want the sandbox's 1.5 s, already short", it.Node, it)
			}
		default:
			t.Errorf("unknown topic %q", it.Topic)
		}
		t.Logf("advice %s %s: %s; %s", it.Topic, it.Node, it.Measured, it.Suggestion)
	}
}
