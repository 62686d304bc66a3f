package appliance

import (
	"strings"
	"sync"
	"time"

	"github.com/nines-project/nines"
	"github.com/nines-project/nines/appliance/store"
	"github.com/nines-project/nines/exporter"
	"github.com/nines-project/nines/internal/metric"
)

// ingester writes each snapshot's metrics to the store. When a series that
// a node reported before is missing from its next snapshot (the node went
// down, a replica channel was removed), it writes a staleness marker so
// queries stop showing the old value at once, as Prometheus does after a
// failed scrape.
type ingester struct {
	store *store.Store
	// onChange runs after a state change has been flushed to the store:
	// the rule engine evaluates at once instead of at its next tick.
	onChange func()

	mu   sync.Mutex
	last map[string]map[string][]store.Label // instance → series key → labels
}

func newIngester(s *store.Store, onChange func()) *ingester {
	return &ingester{store: s, onChange: onChange, last: map[string]map[string][]store.Label{}}
}

// observe is the exporter's sink. A snapshot whose state changed is made
// visible to queries at once, so the rules and the API see a failure
// without waiting for the next periodic flush.
func (in *ingester) observe(snap *nines.Snapshot, changed bool) {
	in.write(snap.Instance, exporter.SnapshotMetrics(snap), snap.Time, changed)
}

// write stores one source's metrics at ts. key names the source (a node's
// instance, or a component of the appliance) for staleness tracking:
// series the source stops reporting get a staleness marker.
func (in *ingester) write(key string, ms []metric.Metric, at time.Time, changed bool) {
	ts := at.UnixMilli()
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
	prev := in.last[key]
	in.last[key] = keys
	in.mu.Unlock()
	for k, labels := range prev {
		if _, ok := keys[k]; !ok {
			series = append(series, store.Series{Labels: labels, Value: store.StaleNaN, TimestampMs: ts})
		}
	}
	in.store.Write(series)
	if changed {
		in.store.Flush()
		if in.onChange != nil {
			in.onChange()
		}
	}
}
