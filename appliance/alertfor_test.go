package appliance

import (
	"strings"
	"testing"
	"time"

	"github.com/nines-project/nines/appliance/config"
	"github.com/nines-project/nines/rules"
)

func TestAlertForChangesTheBuiltinWait(t *testing.T) {
	cfg := &config.Config{AlertFor: map[string]config.Duration{"ConfigDrift": {Duration: 20 * time.Second}}}
	srcs, err := RuleSources(cfg)
	if err != nil {
		t.Fatal(err)
	}
	parsed, err := rules.ParseAll(srcs)
	if err != nil {
		t.Fatalf("the edited packs do not parse: %v", err)
	}
	var got []string
	for _, ps := range parsed {
		for _, g := range ps.Groups {
			for _, r := range g.Rules {
				if r.Alert == "ConfigDrift" {
					got = append(got, ps.Name+" "+r.For.String())
				}
			}
		}
	}
	if len(got) != 1 || got[0] != "builtin/config.yml 20s" {
		t.Fatalf("ConfigDrift rules %v, want one in builtin/config.yml waiting 20s", got)
	}
}

func TestAlertForNamesAnAlertNoPackHas(t *testing.T) {
	cfg := &config.Config{AlertFor: map[string]config.Duration{"ConfigDrfit": {Duration: time.Minute}, "ConfigDrift": {Duration: time.Minute}}}
	_, err := RuleSources(cfg)
	if err == nil || !strings.Contains(err.Error(), "alert_for: no built-in alert is named ConfigDrfit") {
		t.Fatalf("err %v, want the misspelt name", err)
	}
}
