package rules

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nines-project/nines"
)

// scripted answers each expression with what the test last set for it.
type scripted struct {
	mu  sync.Mutex
	res map[string][]Sample
	err error
}

func (s *scripted) set(expr string, samples ...Sample) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.res == nil {
		s.res = map[string][]Sample{}
	}
	s.res[expr] = samples
}

func (s *scripted) Query(_ context.Context, expr string, _ time.Time) ([]Sample, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.err != nil {
		return nil, s.err
	}
	return s.res[expr], nil
}

type sent struct {
	mu     sync.Mutex
	alerts []nines.Alert
}

func (s *sent) Send(_ context.Context, alerts []nines.Alert) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.alerts = append(s.alerts, alerts...)
	return nil
}

func (s *sent) take() []nines.Alert {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := s.alerts
	s.alerts = nil
	return out
}

// recorded keeps recording rules' samples apart from the ALERTS series
// that alerting rules write, so each test checks the one it is about.
type recorded struct{ samples, alerts []Sample }

func (r *recorded) Flush() {}

func (r *recorded) Append(_ string, samples []Sample, _ time.Time) error {
	for _, s := range samples {
		if s.Labels["__name__"] == MetricAlerts {
			r.alerts = append(r.alerts, s)
		} else {
			r.samples = append(r.samples, s)
		}
	}
	return nil
}

// clock is a manual clock.
type clock struct{ t time.Time }

func (c *clock) now() time.Time             { return c.t }
func (c *clock) step(d time.Duration)       { c.t = c.t.Add(d) }
func series(v float64, kv ...string) Sample { return sample(v, kv...) }

func sample(v float64, kv ...string) Sample {
	ls := map[string]string{}
	for i := 0; i+1 < len(kv); i += 2 {
		ls[kv[i]] = kv[i+1]
	}
	return Sample{Labels: ls, Value: v}
}

const nodeDown = `
groups:
  - name: galera
    rules:
      - alert: GaleraNodeDown
        expr: mysql_up == 0
        for: 3s
        keep_firing_for: 2s
        labels: {severity: warning, node: "{{ $labels.instance }}"}
        annotations:
          summary: "{{ $labels.instance }} of {{ $labels.cluster }} is down (value {{ $value }})"
      - record: cluster:mysql_up:sum
        expr: sum by (cluster) (mysql_up)
`

func newTestManager(t *testing.T, src string) (*Manager, *scripted, *sent, *recorded, *clock) {
	t.Helper()
	q, s, r := &scripted{}, &sent{}, &recorded{}
	c := &clock{t: time.Unix(1_800_000_000, 0)}
	m := NewManager(q, r, s, Options{Now: c.now, ResendDelay: 10 * time.Second})
	if err := m.Load([]Source{{Name: "test.yml", Content: []byte(src)}}); err != nil {
		t.Fatal(err)
	}
	return m, q, s, r, c
}

func TestAlertLifecycle(t *testing.T) {
	m, q, s, r, c := newTestManager(t, nodeDown)
	ctx := context.Background()
	down := series(0, "__name__", "mysql_up", "cluster", "c1", "instance", "db2:3306")

	m.EvalOnce(ctx, true)
	if len(m.Alerts()) != 0 || len(s.take()) != 0 {
		t.Fatal("alert without data")
	}
	if len(r.samples) != 0 {
		t.Fatal("recorded from no data")
	}

	q.set("mysql_up == 0", down)
	q.set("sum by (cluster) (mysql_up)", series(2, "cluster", "c1"))
	m.EvalOnce(ctx, true)
	as := m.Alerts()
	if len(as) != 1 || as[0].State != nines.AlertPending {
		t.Fatalf("after first eval: %+v, want one pending", as)
	}
	if got := s.take(); len(got) != 0 {
		t.Fatalf("pending alert sent: %+v", got)
	}
	if len(r.samples) != 1 || r.samples[0].Labels["__name__"] != "cluster:mysql_up:sum" || r.samples[0].Value != 2 {
		t.Fatalf("recorded %+v", r.samples)
	}

	c.step(3 * time.Second)
	m.EvalOnce(ctx, true)
	got := s.take()
	if len(got) != 1 || got[0].State != nines.AlertFiring {
		t.Fatalf("after for: sent %+v, want one firing", got)
	}
	// Each evaluation wrote the alert's ALERTS series: pending, then firing.
	if n := len(r.alerts); n != 2 || r.alerts[0].Labels["alertstate"] != "pending" || r.alerts[1].Labels["alertstate"] != "firing" ||
		r.alerts[1].Labels["alertname"] != "GaleraNodeDown" || r.alerts[1].Labels["cluster"] != "c1" || r.alerts[1].Value != 1 {
		t.Errorf("ALERTS series written: %+v, want pending then firing", r.alerts)
	}
	a := got[0]
	if a.Labels["alertname"] != "GaleraNodeDown" || a.Labels["severity"] != "warning" || a.Labels["node"] != "db2:3306" || a.Labels["cluster"] != "c1" {
		t.Errorf("labels %v", a.Labels)
	}
	if _, ok := a.Labels["__name__"]; ok {
		t.Error("alert carries __name__")
	}
	if want := "db2:3306 of c1 is down (value 0)"; a.Annotations["summary"] != want {
		t.Errorf("summary %q, want %q", a.Annotations["summary"], want)
	}
	if !a.FiredAt.Equal(c.t) || !a.ActiveAt.Equal(c.t.Add(-3*time.Second)) {
		t.Errorf("times: active %v fired %v", a.ActiveAt, a.FiredAt)
	}

	// No resend before the resend delay; one after it.
	c.step(time.Second)
	m.EvalOnce(ctx, true)
	if got := s.take(); len(got) != 0 {
		t.Errorf("resent too early: %+v", got)
	}
	c.step(10 * time.Second)
	m.EvalOnce(ctx, true)
	if got := s.take(); len(got) != 1 {
		t.Errorf("not resent after the delay: %+v", got)
	}

	// A query error changes nothing.
	q.err = errors.New("store unavailable")
	c.step(time.Second)
	m.EvalOnce(ctx, true)
	if as := m.Alerts(); len(as) != 1 || as[0].State != nines.AlertFiring {
		t.Fatalf("query error changed the alert: %+v", as)
	}
	q.err = nil

	// The condition clears: keep_firing_for holds it 2 s, then it resolves.
	q.set("mysql_up == 0")
	c.step(time.Second)
	m.EvalOnce(ctx, true)
	if as := m.Alerts(); len(as) != 1 || as[0].State != nines.AlertFiring {
		t.Fatalf("keep_firing_for not honoured: %+v", as)
	}
	c.step(2 * time.Second)
	m.EvalOnce(ctx, true)
	if as := m.Alerts(); len(as) != 0 {
		t.Fatalf("not resolved after keep_firing_for: %+v", as)
	}
	got = s.take()
	if len(got) != 1 || got[0].State != nines.AlertInactive || !got[0].ResolvedAt.Equal(c.t) {
		t.Fatalf("resolved notification: %+v", got)
	}
}

func TestPendingThatClearsIsNeverSent(t *testing.T) {
	m, q, s, _, c := newTestManager(t, nodeDown)
	ctx := context.Background()
	q.set("mysql_up == 0", series(0, "instance", "db1"))
	m.EvalOnce(ctx, true)
	q.set("mysql_up == 0")
	c.step(time.Second)
	m.EvalOnce(ctx, true)
	c.step(5 * time.Second)
	m.EvalOnce(ctx, true)
	if got := s.take(); len(got) != 0 || len(m.Alerts()) != 0 {
		t.Fatalf("a blip shorter than for was sent: %+v", got)
	}
}

func TestReloadKeepsStateAndRejectsBrokenFiles(t *testing.T) {
	m, q, _, _, c := newTestManager(t, nodeDown)
	ctx := context.Background()
	q.set("mysql_up == 0", series(0, "instance", "db1"))
	m.EvalOnce(ctx, true)
	c.step(3 * time.Second)
	m.EvalOnce(ctx, true)

	broken := strings.Replace(nodeDown, "expr: mysql_up == 0", "expr: mysql_up ==", 1)
	err := m.Load([]Source{{Name: "test.yml", Content: []byte(broken)}})
	if err == nil || !strings.Contains(err.Error(), "test.yml: 6:15:") {
		t.Fatalf("broken reload: %v, want an error at test.yml line 6", err)
	}
	if as := m.Alerts(); len(as) != 1 || as[0].State != nines.AlertFiring {
		t.Fatalf("broken reload lost the running set: %+v", as)
	}
	// A good reload with the same rule keeps its firing alert.
	if err := m.Load([]Source{{Name: "test.yml", Content: []byte(nodeDown)}}); err != nil {
		t.Fatal(err)
	}
	if as := m.Alerts(); len(as) != 1 || as[0].State != nines.AlertFiring {
		t.Fatalf("good reload lost the firing alert: %+v", as)
	}
}

func TestParseErrors(t *testing.T) {
	tests := []struct{ name, src, want string }{
		{"bad expr", "groups:\n  - name: g\n    rules:\n      - alert: A\n        expr: up ==\n", "x.yml: 5:15: group \"g\", rule 1, \"A\""},
		{"both record and alert", "groups:\n  - name: g\n    rules:\n      - alert: A\n        record: b\n        expr: up\n", "only one of 'record' and 'alert' must be set"},
		{"unknown field", "groups:\n  - name: g\n    rules:\n      - alert: A\n        expr: up\n        severity: page\n", "field severity not found"},
		{"bad template", "groups:\n  - name: g\n    rules:\n      - alert: A\n        expr: up\n        annotations: {summary: \"{{ $labels.x \"}\n", "x.yml"},
	}
	for _, tt := range tests {
		_, err := Parse(Source{Name: "x.yml", Content: []byte(tt.src)})
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: %v, want %q", tt.name, err, tt.want)
		}
	}
	_, err := ParseAll([]Source{{Name: "a.yml", Content: []byte(nodeDown)}, {Name: "b.yml", Content: []byte(nodeDown)}})
	if err == nil || !strings.Contains(err.Error(), `b.yml: group "galera" is already defined in a.yml`) {
		t.Errorf("duplicate group: %v", err)
	}
}

func TestDuplicateLabelsetIsAnError(t *testing.T) {
	m, q, _, _, _ := newTestManager(t, `
groups:
  - name: g
    rules:
      - alert: A
        expr: x
`)
	q.set("x", series(1, "__name__", "a", "i", "1"), series(1, "__name__", "b", "i", "1"))
	m.EvalOnce(context.Background(), true)
	g := m.APIGroups("")
	if g[0].Rules[0].Health != "err" || !strings.Contains(g[0].Rules[0].LastError, "same labelset") {
		t.Errorf("rule health %+v", g[0].Rules[0])
	}
}
