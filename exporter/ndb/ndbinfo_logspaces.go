package ndb

import (
	"context"

	"github.com/nines-project/nines/internal/metric"
)

// logspaces and logbuffers share one shape [A.1.1].
const (
	logSpacesQuery  = `SELECT node_id, log_type, log_id, log_part, total, used FROM ndbinfo.logspaces`
	logBuffersQuery = `SELECT node_id, log_type, log_id, log_part, total, used FROM ndbinfo.logbuffers`
)

// LogRow is one log part's space or buffer. LogType is the view's text:
// REDO or DD-UNDO (logspaces), also BACKUP-DATA and BACKUP-LOG
// (logbuffers); any other value, NULL included, is an error.
type LogRow struct {
	NodeID  int
	LogType string
	LogID   int
	LogPart int
	Total   uint64 // bytes
	Used    uint64
}

var (
	logSpaceTypes  = []string{"REDO", "DD-UNDO"}
	logBufferTypes = []string{"REDO", "DD-UNDO", "BACKUP-DATA", "BACKUP-LOG"}
)

func readLog(ctx context.Context, q Querier, query string, types []string, out *[]LogRow) error {
	return scan(ctx, q, query, func(c *cells) {
		id, ok := c.id("node_id")
		if !ok {
			return
		}
		t := "UNKNOWN"
		if i := c.enum("log_type", types); i >= 0 {
			t = types[i]
		}
		*out = append(*out, LogRow{NodeID: id, LogType: t, LogID: int(c.uint("log_id")), LogPart: int(c.uint("log_part")),
			Total: c.uint("total"), Used: c.uint("used")})
	})
}

func readLogSpaces(ctx context.Context, q Querier, n *Ndbinfo) error {
	return readLog(ctx, q, logSpacesQuery, logSpaceTypes, &n.LogSpaces)
}

func readLogBuffers(ctx context.Context, q Querier, n *Ndbinfo) error {
	return readLog(ctx, q, logBuffersQuery, logBufferTypes, &n.LogBuffers)
}

// logMetrics: mysql_ndbinfo_logspaces_bytes_{total,used} [A.5] and
// mysql_ndbinfo_logbuffers_bytes_{total,used}, the fork's names (read in
// its ndbinfo_logbuffers.go; the facts name only the collector).
func logMetrics(set *metric.Set, view string, rows []LogRow) {
	for _, r := range rows {
		l := []string{"node_id", itoa(r.NodeID), "log_type", r.LogType, "log_id", itoa(r.LogID), "log_part", itoa(r.LogPart)}
		set.Add("mysql_ndbinfo_"+view+"_bytes_total", "Bytes of the log part (ndbinfo."+view+").", metric.Gauge, float64(r.Total), l...)
		set.Add("mysql_ndbinfo_"+view+"_bytes_used", "Bytes of the log part in use (ndbinfo."+view+").", metric.Gauge, float64(r.Used), l...)
	}
}
