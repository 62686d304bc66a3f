package appliance

import (
	"hash/maphash"
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
//
// It runs for every node every second, so it allocates little: a series
// is known by a 64-bit hash of its name and labels, not a string key, and
// each source's previous metrics are kept as they came (the staleness
// marker's labels are taken from them) rather than copied.
type ingester struct {
	store *store.Store
	// onChange runs after a state change has been flushed to the store:
	// the rule engine evaluates at once instead of at its next tick.
	onChange func()
	seed     maphash.Seed

	mu   sync.Mutex
	last map[string]*sourceSeries // source key → what it wrote last
}

// sourceSeries is what one source wrote last: its metrics, and each
// series' hash → its index there.
type sourceSeries struct {
	ms     []metric.Metric
	byHash map[uint64]int32
}

func newIngester(s *store.Store, onChange func()) *ingester {
	return &ingester{store: s, onChange: onChange, seed: maphash.MakeSeed(), last: map[string]*sourceSeries{}}
}

// observe is the exporter's sink. A snapshot whose state changed is made
// visible to queries at once, so the rules and the API see a failure
// without waiting for the next periodic flush.
func (in *ingester) observe(snap *nines.Snapshot, changed bool) {
	in.write(snap.Instance, exporter.SnapshotMetrics(snap), snap.Time, changed)
}

// hash identifies a series by its name and labels. A collision (odds
// about 1 in 10^13 among one source's series) would only skip one
// staleness marker.
func (in *ingester) hash(m *metric.Metric) uint64 {
	var h maphash.Hash
	h.SetSeed(in.seed)
	h.WriteString(m.Name)
	for _, l := range m.Labels {
		h.WriteByte(0xff)
		h.WriteString(l.Name)
		h.WriteByte(0xfe)
		h.WriteString(l.Value)
	}
	return h.Sum64()
}

// write stores one source's metrics at ts. key names the source (a node's
// instance, or a component of the appliance) for staleness tracking:
// series the source stops reporting get a staleness marker.
func (in *ingester) write(key string, ms []metric.Metric, at time.Time, changed bool) {
	ts := at.UnixMilli()
	cur := &sourceSeries{ms: ms, byHash: make(map[uint64]int32, len(ms))}
	for i := range ms {
		cur.byHash[in.hash(&ms[i])] = int32(i)
	}
	in.mu.Lock()
	prev := in.last[key]
	in.last[key] = cur
	in.mu.Unlock()

	var gone []*metric.Metric
	if prev != nil {
		for h, i := range prev.byHash {
			if _, ok := cur.byHash[h]; !ok {
				gone = append(gone, &prev.ms[i])
			}
		}
	}
	// One backing array for every series' labels (the store copies them).
	n := 0
	for i := range ms {
		n += len(ms[i].Labels) + 1
	}
	for _, m := range gone {
		n += len(m.Labels) + 1
	}
	labels := make([]store.Label, 0, n)
	series := make([]store.Series, 0, len(ms)+len(gone))
	add := func(m *metric.Metric, v float64) {
		from := len(labels)
		labels = append(labels, store.Label{Name: "__name__", Value: m.Name})
		for _, l := range m.Labels {
			labels = append(labels, store.Label{Name: l.Name, Value: l.Value})
		}
		series = append(series, store.Series{Labels: labels[from:len(labels):len(labels)], Value: v, TimestampMs: ts})
	}
	for i := range ms {
		add(&ms[i], ms[i].Value)
	}
	for _, m := range gone {
		add(m, store.StaleNaN)
	}
	in.store.Write(series)
	if changed {
		in.store.Flush()
		if in.onChange != nil {
			in.onChange()
		}
	}
}
