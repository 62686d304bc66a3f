package slo

import (
	"bytes"
	_ "embed"
	"fmt"
	"time"

	"github.com/prometheus/common/model"
	"go.yaml.in/yaml/v3"
)

// windowsYAML is the burn-rate windows table, kept as data (see the file
// for its source).
//
//go:embed windows.yaml
var windowsYAML []byte

// Severity is a window row's urgency: a page wakes someone, a ticket
// waits for working hours.
type Severity string

const (
	SeverityPage   Severity = "page"
	SeverityTicket Severity = "ticket"
)

// label is the alert's severity label: critical pages, warning files a
// ticket (the values the DESIGN's Alert type names).
func (s Severity) label() string {
	if s == SeverityPage {
		return "critical"
	}
	return "warning"
}

// Window is one row of the table.
type Window struct {
	Severity Severity
	// Long and Short are the two windows whose error ratios must both
	// exceed the threshold.
	Long, Short time.Duration
	// BudgetShare is the part of the SLO window's error budget that a burn
	// at the threshold spends in Long.
	BudgetShare float64
	// For is how long the condition must hold before the alert fires.
	For time.Duration
}

// Factor is the burn factor for an SLO window: how many times faster than
// "exactly the budget over the SLO window" the errors must come for the
// row to fire. budget_share × slo_window / long: 14.4 for the 1 h row of a
// 30-day SLO.
func (w Window) Factor(sloWindow time.Duration) float64 {
	return w.BudgetShare * sloWindow.Seconds() / w.Long.Seconds()
}

// Windows returns the embedded table, checked.
func Windows() ([]Window, error) {
	return parseWindows(windowsYAML)
}

type windowsFile struct {
	Windows []struct {
		Severity    Severity `yaml:"severity"`
		Long        string   `yaml:"long"`
		Short       string   `yaml:"short"`
		BudgetShare float64  `yaml:"budget_share"`
		For         string   `yaml:"for"`
	} `yaml:"windows"`
}

// parseWindows reads a windows table. Errors name the row (1-based) and
// the field.
func parseWindows(b []byte) ([]Window, error) {
	var f windowsFile
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	if err := dec.Decode(&f); err != nil {
		return nil, fmt.Errorf("burn-rate windows table: %w", err)
	}
	if len(f.Windows) == 0 {
		return nil, fmt.Errorf("burn-rate windows table: no rows")
	}
	out := make([]Window, 0, len(f.Windows))
	for i, r := range f.Windows {
		row := func(field string, err error) error {
			return fmt.Errorf("burn-rate windows table, row %d, %s: %w", i+1, field, err)
		}
		w := Window{Severity: r.Severity, BudgetShare: r.BudgetShare}
		if w.Severity != SeverityPage && w.Severity != SeverityTicket {
			return nil, row("severity", fmt.Errorf("%q is neither %q nor %q", r.Severity, SeverityPage, SeverityTicket))
		}
		for _, d := range []struct {
			field string
			text  string
			to    *time.Duration
		}{{"long", r.Long, &w.Long}, {"short", r.Short, &w.Short}, {"for", r.For, &w.For}} {
			v, err := model.ParseDuration(d.text)
			if err != nil {
				return nil, row(d.field, err)
			}
			*d.to = time.Duration(v)
		}
		switch {
		case w.Long <= 0 || w.Short <= 0:
			return nil, row("long/short", fmt.Errorf("windows must be positive, got %v and %v", w.Long, w.Short))
		case w.Short >= w.Long:
			return nil, row("short", fmt.Errorf("short window %v is not shorter than the long window %v", w.Short, w.Long))
		case w.BudgetShare <= 0 || w.BudgetShare > 1:
			return nil, row("budget_share", fmt.Errorf("%v is not in (0, 1]", w.BudgetShare))
		}
		out = append(out, w)
	}
	return out, nil
}
