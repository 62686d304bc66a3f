package store

import (
	"context"
	"fmt"
	"math"
	"time"

	"github.com/VictoriaMetrics/VictoriaMetrics/app/vmselect/promql"
	"github.com/VictoriaMetrics/VictoriaMetrics/app/vmselect/searchutil"
)

// Sample is one series of an instant query's result. Labels include
// __name__ when the expression keeps the metric name.
type Sample struct {
	Labels map[string]string
	Value  float64
}

// queryTimeout bounds one in-process query; rule evaluation runs every
// second, so a query that takes longer than this is broken, not slow.
const queryTimeout = 10 * time.Second

// Query evaluates a MetricsQL (PromQL-compatible) expression at one
// instant, as the rule engine needs it. Series whose value is NaN (a
// staleness marker, or no data in the lookback window) are left out.
func (s *Store) Query(ctx context.Context, expr string, at time.Time) ([]Sample, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	ms := at.UnixMilli()
	ec := &promql.EvalConfig{
		Start:              ms,
		End:                ms,
		Step:               int64(time.Minute / time.Millisecond),
		MaxPointsPerSeries: 1,
		MaxSeries:          100000,
		Deadline:           searchutil.NewDeadline(time.Now(), queryTimeout, "nines rule query"),
		RoundDigits:        100,
	}
	rs, err := promql.Exec(nil, ec, expr, true)
	if err != nil {
		return nil, fmt.Errorf("query %q: %w", expr, err)
	}
	out := make([]Sample, 0, len(rs))
	for _, r := range rs {
		if len(r.Values) == 0 || math.IsNaN(r.Values[len(r.Values)-1]) {
			continue
		}
		labels := make(map[string]string, len(r.MetricName.Tags)+1)
		if len(r.MetricName.MetricGroup) > 0 {
			labels["__name__"] = string(r.MetricName.MetricGroup)
		}
		for _, t := range r.MetricName.Tags {
			labels[string(t.Key)] = string(t.Value)
		}
		out = append(out, Sample{Labels: labels, Value: r.Values[len(r.Values)-1]})
	}
	return out, nil
}
