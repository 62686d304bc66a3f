package alertmanager

import (
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/alertmanager/config"
	"github.com/prometheus/alertmanager/dispatch"
	"github.com/prometheus/common/model"
)

const exampleConfig = "../../examples/alertmanager.yml"

// The shipped example must be accepted by amtool (the operator's tool)
// and by nines itself, and keep the promises of DESIGN.md.
func TestExampleConfig(t *testing.T) {
	path, err := filepath.Abs(exampleConfig)
	if err != nil {
		t.Fatal(err)
	}
	out, err := amtool(t, "check-config", path)
	if err != nil || !strings.Contains(out, "SUCCESS") {
		t.Fatalf("amtool check-config %s: %v\n%s", path, err, out)
	}
	if err := CheckConfig(path); err != nil {
		t.Fatalf("CheckConfig: %v", err)
	}
	start(t, path, t.TempDir()) // and it runs

	conf, err := config.LoadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	routes := dispatch.NewRoute(conf.Route, nil)
	receivers := func(ls model.LabelSet) []string {
		var names []string
		for _, r := range routes.Match(ls) {
			names = append(names, r.RouteOpts.Receiver)
		}
		return names
	}
	for _, tc := range []struct {
		labels model.LabelSet
		want   string
	}{
		{model.LabelSet{"severity": "critical", "cluster": "billing", "remediation": "galera-quorum-recovery"}, "remediator pager"},
		{model.LabelSet{"severity": "warning", "cluster": "billing", "remediation": "galera-node-rejoin"}, "remediator ticket"},
		{model.LabelSet{"severity": "critical", "cluster": "billing"}, "pager"},
		{model.LabelSet{"severity": "warning", "cluster": "billing"}, "ticket"},
		{model.LabelSet{"severity": "info", "cluster": "billing"}, "blackhole"},
	} {
		if got := strings.Join(receivers(tc.labels), " "); got != tc.want {
			t.Errorf("%v goes to %q, want %q", tc.labels, got, tc.want)
		}
	}

	// DESIGN.md, remediation safety 7: the remediator hears within a second.
	remediator := routes.Match(model.LabelSet{"remediation": "x"})[0]
	if o := remediator.RouteOpts; o.Receiver != "remediator" || o.GroupWait > time.Second || o.GroupInterval > time.Second || !remediator.Continue {
		t.Errorf("remediator route: %+v continue=%v, want group_wait and group_interval ≤ 1s and continue", o, remediator.Continue)
	}
	for _, r := range conf.Receivers {
		if r.Name != "remediator" {
			continue
		}
		w := r.WebhookConfigs[0]
		if string(w.URL) != "http://127.0.0.1:9104/api/v1/alerts/webhook" || w.HTTPConfig.Authorization == nil || w.HTTPConfig.Authorization.CredentialsFile == "" {
			t.Errorf("remediator webhook %s must post to nines' webhook with a bearer token from a file", string(w.URL))
		}
	}
}
