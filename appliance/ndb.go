package appliance

import (
	"context"
	"log/slog"

	"github.com/nines-project/nines"
	"github.com/nines-project/nines/appliance/config"
	ndbexp "github.com/nines-project/nines/exporter/ndb"
	"github.com/nines-project/nines/internal/metric"
	ndbmsg "github.com/nines-project/nines/ndb"
)

// ndbPoller is the poller of one kind ndb cluster.
type ndbPoller struct {
	cluster string
	p       *ndbexp.Poller
}

// newNDBPollers makes one poller per kind ndb cluster: its management
// servers in order, its nodes (the SQL nodes) for ndbinfo, with the
// cluster's monitoring credentials, at the scrape interval.
func newNDBPollers(cfg *config.Config, log *slog.Logger) ([]ndbPoller, error) {
	var out []ndbPoller
	for _, c := range cfg.Clusters {
		if c.Kind != nines.KindNDB || c.NDB == nil {
			continue
		}
		sqlNodes := make([]ndbexp.SQLNode, len(c.Nodes))
		for i, n := range c.Nodes {
			sqlNodes[i] = ndbexp.SQLNode{Address: n.Address, User: c.Credentials.User, Password: c.Credentials.Password.Reveal(), TLS: c.Credentials.TLSConfig}
		}
		p, err := ndbexp.NewPoller(ndbexp.PollerConfig{
			Cluster: c.Name, Mgm: c.NDB.ManagementAddresses(), SQL: sqlNodes,
			Interval: cfg.Scrape.Interval.Duration, Timeout: cfg.Scrape.Timeout.Duration, Logger: log,
		})
		if err != nil {
			for _, o := range out {
				o.p.Close()
			}
			return nil, err
		}
		out = append(out, ndbPoller{cluster: c.Name, p: p})
	}
	return out, nil
}

// runNDB polls one cluster into the store; a reading whose node states
// changed is flushed and evaluated at once (ingester.write), which is
// what brings NdbDataNodeDown within 2 s of the management server's event.
func (a *App) runNDB(ctx context.Context, np ndbPoller) {
	np.p.Run(ctx, func(r *ndbexp.Reading, changed bool) {
		if !a.owns(np.cluster) {
			return // sharded: the owner stores it
		}
		a.in.write("ndb:"+np.cluster, r.Metrics(), r.Time, changed)
	})
}

// ndbMetrics is the latest NDB series, for /metrics.
func (a *App) ndbMetrics() []metric.Metric {
	var out []metric.Metric
	for _, np := range a.ndb {
		if r := np.p.Latest(); r != nil {
			out = append(out, r.Metrics()...)
		}
	}
	return out
}

// ndbTopology is an NDB cluster's topology in GET /api/v1/clusters and
// /api/v1/clusters/<name> (the "ndb" key of a kind ndb cluster):
//
//	{
//	  "read_at": "2026-12-06T07:30:00.000Z",   // the latest round
//	  "mgm": "10.0.0.5:1186",                 // management server read, "" if none answered
//	  "ndbinfo_from": "10.0.0.7:3306",        // SQL node ndbinfo was read from, "" if none
//	  "event_stream": "10.0.0.5:1186",        // where nines listens for events, "" if nowhere
//	  "errors": ["..."],                      // servers that failed this round, with why
//	  "node_groups": [{"id": 0, "health": "ok" | "degraded" | "lost", "up": 2,
//	      "data_nodes": [{"node_id": 1, "state": "STARTED", "start_phase": 0, "up": true,
//	                      "mgm_status": "STARTED",
//	                      "data_memory": {"used": 52428800, "total": 104857600, "usable": 99614720},
//	                      "redo": {"used": 268435456, "total": 1073741824, "log_part": 2, "parts": 4}}]}],
//	  "management_servers": [{"node_id": 50, "status": "CONNECTED", "address": "10.0.0.5", "up": true}],
//	  "sql_nodes": [{"node_id": 100, "status": "CONNECTED", "address": "10.0.0.7", "up": true}],
//	  "president": 1,                         // master data node, 0 if unknown
//	  "arbitrator": 50, "arbitration_state": "ARBIT_RUN", "arbitration_agreed": true
//	}
//
// health: ok when every data node of the group serves, degraded when
// some do not (one node left in a group of two), lost when none does (the
// cluster cannot serve). state is ndbinfo.nodes' status for a running
// node, "UNKNOWN" for one without ndbinfo rows (stopped); mgm_status is
// the management server's word for it.
//
// data_memory is the node's DataMemory (ndbinfo.memoryusage, "Data
// memory") in bytes; usable is the 95 % rows may use (MinFreePct keeps
// 5 % for restarts), what NdbDataMemoryHigh/Critical (80/90 %) divide
// by. redo is the node's fullest REDO log part (ndbinfo.logspaces), what
// NdbRedoLogSpaceLow (80 %) watches, with its part number and the number
// of parts. Both are absent for a node without ndbinfo rows (stopped).
type ndbTopology struct {
	ReadAt            string         `json:"read_at"`
	Mgm               string         `json:"mgm"`
	NdbinfoFrom       string         `json:"ndbinfo_from"`
	EventStream       string         `json:"event_stream"`
	Errors            []string       `json:"errors,omitempty"`
	Groups            []ndbGroupView `json:"node_groups"`
	Management        []ndbOtherNode `json:"management_servers"`
	SQLNodes          []ndbOtherNode `json:"sql_nodes"`
	President         int            `json:"president"`
	Arbitrator        int            `json:"arbitrator"`
	ArbitrationState  string         `json:"arbitration_state"`
	ArbitrationAgreed bool           `json:"arbitration_agreed"`
}

type ndbGroupView struct {
	ID        int           `json:"id"`
	Health    string        `json:"health"`
	Up        int           `json:"up"`
	DataNodes []ndbDataNode `json:"data_nodes"`
}

type ndbDataNode struct {
	NodeID     int            `json:"node_id"`
	State      string         `json:"state"`
	StartPhase int            `json:"start_phase"`
	Up         bool           `json:"up"`
	MgmStatus  string         `json:"mgm_status"`
	DataMemory *ndbDataMemory `json:"data_memory,omitempty"`
	Redo       *ndbRedo       `json:"redo,omitempty"`
}

type ndbDataMemory struct {
	Used   uint64 `json:"used"`
	Total  uint64 `json:"total"`
	Usable uint64 `json:"usable"`
}

type ndbRedo struct {
	Used    uint64 `json:"used"`
	Total   uint64 `json:"total"`
	LogPart int    `json:"log_part"`
	Parts   int    `json:"parts"`
}

// ndbUsableFraction is the share of DataMemory rows may use: NDB keeps
// MinFreePct (default 5 %) for restarts, as the ndb rule pack assumes.
const ndbUsableFraction = 0.95

// ndbUsage is each data node's DataMemory and fullest REDO log part in
// info (nil: nothing read).
func ndbUsage(info *ndbexp.Ndbinfo) (map[int]*ndbDataMemory, map[int]*ndbRedo) {
	mem, redo := map[int]*ndbDataMemory{}, map[int]*ndbRedo{}
	if info == nil {
		return mem, redo
	}
	for _, r := range info.Memory {
		if r.MemoryType == "Data memory" {
			mem[r.NodeID] = &ndbDataMemory{Used: r.Used, Total: r.Total, Usable: uint64(float64(r.Total) * ndbUsableFraction)}
		}
	}
	share := func(used, total uint64) float64 {
		if total == 0 {
			return 0
		}
		return float64(used) / float64(total)
	}
	for _, r := range info.LogSpaces {
		if r.LogType != "REDO" {
			continue
		}
		cur := redo[r.NodeID]
		if cur == nil {
			redo[r.NodeID] = &ndbRedo{Used: r.Used, Total: r.Total, LogPart: r.LogPart, Parts: 1}
			continue
		}
		cur.Parts++
		if share(r.Used, r.Total) > share(cur.Used, cur.Total) {
			cur.Used, cur.Total, cur.LogPart = r.Used, r.Total, r.LogPart
		}
	}
	return mem, redo
}

type ndbOtherNode struct {
	NodeID  int    `json:"node_id"`
	Status  string `json:"status"`
	Address string `json:"address"`
	Up      bool   `json:"up"`
}

// groupHealth is the console's word for a node group.
func groupHealth(g ndbexp.GroupView) string {
	switch {
	case g.Lost():
		return "lost"
	case g.Up < len(g.Nodes):
		return "degraded"
	}
	return "ok"
}

// newNDBTopology is r as the API shows it; nil before the first round.
func newNDBTopology(r *ndbexp.Reading) *ndbTopology {
	if r == nil {
		return nil
	}
	v := r.View()
	t := &ndbTopology{
		ReadAt: r.Time.UTC().Format("2006-01-02T15:04:05.000Z"), Mgm: r.Mgm(), NdbinfoFrom: r.SQL(), EventStream: r.Stream,
		Groups: []ndbGroupView{}, Management: []ndbOtherNode{}, SQLNodes: []ndbOtherNode{},
		President: v.President, Arbitrator: v.Arbitrator, ArbitrationAgreed: v.ArbitrationAgreed,
	}
	if r.Info != nil && len(r.Info.Membership) > 0 {
		t.ArbitrationState = v.ArbState.String() // else nothing was read: no state
	}
	for _, a := range append(append([]ndbexp.Attempt{}, r.MgmTried...), r.SQLTried...) {
		if a.Err != nil {
			t.Errors = append(t.Errors, a.Address+": "+a.Err.Error())
		}
	}
	mem, redo := ndbUsage(r.Info)
	for _, g := range v.Groups {
		gv := ndbGroupView{ID: g.ID, Health: groupHealth(g), Up: g.Up, DataNodes: []ndbDataNode{}}
		for _, d := range g.Nodes {
			gv.DataNodes = append(gv.DataNodes, ndbDataNode{NodeID: d.ID, State: d.State.String(), StartPhase: d.StartPhase, Up: d.Serving(), MgmStatus: d.MgmStatus.String(),
				DataMemory: mem[d.ID], Redo: redo[d.ID]})
		}
		t.Groups = append(t.Groups, gv)
	}
	other := func(ns []ndbmsg.Node) []ndbOtherNode {
		out := []ndbOtherNode{}
		for _, n := range ns {
			out = append(out, ndbOtherNode{NodeID: n.ID, Status: n.Status.String(), Address: n.Address, Up: n.Status.Up(n.Type)})
		}
		return out
	}
	t.Management, t.SQLNodes = other(v.Mgm), other(v.SQL)
	return t
}

// ndbTopologyOf is the topology of the named cluster, nil when it has no
// poller or none has read yet.
func (a *App) ndbTopologyOf(cluster string) *ndbTopology {
	for _, np := range a.ndb {
		if np.cluster == cluster {
			return newNDBTopology(np.p.Latest())
		}
	}
	return nil
}
