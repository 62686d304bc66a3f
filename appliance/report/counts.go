package report

import (
	"context"
	"fmt"
	"math"
	"sort"
	"strconv"
	"sync"
	"time"
)

// parallel is how many queries run at once: the store decompresses each
// span's samples on its own goroutine, so a few in flight keep the cores
// busy without starving the appliance's own rule evaluation.
const parallel = 4

// drillSteps are the resolutions a day with bad or unknown seconds is
// searched at, coarsest first; the last is one second.
var drillSteps = []time.Duration{time.Hour, time.Minute, time.Second}

// span is the half-open-on-the-left interval (start, end] that one
// increase() over [end-start] at end counts: consecutive spans partition
// time, so every counter increment falls in exactly one of them.
type span struct{ start, end time.Time }

// counter reads one cluster's SLI counters.
type counter struct {
	q       Querier
	cluster string
}

// counts returns the seconds counted in each span, by result; resultRE
// ("" for all) limits the results read.
func (c counter) counts(ctx context.Context, spans []span, resultRE string) ([]Counts, error) {
	out := make([]Counts, len(spans))
	sel := selector(c.cluster, resultRE)
	err := forEach(ctx, len(spans), func(i int) error {
		sp := spans[i]
		w := int64(sp.end.Sub(sp.start) / time.Second)
		expr := fmt.Sprintf("sum by (result) (increase(%s[%ds]))", sel, w)
		res, err := c.q.Query(ctx, expr, sp.end)
		if err != nil {
			return fmt.Errorf("uptime report of %q: seconds from %s to %s: %w", c.cluster, sp.start.Format(time.RFC3339), sp.end.Format(time.RFC3339), err)
		}
		for _, s := range res {
			if f := results[s.Labels["result"]]; f != nil && !math.IsNaN(s.Value) {
				*f(&out[i]) += int64(math.Round(s.Value))
			}
		}
		return nil
	})
	return out, err
}

// countedLookback is how far back countedTo looks for the newest SLI
// sample. The ledger writes one every second while the appliance runs;
// with none in this window the counters are not being written (probe off,
// appliance just started) and there is no "not yet counted" tail to cut.
const countedLookback = 5 * time.Minute

// countedTo returns the newest SLI sample's time at or before now: the
// ledger stamps each sample with the second boundary it counts up to, so
// every second before it is final. Zero when there is none.
func (c counter) countedTo(ctx context.Context, now time.Time) (time.Time, error) {
	expr := fmt.Sprintf("max(tlast_over_time(%s[%ds]))", selector(c.cluster, ""), int64(countedLookback/time.Second))
	res, err := c.q.Query(ctx, expr, now)
	if err != nil {
		return time.Time{}, fmt.Errorf("uptime report of %q: last counted second: %w", c.cluster, err)
	}
	if len(res) == 0 || math.IsNaN(res[0].Value) {
		return time.Time{}, nil
	}
	return time.Unix(int64(math.Round(res[0].Value)), 0), nil
}

// errorSeconds finds, in the given spans, every second with bad or
// unknown results, sorted. It narrows down step by step (hours, minutes,
// seconds), querying only the parts that had any.
func (c counter) errorSeconds(ctx context.Context, spans []span) ([]errorSecond, error) {
	for _, step := range drillSteps {
		var finer []span
		for _, sp := range spans {
			finer = append(finer, split(sp, step)...)
		}
		counts, err := c.counts(ctx, finer, "bad|unknown")
		if err != nil {
			return nil, err
		}
		spans = nil
		var secs []errorSecond
		for i, sp := range finer {
			ct := counts[i]
			if ct.Bad+ct.Unknown == 0 {
				continue
			}
			spans = append(spans, sp)
			if step == time.Second {
				// The appliance stores the counters at the second
				// boundary they count up to, so the span (t-1s, t]
				// holds exactly the second that starts at t-1s.
				secs = append(secs, errorSecond{at: sp.start, bad: ct.Bad, unknown: ct.Unknown})
			}
		}
		if step == time.Second {
			sort.Slice(secs, func(i, j int) bool { return secs[i].at.Before(secs[j].at) })
			return secs, nil
		}
	}
	return nil, nil
}

// split cuts sp at the multiples of step (in Unix time).
func split(sp span, step time.Duration) []span {
	var out []span
	start := sp.start
	for start.Before(sp.end) {
		next := start.Truncate(step).Add(step)
		if next.After(sp.end) {
			next = sp.end
		}
		out = append(out, span{start, next})
		start = next
	}
	return out
}

// alerts lists the alerts that were firing for the cluster in (from, to],
// from the ALERTS series the rule engine writes, with the first firing
// sample of each.
func (c counter) alerts(ctx context.Context, from, to time.Time) ([]Alert, error) {
	w := int64(to.Sub(from) / time.Second)
	expr := fmt.Sprintf(`min by (alertname, severity) (tfirst_over_time(ALERTS{cluster=%s,alertstate="firing"}[%ds]))`, strconv.Quote(c.cluster), w)
	res, err := c.q.Query(ctx, expr, to)
	if err != nil {
		return nil, fmt.Errorf("uptime report of %q: alerts from %s to %s: %w", c.cluster, from.Format(time.RFC3339), to.Format(time.RFC3339), err)
	}
	out := []Alert{}
	for _, s := range res {
		sec, frac := math.Modf(s.Value)
		out = append(out, Alert{
			Name: s.Labels["alertname"], Severity: s.Labels["severity"],
			Firing: time.Unix(int64(sec), int64(frac*1e9)).UTC().Truncate(time.Second),
		})
	}
	sort.Slice(out, func(i, j int) bool {
		if !out[i].Firing.Equal(out[j].Firing) {
			return out[i].Firing.Before(out[j].Firing)
		}
		return out[i].Name < out[j].Name
	})
	return out, nil
}

// forEach runs f(0..n-1), at most parallel at a time, and returns the
// first error.
func forEach(ctx context.Context, n int, f func(i int) error) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		first error
		next  = make(chan int)
	)
	for range min(parallel, n) {
		wg.Go(func() {
			for i := range next {
				if err := f(i); err != nil {
					mu.Lock()
					if first == nil {
						first = err
						cancel()
					}
					mu.Unlock()
				}
			}
		})
	}
	for i := 0; i < n; i++ {
		select {
		case next <- i:
		case <-ctx.Done():
		}
		if ctx.Err() != nil {
			break
		}
	}
	close(next)
	wg.Wait()
	if first == nil && ctx.Err() != nil {
		// Cancelled from outside, not by an error of ours.
		return ctx.Err()
	}
	return first
}
