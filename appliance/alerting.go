package appliance

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"sort"
	"strings"
	"sync/atomic"
	"time"

	"github.com/nines-project/nines"
	"github.com/nines-project/nines/appliance/alertmanager"
	"github.com/nines-project/nines/appliance/config"
	"github.com/nines-project/nines/appliance/report"
	"github.com/nines-project/nines/appliance/store"
	"github.com/nines-project/nines/internal/metric"
	"github.com/nines-project/nines/rules"
	"github.com/nines-project/nines/rules/packs"
	"github.com/nines-project/nines/rules/slo"
)

// RuleSources returns every rule source the appliance runs for cfg, in
// this order: the built-in packs, the SLO rules generated for its clusters,
// and the operator's rule files. `nines check`, `nines run` and
// `nines rules export` all use it, so they agree on what runs.
func RuleSources(cfg *config.Config) ([]rules.Source, error) {
	srcs, err := builtinSources(cfg)
	if err != nil {
		return nil, err
	}

	var specs []slo.Spec
	for _, c := range cfg.Clusters {
		if len(c.ProbeEndpoints()) == 0 {
			continue // no probe, no SLI, no SLO rules
		}
		specs = append(specs, slo.Spec{Cluster: c.Name, Target: c.SLO.Target, Window: c.SLO.Window.Duration})
	}
	if len(specs) > 0 {
		groups, err := slo.Rules(specs)
		if err != nil {
			return nil, fmt.Errorf("generate SLO rules: %w", err)
		}
		b, err := rules.Marshal(groups)
		if err != nil {
			return nil, fmt.Errorf("generate SLO rules: %w", err)
		}
		srcs = append(srcs, rules.Source{Name: "generated/slo.yml", Content: b})
	}

	files, err := rules.Globs(cfg.RuleFiles)
	if err != nil {
		return nil, err
	}
	for _, f := range files {
		src, err := readSource(f)
		if err != nil {
			return nil, err
		}
		srcs = append(srcs, src)
	}
	return srcs, nil
}

// builtinSources are the packs with the config's alert_for applied. A
// name no pack defines is an error: a typo must not leave an alert at a
// wait the operator thinks was changed.
func builtinSources(cfg *config.Config) ([]rules.Source, error) {
	srcs := packs.Sources()
	if len(cfg.AlertFor) == 0 {
		return srcs, nil
	}
	fors := make(map[string]time.Duration, len(cfg.AlertFor))
	for name, d := range cfg.AlertFor {
		fors[name] = d.Duration
	}
	seen := map[string]bool{}
	for i, src := range srcs {
		out, found, err := rules.OverrideFor(src, fors)
		if err != nil {
			return nil, err
		}
		srcs[i] = out
		for _, name := range found {
			seen[name] = true
		}
	}
	var unknown []string
	for name := range fors {
		if !seen[name] {
			unknown = append(unknown, name)
		}
	}
	if len(unknown) > 0 {
		sort.Strings(unknown)
		return nil, fmt.Errorf("alert_for: no built-in alert is named %s", strings.Join(unknown, ", "))
	}
	return srcs, nil
}

// Check validates everything a config refers to beyond its own fields:
// rule files (file:line of every problem), the SLO rules and the embedded
// Alertmanager's configuration. A config that fails Check never starts.
func Check(cfg *config.Config) error {
	srcs, err := RuleSources(cfg)
	if err != nil {
		return err
	}
	if _, err := rules.ParseAll(srcs); err != nil {
		return err
	}
	if cfg.Alertmanager.Embedded != "" {
		check := alertmanager.CheckConfig
		if cfg.Alertmanager.Cluster != nil {
			check = alertmanager.CheckClusterConfig
		}
		if err := check(cfg.Alertmanager.Embedded); err != nil {
			return err
		}
		if err := checkWebhookTokens(cfg); err != nil {
			return err
		}
		if problem := RemediatorRouteProblem(cfg, cfg.Listen); problem != "" {
			return fmt.Errorf("%s", problem)
		}
	}
	return nil
}

// RemediatorRouteProblem says why the embedded Alertmanager's alerts
// would not reach the remediator of an appliance listening on listen:
// alertmanager.yml posts to a remediator webhook, but none at this
// address (nines run --listen elsewhere, a port changed in one file and
// not the other). The remediator would then hear nothing and say nothing.
// "" when a webhook reaches it, or when none posts to a remediator at all
// (alerts may be routed to another appliance on purpose).
func RemediatorRouteProblem(cfg *config.Config, listen string) string {
	if cfg.Alertmanager.Embedded == "" || listen == "" {
		return ""
	}
	hooks, err := alertmanager.RemediatorWebhooks(cfg.Alertmanager.Embedded)
	if err != nil || len(hooks) == 0 {
		return "" // Check reports a broken file; no hook is a choice
	}
	var urls []string
	for _, h := range hooks {
		if reaches(h.URL, listen) {
			return ""
		}
		urls = append(urls, h.URL.String())
	}
	scheme := "http"
	if cfg.TLS != nil {
		scheme = "https"
	}
	return fmt.Sprintf("%s: the remediator's webhook receivers post to %s, but nines listens on %s: the remediator would hear no alert; point the webhook url at %s://%s%s or listen there",
		cfg.Alertmanager.Embedded, strings.Join(urls, ", "), listen, scheme, listen, alertmanager.WebhookPath)
}

// reaches reports whether a webhook URL can be this appliance listening
// on listen: same port, and the same host, both loopback, or a listener
// on every address. A host name is resolved; one that cannot be resolved
// here gets the benefit of the doubt (the check must not cry wolf).
func reaches(u *url.URL, listen string) bool {
	lhost, lport, err := net.SplitHostPort(listen)
	if err != nil {
		return true
	}
	port := u.Port()
	if port == "" {
		port = map[string]string{"http": "80", "https": "443"}[u.Scheme]
	}
	if port != lport {
		return false
	}
	uhost := u.Hostname()
	lip := net.ParseIP(lhost)
	if lhost == "" || (lip != nil && lip.IsUnspecified()) || uhost == lhost {
		return true
	}
	loopback := func(h string) bool {
		ip := net.ParseIP(h)
		return h == "localhost" || (ip != nil && ip.IsLoopback())
	}
	if loopback(uhost) && loopback(lhost) {
		return true
	}
	if net.ParseIP(uhost) != nil {
		return false
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	addrs, err := net.DefaultResolver.LookupHost(ctx, uhost)
	if err != nil {
		return true
	}
	for _, a := range addrs {
		if a == lhost || (loopback(a) && loopback(lhost)) {
			return true
		}
	}
	return false
}

// checkWebhookTokens refuses an embedded Alertmanager that would post to
// the remediator's webhook without a token, or with one of this config's
// tokens whose role is not webhook: the first would be refused at the
// first alert; the second hands a page-sending process a token that can
// do more than post alerts (or, a read token, cannot post them). A token
// this config does not know may be another appliance's, and is let be.
func checkWebhookTokens(cfg *config.Config) error {
	hooks, err := alertmanager.RemediatorWebhooks(cfg.Alertmanager.Embedded)
	if err != nil {
		return err
	}
	const fix = "add a token with role webhook to api.tokens (e.g. {name: alertmanager, role: webhook, token_file: webhook-token}) and name its file in the receiver's http_config.authorization.credentials_file"
	for _, h := range hooks {
		if h.Token == "" {
			return fmt.Errorf("%s: receiver %s posts to the remediator's webhook without a bearer token: %s", cfg.Alertmanager.Embedded, h.Receiver, fix)
		}
		name, role, ok := tokenOf(cfg.API.Tokens, h.Token)
		if ok && role != config.RoleWebhook {
			return fmt.Errorf("%s: receiver %s sends api.tokens entry %q (role %s) to the remediator's webhook: %s", cfg.Alertmanager.Embedded, h.Receiver, name, role, fix)
		}
	}
	return nil
}

// storeQuerier adapts the store to the rule engine.
type storeQuerier struct{ s report.Querier }

func (q storeQuerier) Query(ctx context.Context, expr string, at time.Time) ([]rules.Sample, error) {
	res, err := q.s.Query(ctx, expr, at)
	if err != nil {
		return nil, err
	}
	out := make([]rules.Sample, len(res))
	for i, r := range res {
		out[i] = rules.Sample{Labels: r.Labels, Value: r.Value}
	}
	return out, nil
}

// storeAppender writes the rules' results (recording rules' series and
// ALERTS) through the ingester, which marks a series a rule stopped
// writing stale; the rule manager flushes before a rule that may read
// them.
type storeAppender struct {
	s  *store.Store
	in *ingester
}

func (a storeAppender) Flush() { a.s.Flush() }

func (a storeAppender) Append(source string, samples []rules.Sample, at time.Time) error {
	ms := make([]metric.Metric, len(samples))
	for i, sm := range samples {
		labels := make([]metric.Label, 0, len(sm.Labels))
		for k, v := range sm.Labels {
			if k == "__name__" {
				ms[i].Name = v
				continue
			}
			labels = append(labels, metric.Label{Name: k, Value: v})
		}
		// One order for one series, so that it keeps one identity.
		sort.Slice(labels, func(x, y int) bool { return labels[x].Name < labels[y].Name })
		ms[i].Labels, ms[i].Value = labels, sm.Value
	}
	a.in.write(source, ms, at, false)
	return nil
}

// countingSender counts failed deliveries for nines_notifications_failed_total.
// keep, when set, drops the alerts of clusters another appliance of a
// sharded team owns.
type countingSender struct {
	next   alertmanager.Sender
	keep   func(labels map[string]string) bool
	failed atomic.Uint64
	sent   atomic.Uint64
}

func (c *countingSender) Send(ctx context.Context, alerts []nines.Alert) error {
	if c.next == nil {
		return nil
	}
	if c.keep != nil {
		mine := make([]nines.Alert, 0, len(alerts))
		for _, al := range alerts {
			if c.keep(al.Labels) {
				mine = append(mine, al)
			}
		}
		if alerts = mine; len(alerts) == 0 {
			return nil
		}
	}
	err := c.next.Send(ctx, alerts)
	if err != nil {
		c.failed.Add(1)
		return err
	}
	c.sent.Add(uint64(len(alerts)))
	return nil
}

// openAlertmanager starts the embedded Alertmanager or connects to the
// external ones. With neither configured, alerts are evaluated and shown
// but not sent, and the returned handler is nil.
func openAlertmanager(cfg *config.Config, externalURL string, opts Options) (alertmanager.Sender, *alertmanager.Embedded, error) {
	switch {
	case cfg.Alertmanager.Embedded != "":
		am, err := alertmanager.New(alertmanager.Options{
			ConfigFile:  cfg.Alertmanager.Embedded,
			DataDir:     cfg.DataDir + "/alertmanager",
			ExternalURL: externalURL + "/alertmanager",
			Logger:      opts.Logger.With("component", "alertmanager"),
			Cluster:     gossipOptions(cfg.Alertmanager.Cluster),
		})
		if err != nil {
			return nil, nil, err
		}
		return am, am, nil
	case len(cfg.Alertmanager.URLs) > 0:
		x, err := alertmanager.NewExternal(cfg.Alertmanager.URLs, &http.Client{Timeout: 10 * time.Second}, 0, opts.Logger)
		if err != nil {
			return nil, nil, err
		}
		return x, nil, nil
	}
	return nil, nil, nil
}

// gossipOptions is alertmanager.cluster for the embedded Alertmanager.
func gossipOptions(c *config.AlertmanagerCluster) *alertmanager.Cluster {
	if c == nil {
		return nil
	}
	o := &alertmanager.Cluster{Listen: c.Listen, Advertise: c.Advertise, Peers: c.Peers,
		Name: c.Name, Label: c.Label, PeerTimeout: c.PeerTimeout.Duration}
	if t := c.TLS; t != nil {
		o.TLS = &alertmanager.ClusterTLS{CertFile: t.CertFile, KeyFile: t.KeyFile, CAFile: t.CAFile}
	}
	return o
}

func readSource(path string) (rules.Source, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return rules.Source{}, fmt.Errorf("read rule file: %w", err)
	}
	return rules.Source{Name: path, Content: b}, nil
}
