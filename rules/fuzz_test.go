package rules

import (
	"context"
	"strings"
	"testing"
	"time"
)

// FuzzRuleFile feeds rule files as an operator could write them. A file
// is either refused with an error that names it, or it parses, survives
// a write and re-read unchanged in shape, loads into the rule manager and
// evaluates without a panic.
func FuzzRuleFile(f *testing.F) {
	f.Add([]byte(nodeDown))
	f.Add([]byte("groups: []\n"))
	f.Add([]byte("groups:\n  - name: g\n    rules:\n      - alert: A\n        expr: up == 0\n        for: 5s\n        labels: {severity: page}\n        annotations: {summary: '{{ $labels.x }} {{ $value | humanize }}'}\n"))
	f.Add([]byte("groups:\n  - name: g\n    interval: 1s\n    rules:\n      - record: a:b\n        expr: sum(rate(x[1m]))\n"))
	f.Add([]byte("groups:\n  - name: g\n    rules:\n      - alert: A\n        expr: 'up{'\n"))
	f.Add([]byte("a: &a {b: *a}\n"))
	f.Fuzz(func(t *testing.T, content []byte) {
		ps, err := Parse(Source{Name: "fuzz.yml", Content: content})
		if err != nil {
			if !strings.HasPrefix(err.Error(), "fuzz.yml") {
				t.Fatalf("error does not name the file: %v", err)
			}
			return
		}
		out, err := Marshal(ps.Groups)
		if err != nil {
			t.Fatalf("a parsed file does not write back: %v", err)
		}
		again, err := Parse(Source{Name: "again.yml", Content: out})
		if err != nil {
			t.Fatalf("a written file does not parse: %v\n%s", err, out)
		}
		if len(again.Groups) != len(ps.Groups) {
			t.Fatalf("%d groups written, %d read back", len(ps.Groups), len(again.Groups))
		}
		for i := range ps.Groups {
			if len(again.Groups[i].Rules) != len(ps.Groups[i].Rules) {
				t.Fatalf("group %q: %d rules written, %d read back", ps.Groups[i].Name, len(ps.Groups[i].Rules), len(again.Groups[i].Rules))
			}
		}
		q, s, r := &scripted{}, &sent{}, &recorded{}
		c := &clock{t: time.Unix(1_800_000_000, 0)}
		m := NewManager(q, r, s, Options{Now: c.now, ResendDelay: 10 * time.Second})
		if err := m.Load([]Source{{Name: "fuzz.yml", Content: content}}); err != nil {
			return // e.g. a template that does not compile: refused at load
		}
		m.EvalOnce(context.Background(), true)
	})
}
