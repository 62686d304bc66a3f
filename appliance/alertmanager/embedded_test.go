package alertmanager

import (
	"bytes"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nines-project/nines"
)

// The remediator's route: one group per alert, at most a second of wait.
const fastRoute = `
route:
  receiver: hook
  group_by: ['...']
  group_wait: 1s
  group_interval: 1s
  repeat_interval: 1h
receivers:
  - name: hook
    webhook_configs:
      - url: HOOK
        send_resolved: true
`

func TestDeliveryWithinTwoSeconds(t *testing.T) {
	h := newHook(t)
	e := start(t, writeConfig(t, t.TempDir(), fastRoute, "HOOK", h.URL), t.TempDir())

	a := firingAlert(map[string]string{"alertname": "GaleraNodeDown", "cluster": "billing", "instance": "db2:3306", "severity": "critical"})
	sent := time.Now()
	if err := e.Send(t.Context(), []nines.Alert{a}); err != nil {
		t.Fatalf("Send firing: %v", err)
	}
	got := h.waitFor(t, 5*time.Second, "firing notification", notifies("GaleraNodeDown", "firing"))
	took := got.at.Sub(sent)
	t.Logf("firing alert delivered after %s", took)
	if took > 2*time.Second {
		t.Errorf("firing alert delivered after %s, want at most 2s (group_wait 1s)", took)
	}
	if n := got.msg.Alerts[0]; !n.StartsAt.Equal(a.FiredAt) {
		t.Errorf("startsAt = %s, want FiredAt %s", n.StartsAt, a.FiredAt)
	}

	r := resolved(a)
	sent = time.Now()
	if err := e.Send(t.Context(), []nines.Alert{r}); err != nil {
		t.Fatalf("Send resolved: %v", err)
	}
	got = h.waitFor(t, 5*time.Second, "resolved notification", notifies("GaleraNodeDown", "resolved"))
	took = got.at.Sub(sent)
	t.Logf("resolved alert delivered after %s", took)
	if took > 2*time.Second {
		t.Errorf("resolved alert delivered after %s, want at most 2s (group_interval 1s)", took)
	}
	if got.msg.Status != "resolved" || !got.msg.Alerts[0].EndsAt.Equal(r.ResolvedAt) {
		t.Errorf("resolved notification: status %q endsAt %s, want resolved at %s", got.msg.Status, got.msg.Alerts[0].EndsAt, r.ResolvedAt)
	}
}

func TestInhibitionCriticalMutesWarningOfSameCluster(t *testing.T) {
	h := newHook(t)
	e := start(t, writeConfig(t, t.TempDir(), fastRoute+`
inhibit_rules:
  - source_matchers: [severity="critical"]
    target_matchers: [severity="warning", remediation=""]
    equal: [cluster]
`, "HOOK", h.URL), t.TempDir())

	alerts := []nines.Alert{
		firingAlert(map[string]string{"alertname": "ClusterDown", "cluster": "billing", "severity": "critical"}),
		firingAlert(map[string]string{"alertname": "BillingLag", "cluster": "billing", "severity": "warning"}),
		firingAlert(map[string]string{"alertname": "IPTVLag", "cluster": "iptv", "severity": "warning"}),
		// A warning that names a runbook reaches the remediator even
		// while the cluster pages.
		firingAlert(map[string]string{"alertname": "BillingNodeDown", "cluster": "billing", "severity": "warning", "remediation": "galera-node-rejoin"}),
	}
	if err := e.Send(t.Context(), alerts); err != nil {
		t.Fatalf("Send: %v", err)
	}
	h.waitFor(t, 5*time.Second, "critical of billing", notifies("ClusterDown", "firing"))
	h.waitFor(t, 5*time.Second, "warning of another cluster", notifies("IPTVLag", "firing"))
	h.waitFor(t, 5*time.Second, "warning with a runbook", notifies("BillingNodeDown", "firing"))
	// Each alert has its own group, all flushed one group_wait after the
	// Send; the inhibited one is counted when its flush is muted.
	eventually(t, 5*time.Second, "inhibited flush", func() bool {
		return counter(t, e.Registry(), "alertmanager_notifications_suppressed_total", "reason", "inhibition") >= 1
	})
	if names := h.alertnames(); slices.Contains(names, "BillingLag") {
		t.Errorf("notified %v: the billing warning should be inhibited by the billing critical", names)
	}
}

func TestSilenceFromAPIAndAmtool(t *testing.T) {
	h := newHook(t)
	e := start(t, writeConfig(t, t.TempDir(), fastRoute, "HOOK", h.URL), t.TempDir())
	srv := serve(t, e)

	// The API, as the console and scripts use it.
	postSilence(t, srv, "SilencedByAPI")

	// amtool, with the bearer token the appliance requires.
	httpConfig := filepath.Join(t.TempDir(), "amtool-http.yml")
	if err := os.WriteFile(httpConfig, []byte("authorization:\n  type: Bearer\n  credentials: "+testToken+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	amURL := "--alertmanager.url=" + srv.URL + PathPrefix
	out, err := amtool(t, amURL, "--http.config.file="+httpConfig,
		"silence", "add", "alertname=SilencedByAmtool", "cluster=billing",
		"--author=test", "--comment=planned maintenance", "--duration=1h")
	if err != nil {
		t.Fatalf("amtool silence add: %v\n%s", err, out)
	}
	t.Logf("amtool silence add: %s", strings.TrimSpace(out))
	if out, err := amtool(t, amURL, "silence", "query"); err == nil {
		t.Errorf("amtool without the token succeeded, want 401:\n%s", out)
	}
	out, err = amtool(t, amURL, "--http.config.file="+httpConfig, "silence", "query")
	if err != nil {
		t.Fatalf("amtool silence query: %v\n%s", err, out)
	}
	for _, name := range []string{"SilencedByAPI", "SilencedByAmtool"} {
		if !strings.Contains(out, name) {
			t.Errorf("amtool silence query does not list %s:\n%s", name, out)
		}
	}

	for _, tc := range []struct {
		labels map[string]string
		want   bool
	}{
		{map[string]string{"alertname": "SilencedByAPI", "cluster": "billing"}, true},
		{map[string]string{"alertname": "SilencedByAmtool", "cluster": "billing"}, true},
		{map[string]string{"alertname": "SilencedByAmtool", "cluster": "iptv"}, false},
		{map[string]string{"alertname": "NotSilenced", "cluster": "billing"}, false},
	} {
		if got := e.Silenced(tc.labels); got != tc.want {
			t.Errorf("Silenced(%v) = %v, want %v", tc.labels, got, tc.want)
		}
	}

	err = e.Send(t.Context(), []nines.Alert{
		firingAlert(map[string]string{"alertname": "SilencedByAPI", "cluster": "billing"}),
		firingAlert(map[string]string{"alertname": "SilencedByAmtool", "cluster": "billing"}),
		firingAlert(map[string]string{"alertname": "NotSilenced", "cluster": "billing"}),
	})
	if err != nil {
		t.Fatalf("Send: %v", err)
	}
	h.waitFor(t, 5*time.Second, "the unsilenced alert", notifies("NotSilenced", "firing"))
	eventually(t, 5*time.Second, "both silenced flushes", func() bool {
		return counter(t, e.Registry(), "alertmanager_notifications_suppressed_total", "reason", "silence") >= 2
	})
	if names := h.alertnames(); slices.Contains(names, "SilencedByAPI") || slices.Contains(names, "SilencedByAmtool") {
		t.Errorf("notified %v despite the silences", names)
	}

	// amtool sees the alerts and that they are silenced.
	out, err = amtool(t, amURL, "--http.config.file="+httpConfig, "alert", "query", "--silenced")
	if err != nil {
		t.Fatalf("amtool alert query: %v\n%s", err, out)
	}
	if !strings.Contains(out, "SilencedByAmtool") || strings.Contains(out, "NotSilenced") {
		t.Errorf("amtool alert query --silenced:\n%s", out)
	}
}

func TestSilenceSurvivesRestart(t *testing.T) {
	h := newHook(t)
	config := writeConfig(t, t.TempDir(), fastRoute, "HOOK", h.URL)
	data := t.TempDir()
	labels := map[string]string{"alertname": "Maintenance", "cluster": "billing"}

	e := start(t, config, data)
	id := postSilence(t, serve(t, e), "Maintenance")
	if !e.Silenced(labels) {
		t.Fatal("Silenced before restart = false")
	}
	if err := e.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}

	e = start(t, config, data)
	if !e.Silenced(labels) {
		t.Error("Silenced after restart = false, want the silence restored from the data directory")
	}
	resp, err := authGet(serve(t, e).URL + PathPrefix + "/api/v2/silence/" + id)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("GET silence %s after restart: %s", id, resp.Status)
	}
}

func TestReloadKeepsRunningConfigOnError(t *testing.T) {
	first, second := newHook(t), newHook(t)
	dir := t.TempDir()
	config := writeConfig(t, dir, fastRoute, "HOOK", first.URL)
	e := start(t, config, t.TempDir())

	writeConfig(t, dir, fastRoute+"  - name: hook\n", "HOOK", second.URL) // duplicate receiver name
	err := e.Reload()
	if err == nil || !strings.Contains(err.Error(), config) {
		t.Fatalf("Reload of a broken file: %v, want an error naming %s", err, config)
	}
	if err := e.Send(t.Context(), []nines.Alert{firingAlert(map[string]string{"alertname": "AfterBadReload"})}); err != nil {
		t.Fatalf("Send: %v", err)
	}
	first.waitFor(t, 5*time.Second, "delivery under the old config", notifies("AfterBadReload", "firing"))

	writeConfig(t, dir, fastRoute, "HOOK", second.URL)
	if err := e.Reload(); err != nil {
		t.Fatalf("Reload of a good file: %v", err)
	}
	if err := e.Send(t.Context(), []nines.Alert{firingAlert(map[string]string{"alertname": "AfterGoodReload"})}); err != nil {
		t.Fatalf("Send: %v", err)
	}
	second.waitFor(t, 5*time.Second, "delivery under the new config", notifies("AfterGoodReload", "firing"))
}

func TestNewNamesTheBrokenFile(t *testing.T) {
	config := writeConfig(t, t.TempDir(), "route:\n  receiver: nowhere\nreceivers: []\n")
	_, err := New(Options{ConfigFile: config, DataDir: t.TempDir()})
	if err == nil || !strings.Contains(err.Error(), config) || !strings.Contains(err.Error(), "nowhere") {
		t.Fatalf("New: %v, want an error naming %s and the receiver", err, config)
	}
	if err := CheckConfig(config); err == nil || !strings.Contains(err.Error(), config) {
		t.Fatalf("CheckConfig: %v, want an error naming %s", err, config)
	}
}

func TestSilencedByMaintenanceWindow(t *testing.T) {
	// always is a time interval that contains every instant.
	yml := `
route:
  receiver: hook
  group_wait: 1s
  group_interval: 1s
  routes:
    - receiver: hook
      matchers: [remediation!=""]
      continue: true
    - receiver: hook
      matchers: [severity="warning"]
      mute_time_intervals: [always]
    - receiver: hook
      matchers: [severity="critical"]
      active_time_intervals: [never]
time_intervals:
  - name: always
    time_intervals: [{}]
  - name: never
    time_intervals: [{years: ["1999"]}]
receivers:
  - name: hook
`
	e := start(t, writeConfig(t, t.TempDir(), yml), t.TempDir())
	for _, tc := range []struct {
		labels map[string]string
		want   bool
	}{
		{map[string]string{"severity": "warning"}, true},
		{map[string]string{"severity": "critical"}, true},
		// The remediator's route is not muted, so remediation goes on.
		{map[string]string{"severity": "warning", "remediation": "rejoin"}, false},
		{map[string]string{"severity": "info"}, false},
	} {
		if got := e.Silenced(tc.labels); got != tc.want {
			t.Errorf("Silenced(%v) = %v, want %v", tc.labels, got, tc.want)
		}
	}
}

func TestMetricsInOwnRegistry(t *testing.T) {
	e := start(t, writeConfig(t, t.TempDir(), fastRoute, "HOOK", "http://127.0.0.1:1/"), t.TempDir())
	mfs, err := e.Registry().Gather()
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, mf := range mfs {
		names = append(names, mf.GetName())
	}
	for _, want := range []string{"alertmanager_silences", "alertmanager_notifications_total", "alertmanager_config_last_reload_successful", "alertmanager_receivers"} {
		if !slices.Contains(names, want) {
			t.Errorf("registry lacks %s; has %v", want, names)
		}
	}
}

// testToken is the bearer token the test server requires, as the
// appliance's middleware does.
const testToken = "s3cret-test-token"

// serve mounts e.Handler under PathPrefix behind a bearer check.
func serve(t *testing.T, e *Embedded) *httptest.Server {
	t.Helper()
	mux := http.NewServeMux()
	h := e.Handler()
	mux.Handle(PathPrefix+"/", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer "+testToken {
			http.Error(w, "unauthorized", http.StatusUnauthorized)
			return
		}
		h.ServeHTTP(w, r)
	}))
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv
}

// postSilence creates a one-hour silence on alertname through the API
// and returns its ID.
func postSilence(t *testing.T, srv *httptest.Server, alertname string) string {
	t.Helper()
	now := time.Now().UTC()
	body, _ := json.Marshal(map[string]any{
		"matchers":  []map[string]any{{"name": "alertname", "value": alertname, "isRegex": false, "isEqual": true}},
		"startsAt":  now.Format(time.RFC3339),
		"endsAt":    now.Add(time.Hour).Format(time.RFC3339),
		"createdBy": "test",
		"comment":   "test silence",
	})
	req, _ := http.NewRequest(http.MethodPost, srv.URL+PathPrefix+"/api/v2/silences", bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+testToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("POST silence: %v", err)
	}
	defer resp.Body.Close()
	var res struct {
		SilenceID string `json:"silenceID"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&res); err != nil || resp.StatusCode != http.StatusOK || res.SilenceID == "" {
		t.Fatalf("POST silence: %s, %v, id %q", resp.Status, err, res.SilenceID)
	}
	return res.SilenceID
}

func authGet(url string) (*http.Response, error) {
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Authorization", "Bearer "+testToken)
	return http.DefaultClient.Do(req)
}

func TestCloseStopsEverything(t *testing.T) {
	config := writeConfig(t, t.TempDir(), fastRoute, "HOOK", "http://127.0.0.1:1/")
	base := runtime.NumGoroutine()
	e, err := New(Options{ConfigFile: config, DataDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	if err := e.Reload(); err != nil {
		t.Fatal(err)
	}
	if err := e.Close(); err != nil {
		t.Fatal(err)
	}
	eventually(t, 5*time.Second, "goroutines of New and Reload to end", func() bool {
		return runtime.NumGoroutine() <= base
	})
	if err := e.Send(t.Context(), []nines.Alert{firingAlert(map[string]string{"alertname": "Late"})}); !errors.Is(err, ErrClosed) {
		t.Errorf("Send after Close: %v, want ErrClosed", err)
	}
	if err := e.Reload(); !errors.Is(err, ErrClosed) {
		t.Errorf("Reload after Close: %v, want ErrClosed", err)
	}
}

// TestInhibitRulesThatMuteRemediationAreRefused: an inhibit rule whose
// targets include alerts naming a runbook would keep the remediator from
// hearing of a crash while any page fires; such configs do not load.
func TestInhibitRulesThatMuteRemediationAreRefused(t *testing.T) {
	for name, rule := range map[string]string{
		"matchers":       `target_matchers: [severity="warning"]`,
		"no target":      `target_matchers: [alertname=~".+"]`,
		"one runbook ok": `target_matchers: [remediation!="galera-quorum-recovery"]`,
		"deprecated":     `target_match: {severity: warning}`,
	} {
		path := writeConfig(t, t.TempDir(), fastRoute+"\ninhibit_rules:\n  - source_matchers: [severity=\"critical\"]\n    "+rule+"\n", "HOOK", "http://127.0.0.1:1/")
		err := CheckConfig(path)
		if err == nil || !strings.Contains(err.Error(), "inhibit_rules[0] can mute alerts with remediation=") {
			t.Errorf("%s: CheckConfig = %v, want the inhibit rule refused", name, err)
		}
	}
	for name, rule := range map[string]string{
		"matchers":      `target_matchers: [severity="warning", remediation=""]`,
		"regexp":        `target_matchers: [remediation!~".+"]`,
		"deprecated":    `target_match: {severity: warning, remediation: ""}`,
		"deprecated re": `target_match_re: {remediation: "^$"}`,
	} {
		path := writeConfig(t, t.TempDir(), fastRoute+"\ninhibit_rules:\n  - source_matchers: [severity=\"critical\"]\n    "+rule+"\n", "HOOK", "http://127.0.0.1:1/")
		if err := CheckConfig(path); err != nil {
			t.Errorf("%s: CheckConfig = %v, want it accepted", name, err)
		}
	}
}

// TestRemediatorHearsFiringAlertAgainAfterRestart: the notification log
// survives a restart, the remediator's memory of an alert does not. With
// the remediator route's repeat_interval of 10 s (sandbox, example), an
// alert still firing reaches the restarted appliance's remediator again
// within seconds; with the 1 h the route had, it did not for an hour, and
// a cluster that lost quorum just before a restart stayed down.
func TestRemediatorHearsFiringAlertAgainAfterRestart(t *testing.T) {
	route := func(repeat string) string {
		return `
route:
  receiver: hook
  group_by: ['...']
  group_wait: 0s
  group_interval: 1s
  repeat_interval: ` + repeat + `
receivers:
  - name: hook
    webhook_configs:
      - url: HOOK
`
	}
	a := firingAlert(map[string]string{"alertname": "GaleraQuorumLost", "cluster": "billing", "remediation": "galera-quorum-recovery"})
	for _, tc := range []struct {
		repeat string
		again  bool
	}{{"1h", false}, {"10s", true}} {
		t.Run(tc.repeat, func(t *testing.T) {
			h := newHook(t)
			config := writeConfig(t, t.TempDir(), route(tc.repeat), "HOOK", h.URL)
			data := t.TempDir()
			e := start(t, config, data)
			if err := e.Send(t.Context(), []nines.Alert{a}); err != nil {
				t.Fatal(err)
			}
			h.waitFor(t, 5*time.Second, "the first delivery", notifies("GaleraQuorumLost", "firing"))
			if err := e.Close(); err != nil {
				t.Fatal(err)
			}
			before := len(h.alertnames())
			restarted := time.Now()
			e = start(t, config, data)
			// The rule engine sends what fires every evaluation.
			deadline := restarted.Add(14 * time.Second)
			if !tc.again {
				deadline = restarted.Add(4 * time.Second)
			}
			for time.Now().Before(deadline) && len(h.alertnames()) == before {
				if err := e.Send(t.Context(), []nines.Alert{a}); err != nil {
					t.Fatal(err)
				}
				time.Sleep(500 * time.Millisecond)
			}
			got := len(h.alertnames()) > before
			t.Logf("repeat_interval %s: delivered again after the restart: %v (%s)", tc.repeat, got, time.Since(restarted).Round(time.Millisecond))
			if got != tc.again {
				t.Errorf("repeat_interval %s: delivered again after the restart = %v, want %v", tc.repeat, got, tc.again)
			}
		})
	}
}
