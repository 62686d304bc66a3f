package ndb

import (
	"context"

	"github.com/nines-project/nines/internal/metric"
)

// countersQuery sums over block instances, as the fork does by default
// (its ndbinfo_counters.go, verbosity 0).
const countersQuery = `SELECT node_id, block_name, counter_name, SUM(val) AS val FROM ndbinfo.counters GROUP BY node_id, block_name, counter_name`

// CounterRow is one kernel counter of a data node, summed over block
// instances; it counts since the node started [A.1.1]. CounterName is
// the view's text, "<unknown>" for ids the server's view does not name
// (kept as that explicit label, not dropped).
type CounterRow struct {
	NodeID      int
	BlockName   string
	CounterName string
	Value       uint64
}

func readCounters(ctx context.Context, q Querier, n *Ndbinfo) error {
	return scan(ctx, q, countersQuery, func(c *cells) {
		id, ok := c.id("node_id")
		if !ok {
			return
		}
		n.Counters = append(n.Counters, CounterRow{NodeID: id, BlockName: c.str("block_name"), CounterName: c.str("counter_name"), Value: c.uint("val")})
	})
}

func countersMetrics(set *metric.Set, rows []CounterRow) {
	for _, r := range rows {
		set.Add("mysql_ndbinfo_counters", "Running totals of events such as reads and writes per kernel block and data node, since the node started.", metric.Counter, float64(r.Value),
			"node_id", itoa(r.NodeID), "block_name", r.BlockName, "counter_name", r.CounterName)
	}
}
