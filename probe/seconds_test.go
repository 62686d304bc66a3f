package probe

import (
	"fmt"
	"math/rand/v2"
	"testing"
	"time"
)

// at is a time on the test's wall clock: second s, plus ms milliseconds.
func at(s, ms int) time.Time {
	return time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC).Add(time.Duration(s)*time.Second + time.Duration(ms)*time.Millisecond)
}

// step is one event of a ledger scenario. Probes are named so a scenario
// can end them later.
type step struct {
	begin   string // probe name: begin it at t
	end     string // probe name: end it with good
	good    bool
	abandon string // probe name: abandon it
	close   bool   // close at t
	t       time.Time
}

func TestLedgerScenarios(t *testing.T) {
	bound := time.Second
	tests := []struct {
		name  string
		start time.Time
		steps []step
		stop  time.Time // zero: no stop; counts after the steps
		want  Seconds
	}{{
		name:  "one good probe per second, counted when the next second starts",
		start: at(0, 300),
		steps: []step{
			{begin: "a0", t: at(0, 300)}, {end: "a0", good: true, t: at(0, 310)},
			{close: true, t: at(1, 0)}, {begin: "a1", t: at(1, 0)}, {end: "a1", good: true, t: at(1, 20)},
			{close: true, t: at(2, 0)},
		},
		want: Seconds{Good: 2},
	}, {
		name:  "a second stays open until the next one starts",
		start: at(0, 0),
		steps: []step{
			{begin: "a0", t: at(0, 0)}, {end: "a0", good: true, t: at(0, 5)},
			{close: true, t: at(0, 999)},
		},
		want: Seconds{},
	}, {
		name:  "mixed endpoints: one success makes the second good",
		start: at(0, 0),
		steps: []step{
			{begin: "a0", t: at(0, 0)}, {begin: "b0", t: at(0, 0)}, {begin: "c0", t: at(0, 0)},
			{end: "a0", good: false, t: at(0, 3)}, {end: "b0", good: true, t: at(0, 4)}, {end: "c0", good: false, t: at(0, 900)},
			{begin: "a1", t: at(1, 0)}, {begin: "b1", t: at(1, 0)},
			{end: "a1", good: false, t: at(1, 3)}, {end: "b1", good: false, t: at(1, 4)},
			{close: true, t: at(2, 0)},
		},
		want: Seconds{Good: 1, Bad: 1},
	}, {
		name:  "skipped ticks: seconds without a probe are unknown",
		start: at(0, 500),
		steps: []step{
			{begin: "a0", t: at(0, 500)}, {end: "a0", good: true, t: at(0, 510)},
			// the prober stalls; the next tick comes at 7.2
			{close: true, t: at(7, 200)}, {begin: "a7", t: at(7, 200)}, {end: "a7", good: true, t: at(7, 210)},
			{close: true, t: at(8, 0)},
		},
		want: Seconds{Good: 2, Unknown: 6},
	}, {
		name:  "a pending probe holds its second open while it may still make the bound",
		start: at(0, 0),
		steps: []step{
			{begin: "a0", t: at(0, 900)},
			{close: true, t: at(1, 0)}, {begin: "a1", t: at(1, 0)},
			{close: true, t: at(1, 899)}, // a0 may still succeed at 1.9
			{end: "a0", good: true, t: at(1, 899)},
			{end: "a1", good: false, t: at(1, 950)},
			{close: true, t: at(2, 0)},
		},
		want: Seconds{Good: 1, Bad: 1},
	}, {
		name:  "a probe pending past its bound fails its second; its late result is ignored",
		start: at(0, 0),
		steps: []step{
			{begin: "a0", t: at(0, 0)},
			{close: true, t: at(1, 0)}, {close: true, t: at(2, 0)},
			{close: true, t: at(2, 500)}, // 0+1+bound+grace: forced
			{end: "a0", good: true, t: at(2, 600)},
			{close: true, t: at(3, 0)},
		},
		want: Seconds{Bad: 1, Unknown: 2},
	}, {
		name:  "stop: probes cut short by the shutdown leave their second unknown, the partial last second is not counted",
		start: at(0, 400),
		steps: []step{
			{begin: "a0", t: at(0, 400)}, {end: "a0", good: true, t: at(0, 410)},
			{close: true, t: at(1, 0)}, {begin: "a1", t: at(1, 0)}, {begin: "b1", t: at(1, 0)},
			{abandon: "a1", t: at(1, 300)}, {abandon: "b1", t: at(1, 300)},
			{close: true, t: at(2, 0)}, {begin: "a2", t: at(2, 0)}, {end: "a2", good: true, t: at(2, 10)},
		},
		stop: at(2, 300),
		want: Seconds{Good: 1, Unknown: 1},
	}, {
		name:  "a clock stepped back: the probe counts for no second",
		start: at(5, 0),
		steps: []step{
			{begin: "a5", t: at(5, 0)}, {end: "a5", good: true, t: at(5, 10)},
			{close: true, t: at(6, 0)},
			{begin: "x", t: at(3, 0)}, {end: "x", good: false, t: at(3, 10)},
			{close: true, t: at(7, 0)},
		},
		want: Seconds{Good: 1, Unknown: 1},
	}, {
		name:  "a clock stepped forward by a day counts the day unknown in one step",
		start: at(0, 0),
		steps: []step{
			{begin: "a0", t: at(0, 0)}, {end: "a0", good: true, t: at(0, 1)},
			{close: true, t: at(86401, 0)},
		},
		want: Seconds{Good: 1, Unknown: 86400},
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l := newLedger(bound, nil)
			l.start(tt.start)
			secs := map[string]int64{}
			counted := map[string]bool{}
			for i, s := range tt.steps {
				switch {
				case s.begin != "":
					secs[s.begin], counted[s.begin] = l.begin(s.t)
				case s.end != "":
					if counted[s.end] {
						l.end(secs[s.end], s.good)
					}
					l.close(s.t)
				case s.abandon != "":
					l.abandon(secs[s.abandon])
				case s.close:
					l.close(s.t)
				default:
					t.Fatalf("step %d does nothing", i)
				}
			}
			if !tt.stop.IsZero() {
				l.stop(tt.stop)
			}
			if l.counts != tt.want {
				t.Errorf("counts = %+v, want %+v", l.counts, tt.want)
			}
		})
	}
}

// TestLedgerSumsToElapsed drives the ledger with random probe timings,
// failures, stalls and slow probes, and checks the invariant the drills
// rely on: after stop, good+bad+unknown is exactly the number of whole
// seconds from the start's second to the stop's, so within one second of
// the wall time; and while running it never counts a second twice or
// ahead of time.
func TestLedgerSumsToElapsed(t *testing.T) {
	bound := time.Second
	for seed := range uint64(200) {
		rng := rand.New(rand.NewPCG(seed, 1))
		start := at(0, rng.IntN(1000))
		l := newLedger(bound, nil)
		l.start(start)
		type pending struct {
			sec    int64
			finish time.Time
			good   bool
		}
		var inflight []pending
		now := start
		for range 300 {
			// Mostly ticks at the top of the next second; sometimes a stall.
			next := now.Truncate(time.Second).Add(time.Second)
			if rng.IntN(20) == 0 {
				next = next.Add(time.Duration(rng.IntN(5000)) * time.Millisecond)
			}
			// Results due before the tick arrive first, in order.
			var keep []pending
			for _, p := range inflight {
				if p.finish.Before(next) {
					l.end(p.sec, p.good)
					l.close(p.finish)
				} else {
					keep = append(keep, p)
				}
			}
			inflight = keep
			now = next
			l.close(now)
			if got, limit := l.counts.Total(), uint64(now.Unix()-start.Unix()); got > limit {
				t.Fatalf("seed %d: %d seconds counted by %v, only %d have passed", seed, got, now, limit)
			}
			for range 1 + rng.IntN(3) {
				sec, ok := l.begin(now)
				if !ok {
					t.Fatalf("seed %d: begin at %v refused", seed, now)
				}
				d := time.Duration(rng.IntN(1500)) * time.Millisecond
				inflight = append(inflight, pending{sec: sec, finish: now.Add(d), good: d <= bound && rng.IntN(3) > 0})
			}
		}
		for _, p := range inflight {
			l.abandon(p.sec)
		}
		stop := now.Add(time.Duration(rng.IntN(1000)) * time.Millisecond)
		l.stop(stop)
		want := uint64(stop.Unix() - start.Unix())
		if got := l.counts.Total(); got != want {
			t.Fatalf("seed %d: counted %+v = %d seconds from %v to %v, want %d", seed, l.counts, got, start, stop, want)
		}
		if wall := stop.Sub(start).Seconds(); float64(want) <= wall-1 || float64(want) >= wall+1 {
			t.Fatalf("seed %d: %d seconds counted over %.3f s of wall time", seed, want, wall)
		}
	}
}

// TestLedgerMaintenance: seconds in a declared window count as maintenance
// whatever their probes came to (good, bad, none), and the seconds around
// the window are counted as usual; every second is still counted once.
func TestLedgerMaintenance(t *testing.T) {
	from, to := at(2, 0).Unix(), at(5, 0).Unix() // window: seconds 2, 3, 4
	l := newLedger(time.Second, func(sec int64) bool { return sec >= from && sec < to })
	l.start(at(0, 0))
	results := map[int]string{0: "good", 1: "bad", 2: "bad", 3: "good", 5: "bad", 6: "good"} // 4: no probe
	for s := range 7 {
		if r, ok := results[s]; ok {
			sec, _ := l.begin(at(s, 0))
			l.end(sec, r == "good")
		}
		l.close(at(s+1, 0))
	}
	// A stall from second 7 to 12 counts its seconds unknown in one step.
	l.close(at(12, 0))
	want := Seconds{Good: 2, Bad: 2, Unknown: 5, Maintenance: 3}
	if l.counts != want {
		t.Errorf("counts = %+v, want %+v", l.counts, want)
	}
	if l.counts.Total() != 12 || l.counts.Valid() != 9 {
		t.Errorf("total %d valid %d, want 12 and 9", l.counts.Total(), l.counts.Valid())
	}

	// A stall across a window: its seconds inside the window are
	// maintenance, the rest unknown.
	l = newLedger(time.Second, func(sec int64) bool { return sec >= from && sec < to })
	l.start(at(0, 0))
	l.close(at(10, 0))
	if want := (Seconds{Unknown: 7, Maintenance: 3}); l.counts != want {
		t.Errorf("stall across the window: counts = %+v, want %+v", l.counts, want)
	}
}

// TestLedgerMarksEverySecond: a probe that runs to its bound holds the
// next seconds back, so they close together; the ledger still remembers
// the counts at each boundary, one second apart, so each second's result
// can be stored in its own second. A stall is marked per second too.
func TestLedgerMarksEverySecond(t *testing.T) {
	l := newLedger(time.Second, nil)
	l.start(at(10, 0))
	hung, _ := l.begin(at(10, 100)) // never ends: bad once past the bound
	for s := 11; s <= 12; s++ {
		sec, _ := l.begin(at(s, 100))
		l.end(sec, true)
	}
	l.close(at(12, 200)) // second 10 still waits for its probe
	if got := l.marksAfter(0); len(got) != 0 {
		t.Fatalf("marks before any second closed: %+v", got)
	}
	l.close(at(13, 0)) // past 10+1+bound+grace: 10, 11 and 12 close at once
	want := []mark{
		{at: at(11, 0).Unix(), counts: Seconds{Bad: 1}},
		{at: at(12, 0).Unix(), counts: Seconds{Bad: 1, Good: 1}},
		{at: at(13, 0).Unix(), counts: Seconds{Bad: 1, Good: 2}},
	}
	if got := l.marksAfter(0); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("marks = %+v, want %+v", got, want)
	}
	if got := l.marksAfter(at(12, 0).Unix()); len(got) != 1 || got[0].at != at(13, 0).Unix() {
		t.Errorf("marks after 12: %+v, want the one at 13", got)
	}
	_ = hung

	// A stall of five seconds: five marks, one unknown second each.
	l.close(at(18, 0))
	got := l.marksAfter(at(13, 0).Unix())
	if len(got) != 5 {
		t.Fatalf("stall marks: %+v, want 5", got)
	}
	for i, m := range got {
		if m.at != at(14+i, 0).Unix() || m.counts.Unknown != uint64(i+1) {
			t.Errorf("stall mark %d = %+v, want at %d with %d unknown", i, m, 14+i, i+1)
		}
	}
	// The memory is bounded: a day-long stall leaves one mark, and no
	// more than maxMarks are ever returned.
	l.close(at(18+86400, 0))
	if got := l.marksAfter(0); len(got) > maxMarks || got[len(got)-1].counts.Unknown != 5+86400 {
		t.Errorf("after a day's stall: %d marks, last %+v", len(got), got[len(got)-1])
	}
}
