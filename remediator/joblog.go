package remediator

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/nines-project/nines/internal/durable"
)

// JobLog keeps every job as one JSON file in a directory, rewritten
// atomically (write, fsync, rename, fsync the directory) after every
// change, so a crash at any moment leaves each job either as it was before
// the change or after it, never half-written.
type JobLog struct {
	dir string
	mu  sync.Mutex
}

// OpenJobLog opens (creating) the job log directory.
func OpenJobLog(dir string) (*JobLog, error) {
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return nil, fmt.Errorf("open job log: %w", err)
	}
	return &JobLog{dir: dir}, nil
}

// Save writes j durably.
func (l *JobLog) Save(j *Job) error {
	b, err := json.MarshalIndent(j, "", "  ")
	if err != nil {
		return fmt.Errorf("save job %s: %w", j.ID, err)
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if err := l.write(j.ID+".json", b); err != nil {
		return fmt.Errorf("save job %s: %w", j.ID, err)
	}
	return nil
}

// write replaces the file name in the log's directory with b atomically
// and durably. Caller holds l.mu.
func (l *JobLog) write(name string, b []byte) error {
	return durable.WriteFile(filepath.Join(l.dir, name), b)
}

// ErrNoJob means no job has that ID.
var ErrNoJob = errors.New("no such job")

// Get reads one job.
func (l *JobLog) Get(id string) (*Job, error) {
	if strings.ContainsAny(id, "/\\") || strings.HasPrefix(id, ".") || id == "" {
		return nil, fmt.Errorf("job %q: %w", id, ErrNoJob)
	}
	b, err := os.ReadFile(filepath.Join(l.dir, id+".json"))
	if errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("job %q: %w", id, ErrNoJob)
	}
	if err != nil {
		return nil, fmt.Errorf("read job %s: %w", id, err)
	}
	var j Job
	if err := json.Unmarshal(b, &j); err != nil {
		return nil, fmt.Errorf("read job %s: %w", id, err)
	}
	return &j, nil
}

// List returns every job, newest first. A file that cannot be read is
// reported, not skipped silently.
func (l *JobLog) List() ([]*Job, error) {
	names, err := filepath.Glob(filepath.Join(l.dir, "*.json"))
	if err != nil {
		return nil, err
	}
	var out []*Job
	var errs []error
	for _, n := range names {
		j, err := l.Get(strings.TrimSuffix(filepath.Base(n), ".json"))
		if err != nil {
			errs = append(errs, err)
			continue
		}
		out = append(out, j)
	}
	sort.Slice(out, func(a, b int) bool { return out[a].CreatedAt.After(out[b].CreatedAt) })
	return out, errors.Join(errs...)
}

// Prune removes jobs that ended before cutoff; jobs still pending or
// running are kept whatever their age. It returns how many it removed.
func (l *JobLog) Prune(cutoff time.Time) (int, error) {
	jobs, err := l.List()
	removed := 0
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, j := range jobs {
		if !j.State.Done() || j.EndedAt.IsZero() || !j.EndedAt.Before(cutoff) {
			continue
		}
		if rerr := os.Remove(filepath.Join(l.dir, j.ID+".json")); rerr != nil && !errors.Is(rerr, os.ErrNotExist) {
			err = errors.Join(err, rerr)
			continue
		}
		removed++
	}
	return removed, err
}

// pruneJobs removes ended jobs older than KeepJobs from the log.
func (r *Remediator) pruneJobs() {
	keep := r.o.KeepJobs
	if keep <= 0 {
		keep = 30 * 24 * time.Hour
	}
	n, err := r.o.Log.Prune(r.o.Clock.Now().Add(-keep))
	if err != nil {
		r.o.Logger.Warn("prune job log", "err", err)
	}
	if n > 0 {
		r.o.Logger.Info("pruned job log", "removed", n, "older_than", keep)
	}
}
