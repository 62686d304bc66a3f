package exporter

import (
	"math"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/nines-project/nines/internal/metric"
)

// latenessBuckets are the upper bounds, in seconds, of the scrape
// lateness histogram: how long past its due time a scheduled scrape
// started. On a healthy appliance nearly all fall in the first buckets; a
// p99 past 200 ms means the appliance cannot keep its one-second cadence
// (too many nodes for its CPU), and failures are seen that much later.
var latenessBuckets = []float64{0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.2, 0.5, 1, 2.5}

// Lateness counts every scheduled scrape of an Exporter by how late it
// started. Safe for concurrent use; cheap enough for thousands of scrapes
// a second (atomics only).
type Lateness struct {
	counts [11]atomic.Uint64 // per bucket, the last for +Inf
	sumNs  atomic.Int64
}

func (l *Lateness) observe(d time.Duration) {
	if d < 0 {
		d = 0
	}
	s := d.Seconds()
	i := len(latenessBuckets)
	for j, ub := range latenessBuckets {
		if s <= ub {
			i = j
			break
		}
	}
	l.counts[i].Add(1)
	l.sumNs.Add(int64(d))
}

// Metrics are nines_scrape_lateness_seconds as a Prometheus histogram
// (cumulative _bucket series with le, _sum, _count), so that
// histogram_quantile works on it.
func (l *Lateness) Metrics() []metric.Metric {
	set := &metric.Set{}
	const help = "How long past its due time each scheduled scrape started."
	var cum uint64
	for i := range l.counts {
		cum += l.counts[i].Load()
		le := "+Inf"
		if i < len(latenessBuckets) {
			le = formatLe(latenessBuckets[i])
		}
		set.Add("nines_scrape_lateness_seconds_bucket", help, metric.Counter, float64(cum), "le", le)
	}
	set.Add("nines_scrape_lateness_seconds_sum", help, metric.Counter, float64(l.sumNs.Load())/1e9)
	set.Add("nines_scrape_lateness_seconds_count", help, metric.Counter, float64(cum))
	return set.Metrics
}

// formatLe spells a bound as Prometheus client libraries do ("1.0",
// "0.005").
func formatLe(v float64) string {
	s := strconv.FormatFloat(v, 'f', -1, 64)
	if v == math.Trunc(v) {
		s += ".0"
	}
	return s
}
