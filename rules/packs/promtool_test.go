package packs

import (
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"

	"github.com/nines-project/nines/rules"
)

// promtool returns the path of promtool, part of the toolchain the tests
// need (Debian package prometheus): a missing one fails the test, it does
// not skip it.
func promtool(t *testing.T) string {
	t.Helper()
	p, err := exec.LookPath("promtool")
	if err != nil {
		t.Fatalf("promtool not found (install the Debian package prometheus): %v", err)
	}
	return p
}

// unitTestFiles returns the promtool unit-test files beside the packs.
func unitTestFiles(t *testing.T) []string {
	t.Helper()
	files, err := filepath.Glob("*_test.yml")
	if err != nil || len(files) == 0 {
		t.Fatalf("no promtool unit tests (*_test.yml) beside the packs: %v", err)
	}
	return files
}

// TestPromtoolRuleUnitTests runs Prometheus' own rule unit tests over
// every pack: each alert fires when and with what its test file says.
func TestPromtoolRuleUnitTests(t *testing.T) {
	bin := promtool(t)
	for _, f := range unitTestFiles(t) {
		t.Run(f, func(t *testing.T) {
			t.Parallel() // one promtool process per file, each single-threaded in effect
			out, err := exec.Command(bin, "test", "rules", f).CombinedOutput()
			if err != nil {
				t.Fatalf("promtool test rules %s: %v\n%s", f, err, out)
			}
		})
	}
}

// unitTestFile is the part of promtool's unit-test format that says which
// alerts and expressions a file checks.
type unitTestFile struct {
	Tests []struct {
		Name          string `yaml:"name"`
		AlertRuleTest []struct {
			Alertname string `yaml:"alertname"`
			ExpAlerts []any  `yaml:"exp_alerts"`
		} `yaml:"alert_rule_test"`
		PromQLExprTest []struct {
			Expr string `yaml:"expr"`
		} `yaml:"promql_expr_test"`
	} `yaml:"tests"`
}

// TestEveryBuiltinRuleIsUnitTested: every alert of the packs has a case
// that expects it firing and one that expects it silent, and every
// recording rule is read by some expression test. An alert no test makes
// fire could be broken in any way and still pass promtool.
func TestEveryBuiltinRuleIsUnitTested(t *testing.T) {
	firing, silent, exprs := map[string]bool{}, map[string]bool{}, ""
	for _, f := range unitTestFiles(t) {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		var u unitTestFile
		if err := yaml.Unmarshal(b, &u); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		for _, tc := range u.Tests {
			for _, a := range tc.AlertRuleTest {
				if len(a.ExpAlerts) > 0 {
					firing[a.Alertname] = true
				} else {
					silent[a.Alertname] = true
				}
			}
			for _, e := range tc.PromQLExprTest {
				exprs += e.Expr + "\n"
			}
		}
	}
	parsed, err := rules.ParseAll(Sources())
	if err != nil {
		t.Fatal(err)
	}
	alerts := 0
	for _, ps := range parsed {
		for _, g := range ps.Groups {
			for _, r := range g.Rules {
				switch {
				case r.Alert != "":
					alerts++
					if !firing[r.Alert] {
						t.Errorf("%s: alert %s: no alert_rule_test in *_test.yml expects it firing", ps.Name, r.Alert)
					}
					if !silent[r.Alert] {
						t.Errorf("%s: alert %s: no alert_rule_test in *_test.yml expects it silent (exp_alerts: [])", ps.Name, r.Alert)
					}
				case !strings.Contains(exprs, r.Record):
					t.Errorf("%s: recording rule %s: no promql_expr_test in *_test.yml reads it", ps.Name, r.Record)
				}
			}
		}
	}
	t.Logf("%d built-in alerts checked", alerts)
}

// TestEveryPackIsEmbedded: packs.go names the packs one by one (to keep
// the unit tests out of the binary); a pack added to the folder but not
// to the list would silently never run.
func TestEveryPackIsEmbedded(t *testing.T) {
	files, err := filepath.Glob("*.yml")
	if err != nil {
		t.Fatal(err)
	}
	var embedded []string
	for _, s := range Sources() {
		embedded = append(embedded, strings.TrimPrefix(s.Name, "builtin/"))
	}
	for _, f := range files {
		if strings.HasSuffix(f, "_test.yml") {
			if slices.Contains(embedded, f) {
				t.Errorf("unit test %s is embedded as a rule pack", f)
			}
			continue
		}
		if !slices.Contains(embedded, f) {
			t.Errorf("pack %s is not embedded: add it to the go:embed line in packs.go", f)
		}
	}
}
