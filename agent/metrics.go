package agent

import (
	"net/http"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// actions are the counted actions, listed so every series exists (at 0)
// from the first scrape and a rate() over them never starts empty.
var actions = []string{"recover", "start", "stop", "restart", "bootstrap-fields", "pc-bootstrap", "backup", "backup-delete", "verify", "seed-stream", "reseed"}

// Results of an action, by HTTP status class.
const (
	resultOK      = "ok"      // 2xx
	resultRefused = "refused" // 4xx: nothing was done
	resultError   = "error"   // 5xx: the action failed
)

// metrics is the agent's own registry; it never touches the global one.
type metrics struct {
	reg     *prometheus.Registry
	actions *prometheus.CounterVec
	fenced  *prometheus.CounterVec
}

func newMetrics(a *Agent) *metrics {
	m := &metrics{
		reg: prometheus.NewRegistry(),
		actions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "nines_agent_actions_total",
			Help: "Actions the agent was asked for, by action and result (ok, refused: nothing done, error: failed).",
		}, []string{"action", "result"}),
		fenced: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "nines_agent_fencing_refused_total",
			Help: "Requests refused for a fencing token older than the highest seen for the cluster, or for none once appliances in HA use the agent (cluster empty): a deposed leader tried to act.",
		}, []string{"cluster"}),
	}
	for _, act := range actions {
		for _, r := range []string{resultOK, resultRefused, resultError} {
			m.actions.WithLabelValues(act, r)
		}
	}
	m.reg.MustRegister(
		m.actions,
		m.fenced,
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "nines_agent_up",
			Help: "1 while the agent serves.",
		}, func() float64 { return 1 }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "nines_agent_server_running",
			Help: "1 when the local database server runs, 0 when it does not, -1 when the agent cannot tell.",
		}, func() float64 {
			pid, err := a.serverPid()
			switch {
			case err != nil:
				return -1
			case pid != 0:
				return 1
			}
			return 0
		}),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "nines_agent_backup_running",
			Help: "1 while the agent runs a backup, else 0.",
		}, func() float64 {
			if b, _ := a.bk.running(); b {
				return 1
			}
			return 0
		}),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "nines_agent_verify_running",
			Help: "1 while the agent verifies a backup in a scratch server, else 0.",
		}, func() float64 {
			if _, v := a.bk.running(); v {
				return 1
			}
			return 0
		}),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "nines_agent_datadir_free_bytes",
			Help: "Bytes an unprivileged writer may still use on the datadir's file system (-1 when it cannot be read).",
		}, func() float64 {
			free, _, err := diskUsage(a.dataDir())
			if err != nil {
				return -1
			}
			return float64(free)
		}),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "nines_agent_datadir_size_bytes",
			Help: "Size of the datadir's file system in bytes (-1 when it cannot be read).",
		}, func() float64 {
			_, total, err := diskUsage(a.dataDir())
			if err != nil {
				return -1
			}
			return float64(total)
		}),
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	)
	return m
}

func (m *metrics) handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{ErrorHandling: promhttp.ContinueOnError})
}

// count records one answered action.
func (m *metrics) count(action string, status int) {
	r := resultOK
	switch {
	case status >= 500:
		r = resultError
	case status >= 400:
		r = resultRefused
	}
	m.actions.WithLabelValues(action, r).Inc()
}
