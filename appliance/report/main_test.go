package report

import (
	"flag"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/nines-project/nines/appliance/store"
)

// testStore is the one store of the package's tests and benchmarks
// (VictoriaMetrics allows one per process); each test writes its own
// cluster's series.
var testStore *store.Store

func TestMain(m *testing.M) {
	// The store parses Go's global flag set if nobody has; the test flags
	// (-test.run, -test.bench) must be parsed first or they are ignored.
	flag.Parse()
	dir, err := os.MkdirTemp("", "nines-report-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	// Retention covers the benchmark's year and the monthly table before it.
	testStore, err = store.Open(store.Options{DataDir: dir, Retention: 800 * 24 * time.Hour, MemoryBytes: 512 << 20})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	code := m.Run()
	testStore.Close()
	os.RemoveAll(dir)
	os.Exit(code)
}

// down is what a second's result function returns while the appliance is
// not running: no sample is written, and the counters restart from zero.
const down = ""

// writeSeconds writes the SLI counters of cluster from from to to as the
// appliance does: stamped with the second boundary they count up to, so
// second S first shows in the sample at S+1 exactly; while result says
// down, nothing is written and the next process starts its counters at
// zero.
func writeSeconds(tb testing.TB, cluster string, from, to time.Time, result func(sec int64) string) {
	tb.Helper()
	names := []string{"good", "bad", "unknown", "maintenance"}
	labels := make(map[string][]store.Label, len(names))
	for _, r := range names {
		labels[r] = []store.Label{
			{Name: "__name__", Value: "nines_probe_seconds_total"}, {Name: "cluster", Value: cluster},
			{Name: "instance", Value: "appliance"}, {Name: "result", Value: r},
		}
	}
	counts := map[string]float64{}
	batch := make([]store.Series, 0, 4*4096)
	for sec := from.Unix(); sec < to.Unix(); sec++ {
		r := result(sec)
		if r == down {
			clear(counts)
			continue
		}
		if labels[r] == nil {
			tb.Fatalf("second %d: result %q", sec, r)
		}
		counts[r]++
		ts := (sec + 1) * 1000
		for _, n := range names {
			batch = append(batch, store.Series{Labels: labels[n], Value: counts[n], TimestampMs: ts})
		}
		if len(batch) == cap(batch) {
			testStore.Write(batch)
			batch = batch[:0]
		}
	}
	testStore.Write(batch)
	testStore.Flush()
}

// writeFiring writes an ALERTS series of a firing alert, one sample a
// second over [from, to), as the rule engine does.
func writeFiring(cluster, alertname, severity string, from, to time.Time) {
	ls := []store.Label{
		{Name: "__name__", Value: "ALERTS"}, {Name: "alertname", Value: alertname}, {Name: "alertstate", Value: "firing"},
		{Name: "cluster", Value: cluster}, {Name: "severity", Value: severity},
	}
	var batch []store.Series
	for t := from; t.Before(to); t = t.Add(time.Second) {
		batch = append(batch, store.Series{Labels: ls, Value: 1, TimestampMs: t.UnixMilli()})
	}
	testStore.Write(batch)
	testStore.Flush()
}
