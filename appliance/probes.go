package appliance

import (
	"log/slog"

	"github.com/nines-project/nines/appliance/config"
	"github.com/nines-project/nines/probe"
)

// newProbes makes one write prober per cluster that has endpoints, with
// the cluster's monitoring credentials, writing heartbeat rows as source
// (the exporter reads the same source's rows for the replication lag; ""
// takes the probe's default, which fails with a clear error). active,
// when not nil, says which clusters to probe now (sharding).
func newProbes(cfg *config.Config, source string, active func(cluster string) bool, log *slog.Logger) ([]*probe.Prober, error) {
	var out []*probe.Prober
	for _, c := range cfg.Clusters {
		addrs := c.ProbeEndpoints()
		if len(addrs) == 0 {
			continue
		}
		eps := make([]probe.Endpoint, len(addrs))
		for i, a := range addrs {
			eps[i] = probe.Endpoint{Address: a, User: c.Credentials.User, Password: c.Credentials.Password.Reveal(), TLS: c.Credentials.TLSConfig}
		}
		// Seconds in the cluster's declared maintenance windows count as
		// maintenance, outside the SLO (facts/slo.md).
		o := probe.Options{Source: source, Engine: c.Probe.Engine, LatencyBound: c.Probe.Timeout.Duration, Maintenance: c.InMaintenance, Logger: log}
		if active != nil {
			name := c.Name
			o.Active = func() bool { return active(name) }
		}
		p, err := probe.New(c.Name, eps, o)
		if err != nil {
			return nil, err
		}
		out = append(out, p)
	}
	return out, nil
}
