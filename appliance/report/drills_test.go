package report

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"
)

// TestDrillsInTheReport: a drill started in the period is listed with its
// figures, one started before it is not, and the incident during the
// drill carries its ID in JSON and HTML.
func TestDrillsInTheReport(t *testing.T) {
	s := newScenario(t, "drilled")
	during := Drill{ID: "drill-1", Scenario: "node-crash", Victims: []string{"db3:3306"}, State: "done",
		Start: s.day.Add(10 * time.Hour), End: s.day.Add(10*time.Hour + 50*time.Second), DetectionSeconds: 0.4, RTOSeconds: 7.26, StallSeconds: 1.9, AckedWrites: 321}
	before := Drill{ID: "drill-0", Scenario: "whole-crash", State: "done", Start: s.day.Add(-time.Hour), End: s.day.Add(-time.Hour + time.Minute)}
	r, err := Build(context.Background(), testStore, Request{
		Cluster: "drilled", From: s.day, To: s.day.AddDate(0, 0, 2), TargetPercent: 99.9, Now: time.Now(), Drills: []Drill{before, during},
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Drills) != 1 || r.Drills[0].ID != "drill-1" || r.Drills[0].RTOSeconds != 7.26 {
		t.Fatalf("drills in the report: %+v; want drill-1 only", r.Drills)
	}
	marked := 0
	for _, in := range r.Incidents {
		overlaps := in.Start.Before(during.End) && in.End.After(during.Start)
		if overlaps != (in.Drill == "drill-1") {
			t.Errorf("incident %s to %s: drill %q, overlaps drill-1 %v", in.Start, in.End, in.Drill, overlaps)
		}
		if in.Drill != "" {
			marked++
		}
	}
	if marked != 1 {
		t.Errorf("%d incidents marked as the drill's; want the one at 10:00", marked)
	}
	var b bytes.Buffer
	if err := Render(&b, r, "html"); err != nil {
		t.Fatal(err)
	}
	text := htmlText(b.String())
	for _, want := range []string{"Drills", "drill-1", "node-crash", "db3:3306", "7.3", "321", "(drill drill-1)"} {
		if !strings.Contains(text, want) {
			t.Errorf("the HTML report lacks %q", want)
		}
	}
	if strings.Contains(text, "drill-0") {
		t.Errorf("the HTML report lists drill-0, which started before the period")
	}
}

// TestDrillRowWritesBack: a primary-kill's failover (writes back) is
// shown beside its RTO; a Galera drill has none, shown as "-", not 0.
func TestDrillRowWritesBack(t *testing.T) {
	pk := newDrillRow(Drill{ID: "drill-2", Scenario: "primary-kill", State: "done", FailoverSeconds: 1.64, RTOSeconds: 15.2})
	if pk.Failover != "1.6" || pk.RTO != "15.2" {
		t.Errorf("primary-kill row: writes back %q, RTO %q; want 1.6 and 15.2", pk.Failover, pk.RTO)
	}
	if g := newDrillRow(Drill{ID: "drill-3", Scenario: "node-crash", State: "done", RTOSeconds: 6}); g.Failover != "-" {
		t.Errorf("node-crash row: writes back %q; want -", g.Failover)
	}
}
