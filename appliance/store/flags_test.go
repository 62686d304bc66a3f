package store

import (
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestOnlyTheStoreTouchesGlobalFlags: VictoriaMetrics reads Go's global
// flag set, so any other package that registers, parses or sets flags
// there could change the store's settings or panic on a duplicate name.
// Only store.go may touch flag.CommandLine (tests excluded: go test owns
// the global set while they run).
func TestOnlyTheStoreTouchesGlobalFlags(t *testing.T) {
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(root, "go.mod")); err != nil {
		t.Fatalf("module root not at %s: %v", root, err)
	}
	own := filepath.Join(root, "appliance", "store", "store.go")
	uses := []string{"flag.CommandLine", "flag.Parse(", "flag.Set(", "flag.String(", "flag.Bool(", "flag.Int(", "flag.Duration(", "flag.Var("}
	checked := 0
	err = filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && (strings.HasPrefix(d.Name(), ".") || d.Name() == "testdata") && p != root {
			return filepath.SkipDir
		}
		if d.IsDir() || !strings.HasSuffix(p, ".go") || strings.HasSuffix(p, "_test.go") || p == own {
			return nil
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		checked++
		for _, u := range uses {
			if strings.Contains(string(b), u) {
				rel, _ := filepath.Rel(root, p)
				t.Errorf("%s uses %s: only appliance/store/store.go may touch Go's global flag set", rel, u)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if checked < 50 {
		t.Errorf("checked only %d Go files under %s: the walk missed the tree", checked, root)
	}
}
