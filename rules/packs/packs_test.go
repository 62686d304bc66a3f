package packs

import (
	"strings"
	"testing"

	"github.com/nines-project/nines/rules"
)

// TestPacksParseAndCarryWhatOperatorsNeed: every built-in rule parses, and
// every alert has a severity of critical, warning or info and the summary,
// description and runbook annotations.
func TestPacksParseAndCarryWhatOperatorsNeed(t *testing.T) {
	parsed, err := rules.ParseAll(Sources())
	if err != nil {
		t.Fatal(err)
	}
	alerts := 0
	for _, ps := range parsed {
		for _, g := range ps.Groups {
			for _, r := range g.Rules {
				if r.Alert == "" {
					continue
				}
				alerts++
				switch r.Labels["severity"] {
				case "critical", "warning", "info":
				default:
					t.Errorf("%s: %s has severity %q", ps.Name, r.Alert, r.Labels["severity"])
				}
				for _, a := range []string{"summary", "description", "runbook"} {
					if strings.TrimSpace(r.Annotations[a]) == "" {
						t.Errorf("%s: %s lacks annotation %s", ps.Name, r.Alert, a)
					}
				}
			}
		}
	}
	if alerts < 20 {
		t.Errorf("only %d built-in alerts", alerts)
	}
}
