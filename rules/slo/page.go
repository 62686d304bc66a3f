package slo

import (
	"fmt"
	"time"

	"github.com/prometheus/prometheus/model/rulefmt"
)

// pageWindow is how far back the fast page looks for a bad second. The
// probe counts a bad second about one latency bound after it ends, and
// nines' store samples the counter every second; a minute also leaves at
// least four samples to an outside Prometheus scraping every 15 s. It is
// also how long the alert stays firing after the last bad second.
const pageWindow = time.Minute

// writeFailedPage is the fast page facts/slo.md asks for: a confirmed
// failed write probe second pages at once (for: 0s).
//
// It fires on the bad-seconds counter rather than on the probe's
// per-endpoint gauge (max by (cluster) (nines_probe_success) == 0):
//   - a bad second is confirmed: the second has closed, every probe
//     started in it through every endpoint has ended, and none committed
//     and read back within the latency bound;
//   - a counter is an event that a sample cannot miss, while a failed
//     second between two samples of a gauge would never be seen;
//   - unknown seconds (no probe result) and no data do not fire it: the
//     page says writes failed, and only a probe can say that.
func writeFailedPage(s Spec) rulefmt.Rule {
	return rulefmt.Rule{
		Alert: AlertWriteFails,
		Expr:  fmt.Sprintf("sum by (cluster) (increase(%s[%s])) > 0", seconds(s.Cluster, "bad"), dur(pageWindow)),
		Labels: map[string]string{
			"severity": "critical",
			"cluster":  s.Cluster,
		},
		Annotations: map[string]string{
			"summary": fmt.Sprintf("Writes to cluster %s are failing: no endpoint committed a probe write.", s.Cluster),
			"description": fmt.Sprintf("In the last %s, at least one second had the write probe fail through every endpoint of cluster %s: "+
				"none committed and read back its heartbeat within the latency bound. Applications writing to %s are failing. "+
				"Each such second spends %s of the %s error budget (%s s).",
				dur(pageWindow), s.Cluster, s.Cluster, percent(1/s.budgetSeconds()), dur(s.Window), num(s.budgetSeconds())),
			"runbook": "Check the last probe error per endpoint (console, or nines_probe_success{cluster=\"" + s.Cluster + "\"}): " +
				"ERROR 1047 means a Galera node outside the Primary component (a lost quorum: how many nodes run, wsrep_cluster_status); " +
				"connection refused means the server is down; a timeout means writes stall (flow control, a full disk, a peer dying " +
				"before Galera evicts it). What nines does itself: the remediator receives this alert, re-checks the live cluster and, " +
				"when the condition still holds, runs the matching runbook: rejoin a killed node, bootstrap a Galera cluster with no Primary " +
				"component from the node with the highest committed seqno, or fail replication over to the most advanced replica. " +
				"Follow it in the job log (nines jobs list, nines jobs show ID); remediation off or in dry-run leaves the repair to you.",
		},
	}
}
