package nines_test

import (
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
)

const module = "github.com/nines-project/nines"

// forbidden lists, for each folder of the tree, the folders its code may
// never reach, directly or through another nines package. The design's
// one-way imports: hosts run the agent without the appliance, the
// exporters know nothing of repairs, Galera knowledge stays pure.
var forbidden = map[string][]string{
	"agent":      {"appliance", "remediator", "rules", "exporter", "probe", "dashboards", "sandbox"},
	"exporter":   {"appliance", "remediator", "rules", "agent", "sandbox"},
	"probe":      {"appliance", "remediator", "rules", "agent", "sandbox"},
	"remediator": {"appliance", "rules", "sandbox"},
	"rules":      {"appliance", "remediator", "agent", "sandbox"},
	"dashboards": {"appliance", "remediator", "agent", "sandbox"},
	"sandbox":    {"appliance", "remediator", "rules"},
	"ha":         {"appliance", "remediator", "rules", "agent", "exporter", "probe", "sandbox", "dashboards"},
	"internal":   {"appliance", "remediator", "rules", "agent", "exporter", "probe", "sandbox", "dashboards"},
}

// pure packages may import only the standard library and these.
var pure = map[string][]string{
	"":            {},   // the module root: the domain vocabulary
	"galera":      {""}, // Galera knowledge: the root's types only
	"haproxy":     {},   // HAProxy configuration text: standard library only
	"ndb":         {},   // NDB knowledge and the mgm protocol's messages: standard library only
	"replication": {},   // GTID replication knowledge: standard library only
}

// TestImportDirection fails when a package's non-test code reaches a
// package its layer must not know.
func TestImportDirection(t *testing.T) {
	imports := moduleImports(t)
	for pkg := range imports {
		top := strings.SplitN(pkg, "/", 2)[0]
		for _, dep := range reach(imports, pkg) {
			depTop := strings.SplitN(dep, "/", 2)[0]
			for _, bad := range forbidden[top] {
				if depTop == bad {
					t.Errorf("%s reaches %s (%s), which %s/ must not know: %s", orRoot(pkg), orRoot(dep), bad, top, path(imports, pkg, dep))
				}
			}
		}
		if allowed, ok := pure[pkg]; ok {
			for _, dep := range imports[pkg] {
				if !contains(allowed, dep) {
					t.Errorf("%s is pure (standard library and %v only) but imports %s", orRoot(pkg), allowed, orRoot(dep))
				}
			}
		}
	}
}

// TestImportDirectionCatchesViolations proves the walker sees an import:
// the agent's real import of galera is found, and a planted edge is
// reported as a path.
func TestImportDirectionCatchesViolations(t *testing.T) {
	imports := moduleImports(t)
	if !contains(imports["agent"], "galera") {
		t.Fatalf("agent's imports as read: %v; want galera among them", imports["agent"])
	}
	planted := map[string][]string{"agent": {"internal/x"}, "internal/x": {"appliance"}}
	if got := reach(planted, "agent"); !contains(got, "appliance") {
		t.Fatalf("reach through a planted chain: %v, want appliance", got)
	}
}

func orRoot(p string) string {
	if p == "" {
		return "nines (module root)"
	}
	return p
}

// moduleImports reads every non-test Go file of the module and returns,
// per package folder (relative to the root), the module packages it imports.
func moduleImports(t *testing.T) map[string][]string {
	t.Helper()
	out := map[string][]string{}
	fset := token.NewFileSet()
	err := filepath.WalkDir(".", func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if p != "." && (strings.HasPrefix(d.Name(), ".") || d.Name() == "testdata" || d.Name() == "bin") {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(p, ".go") || strings.HasSuffix(p, "_test.go") {
			return nil
		}
		f, err := parser.ParseFile(fset, p, nil, parser.ImportsOnly)
		if err != nil {
			return err
		}
		dir := filepath.ToSlash(filepath.Dir(p))
		if dir == "." {
			dir = ""
		}
		if _, ok := out[dir]; !ok {
			out[dir] = nil
		}
		for _, im := range f.Imports {
			ip, _ := strconv.Unquote(im.Path.Value)
			if ip == module {
				ip = ""
			} else if rest, ok := strings.CutPrefix(ip, module+"/"); ok {
				ip = rest
			} else {
				continue
			}
			if !contains(out[dir], ip) {
				out[dir] = append(out[dir], ip)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(out) < 10 {
		wd, _ := os.Getwd()
		t.Fatalf("found only %d packages under %s: walker broken", len(out), wd)
	}
	return out
}

// reach returns every module package pkg depends on, transitively.
func reach(imports map[string][]string, pkg string) []string {
	seen := map[string]bool{}
	var walk func(string)
	walk = func(p string) {
		for _, d := range imports[p] {
			if !seen[d] {
				seen[d] = true
				walk(d)
			}
		}
	}
	walk(pkg)
	out := make([]string, 0, len(seen))
	for d := range seen {
		out = append(out, d)
	}
	sort.Strings(out)
	return out
}

// path names one import chain from a to b, for the error message.
func path(imports map[string][]string, a, b string) string {
	prev := map[string]string{a: ""}
	queue := []string{a}
	for len(queue) > 0 {
		p := queue[0]
		queue = queue[1:]
		if p == b {
			chain := []string{orRoot(b)}
			for q := prev[b]; q != a; q = prev[q] {
				chain = append([]string{orRoot(q)}, chain...)
			}
			return strings.Join(append([]string{orRoot(a)}, chain...), " -> ")
		}
		for _, d := range imports[p] {
			if _, ok := prev[d]; !ok {
				prev[d] = p
				queue = append(queue, d)
			}
		}
	}
	return "?"
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
