// Package rules evaluates Prometheus-format alerting and recording rules
// against the appliance's store, every second, and hands alerts to
// Alertmanager.
//
// Rule files are standard Prometheus rule files (parsed with Prometheus'
// own rulefmt), so the same files work in Prometheus and vmalert, pass
// `promtool check rules`, and nines can export every rule it runs.
// Expressions are evaluated with MetricsQL, a superset of PromQL.
package rules

import (
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"sort"
	"time"

	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/rulefmt"
	"github.com/prometheus/prometheus/promql/parser"
	"go.yaml.in/yaml/v3"
)

// Source is one rule file's content: a built-in pack, a generated SLO
// file or an operator's file on disk.
type Source struct {
	// Name identifies the source in errors, the API and exports: a path
	// for files on disk, "builtin/galera.yml" for packs.
	Name    string
	Content []byte
}

// ParsedSource is a Source that parsed and validated.
type ParsedSource struct {
	Name   string
	Groups []rulefmt.RuleGroup
}

// Parse validates one source. Errors name the source, line and column,
// group and rule, as promtool does.
func Parse(src Source) (ParsedSource, error) {
	rgs, errs := rulefmt.Parse(src.Content, false, model.UTF8Validation, parser.NewParser(parser.Options{}), slog.New(slog.DiscardHandler))
	if len(errs) > 0 {
		wrapped := make([]error, len(errs))
		for i, err := range errs {
			wrapped[i] = fmt.Errorf("%s: %w", src.Name, err)
		}
		return ParsedSource{}, errors.Join(wrapped...)
	}
	if rgs == nil {
		return ParsedSource{Name: src.Name}, nil
	}
	return ParsedSource{Name: src.Name, Groups: rgs.Groups}, nil
}

// ParseAll parses every source and checks that group names are unique
// across them; it reports every problem, not just the first.
func ParseAll(srcs []Source) ([]ParsedSource, error) {
	var out []ParsedSource
	var errs []error
	seen := map[string]string{}
	for _, src := range srcs {
		ps, err := Parse(src)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		for _, g := range ps.Groups {
			if other, dup := seen[g.Name]; dup {
				errs = append(errs, fmt.Errorf("%s: group %q is already defined in %s", src.Name, g.Name, other))
			}
			seen[g.Name] = src.Name
		}
		out = append(out, ps)
	}
	return out, errors.Join(errs...)
}

// Marshal writes groups as a Prometheus rule file.
func Marshal(groups []rulefmt.RuleGroup) ([]byte, error) {
	return yaml.Marshal(rulefmt.RuleGroups{Groups: groups})
}

// Globs expands rule_files patterns in order, without duplicates. A
// pattern that matches nothing is an error: a typo must not silently
// disable alerting.
func Globs(patterns []string) ([]string, error) {
	var out []string
	seen := map[string]bool{}
	for _, p := range patterns {
		matches, err := filepath.Glob(p)
		if err != nil {
			return nil, fmt.Errorf("rule_files pattern %q: %w", p, err)
		}
		if len(matches) == 0 {
			return nil, fmt.Errorf("rule_files pattern %q matches no file", p)
		}
		sort.Strings(matches)
		for _, m := range matches {
			if !seen[m] {
				seen[m] = true
				out = append(out, m)
			}
		}
	}
	return out, nil
}

func durationOr(d model.Duration, def time.Duration) time.Duration {
	if d <= 0 {
		return def
	}
	return time.Duration(d)
}
