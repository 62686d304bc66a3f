package ndb

// gcp.go times global checkpoints from the management server's event
// stream: the master data node reports GlobalCheckpointCompleted (gci)
// each time one completes, every TimeBetweenGlobalCheckpoints (default
// 2000 ms) on a healthy cluster [DOC8 config; ndb_logevent.h
// NDB_LE_GlobalCheckpointCompleted = 5, category CHECKPOINT, level 10
// in EventLogger's matrix]. The time since the last one is how long the
// current GCP has taken, the "long GCP" that the data nodes' GCP monitor
// warns of in their cluster log (a GCP save over 1 min) and that ends in
// a GCP stop after TimeBetweenGlobalCheckpointsTimeout (default 120 s)
// [facts A.4]. ndbinfo has no such view; this event is the one
// documented observable over the protocols nines speaks.

import (
	"sync"
	"time"

	"github.com/nines-project/nines/internal/metric"
	ndbmsg "github.com/nines-project/nines/ndb"
)

// GCPState is what the event stream told of global checkpoints.
type GCPState struct {
	// Since is when the open stream was accepted: no GCP event before
	// it can have been seen on it.
	Since time.Time
	// Completed is when the last GlobalCheckpointCompleted arrived on
	// any stream (zero if none yet), GCI its gci.
	Completed time.Time
	GCI       int
}

// gcpTracker records GCP events; safe for concurrent use.
type gcpTracker struct {
	mu sync.Mutex
	st GCPState
}

// opened marks the start of a stream at now.
func (g *gcpTracker) opened(now time.Time) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.st.Since = now
}

// add records ev when it is a completed GCP; it reports whether it was.
func (g *gcpTracker) add(ev ndbmsg.Event, now time.Time) bool {
	if ev.Type != ndbmsg.EventGlobalCheckpointCompleted {
		return false
	}
	gci, _ := ev.Get("gci")
	g.mu.Lock()
	defer g.mu.Unlock()
	g.st.Completed, g.st.GCI = now, gci
	return true
}

func (g *gcpTracker) snapshot() GCPState {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.st
}

const gcpAgeHelp = "Seconds since the management server's event stream last reported a completed global checkpoint (GlobalCheckpointCompleted from the master data node), " +
	"or since the stream opened when none came on it yet. A healthy cluster completes one every TimeBetweenGlobalCheckpoints (default 2 s); " +
	"it grows while a GCP is held up, and a GCP stop kills a node after TimeBetweenGlobalCheckpointsTimeout (default 120 s). Only while the stream is open."

// GCPMetrics adds, while an event stream is open (stream true):
// nines_ndb_gcp_seconds_since_completed (the time since the later of
// the last completion and the stream's opening, so a reconnection never
// invents a long GCP out of events it could not see) and, once one came,
// nines_ndb_gcp_last_completed_gci. Without a stream nothing is known,
// and nothing is written: nines_ndb_event_stream_up says why.
func GCPMetrics(set *metric.Set, st GCPState, now time.Time, stream bool) {
	if !stream || st.Since.IsZero() {
		return
	}
	from := st.Since
	if st.Completed.After(from) {
		from = st.Completed
	}
	age := max(now.Sub(from).Seconds(), 0)
	set.Add("nines_ndb_gcp_seconds_since_completed", gcpAgeHelp, metric.Gauge, age)
	if !st.Completed.IsZero() {
		set.Add("nines_ndb_gcp_last_completed_gci", "The gci of the last global checkpoint the event stream reported completed.", metric.Gauge, float64(st.GCI))
	}
}
