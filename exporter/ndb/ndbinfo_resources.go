package ndb

import (
	"context"

	"github.com/nines-project/nines/internal/metric"
)

const resourcesQuery = "SELECT node_id, resource_name, reserved, used, `max`, spare FROM ndbinfo.resources"

var resourceNames = []string{"RESERVED", "TRANSACTION_MEMORY", "DISK_RECORDS", "DATA_MEMORY", "JOBBUFFER", "FILE_BUFFERS",
	"TRANSPORTER_BUFFERS", "DISK_PAGE_BUFFER", "QUERY_MEMORY", "SCHEMA_TRANS_MEMORY"}

// ResourceRow is one resource of a data node, in 32 KB pages [A.1.1].
// An unknown resource name is an error; the row is kept under its name.
type ResourceRow struct {
	NodeID                     int
	Name                       string
	Reserved, Used, Max, Spare uint64
}

func readResources(ctx context.Context, q Querier, n *Ndbinfo) error {
	return scan(ctx, q, resourcesQuery, func(c *cells) {
		id, ok := c.id("node_id")
		if !ok {
			return
		}
		name := c.str("resource_name")
		if name != "" {
			c.enum("resource_name", resourceNames)
		}
		n.Resources = append(n.Resources, ResourceRow{NodeID: id, Name: name,
			Reserved: c.uint("reserved"), Used: c.uint("used"), Max: c.uint("max"), Spare: c.uint("spare")})
	})
}

// resourcesMetrics: the fork's names [A.5 collector list; names read in
// its ndbinfo_resources.go]; spare has no series there and none here.
func resourcesMetrics(set *metric.Set, rows []ResourceRow) {
	for _, r := range rows {
		l := []string{"node_id", itoa(r.NodeID), "resource_name", r.Name}
		set.Add("mysql_ndbinfo_resources_reserved", "32 KB pages reserved for the resource (ndbinfo.resources).", metric.Gauge, float64(r.Reserved), l...)
		set.Add("mysql_ndbinfo_resources_used", "32 KB pages of the resource in use.", metric.Gauge, float64(r.Used), l...)
		set.Add("mysql_ndbinfo_resources_max", "Most 32 KB pages the resource may use.", metric.Gauge, float64(r.Max), l...)
	}
}
