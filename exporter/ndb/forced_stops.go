package ndb

// forced_stops.go counts the data nodes that shut themselves down on an
// error, from the NDBStopForced events of the management server's event
// stream, by cause. A GCP stop is seen nowhere else: ndbinfo shows it
// only as the node gone [facts A.4].

import (
	"sort"
	"strconv"
	"sync"

	"github.com/nines-project/nines/internal/metric"
	ndbmsg "github.com/nines-project/nines/ndb"
)

// The reasons of nines_ndb_node_forced_stops_total, all of them.
const (
	// ReasonGCPStop: the event's error is 2303 (ndb.ExitGCPStop), the
	// node was killed because a GCP stop was detected.
	ReasonGCPStop = "gcp_stop"
	// ReasonOther: any other error, or a signal.
	ReasonOther = "other"
)

// reasons is every reason label value, in the order series are written.
var reasons = []string{ReasonGCPStop, ReasonOther}

// ForcedStopReason classifies an NDBStopForced event by its error. A
// parsable event carries numbers only, not the node's message, so the
// error number is all there is to go by.
func ForcedStopReason(ev ndbmsg.Event) string {
	if code, ok := ev.Get("error"); ok && code == ndbmsg.ExitGCPStop {
		return ReasonGCPStop
	}
	return ReasonOther
}

// ForcedStopKey is one series of nines_ndb_node_forced_stops_total.
type ForcedStopKey struct {
	NodeID int
	Reason string
}

// maxNodeID bounds the node ids counted: ndb_mgmd refuses ids above 255
// ("Nodeid 1000 is greater than max nodeid 255." [facts A.2.3]), so a
// larger source_nodeid is garbage and would only add series.
const maxNodeID = 255

// forcedStops counts NDBStopForced events since the poller started. Safe
// for concurrent use: the listener adds, rounds take snapshots.
type forcedStops struct {
	mu sync.Mutex
	n  map[ForcedStopKey]uint64
}

// add counts ev when it is a data node's forced stop; it reports whether
// it counted.
func (f *forcedStops) add(ev ndbmsg.Event) bool {
	if ev.Type != ndbmsg.EventNDBStopForced || ev.SourceNodeID < 1 || ev.SourceNodeID > maxNodeID {
		return false
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.n == nil {
		f.n = map[ForcedStopKey]uint64{}
	}
	f.n[ForcedStopKey{NodeID: ev.SourceNodeID, Reason: ForcedStopReason(ev)}]++
	return true
}

// snapshot copies the counts; nil when nothing was counted.
func (f *forcedStops) snapshot() map[ForcedStopKey]uint64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.n) == 0 {
		return nil
	}
	out := make(map[ForcedStopKey]uint64, len(f.n))
	for k, v := range f.n {
		out[k] = v
	}
	return out
}

const forcedStopsHelp = "Data node shutdowns forced by an error, counted by nines from the NDBStopForced events of the management server's event stream since nines started. " +
	"node_id: the data node that stopped. reason: gcp_stop when the event's error is 2303 (the node was killed because a GCP stop was detected), other for any other error or a signal. " +
	"Every data node has both series from 0. Events sent while no stream was open (nines_ndb_event_stream_up 0) are not counted."

// ForcedStopMetrics adds nines_ndb_node_forced_stops_total{node_id,
// reason} for every data node of nodes and both reasons, 0 when none was
// seen (so the first stop is an increase, not a new series), and for any
// other node that has a count. counts is Reading.ForcedStops.
func ForcedStopMetrics(set *metric.Set, nodes []ndbmsg.Node, counts map[ForcedStopKey]uint64) {
	ids := map[int]bool{}
	for _, n := range nodes {
		if n.Type == ndbmsg.TypeNDB {
			ids[n.ID] = true
		}
	}
	for k := range counts {
		ids[k.NodeID] = true
	}
	sorted := make([]int, 0, len(ids))
	for id := range ids {
		sorted = append(sorted, id)
	}
	sort.Ints(sorted)
	for _, id := range sorted {
		for _, r := range reasons {
			set.Add("nines_ndb_node_forced_stops_total", forcedStopsHelp, metric.Counter,
				float64(counts[ForcedStopKey{NodeID: id, Reason: r}]), "node_id", strconv.Itoa(id), "reason", r)
		}
	}
}
