package rules

import (
	"strconv"
	"time"

	"github.com/nines-project/nines"
)

// The shapes of Prometheus' /api/v1/rules and /api/v1/alerts, so Grafana
// and other Prometheus clients read nines' rules and alerts unchanged.

// APIAlert is one alert as the Prometheus API shows it.
type APIAlert struct {
	Labels      map[string]string `json:"labels"`
	Annotations map[string]string `json:"annotations"`
	State       string            `json:"state"`
	ActiveAt    *time.Time        `json:"activeAt,omitempty"`
	KeepFiring  bool              `json:"keepFiringSince,omitempty"`
	Value       string            `json:"value"`
}

// APIRule is one rule of a group.
type APIRule struct {
	Type           string            `json:"type"` // alerting | recording
	Name           string            `json:"name"`
	Query          string            `json:"query"`
	Duration       float64           `json:"duration,omitempty"`
	KeepFiringFor  float64           `json:"keepFiringFor,omitempty"`
	Labels         map[string]string `json:"labels,omitempty"`
	Annotations    map[string]string `json:"annotations,omitempty"`
	State          string            `json:"state,omitempty"`
	Alerts         []APIAlert        `json:"alerts,omitempty"`
	Health         string            `json:"health"`
	LastError      string            `json:"lastError,omitempty"`
	EvaluationTime float64           `json:"evaluationTime"`
	LastEvaluation time.Time         `json:"lastEvaluation"`
}

// APIGroup is one rule group.
type APIGroup struct {
	Name           string    `json:"name"`
	File           string    `json:"file"`
	Interval       float64   `json:"interval"`
	Rules          []APIRule `json:"rules"`
	EvaluationTime float64   `json:"evaluationTime"`
	LastEvaluation time.Time `json:"lastEvaluation"`
}

// ToAPIAlert converts an alert to the API shape.
func ToAPIAlert(a nines.Alert) APIAlert {
	at := a.ActiveAt
	return APIAlert{Labels: a.Labels, Annotations: a.Annotations, State: a.State.String(), ActiveAt: &at,
		Value: strconv.FormatFloat(a.Value, 'e', -1, 64)}
}

// APIGroups describes every loaded group for /api/v1/rules. kind filters
// by rule type ("alert", "record" or "" for both).
func (m *Manager) APIGroups(kind string) []APIGroup {
	m.mu.RLock()
	groups := m.groups
	m.mu.RUnlock()
	out := make([]APIGroup, 0, len(groups))
	for _, g := range groups {
		g.mu.Lock()
		ag := APIGroup{Name: g.Name, File: g.Source, Interval: g.Interval.Seconds(), Rules: []APIRule{},
			EvaluationTime: g.evalDur.Seconds(), LastEvaluation: g.lastRun}
		g.mu.Unlock()
		for _, r := range g.rules {
			switch r := r.(type) {
			case *AlertingRule:
				if kind == "record" {
					continue
				}
				alerts := r.active()
				state := "inactive"
				apiAlerts := make([]APIAlert, 0, len(alerts))
				for _, a := range alerts {
					apiAlerts = append(apiAlerts, ToAPIAlert(a))
					if a.State == nines.AlertFiring || state == "inactive" {
						state = a.State.String()
					}
				}
				r.mu.Lock()
				ag.Rules = append(ag.Rules, APIRule{Type: "alerting", Name: r.spec.Alert, Query: r.spec.Expr,
					Duration: r.hold.Seconds(), KeepFiringFor: r.keepFiringFor.Seconds(), Labels: r.spec.Labels,
					Annotations: r.spec.Annotations, State: state, Alerts: apiAlerts, Health: healthOf(r.health),
					LastError: r.lastErr, EvaluationTime: r.evalDur.Seconds(), LastEvaluation: r.lastRun})
				r.mu.Unlock()
			case *RecordingRule:
				if kind == "alert" {
					continue
				}
				r.mu.Lock()
				ag.Rules = append(ag.Rules, APIRule{Type: "recording", Name: r.spec.Record, Query: r.spec.Expr,
					Labels: r.spec.Labels, Health: healthOf(r.health), LastError: r.lastErr,
					EvaluationTime: r.evalDur.Seconds(), LastEvaluation: r.lastRun})
				r.mu.Unlock()
			}
		}
		out = append(out, ag)
	}
	return out
}

func healthOf(h health) string {
	if h == "" {
		return string(healthUnknown)
	}
	return string(h)
}
