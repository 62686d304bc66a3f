//go:build cluster

package e2e

import (
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/nines-project/nines/appliance/apiclient"
	"github.com/nines-project/nines/sandbox"
)

// TestUptimeReport: a write outage of about 10 s (every node read_only)
// shows in the uptime report as downtime equal to the outage the test
// measured, to within 1.5 s (the probe's one-second sampling at its
// edges), as one incident inside the drill; the HTML, the PDF (read back
// with pdftotext), the CSV and the JSON of the API, and the CLI's report,
// all show the same figures.
func TestUptimeReport(t *testing.T) {
	sb := sharedGalera(t)
	a := startAppliance(t, sb.ConfigPath(), sb.TokenPath())
	cluster := sb.ClusterName()
	waitFor(t, a.started, 20*time.Second, "every node's probe to succeed", func() bool {
		return len(a.query(fmt.Sprintf(`nines_probe_success{cluster=%q} == 1`, cluster))) == 3
	})
	time.Sleep(2 * time.Second)
	from := time.Now().Truncate(time.Second)
	time.Sleep(2 * time.Second)

	// The outage runs from the moment the last node refuses writes to the
	// moment the first one takes them again.
	setReadOnly := func(on string) (first, last time.Time) { return setAllReadOnly(t, sb, on) }
	drillStart := time.Now()
	_, outageStart := setReadOnly("ON")
	time.Sleep(10 * time.Second)
	outageEnd, drillEnd := setReadOnly("OFF")
	outage := outageEnd.Sub(outageStart)
	time.Sleep(2 * time.Second)
	to := time.Now().Truncate(time.Second)

	params := url.Values{"cluster": {cluster}, "from": {from.Format(time.RFC3339)}, "to": {to.Format(time.RFC3339)}}
	var env struct {
		Data struct {
			End          time.Time `json:"end"`
			RequestedEnd time.Time `json:"requested_end"`
			Good         int64     `json:"good_seconds"`
			Bad          int64     `json:"bad_seconds"`
			Unknown      int64     `json:"unknown_seconds"`
			NoData       int64     `json:"no_data_seconds"`
			Availability float64   `json:"availability"`
			Downtime     int64     `json:"downtime_seconds"`
			Status       string    `json:"status"`
			Incidents    []struct {
				Start    time.Time `json:"start"`
				End      time.Time `json:"end"`
				Duration int64     `json:"duration_seconds"`
				Alerts   []struct {
					Name string `json:"alertname"`
				} `json:"alerts"`
			} `json:"incidents"`
			Days   []json.RawMessage `json:"days"`
			Months []json.RawMessage `json:"months"`
		}
	}
	params.Set("format", "json")
	// The ledger counts a second a few seconds after it ends; until then
	// the report ends at the last counted second and says so. Wait for
	// the whole period, so every format below reports the same seconds.
	counted := waitFor(t, to, 15*time.Second, "the report to count the whole period", func() bool {
		env.Data.End, env.Data.RequestedEnd = time.Time{}, time.Time{}
		if code, err := a.get("/api/v1/reports/uptime", params, &env); err != nil || code != http.StatusOK {
			t.Fatalf("GET uptime report json: %d %v", code, err)
		}
		if !env.Data.RequestedEnd.Equal(to) {
			t.Fatalf("report requested_end %s, asked to %s", env.Data.RequestedEnd, to)
		}
		return env.Data.End.Equal(to)
	})
	r := env.Data
	t.Logf("measured: the report counted the whole period %s after its end", counted.Round(time.Millisecond))
	var alerts []string
	if len(r.Incidents) == 1 {
		for _, al := range r.Incidents[0].Alerts {
			alerts = append(alerts, al.Name)
		}
	}
	t.Logf("measured: outage %.3f s (%s to %s), drill %s to %s; report %s to %s: good %d bad %d unknown %d no-data %d, availability %.7f, downtime %d s, status %s, incidents %+v, alerts %v",
		outage.Seconds(), outageStart.Format("15:04:05.000"), outageEnd.Format("15:04:05.000"), drillStart.Format("15:04:05.000"), drillEnd.Format("15:04:05.000"),
		from.Format("15:04:05"), to.Format("15:04:05"), r.Good, r.Bad, r.Unknown, r.NoData, r.Availability, r.Downtime, r.Status, r.Incidents, alerts)
	// The probe writes once a second, so each edge of the outage is known
	// to within that second; a write a few ms late on a loaded machine
	// can fall on either side of an edge (a 10.002 s outage was once
	// counted as 9 s). 1.5 s allows that and still catches a second
	// counted wrongly.
	if math.Abs(float64(r.Downtime)-outage.Seconds()) > 1.5 {
		t.Errorf("downtime %d s, the measured outage %.3f s: more than 1.5 s apart", r.Downtime, outage.Seconds())
	}
	if span := int64(to.Sub(from) / time.Second); r.Good+r.Bad+r.Unknown+r.NoData != span || r.NoData > 1 {
		t.Errorf("good+bad+unknown+no-data = %d, the period has %d s; no-data %d", r.Good+r.Bad+r.Unknown+r.NoData, span, r.NoData)
	}
	if r.Status != "BREACHED" || len(r.Days) == 0 || len(r.Months) != 12 {
		t.Errorf("status %s, %d days, %d months; want BREACHED (10 s is over any five-nines budget), days, 12 months", r.Status, len(r.Days), len(r.Months))
	}
	if len(r.Incidents) != 1 {
		t.Fatalf("incidents %+v, want one", r.Incidents)
	}
	in := r.Incidents[0]
	// Seconds are whole: the first bad second is the first whose probe
	// ran after the outage began (within a second of it), and the
	// incident ends with the last bad second, which the outage's end
	// falls in. Both lie within the drill, at one-second resolution.
	if in.Start.Before(drillStart.Truncate(time.Second)) || in.Start.After(outageStart.Add(time.Second)) ||
		in.End.Before(outageEnd.Truncate(time.Second)) || in.End.After(drillEnd.Add(time.Second)) {
		t.Errorf("incident %s to %s does not lie within the drill %s to %s (outage %s to %s)", in.Start.Format("15:04:05"), in.End.Format("15:04:05"),
			drillStart.Format("15:04:05.000"), drillEnd.Format("15:04:05.000"), outageStart.Format("15:04:05.000"), outageEnd.Format("15:04:05.000"))
	}
	if in.Duration != r.Downtime {
		t.Errorf("incident of %d s, downtime %d s: the drill's bad seconds are one run", in.Duration, r.Downtime)
	}
	if !slicesContain(alerts, "NinesProbeWriteFailed") {
		t.Errorf("alerts during the incident %v, want NinesProbeWriteFailed (the fast page)", alerts)
	}

	// The same figures in every format.
	avail := availabilityText(r.Good, r.Good+r.Bad+r.Unknown)
	downtime := fmt.Sprint(r.Downtime)
	start, end := in.Start.UTC().Format(time.RFC3339), in.End.UTC().Format(time.RFC3339)
	htmlPage := string(getReport(t, a, params, "html", "text/html"))
	pdfText := pdfToText(t, getReport(t, a, params, "pdf", "application/pdf"))
	csvSummary, csvIncidents := parseReportCSV(t, getReport(t, a, params, "csv", "text/csv"))
	t.Logf("html: availability %q downtime %q; pdf: %q; csv: availability %q downtime %q incidents %v",
		figureIn(htmlPage, `data-key="availability_percent">([^<]*)<`), figureIn(htmlPage, `data-key="downtime_seconds">([^<]*)<`),
		figureIn(pdfText, `Downtime \(bad seconds\)\s+(\S+)`), csvSummary["availability_percent"], csvSummary["downtime_seconds"], csvIncidents)
	checks := []struct{ format, what, got, want string }{
		{"html", "availability", figureIn(htmlPage, `data-key="availability_percent">([^<]*)<`), avail},
		{"html", "downtime", figureIn(htmlPage, `data-key="downtime_seconds">([^<]*)<`), downtime},
		{"pdf", "availability", figureIn(pdfText, `Availability\s+(\S+)`), avail},
		{"pdf", "downtime", figureIn(pdfText, `Downtime \(bad seconds\)\s+(\S+)`), downtime},
		{"pdf", "status", figureIn(pdfText, `Status: (\S+)`), r.Status},
		{"csv", "availability", csvSummary["availability_percent"], avail},
		{"csv", "downtime", csvSummary["downtime_seconds"], downtime},
		{"csv", "status", csvSummary["status"], r.Status},
	}
	for _, c := range checks {
		if c.got != c.want {
			t.Errorf("%s report: %s %q, want %q (as in the JSON)", c.format, c.what, c.got, c.want)
		}
	}
	for format, text := range map[string]string{"html": htmlPage, "pdf": pdfText} {
		if !strings.Contains(text, start) || !strings.Contains(text, end) {
			t.Errorf("%s report lacks the incident %s to %s", format, start, end)
		}
	}
	if len(csvIncidents) != 1 || csvIncidents[0][1] != start || csvIncidents[0][2] != end || csvIncidents[0][3] != fmt.Sprint(in.Duration) {
		t.Errorf("CSV incidents %v, want one from %s to %s", csvIncidents, start, end)
	}

	// The CLI asks the running appliance for the same report.
	out := filepath.Join(t.TempDir(), "uptime.csv")
	cli, err := exec.Command(ninesBin, "report", "uptime", "--config", sb.ConfigPath(), "--api", a.base, "--cluster", cluster,
		"--from", params.Get("from"), "--to", params.Get("to"), "--format", "csv", "--out", out).CombinedOutput()
	if err != nil {
		t.Fatalf("nines report uptime: %v: %s", err, cli)
	}
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	cliSummary, cliIncidents := parseReportCSV(t, b)
	if cliSummary["downtime_seconds"] != downtime || cliSummary["availability_percent"] != avail || len(cliIncidents) != 1 || cliIncidents[0][1] != start {
		t.Errorf("nines report uptime: summary %v incidents %v; want downtime %s availability %s, the incident from %s", cliSummary, cliIncidents, downtime, avail, start)
	}

	// Bad parameters are refused, naming the parameter.
	for _, bad := range []struct{ param, value, want string }{
		{"format", "xls", "format"},
		{"cluster", "nosuch", "cluster"},
		{"from", to.Add(time.Hour).Format(time.RFC3339), "from"},
		{"to", "tomorrow", "to"},
	} {
		p := url.Values{}
		for k, v := range params {
			p[k] = v
		}
		p.Set(bad.param, bad.value)
		body, code := getRaw(t, a, p)
		if code != http.StatusBadRequest || !strings.Contains(string(body), bad.want) {
			t.Errorf("%s=%s: %d %s, want 400 naming %s", bad.param, bad.value, code, body, bad.want)
		}
	}
}

// setAllReadOnly sets read_only on every node of sb in turn and returns
// when the first and the last node had it.
func setAllReadOnly(t *testing.T, sb *sandbox.Sandbox, on string) (first, last time.Time) {
	t.Helper()
	for i, n := range sb.Nodes() {
		db, err := sb.DB(n.Name)
		if err != nil {
			t.Fatal(err)
		}
		_, err = db.Exec("SET GLOBAL read_only = " + on)
		db.Close()
		if err != nil {
			t.Fatalf("read_only %s on %s: %v", on, n.Name, err)
		}
		if i == 0 {
			first = time.Now()
		}
		last = time.Now()
	}
	return first, last
}

// TestUptimeReportMaintenance: seconds inside a declared maintenance
// window count as maintenance, whatever the probe found, and an outage
// running past the window's end is downtime from the window's end only.
func TestUptimeReportMaintenance(t *testing.T) {
	sb := sharedGalera(t)
	addr := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	winFrom := time.Now().Truncate(time.Second).Add(15 * time.Second)
	winTo := winFrom.Add(10 * time.Second)
	b := clusterConfig(sb, addr, "test", true)
	fmt.Fprintf(b, "    remediation: {mode: \"off\"}\n    maintenance:\n      - {from: %s, to: %s, reason: e2e drill}\n",
		winFrom.Format(time.RFC3339), winTo.Format(time.RFC3339))
	cfg := filepath.Join(t.TempDir(), "nines.yaml")
	if err := os.WriteFile(cfg, []byte(b.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	a := startApplianceOn(t, ninesBin, addr, cfg, sb.TokenPath())
	cluster := sb.ClusterName()
	waitFor(t, a.started, 10*time.Second, "every node's probe to succeed", func() bool {
		return len(a.query(fmt.Sprintf(`nines_probe_success{cluster=%q} == 1`, cluster))) == 3
	})
	from := time.Now().Truncate(time.Second)
	if !from.Before(winFrom) {
		t.Fatalf("the appliance took until %s to probe, after the window's start %s", from, winFrom)
	}

	// Writes fail from 5 s before the window's end to 3.5 s after it (mid
	// second, so the probe at the top of each second is clear of it).
	time.Sleep(time.Until(winTo.Add(-5 * time.Second)))
	setAllReadOnly(t, sb, "ON")
	time.Sleep(time.Until(winTo.Add(3500 * time.Millisecond)))
	outageEnd, _ := setAllReadOnly(t, sb, "OFF")
	afterWindow := outageEnd.Sub(winTo)
	time.Sleep(4 * time.Second)
	to := time.Now().Truncate(time.Second)

	var env struct {
		Data struct {
			Good        int64 `json:"good_seconds"`
			Bad         int64 `json:"bad_seconds"`
			Unknown     int64 `json:"unknown_seconds"`
			Maintenance int64 `json:"maintenance_seconds"`
			Incidents   []struct {
				Start time.Time `json:"start"`
				End   time.Time `json:"end"`
			} `json:"incidents"`
		}
	}
	params := url.Values{"cluster": {cluster}, "from": {from.Format(time.RFC3339)}, "to": {to.Format(time.RFC3339)}, "format": {"json"}}
	if code, err := a.get("/api/v1/reports/uptime", params, &env); err != nil || code != http.StatusOK {
		t.Fatalf("GET uptime report: %d %v", code, err)
	}
	r := env.Data
	t.Logf("measured: window %s to %s, outage until %s (%.3f s after the window); report: good %d bad %d unknown %d maintenance %d, incidents %+v",
		winFrom.Format("15:04:05"), winTo.Format("15:04:05"), outageEnd.Format("15:04:05.000"), afterWindow.Seconds(), r.Good, r.Bad, r.Unknown, r.Maintenance, r.Incidents)
	if r.Maintenance != 10 {
		t.Errorf("maintenance seconds %d, want the window's 10", r.Maintenance)
	}
	if math.Abs(float64(r.Bad)-afterWindow.Seconds()) > 1 {
		t.Errorf("bad seconds %d, the outage ran %.3f s past the window", r.Bad, afterWindow.Seconds())
	}
	if len(r.Incidents) != 1 || !r.Incidents[0].Start.Equal(winTo) {
		t.Errorf("incidents %+v, want one starting at the window's end %s", r.Incidents, winTo.Format(time.RFC3339))
	}
	// The SLO rules see the same: maintenance seconds are not valid.
	if ss := a.query(fmt.Sprintf(`nines_probe_seconds_total{cluster=%q,result="maintenance"}`, cluster)); len(ss) != 1 || ss[0].Value != 10 {
		t.Errorf("nines_probe_seconds_total{result=\"maintenance\"} = %+v, want 10", ss)
	}
}

// availabilityText is the report's availability figure: per cent to five
// decimals, truncated.
func availabilityText(good, valid int64) string {
	u := good * 10_000_000 / valid
	return fmt.Sprintf("%d.%05d", u/100_000, u%100_000)
}

func getRaw(t *testing.T, a *appliance, params url.Values) ([]byte, int) {
	t.Helper()
	b, code, _ := getRawType(t, a, params)
	return b, code
}

// getRawType is GET /api/v1/reports/uptime through the CLI's client
// (report timeout and size limit): body, status and content type.
func getRawType(t *testing.T, a *appliance, params url.Values) ([]byte, int, string) {
	t.Helper()
	r, err := a.api().ReportDocument(context.Background(), apiclient.ReportRequest{
		Cluster: params.Get("cluster"), From: params.Get("from"), To: params.Get("to"), Format: params.Get("format"),
	})
	var e *apiclient.Error
	if errors.As(err, &e) {
		return e.Body, e.Status, "application/json"
	}
	if err != nil {
		t.Fatal(err)
	}
	return r.Body, r.Status, r.Header.Get("Content-Type")
}

// getReport fetches the report in format and checks its content type.
func getReport(t *testing.T, a *appliance, params url.Values, format, contentType string) []byte {
	t.Helper()
	p := url.Values{}
	for k, v := range params {
		p[k] = v
	}
	p.Set("format", format)
	b, code, ctype := getRawType(t, a, p)
	if code != http.StatusOK || !strings.HasPrefix(ctype, contentType) {
		t.Fatalf("GET uptime report %s: %d %s: %.300s", format, code, ctype, b)
	}
	return b
}

// pdfToText extracts a PDF's text as a reader copying it would get it.
func pdfToText(t *testing.T, pdf []byte) string {
	t.Helper()
	in := filepath.Join(t.TempDir(), "report.pdf")
	if err := os.WriteFile(in, pdf, 0o600); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command("pdftotext", "-layout", in, "-").CombinedOutput()
	if err != nil {
		t.Fatalf("pdftotext (poppler-utils; scripts/install-deps.sh installs it): %v: %s", err, out)
	}
	return string(out)
}

// parseReportCSV returns the CSV report's summary (field → value) and its
// incident rows.
func parseReportCSV(t *testing.T, b []byte) (map[string]string, [][]string) {
	t.Helper()
	r := csv.NewReader(strings.NewReader(string(b)))
	r.FieldsPerRecord = -1
	recs, err := r.ReadAll()
	if err != nil {
		t.Fatalf("CSV report: %v", err)
	}
	summary := map[string]string{}
	var incidents [][]string
	for _, rec := range recs {
		switch rec[0] {
		case "summary":
			summary[rec[1]] = rec[2]
		case "incident":
			incidents = append(incidents, rec)
		}
	}
	return summary, incidents
}

func figureIn(text, re string) string {
	m := regexp.MustCompile(re).FindStringSubmatch(text)
	if m == nil {
		return ""
	}
	return m[1]
}

func slicesContain(ss []string, s string) bool {
	for _, x := range ss {
		if x == s {
			return true
		}
	}
	return false
}
