package remediator

import (
	"context"
	"sync"
	"testing"
	"time"
)

// fakeClock moves only when Advance is called.
type fakeClock struct {
	mu    sync.Mutex
	now   time.Time
	waits []fakeWait
}

type fakeWait struct {
	at   time.Time
	fire func(time.Time)
}

func (c *fakeClock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.now }

func (c *fakeClock) After(d time.Duration) <-chan time.Time {
	ch := make(chan time.Time, 1)
	c.mu.Lock()
	defer c.mu.Unlock()
	c.waits = append(c.waits, fakeWait{c.now.Add(d), func(t time.Time) { ch <- t }})
	return ch
}

func (c *fakeClock) WithTimeout(ctx context.Context, d time.Duration) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithCancelCause(ctx)
	c.mu.Lock()
	defer c.mu.Unlock()
	c.waits = append(c.waits, fakeWait{c.now.Add(d), func(time.Time) { cancel(context.DeadlineExceeded) }})
	return ctx, func() { cancel(context.Canceled) }
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	var due []fakeWait
	keep := c.waits[:0]
	for _, w := range c.waits {
		if !w.at.After(c.now) {
			due = append(due, w)
		} else {
			keep = append(keep, w)
		}
	}
	c.waits = keep
	now := c.now
	c.mu.Unlock()
	for _, w := range due {
		w.fire(now)
	}
}

// TestJobTimeoutFollowsTheClock: the job limit is a wait of the injected
// clock, so an hour's limit is tested without an hour.
func TestJobTimeoutFollowsTheClock(t *testing.T) {
	clock := &fakeClock{now: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	log, err := OpenJobLog(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	rb := &countingRunbook{name: "rb", block: make(chan struct{})}
	r, err := New(Options{Log: log, Runbooks: []Runbook{rb}, Policies: map[string]Policy{"c1": {}}, JobTimeout: time.Hour, Clock: clock})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); r.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	j, err := r.Start(ctx, ManualRequest{Cluster: "c1", Runbook: "rb"})
	if err != nil {
		t.Fatal(err)
	}
	eventually(t, "running", func() bool { return rb.runs.Load() == 1 })
	clock.Advance(59 * time.Minute)
	time.Sleep(100 * time.Millisecond)
	if got, _ := log.Get(j.ID); got == nil || got.State != JobRunning {
		t.Fatalf("job before its limit: %+v", got)
	}
	clock.Advance(time.Minute)
	eventually(t, "failed at its limit", func() bool { got, _ := log.Get(j.ID); return got != nil && got.State == JobFailed })
}
