package mysql

import (
	"strconv"
	"strings"
	"time"
)

// ParseValue turns a status or variable value into a number the way
// mysqld_exporter does, so rules written for it keep their meaning:
// ON/YES → 1, OFF/NO/DISABLED → 0, Connecting → 0 (a replica thread that is
// not running), Primary → 1 and non-Primary/Disconnected → 0
// (wsrep_cluster_status), timestamps → Unix seconds, numbers as they are.
// ok is false for values that carry no number (names, UUIDs, empty).
func ParseValue(s string) (v float64, ok bool) {
	switch strings.ToLower(s) {
	case "yes", "on", "primary", "true":
		return 1, true
	case "no", "off", "disabled", "connecting", "non-primary", "disconnected", "false":
		return 0, true
	}
	if s == "" {
		return 0, false
	}
	if f, err := strconv.ParseFloat(s, 64); err == nil {
		return f, true
	}
	for _, layout := range []string{"Jan 02 15:04:05 2006 MST", "2006-01-02 15:04:05"} {
		if ts, err := time.Parse(layout, s); err == nil {
			return float64(ts.Unix()), true
		}
	}
	return 0, false
}
