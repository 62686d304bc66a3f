package appliance

import (
	"fmt"
	"log/slog"
	"testing"
	"time"

	"github.com/nines-project/nines/appliance/config"
	"github.com/nines-project/nines/appliance/store"
	"github.com/nines-project/nines/internal/metric"
	"github.com/nines-project/nines/rules"
)

func openTestStore(tb testing.TB) *store.Store {
	tb.Helper()
	st, err := store.Open(store.Options{DataDir: tb.TempDir(), Retention: 24 * time.Hour})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _ = st.Close() })
	return st
}

// TestIngesterMarksVanishedSeriesStale: a series a source stops reporting
// ends at once (a staleness marker), as after a failed Prometheus scrape;
// the others go on, and one source's series never end another's.
func TestIngesterMarksVanishedSeriesStale(t *testing.T) {
	st := openTestStore(t)
	in := newIngester(st, nil)
	m := func(name, ch string, v float64) metric.Metric {
		return metric.Metric{Name: name, Labels: []metric.Label{{Name: "cluster", Value: "g"}, {Name: "channel", Value: ch}}, Value: v}
	}
	t0 := time.Now().Add(-10 * time.Second).Truncate(time.Second)
	in.write("db1", []metric.Metric{m("lag", "a", 1), m("lag", "b", 2)}, t0, true)
	in.write("db2", []metric.Metric{m("lag", "c", 3)}, t0, true)
	t1 := t0.Add(time.Second)
	in.write("db1", []metric.Metric{m("lag", "a", 4)}, t1, true)
	in.write("db2", nil, t1.Add(-time.Second/2), false) // nothing yet: keeps c, no marker for db1's
	in.write("db2", []metric.Metric{m("lag", "c", 5)}, t1, true)

	at := func(when time.Time) map[string]float64 {
		got, err := st.Query(t.Context(), "lag", when)
		if err != nil {
			t.Fatal(err)
		}
		out := map[string]float64{}
		for _, s := range got {
			out[s.Labels["channel"]] = s.Value
		}
		return out
	}
	if got := at(t0); fmt.Sprint(got) != "map[a:1 b:2 c:3]" {
		t.Errorf("at t0: %v, want a, b and c", got)
	}
	if got := at(t1); fmt.Sprint(got) != "map[a:4 c:5]" {
		t.Errorf("at t1: %v, want a and c, b ended by its staleness marker", got)
	}
}

// BenchmarkIngestWrite: one node's scrape (about the 1,100 series of a
// MariaDB Galera node) into the store, as every node does every second.
func BenchmarkIngestWrite(b *testing.B) {
	st := openTestStore(b)
	in := newIngester(st, nil)
	ms := make([]metric.Metric, 1100)
	for i := range ms {
		ms[i] = metric.Metric{Name: fmt.Sprintf("mysql_global_status_v%d", i%600),
			Labels: []metric.Label{{Name: "cluster", Value: "fleet-0001"}, {Name: "instance", Value: "127.0.0.1:46000"}, {Name: "k", Value: fmt.Sprint(i / 600)}}, Value: float64(i)}
	}
	at := time.Now()
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		in.write("127.0.0.1:46000", ms, at.Add(time.Duration(i)*time.Millisecond), false)
	}
}

// TestExternalStoreFallsBackToEmbedded: with the external store down, the
// rules still read: the embedded store answers, and the appliance says
// it (nines_store_external_up 0, failures counted).
func TestExternalStoreFallsBackToEmbedded(t *testing.T) {
	st := openTestStore(t)
	in := newIngester(st, nil)
	in.write("db1", []metric.Metric{{Name: "mysql_up", Labels: []metric.Label{{Name: "cluster", Value: "g"}}, Value: 1}}, time.Now(), true)
	q, err := newQuerier(st, &config.ExternalStore{URL: "http://127.0.0.1:9/select/0/prometheus", Timeout: config.Duration{Duration: time.Second}}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	got, err := q.Query(t.Context(), "mysql_up", time.Now())
	if err != nil || len(got) != 1 || got[0].Value != 1 {
		t.Fatalf("query with the external store down: %v, %v; want the embedded store's answer", got, err)
	}
	m := map[string]float64{}
	for _, s := range q.metrics() {
		m[s.Name] = s.Value
	}
	if m["nines_store_external_up"] != 0 || m["nines_store_external_failures_total"] != 1 {
		t.Errorf("metrics %v, want external_up 0 and 1 failure", m)
	}
}

// TestRuleSeriesEndWhenTheRuleStopsWritingThem: a resolved alert's ALERTS
// series and a recording rule's series whose input is gone end at the
// evaluation that stops writing them (staleness markers, as Prometheus
// writes), not five minutes later.
func TestRuleSeriesEndWhenTheRuleStopsWritingThem(t *testing.T) {
	st := openTestStore(t)
	in := newIngester(st, nil)
	now := time.Now().Truncate(time.Second)
	level := func(v float64, at time.Time) {
		in.write("db1", []metric.Metric{{Name: "level", Labels: []metric.Label{{Name: "cluster", Value: "g"}}, Value: v}}, at, true)
	}
	clock := now.Add(-2 * time.Second)
	m := rules.NewManager(storeQuerier{st}, storeAppender{st, newIngester(st, nil)}, nil, rules.Options{Now: func() time.Time { return clock }})
	if err := m.Load([]rules.Source{{Name: "t.yml", Content: []byte(`groups:
  - name: t
    rules:
      - record: level:high
        expr: level > 5
      - alert: LevelHigh
        expr: level > 5
        labels: {severity: warning}
        annotations: {summary: s, description: d, runbook: r}
`)}}); err != nil {
		t.Fatal(err)
	}
	level(9, clock)
	m.EvalOnce(t.Context(), true)
	st.Flush()
	count := func(expr string, at time.Time) int {
		got, err := st.Query(t.Context(), expr, at)
		if err != nil {
			t.Fatal(err)
		}
		return len(got)
	}
	if count(`ALERTS{alertname="LevelHigh"}`, clock) != 1 || count("level:high", clock) != 1 {
		t.Fatalf("while high: ALERTS %d, level:high %d; want 1 and 1", count(`ALERTS{alertname="LevelHigh"}`, clock), count("level:high", clock))
	}
	clock = now
	level(1, clock)
	m.EvalOnce(t.Context(), true)
	st.Flush()
	if n := count(`ALERTS{alertname="LevelHigh"}`, clock); n != 0 {
		t.Errorf("ALERTS of the resolved alert still answered at the next evaluation: %d series", n)
	}
	if n := count("level:high", clock); n != 0 {
		t.Errorf("level:high still answered after its input went low: %d series", n)
	}
}
