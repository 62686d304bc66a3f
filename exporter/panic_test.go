package exporter

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nines-project/nines"
)

// TestPanickingCollectorIsAScrapeError: a collector that panics fails
// that scrape (counted in nines_scrape_errors_total, stack logged), and
// the scrape loop keeps running and scraping.
func TestPanickingCollectorIsAScrapeError(t *testing.T) {
	var logs bytes.Buffer
	s, err := NewScraper(Target{Cluster: "c", Address: "127.0.0.1:1", User: "u"},
		Options{Interval: 10 * time.Millisecond, Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	s.collect = func(context.Context, *nines.Snapshot, time.Time) []error {
		var st *nines.GaleraStatus
		_ = st.ClusterSize // nil pointer dereference, as a parser bug would
		return nil
	}
	ctx, cancel := context.WithCancel(context.Background())
	var mu sync.Mutex
	var snaps []*nines.Snapshot
	done := make(chan struct{})
	go func() {
		defer close(done)
		s.run(ctx, func(snap *nines.Snapshot, _ bool) {
			mu.Lock()
			defer mu.Unlock()
			if snaps = append(snaps, snap); len(snaps) == 3 {
				cancel()
			}
		})
	}()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		cancel()
		t.Fatal("the scrape loop did not go on after a panic")
	}
	last := snaps[len(snaps)-1]
	if last.Errors < 3 || !strings.Contains(last.Err, "scrape panicked") || !strings.Contains(last.Err, "nil pointer") {
		t.Errorf("after 3 panicking scrapes: errors %d, err %q", last.Errors, last.Err)
	}
	counted := false
	for _, m := range SnapshotMetrics(last) {
		counted = counted || m.Name == "nines_scrape_errors_total" && m.Value >= 3
	}
	if !counted {
		t.Error("nines_scrape_errors_total does not count the panics")
	}
	if l := logs.String(); !strings.Contains(l, "scrape panicked") || !strings.Contains(l, "panic_test.go") {
		t.Errorf("no stack in the log:\n%s", l)
	}
}

// TestPanickingSinkKeepsTheLoop: a consumer that panics on a snapshot is
// logged and the loop keeps scraping.
func TestPanickingSinkKeepsTheLoop(t *testing.T) {
	var logs bytes.Buffer
	s, err := NewScraper(Target{Cluster: "c", Address: "127.0.0.1:1", User: "u"},
		Options{Interval: 10 * time.Millisecond, Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	s.collect = func(context.Context, *nines.Snapshot, time.Time) []error { return nil }
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	n := 0
	done := make(chan struct{})
	go func() {
		defer close(done)
		s.run(ctx, func(*nines.Snapshot, bool) {
			if n++; n == 3 {
				cancel()
			}
			panic("sink bug")
		})
	}()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("the scrape loop stopped at a panicking sink")
	}
	if !strings.Contains(logs.String(), "handling a snapshot panicked") {
		t.Errorf("not logged:\n%s", logs.String())
	}
}
