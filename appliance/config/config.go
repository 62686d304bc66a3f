// Package config parses and validates the appliance's YAML configuration.
//
// Load never returns a half-valid config: either every field is checked and
// every secret file read, or the caller gets an *Errors naming each problem
// by file, line and field. Secrets are held as Secret values, which never
// print themselves.
package config

import (
	"errors"
	"fmt"
	"github.com/nines-project/nines/internal/secret"
	"github.com/nines-project/nines/internal/yamlfile"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/robfig/cron/v3"
	"go.yaml.in/yaml/v3"

	"github.com/nines-project/nines"
)

// Defaults an operator gets when a field is left out. The scrape interval
// is one second because five nines allow 25.9 s of downtime a month; the
// timeout stays below it so a hung node never delays the next scrape.
const (
	DefaultListen            = "127.0.0.1:9104"
	DefaultDataDir           = "/var/lib/nines"
	DefaultRetention         = 30 * 24 * time.Hour
	DefaultScrapeInterval    = time.Second
	DefaultScrapeTimeout     = 800 * time.Millisecond
	DefaultVariablesInterval = time.Minute
	DefaultSLOTarget         = 99.999
	DefaultSLOWindow         = 30 * 24 * time.Hour
	DefaultProbeTimeout      = time.Second
	// MinRetention is VictoriaMetrics' lower bound for retentionPeriod.
	MinRetention = 24 * time.Hour
	// DefaultBackupDir is where backups go on the database hosts.
	DefaultBackupDir = "/var/backups/nines"
)

// Config is the whole appliance configuration.
type Config struct {
	// File is the path the config was read from; relative paths inside it
	// (data_dir, secret files) are resolved against its directory.
	File string `yaml:"-"`

	Listen    string    `yaml:"listen"`
	TLS       *TLS      `yaml:"tls"`
	DataDir   string    `yaml:"data_dir"`
	Retention Duration  `yaml:"retention"`
	API       API       `yaml:"api"`
	Scrape    Scrape    `yaml:"scrape"`
	Clusters  []Cluster `yaml:"clusters"`
	// RuleFiles are glob patterns of Prometheus rule files, evaluated
	// besides the built-in packs and the SLO rules.
	RuleFiles    []string     `yaml:"rule_files"`
	Alertmanager Alertmanager `yaml:"alertmanager"`
	// ExternalURL is how people reach this appliance; alert links use it.
	ExternalURL string `yaml:"external_url"`
	// Console is the web console's users; without users it is not served.
	Console Console `yaml:"console"`
	// Grafana, when set, receives the generated dashboards and a data
	// source pointing at this appliance.
	Grafana *Grafana `yaml:"grafana"`
}

// Alertmanager says where alerts go: an embedded Alertmanager configured
// by a standard alertmanager.yml, or an existing Alertmanager cluster.
// Exactly one of the two, or neither (alerts are then only evaluated and
// shown, never sent: nines check warns).
type Alertmanager struct {
	Embedded string   `yaml:"embedded"`
	URLs     []string `yaml:"urls"`
}

// TLS makes the listener serve HTTPS.
type TLS = secret.TLS

// API holds the bearer tokens that may call the HTTP API.
type API struct {
	Tokens []Token `yaml:"tokens"`
}

// Token is one named API credential, read from a file or the environment.
type Token struct {
	Name      string `yaml:"name"`
	TokenFile string `yaml:"token_file"`
	TokenEnv  string `yaml:"token_env"`
	Value     Secret `yaml:"-"`
}

// Scrape sets how often nodes are read.
type Scrape struct {
	Interval          Duration `yaml:"interval"`
	Timeout           Duration `yaml:"timeout"`
	VariablesInterval Duration `yaml:"variables_interval"`
}

// Cluster is one monitored cluster.
type Cluster struct {
	Name        string      `yaml:"name"`
	Kind        nines.Kind  `yaml:"kind"`
	Nodes       []Node      `yaml:"nodes"`
	Credentials Credentials `yaml:"credentials"`
	// ReplicaStatus collects replica status on every node. It defaults to
	// true for kind replication and false otherwise (a Galera node may also
	// be an async replica; set it then).
	ReplicaStatus *bool       `yaml:"replica_status"`
	SLO           SLO         `yaml:"slo"`
	Probe         Probe       `yaml:"probe"`
	Remediation   Remediation `yaml:"remediation"`
	// AgentTokenFile (or AgentTokenEnv) holds the bearer token of the
	// nines agents on this cluster's hosts; required when any node names
	// an agent. One token per cluster: the agents of a cluster are
	// administered together.
	AgentTokenFile string `yaml:"agent_token_file"`
	AgentTokenEnv  string `yaml:"agent_token_env"`
	AgentToken     Secret `yaml:"-"`
	// Backups are the cluster's scheduled backups, one per method, taken
	// through the node agents.
	Backups []Backup `yaml:"backups"`
	// Maintenance lists declared maintenance windows: their seconds are
	// not valid for the SLO and are reported apart.
	Maintenance []Maintenance `yaml:"maintenance"`
}

// Backup is one scheduled backup of a cluster.
type Backup struct {
	// Method is mariabackup (physical, hot) or dump (logical).
	Method string `yaml:"method"`
	// Schedule is a cron expression: five fields (minute hour
	// day-of-month month day-of-week) or @hourly, @daily, @weekly,
	// @every 6h; local time unless it starts with CRON_TZ=Zone.
	Schedule string `yaml:"schedule"`
	// Keep is how many complete backups of the method to keep (at least
	// 1); MaxAge, when set, removes older ones too, but never the newest.
	Keep   int      `yaml:"keep"`
	MaxAge Duration `yaml:"max_age"`
	// Verify restores each new backup on the side (a scratch server on
	// the same host) and checks it; a failed verification fails the job.
	Verify bool `yaml:"verify"`
	// Dir is an absolute directory on the database hosts; default
	// /var/backups/nines.
	Dir string `yaml:"dir"`
	// Node pins the backups to one node (host:port) of the cluster;
	// default: each run chooses the least loaded Synced node.
	Node string `yaml:"node"`
	// Desync takes a Galera node out of flow control during the backup.
	Desync bool `yaml:"desync"`
}

// Remediation is what nines may repair on the cluster by itself.
type Remediation struct {
	// Mode: auto acts; dry-run records the plan and touches nothing; off
	// does nothing. Default dry-run: nines shows what it would do until an
	// operator lets it act.
	Mode string `yaml:"mode"`
	// After MaxRecoveries automatic recoveries within Window, automation
	// stops and a human is paged. Defaults 3 in 10m.
	MaxRecoveries int      `yaml:"max_recoveries"`
	Window        Duration `yaml:"window"`
}

// SLO is the cluster's availability objective.
type SLO struct {
	Target float64  `yaml:"target"` // percent; default 99.999
	Window Duration `yaml:"window"` // default 30d
}

// Probe configures the synthetic write probe, the SLI.
type Probe struct {
	// Endpoints are the host:port addresses applications write through
	// (a proxy, a VIP). Empty means every node.
	Endpoints []string `yaml:"endpoints"`
	// Disabled turns the probe off (then the cluster has no SLI).
	Disabled bool `yaml:"disabled"`
	// Timeout is the latency bound: a write slower than this is a
	// failure. Default 1s.
	Timeout Duration `yaml:"timeout"`
}

// ProbeEndpoints returns the addresses the probe writes through.
func (c Cluster) ProbeEndpoints() []string {
	if c.Probe.Disabled {
		return nil
	}
	if len(c.Probe.Endpoints) > 0 {
		return c.Probe.Endpoints
	}
	out := make([]string, len(c.Nodes))
	for i, n := range c.Nodes {
		out[i] = n.Address
	}
	return out
}

// Node is one server of a cluster.
type Node struct {
	Address string `yaml:"address"`
	Agent   string `yaml:"agent"`
}

// Credentials are the SQL account nines reads status with.
type Credentials struct {
	User         string `yaml:"user"`
	PasswordFile string `yaml:"password_file"`
	PasswordEnv  string `yaml:"password_env"`
	Password     Secret `yaml:"-"`
}

// CollectReplicaStatus reports whether replica status is read on c's nodes.
func (c Cluster) CollectReplicaStatus() bool {
	if c.ReplicaStatus != nil {
		return *c.ReplicaStatus
	}
	return c.Kind == nines.KindReplication
}

// Domain returns the cluster as the domain package describes it.
func (c Cluster) Domain() nines.Cluster {
	out := nines.Cluster{Name: c.Name, Kind: c.Kind}
	for _, n := range c.Nodes {
		out.Nodes = append(out.Nodes, nines.Node{Address: n.Address, Agent: n.Agent})
	}
	return out
}

// Secret is a credential that never prints.
type Secret = secret.Secret

// Errors is every problem found in a config file, in file order.
type Errors = yamlfile.Errors

// FieldError is one problem in a config file.
type FieldError = yamlfile.FieldError

// Duration is a time.Duration that also accepts days ("30d") and weeks
// ("2w"), as retention periods are usually written.
type Duration struct {
	time.Duration
	set bool
}

// UnmarshalYAML parses the duration. A bad value becomes a *yaml.TypeError
// so decoding goes on and every problem is reported at once.
func (d *Duration) UnmarshalYAML(n *yaml.Node) error {
	v, err := ParseDuration(n.Value)
	if n.Kind != yaml.ScalarNode || err != nil {
		if err == nil {
			err = errors.New("not a scalar")
		}
		return &yaml.TypeError{Errors: []string{fmt.Sprintf("line %d: invalid duration %q: %v", n.Line, n.Value, err)}}
	}
	d.Duration, d.set = v, true
	return nil
}

// MarshalYAML writes the duration back in Go syntax.
func (d Duration) MarshalYAML() (any, error) { return d.Duration.String(), nil }

// ParseDuration parses Go durations plus the units d (24h) and w (7d).
func ParseDuration(s string) (time.Duration, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return 0, errors.New("empty")
	}
	for unit, mult := range map[string]time.Duration{"d": 24 * time.Hour, "w": 7 * 24 * time.Hour} {
		if num, ok := strings.CutSuffix(s, unit); ok {
			n, err := strconv.ParseFloat(num, 64)
			if err != nil {
				return 0, fmt.Errorf("bad number %q", num)
			}
			return time.Duration(n * float64(mult)), nil
		}
	}
	return time.ParseDuration(s)
}

// Load reads, parses and validates the config at path. On any problem it
// returns an *Errors listing all of them.
func Load(path string) (*Config, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read config: %w", err)
	}
	return Parse(path, b)
}

// Parse is Load for bytes already read; path names them in errors and
// anchors relative paths.
func Parse(path string, b []byte) (*Config, error) {
	cfg := &Config{}
	lines, errs := yamlfile.Decode(path, b, cfg)
	if len(errs.List) > 0 {
		return nil, errs
	}
	cfg.File = path
	cfg.applyDefaults()
	cfg.validate(errs, lines)
	if len(errs.List) > 0 {
		return nil, errs
	}
	return cfg, nil
}

func (c *Config) applyDefaults() {
	if c.Listen == "" {
		c.Listen = DefaultListen
	}
	if c.DataDir == "" {
		c.DataDir = DefaultDataDir
	}
	c.DataDir = c.resolve(c.DataDir)
	if !c.Retention.set {
		c.Retention.Duration = DefaultRetention
	}
	if !c.Scrape.Interval.set {
		c.Scrape.Interval.Duration = DefaultScrapeInterval
	}
	if !c.Scrape.Timeout.set {
		c.Scrape.Timeout.Duration = min(DefaultScrapeTimeout, c.Scrape.Interval.Duration*8/10)
	}
	if !c.Scrape.VariablesInterval.set {
		c.Scrape.VariablesInterval.Duration = DefaultVariablesInterval
	}
	for i := range c.Clusters {
		cl := &c.Clusters[i]
		if cl.SLO.Target == 0 {
			cl.SLO.Target = DefaultSLOTarget
		}
		if !cl.SLO.Window.set {
			cl.SLO.Window.Duration = DefaultSLOWindow
		}
		if !cl.Probe.Timeout.set {
			cl.Probe.Timeout.Duration = DefaultProbeTimeout
		}
		if cl.Remediation.Mode == "" {
			cl.Remediation.Mode = "dry-run"
		}
		if cl.Remediation.MaxRecoveries == 0 {
			cl.Remediation.MaxRecoveries = 3
		}
		if !cl.Remediation.Window.set {
			cl.Remediation.Window.Duration = 10 * time.Minute
		}
		for j := range cl.Backups {
			if cl.Backups[j].Dir == "" {
				cl.Backups[j].Dir = DefaultBackupDir
			}
		}
	}
	for i, p := range c.RuleFiles {
		c.RuleFiles[i] = c.resolve(p)
	}
	if c.Alertmanager.Embedded != "" {
		c.Alertmanager.Embedded = c.resolve(c.Alertmanager.Embedded)
	}
}

// resolve makes p absolute relative to the config file's directory.
func (c *Config) resolve(p string) string {
	if p == "" || filepath.IsAbs(p) {
		return p
	}
	return filepath.Join(filepath.Dir(c.File), p)
}

func (c *Config) validate(errs *Errors, lines yamlfile.Lines) {
	at := func(path, format string, args ...any) {
		errs.Add(lines.Line(path), path, fmt.Sprintf(format, args...))
	}

	if err := checkHostPort(c.Listen); err != nil {
		at("listen", "bad address %q: %v", c.Listen, err)
	}
	if c.TLS != nil {
		for field, p := range map[string]string{"cert_file": c.TLS.CertFile, "key_file": c.TLS.KeyFile} {
			if p == "" {
				at("tls."+field, "required when tls is set")
				continue
			}
			if _, err := os.ReadFile(c.resolve(p)); err != nil {
				at("tls."+field, "cannot read %q: %v", p, yamlfile.UnwrapPathErr(err))
			}
		}
		c.TLS.CertFile, c.TLS.KeyFile = c.resolve(c.TLS.CertFile), c.resolve(c.TLS.KeyFile)
	}
	if c.Retention.Duration < MinRetention {
		at("retention", "must be at least 1d, got %s", c.Retention.Duration)
	}
	checkInterval := func(path string, d time.Duration) {
		if d <= 0 {
			at(path, "must be positive, got %s", d)
		}
	}
	checkInterval("scrape.interval", c.Scrape.Interval.Duration)
	checkInterval("scrape.timeout", c.Scrape.Timeout.Duration)
	checkInterval("scrape.variables_interval", c.Scrape.VariablesInterval.Duration)
	if c.Scrape.Timeout.Duration > c.Scrape.Interval.Duration {
		at("scrape.timeout", "%s is longer than scrape.interval %s: a hung node would delay every scrape", c.Scrape.Timeout.Duration, c.Scrape.Interval.Duration)
	}

	if len(c.API.Tokens) == 0 {
		at("api.tokens", "at least one API token is required: the API never runs unauthenticated")
	}
	tokenNames := map[string]bool{}
	for i := range c.API.Tokens {
		t := &c.API.Tokens[i]
		p := fmt.Sprintf("api.tokens[%d]", i)
		if t.Name == "" {
			at(p+".name", "required")
		} else if tokenNames[t.Name] {
			at(p+".name", "duplicate token name %q", t.Name)
		}
		tokenNames[t.Name] = true
		v, field, err := c.readSecret(t.TokenFile, t.TokenEnv, "token_file", "token_env")
		if err != nil {
			at(p+"."+field, "%v", err)
			continue
		}
		if len(v) < 16 {
			at(p+"."+field, "token is %d characters; use at least 16", len(v))
		}
		t.Value = Secret(v)
	}

	if len(c.Clusters) == 0 {
		at("clusters", "no clusters configured")
	}
	names := map[string]bool{}
	addrs := map[string]string{}
	for i := range c.Clusters {
		cl := &c.Clusters[i]
		p := fmt.Sprintf("clusters[%d]", i)
		switch {
		case cl.Name == "":
			at(p+".name", "required")
		case !validName(cl.Name):
			at(p+".name", "%q: use letters, digits, '-' and '_' only", cl.Name)
		case names[cl.Name]:
			at(p+".name", "duplicate cluster name %q", cl.Name)
		}
		names[cl.Name] = true
		if !cl.Kind.Valid() {
			at(p+".kind", "%q is not one of galera, replication, ndb", cl.Kind)
		}
		if len(cl.Nodes) == 0 {
			at(p+".nodes", "no nodes")
		}
		agents := false
		for j, n := range cl.Nodes {
			np := fmt.Sprintf("%s.nodes[%d]", p, j)
			agents = agents || n.Agent != ""
			if err := checkHostPort(n.Address); err != nil {
				at(np+".address", "bad address %q: %v", n.Address, err)
			} else if other, dup := addrs[n.Address]; dup {
				at(np+".address", "%q is already a node of %s", n.Address, other)
			} else {
				addrs[n.Address] = np
			}
			if n.Agent != "" {
				if u, err := url.Parse(n.Agent); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
					at(np+".agent", "bad agent URL %q: want http(s)://host:port", n.Agent)
				}
			}
		}
		if t := cl.SLO.Target; t <= 0 || t >= 100 {
			at(p+".slo.target", "%v is not a percentage between 0 and 100 (exclusive)", t)
		}
		if cl.SLO.Window.Duration < 24*time.Hour {
			at(p+".slo.window", "must be at least 1d, got %s", cl.SLO.Window.Duration)
		}
		switch cl.Remediation.Mode {
		case "auto", "dry-run", "off":
		default:
			at(p+".remediation.mode", "%q is not one of auto, dry-run, off", cl.Remediation.Mode)
		}
		if cl.Remediation.MaxRecoveries < 1 {
			at(p+".remediation.max_recoveries", "must be at least 1, got %d", cl.Remediation.MaxRecoveries)
		}
		if cl.Remediation.Window.Duration <= 0 {
			at(p+".remediation.window", "must be positive, got %s", cl.Remediation.Window.Duration)
		}
		if cl.Probe.Timeout.Duration <= 0 || cl.Probe.Timeout.Duration > 10*time.Second {
			at(p+".probe.timeout", "must be between 0 and 10s, got %s", cl.Probe.Timeout.Duration)
		}
		for j, ep := range cl.Probe.Endpoints {
			if err := checkHostPort(ep); err != nil {
				at(fmt.Sprintf("%s.probe.endpoints[%d]", p, j), "bad address %q: %v", ep, err)
			}
		}
		if agents || cl.AgentTokenFile != "" || cl.AgentTokenEnv != "" {
			v, field, err := c.readSecret(cl.AgentTokenFile, cl.AgentTokenEnv, "agent_token_file", "agent_token_env")
			switch {
			case err != nil && cl.AgentTokenFile == "" && cl.AgentTokenEnv == "":
				at(p+"."+field, "required when a node names an agent: %v", err)
			case err != nil:
				at(p+"."+field, "%v", err)
			case len(v) < 16:
				at(p+"."+field, "token is %d characters; use at least 16", len(v))
			default:
				cl.AgentToken = Secret(v)
			}
		}
		c.validateBackups(cl, p, agents, at)
		validateMaintenance(cl, p, at)
		cr := &cl.Credentials
		if cr.User == "" {
			at(p+".credentials.user", "missing credentials: a user is required")
		}
		v, field, err := c.readSecret(cr.PasswordFile, cr.PasswordEnv, "password_file", "password_env")
		if err != nil {
			at(p+".credentials."+field, "%v", err)
		}
		cr.Password = Secret(v)
	}

	for i, pat := range c.RuleFiles {
		matches, err := filepath.Glob(pat)
		switch {
		case err != nil:
			at(fmt.Sprintf("rule_files[%d]", i), "bad pattern %q: %v", pat, err)
		case len(matches) == 0:
			at(fmt.Sprintf("rule_files[%d]", i), "%q matches no file", pat)
		}
	}
	am := c.Alertmanager
	switch {
	case am.Embedded != "" && len(am.URLs) > 0:
		at("alertmanager", "set either embedded or urls, not both")
	case am.Embedded != "":
		if _, err := os.Stat(am.Embedded); err != nil {
			at("alertmanager.embedded", "cannot read %q: %v", am.Embedded, yamlfile.UnwrapPathErr(err))
		}
	}
	for i, u := range am.URLs {
		if pu, err := url.Parse(u); err != nil || (pu.Scheme != "http" && pu.Scheme != "https") || pu.Host == "" {
			at(fmt.Sprintf("alertmanager.urls[%d]", i), "bad URL %q: want http(s)://host:port", u)
		}
	}
	if c.ExternalURL != "" {
		if pu, err := url.Parse(c.ExternalURL); err != nil || pu.Scheme == "" || pu.Host == "" {
			at("external_url", "bad URL %q", c.ExternalURL)
		}
	}
	c.validateConsole(at)
	c.validateGrafana(at)
}

// validateBackups checks a cluster's backups: methods known and each
// once, schedules that parse, retention that keeps something, an absolute
// directory, a pinned node of the cluster with an agent, and agents to act
// through.
func (c *Config) validateBackups(cl *Cluster, p string, agents bool, at func(path, format string, args ...any)) {
	if len(cl.Backups) == 0 {
		return
	}
	if !agents {
		at(p+".backups", "backups need the nodes' agents: no node of %s names an agent", cl.Name)
	}
	if cl.Kind == nines.KindNDB {
		at(p+".backups", "backups of ndb clusters are not supported yet")
	}
	methods := map[string]bool{}
	for j, b := range cl.Backups {
		bp := fmt.Sprintf("%s.backups[%d]", p, j)
		switch {
		case b.Method != "mariabackup" && b.Method != "dump":
			at(bp+".method", "%q is not one of mariabackup, dump", b.Method)
		case methods[b.Method]:
			at(bp+".method", "a %s backup is already scheduled for this cluster: one schedule per method", b.Method)
		}
		methods[b.Method] = true
		if b.Schedule == "" {
			at(bp+".schedule", "required: a cron expression such as \"0 3 * * *\" or @daily")
		} else if _, err := cron.ParseStandard(b.Schedule); err != nil {
			at(bp+".schedule", "bad cron expression %q: %v", b.Schedule, err)
		}
		if b.Keep < 1 {
			at(bp+".keep", "must be at least 1, got %d: how many complete backups to keep", b.Keep)
		}
		if b.MaxAge.set && b.MaxAge.Duration <= 0 {
			at(bp+".max_age", "must be positive, got %s", b.MaxAge.Duration)
		}
		if !filepath.IsAbs(b.Dir) {
			at(bp+".dir", "%q is not an absolute path (it is a directory on the database hosts)", b.Dir)
		}
		if b.Node != "" {
			found := false
			for _, n := range cl.Nodes {
				if n.Address == b.Node {
					found = true
					if n.Agent == "" {
						at(bp+".node", "%q has no agent: nines cannot back it up", b.Node)
					}
				}
			}
			if !found {
				at(bp+".node", "%q is not a node of cluster %s", b.Node, cl.Name)
			}
		}
	}
}

// readSecret reads a secret from exactly one of a file or an environment
// variable. Surrounding whitespace (a trailing newline) is dropped.
func (c *Config) readSecret(file, env, fileField, envField string) (string, string, error) {
	switch {
	case file != "" && env != "":
		return "", fileField, fmt.Errorf("set only one of %s and %s", fileField, envField)
	case file != "":
		b, err := os.ReadFile(c.resolve(file))
		if err != nil {
			return "", fileField, fmt.Errorf("cannot read %q: %v", file, yamlfile.UnwrapPathErr(err))
		}
		return strings.TrimSpace(string(b)), fileField, nil
	case env != "":
		v, ok := os.LookupEnv(env)
		if !ok {
			return "", envField, fmt.Errorf("environment variable %q is not set", env)
		}
		return strings.TrimSpace(v), envField, nil
	}
	return "", fileField, fmt.Errorf("missing credentials: set %s or %s", fileField, envField)
}

func validName(s string) bool {
	for _, r := range s {
		if !(r == '-' || r == '_' || r >= '0' && r <= '9' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z') {
			return false
		}
	}
	return true
}

// checkHostPort accepts host:port with a non-empty host and a port in
// 1..65535.
func checkHostPort(s string) error {
	host, port, err := net.SplitHostPort(s)
	if err != nil {
		return errors.New("want host:port")
	}
	if host == "" {
		return errors.New("missing host")
	}
	n, err := strconv.Atoi(port)
	if err != nil || n < 1 || n > 65535 {
		return fmt.Errorf("port %q is not a number in 1..65535", port)
	}
	return nil
}
