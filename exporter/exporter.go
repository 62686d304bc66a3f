package exporter

import (
	"context"
	"fmt"
	"sort"
	"sync"

	"github.com/nines-project/nines"
)

// Exporter runs one scraper per target.
type Exporter struct {
	scrapers []*scraper
	opts     Options
}

// New prepares scrapers for targets; nothing connects until Run.
func New(targets []Target, opts Options) (*Exporter, error) {
	opts.defaults()
	e := &Exporter{opts: opts}
	seen := map[string]bool{}
	for _, t := range targets {
		if seen[t.Address] {
			return nil, fmt.Errorf("target %s listed twice", t.Address)
		}
		seen[t.Address] = true
		s, err := newScraper(t, opts)
		if err != nil {
			return nil, err
		}
		e.scrapers = append(e.scrapers, s)
	}
	return e, nil
}

// Run scrapes every target until ctx ends. sink, if not nil, receives
// every snapshot from the scraper's goroutine as soon as it is taken; it
// must be safe for concurrent use and return quickly.
func (e *Exporter) Run(ctx context.Context, sink func(*nines.Snapshot)) {
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
