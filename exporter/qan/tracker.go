package qan

import (
	"sort"

	"github.com/nines-project/nines/internal/metric"
)

// Delta is what one digest did on one node during one interval.
type Delta struct {
	Key
	Totals
}

// Tracker turns successive reads of one node's summary table into
// per-interval deltas. It is not safe for concurrent use: one node's
// collector owns it.
type Tracker struct {
	prev map[Key]Row
}

// Observe takes a complete read of the summary table and returns the
// deltas since the previous read, busiest first by time, at most topN
// (topN ≤ 0: all). The first read only sets the baseline: totals since
// the server started are not an interval's work. A digest whose counters
// restarted (evicted and re-created, table truncated, server restarted)
// counts from zero again: its delta is its new totals.
func (t *Tracker) Observe(rows []Row, topN int) []Delta {
	first := t.prev == nil
	cur := make(map[Key]Row, len(rows))
	var out []Delta
	for _, r := range rows {
		cur[r.Key] = r
		if first {
			continue
		}
		p, seen := t.prev[r.Key]
		d := r.Totals
		if seen && p.FirstSeen == r.FirstSeen && r.Calls >= p.Calls {
			d = sub(r.Totals, p.Totals)
		}
		if d.Calls <= 0 && d.Seconds <= 0 && d.Errors <= 0 {
			continue
		}
		out = append(out, Delta{Key: r.Key, Totals: d})
	}
	t.prev = cur
	sort.Slice(out, func(i, j int) bool {
		if out[i].Seconds != out[j].Seconds {
			return out[i].Seconds > out[j].Seconds
		}
		if out[i].Calls != out[j].Calls {
			return out[i].Calls > out[j].Calls
		}
		return out[i].Digest < out[j].Digest
	})
	if topN > 0 && len(out) > topN {
		out = out[:topN]
	}
	return out
}

// Reset forgets the baseline (the node went away: its next read starts
// a new one).
func (t *Tracker) Reset() { t.prev = nil }

// sub is a - b, each counter floored at zero: a counter read while a
// statement ends may lag another by one statement.
func sub(a, b Totals) Totals {
	f := func(x, y float64) float64 {
		if x < y {
			return 0
		}
		return x - y
	}
	return Totals{Calls: f(a.Calls, b.Calls), Seconds: f(a.Seconds, b.Seconds), RowsExamined: f(a.RowsExamined, b.RowsExamined),
		RowsSent: f(a.RowsSent, b.RowsSent), Errors: f(a.Errors, b.Errors), Warnings: f(a.Warnings, b.Warnings),
		NoIndexUsed: f(a.NoIndexUsed, b.NoIndexUsed), FullScans: f(a.FullScans, b.FullScans), TmpDiskTables: f(a.TmpDiskTables, b.TmpDiskTables)}
}

// Series names: each sample is one interval's delta, not a running
// total, so a window's sum is sum_over_time(name[window]) and a digest
// that left the top N simply has no sample (zero) for that interval.
const (
	MetricSeconds       = "nines_query_digest_seconds"
	MetricCalls         = "nines_query_digest_calls"
	MetricRowsExamined  = "nines_query_digest_rows_examined"
	MetricRowsSent      = "nines_query_digest_rows_sent"
	MetricErrors        = "nines_query_digest_errors"
	MetricWarnings      = "nines_query_digest_warnings"
	MetricNoIndexUsed   = "nines_query_digest_no_index_used"
	MetricFullScans     = "nines_query_digest_full_scans"
	MetricTmpDiskTables = "nines_query_digest_tmp_disk_tables"
	// MetricEnabled is 1 when the node gives digests, 0 when
	// performance_schema (or its digest consumer) is off.
	MetricEnabled = "nines_query_digests_enabled"
)

// Field is one counter of Totals with its series name.
type Field struct {
	Metric, Help string
	Get          func(*Totals) float64
}

// Fields lists the counters in the order the API and console show them.
var Fields = []Field{
	{MetricSeconds, "Seconds statements of this digest ran during the collect interval.", func(t *Totals) float64 { return t.Seconds }},
	{MetricCalls, "Statements of this digest that ended during the collect interval.", func(t *Totals) float64 { return t.Calls }},
	{MetricRowsExamined, "Rows statements of this digest examined during the collect interval.", func(t *Totals) float64 { return t.RowsExamined }},
	{MetricRowsSent, "Rows statements of this digest sent during the collect interval.", func(t *Totals) float64 { return t.RowsSent }},
	{MetricErrors, "Statements of this digest that ended with an error during the collect interval.", func(t *Totals) float64 { return t.Errors }},
	{MetricWarnings, "Warnings statements of this digest raised during the collect interval.", func(t *Totals) float64 { return t.Warnings }},
	{MetricNoIndexUsed, "Statements of this digest that used no index, during the collect interval.", func(t *Totals) float64 { return t.NoIndexUsed }},
	{MetricFullScans, "Full scans of a first table by statements of this digest, during the collect interval.", func(t *Totals) float64 { return t.FullScans }},
	{MetricTmpDiskTables, "Temporary tables on disk created by statements of this digest, during the collect interval.", func(t *Totals) float64 { return t.TmpDiskTables }},
}

// Metrics are the series of one interval: one sample per counter per
// digest in deltas (the top N), labelled cluster, instance, schema and
// digest. At most len(deltas)×9+1 series per node per interval, whatever
// the workload: that is the cardinality bound.
func Metrics(cluster, instance string, enabled bool, deltas []Delta) []metric.Metric {
	s := metric.Set{Const: []metric.Label{{Name: "cluster", Value: cluster}, {Name: "instance", Value: instance}}}
	on := 0.0
	if enabled {
		on = 1
	}
	s.Add(MetricEnabled, "1 when the node gives statement digests (performance_schema and its digest consumer on), 0 when not.", metric.Gauge, on)
	for i := range deltas {
		d := &deltas[i]
		for _, f := range Fields {
			s.Add(f.Metric, f.Help, metric.Gauge, f.Get(&d.Totals), "schema", d.Schema, "digest", d.Digest)
		}
	}
	return s.Metrics
}
