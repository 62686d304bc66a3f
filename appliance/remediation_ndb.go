package appliance

import (
	"context"
	"crypto/tls"
	"database/sql"
	"fmt"
	"time"

	driver "github.com/go-sql-driver/mysql"
	"github.com/nines-project/nines"
	"github.com/nines-project/nines/agent"
	"github.com/nines-project/nines/appliance/config"
	exporterndb "github.com/nines-project/nines/exporter/ndb"
	"github.com/nines-project/nines/remediator"
	ndbrb "github.com/nines-project/nines/remediator/ndb"
)

// ndbRunbooks are the NDB runbooks over the configured clusters: the
// system restart and a data node's restart through the hosts' agents,
// and the rolling restart
// (management servers and SQL nodes through their agents, data nodes
// through the management servers). Each management server
// gets its own client (its connection is dialled on first use), asked in
// the configured order as ndb_mgm tries its connect string.
func ndbRunbooks(cfg *config.Config, history func(string) ([]*remediator.Job, error)) []remediator.Runbook {
	mgms := map[string][]*exporterndb.Mgm{}
	agents := map[string]map[int]*agent.Client{}
	mgmServers := map[string][]ndbrb.MgmServer{}
	sqls := map[string][]ndbrb.SQLNode{}
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
		for i, m := range c.NDB.Management {
			s := ndbrb.MgmServer{Addr: m.Address, Status: mgms[c.Name][i]}
			if m.Agent != "" {
				s.Agent = agent.NewClient(m.Agent, c.AgentToken.Reveal(), tlsConf)
			}
			mgmServers[c.Name] = append(mgmServers[c.Name], s)
		}
		for _, n := range c.Nodes {
			db, err := sqlNodeDB(c, n.Address)
			if err != nil {
				continue // the same address fails the poller's connector, which reports it
			}
			s := ndbrb.SQLNode{Name: n.Address, SQL: ndbinfoDB{db}}
			if n.Agent != "" {
				s.Agent = agent.NewClient(n.Agent, c.AgentToken.Reveal(), tlsConf)
			}
			sqls[c.Name] = append(sqls[c.Name], s)
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
	access := ndbrb.Access{Mgm: status, Agent: agentOf, History: history}
	servers := func(cluster string) ([]ndbrb.MgmServer, error) { return mgmServers[cluster], nil }
	sqlNodes := func(cluster string) ([]ndbrb.SQLNode, error) { return sqls[cluster], nil }
	return []remediator.Runbook{
		// Before the node restart: when the cluster shut down, every
		// node's NdbDataNodeDown fires with NdbNodeGroupLost, and the
		// system restart is the one that can help.
		ndbrb.SystemRestart{Access: access},
		ndbrb.DataNodeRestart{Access: access},
		ndbrb.RollingRestart{Mgm: restarter, MgmServers: servers, SQLNodes: sqlNodes},
	}
}

// ndbinfoDB reads ndbinfo.nodes through one SQL node's connection.
type ndbinfoDB struct{ db *sql.DB }

func (d ndbinfoDB) ReadNodes(ctx context.Context) ([]exporterndb.NodeRow, error) {
	return exporterndb.ReadNodes(ctx, d.db)
}

// sqlNodeDB is a connection to one SQL node with the cluster's
// monitoring credentials (nothing connects until the first query).
func sqlNodeDB(c config.Cluster, addr string) (*sql.DB, error) {
	dc := driver.NewConfig()
	dc.Net, dc.Addr, dc.User, dc.Passwd, dc.TLS = "tcp", addr, c.Credentials.User, c.Credentials.Password.Reveal(), c.Credentials.TLSConfig
	dc.Timeout, dc.ReadTimeout, dc.WriteTimeout = 2*time.Second, 5*time.Second, 5*time.Second
	conn, err := driver.NewConnector(dc)
	if err != nil {
		return nil, fmt.Errorf("SQL node %s of %s: %w", addr, c.Name, err)
	}
	db := sql.OpenDB(conn)
	db.SetMaxOpenConns(1)
	return db, nil
}
