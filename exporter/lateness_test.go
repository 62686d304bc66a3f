package exporter

import (
	"testing"
	"time"
)

// TestLatenessHistogram: cumulative buckets as Prometheus histograms
// have them, so histogram_quantile over the stored series works.
func TestLatenessHistogram(t *testing.T) {
	var l Lateness
	for _, d := range []time.Duration{-time.Millisecond, 500 * time.Microsecond, 3 * time.Millisecond, 150 * time.Millisecond, 3 * time.Second} {
		l.observe(d)
	}
	got := map[string]float64{}
	for _, m := range l.Metrics() {
		key := m.Name
		for _, lb := range m.Labels {
			key += "{" + lb.Value + "}"
		}
		got[key] = m.Value
	}
	for key, want := range map[string]float64{
		"nines_scrape_lateness_seconds_bucket{0.001}": 2, // a negative lateness counts as 0
		"nines_scrape_lateness_seconds_bucket{0.005}": 3,
		"nines_scrape_lateness_seconds_bucket{0.1}":   3,
		"nines_scrape_lateness_seconds_bucket{0.2}":   4,
		"nines_scrape_lateness_seconds_bucket{1.0}":   4,
		"nines_scrape_lateness_seconds_bucket{2.5}":   4,
		"nines_scrape_lateness_seconds_bucket{+Inf}":  5,
		"nines_scrape_lateness_seconds_count":         5,
	} {
		if got[key] != want {
			t.Errorf("%s = %v, want %v", key, got[key], want)
		}
	}
	if s := got["nines_scrape_lateness_seconds_sum"]; s < 3.15 || s > 3.16 {
		t.Errorf("sum = %v, want 3.1535", s)
	}
}
