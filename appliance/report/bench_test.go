package report

import (
	"bytes"
	"context"
	"sync"
	"testing"
	"time"
)

var yearOnce sync.Once

// yearEnd is the end of the benchmark's year of data: today's midnight.
func yearEnd() time.Time { return dayStart(time.Now()) }

// writeYear writes 365 days of per-second SLI counters for cluster
// "year": good seconds, with a bad outage of 30 s, one of 12 s, 5 unknown
// seconds and a 2-hour maintenance window.
func writeYear(b *testing.B) {
	yearOnce.Do(func() {
		end := yearEnd()
		start := end.AddDate(0, 0, -365)
		day := func(n int, h, m int) int64 {
			return start.AddDate(0, 0, n).Add(time.Duration(h)*time.Hour + time.Duration(m)*time.Minute).Unix()
		}
		bad1, bad2, unk, maint := day(40, 10, 0), day(300, 3, 17), day(200, 14, 2), day(100, 1, 0)
		t0 := time.Now()
		writeSeconds(b, "year", start.Add(-time.Minute), end.Add(time.Minute), func(sec int64) string {
			switch {
			case sec >= bad1 && sec < bad1+30, sec >= bad2 && sec < bad2+12:
				return "bad"
			case sec >= unk && sec < unk+5:
				return "unknown"
			case sec >= maint && sec < maint+7200:
				return "maintenance"
			}
			return "good"
		})
		b.Logf("wrote 365 days of per-second counters (4 series, %d samples) in %v", 4*365*86400, time.Since(t0).Round(time.Millisecond))
	})
}

// BenchmarkUptimeReportYear times a report over one year of per-second
// probe data: computing it and rendering it as JSON, HTML and PDF. Target:
// under 1 s per report.
func BenchmarkUptimeReportYear(b *testing.B) {
	writeYear(b)
	end := yearEnd()
	req := Request{Cluster: "year", From: end.AddDate(0, 0, -365), To: end, TargetPercent: 99.999, Now: time.Now()}
	var r *Report
	var size [3]int
	for b.Loop() {
		var err error
		if r, err = Build(context.Background(), testStore, req); err != nil {
			b.Fatal(err)
		}
		for i, f := range []string{"json", "html", "pdf"} {
			var out bytes.Buffer
			if err := Render(&out, r, f); err != nil {
				b.Fatal(err)
			}
			size[i] = out.Len()
		}
	}
	b.StopTimer()
	per := b.Elapsed() / time.Duration(b.N)
	b.ReportMetric(per.Seconds(), "s/report")
	b.Logf("one year report (json %d B, html %d B, pdf %d B): %v per report over %d runs; availability %s %%, downtime %d s, unknown %d s, maintenance %d s, %d incidents, %d days",
		size[0], size[1], size[2], per.Round(time.Millisecond), b.N, FormatAvailability(r.Summary), r.DowntimeSeconds, r.Unknown, r.Maintenance, len(r.Incidents), len(r.Days))
	if r.DowntimeSeconds != 42 || r.Unknown != 5 || r.Maintenance != 7200 || len(r.Incidents) != 3 || len(r.Days) != 365 {
		b.Errorf("year report: downtime %d, unknown %d, maintenance %d, %d incidents, %d days; want 42, 5, 7200, 3, 365",
			r.DowntimeSeconds, r.Unknown, r.Maintenance, len(r.Incidents), len(r.Days))
	}
}
