package rules

import (
	"context"
	"maps"
	"sync"
	"time"

	"github.com/prometheus/prometheus/model/rulefmt"
)

// RecordingRule evaluates an expression and stores the result under a new
// metric name.
type RecordingRule struct {
	spec rulefmt.Rule

	mu      sync.Mutex
	health  health
	lastErr string
	lastRun time.Time
	evalDur time.Duration
}

func newRecordingRule(r rulefmt.Rule) *RecordingRule { return &RecordingRule{spec: r} }

// Name is the recorded metric name.
func (r *RecordingRule) Name() string { return r.spec.Record }

func (r *RecordingRule) key() string {
	return "record\x00" + r.spec.Record + "\x00" + r.spec.Expr + "\x00" + labelString(r.spec.Labels)
}

// eval returns the samples to store: each result series renamed and
// given the rule's labels.
func (r *RecordingRule) eval(ctx context.Context, ts time.Time, q Querier) ([]Sample, error) {
	start := time.Now()
	res, err := q.Query(ctx, r.spec.Expr, ts)
	r.mu.Lock()
	defer r.mu.Unlock()
	r.lastRun, r.evalDur = ts, time.Since(start)
	if err != nil {
		r.health, r.lastErr = healthErr, err.Error()
		return nil, err
	}
	out := make([]Sample, 0, len(res))
	for _, s := range res {
		ls := maps.Clone(s.Labels)
		ls["__name__"] = r.spec.Record
		for k, v := range r.spec.Labels {
			ls[k] = v
		}
		out = append(out, Sample{Labels: ls, Value: s.Value})
	}
	r.health, r.lastErr = healthOK, ""
	return out, nil
}
