package rules

import (
	"context"
	"fmt"
	"maps"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/prometheus/model/rulefmt"

	"github.com/nines-project/nines"
)

// resolvedRetention is how long a resolved alert is kept and re-sent, so
// Alertmanager learns of the resolution even if a send failed (the value
// Prometheus uses).
const resolvedRetention = 15 * time.Minute

// AlertingRule is one alert rule and the alerts it has produced.
// Transitions (all at evaluation times):
//
//	(absent)  → pending   the expression returns the series
//	pending   → firing    it kept returning it for `for` (at once if for is 0)
//	pending   → (absent)  it stopped before `for` elapsed
//	firing    → inactive  it stopped, and keep_firing_for has passed; the
//	                      resolved alert is kept resolvedRetention and re-sent
type AlertingRule struct {
	spec          rulefmt.Rule
	hold          time.Duration
	keepFiringFor time.Duration

	mu      sync.Mutex
	alerts  map[string]*alert // by fingerprint of the final labels
	health  health
	lastErr string
	lastRun time.Time
	evalDur time.Duration
}

// alert is the rule-side state of one alert.
type alert struct {
	nines.Alert
	keepFiringSince time.Time
	lastSent        time.Time
	sentState       nines.AlertState
}

func newAlertingRule(r rulefmt.Rule) *AlertingRule {
	return &AlertingRule{spec: r, hold: time.Duration(r.For), keepFiringFor: time.Duration(r.KeepFiringFor), alerts: map[string]*alert{}}
}

// Name is the alert name.
func (r *AlertingRule) Name() string { return r.spec.Alert }

// key identifies the rule across reloads, so a reload that leaves a rule
// unchanged keeps its pending and firing alerts.
func (r *AlertingRule) key() string {
	return "alert\x00" + r.spec.Alert + "\x00" + r.spec.Expr + "\x00" + labelString(r.spec.Labels)
}

// eval runs the rule at ts. On a query error the alerts stay as they were:
// a store hiccup must neither resolve a real page nor raise a new one.
func (r *AlertingRule) eval(ctx context.Context, ts time.Time, q Querier, ex expander) error {
	start := time.Now()
	res, err := q.Query(ctx, r.spec.Expr, ts)
	r.mu.Lock()
	defer r.mu.Unlock()
	r.lastRun, r.evalDur = ts, time.Since(start)
	if err != nil {
		r.health, r.lastErr = healthErr, err.Error()
		return err
	}

	seen := make(map[string]bool, len(res))
	for _, s := range res {
		series := maps.Clone(s.Labels)
		delete(series, "__name__")
		final := maps.Clone(series)
		for k, v := range r.spec.Labels {
			final[k] = ex.expand("__alert_"+r.spec.Alert, v, series, s.Value)
		}
		final["alertname"] = r.spec.Alert
		fp := labelString(final)
		if seen[fp] {
			r.health, r.lastErr = healthErr, "vector contains metrics with the same labelset after applying alert labels"
			return fmt.Errorf("alert %s: %s", r.spec.Alert, r.lastErr)
		}
		seen[fp] = true
		ann := make(map[string]string, len(r.spec.Annotations))
		for k, v := range r.spec.Annotations {
			ann[k] = ex.expand("__alert_"+r.spec.Alert, v, series, s.Value)
		}
		a := r.alerts[fp]
		if a == nil || a.State == nines.AlertInactive {
			a = &alert{Alert: nines.Alert{Labels: final, State: nines.AlertPending, ActiveAt: ts}}
			r.alerts[fp] = a
		}
		a.Annotations, a.Value, a.keepFiringSince = ann, s.Value, time.Time{}
	}

	for fp, a := range r.alerts {
		switch {
		case seen[fp]:
			if a.State == nines.AlertPending && ts.Sub(a.ActiveAt) >= r.hold {
				a.State, a.FiredAt = nines.AlertFiring, ts
			}
		case a.State == nines.AlertPending:
			delete(r.alerts, fp)
		case a.State == nines.AlertFiring:
			if r.keepFiringFor > 0 {
				if a.keepFiringSince.IsZero() {
					a.keepFiringSince = ts
				}
				if ts.Sub(a.keepFiringSince) < r.keepFiringFor {
					continue
				}
			}
			a.State, a.ResolvedAt = nines.AlertInactive, ts
		case a.State == nines.AlertInactive && ts.Sub(a.ResolvedAt) > resolvedRetention:
			delete(r.alerts, fp)
		}
	}
	r.health, r.lastErr = healthOK, ""
	return nil
}

// due returns the alerts to send at ts: those whose state changed since
// they were last sent, and the rest again every resend interval, so that
// Alertmanager never lets a live alert expire.
func (r *AlertingRule) due(ts time.Time, resend time.Duration) []nines.Alert {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []nines.Alert
	for _, a := range r.alerts {
		if a.State == nines.AlertPending {
			continue
		}
		if a.sentState == a.State && ts.Sub(a.lastSent) < resend {
			continue
		}
		a.lastSent, a.sentState = ts, a.State
		out = append(out, cloneAlert(a.Alert))
	}
	return out
}

// active returns copies of the pending and firing alerts.
func (r *AlertingRule) active() []nines.Alert {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []nines.Alert
	for _, a := range r.alerts {
		if a.State != nines.AlertInactive {
			out = append(out, cloneAlert(a.Alert))
		}
	}
	sort.Slice(out, func(i, j int) bool { return labelString(out[i].Labels) < labelString(out[j].Labels) })
	return out
}

// adopt takes over the alerts of the same rule from before a reload.
func (r *AlertingRule) adopt(old *AlertingRule) {
	old.mu.Lock()
	defer old.mu.Unlock()
	r.mu.Lock()
	defer r.mu.Unlock()
	r.alerts = old.alerts
	old.alerts = map[string]*alert{}
}

func cloneAlert(a nines.Alert) nines.Alert {
	a.Labels = maps.Clone(a.Labels)
	a.Annotations = maps.Clone(a.Annotations)
	return a
}

// labelString is a canonical form of a label set, used as fingerprint.
func labelString(ls map[string]string) string {
	keys := make([]string, 0, len(ls))
	for k := range ls {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	b.WriteByte('{')
	for i, k := range keys {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, "%s=%q", k, ls[k])
	}
	b.WriteByte('}')
	return b.String()
}
