package rules

import (
	"strings"
	"testing"
	"time"
)

const overridePack = `groups:
  - name: g
    rules:
      # why the wait is ten minutes
      - alert: Slow
        expr: up == 0
        for: 10m
      - alert: Instant
        expr: up == 2
      - record: job:up
        expr: up
`

func TestOverrideForEditsOnlyTheNamedAlerts(t *testing.T) {
	src := Source{Name: "builtin/g.yml", Content: []byte(overridePack)}
	out, found, err := OverrideFor(src, map[string]time.Duration{"Slow": 30 * time.Second, "Instant": time.Minute, "Elsewhere": time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(found, ",") != "Slow,Instant" {
		t.Fatalf("found %v, want Slow and Instant", found)
	}
	ps, err := Parse(out)
	if err != nil {
		t.Fatalf("edited pack does not parse: %v\n%s", err, out.Content)
	}
	rs := ps.Groups[0].Rules
	if got := rs[0].For.String(); got != "30s" {
		t.Errorf("Slow for %s, want 30s", got)
	}
	if got := rs[1].For.String(); got != "1m" {
		t.Errorf("Instant for %s, want 1m", got)
	}
	if rs[2].Record != "job:up" || rs[2].For != 0 {
		t.Errorf("recording rule changed: %+v", rs[2])
	}
	text := string(out.Content)
	for _, want := range []string{"# why the wait is ten minutes", "the pack says 10m", "the pack has none"} {
		if !strings.Contains(text, want) {
			t.Errorf("edited pack lacks %q:\n%s", want, text)
		}
	}
}

func TestOverrideForLeavesAPackWithoutTheAlertsAsItIs(t *testing.T) {
	src := Source{Name: "builtin/g.yml", Content: []byte(overridePack)}
	out, found, err := OverrideFor(src, map[string]time.Duration{"Elsewhere": time.Second})
	if err != nil || len(found) != 0 || string(out.Content) != overridePack {
		t.Fatalf("got %v %v, content changed: %v", found, err, string(out.Content) != overridePack)
	}
}
