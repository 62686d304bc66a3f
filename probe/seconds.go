package probe

import "time"

// Seconds counts wall-clock seconds by SLI result (facts/slo.md): every
// second from Run's start is counted exactly once, in exactly one field,
// once it can no longer change.
type Seconds struct {
	// Good: at least one probe started in the second committed and read
	// its row back within the latency bound.
	Good uint64
	// Bad: probes started in the second, and none succeeded (each failed,
	// or ran past the latency bound).
	Bad uint64
	// Unknown: no probe result exists for the second: no probe started in
	// it (the prober stalled, a tick was skipped) or every probe of it was
	// cut short by the prober's own shutdown.
	Unknown uint64
	// Maintenance: the second lies in a declared maintenance window of the
	// cluster. Whatever its probes came to, it is not valid for the SLO
	// and counts here only, never as good, bad or unknown.
	Maintenance uint64
}

// Total is the number of seconds counted.
func (s Seconds) Total() uint64 { return s.Good + s.Bad + s.Unknown + s.Maintenance }

// Valid is the number of seconds the SLO counts: all but maintenance.
func (s Seconds) Valid() uint64 { return s.Good + s.Bad + s.Unknown }

// closeGrace is how long after its latency bound a probe's result may
// take to be recorded. A probe started at the very end of second S may
// succeed until S+1+bound; the grace covers the bookkeeping after it, so a
// result that made the bound is never discarded by a forced close.
const closeGrace = 500 * time.Millisecond

// ledger is the per-second accounting behind nines_probe_seconds_total. It
// is a pure state machine over the times it is given, so it is tested
// without a server or a real clock. The Prober serializes calls to it.
//
// A second S stays open while probes may still start in it (until S+1) and
// while probes started in it are still pending. It then closes: good if any
// of its probes succeeded, bad if its probes all failed, unknown if it had
// no result. A probe still pending at S+1+bound+closeGrace can no longer
// succeed within the bound, so the second closes without it and the probe
// counts as failed; its late result is ignored.
type ledger struct {
	bound time.Duration
	// maintenance, if not nil, says whether the second starting at the
	// given Unix time lies in a declared maintenance window.
	maintenance func(sec int64) bool
	started     bool
	next        int64 // first second (Unix) not yet counted
	open        map[int64]*second
	counts      Seconds
	// marks are the counts at each of the latest second boundaries, so
	// that seconds closed together (a late one holds the next back) can
	// still be stored one per boundary.
	marks []mark
}

// mark is the counts as they stood once every second before at was counted.
type mark struct {
	at     int64
	counts Seconds
}

// maxMarks bounds the boundaries remembered: 15 minutes, far more than
// the store writer (every second) ever falls behind.
const maxMarks = 900

func (l *ledger) mark() {
	if len(l.marks) >= 2*maxMarks {
		l.marks = append(l.marks[:0], l.marks[len(l.marks)-maxMarks+1:]...)
	}
	l.marks = append(l.marks, mark{at: l.next, counts: l.counts})
}

// marksAfter returns the remembered boundaries after sec, oldest first.
func (l *ledger) marksAfter(sec int64) []mark {
	i := len(l.marks)
	for i > 0 && l.marks[i-1].at > sec {
		i--
	}
	if n := len(l.marks) - maxMarks; i < n {
		i = n
	}
	return append([]mark(nil), l.marks[i:]...)
}

type second struct {
	pending int  // probes started and not yet ended
	results int  // probes ended with a result (success or failure)
	good    bool // at least one of them succeeded
}

func newLedger(bound time.Duration, maintenance func(sec int64) bool) *ledger {
	return &ledger{bound: bound, maintenance: maintenance, open: map[int64]*second{}}
}

// inMaintenance counts second sec as maintenance when it lies in a
// declared window, and says whether it did.
func (l *ledger) inMaintenance(sec int64) bool {
	if l.maintenance == nil || !l.maintenance(sec) {
		return false
	}
	l.counts.Maintenance++
	return true
}

// start begins the accounting with the second that holds now: the first
// probe runs at once, so that (partial) second is counted too.
func (l *ledger) start(now time.Time) {
	l.started = true
	l.next = now.Unix()
}

// begin records a probe starting at now and returns the second it counts
// for. ok is false when the second is already counted, which only a wall
// clock stepped backwards can cause; such a probe counts for no second.
func (l *ledger) begin(now time.Time) (sec int64, ok bool) {
	sec = now.Unix()
	if !l.started || sec < l.next {
		return 0, false
	}
	s := l.open[sec]
	if s == nil {
		s = &second{}
		l.open[sec] = s
	}
	s.pending++
	return sec, true
}

// end records the result of a probe begun in sec. A result for a second
// already closed (forced past its bound) is ignored.
func (l *ledger) end(sec int64, good bool) {
	s := l.open[sec]
	if s == nil || s.pending == 0 {
		return
	}
	s.pending--
	s.results++
	s.good = s.good || good
}

// abandon records that a probe begun in sec ended without a result: the
// prober itself cancelled it while shutting down.
func (l *ledger) abandon(sec int64) {
	if s := l.open[sec]; s != nil && s.pending > 0 {
		s.pending--
	}
}

// close counts every second before now's that can no longer change.
// Seconds are counted in order, so one waiting for a pending probe holds
// the later ones back, by at most bound+closeGrace.
func (l *ledger) close(now time.Time) {
	l.closeBefore(now.Unix(), func(sec int64) bool {
		return now.Before(time.Unix(sec+1, 0).Add(l.bound + closeGrace))
	})
}

// stop counts every second before now's, whatever is pending: the prober
// is shutting down and has cancelled its probes, which left no result. The
// second that holds now is partial and not counted: from start to stop,
// the counted seconds differ from the wall time by less than a second.
func (l *ledger) stop(now time.Time) {
	for _, s := range l.open {
		s.pending = 0
	}
	l.closeBefore(now.Unix(), func(int64) bool { return false })
	l.started = false
	clear(l.open)
}

// closeBefore counts the seconds from next up to (excluding) cur, stopping
// at the first one with pending probes for which wait says to wait.
func (l *ledger) closeBefore(cur int64, wait func(sec int64) bool) {
	if !l.started {
		return
	}
	for l.next < cur {
		s := l.open[l.next]
		if s == nil {
			// No probe started in this second: it and every second up to
			// the next one with a probe are unknown, counted in one step
			// even if the wall clock jumped by days.
			upto := cur
			for sec := range l.open {
				if sec > l.next && sec < upto {
					upto = sec
				}
			}
			if l.maintenance == nil && upto-l.next > maxMarks {
				l.counts.Unknown += uint64(upto - l.next)
				l.next = upto
				l.mark()
				continue
			}
			for ; l.next < upto; l.mark() {
				if !l.inMaintenance(l.next) {
					l.counts.Unknown++
				}
				l.next++
			}
			continue
		}
		if s.pending > 0 && wait(l.next) {
			return
		}
		switch {
		case l.inMaintenance(l.next):
		case s.good:
			l.counts.Good++
		case s.results+s.pending > 0:
			// Pending probes here ran past the bound: failures.
			l.counts.Bad++
		default:
			l.counts.Unknown++
		}
		delete(l.open, l.next)
		l.next++
		l.mark()
	}
}
