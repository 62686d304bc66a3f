package ndb

import (
	"context"

	"github.com/nines-project/nines/internal/metric"
)

const transportersQuery = `SELECT node_id, remote_node_id, status, remote_address, bytes_sent, bytes_received, overloaded, slowdown, encrypted FROM ndbinfo.transporters`

// transportersQuery80 is for servers whose view has no encrypted column
// (8.0 before 8.3 [A.1.1]).
const transportersQuery80 = `SELECT node_id, remote_node_id, status, remote_address, bytes_sent, bytes_received, overloaded, slowdown FROM ndbinfo.transporters`

// LinkStatus is transporters.status: the view's CASE 0..3, or
// LinkUnknown for NULL (the view's ELSE) or any other text.
type LinkStatus int

const LinkUnknown LinkStatus = -1

const (
	LinkConnected LinkStatus = iota
	LinkConnecting
	LinkDisconnected
	LinkDisconnecting
)

var linkStatusNames = []string{"CONNECTED", "CONNECTING", "DISCONNECTED", "DISCONNECTING"}

func (s LinkStatus) String() string {
	if s >= 0 && int(s) < len(linkStatusNames) {
		return linkStatusNames[s]
	}
	return "UNKNOWN"
}

// TransporterRow is one running data node's link to a configured node.
// A stopped data node has no rows of its own; its peers' rows to it
// say CONNECTING [A.1.1].
type TransporterRow struct {
	NodeID, RemoteNodeID int
	Status               LinkStatus
	RemoteAddress        string // "-" when not connected
	BytesSent, BytesRecv uint64
	Overloaded, Slowdown bool
	Encrypted            bool
	// EncryptedKnown is false on servers whose view has no encrypted
	// column (8.0 before 8.3); the series is then absent, as in the fork.
	EncryptedKnown bool
}

func readTransporters(ctx context.Context, q Querier, n *Ndbinfo) error {
	withEncrypted := true
	parse := func(c *cells) {
		id, ok := c.id("node_id")
		if !ok {
			return
		}
		rid, ok := c.id("remote_node_id")
		if !ok {
			return
		}
		n.Transporters = append(n.Transporters, TransporterRow{NodeID: id, RemoteNodeID: rid,
			Status: LinkStatus(c.enum("status", linkStatusNames)), RemoteAddress: c.str("remote_address"),
			BytesSent: c.uint("bytes_sent"), BytesRecv: c.uint("bytes_received"),
			Overloaded: c.uint("overloaded") != 0, Slowdown: c.uint("slowdown") != 0})
		if withEncrypted {
			r := &n.Transporters[len(n.Transporters)-1]
			r.Encrypted, r.EncryptedKnown = c.uint("encrypted") != 0, true
		}
	}
	err := scan(ctx, q, transportersQuery, parse)
	if err != nil && len(n.Transporters) == 0 && isUnknownColumn(err) {
		withEncrypted = false
		return scan(ctx, q, transportersQuery80, parse)
	}
	return err
}

func boolValue(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

// transportersMetrics: the fork's names and labels [A.5]: status carries
// remote_address, the other series node_id and remote_node_id only.
// Unlike the fork, rows with remote_address "-" and CONNECTING are kept:
// they are how a stopped data node shows from its peers.
func transportersMetrics(set *metric.Set, rows []TransporterRow) {
	for _, r := range rows {
		id, rid := itoa(r.NodeID), itoa(r.RemoteNodeID)
		l := []string{"node_id", id, "remote_node_id", rid}
		set.Add("mysql_ndbinfo_transporters_status", "Link status: 0 CONNECTED, 1 CONNECTING, 2 DISCONNECTED, 3 DISCONNECTING, -1 unknown.", metric.Gauge, float64(r.Status), append(l, "remote_address", r.RemoteAddress)...)
		set.Add("mysql_ndbinfo_transporters_bytes_sent", "Bytes sent on the link since it connected.", metric.Counter, float64(r.BytesSent), l...)
		set.Add("mysql_ndbinfo_transporters_bytes_received", "Bytes received on the link since it connected.", metric.Counter, float64(r.BytesRecv), l...)
		set.Add("mysql_ndbinfo_transporters_overloaded", "1 while the link's send buffer is over OverloadLimit (new transactions fail with error 1218).", metric.Gauge, boolValue(r.Overloaded), l...)
		set.Add("mysql_ndbinfo_transporters_slowdown", "1 while the link is in slowdown (send buffer over 60% of OverloadLimit).", metric.Gauge, boolValue(r.Slowdown), l...)
		if r.EncryptedKnown {
			set.Add("mysql_ndbinfo_transporters_encrypted", "1 when the link uses TLS.", metric.Gauge, boolValue(r.Encrypted), l...)
		}
	}
}
