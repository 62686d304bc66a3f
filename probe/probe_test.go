package probe

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nines-project/nines/internal/metric"
)

// fakeClock is a wall clock the test moves. After channels fire when an
// Advance reaches their deadline; armed receives one value per After
// call, so the test knows the prober is waiting before it moves time.
type fakeClock struct {
	mu      sync.Mutex
	now     time.Time
	waiters []fakeWaiter
	armed   chan struct{}
}

type fakeWaiter struct {
	at time.Time
	ch chan time.Time
}

func newFakeClock(t time.Time) *fakeClock {
	return &fakeClock{now: t, armed: make(chan struct{}, 100)}
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) After(d time.Duration) <-chan time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	ch := make(chan time.Time, 1)
	if d <= 0 {
		ch <- c.now
	} else {
		c.waiters = append(c.waiters, fakeWaiter{at: c.now.Add(d), ch: ch})
	}
	c.armed <- struct{}{}
	return ch
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
	keep := c.waiters[:0]
	for _, w := range c.waiters {
		if !w.at.After(c.now) {
			w.ch <- c.now
		} else {
			keep = append(keep, w)
		}
	}
	c.waiters = keep
}

// fakeWriter answers probes from a script keyed by the clock's second
// (relative to base). It records the seqs it was asked to write.
type fakeWriter struct {
	clock *fakeClock
	base  time.Time
	// outcome for a probe in second s; nil means success.
	outcome func(s int) attempt
	// during runs inside write, e.g. to move the clock or cancel.
	during func()

	mu       sync.Mutex
	seqs     []uint64
	prepares int
	lastSeq  uint64 // what prepare reports
	closed   bool
}

func (w *fakeWriter) prepare(context.Context) (uint64, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.prepares++
	return w.lastSeq, nil
}

func (w *fakeWriter) write(ctx context.Context, seq uint64) attempt {
	w.mu.Lock()
	w.seqs = append(w.seqs, seq)
	w.mu.Unlock()
	if w.during != nil {
		w.during()
	}
	if ctx.Err() != nil {
		return attempt{err: ctx.Err()}
	}
	s := int(w.clock.Now().Sub(w.base) / time.Second)
	if w.outcome == nil {
		return attempt{acked: true}
	}
	return w.outcome(s)
}

func (w *fakeWriter) prune(context.Context) (int64, error) { return 0, nil }

func (w *fakeWriter) close() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.closed = true
	return nil
}

func (w *fakeWriter) written() []uint64 {
	w.mu.Lock()
	defer w.mu.Unlock()
	return slices.Clone(w.seqs)
}

var (
	good      = attempt{acked: true}
	refused   = attempt{err: errors.New("Error 1047 (08S01): WSREP has not yet prepared node for application use")}
	uncertain = attempt{uncertain: true, err: errors.New("commit probe write: i/o timeout")}
)

// script returns an outcome function: good in the listed seconds, the
// given failure in all others.
func script(fail attempt, goodSeconds ...int) func(int) attempt {
	return func(s int) attempt {
		if slices.Contains(goodSeconds, s) {
			return good
		}
		return fail
	}
}

// newTestProber builds a prober on fake writers, one per outcome script,
// named e1, e2, ...
func newTestProber(t *testing.T, clock *fakeClock, writers ...*fakeWriter) *Prober {
	t.Helper()
	o := Options{Source: "test", Now: clock.Now, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}
	if err := o.defaults(); err != nil {
		t.Fatal(err)
	}
	var eps []Endpoint
	for i := range writers {
		eps = append(eps, Endpoint{Address: "e" + string(rune('1'+i))})
	}
	i := 0
	p, err := newProber("c1", eps, o, func(Endpoint) (writer, error) {
		w := writers[i]
		i++
		return w, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	p.after = clock.After
	return p
}

// TestRunCountsEverySecond drives Run with a fake clock through good
// seconds, seconds where only one endpoint succeeds, failing seconds and a
// stall that skips four ticks, then stops it mid-second.
func TestRunCountsEverySecond(t *testing.T) {
	base := at(0, 0)
	clock := newFakeClock(at(0, 250))
	// e1 works for seconds 0-2, e2 for seconds 2-3; then both fail.
	w1 := &fakeWriter{clock: clock, base: base, outcome: script(refused, 0, 1, 2)}
	w2 := &fakeWriter{clock: clock, base: base, outcome: script(uncertain, 2, 3)}
	p := newTestProber(t, clock, w1, w2)
	probed := make(chan struct{}, 100)
	p.probed = func() { probed <- struct{}{} }

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		p.Run(ctx)
	}()
	// settle waits until the prober has probed every endpoint once and is
	// waiting for its next tick.
	settle := func(what string) {
		t.Helper()
		timeout := time.After(10 * time.Second)
		for got, armed := 0, false; got < 2 || !armed; {
			select {
			case <-probed:
				got++
			case <-clock.armed:
				armed = true
			case <-timeout:
				t.Fatalf("%s: prober did not probe and wait (probed %d, armed %v)", what, got, armed)
			}
		}
	}
	settle("start at 0.250")
	clock.Advance(750 * time.Millisecond) // 1.000
	settle("tick 1")
	for s := 2; s <= 5; s++ {
		clock.Advance(time.Second)
		settle("tick")
	}
	// A stall: the next tick comes at 10.000; seconds 6-9 had no probe.
	clock.Advance(5 * time.Second)
	settle("tick after the stall")
	clock.Advance(time.Second) // 11.000
	settle("tick 11")
	if got := p.Seconds(); got != (Seconds{Good: 4, Bad: 3, Unknown: 4}) {
		t.Errorf("at 11.000: %+v, want good 4 (0-3), bad 3 (4, 5, 10), unknown 4 (6-9); 11 still open", got)
	}
	clock.Advance(500 * time.Millisecond) // 11.500, no tick
	cancel()
	<-done

	// Stopped at 11.5 after starting at 0.25: seconds 0-10 are counted,
	// the partial second 11 is not. 11 seconds for 11.25 s of wall time.
	want := Seconds{Good: 4, Bad: 3, Unknown: 4}
	if got := p.Seconds(); got != want {
		t.Errorf("after stop: %+v, want %+v", got, want)
	}
	if !w1.closed || !w2.closed {
		t.Error("Run returned without closing the writers")
	}

	// The seq advances only on an acknowledged write: a failed write is
	// retried with the same seq, so acknowledged seqs have no gaps.
	if got, want := w1.written(), []uint64{1, 2, 3, 4, 4, 4, 4, 4}; !slices.Equal(got, want) {
		t.Errorf("e1 wrote seqs %v, want %v", got, want)
	}
	if got, want := w2.written(), []uint64{1, 1, 1, 2, 3, 3, 3, 3}; !slices.Equal(got, want) {
		t.Errorf("e2 wrote seqs %v, want %v", got, want)
	}
	for _, c := range []struct {
		ep       string
		from, to uint64
	}{{"e1", 1, 3}, {"e2", 1, 2}, {"nope", 0, 0}} {
		if from, to := p.AcknowledgedSeqs(c.ep); from != c.from || to != c.to {
			t.Errorf("AcknowledgedSeqs(%s) = %d..%d, want %d..%d", c.ep, from, to, c.from, c.to)
		}
	}

	latest := p.Latest()
	if len(latest) != 2 || latest[0].Instance != "e1" || latest[0].Success || !strings.Contains(latest[0].Err, "1047") ||
		latest[1].Acknowledged || !latest[1].Uncertain || latest[1].Time != at(11, 0) {
		t.Errorf("Latest() = %+v", latest)
	}

	// 4 good + 3 bad + 4 unknown seconds from at(0): counted through 11.
	sli, through, ok := p.SLI()
	if !ok || !through.Equal(at(11, 0)) {
		t.Errorf("SLI() counts through %s (ok %v), want %s: the sum of the seconds counted", through, ok, at(11, 0))
	}
	got := metricValues(append(p.Metrics(), sli...))
	wantMetrics := map[string]float64{
		`nines_probe_seconds_total{cluster="c1",result="good"}`:             4,
		`nines_probe_seconds_total{cluster="c1",result="bad"}`:              3,
		`nines_probe_seconds_total{cluster="c1",result="unknown"}`:          4,
		`nines_probe_seconds_total{cluster="c1",result="maintenance"}`:      0,
		`nines_probe_success{cluster="c1",instance="e1"}`:                   0,
		`nines_probe_duration_seconds{cluster="c1",instance="e1"}`:          0,
		`nines_probe_writes_acknowledged_total{cluster="c1",instance="e1"}`: 3,
		`nines_probe_writes_failed_total{cluster="c1",instance="e1"}`:       5,
		`nines_probe_writes_uncertain_total{cluster="c1",instance="e1"}`:    0,
		`nines_probe_last_acknowledged_seq{cluster="c1",instance="e1"}`:     3,
		`nines_probe_success{cluster="c1",instance="e2"}`:                   0,
		`nines_probe_duration_seconds{cluster="c1",instance="e2"}`:          0,
		`nines_probe_writes_acknowledged_total{cluster="c1",instance="e2"}`: 2,
		`nines_probe_writes_failed_total{cluster="c1",instance="e2"}`:       6,
		`nines_probe_writes_uncertain_total{cluster="c1",instance="e2"}`:    6,
		`nines_probe_last_acknowledged_seq{cluster="c1",instance="e2"}`:     2,
	}
	if len(got) != len(wantMetrics) {
		t.Errorf("got %d series, want %d: %v", len(got), len(wantMetrics), got)
	}
	for k, v := range wantMetrics {
		if g, ok := got[k]; !ok || g != v {
			t.Errorf("%s = %v (present %v), want %v", k, g, ok, v)
		}
	}
}

// metricValues renders each sample as name{labels} → value.
func metricValues(ms []metric.Metric) map[string]float64 {
	out := map[string]float64{}
	for _, m := range ms {
		var b strings.Builder
		b.WriteString(m.Name)
		b.WriteByte('{')
		for i, l := range m.Labels {
			if i > 0 {
				b.WriteByte(',')
			}
			b.WriteString(l.Name + `="` + l.Value + `"`)
		}
		b.WriteByte('}')
		out[b.String()] = m.Value
	}
	return out
}

// TestProbeOnce checks single probes against the latency bound, a
// shutdown and a restart, calling the prober's step directly.
func TestProbeOnce(t *testing.T) {
	t.Run("acknowledged but over the latency bound is a bad second", func(t *testing.T) {
		clock := newFakeClock(at(0, 0))
		w := &fakeWriter{clock: clock, base: at(0, 0)}
		w.during = func() { clock.Advance(1200 * time.Millisecond) }
		p := newTestProber(t, clock, w)
		p.ledger.start(clock.Now())
		p.probeOnce(context.Background(), p.eps[0])
		clock.Advance(3 * time.Second)
		p.ledger.close(clock.Now())
		r := p.Latest()[0]
		if r.Success || !r.Acknowledged || !strings.Contains(r.Err, "over the latency bound") || r.Duration != 1200*time.Millisecond {
			t.Errorf("Latest = %+v", r)
		}
		if got := p.Seconds(); got.Bad != 1 || got.Good != 0 {
			t.Errorf("seconds = %+v, want second 0 bad", got)
		}
		if from, to := p.AcknowledgedSeqs("e1"); from != 1 || to != 1 {
			t.Errorf("a slow write is still acknowledged: got %d..%d", from, to)
		}
	})
	t.Run("a probe cut short by shutdown leaves no result", func(t *testing.T) {
		clock := newFakeClock(at(0, 0))
		ctx, cancel := context.WithCancel(context.Background())
		w := &fakeWriter{clock: clock, base: at(0, 0), during: cancel}
		p := newTestProber(t, clock, w)
		p.ledger.start(clock.Now())
		p.probeOnce(ctx, p.eps[0])
		clock.Advance(1500 * time.Millisecond)
		p.ledger.stop(clock.Now())
		if got := p.Seconds(); got != (Seconds{Unknown: 1}) {
			t.Errorf("seconds = %+v, want second 0 unknown", got)
		}
	})
	t.Run("a restarted prober continues the logged sequence", func(t *testing.T) {
		clock := newFakeClock(at(0, 0))
		w := &fakeWriter{clock: clock, base: at(0, 0), lastSeq: 41}
		p := newTestProber(t, clock, w)
		p.ledger.start(clock.Now())
		for range 3 {
			p.probeOnce(context.Background(), p.eps[0])
			clock.Advance(time.Second)
		}
		if got := w.written(); !slices.Equal(got, []uint64{42, 43, 44}) || w.prepares != 1 {
			t.Errorf("wrote %v after %d prepares, want 42 43 44 after 1", got, w.prepares)
		}
		if from, to := p.AcknowledgedSeqs("e1"); from != 42 || to != 44 {
			t.Errorf("AcknowledgedSeqs = %d..%d, want 42..44", from, to)
		}
	})
}

func TestNewRejects(t *testing.T) {
	ok := []Endpoint{{Address: "127.0.0.1:3306", User: "nines"}}
	tests := []struct {
		name    string
		cluster string
		eps     []Endpoint
		opts    Options
		want    string
	}{
		{"no cluster", "", ok, Options{Source: "a"}, "empty cluster name"},
		{"no endpoints", "c", nil, Options{Source: "a"}, "no endpoints"},
		{"duplicate", "c", append(slices.Clone(ok), ok...), Options{Source: "a"}, "listed twice"},
		{"empty address", "c", []Endpoint{{}}, Options{Source: "a"}, "empty address"},
		{"long address", "c", []Endpoint{{Address: strings.Repeat("h", 256)}}, Options{Source: "a"}, "longer than 255"},
		{"long source", "c", ok, Options{Source: strings.Repeat("s", 65)}, "longer than 64"},
		{"slow interval", "c", ok, Options{Source: "a", Interval: 2 * time.Second}, "over one second"},
		{"engine that is no name", "c", ok, Options{Source: "a", Engine: "InnoDB; DROP TABLE t"}, "want a storage engine name"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := New(tt.cluster, tt.eps, tt.opts)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("New: %v, want an error saying %q", err, tt.want)
			}
		})
	}
	p, err := New("c", ok, Options{})
	if err != nil {
		t.Fatalf("New with defaults: %v", err)
	}
	if p.Source() == "" || p.opts.Interval != time.Second || p.opts.LatencyBound != time.Second || p.opts.Engine != "InnoDB" {
		t.Errorf("defaults: source %q, options %+v", p.Source(), p.opts)
	}
}
