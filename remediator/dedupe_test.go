package remediator

import (
	"fmt"
	"testing"
	"time"
)

// TestDedupeStateIsBounded: many distinct fingerprints never grow the
// remediator's memory past maxAlerts; a resolve forgets its alert, and an
// alert not mentioned for alertTTL is forgotten.
func TestDedupeStateIsBounded(t *testing.T) {
	log, err := OpenJobLog(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	clock := &fakeClock{now: time.Date(2026, 12, 5, 3, 0, 0, 0, time.UTC)}
	rb := &countingRunbook{name: "rb"}
	r, err := New(Options{Log: log, Runbooks: []Runbook{rb}, Policies: map[string]Policy{"c1": {Mode: ModeOff}}, Clock: clock})
	if err != nil {
		t.Fatal(err)
	}
	start := clock.Now()
	for i := range maxAlerts + 2500 {
		r.Receive(alert(fmt.Sprintf("fp%06d", i), "c1", "rb", start))
		clock.Advance(time.Millisecond)
	}
	if active, _, seen := r.dedupeSize(); active > maxAlerts || seen > maxAlerts {
		t.Fatalf("after %d distinct alerts: %d active, %d remembered; want at most %d", maxAlerts+2500, active, seen, maxAlerts)
	}
	// The newest are kept, the oldest dropped.
	r.mu.Lock()
	_, newest := r.active[fmt.Sprintf("fp%06d", maxAlerts+2499)]
	_, oldest := r.active["fp000000"]
	r.mu.Unlock()
	if !newest || oldest {
		t.Errorf("newest kept %v, oldest kept %v: want the least recently seen dropped", newest, oldest)
	}

	resolved := alert("fp010000", "c1", "rb", start)
	resolved.Alerts[0].Status = "resolved"
	r.Receive(resolved)
	r.mu.Lock()
	_, still := r.lastSeen["fp010000"]
	r.mu.Unlock()
	if still {
		t.Error("a resolved alert is still remembered")
	}

	clock.Advance(alertTTL)
	r.Receive(alert("late", "c1", "rb", clock.Now()))
	if active, handled, seen := r.dedupeSize(); active != 1 || handled > 1 || seen != 1 {
		t.Errorf("after %s without notifications: %d active, %d handled, %d remembered; want only the new one", alertTTL, active, handled, seen)
	}

	// Alerts for clusters nines does not manage leave nothing behind.
	for i := range 100 {
		r.Receive(alert("x", fmt.Sprintf("nowhere%d", i), "rb", start))
	}
	r.mu.Lock()
	decisions := len(r.decisions)
	r.mu.Unlock()
	if decisions > 1 {
		t.Errorf("%d decisions after alerts for unknown clusters, want at most the one for c1", decisions)
	}
}
