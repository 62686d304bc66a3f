package appliance

import (
	"context"
	"testing"

	"github.com/nines-project/nines"
)

type recordingSender struct{ got []nines.Alert }

func (r *recordingSender) Send(_ context.Context, alerts []nines.Alert) error {
	r.got = append(r.got, alerts...)
	return nil
}

// TestShardSendsOnlyOwnedAlerts: a sharded appliance evaluates the rules
// over the whole fleet but sends only its own clusters' alerts (and
// those of no cluster); the others are their owners' to send.
func TestShardSendsOnlyOwnedAlerts(t *testing.T) {
	rec := &recordingSender{}
	owns := map[string]bool{"billing": true}
	s := &countingSender{next: rec, keep: func(l map[string]string) bool {
		c, ok := l["cluster"]
		return !ok || owns[c]
	}}
	alerts := []nines.Alert{
		{Labels: map[string]string{"alertname": "GaleraNodeDown", "cluster": "billing"}},
		{Labels: map[string]string{"alertname": "GaleraNodeDown", "cluster": "iptv"}},
		{Labels: map[string]string{"alertname": "NinesExternalStoreDown"}},
	}
	if err := s.Send(context.Background(), alerts); err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, a := range rec.got {
		got = append(got, a.Labels["alertname"]+"/"+a.Labels["cluster"])
	}
	if len(got) != 2 || got[0] != "GaleraNodeDown/billing" || got[1] != "NinesExternalStoreDown/" {
		t.Errorf("sent %v, want billing's alert and the one of no cluster", got)
	}
	if n := s.sent.Load(); n != 2 {
		t.Errorf("nines_notifications_sent_total counts %d, want 2", n)
	}
	rec.got = nil
	if err := s.Send(context.Background(), alerts[1:2]); err != nil || len(rec.got) != 0 {
		t.Errorf("only another's alert: sent %v, err %v; want nothing sent", rec.got, err)
	}
}
