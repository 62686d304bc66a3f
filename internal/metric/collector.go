package metric

import "github.com/prometheus/client_golang/prometheus"

// Collector exposes the metrics fn returns on each scrape as a Prometheus
// collector (unchecked: the series set follows what is observed).
func Collector(fn func() []Metric) prometheus.Collector { return collector(fn) }

type collector func() []Metric

func (collector) Describe(chan<- *prometheus.Desc) {}

func (c collector) Collect(ch chan<- prometheus.Metric) {
	for _, m := range c() {
		names := make([]string, len(m.Labels))
		values := make([]string, len(m.Labels))
		for i, l := range m.Labels {
			names[i], values[i] = l.Name, l.Value
		}
		vt := prometheus.UntypedValue
		switch m.Type {
		case Gauge:
			vt = prometheus.GaugeValue
		case Counter:
			vt = prometheus.CounterValue
		}
		desc := prometheus.NewDesc(m.Name, m.Help, names, nil)
		pm, err := prometheus.NewConstMetric(desc, vt, m.Value, values...)
		if err != nil {
			pm = prometheus.NewInvalidMetric(desc, err)
		}
		ch <- pm
	}
}
