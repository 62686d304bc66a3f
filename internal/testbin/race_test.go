package testbin

import (
	"os"
	"strings"
	"testing"
)

// The report the race detector wrote in the partition drill
// (TestHAAppliancesCutOffFromEachOther): memberlist rewriting a node that
// came back alive while Alertmanager's cluster reconnect loop read it.
func TestKnownUpstreamRace(t *testing.T) {
	b, err := os.ReadFile("testdata/race-alertmanager-2033.txt")
	if err != nil {
		t.Fatal(err)
	}
	report := string(b)
	if why := KnownUpstream(report); !strings.Contains(why, "alertmanager#2033") {
		t.Fatalf("the upstream race was not recognised: %q", why)
	}
	// The same race with a frame of nines in an access is nines' business.
	ours := strings.Replace(report, "  github.com/prometheus/alertmanager/cluster.(*Peer).reconnect-fm()",
		"  github.com/nines-project/nines/appliance/alertmanager.(*gossip).poke()", 1)
	if ours == report {
		t.Fatal("the test's edit did not apply")
	}
	if why := KnownUpstream(ours); why != "" {
		t.Errorf("a race with nines' frame in an access was excused: %q", why)
	}
	// Two races, one of them another: not excused.
	other := "==================\nWARNING: DATA RACE\nWrite at 0x1 by goroutine 7:\n  github.com/nines-project/nines/exporter.(*Scraper).run()\n      /x.go:1\n\nPrevious read at 0x1 by goroutine 8:\n  github.com/nines-project/nines/exporter.(*Scraper).Latest()\n      /x.go:2\n\n==================\n"
	if why := KnownUpstream(report + other); why != "" {
		t.Errorf("a report with a race of nines' was excused: %q", why)
	}
	if why := KnownUpstream(other); why != "" {
		t.Errorf("nines' own race was excused: %q", why)
	}
}
