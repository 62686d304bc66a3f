package qan

import (
	"testing"
)

func row(digest, firstSeen string, calls, seconds float64) Row {
	return Row{Key: Key{Schema: "app", Digest: digest}, FirstSeen: firstSeen, Totals: Totals{Calls: calls, Seconds: seconds, RowsExamined: calls * 10}}
}

func TestTrackerDeltas(t *testing.T) {
	var tr Tracker
	// The first read is a baseline: nothing since start is an interval's work.
	if got := tr.Observe([]Row{row("a", "t0", 100, 50), row("b", "t0", 5, 1)}, 20); len(got) != 0 {
		t.Fatalf("first read gave deltas %+v, want none", got)
	}
	got := tr.Observe([]Row{
		row("a", "t0", 103, 50.3), // 3 calls, 0.3 s
		row("b", "t0", 5, 1),      // idle: left out
		row("c", "t1", 2, 4),      // new digest: all of it is new work
		row("d", "t9", 1, 0.01),   // new too
	}, 20)
	want := map[string]Totals{"c": {Calls: 2, Seconds: 4, RowsExamined: 20}, "a": {Calls: 3, Seconds: 0.3, RowsExamined: 30}, "d": {Calls: 1, Seconds: 0.01, RowsExamined: 10}}
	if len(got) != len(want) {
		t.Fatalf("deltas %+v, want %d of them", got, len(want))
	}
	order := []string{"c", "a", "d"} // by time, busiest first
	for i, d := range got {
		if d.Digest != order[i] {
			t.Errorf("delta %d is %s, want %s (busiest by time first)", i, d.Digest, order[i])
		}
		w := want[d.Digest]
		if d.Calls != w.Calls || !near(d.Seconds, w.Seconds) || d.RowsExamined != w.RowsExamined {
			t.Errorf("delta of %s = %+v, want %+v", d.Digest, d.Totals, w)
		}
	}
}

func near(a, b float64) bool { return a-b < 1e-9 && b-a < 1e-9 }

func TestTrackerRestartedCounters(t *testing.T) {
	var tr Tracker
	tr.Observe([]Row{row("a", "t0", 100, 50), row("b", "t0", 10, 10)}, 0)
	got := tr.Observe([]Row{
		row("a", "t5", 4, 2), // evicted and re-created: FIRST_SEEN moved
		row("b", "t0", 3, 1), // TRUNCATE or restart with the same FIRST_SEEN: counters went down
	}, 0)
	if len(got) != 2 || got[0].Digest != "a" || got[0].Calls != 4 || got[1].Digest != "b" || got[1].Calls != 3 {
		t.Fatalf("after restarted counters: %+v, want a with 4 calls and b with 3 (their new totals)", got)
	}
}

func TestTrackerTopNBoundsSeries(t *testing.T) {
	var tr Tracker
	var base, next []Row
	for i := range 500 {
		d := string(rune('A'+i%26)) + string(rune('a'+i/26))
		base = append(base, row(d, "t0", 0, 0))
		next = append(next, row(d, "t0", 1, float64(i)))
	}
	tr.Observe(base, 20)
	got := tr.Observe(next, 20)
	if len(got) != 20 {
		t.Fatalf("%d deltas, want the top 20", len(got))
	}
	if got[0].Seconds != 499 || got[19].Seconds != 480 {
		t.Errorf("top 20 span %v..%v s, want 499..480", got[0].Seconds, got[19].Seconds)
	}
	ms := Metrics("c1", "db1:3306", true, got)
	if len(ms) != 20*len(Fields)+1 {
		t.Errorf("%d series for 20 digests, want %d", len(ms), 20*len(Fields)+1)
	}
	for _, m := range ms {
		if m.Name == MetricEnabled {
			continue
		}
		labels := map[string]string{}
		for _, l := range m.Labels {
			labels[l.Name] = l.Value
		}
		if labels["cluster"] != "c1" || labels["instance"] != "db1:3306" || labels["digest"] == "" || labels["schema"] != "app" {
			t.Fatalf("series %s has labels %v", m.Name, labels)
		}
	}
}

func TestTrackerReset(t *testing.T) {
	var tr Tracker
	tr.Observe([]Row{row("a", "t0", 1, 1)}, 0)
	tr.Reset()
	if got := tr.Observe([]Row{row("a", "t0", 50, 50)}, 0); len(got) != 0 {
		t.Fatalf("after Reset the read is a new baseline, got %+v", got)
	}
}

func TestCounterOddValues(t *testing.T) {
	for _, c := range []struct {
		in   []byte
		want float64
		bad  bool
	}{
		{nil, 0, false},
		{[]byte(""), 0, false},
		{[]byte("18446744073709551615"), 18446744073709551615, false}, // BIGINT UNSIGNED max, past int64
		{[]byte(" 42 "), 42, false},
		{[]byte("1.5e3"), 1500, false},
		{[]byte("-1"), 0, true},
		{[]byte("n/a"), 0, true},
	} {
		got, err := counter(c.in)
		if (err != nil) != c.bad || got != c.want {
			t.Errorf("counter(%q) = %v, %v; want %v, error %v", c.in, got, err, c.want, c.bad)
		}
	}
}

func TestRedactExample(t *testing.T) {
	for in, keep := range map[string]bool{
		"SELECT * FROM t WHERE id = 7":                  true,
		"SET PASSWORD FOR 'a'@'%' = PASSWORD('s3cret')": false,
		"CREATE USER x IDENTIFIED BY 'pw'":              false,
		"SELECT AES_DECRYPT(c, 'k') FROM t":             false,
	} {
		if got := redactExample(in); (got != "") != keep {
			t.Errorf("redactExample(%q) = %q; kept %v, want %v", in, got, got != "", keep)
		}
	}
}
