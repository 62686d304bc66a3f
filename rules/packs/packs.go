// Package packs holds nines' built-in rule packs: one Prometheus rule file
// per thing they watch, embedded in the binary.
package packs

import (
	"embed"
	"io/fs"
	"sort"

	"github.com/nines-project/nines/rules"
)

// The packs are named one by one so that their promtool unit tests
// (<pack>_test.yml, beside them) stay out of the binary;
// TestEveryPackIsEmbedded fails when a new pack is not listed here.
//
//go:embed backup.yml config.yml galera.yml haproxy.yml ndb.yml nines.yml probe.yml replication.yml
var files embed.FS

// Sources returns every built-in pack, named builtin/<file>.
func Sources() []rules.Source {
	names, _ := fs.Glob(files, "*.yml")
	sort.Strings(names)
	out := make([]rules.Source, 0, len(names))
	for _, n := range names {
		b, err := files.ReadFile(n)
		if err != nil {
			panic("embedded rule pack unreadable: " + err.Error()) // cannot happen: the file is in the binary
		}
		out = append(out, rules.Source{Name: "builtin/" + n, Content: b})
	}
	return out
}
