package alertmanager

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/alertmanager/api/v2/models"

	"github.com/nines-project/nines"
)

// fakeAM stands in for one member of an external Alertmanager cluster:
// it answers POST /api/v2/alerts with status, keeping what it accepted.
type fakeAM struct {
	*httptest.Server
	mu       sync.Mutex
	paths    []string
	received models.PostableAlerts
}

func newFakeAM(t *testing.T, status int) *fakeAM {
	t.Helper()
	am := &fakeAM{}
	am.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost || !strings.HasSuffix(r.URL.Path, "/api/v2/alerts") {
			http.NotFound(w, r)
			return
		}
		if status != http.StatusOK {
			http.Error(w, "broken", status)
			return
		}
		var alerts models.PostableAlerts
		if err := json.NewDecoder(r.Body).Decode(&alerts); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		am.mu.Lock()
		am.paths = append(am.paths, r.URL.Path)
		am.received = append(am.received, alerts...)
		am.mu.Unlock()
	}))
	t.Cleanup(am.Close)
	return am
}

func TestExternalSucceedsIfOneAccepts(t *testing.T) {
	bad, good := newFakeAM(t, http.StatusInternalServerError), newFakeAM(t, http.StatusOK)
	const validity = 4 * time.Second
	// The good one sits behind a path prefix, as nines' own does.
	x, err := NewExternal([]string{bad.URL, good.URL + "/alertmanager"}, nil, validity, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}

	fire := firingAlert(map[string]string{"alertname": "ReplicaLag", "cluster": "aaa", "severity": "warning"})
	res := resolved(firingAlert(map[string]string{"alertname": "ReplicaStopped", "cluster": "aaa"}))
	pending := firingAlert(map[string]string{"alertname": "Pending"})
	pending.State = nines.AlertPending
	before := time.Now()
	if err := x.Send(t.Context(), []nines.Alert{fire, res, pending}); err != nil {
		t.Fatalf("Send with one Alertmanager up: %v", err)
	}
	after := time.Now()

	good.mu.Lock()
	defer good.mu.Unlock()
	if len(good.paths) != 1 || good.paths[0] != "/alertmanager/api/v2/alerts" {
		t.Errorf("posted to %q, want once to /alertmanager/api/v2/alerts", good.paths)
	}
	if len(good.received) != 2 {
		t.Fatalf("received %d alerts, want the firing and the resolved one (not the pending one)", len(good.received))
	}
	for _, a := range good.received {
		startsAt, endsAt := time.Time(a.StartsAt), time.Time(a.EndsAt)
		switch a.Labels["alertname"] {
		case "ReplicaLag":
			if !startsAt.Equal(fire.FiredAt) {
				t.Errorf("firing: startsAt %s, want FiredAt %s", startsAt, fire.FiredAt)
			}
			// The wire format has millisecond precision.
			lo, hi := before.Add(validity).Truncate(time.Millisecond), after.Add(validity)
			if endsAt.Before(lo) || endsAt.After(hi) {
				t.Errorf("firing: endsAt %s, want now+%s in [%s, %s]", endsAt, validity, lo, hi)
			}
		case "ReplicaStopped":
			if !startsAt.Equal(res.FiredAt) || !endsAt.Equal(res.ResolvedAt) {
				t.Errorf("resolved: %s–%s, want %s–%s", startsAt, endsAt, res.FiredAt, res.ResolvedAt)
			}
		default:
			t.Errorf("unexpected alert %v", a.Labels)
		}
	}
}

func TestExternalFailsIfNoneAccepts(t *testing.T) {
	a, b := newFakeAM(t, http.StatusInternalServerError), newFakeAM(t, http.StatusServiceUnavailable)
	x, err := NewExternal([]string{a.URL, b.URL + "/prefix"}, nil, 0, nil)
	if err != nil {
		t.Fatal(err)
	}
	err = x.Send(t.Context(), []nines.Alert{firingAlert(map[string]string{"alertname": "X"})})
	if err == nil {
		t.Fatal("Send with both Alertmanagers failing succeeded")
	}
	for _, want := range []string{a.URL, b.URL + "/prefix", "500", "503"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not mention %q", err, want)
		}
	}
}

func TestNewExternalRejectsBadURLs(t *testing.T) {
	for _, urls := range [][]string{nil, {"am:9093"}, {"ftp://am"}, {"http://"}} {
		if _, err := NewExternal(urls, nil, 0, nil); err == nil {
			t.Errorf("NewExternal(%q) succeeded", urls)
		}
	}
	for _, u := range []string{"ftp://user:hunter2@am:9093", "http://user:hunter2@am:port"} {
		_, err := NewExternal([]string{u}, nil, 0, nil)
		if err == nil || strings.Contains(err.Error(), "hunter2") {
			t.Errorf("NewExternal(%q): %v, want an error without the password", u, err)
		}
	}
}

// An embedded Alertmanager, reached over HTTP like an external one,
// accepts what External posts: the wire format is the real API's.
func TestExternalAgainstEmbedded(t *testing.T) {
	h := newHook(t)
	e := start(t, writeConfig(t, t.TempDir(), fastRoute, "HOOK", h.URL), t.TempDir())
	srv := serve(t, e)
	client := &http.Client{Transport: bearer{testToken, http.DefaultTransport}}
	x, err := NewExternal([]string{srv.URL + PathPrefix}, client, 0, nil)
	if err != nil {
		t.Fatal(err)
	}
	a := firingAlert(map[string]string{"alertname": "ViaHTTP", "cluster": "billing"})
	if err := x.Send(t.Context(), []nines.Alert{a}); err != nil {
		t.Fatalf("Send: %v", err)
	}
	got := h.waitFor(t, 5*time.Second, "notification of the posted alert", notifies("ViaHTTP", "firing"))
	if n := got.msg.Alerts[0]; !n.StartsAt.Equal(a.FiredAt) || n.Annotations["summary"] != a.Annotations["summary"] {
		t.Errorf("notified %+v, want startsAt %s and the annotations of %+v", n, a.FiredAt, a)
	}
}

type bearer struct {
	token string
	next  http.RoundTripper
}

func (b bearer) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.Header.Set("Authorization", "Bearer "+b.token)
	return b.next.RoundTrip(r)
}
