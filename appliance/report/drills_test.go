package report

import (
	"bytes"
	"context"
	"encoding/csv"
	"strings"
	"testing"
	"time"
)

// TestDrillsInTheReport: a drill started in the period is listed with its
// figures, one started before it is not, and the incident during the
// drill carries its ID, in every format.
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

	// CSV: one drill record with the figures under the header's names,
	// and the incident during it names the drill.
	b.Reset()
	if err := Render(&b, r, "csv"); err != nil {
		t.Fatal(err)
	}
	drillRecs, incidents := csvRows(t, b.Bytes())
	drillIncidents := 0
	for _, m := range incidents {
		if m["drill"] != "" {
			drillIncidents++
			if m["drill"] != "drill drill-1" {
				t.Errorf("CSV incident %v: drill %q, want drill drill-1", m, m["drill"])
			}
		}
	}
	want := map[string]string{"id": "drill-1", "scenario": "node-crash", "victims": "db3:3306", "start": FormatTime(during.Start), "outcome": "done",
		"detection_seconds": "0.4", "rto_seconds": "7.3", "stall_seconds": "1.9", "acked_writes": "321", "lost_writes": "0", "failover_seconds": "-"}
	if len(drillRecs) != 1 {
		t.Fatalf("CSV drill rows %v; want drill-1 only", drillRecs)
	}
	for k, w := range want {
		if drillRecs[0][k] != w {
			t.Errorf("CSV drill %s = %q, want %q", k, drillRecs[0][k], w)
		}
	}
	if drillIncidents != 1 {
		t.Errorf("CSV: %d incidents marked as a drill's; want 1", drillIncidents)
	}

	// PDF: the same row, read back as text.
	b.Reset()
	if err := Render(&b, r, "pdf"); err != nil {
		t.Fatal(err)
	}
	flat := strings.Join(strings.Fields(PDFText(t, b.Bytes())), " ")
	for _, want := range []string{"Drills", "RPO (lost writes)", "drill-1 node-crash " + FormatTime(during.Start) + " 0.4 7.3 1.9 321 0",
		"Nodes killed: db3:3306; outcome: done", "(drill drill-1)"} {
		if !strings.Contains(flat, want) {
			t.Errorf("the PDF report lacks %q in %s", want, flat)
		}
	}
	if strings.Contains(flat, "drill-0") {
		t.Errorf("the PDF report lists drill-0, which started before the period")
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

// TestPrimaryKillWritesBackInEveryFormat: a primary-kill drill's writes
// back (failover_seconds) is in the CSV's column and on the PDF's line.
func TestPrimaryKillWritesBackInEveryFormat(t *testing.T) {
	s := newScenario(t, "replicated")
	d := Drill{ID: "drill-pk", Scenario: "primary-kill", Victims: []string{"db1:3306"}, State: "done",
		Start: s.day.Add(8 * time.Hour), End: s.day.Add(8*time.Hour + 30*time.Second), DetectionSeconds: 0.5, FailoverSeconds: 2.64, RTOSeconds: 16.1, StallSeconds: 2.6, AckedWrites: 300}
	r, err := Build(context.Background(), testStore, Request{
		Cluster: "replicated", From: s.day, To: s.day.AddDate(0, 0, 1), TargetPercent: 99.9, Now: time.Now(), Drills: []Drill{d},
	})
	if err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	if err := Render(&b, r, "csv"); err != nil {
		t.Fatal(err)
	}
	if drills, _ := csvRows(t, b.Bytes()); len(drills) != 1 || drills[0]["failover_seconds"] != "2.6" {
		t.Errorf("CSV drill rows %v, want one with failover_seconds 2.6", drills)
	}
	b.Reset()
	if err := Render(&b, r, "pdf"); err != nil {
		t.Fatal(err)
	}
	flat := strings.Join(strings.Fields(PDFText(t, b.Bytes())), " ")
	if want := "Nodes killed: db1:3306; writes acknowledged again after 2.6 s; outcome: done"; !strings.Contains(flat, want) {
		t.Errorf("the PDF report lacks %q in %s", want, flat)
	}
}

// csvRows parses a CSV report's drill and incident rows, each a map from
// the names of the header row before it.
func csvRows(t *testing.T, b []byte) (drills, incidents []map[string]string) {
	t.Helper()
	cr := csv.NewReader(bytes.NewReader(b))
	cr.FieldsPerRecord = -1
	recs, err := cr.ReadAll()
	if err != nil {
		t.Fatalf("parse CSV: %v", err)
	}
	var header []string
	for _, rec := range recs {
		switch rec[0] {
		case "record":
			header = rec
		case "drill", "incident":
			if len(rec) != len(header) {
				t.Fatalf("CSV %s row %q has %d fields, its header %q %d", rec[0], rec, len(rec), header, len(header))
			}
			m := map[string]string{}
			for i, h := range header {
				m[h] = rec[i]
			}
			if rec[0] == "drill" {
				drills = append(drills, m)
			} else {
				incidents = append(incidents, m)
			}
		}
	}
	return drills, incidents
}
