package dashboards

import (
	"encoding/json"
	"maps"
	"slices"
	"strings"
	"testing"

	"github.com/VictoriaMetrics/metricsql"

	"github.com/nines-project/nines/exporter/qan"
)

// testVars are what Grafana would put in for the variables.
var testVars = Variables{
	Cluster: "billing", Instance: []string{"db1:3306", "db2:3306"},
	RateInterval: "4s", Interval: "2s", Range: "1h",
}

// jsonPanel is a panel of the dashboard JSON as the tests read it back.
type jsonPanel struct {
	Type        string `json:"type"`
	Title       string `json:"title"`
	FieldConfig struct {
		Defaults struct {
			Unit       string `json:"unit"`
			Thresholds struct {
				Steps []struct{ Color string } `json:"steps"`
			} `json:"thresholds"`
		} `json:"defaults"`
	} `json:"fieldConfig"`
	Targets []struct {
		Expr string `json:"expr"`
	} `json:"targets"`
	GridPos struct{ W, H, X, Y int } `json:"gridPos"`
}

// panelsOnly takes Grafana's row headers out of a dashboard's panels,
// after checking they are the spec's rows, in order, each once.
func panelsOnly[P any](t *testing.T, s Spec, panels []P, typeTitle func(P) (string, string)) []P {
	t.Helper()
	var want, got []string
	for i, p := range s.Panels {
		if p.Row != "" && (i == 0 || s.Panels[i-1].Row != p.Row) {
			want = append(want, p.Row)
		}
	}
	var out []P
	for _, p := range panels {
		if typ, title := typeTitle(p); typ == "row" {
			got = append(got, title)
			continue
		}
		out = append(out, p)
	}
	if strings.Join(got, "|") != strings.Join(want, "|") {
		t.Errorf("%s: rows %q in JSON, want %q", s.UID, got, want)
	}
	return out
}

func TestEveryDashboardIsValidJSONWithItsVariables(t *testing.T) {
	uids := map[string]bool{}
	for _, s := range All() {
		if uids[s.UID] {
			t.Errorf("uid %s used twice", s.UID)
		}
		uids[s.UID] = true
		b, err := s.JSON(Options{Cluster: "billing"})
		if err != nil {
			t.Fatalf("%s: %v", s.UID, err)
		}
		var d struct {
			UID        string `json:"uid"`
			Title      string `json:"title"`
			Templating struct {
				List []struct {
					Name    string `json:"name"`
					Type    string `json:"type"`
					Query   any    `json:"query"`
					Current struct {
						Value any `json:"value"`
					} `json:"current"`
				} `json:"list"`
			} `json:"templating"`
			Annotations struct {
				List []struct {
					Expr       string `json:"expr"`
					Datasource struct{ UID string }
				} `json:"list"`
			} `json:"annotations"`
			Panels []jsonPanel `json:"panels"`
		}
		if err := json.Unmarshal(b, &d); err != nil {
			t.Fatalf("%s: not valid JSON: %v", s.UID, err)
		}
		if d.UID != s.UID || d.Title != s.Title {
			t.Errorf("%s: JSON has uid %q title %q", s.UID, d.UID, d.Title)
		}
		vars := map[string]string{}
		for _, v := range d.Templating.List {
			vars[v.Name] = v.Type
		}
		for name, typ := range map[string]string{"datasource": "datasource", "cluster": "query", "instance": "query"} {
			if vars[name] != typ {
				t.Errorf("%s: variable %s is %q, want type %q", s.UID, name, vars[name], typ)
			}
		}
		if len(d.Annotations.List) != 1 || d.Annotations.List[0].Expr != Annotation.Expr || d.Annotations.List[0].Datasource.UID != "${datasource}" {
			t.Errorf("%s: annotations %+v, want the job annotation on the datasource variable", s.UID, d.Annotations.List)
		}
		d.Panels = panelsOnly(t, s, d.Panels, func(p jsonPanel) (string, string) { return p.Type, p.Title })
		if len(d.Panels) != len(s.Panels) || len(d.Panels) == 0 {
			t.Fatalf("%s: %d panels in JSON, %d in the spec", s.UID, len(d.Panels), len(s.Panels))
		}
		for i, p := range d.Panels {
			if p.FieldConfig.Defaults.Unit == "" {
				t.Errorf("%s: panel %q has no unit", s.UID, p.Title)
			}
			if len(p.FieldConfig.Defaults.Thresholds.Steps) == 0 {
				t.Errorf("%s: panel %q has no thresholds", s.UID, p.Title)
			}
			if len(p.Targets) != len(s.Panels[i].Targets) {
				t.Errorf("%s: panel %q has %d targets, want %d", s.UID, p.Title, len(p.Targets), len(s.Panels[i].Targets))
			}
			if p.GridPos.W == 0 || p.GridPos.H == 0 {
				t.Errorf("%s: panel %q has no size", s.UID, p.Title)
			}
		}
	}
	for _, want := range []string{"nines-fleet", "nines-galera-cluster", "nines-galera-node", "nines-replication", "nines-ndb-overview", "nines-ndb-data-nodes", "nines-ndb-memory-redo", "nines-ndb-transporters", "nines-slo", "nines-backups-jobs", "nines-query-analytics", "nines-drills", "nines-self"} {
		if !uids[want] {
			t.Errorf("dashboard %s missing", want)
		}
	}
}

// TestEveryQueryParses substitutes the variables as Grafana would and
// parses each expression with MetricsQL, the language nines answers in.
func TestEveryQueryParses(t *testing.T) {
	qs := Queries()
	failureOnly := 0
	for _, q := range qs {
		expr := Substitute(q.Expr, testVars)
		if strings.Contains(expr, "$") {
			t.Errorf("%s / %s: a variable is left after substitution: %s", q.Dashboard, q.Panel, expr)
		}
		if _, err := metricsql.Parse(expr); err != nil {
			t.Errorf("%s / %s: %v\n%s", q.Dashboard, q.Panel, err, expr)
		}
		if !strings.Contains(q.Expr, "$cluster") && q.Dashboard != "nines-self" {
			t.Errorf("%s / %s: the query ignores the cluster variable: %s", q.Dashboard, q.Panel, q.Expr)
		}
		if q.FailureOnly {
			failureOnly++
		}
	}
	t.Logf("%d dashboards, %d queries, %d of them failure-only", len(All()), len(qs), failureOnly)
}

func TestSubstitute(t *testing.T) {
	got := Substitute(`rate(x{cluster=~"$cluster", instance=~"${instance}"}[$__rate_interval]) + y[$__range] + z[$__interval]`, testVars)
	want := `rate(x{cluster=~"billing", instance=~"db1:3306|db2:3306"}[4s]) + y[1h] + z[2s]`
	if got != want {
		t.Errorf("got  %s\nwant %s", got, want)
	}
	got = Substitute(`x{instance=~"$instance"}`, Variables{Instance: []string{"127.0.0.1:3306"}})
	if want := `x{instance=~"127\\.0\\.0\\.1:3306"}`; got != want {
		t.Errorf("got %s, want %s", got, want)
	}
}

func TestGetAndFailureOnlyMarkers(t *testing.T) {
	if _, ok := Get("nines-nope"); ok {
		t.Error("Get found a dashboard that does not exist")
	}
	s, ok := Get("nines-galera-cluster")
	if !ok || s.Kind != KindGalera {
		t.Fatalf("Get(nines-galera-cluster) = %v, %v", s.Kind, ok)
	}
	// Panels that filter for a failure (== 0, > 0) are marked, and only
	// those, so the end-to-end test knows which need a drill.
	for _, spec := range All() {
		for _, p := range spec.Panels {
			filters := false
			for _, tg := range p.Targets {
				e, err := metricsql.Parse(Substitute(tg.Expr, testVars))
				if err != nil {
					t.Fatal(err)
				}
				filters = filters || isFilter(e)
			}
			if filters != p.FailureOnly {
				t.Errorf("%s / %s: filters for failures %v, marked failure-only %v", spec.UID, p.Title, filters, p.FailureOnly)
			}
		}
	}
}

// TestValueMappings reads every panel's value mappings back from the
// dashboard JSON Grafana gets: each value the spec maps shows as its text
// in its colour, and the member state panel maps 4 to Synced.
// mappedPanel is a panel's value mappings in the dashboard JSON.
type mappedPanel struct {
	Type        string `json:"type"`
	Title       string `json:"title"`
	FieldConfig struct {
		Defaults struct {
			Mappings []struct {
				Type    string `json:"type"`
				Options map[string]struct {
					Text  string `json:"text"`
					Color string `json:"color"`
				} `json:"options"`
			} `json:"mappings"`
		} `json:"defaults"`
	} `json:"fieldConfig"`
}

func TestValueMappings(t *testing.T) {
	synced := false
	for _, s := range All() {
		b, err := s.JSON(Options{})
		if err != nil {
			t.Fatalf("%s: %v", s.UID, err)
		}
		var d struct {
			Panels []mappedPanel `json:"panels"`
		}
		if err := json.Unmarshal(b, &d); err != nil {
			t.Fatalf("%s: not valid JSON: %v", s.UID, err)
		}
		d.Panels = panelsOnly(t, s, d.Panels, func(p mappedPanel) (string, string) { return p.Type, p.Title })
		if len(d.Panels) != len(s.Panels) {
			t.Fatalf("%s: %d panels in JSON, %d in the spec", s.UID, len(d.Panels), len(s.Panels))
		}
		for i, p := range d.Panels {
			want := s.Panels[i].Mappings
			ms := p.FieldConfig.Defaults.Mappings
			if len(want) == 0 {
				if len(ms) != 0 {
					t.Errorf("%s / %s: mappings %+v, the spec has none", s.UID, p.Title, ms)
				}
				continue
			}
			if len(ms) != 1 || ms[0].Type != "value" || len(ms[0].Options) != len(want) {
				t.Errorf("%s / %s: mappings %+v, want one value mapping of %d values", s.UID, p.Title, ms, len(want))
				continue
			}
			for _, m := range want {
				got, ok := ms[0].Options[m.Value]
				if !ok || got.Text != m.Text || got.Color != m.Color {
					t.Errorf("%s / %s: value %s shows as %+v, want %s in %s", s.UID, p.Title, m.Value, got, m.Text, m.Color)
				}
			}
			if p.Title == "Member state" && ms[0].Options["4"].Text == "Synced" {
				synced = true
			}
		}
	}
	if !synced {
		t.Error("no member state panel maps wsrep_local_state 4 to Synced")
	}
}

// isFilter reports whether e keeps only the series that meet a
// comparison with a number (x == 0, x > 0), or a union or intersection
// led by one: such a query is empty while nothing fails.
func isFilter(e metricsql.Expr) bool {
	if m, ok := e.(*metricsql.MetricExpr); ok {
		// Alerts exist only while something is wrong.
		return strings.HasPrefix(string(m.AppendString(nil)), "ALERTS")
	}
	b, ok := e.(*metricsql.BinaryOpExpr)
	if !ok {
		return false
	}
	switch b.Op {
	case "or":
		return isFilter(b.Left) && isFilter(b.Right)
	case "and", "unless":
		return isFilter(b.Left)
	case "==", "!=", ">", "<", ">=", "<=":
		_, num := b.Right.(*metricsql.NumberExpr)
		return num && !b.Bool
	}
	return false
}

// TestHAProxyRow: the Galera cluster and replication dashboards end with
// the HAProxy row (writer pool, servers up per backend, sessions per
// server, connection errors), every nines_haproxy_* query is in a panel
// marked HAProxy and no other panel is, and the row header sits below
// every panel before it, above every panel in it.
func TestHAProxyRow(t *testing.T) {
	for _, uid := range []string{"nines-galera-cluster", "nines-replication"} {
		s, _ := Get(uid)
		titles := map[string]bool{}
		for _, p := range s.Panels {
			if p.HAProxy {
				titles[p.Title] = true
			}
		}
		for _, want := range []string{"HAProxy writer pool", "Servers up per backend", "Current sessions per server", "Connection errors"} {
			if !titles[want] {
				t.Errorf("%s: no HAProxy panel %q", uid, want)
			}
		}
		b, err := s.JSON(Options{})
		if err != nil {
			t.Fatal(err)
		}
		var d struct {
			Panels []jsonPanel `json:"panels"`
		}
		if err := json.Unmarshal(b, &d); err != nil {
			t.Fatal(err)
		}
		rowY, bottom := -1, 0
		for _, p := range d.Panels {
			switch {
			case p.Type == "row":
				rowY = p.GridPos.Y
				if rowY < bottom {
					t.Errorf("%s: row %q at y=%d overlaps panels down to y=%d", uid, p.Title, rowY, bottom)
				}
			case rowY >= 0 && p.GridPos.Y <= rowY:
				t.Errorf("%s: panel %q at y=%d not below its row at y=%d", uid, p.Title, p.GridPos.Y, rowY)
			}
			bottom = max(bottom, p.GridPos.Y+p.GridPos.H)
		}
		if rowY < 0 {
			t.Errorf("%s: no row header in the JSON", uid)
		}
	}
	for _, q := range Queries() {
		if reads := strings.Contains(q.Expr, "nines_haproxy_"); reads != q.HAProxy {
			t.Errorf("%s / %s: reads nines_haproxy_* %v, marked HAProxy %v", q.Dashboard, q.Panel, reads, q.HAProxy)
		}
	}
}

// metricNames are the metric names expr selects, sorted, each once.
func metricNames(t *testing.T, expr string) []string {
	t.Helper()
	e, err := metricsql.Parse(Substitute(expr, testVars))
	if err != nil {
		t.Fatalf("%s: %v", expr, err)
	}
	seen := map[string]bool{}
	metricsql.VisitAll(e, func(e metricsql.Expr) {
		if m, ok := e.(*metricsql.MetricExpr); ok {
			for _, lfs := range m.LabelFilterss {
				for _, lf := range lfs {
					if lf.Label == "__name__" {
						seen[lf.Value] = true
					}
				}
			}
		}
	})
	return slices.Sorted(maps.Keys(seen))
}

// TestQueryAnalyticsReadsTheDigestSeries: every query of the query
// analytics dashboard reads series the digest collector writes
// (exporter/qan), on the node variable, and the dashboard shows time,
// calls, rows examined against sent, errors, full scans and temporary
// tables on disk.
func TestQueryAnalyticsReadsTheDigestSeries(t *testing.T) {
	s, ok := Get("nines-query-analytics")
	if !ok {
		t.Fatal("no query analytics dashboard")
	}
	written := map[string]bool{qan.MetricEnabled: true}
	for _, f := range qan.Fields {
		written[f.Metric] = true
	}
	shown := map[string]bool{}
	for _, p := range s.Panels {
		for _, tg := range p.Targets {
			names := metricNames(t, tg.Expr)
			if len(names) == 0 {
				t.Errorf("%s: %s reads no series", p.Title, tg.Expr)
			}
			for _, n := range names {
				if !written[n] {
					t.Errorf("%s: %s is not a series exporter/qan writes", p.Title, n)
				}
				shown[n] = true
			}
			if !strings.Contains(tg.Expr, `instance=~"$instance"`) {
				t.Errorf("%s: ignores the node variable: %s", p.Title, tg.Expr)
			}
		}
	}
	for _, want := range []string{qan.MetricSeconds, qan.MetricCalls, qan.MetricRowsExamined, qan.MetricRowsSent, qan.MetricErrors, qan.MetricFullScans, qan.MetricTmpDiskTables, qan.MetricEnabled} {
		if !shown[want] {
			t.Errorf("no panel shows %s", want)
		}
	}
}
