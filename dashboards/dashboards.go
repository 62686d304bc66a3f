// Package dashboards generates nines' Grafana dashboards with
// grafana-foundation-sdk: the fleet overview, a Galera cluster, a Galera
// node, replication, NDB (overview, data nodes, memory and redo,
// transporters), SLO and error budget, backups and jobs, query analytics,
// drills, and nines itself. It also provisions them into a Grafana (provision.go).
//
// Each dashboard is written here as data (Spec, Panel, Target) and only
// then translated into the SDK's builders, so the queries can be listed
// and checked (Queries) without parsing Grafana's JSON: the unit tests
// parse every expression with MetricsQL and the end-to-end test runs each
// one against nines monitoring a sandbox.
//
// Every query reads only series nines writes into its store (exporter,
// probe/, the appliance's self metrics, the remediator, backups,
// and the SLO recording rules of rules/slo), and filters by the cluster
// and instance variables.
package dashboards

import (
	"encoding/json"
	"fmt"
	"sort"
	"strings"
)

// DatasourceUID is the uid of the Prometheus data source provisioning
// creates in Grafana; it is the default of every dashboard's datasource
// variable, so an exported dashboard imported by hand works with any
// Prometheus data source that points at nines.
const DatasourceUID = "nines"

// Kind says which clusters a dashboard is about: its panels have data
// only where such a cluster is monitored.
type Kind string

const (
	KindAny         Kind = ""
	KindGalera      Kind = "galera"
	KindReplication Kind = "replication"
	KindNDB         Kind = "ndb"
)

// PanelType is the Grafana visualisation of a panel.
type PanelType string

const (
	TimeSeries    PanelType = "timeseries"
	Stat          PanelType = "stat"
	Table         PanelType = "table"
	StateTimeline PanelType = "state-timeline"
)

// Spec is one dashboard.
type Spec struct {
	UID         string
	Title       string
	Description string
	Kind        Kind
	// AfterDrill marks a dashboard whose every panel has data only once a
	// failure drill (`nines drill`) has ended on the cluster: the
	// end-to-end test checks it after one, not on a quiet cluster.
	AfterDrill bool
	Panels     []Panel
}

// Panel is one panel. Unit is Grafana's unit id (s, percent,
// percentunit, bytes, ops, short, ...).
type Panel struct {
	Type        PanelType
	Title       string
	Description string
	Unit        string
	Min, Max    *float64
	// Steps are the thresholds, lowest first; the first has no value
	// (Grafana's base step).
	Steps    []Step
	Mappings []Mapping
	Targets  []Target
	// FailureOnly marks panels that show something only while or after
	// something fails (a node down, a failed write): a healthy cluster
	// leaves them empty, and the end-to-end test checks them after a
	// drill.
	FailureOnly bool
	// HAProxy marks panels about the HAProxy in front of a cluster
	// (nines_haproxy_*): they have data only for clusters with an
	// haproxy key, and are empty for the others. The dashboards are the
	// same for every deployment, so they are not left out; they sit in
	// their own row, which says so.
	HAProxy bool
	// Row starts a row titled Row before the panel when the previous
	// panel is in another one (Grafana's row header, not collapsed).
	Row     string
	Width   uint32 // of 24 columns; default 8
	Height  uint32 // default 6
	Stacked bool
}

// Target is one query of a panel.
type Target struct {
	Expr    string
	Legend  string
	Instant bool // a table of current values rather than a range
}

// Step is a threshold: from Value up the colour is Color. The base step
// has a nil Value.
type Step struct {
	Value *float64
	Color string
}

// Mapping shows a value as text in a colour (wsrep_local_state 4 →
// Synced, green).
type Mapping struct {
	Value string
	Text  string
	Color string
}

// Annotation is the dashboards' job annotation: a mark on every time
// series panel where a job (repair, backup, verification) of a selected
// cluster ended, titled with its runbook and final state. It counts
// ended jobs rather than sampling nines_job_running, which a job shorter
// than the 1 s sample interval never sets in the store; a window of a
// minute evaluated every 30 s catches every end.
var Annotation = Target{
	Expr:   `sum by (cluster, runbook, state) (increase(nines_job_total{cluster=~"$cluster"}[1m])) > 0`,
	Legend: "{{runbook}} {{state}} on {{cluster}}",
}

// AnnotationName is the annotation's name in the dashboards.
const AnnotationName = "nines jobs"

// annotationStep is how often Grafana evaluates Annotation.
const annotationStep = "30s"

// All returns every dashboard, in the order they are listed.
func All() []Spec {
	return []Spec{fleet(), galeraCluster(), galeraNode(), replication(), ndbOverview(), ndbDataNodes(), ndbMemoryRedo(), ndbTransporters(), slo(), backupsJobs(), queryAnalytics(), drills(), self()}
}

// Get returns the dashboard with uid.
func Get(uid string) (Spec, bool) {
	for _, s := range All() {
		if s.UID == uid {
			return s, true
		}
	}
	return Spec{}, false
}

// Options are the choices a deployment makes about its dashboards.
type Options struct {
	// Cluster is the cluster variable's default selection; empty selects
	// all clusters.
	Cluster string
}

// JSON returns the Grafana dashboard model of s, as Grafana's
// dashboard import and POST /api/dashboards/db take it.
func (s Spec) JSON(o Options) ([]byte, error) {
	d, err := s.build(o)
	if err != nil {
		return nil, err
	}
	b, err := json.MarshalIndent(d, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("dashboard %s: encode: %w", s.UID, err)
	}
	return b, nil
}

// Query is one query of a generated dashboard, as Queries lists them.
type Query struct {
	Dashboard string // uid
	Kind      Kind
	Panel     string // panel title, or "annotation: ..." for the job annotation
	Expr      string
	Instant   bool
	// FailureOnly: the panel shows data only while or after a failure.
	FailureOnly bool
	// HAProxy: the panel shows data only for a cluster behind HAProxy.
	HAProxy bool
	// AfterDrill: the dashboard shows data only after a drill.
	AfterDrill bool
}

// Queries returns every panel query and annotation query of every
// dashboard, in dashboard and panel order.
func Queries() []Query {
	var out []Query
	for _, s := range All() {
		for _, p := range s.Panels {
			for _, t := range p.Targets {
				out = append(out, Query{Dashboard: s.UID, Kind: s.Kind, Panel: p.Title, Expr: t.Expr, Instant: t.Instant, FailureOnly: p.FailureOnly, HAProxy: p.HAProxy, AfterDrill: s.AfterDrill})
			}
		}
		out = append(out, Query{Dashboard: s.UID, Kind: s.Kind, Panel: "annotation: " + AnnotationName, Expr: Annotation.Expr, FailureOnly: true, AfterDrill: s.AfterDrill})
	}
	return out
}

// Variables are the values Substitute puts in for Grafana's variables.
type Variables struct {
	Cluster  string   // one cluster name, or a regular expression
	Instance []string // instance label values; empty means all (.*)
	// RateInterval, Interval and Range are PromQL durations (5s, 1m, 2m).
	RateInterval, Interval, Range string
}

// Substitute expands the dashboard variables in expr as Grafana would
// before sending it to the data source: $cluster, $instance (several
// values joined as a regular expression alternation, as Grafana formats
// a multi-value variable for Prometheus), $__rate_interval, $__interval
// and $__range, each also in the ${name} form.
func Substitute(expr string, v Variables) string {
	inst := ".*"
	if len(v.Instance) > 0 {
		quoted := make([]string, len(v.Instance))
		for i, s := range v.Instance {
			// Inside a PromQL string a regexp's backslash is written twice.
			quoted[i] = strings.ReplaceAll(regexpQuote(s), `\`, `\\`)
		}
		sort.Strings(quoted)
		inst = strings.Join(quoted, "|")
	}
	pairs := []string{
		"__rate_interval", v.RateInterval,
		"__interval", v.Interval,
		"__range", v.Range,
		"cluster", v.Cluster,
		"instance", inst,
	}
	r := make([]string, 0, 2*len(pairs))
	for i := 0; i < len(pairs); i += 2 {
		r = append(r, "${"+pairs[i]+"}", pairs[i+1], "$"+pairs[i], pairs[i+1])
	}
	return strings.NewReplacer(r...).Replace(expr)
}

// regexpQuote escapes the characters of an instance address that mean
// something in a regular expression (addresses hold dots and colons).
func regexpQuote(s string) string {
	var b strings.Builder
	for _, c := range s {
		if strings.ContainsRune(`\.+*?()|[]{}^$`, c) {
			b.WriteByte('\\')
		}
		b.WriteRune(c)
	}
	return b.String()
}

// Helpers for writing the specs.

func f(v float64) *float64 { return &v }

// steps builds thresholds from a base colour and (value, colour) pairs.
func steps(base string, more ...any) []Step {
	out := []Step{{Color: base}}
	for i := 0; i+1 < len(more); i += 2 {
		var v float64
		switch n := more[i].(type) {
		case int:
			v = float64(n)
		case float64:
			v = n
		default:
			panic(fmt.Sprintf("steps: value %v is not a number", more[i]))
		}
		out = append(out, Step{Value: f(v), Color: more[i+1].(string)})
	}
	return out
}

// Value mappings shared by several dashboards.
var (
	upDown       = []Mapping{{"1", "Up", "green"}, {"0", "Down", "red"}}
	onOff        = []Mapping{{"1", "ON", "green"}, {"0", "OFF", "red"}}
	okFailed     = []Mapping{{"1", "OK", "green"}, {"0", "Failed", "red"}}
	runningStop  = []Mapping{{"1", "Running", "green"}, {"0", "Stopped", "red"}}
	haltedActive = []Mapping{{"0", "Active", "green"}, {"1", "Halted", "red"}}
	// wsrep_local_state, as Galera documents the member states.
	wsrepLocalState = []Mapping{
		{"1", "Joining", "blue"}, {"2", "Donor/Desynced", "orange"},
		{"3", "Joined", "yellow"}, {"4", "Synced", "green"},
	}
	clusterStatus = []Mapping{{"1", "Primary", "green"}, {"0", "non-Primary", "red"}}
)

// Selectors every query uses, so a dashboard follows its variables.
const (
	selC  = `cluster=~"$cluster"`
	selCI = `cluster=~"$cluster", instance=~"$instance"`
)
