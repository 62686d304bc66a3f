package appliance

import (
	"path"
	"slices"
	"strings"
	"testing"

	"github.com/nines-project/nines"
	"github.com/nines-project/nines/remediator"
	"github.com/nines-project/nines/rules"
	"github.com/nines-project/nines/rules/packs"
	"github.com/nines-project/nines/rules/slo"
)

// TestRulesNameOnlyRegisteredRunbooks fails when a built-in rule pack or
// the generated SLO rules label an alert with a runbook nines does not
// have (the remediator would ignore the alert), or one for another kind of
// cluster than the pack's.
func TestRulesNameOnlyRegisteredRunbooks(t *testing.T) {
	srcs := packs.Sources()
	groups, err := slo.Rules([]slo.Spec{{Cluster: "billing"}})
	if err != nil {
		t.Fatal(err)
	}
	b, err := rules.Marshal(groups)
	if err != nil {
		t.Fatal(err)
	}
	srcs = append(srcs, rules.Source{Name: "generated/slo.yml", Content: b})
	parsed, err := rules.ParseAll(srcs)
	if err != nil {
		t.Fatal(err)
	}
	named := 0
	for _, src := range parsed {
		kind := nines.Kind(strings.TrimSuffix(path.Base(src.Name), ".yml"))
		for _, g := range src.Groups {
			for _, r := range g.Rules {
				for _, label := range []string{"remediation", "runbook"} {
					name, ok := r.Labels[label]
					if !ok {
						continue
					}
					named++
					rb, ok := remediator.LookupRunbook(name)
					if !ok {
						t.Errorf("%s: alert %s: %s=%q is not a runbook nines has", src.Name, r.Alert, label, name)
						continue
					}
					if kind.Valid() && !slices.Contains(rb.Kinds, kind) {
						t.Errorf("%s: alert %s: runbook %s works on %v clusters, not %s", src.Name, r.Alert, name, rb.Kinds, kind)
					}
				}
			}
		}
	}
	if named == 0 {
		t.Fatal("no rule names a runbook: the packs were not read")
	}
}
