// Package alertmanager delivers nines' alerts to Alertmanager: either the
// one embedded in the appliance (the default), assembled from Alertmanager's
// own packages and configured by a standard alertmanager.yml, or an existing
// Alertmanager cluster reached over its API v2. Both are a Sender, so the
// rules engine does not know which one it feeds.
//
// Alertmanager v0.35's app package cannot be built as a dependency (its UI
// assets are not in the module), so Embedded wires the lower-level packages
// the way app/app.go and app/reloader.go do upstream: config, nflog,
// silence, provider/mem, inhibit, timeinterval, notify, dispatch and api.
package alertmanager

import (
	"context"
	"time"

	"github.com/prometheus/common/model"

	"github.com/nines-project/nines"
)

// Sender delivers alerts to Alertmanager. Send is safe for concurrent use.
// Alerts that are neither firing nor resolved (pending ones, inactive ones
// that never fired) are not sent.
type Sender interface {
	Send(ctx context.Context, alerts []nines.Alert) error
}

var (
	_ Sender = (*Embedded)(nil)
	_ Sender = (*External)(nil)
)

// DefaultValidity is how long Alertmanager keeps a firing alert firing when
// nines stops re-sending it (a stopped rules engine, a deleted rule). It is
// Prometheus' own choice, four times max(evaluation interval, resend delay)
// with its 1 m resend delay; a sender that re-sends every evaluation
// interval I may pass 4×I to let forgotten alerts expire sooner, but never
// less than 4× the period at which it actually re-sends, or alerts would
// flap resolved between two sends.
const DefaultValidity = 4 * time.Minute

// toModel maps nines alerts to Alertmanager's model the way Prometheus'
// notifier does: a firing alert starts when it fired and ends at
// now+validity unless it is sent again; a resolved alert ends when it
// resolved. Pending alerts and inactive ones that never fired are dropped.
// Labels and annotations with empty values are dropped, as Alertmanager's
// API does, since an empty label is the same as no label.
func toModel(alerts []nines.Alert, now time.Time, validity time.Duration) []model.Alert {
	out := make([]model.Alert, 0, len(alerts))
	for _, a := range alerts {
		m := model.Alert{
			Labels:      labelSet(a.Labels),
			Annotations: labelSet(a.Annotations),
			StartsAt:    a.FiredAt,
		}
		switch {
		case a.State == nines.AlertFiring:
			m.EndsAt = now.Add(validity)
		case !a.ResolvedAt.IsZero() && !a.FiredAt.IsZero():
			m.EndsAt = a.ResolvedAt
		default:
			continue
		}
		if m.StartsAt.IsZero() {
			// A firing alert without FiredAt is the caller's bug; starting
			// it when it became active keeps it valid and honest.
			m.StartsAt = a.ActiveAt
		}
		out = append(out, m)
	}
	return out
}

// labelSet converts a label map, dropping empty values.
func labelSet(m map[string]string) model.LabelSet {
	ls := make(model.LabelSet, len(m))
	for k, v := range m {
		if v != "" {
			ls[model.LabelName(k)] = model.LabelValue(v)
		}
	}
	return ls
}
