package report

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// DefaultWindow is the period when from is not given: rolling 30 days.
const DefaultWindow = 30 * 24 * time.Hour

// MaxPeriod bounds a report's period: a report costs a query per day, and
// a from mistyped by a century must not cost 36,500.
const MaxPeriod = 3 * 366 * 24 * time.Hour

// RangeError is a from or to value that cannot be used; Param names which.
type RangeError struct {
	Param string // "from" or "to"
	Value string
	Msg   string
}

func (e *RangeError) Error() string {
	if e.Value == "" {
		return e.Param + ": " + e.Msg
	}
	return fmt.Sprintf("%s %q: %s", e.Param, e.Value, e.Msg)
}

const rangeHelp = `want RFC 3339 (2026-11-01T00:00:00Z), a date (2026-11-01, UTC), "now", "month" or a duration back from to ("30d", "12h")`

// ParseRange turns the from and to of a request into the period [from,
// to), in UTC:
//   - to: RFC 3339; a date, meaning the end of that day; "now" or empty:
//     now. A to after now is cut to now.
//   - from: RFC 3339; a date, meaning its start; "month": the start of to's
//     calendar month (the month so far); a duration such as "30d", "7d",
//     "12h" or "90m": that long before to; empty: 30 days before to.
//
// The period must be non-empty, start before now and last at most
// MaxPeriod.
func ParseRange(fromS, toS string, now time.Time) (from, to time.Time, err error) {
	now = now.UTC()
	switch toS = strings.TrimSpace(toS); {
	case toS == "" || toS == "now":
		to = now
	default:
		if to, err = parseTime(toS, true); err != nil {
			return from, to, &RangeError{"to", toS, rangeHelp}
		}
	}
	if to.After(now) {
		to = now
	}
	switch fromS = strings.TrimSpace(fromS); {
	case fromS == "":
		from = to.Add(-DefaultWindow)
	case fromS == "month":
		from = monthStart(to.Add(-time.Nanosecond))
	default:
		if d, ok := parseDuration(fromS); ok {
			from = to.Add(-d)
		} else if from, err = parseTime(fromS, false); err != nil {
			return from, to, &RangeError{"from", fromS, rangeHelp}
		}
	}
	if !from.Before(to) {
		return from, to, &RangeError{"from", fromS, fmt.Sprintf("%s is not before to %s", from.Format(time.RFC3339), to.Format(time.RFC3339))}
	}
	if to.Sub(from) > MaxPeriod {
		return from, to, &RangeError{"from", fromS, fmt.Sprintf("the period from %s to %s is longer than %d days", from.Format(time.RFC3339), to.Format(time.RFC3339), MaxPeriod/(24*time.Hour))}
	}
	return from, to, nil
}

// parseTime reads RFC 3339 or a date; a date as the end of a period is
// the end of that day.
func parseTime(s string, end bool) (time.Time, error) {
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return t.UTC(), nil
	}
	t, err := time.Parse(time.DateOnly, s)
	if err != nil {
		return t, err
	}
	if end {
		t = t.AddDate(0, 0, 1)
	}
	return t, nil
}

// parseDuration reads a positive duration: Go's syntax or a number of
// days ("30d").
func parseDuration(s string) (time.Duration, bool) {
	if n, ok := strings.CutSuffix(s, "d"); ok {
		days, err := strconv.Atoi(n)
		if err != nil || days <= 0 {
			return 0, false
		}
		return time.Duration(days) * 24 * time.Hour, true
	}
	d, err := time.ParseDuration(s)
	return d, err == nil && d > 0
}
