package rules

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"testing"
	"time"
)

// panicky panics for one expression and answers the rest from scripted.
type panicky struct {
	scripted
	expr string
}

func (p *panicky) Query(ctx context.Context, expr string, at time.Time) ([]Sample, error) {
	if expr == p.expr {
		panic("index out of range in a query")
	}
	return p.scripted.Query(ctx, expr, at)
}

// TestPanickingRuleIsUnhealthy: a rule whose evaluation panics gets
// health err and the panic as lastError, the stack is logged, and the
// other rules of the group still run.
func TestPanickingRuleIsUnhealthy(t *testing.T) {
	var logs bytes.Buffer
	for _, bad := range []string{"mysql_up == 0", "sum by (cluster) (mysql_up)"} {
		logs.Reset()
		q := &panicky{expr: bad}
		r := &recorded{}
		m := NewManager(q, r, &sent{}, Options{Logger: slog.New(slog.NewTextHandler(&logs, nil))})
		if err := m.Load([]Source{{Name: "test.yml", Content: []byte(nodeDown)}}); err != nil {
			t.Fatal(err)
		}
		q.set("sum by (cluster) (mysql_up)", series(3, "cluster", "c1"))
		m.EvalOnce(context.Background(), true)
		for _, g := range m.APIGroups("") {
			for _, rule := range g.Rules {
				wantErr := rule.Query == bad
				want := map[bool]string{true: "err", false: "ok"}[wantErr]
				if rule.Health != want {
					t.Errorf("%s panicking: rule %s health %s (%s), want %s", bad, rule.Name, rule.Health, rule.LastError, want)
				}
				if wantErr && !strings.Contains(rule.LastError, "panicked: index out of range in a query") {
					t.Errorf("rule %s lastError %q, want the panic", rule.Name, rule.LastError)
				}
			}
		}
		if !strings.Contains(logs.String(), "rule evaluation panicked") || !strings.Contains(logs.String(), "panic_test.go") {
			t.Errorf("no stack in the log:\n%s", logs.String())
		}
	}
}
