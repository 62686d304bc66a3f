package ndb

import (
	"context"

	"github.com/nines-project/nines/internal/metric"
)

const memoryUsageQuery = `SELECT node_id, memory_type, used, used_pages, total, total_pages FROM ndbinfo.memoryusage`

// MemoryRow is one memory pool of a data node (ndbinfo.memoryusage): in
// 8.x "Data memory" and "Long message buffer" [A.1.1].
type MemoryRow struct {
	NodeID     int
	MemoryType string
	Used       uint64 // bytes
	UsedPages  uint64
	Total      uint64 // bytes
	TotalPages uint64
}

func readMemoryUsage(ctx context.Context, q Querier, n *Ndbinfo) error {
	return scan(ctx, q, memoryUsageQuery, func(c *cells) {
		id, ok := c.id("node_id")
		if !ok {
			return
		}
		n.Memory = append(n.Memory, MemoryRow{NodeID: id, MemoryType: c.str("memory_type"),
			Used: c.uint("used"), UsedPages: c.uint("used_pages"), Total: c.uint("total"), TotalPages: c.uint("total_pages")})
	})
}

func memoryUsageMetrics(set *metric.Set, rows []MemoryRow) {
	for _, r := range rows {
		l := []string{"node_id", itoa(r.NodeID), "memory_type", r.MemoryType}
		set.Add("mysql_ndbinfo_memoryusage_used", "Bytes of the memory pool in use (ndbinfo.memoryusage).", metric.Gauge, float64(r.Used), l...)
		set.Add("mysql_ndbinfo_memoryusage_total", "Bytes of the memory pool (ndbinfo.memoryusage); 5% of DataMemory is kept for restarts.", metric.Gauge, float64(r.Total), l...)
	}
}
