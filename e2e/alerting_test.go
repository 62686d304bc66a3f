//go:build cluster

package e2e

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/alertmanager/notify/webhook"

	"github.com/nines-project/nines/sandbox"
)

// hook is a test webhook receiver for Alertmanager notifications.
type hook struct {
	url  string
	mu   sync.Mutex
	msgs []hookMsg
}

type hookMsg struct {
	at  time.Time
	msg webhook.Message
}

func newHook(t testing.TB) *hook {
	t.Helper()
	h := &hook{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var m webhook.Message
		if err := json.NewDecoder(r.Body).Decode(&m); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		h.mu.Lock()
		h.msgs = append(h.msgs, hookMsg{time.Now(), m})
		h.mu.Unlock()
	}))
	t.Cleanup(srv.Close)
	h.url = srv.URL
	return h
}

// first returns when the first notification with an alert for which match
// holds (status "firing" or "resolved") arrived.
func (h *hook) first(status string, match func(labels map[string]string) bool) (time.Time, bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, m := range h.msgs {
		for _, a := range m.msg.Alerts {
			if a.Status == status && match(a.Labels) {
				return m.at, true
			}
		}
	}
	return time.Time{}, false
}

func (h *hook) alertnames() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	var out []string
	for _, m := range h.msgs {
		for _, a := range m.msg.Alerts {
			out = append(out, a.Status+":"+a.Labels["alertname"]+"/"+a.Labels["instance"])
		}
	}
	return out
}

func named(name string) func(map[string]string) bool {
	return func(l map[string]string) bool { return l["alertname"] == name }
}

// hangNode freezes node name of sb with SIGSTOP, as a hung server, and
// returns the function that resumes it (SIGCONT), safe to call more than
// once so a deferred call covers a failed test.
func hangNode(t *testing.T, sb *sandbox.Sandbox, name string) (resume func()) {
	t.Helper()
	pid, err := sb.Pid(name)
	if err != nil {
		t.Fatal(err)
	}
	if err := syscall.Kill(pid, syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	resumed := false
	return func() {
		if !resumed {
			resumed = true
			_ = syscall.Kill(pid, syscall.SIGCONT)
		}
	}
}

// alertingConfig writes, in a fresh directory, an appliance config that
// monitors sb with an embedded Alertmanager notifying hook, plus any extra
// rule file. It returns the config's path.
func alertingConfig(t *testing.T, sb *sandbox.Sandbox, hookURL, extraRules string) string {
	t.Helper()
	dir := t.TempDir()
	am := fmt.Sprintf(`route:
  receiver: test
  group_by: ['...']
  group_wait: 1s
  group_interval: 1s
  repeat_interval: 1h
receivers:
  - name: test
    webhook_configs:
      - url: %s
        send_resolved: true
`, hookURL)
	if err := os.WriteFile(filepath.Join(dir, "alertmanager.yml"), []byte(am), 0o600); err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	fmt.Fprintf(&b, "data_dir: data\napi:\n  tokens: [{name: test, role: admin, token_file: %s}]\nalertmanager: {embedded: alertmanager.yml}\n", sb.TokenPath())
	if extraRules != "" {
		if err := os.WriteFile(filepath.Join(dir, "extra.yml"), []byte(extraRules), 0o600); err != nil {
			t.Fatal(err)
		}
		b.WriteString("rule_files: [extra.yml]\n")
	}
	fmt.Fprintf(&b, "clusters:\n  - name: %s\n    kind: galera\n    nodes:\n", sb.ClusterName())
	for _, n := range sb.Nodes() {
		fmt.Fprintf(&b, "      - {address: %q}\n", n.Address())
	}
	fmt.Fprintf(&b, "    credentials: {user: nines, password_file: %s}\n", sb.PasswordPath())
	p := filepath.Join(dir, "nines.yaml")
	if err := os.WriteFile(p, []byte(b.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestQuorumLossAlertWithin3s: kill -9 two of three nodes; an alert that
// the cluster lost its Primary component (or that no node takes writes)
// reaches a webhook receiver configured in alertmanager.yml within 3 s.
func TestQuorumLossAlertWithin3s(t *testing.T) {
	sb := freshGalera(t, "quorumdrill")
	h := newHook(t)
	a := startAppliance(t, alertingConfig(t, sb, h.url, ""), sb.TokenPath())
	waitFor(t, a.started, 15*time.Second, "healthy and probing", func() bool {
		return len(a.query(`mysql_global_status_wsrep_cluster_size == 3`)) == 3 && len(a.query(`nines_probe_success == 1`)) == 3
	})
	time.Sleep(2 * time.Second)
	if fired := h.alertnames(); len(fired) > 0 {
		for _, f := range fired {
			if strings.Contains(f, "Galera") || strings.Contains(f, "Probe") {
				t.Fatalf("a healthy cluster notified: %v", fired)
			}
		}
	}

	nodes := sb.Nodes()
	killed := time.Now()
	for _, n := range nodes[1:] {
		pid, err := sb.Pid(n.Name)
		if err != nil {
			t.Fatal(err)
		}
		if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
	}
	quorumAlert := func(l map[string]string) bool {
		switch l["alertname"] {
		case "GaleraQuorumLost", "GaleraClusterNotPrimary", "NinesProbeWriteFailed":
			return l["cluster"] == "quorumdrill"
		}
		return false
	}
	var at time.Time
	waitFor(t, killed, 3*time.Second, "a quorum/no-writes alert at the webhook", func() bool {
		var ok bool
		at, ok = h.first("firing", quorumAlert)
		return ok
	})
	t.Logf("measured: first quorum alert at the webhook %s after kill -9 of 2 of 3 nodes (bound 3s, goal 1.5s)", at.Sub(killed).Round(time.Millisecond))
	// The survivor's own view follows: it reports non-Primary too.
	waitFor(t, killed, 15*time.Second, "GaleraClusterNotPrimary", func() bool {
		_, ok := h.first("firing", named("GaleraClusterNotPrimary"))
		return ok
	})
	// The probe's page follows once a whole bad second has closed.
	waitFor(t, killed, 15*time.Second, "NinesProbeWriteFailed at the webhook", func() bool {
		_, ok := h.first("firing", named("NinesProbeWriteFailed"))
		return ok
	})
	for _, name := range []string{"GaleraQuorumLost", "GaleraClusterNotPrimary", "NinesProbeWriteFailed"} {
		at, _ := h.first("firing", named(name))
		t.Logf("measured: %s at the webhook %s after the kill", name, at.Sub(killed).Round(time.Millisecond))
	}
}

// TestSIGSTOPAlertFiresAndResolves: a hung node (SIGSTOP) raises its alert;
// after SIGCONT it rejoins by itself, the alert resolves and the resolved
// notification arrives.
func TestSIGSTOPAlertFiresAndResolves(t *testing.T) {
	sb := sharedGalera(t)
	h := newHook(t)
	a := startAppliance(t, alertingConfig(t, sb, h.url, ""), sb.TokenPath())
	waitFor(t, a.started, 15*time.Second, "healthy", func() bool {
		return len(a.query(`mysql_global_status_wsrep_cluster_size == 3`)) == 3
	})
	victim := sb.Nodes()[2]
	stopped := time.Now()
	resume := hangNode(t, sb, victim.Name)
	defer resume()
	onVictim := func(l map[string]string) bool {
		return l["alertname"] == "GaleraNodeDown" && l["instance"] == victim.Address()
	}
	waitFor(t, stopped, 5*time.Second, "GaleraNodeDown for the stopped node", func() bool {
		_, ok := h.first("firing", onVictim)
		return ok
	})
	fired, _ := h.first("firing", onVictim)
	t.Logf("measured: GaleraNodeDown at the webhook %s after SIGSTOP", fired.Sub(stopped).Round(time.Millisecond))

	time.Sleep(3 * time.Second)
	resume()
	cont := time.Now()
	waitFor(t, cont, 60*time.Second, "resolved notification for GaleraNodeDown", func() bool {
		_, ok := h.first("resolved", onVictim)
		return ok
	})
	res, _ := h.first("resolved", onVictim)
	t.Logf("measured: resolved notification %s after SIGCONT", res.Sub(cont).Round(time.Millisecond))
	waitFor(t, cont, 60*time.Second, "the shared cluster healthy again", func() bool {
		return len(a.query(`mysql_global_status_wsrep_local_state == 4`)) == 3
	})
}

// TestAmtoolSilence: a silence created with amtool against nines'
// Alertmanager API suppresses delivery of the matching alert, and only it.
func TestAmtoolSilence(t *testing.T) {
	sb := sharedGalera(t)
	h := newHook(t)
	extra := `groups:
  - name: drill
    rules:
      - alert: DrillSilenced
        expr: vector(1)
        labels: {severity: warning, drill: silence}
        annotations: {summary: s, description: d, runbook: r}
      - alert: DrillDelivered
        expr: vector(1)
        labels: {severity: warning, drill: silence}
        annotations: {summary: s, description: d, runbook: r}
`
	cfg := alertingConfig(t, sb, h.url, "")
	// Create the silence before the alert exists: start the appliance with
	// no drill rules, silence, then add the rules and reload (SIGHUP).
	a := startAppliance(t, cfg, sb.TokenPath())
	waitFor(t, a.started, 15*time.Second, "ready", func() bool { return len(a.query("mysql_up == 1")) == 3 })

	httpCfg := filepath.Join(t.TempDir(), "amtool-http.yml")
	if err := os.WriteFile(httpCfg, []byte("authorization:\n  type: Bearer\n  credentials_file: "+sb.TokenPath()+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	amURL := a.base + "/alertmanager"
	out, err := exec.Command("amtool", "--alertmanager.url="+amURL, "--http.config.file="+httpCfg, "--no-version-check",
		"silence", "add", "alertname=DrillSilenced", "--comment=e2e drill", "--author=e2e", "--duration=10m").CombinedOutput()
	if err != nil {
		t.Fatalf("amtool silence add: %v\n%s", err, out)
	}
	id := strings.TrimSpace(string(out))
	q, err := exec.Command("amtool", "--alertmanager.url="+amURL, "--http.config.file="+httpCfg, "--no-version-check", "silence", "query", "-q").CombinedOutput()
	if err != nil || !strings.Contains(string(q), id) {
		t.Fatalf("amtool silence query: %v\n%s (want %s)", err, q, id)
	}
	// Without the token amtool is refused.
	if out, err := exec.Command("amtool", "--alertmanager.url="+amURL, "--no-version-check", "silence", "query").CombinedOutput(); err == nil {
		t.Errorf("amtool without a token succeeded: %s", out)
	}

	rulesFile := filepath.Join(filepath.Dir(cfg), "extra.yml")
	if err := os.WriteFile(rulesFile, []byte(extra), 0o600); err != nil {
		t.Fatal(err)
	}
	body, _ := os.ReadFile(cfg)
	if err := os.WriteFile(cfg, append(body, []byte("rule_files: [extra.yml]\n")...), 0o600); err != nil {
		t.Fatal(err)
	}
	// rule_files are read at start: restart the appliance with them.
	a.stop()
	a = startAppliance(t, cfg, sb.TokenPath())
	waitFor(t, a.started, 20*time.Second, "DrillDelivered at the webhook", func() bool {
		_, ok := h.first("firing", named("DrillDelivered"))
		return ok
	})
	time.Sleep(3 * time.Second) // both alerts were evaluated together; give the silenced one every chance
	if _, ok := h.first("firing", named("DrillSilenced")); ok {
		t.Errorf("the silenced alert was delivered: %v", h.alertnames())
	}
	var alerts struct {
		Data struct {
			Alerts []struct{ Labels map[string]string }
		}
	}
	if code, err := a.get("/api/v1/alerts", nil, &alerts); err != nil || code != 200 {
		t.Fatalf("/api/v1/alerts: %d %v", code, err)
	}
	names := map[string]bool{}
	for _, al := range alerts.Data.Alerts {
		names[al.Labels["alertname"]] = true
	}
	if !names["DrillSilenced"] || !names["DrillDelivered"] {
		t.Errorf("/api/v1/alerts lacks the drill alerts (a silence mutes delivery, not evaluation): %v", names)
	}
}

// TestRulesAPIAndExport: /api/v1/rules lists the built-in, SLO and user
// groups; `nines rules export` passes promtool, the shipped example
// alertmanager.yml passes amtool.
func TestRulesAPIAndExport(t *testing.T) {
	sb := sharedGalera(t)
	a := startAppliance(t, sb.ConfigPath(), sb.TokenPath())
	var r struct {
		Data struct {
			Groups []struct {
				Name  string
				File  string
				Rules []struct{ Name, Type, Health string }
			}
		}
	}
	waitFor(t, a.started, 15*time.Second, "rules evaluated", func() bool {
		code, err := a.get("/api/v1/rules", url.Values{}, &r)
		if err != nil || code != 200 || len(r.Data.Groups) == 0 {
			return false
		}
		for _, g := range r.Data.Groups {
			for _, rule := range g.Rules {
				if rule.Health == "unknown" {
					return false
				}
			}
		}
		return true
	})
	files := map[string]bool{}
	for _, g := range r.Data.Groups {
		files[g.File] = true
		for _, rule := range g.Rules {
			if rule.Health != "ok" {
				t.Errorf("rule %s/%s health %s", g.Name, rule.Name, rule.Health)
			}
		}
	}
	for _, f := range []string{"builtin/galera.yml", "builtin/replication.yml", "builtin/probe.yml", "builtin/nines.yml", "generated/slo.yml"} {
		if !files[f] {
			t.Errorf("/api/v1/rules lacks %s (has %v)", f, files)
		}
	}
	// A healthy cluster fires nothing critical.
	time.Sleep(2 * time.Second)
	var alerts struct {
		Data struct {
			Alerts []struct{ Labels map[string]string }
		}
	}
	if _, err := a.get("/api/v1/alerts", nil, &alerts); err != nil {
		t.Fatal(err)
	}
	for _, al := range alerts.Data.Alerts {
		if al.Labels["severity"] == "critical" {
			t.Errorf("healthy cluster has a critical alert: %v", al.Labels)
		}
	}

	dir := t.TempDir()
	out, err := exec.Command(ninesBin, "rules", "export", "--config", sb.ConfigPath(), "--dir", dir).CombinedOutput()
	if err != nil {
		t.Fatalf("nines rules export: %v\n%s", err, out)
	}
	exported, _ := filepath.Glob(filepath.Join(dir, "*.yml"))
	if len(exported) < 5 {
		t.Fatalf("exported %v", exported)
	}
	if out, err := exec.Command("promtool", append([]string{"check", "rules"}, exported...)...).CombinedOutput(); err != nil {
		t.Errorf("promtool check rules: %v\n%s", err, out)
	}
	merged := filepath.Join(dir, "merged.yaml")
	out, err = exec.Command(ninesBin, "rules", "export", "--config", sb.ConfigPath()).Output()
	if err != nil {
		t.Fatal(err)
	}
	_ = os.WriteFile(merged, out, 0o600)
	if out, err := exec.Command("promtool", "check", "rules", merged).CombinedOutput(); err != nil {
		t.Errorf("promtool check rules (merged): %v\n%s", err, out)
	}
	if out, err := exec.Command("amtool", "check-config", "../examples/alertmanager.yml").CombinedOutput(); err != nil {
		t.Errorf("amtool check-config examples/alertmanager.yml: %v\n%s", err, out)
	}
}
