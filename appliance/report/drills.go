package report

import (
	"sort"
	"strconv"
	"time"
)

// Drill is a failure drill run on the cluster (`nines drill`), with what
// it measured. Its downtime is not hidden: the probe's bad seconds during
// a drill count as any others, and the incident they form carries the
// drill's ID (Incident.Drill), so a reader tells a drill from an outage.
type Drill struct {
	ID       string    `json:"id"`
	Scenario string    `json:"scenario"`
	Victims  []string  `json:"victims"`
	State    string    `json:"state"` // running | done | failed
	Reason   string    `json:"reason,omitempty"`
	Start    time.Time `json:"start"`
	End      time.Time `json:"end,omitzero"`
	// DetectionSeconds is from the kill to nines seeing the node down;
	// RTOSeconds from the kill to the cluster whole again (Galera: every
	// node Synced; replication: the old primary a replica of the new
	// one, every replica caught up); StallSeconds
	// the drill writer's longest wait between two acknowledged writes.
	DetectionSeconds float64 `json:"detection_seconds"`
	RTOSeconds       float64 `json:"rto_seconds"`
	// FailoverSeconds (primary-kill) is from the kill to the first write
	// acknowledged after it: the cluster serving writes again, before
	// the old primary is back as a replica (the RTO).
	FailoverSeconds float64 `json:"failover_seconds,omitempty"`
	StallSeconds    float64 `json:"stall_seconds"`
	// AckedWrites the writer got acknowledged; LostWrites (the RPO) those
	// of them missing when read back at the end.
	AckedWrites int64 `json:"acked_writes"`
	LostWrites  int64 `json:"lost_writes"`
}

// drillsIn are the drills that started in [from, to), oldest first.
func drillsIn(drills []Drill, from, to time.Time) []Drill {
	out := []Drill{}
	for _, d := range drills {
		if !d.Start.Before(from) && d.Start.Before(to) {
			out = append(out, d)
		}
	}
	sort.Slice(out, func(i, k int) bool { return out[i].Start.Before(out[k].Start) })
	return out
}

// drillOf is the ID of the drill whose run overlaps [from, to), if any;
// a drill still running overlaps everything after its start.
func drillOf(drills []Drill, from, to time.Time) string {
	for _, d := range drills {
		if d.Start.Before(to) && (d.End.IsZero() || !d.End.Add(followUp).Before(from)) {
			return d.ID
		}
	}
	return ""
}

// drillRow is a drill as every format writes it.
type drillRow struct {
	ID, Scenario, Victims, Start, State, Detection, Failover, RTO, Stall, Acked, Lost string
}

func newDrillRow(d Drill) drillRow {
	victims := ""
	for i, v := range d.Victims {
		if i > 0 {
			victims += ", "
		}
		victims += v
	}
	state := d.State
	if d.Reason != "" {
		state += ": " + d.Reason
	}
	f := func(s float64) string { return strconv.FormatFloat(s, 'f', 1, 64) }
	row := drillRow{
		ID: d.ID, Scenario: d.Scenario, Victims: victims, Start: FormatTime(d.Start), State: state,
		Detection: f(d.DetectionSeconds), Failover: "-", RTO: f(d.RTOSeconds), Stall: f(d.StallSeconds),
		Acked: strconv.FormatInt(d.AckedWrites, 10), Lost: strconv.FormatInt(d.LostWrites, 10),
	}
	if d.FailoverSeconds > 0 {
		row.Failover = f(d.FailoverSeconds)
	}
	return row
}
