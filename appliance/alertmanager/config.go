package alertmanager

import (
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"strings"

	commoncfg "github.com/prometheus/common/config"

	"github.com/prometheus/alertmanager/config"
	amcommon "github.com/prometheus/alertmanager/config/common"
	"github.com/prometheus/alertmanager/config/receiver"
	"github.com/prometheus/alertmanager/dispatch"
	"github.com/prometheus/alertmanager/notify"
	"github.com/prometheus/alertmanager/template"
	"github.com/prometheus/alertmanager/timeinterval"

	"github.com/nines-project/nines/remediator"
)

// CheckConfig validates an alertmanager.yml without starting anything: the
// YAML and Alertmanager's own checks (receivers referenced by routes exist,
// time intervals exist, matchers parse …), its templates, and every
// receiver's integrations as they would be built. Secret files are not
// read: they are read when a notification is sent. For `nines check`.
func CheckConfig(path string) error {
	conf, err := loadConfig(path)
	if err != nil {
		return err
	}
	ext, err := externalURL("")
	if err != nil {
		return err
	}
	if _, err := build(conf, ext, slog.New(slog.DiscardHandler)); err != nil {
		return fmt.Errorf("alertmanager: config %s: %w", path, err)
	}
	return nil
}

// CheckClusterConfig is CheckConfig for an Alertmanager that gossips: it
// also refuses receivers that mix the remediator's webhook with pages
// (see remediatorReceivers).
func CheckClusterConfig(path string) error {
	if err := CheckConfig(path); err != nil {
		return err
	}
	conf, err := loadConfig(path)
	if err != nil {
		return err
	}
	ext, err := externalURL("")
	if err != nil {
		return err
	}
	b, err := build(conf, ext, slog.New(slog.DiscardHandler))
	if err != nil {
		return fmt.Errorf("alertmanager: config %s: %w", path, err)
	}
	if len(b.mixed) > 0 {
		return fmt.Errorf("alertmanager: config %s: %w", path, mixedError(b.mixed))
	}
	return nil
}

// mixedError explains why receivers that post to the remediator besides
// paging cannot gossip.
func mixedError(mixed []string) error {
	return fmt.Errorf("receivers %v post to the remediator's webhook besides other integrations: in an Alertmanager cluster a page is sent by one peer, but every appliance's remediator must hear the alert; put the remediator's webhook in a receiver of its own (a route with continue: true)", mixed)
}

// WebhookPath is where nines' remediator receives Alertmanager's
// notifications.
const WebhookPath = "/api/v1/alerts/webhook"

// RemediatorWebhook is a webhook of an alertmanager.yml that posts to a
// remediator, with the bearer token it sends ("" when none).
type RemediatorWebhook struct {
	Receiver string
	URL      *url.URL
	Token    string
}

// RemediatorWebhooks lists the webhooks of the config at path that post
// to WebhookPath, reading their credentials_file (relative paths are
// resolved against the config's directory, as Alertmanager does), so
// `nines check` can tell whether they send a token the webhook accepts.
func RemediatorWebhooks(path string) ([]RemediatorWebhook, error) {
	conf, err := loadConfig(path)
	if err != nil {
		return nil, err
	}
	var out []RemediatorWebhook
	for _, r := range conf.Receivers {
		for _, w := range r.WebhookConfigs {
			u, err := url.Parse(string(w.URL))
			if err != nil || u.Path != WebhookPath {
				continue
			}
			tok, err := bearerOf(w.HTTPConfig)
			if err != nil {
				return nil, fmt.Errorf("alertmanager: config %s: receiver %s: %w", path, r.Name, err)
			}
			out = append(out, RemediatorWebhook{Receiver: r.Name, URL: u, Token: tok})
		}
	}
	return out, nil
}

// bearerOf is the bearer token an HTTP client config sends, if any.
func bearerOf(h *commoncfg.HTTPClientConfig) (string, error) {
	if h == nil || h.Authorization == nil {
		return "", nil
	}
	a := h.Authorization
	if a.CredentialsFile == "" {
		return strings.TrimSpace(string(a.Credentials)), nil
	}
	b, err := os.ReadFile(a.CredentialsFile)
	if err != nil {
		return "", fmt.Errorf("read the webhook's credentials_file: %w", err)
	}
	return strings.TrimSpace(string(b)), nil
}

// runbookValues are remediation label values an inhibit rule is tried
// against: every runbook nines has (from the registry, so a new one is
// covered) and an arbitrary name.
var runbookValues = func() []string {
	var out []string
	for _, rb := range remediator.Runbooks {
		out = append(out, rb.Name)
	}
	return append(out, "any-runbook")
}()

// checkInhibitions refuses inhibit rules that can mute an alert carrying a
// remediation label. Inhibition applies to every receiver, the remediator
// included: with the common "critical mutes warning" rule, one bad probe
// second fires a critical burn-rate page that mutes GaleraNodeDown for the
// page's whole short window, and a crashed node stays down for minutes.
func checkInhibitions(conf *config.Config) error {
	for i, r := range conf.InhibitRules {
		for _, v := range runbookValues {
			if rejectsRemediation(r, v) {
				continue
			}
			return fmt.Errorf("inhibit_rules[%d] can mute alerts with remediation=%q, and the remediator would not hear of them while the source alert fires: add remediation=\"\" to its target_matchers", i, v)
		}
	}
	return nil
}

// rejectsRemediation reports whether rule r's target side excludes an
// alert whose remediation label is v.
func rejectsRemediation(r amcommon.InhibitRule, v string) bool {
	if want, ok := r.TargetMatch["remediation"]; ok && want != v {
		return true
	}
	if re, ok := r.TargetMatchRE["remediation"]; ok && !re.MatchString(v) {
		return true
	}
	for _, m := range r.TargetMatchers {
		if m.Name == "remediation" && !m.Matches(v) {
			return true
		}
	}
	return false
}

func loadConfig(path string) (*config.Config, error) {
	conf, err := config.LoadFile(path)
	if err != nil {
		return nil, fmt.Errorf("alertmanager: load config %s: %w", path, err)
	}
	return conf, nil
}

// built is what a configuration yields before anything runs.
type built struct {
	tmpl         *template.Template
	routes       *dispatch.Route
	receivers    map[string][]notify.Integration // only those a route uses
	integrations int
	intervener   *timeinterval.Intervener
	// remediators are the receivers made only of webhooks to a
	// remediator (WebhookPath); mixed are those that post to one besides
	// other integrations. See remediatorReceivers.
	remediators map[string]bool
	mixed       []string
}

// build turns a loaded configuration into templates, the routing tree, the
// receivers' integrations and the time intervals, as upstream's reloader
// does. It has no side effects, so a failure changes nothing.
func build(conf *config.Config, ext *url.URL, logger *slog.Logger) (*built, error) {
	if err := checkInhibitions(conf); err != nil {
		return nil, err
	}
	tmpl, err := template.FromGlobs(conf.Templates)
	if err != nil {
		return nil, fmt.Errorf("parse templates: %w", err)
	}
	tmpl.ExternalURL = ext

	b := &built{tmpl: tmpl, routes: dispatch.NewRoute(conf.Route, nil)}
	used := map[string]bool{}
	b.routes.Walk(func(r *dispatch.Route) { used[r.RouteOpts.Receiver] = true })

	b.receivers = make(map[string][]notify.Integration, len(used))
	for _, rcv := range conf.Receivers {
		integrations, err := receiver.BuildReceiverIntegrations(rcv, tmpl, logger)
		if err != nil {
			return nil, fmt.Errorf("receiver %q: %w", rcv.Name, err)
		}
		if used[rcv.Name] {
			b.receivers[rcv.Name] = integrations
			b.integrations += len(integrations)
		}
	}
	b.remediators, b.mixed = remediatorReceivers(conf, b.receivers)

	intervals := make(map[string][]timeinterval.TimeInterval, len(conf.MuteTimeIntervals)+len(conf.TimeIntervals))
	for _, ti := range conf.MuteTimeIntervals {
		intervals[ti.Name] = ti.TimeIntervals
	}
	for _, ti := range conf.TimeIntervals {
		intervals[ti.Name] = ti.TimeIntervals
	}
	b.intervener = timeinterval.NewIntervener(intervals)
	return b, nil
}

// remediatorReceivers sorts the used receivers that post to a remediator's
// webhook: those made of nothing else, and the mixed ones. In a gossip
// cluster the notification log sends each notification once across the
// peers, which is right for pages and wrong for the remediator: every
// appliance's remediator must hear every alert, since only the one that
// leads the cluster acts and that need not be the peer whose turn it is
// to notify. The pure ones therefore get a pipeline of their own that is
// neither delayed nor deduplicated across peers; a mixed one cannot be
// split and is refused in a cluster.
func remediatorReceivers(conf *config.Config, used map[string][]notify.Integration) (pure map[string]bool, mixed []string) {
	pure = map[string]bool{}
	for _, r := range conf.Receivers {
		integrations, ok := used[r.Name]
		if !ok {
			continue
		}
		hooks := 0
		for _, w := range r.WebhookConfigs {
			if u, err := url.Parse(string(w.URL)); err == nil && u.Path == WebhookPath {
				hooks++
			}
		}
		switch {
		case hooks == 0:
		case hooks == len(integrations):
			pure[r.Name] = true
		default:
			mixed = append(mixed, r.Name)
		}
	}
	return pure, mixed
}
