package ndb

// reading.go is one round of a Poller and the series it becomes.

import (
	"time"

	"github.com/nines-project/nines/internal/metric"
	ndbmsg "github.com/nines-project/nines/ndb"
)

// Attempt is one server tried in a round and what came of it.
type Attempt struct {
	Address string
	Err     error // nil: this server answered and was read
}

// Reading is one round of a Poller. Readings are shared once published:
// do not modify them.
type Reading struct {
	Cluster  string
	Time     time.Time
	Duration time.Duration
	// MgmTried are the management servers asked, in order, up to the
	// first that answered (the last entry then has no Err). Status is
	// that server's `get status`; nil when none answered.
	MgmTried []Attempt
	Status   []ndbmsg.Node
	// SQLTried likewise for the SQL nodes; Info is the ndbinfo read from
	// the one that answered, nil when none did.
	SQLTried []Attempt
	Info     *Ndbinfo
	// Stream is the management server whose event stream is open, ""
	// while none is.
	Stream string
	// Woken: an event (or the stream's reconnection) started this round.
	Woken bool
	// ForcedStops counts the data nodes' forced stops (NDBStopForced
	// events) the poller saw on its event streams since it started, by
	// node and reason; nil while none.
	ForcedStops map[ForcedStopKey]uint64
	// GCP is what the event streams told of global checkpoints.
	GCP GCPState
}

// Mgm returns the management server that answered, "" if none.
func (r *Reading) Mgm() string {
	if n := len(r.MgmTried); n > 0 && r.MgmTried[n-1].Err == nil {
		return r.MgmTried[n-1].Address
	}
	return ""
}

// SQL returns the SQL node ndbinfo was read from, "" if none.
func (r *Reading) SQL() string {
	if n := len(r.SQLTried); n > 0 && r.SQLTried[n-1].Err == nil {
		return r.SQLTried[n-1].Address
	}
	return ""
}

// View is the cluster's topology from this reading (BuildView).
func (r *Reading) View() View { return BuildView(r.Status, r.Info) }

// Metrics are the reading's series, each with cluster and instance:
//
//   - nines_ndb_mgm_up{instance=<mgmd>} for every management server
//     tried: 0 for those that failed, 1 for the one that answered, whose
//     address is the instance of every nines_ndb_* series (MgmMetrics);
//   - nines_ndbinfo_read_success{instance=<SQL node>} for every SQL node
//     tried: 0 failed, 1 read; the one read is the instance of every
//     mysql_ndbinfo_* and nines_ndbinfo_view_success series (Metrics);
//   - nines_ndb_node_forced_stops_total{instance=<mgmd>,node_id,reason}
//     with the management server that answered (ForcedStopMetrics): the
//     count is the poller's own, over whichever stream was open, so it
//     does not reset when another server answers;
//   - nines_ndb_event_stream_up{instance=<mgmd>}: 1 while the listen
//     event session is open there, else 0 with the first management
//     server's address (the stream then wakes no round: failures are
//     seen at the next tick only);
//   - nines_ndb_gcp_seconds_since_completed{instance=<mgmd>} and
//     nines_ndb_gcp_last_completed_gci, with the stream's server, only
//     while a stream is open (GCPMetrics).
//
// Servers after the one that answered were not asked this round and
// have no series.
func (r *Reading) Metrics() []metric.Metric {
	cl := metric.Label{Name: "cluster", Value: r.Cluster}
	var out []metric.Metric
	for _, a := range r.MgmTried {
		set := &metric.Set{Const: []metric.Label{cl, {Name: "instance", Value: a.Address}}}
		if a.Err != nil {
			MgmMetrics(set, MgmReading{Err: a.Err})
		} else {
			MgmMetrics(set, MgmReading{Nodes: r.Status})
			ForcedStopMetrics(set, r.Status, r.ForcedStops)
		}
		out = append(out, set.Metrics...)
	}
	for _, a := range r.SQLTried {
		set := &metric.Set{Const: []metric.Label{cl, {Name: "instance", Value: a.Address}}}
		ok := 0.0
		if a.Err == nil {
			ok = 1
		}
		set.Add("nines_ndbinfo_read_success", "1 when ndbinfo was read through this SQL node this round; SQL nodes are tried in order until one answers.", metric.Gauge, ok)
		if a.Err == nil {
			Metrics(set, r.Info)
		}
		out = append(out, set.Metrics...)
	}
	stream, up := r.Stream, 1.0
	if stream == "" && len(r.MgmTried) > 0 {
		stream, up = r.MgmTried[0].Address, 0
	}
	if stream != "" {
		set := &metric.Set{Const: []metric.Label{cl, {Name: "instance", Value: stream}}}
		set.Add("nines_ndb_event_stream_up", "1 while nines listens to the management server's event stream, which wakes a read at once on a node failure.", metric.Gauge, up)
		GCPMetrics(set, r.GCP, r.Time, up == 1)
		out = append(out, set.Metrics...)
	}
	return out
}
