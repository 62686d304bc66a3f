package galera

import (
	"fmt"
	"math"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// ProviderOption returns one option of wsrep_provider_options, which the
// server shows as "name = value; name = value; ...".
func ProviderOption(opts, name string) (string, bool) {
	for _, opt := range strings.Split(opts, ";") {
		n, v, ok := strings.Cut(opt, "=")
		if ok && strings.TrimSpace(n) == name {
			return strings.TrimSpace(v), true
		}
	}
	return "", false
}

var isoDuration = regexp.MustCompile(`^P(?:(\d+(?:\.\d+)?)D)?(?:T(?:(\d+(?:\.\d+)?)H)?(?:(\d+(?:\.\d+)?)M)?(?:(\d+(?:\.\d+)?)S)?)?$`)

// ParseISODuration reads the ISO 8601 durations Galera's timeouts are
// given in: PT5S, PT1.5S, PT1M30S, P1D.
func ParseISODuration(s string) (time.Duration, error) {
	m := isoDuration.FindStringSubmatch(strings.TrimSpace(s))
	if m == nil || s == "P" || s == "PT" {
		return 0, fmt.Errorf("duration %q: want ISO 8601 as Galera writes it (PT5S, PT1.5S, PT1M)", s)
	}
	var d float64
	for i, unit := range []float64{86400, 3600, 60, 1} {
		if m[i+1] == "" {
			continue
		}
		v, err := strconv.ParseFloat(m[i+1], 64)
		if err != nil {
			return 0, fmt.Errorf("duration %q: %w", s, err)
		}
		d += v * unit
	}
	return time.Duration(d * float64(time.Second)), nil
}

// The defaults of Galera 4 for the eviction timeouts, used when the
// server does not list them.
const (
	DefaultSuspectTimeout  = 5 * time.Second
	DefaultInactiveTimeout = 15 * time.Second
)

// MinRestartBudget is the least time a node restart is taken to need: a
// rejoin, a human, a reboot. The IST window alert uses the same floor.
const MinRestartBudget = 10 * time.Minute

// Advice is one recommendation drawn from measurements, in words for the
// operator and in numbers for a program.
type Advice struct {
	// Topic is "ist_window" or "eviction".
	Topic string `json:"topic"`
	Node  string `json:"node,omitempty"`
	// Warning is true when the measurement says the setting is wrong
	// for this cluster now, not merely that it could be tuned.
	Warning    bool               `json:"warning"`
	Measured   string             `json:"measured"`
	Setting    string             `json:"setting"`
	Suggestion string             `json:"suggestion"`
	Risk       string             `json:"risk"`
	Values     map[string]float64 `json:"values,omitempty"`
}

// ISTWindowInput is what the IST window advice of one node is drawn from.
type ISTWindowInput struct {
	Node string
	// GcacheBytes is gcache.size; FillBytesPerSecond what enters the
	// gcache (writesets replicated and received), averaged over minutes.
	GcacheBytes        float64
	FillBytesPerSecond float64
	// Restart is the time a node restart takes (the longest measured,
	// at least MinRestartBudget).
	Restart time.Duration
}

// ISTWindow says how long the node may be down and still rejoin by IST,
// against the time a restart takes, and the gcache.size that would hold a
// restart's worth of writes twice over.
func ISTWindow(in ISTWindowInput) Advice {
	a := Advice{Topic: "ist_window", Node: in.Node, Setting: "gcache.size = " + bytesText(in.GcacheBytes),
		Values: map[string]float64{"gcache_bytes": in.GcacheBytes, "fill_bytes_per_second": in.FillBytesPerSecond, "restart_seconds": in.Restart.Seconds()}}
	if in.FillBytesPerSecond <= 0 {
		a.Measured = "no writes entered the gcache in the last 10 minutes: a node may be down for any time and still rejoin by IST while that lasts"
		a.Suggestion = "nothing to change now; the window shrinks as soon as writes resume"
		a.Risk = "none"
		return a
	}
	window := in.GcacheBytes / in.FillBytesPerSecond
	a.Values["window_seconds"] = window
	need := 2 * in.Restart.Seconds() * in.FillBytesPerSecond
	a.Values["suggested_gcache_bytes"] = need
	a.Measured = fmt.Sprintf("at %s/s of writes the gcache holds %s: a node down longer needs a full SST; a restart takes %s",
		bytesText(in.FillBytesPerSecond), durationText(window), durationText(in.Restart.Seconds()))
	if window < in.Restart.Seconds() {
		a.Warning = true
		a.Suggestion = fmt.Sprintf("raise gcache.size to %s (twice a restart's worth of writes) with a rolling restart (galera-rolling-restart)", bytesText(need))
	} else {
		a.Suggestion = fmt.Sprintf("enough for now (%.1f restarts' worth); at %s the gcache would hold two", window/in.Restart.Seconds(), bytesText(need))
	}
	a.Risk = "the gcache is a file of that size on every node's datadir disk, allocated at start; a larger one also lengthens the IST a long absence needs"
	return a
}

// Eviction says what a crashed node costs in stalled writes: the others
// wait evs.suspect_timeout before they evict it, and commits wait with
// them. stall is the write stall measured, 0 when none was, and source
// says where it comes from (a node-crash drill, the probe's longest write).
func Eviction(node, providerOptions string, stall time.Duration, source string) (Advice, error) {
	suspect, inactive := DefaultSuspectTimeout, DefaultInactiveTimeout
	for name, d := range map[string]*time.Duration{"evs.suspect_timeout": &suspect, "evs.inactive_timeout": &inactive} {
		if v, ok := ProviderOption(providerOptions, name); ok {
			parsed, err := ParseISODuration(v)
			if err != nil {
				return Advice{}, fmt.Errorf("%s of %s: %w", name, node, err)
			}
			*d = parsed
		}
	}
	a := Advice{Topic: "eviction", Node: node,
		Setting: fmt.Sprintf("evs.suspect_timeout = %s; evs.inactive_timeout = %s", suspect, inactive),
		Values:  map[string]float64{"suspect_timeout_seconds": suspect.Seconds(), "inactive_timeout_seconds": inactive.Seconds(), "stall_seconds": stall.Seconds()}}
	switch {
	case stall <= 0:
		a.Measured = fmt.Sprintf("no write stall measured yet; a crashed node should stall commits for about %s (evs.suspect_timeout)", suspect)
	case stall < suspect:
		a.Measured = fmt.Sprintf("the write stall measured (%s), %s, is shorter than a node crash would cost (evs.suspect_timeout %s): no crash under writes was measured", source, stall.Round(100*time.Millisecond), suspect)
	case stall > suspect+2*time.Second:
		a.Warning = true
		a.Measured = fmt.Sprintf("the write stall measured (%s), %s, is longer than the eviction explains (%s): look at flow control, disks and the network too", source, stall.Round(100*time.Millisecond), suspect)
	default:
		a.Measured = fmt.Sprintf("the write stall measured (%s), %s, matches the eviction time (evs.suspect_timeout %s)", source, stall.Round(100*time.Millisecond), suspect)
	}
	const shorter = 3 * time.Second
	if suspect > shorter {
		a.Suggestion = fmt.Sprintf("evs.suspect_timeout = PT%dS (and evs.inactive_timeout at least twice that) would cut about %s from the stall a node crash costs",
			int(shorter.Seconds()), (suspect - shorter).Round(100*time.Millisecond))
		a.Risk = fmt.Sprintf("a healthy node that pauses or loses its link for %s (a long GC or I/O stall, a network blip) is evicted and must rejoin; keep it well above the network's worst round trip", shorter)
	} else {
		a.Suggestion = "already short; leave it"
		a.Risk = "shorter still, ordinary pauses and network blips evict healthy nodes"
	}
	return a, nil
}

func bytesText(b float64) string {
	switch {
	case math.IsNaN(b) || b < 0:
		return "unknown"
	case b >= 1<<30:
		return fmt.Sprintf("%.1f GiB", b/(1<<30))
	case b >= 1<<20:
		return fmt.Sprintf("%.1f MiB", b/(1<<20))
	case b >= 1<<10:
		return fmt.Sprintf("%.1f KiB", b/(1<<10))
	}
	return fmt.Sprintf("%.0f B", b)
}

func durationText(s float64) string {
	return (time.Duration(s * float64(time.Second))).Round(time.Second).String()
}
