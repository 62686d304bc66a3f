package exporter

import (
	"context"
	"fmt"
	"sort"
	"sync"
	"time"

	"github.com/nines-project/nines"
)

// Exporter runs one scraper per target.
type Exporter struct {
	scrapers []*Scraper
	opts     Options
	lateness Lateness

	mu         sync.Mutex
	burstUntil map[string]time.Time // cluster → end of burst mode
}

// New prepares scrapers for targets; nothing connects until Run.
func New(targets []Target, opts Options) (*Exporter, error) {
	opts.defaults()
	e := &Exporter{opts: opts, burstUntil: map[string]time.Time{}}
	seen := map[string]bool{}
	for _, t := range targets {
		if seen[t.Address] {
			return nil, fmt.Errorf("target %s listed twice", t.Address)
		}
		seen[t.Address] = true
		s, err := NewScraper(t, opts)
		if err != nil {
			return nil, err
		}
		cluster := t.Cluster
		s.onChange = func() { e.startBurst(cluster) }
		s.burst = func() bool { return e.inBurst(cluster) }
		s.lateness = &e.lateness
		e.scrapers = append(e.scrapers, s)
	}
	return e, nil
}

// startBurst puts a cluster in burst mode and scrapes its nodes at once:
// when one node changes state, its peers are the ones to watch.
func (e *Exporter) startBurst(cluster string) {
	e.mu.Lock()
	e.burstUntil[cluster] = e.opts.Now().Add(e.opts.BurstFor)
	e.mu.Unlock()
	for _, s := range e.scrapers {
		if s.target.Cluster == cluster {
			select {
			case s.kick <- struct{}{}:
			default:
			}
		}
	}
}

func (e *Exporter) inBurst(cluster string) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.opts.Now().Before(e.burstUntil[cluster])
}

// Sink receives every snapshot from its scraper's goroutine as soon as it
// is taken. changed says the node's state moved since its previous
// snapshot (see stateChanged), which consumers may want to publish at
// once. A Sink must be safe for concurrent use and return quickly.
type Sink func(snap *nines.Snapshot, changed bool)

// Run scrapes every target until ctx ends, handing snapshots to sink (may
// be nil).
func (e *Exporter) Run(ctx context.Context, sink Sink) {
	var wg sync.WaitGroup
	for _, s := range e.scrapers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s.run(ctx, sink)
		}()
	}
	wg.Wait()
}

// Lateness is how late the scheduled scrapes of every node started.
func (e *Exporter) Lateness() *Lateness { return &e.lateness }

// Latest returns the newest snapshot of every node scraped at least once,
// ordered by cluster and instance. Snapshots are shared: do not modify them.
func (e *Exporter) Latest() []*nines.Snapshot {
	out := make([]*nines.Snapshot, 0, len(e.scrapers))
	for _, s := range e.scrapers {
		if snap := s.latest.Load(); snap != nil {
			out = append(out, snap)
		}
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Cluster != out[j].Cluster {
			return out[i].Cluster < out[j].Cluster
		}
		return out[i].Instance < out[j].Instance
	})
	return out
}
