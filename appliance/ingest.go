package appliance

import (
	"strings"
	"sync"

	"github.com/nines-project/nines"
	"github.com/nines-project/nines/appliance/store"
	"github.com/nines-project/nines/exporter"
)

// ingester writes each snapshot's metrics to the store. When a series that
// a node reported before is missing from its next snapshot (the node went
// down, a replica channel was removed), it writes a staleness marker so
// queries stop showing the old value at once, as Prometheus does after a
// failed scrape.
type ingester struct {
	store *store.Store

	mu   sync.Mutex
	last map[string]map[string][]store.Label // instance → series key → labels
}

func newIngester(s *store.Store) *ingester {
	return &ingester{store: s, last: map[string]map[string][]store.Label{}}
}

// observe is the exporter's sink. A snapshot whose state changed is made
// visible to queries at once, so the rules and the API see a failure
// without waiting for the next periodic flush.
func (in *ingester) observe(snap *nines.Snapshot, changed bool) {
	ms := exporter.SnapshotMetrics(snap)
	ts := snap.Time.UnixMilli()
	series := make([]store.Series, 0, len(ms))
	keys := make(map[string][]store.Label, len(ms))
	var b strings.Builder
	for _, m := range ms {
		labels := make([]store.Label, 0, len(m.Labels)+1)
		labels = append(labels, store.Label{Name: "__name__", Value: m.Name})
		b.Reset()
		b.WriteString(m.Name)
		for _, l := range m.Labels {
			labels = append(labels, store.Label{Name: l.Name, Value: l.Value})
			b.WriteByte(0xff)
			b.WriteString(l.Name)
			b.WriteByte(0xfe)
			b.WriteString(l.Value)
		}
		keys[b.String()] = labels
		series = append(series, store.Series{Labels: labels, Value: m.Value, TimestampMs: ts})
	}

	in.mu.Lock()
	prev := in.last[snap.Instance]
	in.last[snap.Instance] = keys
	in.mu.Unlock()
	for k, labels := range prev {
		if _, ok := keys[k]; !ok {
			series = append(series, store.Series{Labels: labels, Value: store.StaleNaN, TimestampMs: ts})
		}
	}
	in.store.Write(series)
	if changed {
		in.store.FlushSoon()
	}
}
