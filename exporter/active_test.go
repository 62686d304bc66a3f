package exporter

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nines-project/nines"
)

// TestInactiveClusterIsNotScraped: while Active says no, the node is not
// read and has no latest snapshot; once it says yes, scrapes resume
// within an interval.
func TestInactiveClusterIsNotScraped(t *testing.T) {
	var active atomic.Bool
	s, err := NewScraper(Target{Cluster: "c", Address: "127.0.0.1:1", User: "u"},
		Options{Interval: 10 * time.Millisecond, Active: func(cluster string) bool { return cluster == "c" && active.Load() }})
	if err != nil {
		t.Fatal(err)
	}
	var reads atomic.Int64
	s.collect = func(context.Context, *nines.Snapshot, time.Time) []error { reads.Add(1); return nil }
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go s.run(ctx, nil)

	time.Sleep(100 * time.Millisecond) // ten intervals
	if n := reads.Load(); n != 0 || s.latest.Load() != nil {
		t.Fatalf("inactive: %d reads, latest %v; want none", n, s.latest.Load())
	}
	active.Store(true)
	deadline := time.Now().Add(2 * time.Second)
	for reads.Load() == 0 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	if reads.Load() == 0 || s.latest.Load() == nil {
		t.Fatal("active again: no scrape within 2 s")
	}
	active.Store(false)
	deadline = time.Now().Add(2 * time.Second)
	for s.latest.Load() != nil && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	if s.latest.Load() != nil {
		t.Fatal("inactive again: the last snapshot is still served after 2 s")
	}
}
