package alertmanager

import (
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/alertmanager/notify/webhook"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/nines-project/nines"
)

// hook is a webhook receiver: it records every notification with its
// arrival time.
type hook struct {
	URL string

	mu   sync.Mutex
	msgs []received
}

type received struct {
	at  time.Time
	msg webhook.Message
}

func newHook(t *testing.T) *hook {
	t.Helper()
	h := &hook{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var m webhook.Message
		if err := json.NewDecoder(r.Body).Decode(&m); err != nil {
			t.Errorf("webhook: decode: %v", err)
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		h.mu.Lock()
		h.msgs = append(h.msgs, received{time.Now(), m})
		h.mu.Unlock()
	}))
	t.Cleanup(srv.Close)
	h.URL = srv.URL
	return h
}

// waitFor returns the first notification (in arrival order) for which ok
// holds, failing the test if none arrives within timeout.
func (h *hook) waitFor(t *testing.T, timeout time.Duration, what string, ok func(webhook.Message) bool) received {
	t.Helper()
	var found *received
	eventually(t, timeout, what, func() bool {
		h.mu.Lock()
		defer h.mu.Unlock()
		for i := range h.msgs {
			if ok(h.msgs[i].msg) {
				found = &h.msgs[i]
				return true
			}
		}
		return false
	})
	return *found
}

// alertnames lists the alertname of every alert notified so far.
func (h *hook) alertnames() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	var names []string
	for _, r := range h.msgs {
		for _, a := range r.msg.Alerts {
			names = append(names, a.Labels["alertname"])
		}
	}
	return names
}

// notifies reports whether m carries an alert of that name and status.
func notifies(alertname, status string) func(webhook.Message) bool {
	return func(m webhook.Message) bool {
		for _, a := range m.Alerts {
			if a.Labels["alertname"] == alertname && a.Status == status {
				return true
			}
		}
		return false
	}
}

// eventually polls cond until it holds or timeout passes.
func eventually(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %s", what, timeout)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// writeConfig writes an alertmanager.yml into dir, replacing each key of
// vars by its value.
func writeConfig(t *testing.T, dir, yml string, vars ...string) string {
	t.Helper()
	yml = strings.NewReplacer(vars...).Replace(yml)
	path := filepath.Join(dir, "alertmanager.yml")
	if err := os.WriteFile(path, []byte(yml), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// start runs an Embedded on config and dataDir, closed when the test ends.
func start(t *testing.T, config, dataDir string) *Embedded {
	t.Helper()
	e, err := New(Options{
		ConfigFile:  config,
		DataDir:     dataDir,
		ExternalURL: "http://nines.test:9104/alertmanager",
		Logger:      testLogger(t),
	})
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() { _ = e.Close() })
	return e
}

func testLogger(t *testing.T) *slog.Logger {
	return slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelWarn}))
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// firingAlert is an alert that fires now, as the rules send it. (One that
// fired longer than group_wait ago is notified at once: Alertmanager only
// waits for alerts that may still gather.)
func firingAlert(labels map[string]string) nines.Alert {
	fired := time.Now().Truncate(time.Millisecond)
	return nines.Alert{
		Labels:      labels,
		Annotations: map[string]string{"summary": "test alert"},
		State:       nines.AlertFiring,
		ActiveAt:    fired.Add(-10 * time.Second),
		FiredAt:     fired,
		Value:       1,
	}
}

// resolved returns a as resolved now.
func resolved(a nines.Alert) nines.Alert {
	a.State = nines.AlertInactive
	a.ResolvedAt = time.Now().Truncate(time.Millisecond)
	return a
}

// counter reads a counter of reg by name and one label pair, 0 if absent.
func counter(t *testing.T, reg *prometheus.Registry, name, label, value string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatalf("gather: %v", err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, lp := range m.GetLabel() {
				if lp.GetName() == label && lp.GetValue() == value {
					return m.GetCounter().GetValue()
				}
			}
		}
	}
	return 0
}

// amtool runs the real amtool binary; it fails the test when amtool is
// missing, since the amtool compatibility is a contract.
func amtool(t *testing.T, args ...string) (string, error) {
	t.Helper()
	bin, err := exec.LookPath("amtool")
	if err != nil {
		t.Fatalf("amtool not found (Debian: apt-get install prometheus-alertmanager): %v", err)
	}
	out, err := exec.CommandContext(t.Context(), bin, args...).CombinedOutput()
	return string(out), err
}
