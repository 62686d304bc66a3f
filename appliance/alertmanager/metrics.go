package alertmanager

import (
	"net/http"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// metrics are the ones upstream's binary owns itself (the packages
// register theirs), under the same names, so Alertmanager's dashboards
// and alerts work on nines.
type metrics struct {
	requestDuration *prometheus.HistogramVec // api.Options requires it
	responseSize    *prometheus.HistogramVec
	receivers       prometheus.Gauge
	integrations    prometheus.Gauge
	inhibitionRules prometheus.Gauge
}

func newMetrics(reg prometheus.Registerer) *metrics {
	f := promauto.With(reg)
	return &metrics{
		requestDuration: f.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "alertmanager_http_request_duration_seconds",
			Help:    "Histogram of latencies for HTTP requests.",
			Buckets: prometheus.DefBuckets,
		}, []string{"handler", "method", "code"}),
		responseSize: f.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "alertmanager_http_response_size_bytes",
			Help:    "Histogram of response size for HTTP requests.",
			Buckets: prometheus.ExponentialBuckets(100, 10, 7),
		}, []string{"handler", "method"}),
		receivers: f.NewGauge(prometheus.GaugeOpts{
			Name: "alertmanager_receivers",
			Help: "Number of configured receivers.",
		}),
		integrations: f.NewGauge(prometheus.GaugeOpts{
			Name: "alertmanager_integrations",
			Help: "Number of configured integrations.",
		}),
		inhibitionRules: f.NewGauge(prometheus.GaugeOpts{
			Name: "alertmanager_inhibition_rules",
			Help: "Number of configured inhibition rules.",
		}),
	}
}

func (m *metrics) instrumentHandler(name string, h http.HandlerFunc) http.HandlerFunc {
	l := prometheus.Labels{"handler": name}
	return promhttp.InstrumentHandlerDuration(m.requestDuration.MustCurryWith(l),
		promhttp.InstrumentHandlerResponseSize(m.responseSize.MustCurryWith(l), h))
}
