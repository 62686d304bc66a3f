package slo

import (
	"fmt"
	"math"
	"math/big"
	"strconv"
	"strings"
	"time"
)

// Defaults for Spec fields left at zero.
const (
	DefaultTarget = 99.999
	DefaultWindow = 30 * 24 * time.Hour
)

// Spec is one cluster's availability SLO over nines' SLI: the share of
// good seconds among all counted seconds (facts/slo.md).
type Spec struct {
	Cluster string
	// Target in percent, e.g. 99.999; 0 means DefaultTarget.
	Target float64
	// Window is the rolling SLO window; 0 means DefaultWindow.
	Window time.Duration
}

// withDefaults fills zero fields and checks the spec against the windows
// table.
func (s Spec) withDefaults(windows []Window) (Spec, error) {
	if s.Cluster == "" {
		return s, fmt.Errorf("SLO spec: empty cluster name")
	}
	// The rules write cluster names into label matchers, regular
	// expressions and label_replace replacements; the names the config
	// accepts need no escaping in any of them.
	if strings.IndexFunc(s.Cluster, func(r rune) bool {
		return r != '-' && r != '_' && (r < '0' || r > '9') && (r < 'a' || r > 'z') && (r < 'A' || r > 'Z')
	}) >= 0 {
		return s, fmt.Errorf("SLO spec: cluster name %q has characters other than letters, digits, - and _", s.Cluster)
	}
	if s.Target == 0 {
		s.Target = DefaultTarget
	}
	if s.Window == 0 {
		s.Window = DefaultWindow
	}
	if math.IsNaN(s.Target) || s.Target <= 0 || s.Target >= 100 {
		return s, fmt.Errorf("SLO of cluster %q: target %v%% is not above 0 and below 100", s.Cluster, s.Target)
	}
	if s.Window < 0 || s.Window%time.Second != 0 {
		return s, fmt.Errorf("SLO of cluster %q: window %v is not a positive whole number of seconds", s.Cluster, s.Window)
	}
	for _, w := range windows {
		if w.Long > s.Window {
			return s, fmt.Errorf("SLO of cluster %q: window %v is shorter than the %v burn-rate window", s.Cluster, s.Window, w.Long)
		}
		// A threshold of 1 or more can never be crossed: the error ratio
		// is at most 1. Such a row would look like protection and be none.
		if th := w.Factor(s.Window) * s.errorBudgetRatio(); th >= 1 {
			return s, fmt.Errorf("SLO of cluster %q: target %v%% too low for the %v/%v burn-rate window: its threshold %v is not below 1", s.Cluster, s.Target, w.Long, w.Short, th)
		}
	}
	return s, nil
}

// errorBudgetRatio is the share of seconds that may be bad: 1e-5 for
// 99.999 %. It is computed on the target's decimal digits: in binary
// floating point 100 − 99.999 is 0.0010000000000047748, and the noise
// would show in the budget the rules record and the reports print.
func (s Spec) errorBudgetRatio() float64 {
	t, ok := new(big.Rat).SetString(strconv.FormatFloat(s.Target, 'f', -1, 64))
	if !ok {
		return (100 - s.Target) / 100
	}
	r, _ := new(big.Rat).Quo(new(big.Rat).Sub(big.NewRat(100, 1), t), big.NewRat(100, 1)).Float64()
	return r
}

// budgetSeconds is the error budget over the window in seconds: 25.92 for
// 99.999 % over 30 days.
func (s Spec) budgetSeconds() float64 { return s.errorBudgetRatio() * s.Window.Seconds() }
