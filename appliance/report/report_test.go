package report

import (
	"context"
	"strings"
	"testing"
	"time"
)

// scenario is two days of a cluster's seconds, built so every figure of
// the report can be checked by hand:
//   - day 1, 10:00:00: 10 bad seconds, then 10:00:20: 2 unknown seconds
//     (under 30 s apart: one incident of 22 s);
//   - 23:59:59 and 00:00:00: 2 bad seconds across midnight (one incident);
//   - day 2, 02:00-03:00: a maintenance window (3,600 s);
//   - day 2, 05:00-05:10: the appliance is down (600 s without data), its
//     counters restart from zero, and 05:10:30: 5 bad seconds.
type scenario struct {
	cluster string
	day     time.Time // day 1, midnight UTC
}

func (s scenario) result(sec int64) string {
	t := time.Unix(sec, 0).UTC()
	d1, d2 := s.day, s.day.AddDate(0, 0, 1)
	in := func(from time.Time, n int) bool {
		return !t.Before(from) && t.Before(from.Add(time.Duration(n)*time.Second))
	}
	switch {
	case in(d1.Add(10*time.Hour), 10):
		return "bad"
	case in(d1.Add(10*time.Hour+20*time.Second), 2):
		return "unknown"
	case in(d2.Add(-time.Second), 2):
		return "bad"
	case in(d2.Add(2*time.Hour), 3600):
		return "maintenance"
	case in(d2.Add(5*time.Hour), 600):
		return down
	case in(d2.Add(5*time.Hour+10*time.Minute+30*time.Second), 5):
		return "bad"
	}
	return "good"
}

var scenarioOnce = map[string]scenario{}

// newScenario writes the scenario for cluster (once per test binary),
// with an hour of good seconds around it.
func newScenario(t *testing.T, cluster string) scenario {
	t.Helper()
	if s, ok := scenarioOnce[cluster]; ok {
		return s
	}
	s := scenario{cluster: cluster, day: dayStart(time.Now()).AddDate(0, 0, -3)}
	writeSeconds(t, cluster, s.day.Add(-time.Hour), s.day.AddDate(0, 0, 2).Add(time.Hour), s.result)
	// The page fired 3 s into the first outage and stopped 20 s after it.
	writeFiring(cluster, "NinesProbeWriteFailed", "critical", s.day.Add(10*time.Hour+3*time.Second), s.day.Add(10*time.Hour+42*time.Second))
	scenarioOnce[cluster] = s
	return s
}

func TestBuildCountsEverySecond(t *testing.T) {
	s := newScenario(t, "arith")
	d1, d2 := s.day, s.day.AddDate(0, 0, 1)
	jobs := []Job{
		{ID: "j1", Runbook: "galera-quorum-recovery", Trigger: "alert", Alert: "GaleraNoPrimary", State: "succeeded",
			Start: d1.Add(10*time.Hour + 5*time.Second), End: d1.Add(10*time.Hour + 9*time.Second)},
		{ID: "j2", Runbook: "backup", Trigger: "schedule", State: "succeeded", Start: d1.Add(10 * time.Hour), End: d1.Add(11 * time.Hour)},
		{ID: "j3", Runbook: "galera-node-rejoin", Target: "db2:3306", Trigger: "manual", State: "failed", Reason: "node unreachable",
			Start: d2.Add(6 * time.Hour), End: d2.Add(6*time.Hour + time.Minute)},
	}
	r, err := Build(context.Background(), testStore, Request{
		Cluster: "arith", From: d1, To: d1.AddDate(0, 0, 2), TargetPercent: 99.9, Jobs: jobs, Now: time.Now(),
	})
	if err != nil {
		t.Fatal(err)
	}

	const period = 2 * 86400
	want := Counts{Bad: 17, Unknown: 2, Maintenance: 3600, NoData: 600}
	want.Good = period - want.Bad - want.Unknown - want.Maintenance - want.NoData
	if r.Counts != want {
		t.Errorf("counts %+v, want %+v", r.Counts, want)
	}
	valid := float64(want.Valid())
	checkFloat(t, "availability", r.Availability, float64(want.Good)/valid)
	checkFloat(t, "budget", r.BudgetSeconds, 0.001*valid)
	checkFloat(t, "budget remaining", r.BudgetRemainingSeconds, 0.001*valid-19)
	checkFloat(t, "budget remaining %", r.BudgetRemainingPercent, (0.001*valid-19)/(0.001*valid)*100)
	if r.DowntimeSeconds != 17 || r.BudgetSpentSeconds != 19 || r.Status != StatusOK {
		t.Errorf("downtime %d, spent %d, status %s; want 17, 19, OK", r.DowntimeSeconds, r.BudgetSpentSeconds, r.Status)
	}
	if got := FormatAvailability(r.Summary); got != "99.98873" {
		t.Errorf("availability %s, want 99.98873 (%d good of %d valid, truncated)", got, want.Good, want.Valid())
	}

	// The counters are stored at the boundary they count up to, so days
	// split exactly at midnight: 23:59:59 is day 1's, 00:00:00 day 2's.
	if len(r.Days) != 2 || r.Days[0].Bad != 11 || r.Days[0].Unknown != 2 || r.Days[1].Bad != 6 ||
		r.Days[1].Maintenance != 3600 || r.Days[1].NoData != 600 || r.Days[0].Good+r.Days[1].Good != want.Good {
		t.Errorf("days %+v", r.Days)
	}

	type inc struct {
		start, end      time.Time
		bad, unknown    int64
		alerts, actions string
	}
	wantInc := []inc{
		{d1.Add(10 * time.Hour), d1.Add(10*time.Hour + 22*time.Second), 10, 2, "NinesProbeWriteFailed", "j1"},
		{d2.Add(-time.Second), d2.Add(time.Second), 2, 0, "", ""},
		{d2.Add(5*time.Hour + 630*time.Second), d2.Add(5*time.Hour + 635*time.Second), 5, 0, "", ""},
	}
	if len(r.Incidents) != len(wantInc) {
		t.Fatalf("incidents %+v, want %d", r.Incidents, len(wantInc))
	}
	for i, w := range wantInc {
		in := r.Incidents[i]
		var alerts, actions []string
		for _, a := range in.Alerts {
			alerts = append(alerts, a.Name)
		}
		for _, j := range in.Actions {
			actions = append(actions, j.ID)
		}
		if !in.Start.Equal(w.start) || !in.End.Equal(w.end) || in.BadSeconds != w.bad || in.UnknownSeconds != w.unknown ||
			in.DurationSeconds != int64(w.end.Sub(w.start)/time.Second) || strings.Join(alerts, ",") != w.alerts || strings.Join(actions, ",") != w.actions {
			t.Errorf("incident %d: %s to %s, %d bad %d unknown, alerts %v, actions %v; want %s to %s, %d bad %d unknown, alerts %q, actions %q",
				i, in.Start, in.End, in.BadSeconds, in.UnknownSeconds, alerts, actions, w.start, w.end, w.bad, w.unknown, w.alerts, w.actions)
		}
		checkFloat(t, "incident budget %", in.BudgetSpentPercent, float64(w.bad+w.unknown)/(0.001*valid)*100)
	}
	if a := r.Incidents[0].Alerts; len(a) == 1 && (a[0].Severity != "critical" || !a[0].Firing.Equal(d1.Add(10*time.Hour+3*time.Second))) {
		t.Errorf("alert %+v, want critical, first firing at 10:00:03", a[0])
	}
	checkFloat(t, "MTTR", r.MTTRSeconds, (22+2+5)/3.0)
	checkFloat(t, "MTBF", r.MTBFSeconds, float64(want.Good)/3)

	// The monthly table: 12 months ending with to's month; the scenario's
	// seconds all fall in the months that hold its two days.
	if len(r.Months) != 12 || !r.Months[11].Start.Equal(monthStart(d2)) {
		t.Fatalf("months %+v", r.Months)
	}
	var sum Counts
	for _, m := range r.Months {
		sum = sum.add(m.Counts)
		if m.Valid() == 0 && m.Status != StatusInsufficientData {
			t.Errorf("month %s without data: status %s", m.Start, m.Status)
		}
	}
	if sum.Bad != 17 || sum.Unknown != 2 || sum.Maintenance != 3600 || sum.Good < want.Good {
		t.Errorf("months add up to %+v, want the period's bad, unknown and maintenance seconds", sum)
	}
}

// TestBuildPartialDays: a period starting and ending inside days counts
// exactly the seconds within it.
func TestBuildPartialDays(t *testing.T) {
	s := newScenario(t, "arith")
	from := s.day.Add(9*time.Hour + 59*time.Minute + 55*time.Second)
	to := s.day.Add(10*time.Hour + 5*time.Second)
	r, err := Build(context.Background(), testStore, Request{Cluster: "arith", From: from, To: to, TargetPercent: 99.999, Now: time.Now()})
	if err != nil {
		t.Fatal(err)
	}
	// 10 s: 09:59:55..10:00:04: 5 good, then 5 of the 10 bad seconds.
	if want := (Counts{Good: 5, Bad: 5}); r.Counts != want || r.Status != StatusBreached || len(r.Days) != 1 {
		t.Errorf("counts %+v status %s days %d, want %+v BREACHED 1", r.Counts, r.Status, len(r.Days), want)
	}
	if len(r.Incidents) != 1 || !r.Incidents[0].Start.Equal(s.day.Add(10*time.Hour)) || r.Incidents[0].BadSeconds != 5 {
		t.Errorf("incidents %+v, want one from 10:00:00 with 5 bad seconds", r.Incidents)
	}
}

func TestStatusRule(t *testing.T) {
	day := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	end := day.Add(100_000 * time.Second)
	tests := []struct {
		name string
		c    Counts
		want string
	}{
		{"no errors", Counts{Good: 100_000}, StatusOK},
		{"74 % of the budget spent", Counts{Good: 99_926, Bad: 74}, StatusOK},
		{"76 % spent", Counts{Good: 99_924, Bad: 50, Unknown: 26}, StatusWarning},
		{"all spent, none over: a warning, not a breach", Counts{Good: 99_900, Bad: 100}, StatusWarning},
		{"over budget", Counts{Good: 99_899, Bad: 101}, StatusBreached},
		{"maintenance is covered, not valid", Counts{Good: 50_000, Maintenance: 50_000}, StatusOK},
		{"89 % covered", Counts{Good: 89_000}, StatusInsufficientData},
		{"breached beats insufficient data", Counts{Good: 10_000, Bad: 1_000}, StatusBreached},
		{"nothing", Counts{}, StatusInsufficientData},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// Target 99.9 %: the budget is 0.1 % of the valid seconds.
			if got := summarize(day, end, tt.c, 0.999); got.Status != tt.want {
				t.Errorf("status %s (remaining %.2f of %.2f s), want %s", got.Status, got.BudgetRemainingSeconds, got.BudgetSeconds, tt.want)
			}
		})
	}
}

func TestParseRange(t *testing.T) {
	now := time.Date(2026, 11, 26, 2, 30, 0, 0, time.UTC)
	tests := []struct {
		from, to         string
		wantFrom, wantTo string
		errParam         string
	}{
		{"", "", "2026-10-27T02:30:00Z", "2026-11-26T02:30:00Z", ""},
		{"month", "", "2026-11-01T00:00:00Z", "2026-11-26T02:30:00Z", ""},
		{"month", "2026-10-31", "2026-10-01T00:00:00Z", "2026-11-01T00:00:00Z", ""},
		{"7d", "2026-11-20T00:00:00Z", "2026-11-13T00:00:00Z", "2026-11-20T00:00:00Z", ""},
		{"90m", "now", "2026-11-26T01:00:00Z", "2026-11-26T02:30:00Z", ""},
		{"2026-01-01", "2027-01-01", "2026-01-01T00:00:00Z", "2026-11-26T02:30:00Z", ""},
		{"2026-11-25T10:00:00+02:00", "", "2026-11-25T08:00:00Z", "2026-11-26T02:30:00Z", ""},
		{"yesterday", "", "", "", "from"},
		{"", "soon", "", "", "to"},
		{"2026-11-27", "", "", "", "from"},
		{"0d", "", "", "", "from"},
		{"1926-11-26", "", "", "", "from"},
	}
	for _, tt := range tests {
		from, to, err := ParseRange(tt.from, tt.to, now)
		if tt.errParam != "" {
			re, ok := err.(*RangeError)
			if !ok || re.Param != tt.errParam {
				t.Errorf("ParseRange(%q, %q) = %v, want an error about %s", tt.from, tt.to, err, tt.errParam)
			}
			continue
		}
		if err != nil || FormatTime(from) != tt.wantFrom || FormatTime(to) != tt.wantTo {
			t.Errorf("ParseRange(%q, %q) = %s, %s, %v; want %s, %s", tt.from, tt.to, FormatTime(from), FormatTime(to), err, tt.wantFrom, tt.wantTo)
		}
	}
}

func checkFloat(t *testing.T, what string, got, want float64) {
	t.Helper()
	if d := got - want; d > 1e-9 || d < -1e-9 {
		t.Errorf("%s = %v, want %v", what, got, want)
	}
}
