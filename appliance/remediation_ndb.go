package appliance

import (
	"crypto/tls"
	"fmt"
	"time"

	"github.com/nines-project/nines"
	"github.com/nines-project/nines/agent"
	"github.com/nines-project/nines/appliance/config"
	exporterndb "github.com/nines-project/nines/exporter/ndb"
	"github.com/nines-project/nines/remediator"
	ndbrb "github.com/nines-project/nines/remediator/ndb"
)

// ndbRunbooks are the NDB runbooks over the configured clusters: a data
// node restarted through its host's agent, and the rolling restart of
// the data nodes through the management servers. Each management server
// gets its own client (its connection is dialled on first use), asked in
// the configured order as ndb_mgm tries its connect string.
func ndbRunbooks(cfg *config.Config, history func(string) ([]*remediator.Job, error)) []remediator.Runbook {
	mgms := map[string][]*exporterndb.Mgm{}
	agents := map[string]map[int]*agent.Client{}
	for _, c := range cfg.Clusters {
		if c.Kind != nines.KindNDB || c.NDB == nil {
			continue
		}
		for _, addr := range c.NDB.ManagementAddresses() {
			mgms[c.Name] = append(mgms[c.Name], exporterndb.NewMgm(exporterndb.MgmConfig{Addr: addr, DialTimeout: 2 * time.Second, Timeout: 5 * time.Second}))
		}
		tlsConf := c.AgentTLS
		if tlsConf == nil { // a config not read by config.Load
			tlsConf = &tls.Config{MinVersion: tls.VersionTLS12}
		}
		agents[c.Name] = map[int]*agent.Client{}
		for _, d := range c.NDB.DataNodes {
			agents[c.Name][d.NodeID] = agent.NewClient(d.Agent, c.AgentToken.Reveal(), tlsConf)
		}
	}
	status := func(cluster string) (ndbrb.StatusSource, error) {
		ms := mgms[cluster]
		if len(ms) == 0 {
			return nil, fmt.Errorf("cluster %q is not an ndb cluster with management servers", cluster)
		}
		srcs := make([]ndbrb.StatusSource, len(ms))
		for i, m := range ms {
			srcs[i] = m
		}
		return ndbrb.Failover(srcs...), nil
	}
	restarter := func(cluster string) (ndbrb.Restarter, error) {
		ms := mgms[cluster]
		if len(ms) == 0 {
			return nil, fmt.Errorf("cluster %q is not an ndb cluster with management servers", cluster)
		}
		rs := make([]ndbrb.Restarter, len(ms))
		for i, m := range ms {
			rs[i] = m
		}
		return ndbrb.FailoverRestarter(rs...), nil
	}
	agentOf := func(cluster string, id int) (ndbrb.Agent, error) {
		a, ok := agents[cluster][id]
		if !ok {
			return nil, fmt.Errorf("no agent is configured for data node %d of cluster %q (ndb.data_nodes): nines cannot restart it", id, cluster)
		}
		return a, nil
	}
	return []remediator.Runbook{
		ndbrb.DataNodeRestart{Mgm: status, Agent: agentOf, History: history},
		ndbrb.RollingRestart{Mgm: restarter},
	}
}
