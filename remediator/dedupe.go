package remediator

import (
	"sort"
	"time"
)

// The deduplication state (active, handled, failed: by fingerprint) is
// forgotten for an alert once it resolves, or once Alertmanager has not
// mentioned it for alertTTL (it re-sends a firing alert every
// repeat_interval, hours at most, so a live alert is never forgotten);
// and at most maxAlerts fingerprints are kept: past that, the least
// recently seen are dropped down to nine tenths of it (so the sort runs
// rarely during a flood), and memory cannot grow without bound.
const (
	alertTTL  = 24 * time.Hour
	maxAlerts = 10000
)

// touch records that fp was mentioned now. Caller holds r.mu.
func (r *Remediator) touch(fp string, now time.Time) {
	r.lastSeen[fp] = now
}

// forget drops every trace of fp. Caller holds r.mu.
func (r *Remediator) forget(fp string) {
	delete(r.active, fp)
	delete(r.handled, fp)
	delete(r.failed, fp)
	delete(r.lastSeen, fp)
}

// prune forgets alerts unseen for alertTTL, then the least recently seen
// beyond maxAlerts. Caller holds r.mu.
func (r *Remediator) prune(now time.Time) {
	if now.Sub(r.swept) >= time.Minute { // a scan per notification would cost O(n) each
		r.swept = now
		for fp, t := range r.lastSeen {
			if now.Sub(t) >= alertTTL {
				r.forget(fp)
			}
		}
	}
	if len(r.lastSeen) <= maxAlerts {
		return
	}
	over := len(r.lastSeen) - maxAlerts*9/10
	fps := make([]string, 0, len(r.lastSeen))
	for fp := range r.lastSeen {
		fps = append(fps, fp)
	}
	sort.Slice(fps, func(i, j int) bool { return r.lastSeen[fps[i]].Before(r.lastSeen[fps[j]]) })
	for _, fp := range fps[:over] {
		r.forget(fp)
	}
	r.o.Logger.Warn("remediator forgot the least recently seen alerts: more distinct alerts than it keeps", "dropped", over, "kept", len(r.lastSeen))
}

// dedupeSize is how many fingerprints the remediator remembers, for tests.
func (r *Remediator) dedupeSize() (active, handled, seen int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.active), len(r.handled), len(r.lastSeen)
}
