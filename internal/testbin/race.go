package testbin

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"sync"
)

// Races collects the race detector's reports of the processes a test
// starts (appliances, node agents, the demo). A race in a child process
// does not fail the test by itself: the child's report goes to its own
// stderr, often a log file nobody reads, and a process killed with -9
// never reaches the exit code that would tell. So every child gets
// GORACE log_path pointing into one directory: the race runtime writes
// log_path.<pid> when it finds a race, before the process goes on or
// dies, and the test reads the files.
type Races struct {
	dir  string
	mu   sync.Mutex
	seen map[string]bool
}

// WatchRaces makes the report directory and sets GORACE in this process's
// environment, which every child started after it inherits. The test
// process's own race runtime read GORACE at its start, so its reports
// still go to its stderr, where go test sees them. Call it from TestMain,
// before any child starts; Close removes the directory.
func WatchRaces() (*Races, error) {
	dir, err := os.MkdirTemp("", "nines-test-race-")
	if err != nil {
		return nil, fmt.Errorf("race report directory: %w", err)
	}
	// halt_on_error=0: a racing agent keeps serving, so the test sees the
	// race and not a confusing dead agent. Other GORACE options the
	// developer set are kept.
	opts := strings.TrimSpace(os.Getenv("GORACE") + " log_path=" + filepath.Join(dir, "race") + " halt_on_error=0")
	if err := os.Setenv("GORACE", opts); err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	return &Races{dir: dir, seen: map[string]bool{}}, nil
}

// Dir is where the reports are written.
func (r *Races) Dir() string { return r.dir }

// New returns the reports written since the last call, each headed by
// the file it came from (race.<pid>).
func (r *Races) New() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	files, _ := filepath.Glob(filepath.Join(r.dir, "race.*"))
	sort.Strings(files)
	var out []string
	for _, f := range files {
		if r.seen[f] {
			continue
		}
		b, err := os.ReadFile(f)
		if err != nil {
			out = append(out, fmt.Sprintf("%s: unreadable race report: %v", f, err))
		} else if len(b) == 0 {
			continue // opened, not yet written: read at the next check
		} else {
			out = append(out, fmt.Sprintf("%s:\n%s", f, b))
		}
		r.seen[f] = true
	}
	return out
}

// TB is the part of testing.TB that Check uses.
type TB interface {
	Helper()
	Errorf(format string, args ...any)
	Logf(format string, args ...any)
}

// Check fails tb with every report written since the last check, except
// the upstream race KnownUpstream recognises, which it logs.
func (r *Races) Check(tb TB) {
	tb.Helper()
	for _, rep := range r.New() {
		if why := KnownUpstream(rep); why != "" {
			tb.Logf("data race in a process the test started, known upstream and not nines' (%s):\n%s", why, rep)
			continue
		}
		tb.Errorf("data race in a process the test started (pid in the file name):\n%s", rep)
	}
}

// OnlyKnownUpstream reports whether the race reports of process pid are
// all the upstream race KnownUpstream recognises: the process then exits
// 66 (the race detector's exit code) for a race that is not nines'.
func (r *Races) OnlyKnownUpstream(pid int) bool {
	b, err := os.ReadFile(filepath.Join(r.dir, fmt.Sprintf("race.%d", pid)))
	return err == nil && len(b) > 0 && KnownUpstream(string(b)) != ""
}

// upstreamRaceFunc is the Alertmanager cluster package's periodic task
// that reads a memberlist.Node outside memberlist's lock while memberlist
// rewrites the node (Addr, Port, Incarnation) when a peer comes back
// alive: prometheus/alertmanager#2033, open upstream. nines turns the
// reconnect loop off (appliance/alertmanager/gossip.go); the refresh loop
// cannot be turned off.
var upstreamRaceFunc = regexp.MustCompile(`github\.com/prometheus/alertmanager/cluster\.\(\*Peer\)\.(refresh|reconnect)\(`)

// KnownUpstream returns why every race in report is the known upstream
// one, or "" if any is not. A race counts only when both racing accesses
// are in memberlist and Alertmanager's cluster package, with no frame of
// nines in either stack (where the goroutines were created does not
// matter).
func KnownUpstream(report string) string {
	blocks := strings.Split(report, "WARNING: DATA RACE")
	n := 0
	for _, b := range blocks[1:] {
		var accesses []string
		for _, sec := range regexp.MustCompile(`\n\s*\n`).Split(b, -1) {
			t := strings.TrimSpace(sec)
			for _, head := range []string{"Write at", "Read at", "Previous write at", "Previous read at"} {
				if strings.HasPrefix(t, head) {
					accesses = append(accesses, t)
				}
			}
		}
		if len(accesses) != 2 {
			return ""
		}
		sawTask := false
		for _, a := range accesses {
			frames := strings.SplitN(a, "\n", 3)
			if len(frames) < 2 || !strings.Contains(frames[1], "github.com/hashicorp/memberlist.") || strings.Contains(a, "github.com/nines-project/nines") {
				return ""
			}
			sawTask = sawTask || upstreamRaceFunc.MatchString(a)
		}
		if !sawTask {
			return ""
		}
		n++
	}
	if n == 0 {
		return ""
	}
	return fmt.Sprintf("%d race(s) between memberlist and Alertmanager's cluster refresh/reconnect, prometheus/alertmanager#2033", n)
}

// Close removes the report directory.
func (r *Races) Close() { os.RemoveAll(r.dir) }
