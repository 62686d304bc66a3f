//go:build cluster

package e2e

import (
	"fmt"
	"math"
	"testing"
	"time"
)

// TestOutageBudget: a 10 s write outage (every node made read_only, so the
// probe's writes are refused) is accounted to the second: good, bad and
// unknown seconds add up to the wall-clock seconds of the drill, and the
// error budget drops by the bad seconds.
func TestOutageBudget(t *testing.T) {
	sb := sharedGalera(t)
	a := startAppliance(t, sb.ConfigPath(), sb.TokenPath())
	cluster := sb.ClusterName()
	seconds := func(result string) float64 {
		ss := a.query(fmt.Sprintf(`nines_probe_seconds_total{cluster=%q,result=%q}`, cluster, result))
		if len(ss) != 1 {
			return math.NaN()
		}
		return ss[0].Value
	}
	budget := func() float64 {
		ss := a.query(fmt.Sprintf(`nines_slo_error_budget_remaining_seconds{cluster=%q}`, cluster))
		if len(ss) != 1 {
			return math.NaN()
		}
		return ss[0].Value
	}
	waitFor(t, a.started, 20*time.Second, "probe and budget series", func() bool {
		return !math.IsNaN(seconds("good")) && !math.IsNaN(budget()) && len(a.query(`nines_probe_success == 1`)) == 3
	})
	time.Sleep(2 * time.Second)

	setReadOnly := func(on string) {
		for _, n := range sb.Nodes() {
			db, err := sb.DB(n.Name)
			if err != nil {
				t.Fatal(err)
			}
			_, err = db.Exec("SET GLOBAL read_only = " + on)
			db.Close()
			if err != nil {
				t.Fatalf("read_only %s on %s: %v", on, n.Name, err)
			}
		}
	}
	type counts struct{ good, bad, unknown, budget float64 }
	read := func() counts {
		return counts{seconds("good"), nanZero(seconds("bad")), nanZero(seconds("unknown")), budget()}
	}

	before, t0 := read(), time.Now()
	setReadOnly("ON")
	outageStart := time.Now()
	time.Sleep(10 * time.Second)
	setReadOnly("OFF")
	outage := time.Since(outageStart)
	time.Sleep(3 * time.Second) // writes succeed again, counters and budget catch up
	after, t1 := read(), time.Now()
	// The budget rules run every few seconds, not every second (they read
	// the whole SLO window): wait for the evaluation that saw the drill.
	want := before.budget - (after.bad - before.bad) - (after.unknown - before.unknown)
	waitFor(t, t1, 15*time.Second, "the error budget to reflect the drill", func() bool {
		after.budget = budget()
		return math.Abs(after.budget-want) <= 1
	})

	wall := t1.Sub(t0).Seconds()
	total := (after.good - before.good) + (after.bad - before.bad) + (after.unknown - before.unknown)
	bad := after.bad - before.bad
	t.Logf("measured: drill %.1f s wall, outage %.1f s; probe seconds good %.0f bad %.0f unknown %.0f (sum %.0f); budget %.2f → %.2f s",
		wall, outage.Seconds(), after.good-before.good, bad, after.unknown-before.unknown, total, before.budget, after.budget)
	if math.Abs(total-wall) > 1 {
		t.Errorf("good+bad+unknown = %.0f s, wall clock %.1f s: more than 1 s apart", total, wall)
	}
	if math.Abs(bad-outage.Seconds()) > 1.5 {
		t.Errorf("bad seconds %.0f for a %.1f s outage", bad, outage.Seconds())
	}
	drop := before.budget - after.budget
	if math.Abs(drop-(bad+after.unknown-before.unknown)) > 1 {
		t.Errorf("budget dropped by %.2f s, the drill had %.0f bad and %.0f unknown seconds", drop, bad, after.unknown-before.unknown)
	}
}

func nanZero(v float64) float64 {
	if math.IsNaN(v) {
		return 0
	}
	return v
}
