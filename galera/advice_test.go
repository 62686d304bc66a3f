package galera

import (
	"strings"
	"testing"
	"time"
)

func TestParseISODuration(t *testing.T) {
	for in, want := range map[string]time.Duration{
		"PT5S": 5 * time.Second, "PT1.5S": 1500 * time.Millisecond, "PT0.25S": 250 * time.Millisecond,
		"PT1M30S": 90 * time.Second, "P1D": 24 * time.Hour, "PT2H": 2 * time.Hour,
	} {
		if got, err := ParseISODuration(in); err != nil || got != want {
			t.Errorf("ParseISODuration(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, bad := range []string{"", "5S", "PT", "P", "PTS", "PT-1S", "PT5X"} {
		if _, err := ParseISODuration(bad); err == nil {
			t.Errorf("ParseISODuration(%q) accepted", bad)
		}
	}
}

// The options as MariaDB 10.11 with Galera 4 shows them on the sandbox.
const sandboxOptions = "base_dir = /tmp/n1/data/; base_host = 127.0.0.1; evs.inactive_timeout = PT3S; evs.suspect_timeout = PT1.5S; gcache.size = 32M; pc.weight = 1"

func TestEvictionAdvice(t *testing.T) {
	a, err := Eviction("db1:3306", "evs.suspect_timeout = PT5S; gcache.size = 1G", 5200*time.Millisecond, "node-crash drill d1")
	if err != nil {
		t.Fatal(err)
	}
	if a.Warning || !strings.Contains(a.Measured, "(node-crash drill d1), 5.2s, matches") || !strings.Contains(a.Suggestion, "PT3S") || !strings.Contains(a.Suggestion, "2s") || a.Values["suspect_timeout_seconds"] != 5 || a.Values["inactive_timeout_seconds"] != 15 {
		t.Errorf("default-ish timeouts, stall that matches them: %+v", a)
	}
	a, err = Eviction("db1:3306", sandboxOptions, 9*time.Second, "the probe")
	if err != nil {
		t.Fatal(err)
	}
	if !a.Warning || !strings.Contains(a.Measured, "flow control") || a.Suggestion != "already short; leave it" {
		t.Errorf("a stall the 1.5 s suspect timeout does not explain: %+v", a)
	}
	a, err = Eviction("db1:3306", sandboxOptions, 300*time.Millisecond, "the probe")
	if err != nil || a.Warning || !strings.Contains(a.Measured, "no crash under writes") {
		t.Errorf("only short stalls measured: %+v %v", a, err)
	}
	if _, err := Eviction("db1:3306", "evs.suspect_timeout = 5 seconds", 0, ""); err == nil || !strings.Contains(err.Error(), "evs.suspect_timeout of db1:3306") {
		t.Errorf("an odd timeout: %v; want an error naming the option and the node", err)
	}
}

func TestISTWindowAdvice(t *testing.T) {
	// 32 MiB at 100 KiB/s: 5m28s, under a 10-minute restart.
	a := ISTWindow(ISTWindowInput{Node: "db1:3306", GcacheBytes: 32 << 20, FillBytesPerSecond: 100 << 10, Restart: 10 * time.Minute})
	if !a.Warning || a.Values["window_seconds"] != 327.68 || !strings.Contains(a.Suggestion, "117.2 MiB") {
		t.Errorf("small gcache: %+v", a)
	}
	a = ISTWindow(ISTWindowInput{Node: "db1:3306", GcacheBytes: 1 << 30, FillBytesPerSecond: 100 << 10, Restart: 10 * time.Minute})
	if a.Warning || !strings.Contains(a.Suggestion, "enough for now") {
		t.Errorf("1 GiB: %+v", a)
	}
	a = ISTWindow(ISTWindowInput{Node: "db1:3306", GcacheBytes: 1 << 30, Restart: 10 * time.Minute})
	if a.Warning || !strings.Contains(a.Measured, "no writes") {
		t.Errorf("no writes: %+v", a)
	}
}
