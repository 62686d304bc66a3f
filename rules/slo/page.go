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

// writeFailedPage is the fast page facts/slo.md asks for, one rule for
// every cluster of the group: a confirmed failed write probe second pages
// at once (for: 0s).
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
//
// Its expression reads the raw counters only, never a recorded series:
// the records are evaluated every Interval, the page every PageInterval,
// and a page must not wait for the slower group. Only its annotations
// read the recorded budget, to say what a bad second costs.
func writeFailedPage(g *sloGroup) rulefmt.Rule {
	return rulefmt.Rule{
		Alert:  AlertWriteFails,
		Expr:   fmt.Sprintf("sum by (cluster) (increase(%s[%s])) > 0", g.counters("bad"), dur(pageWindow)),
		Labels: g.labels("severity", "critical"),
		Annotations: map[string]string{
			"summary": "Writes to cluster {{ $labels.cluster }} are failing: no endpoint committed a probe write.",
			"description": fmt.Sprintf("In the last %s, {{ $value | humanize }} second(s) had the write probe fail through every endpoint of cluster {{ $labels.cluster }}: "+
				"none committed and read back its heartbeat within the latency bound. Applications writing to {{ $labels.cluster }} are failing. "+
				"Each such second spends %s %% of the %s error budget (%s s).",
				dur(pageWindow), g.clusterValue("100 / %s", RecordBudget, `printf "%.3g"`), dur(g.window), g.clusterValue("%s", RecordBudget, secondsFormat)),
			"runbook": "Check the last probe error per endpoint (console, or nines_probe_success{cluster=\"{{ $labels.cluster }}\"}): " +
				"ERROR 1047 means a Galera node outside the Primary component (a lost quorum: how many nodes run, wsrep_cluster_status); " +
				"connection refused means the server is down; a timeout means writes stall (flow control, a full disk, a peer dying " +
				"before Galera evicts it). What nines does itself: the remediator receives this alert, re-checks the live cluster and, " +
				"when the condition still holds, runs the matching runbook: rejoin a killed node, bootstrap a Galera cluster with no Primary " +
				"component from the node with the highest committed seqno, or fail replication over to the most advanced replica. " +
				"Follow it in the job log (nines jobs list, nines jobs show ID); remediation off or in dry-run leaves the repair to you.",
		},
	}
}
