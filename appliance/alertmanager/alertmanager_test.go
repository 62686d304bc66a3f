package alertmanager

import (
	"testing"
	"time"

	"github.com/prometheus/common/model"

	"github.com/nines-project/nines"
)

func TestToModel(t *testing.T) {
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	active, fired, resolvedAt := now.Add(-3*time.Minute), now.Add(-2*time.Minute), now.Add(-time.Minute)
	labels := map[string]string{"alertname": "GaleraNodeDown", "cluster": "billing", "empty": ""}
	want := model.LabelSet{"alertname": "GaleraNodeDown", "cluster": "billing"}

	for _, tc := range []struct {
		name     string
		alert    nines.Alert
		sent     bool
		startsAt time.Time
		endsAt   time.Time
	}{
		{"firing ends after the validity unless re-sent",
			nines.Alert{State: nines.AlertFiring, ActiveAt: active, FiredAt: fired},
			true, fired, now.Add(4 * time.Second)},
		{"firing again after a resolution",
			nines.Alert{State: nines.AlertFiring, ActiveAt: active, FiredAt: fired, ResolvedAt: resolvedAt},
			true, fired, now.Add(4 * time.Second)},
		{"resolved ends when it resolved",
			nines.Alert{State: nines.AlertInactive, ActiveAt: active, FiredAt: fired, ResolvedAt: resolvedAt},
			true, fired, resolvedAt},
		{"pending is not sent",
			nines.Alert{State: nines.AlertPending, ActiveAt: active},
			false, time.Time{}, time.Time{}},
		{"resolved without having fired is not sent",
			nines.Alert{State: nines.AlertInactive, ActiveAt: active, ResolvedAt: resolvedAt},
			false, time.Time{}, time.Time{}},
		{"inactive and never resolved is not sent",
			nines.Alert{State: nines.AlertInactive},
			false, time.Time{}, time.Time{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.alert.Labels = labels
			tc.alert.Annotations = map[string]string{"summary": "db2 is down"}
			got := toModel([]nines.Alert{tc.alert}, now, 4*time.Second)
			if !tc.sent {
				if len(got) != 0 {
					t.Fatalf("sent %+v, want nothing", got)
				}
				return
			}
			if len(got) != 1 {
				t.Fatalf("sent %d alerts, want 1", len(got))
			}
			m := got[0]
			if !m.Labels.Equal(want) || m.Annotations["summary"] != "db2 is down" {
				t.Errorf("labels %v annotations %v, want %v and the summary", m.Labels, m.Annotations, want)
			}
			if !m.StartsAt.Equal(tc.startsAt) || !m.EndsAt.Equal(tc.endsAt) {
				t.Errorf("%s–%s, want %s–%s", m.StartsAt, m.EndsAt, tc.startsAt, tc.endsAt)
			}
		})
	}
}
