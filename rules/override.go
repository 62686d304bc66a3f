package rules

import (
	"fmt"
	"time"

	"github.com/prometheus/common/model"
	"go.yaml.in/yaml/v3"
)

// OverrideFor sets the `for:` of the named alerting rules in src to the
// given durations (0 removes the wait), for a site that wants a built-in
// alert sooner or later than the pack's default. The file is edited as a
// YAML tree, so the pack's comments, which say why each threshold is what
// it is, survive into the rules the API exports; each changed rule gets a
// comment naming its old value. It returns the names it found in src.
func OverrideFor(src Source, fors map[string]time.Duration) (Source, []string, error) {
	if len(fors) == 0 {
		return src, nil, nil
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(src.Content, &doc); err != nil {
		return src, nil, fmt.Errorf("%s: %w", src.Name, err)
	}
	var found []string
	var walk func(n *yaml.Node)
	walk = func(n *yaml.Node) {
		if n.Kind == yaml.MappingNode {
			if name, ok := scalarAt(n, "alert"); ok {
				if d, want := fors[name]; want {
					setFor(n, d)
					found = append(found, name)
				}
				return
			}
		}
		for _, c := range n.Content {
			walk(c)
		}
	}
	walk(&doc)
	if len(found) == 0 {
		return src, nil, nil
	}
	out, err := yaml.Marshal(&doc)
	if err != nil {
		return src, nil, fmt.Errorf("%s: %w", src.Name, err)
	}
	return Source{Name: src.Name, Content: out}, found, nil
}

// scalarAt is the scalar value of key in mapping node m.
func scalarAt(m *yaml.Node, key string) (string, bool) {
	for i := 0; i+1 < len(m.Content); i += 2 {
		if m.Content[i].Value == key && m.Content[i+1].Kind == yaml.ScalarNode {
			return m.Content[i+1].Value, true
		}
	}
	return "", false
}

// setFor replaces or adds rule m's `for:`.
func setFor(m *yaml.Node, d time.Duration) {
	v := model.Duration(d).String()
	for i := 0; i+1 < len(m.Content); i += 2 {
		if m.Content[i].Value == "for" {
			old := m.Content[i+1].Value
			m.Content[i+1] = &yaml.Node{Kind: yaml.ScalarNode, Value: v, LineComment: "set by the config's alert_for; the pack says " + old}
			return
		}
	}
	m.Content = append(m.Content,
		&yaml.Node{Kind: yaml.ScalarNode, Value: "for"},
		&yaml.Node{Kind: yaml.ScalarNode, Value: v, LineComment: "set by the config's alert_for; the pack has none"})
}
