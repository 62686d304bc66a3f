// Package config parses and validates the appliance's YAML configuration.
//
// Load never returns a half-valid config: either every field is checked and
// every secret file read, or the caller gets an *Errors naming each problem
// by file, line and field. Secrets are held as Secret values, which never
// print themselves.
package config

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"github.com/nines-project/nines/internal/secret"
	"github.com/nines-project/nines/internal/yamlfile"
	"net"
	"os"
	"strconv"
	"strings"
	"time"

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
	DefaultPositionWait      = 2 * time.Minute
	// MinRetention is VictoriaMetrics' lower bound for retentionPeriod.
	MinRetention = 24 * time.Hour
	// DefaultBackupDir is where backups go on the database hosts.
	DefaultBackupDir = "/var/backups/nines"
	// DefaultGossipLabel marks the appliances' Alertmanager mesh.
	DefaultGossipLabel = "nines"
	// DefaultGossipPeerTimeout is how long the second appliance holds a
	// page for the first's to gossip over (the third twice as long).
	// Upstream takes 15 s; on a LAN the notification log gossips in well
	// under a second (200 ms rounds), and a page held 15 s when the first
	// appliance has just died is 15 s of a five-nines month.
	DefaultGossipPeerTimeout = 5 * time.Second
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
	RuleFiles []string `yaml:"rule_files"`
	// AlertFor sets the `for:` of built-in alerts by name, for a site that
	// wants one sooner or later than its pack's default (ConfigDrift: 1m).
	AlertFor     map[string]Duration `yaml:"alert_for"`
	Alertmanager Alertmanager        `yaml:"alertmanager"`
	// ExternalURL is how people reach this appliance; alert links use it.
	ExternalURL string `yaml:"external_url"`
	// ProbeSource names this appliance in the probe's heartbeat rows;
	// default the host name (with ha.name added in a team). Two
	// appliances probing one cluster need different sources, or each
	// would read the other's rows as its own.
	ProbeSource string `yaml:"probe_source"`
	// TrustedProxies are the reverse proxies (CIDRs or addresses) in
	// front of the appliance: only from them is X-Forwarded-For believed,
	// so console logins are limited per real client, not per proxy.
	TrustedProxies Prefixes `yaml:"trusted_proxies"`
	// Console is the web console's users; without users it is not served.
	Console Console `yaml:"console"`
	// Grafana, when set, receives the generated dashboards and a data
	// source pointing at this appliance.
	Grafana *Grafana `yaml:"grafana"`
	// HA, when set, makes this appliance one of a team sharing the
	// clusters over etcd (ha.go).
	HA *HA `yaml:"ha"`
	// RemoteWrite lists Prometheus remote-write receivers that get every
	// sample the appliance stores, through a queue on disk (remotewrite.go).
	RemoteWrite []RemoteWrite `yaml:"remote_write"`
	// Store, when set, is an external Prometheus-compatible query API
	// that rules, the console, the API and reports read instead of the
	// embedded store, so that appliances which remote_write into one
	// store share one view of the fleet.
	Store *ExternalStore `yaml:"store"`
}

// ExternalStore is a query API nines reads (it writes there with
// remote_write, not through this).
type ExternalStore struct {
	URL       string   `yaml:"url"`
	TokenFile string   `yaml:"bearer_token_file"`
	TokenEnv  string   `yaml:"bearer_token_env"`
	Token     Secret   `yaml:"-"`
	CAFile    string   `yaml:"ca_file"`
	Timeout   Duration `yaml:"timeout"`
	// CAs is CAFile read; nil means the system's roots.
	CAs *x509.CertPool `yaml:"-"`
}

// Alertmanager says where alerts go: an embedded Alertmanager configured
// by a standard alertmanager.yml, or an existing Alertmanager cluster.
// Exactly one of the two, or neither (alerts are then only evaluated and
// shown, never sent: nines check warns).
type Alertmanager struct {
	Embedded string   `yaml:"embedded"`
	URLs     []string `yaml:"urls"`
	// Cluster joins the embedded Alertmanager to the other appliances'
	// with Alertmanager's gossip, so that every appliance evaluates and
	// notifies but a page goes out once and a silence holds everywhere.
	Cluster *AlertmanagerCluster `yaml:"cluster"`
}

// AlertmanagerCluster is upstream's --cluster.* set for the embedded
// Alertmanager.
type AlertmanagerCluster struct {
	// Listen is the gossip address (TCP and UDP), e.g. 10.0.0.1:9094.
	Listen string `yaml:"listen"`
	// Advertise is the address the peers reach this one at, when Listen
	// is not it (0.0.0.0, NAT).
	Advertise string `yaml:"advertise"`
	// Peers are the other appliances' gossip addresses.
	Peers []string `yaml:"peers"`
	// Name is this appliance's peer name; peers take turns to notify in
	// name order. Empty: a random name.
	Name string `yaml:"name"`
	// Label keeps two meshes on one network apart (default "nines").
	Label string `yaml:"label"`
	// PeerTimeout is how long each peer waits per peer ahead of it before
	// notifying (default DefaultGossipPeerTimeout).
	PeerTimeout Duration `yaml:"peer_timeout"`
	// TLS: mutual TLS for the gossip; required unless every address is a
	// loopback one, since silences and alert state cross the network.
	TLS *GossipTLS `yaml:"tls"`
}

// GossipTLS is a peer's certificate and key (used both to serve and to
// connect) and the CA that signed every peer's.
type GossipTLS struct {
	CertFile string `yaml:"cert_file"`
	KeyFile  string `yaml:"key_file"`
	CAFile   string `yaml:"ca_file"`
}

// TLS makes the listener serve HTTPS.
type TLS = secret.TLS

// API holds the bearer tokens that may call the HTTP API.
type API struct {
	Tokens []Token `yaml:"tokens"`
}

// Token is one named API credential, read from a file or the environment,
// with the role that says what it may call (see roles.go).
type Token struct {
	Name      string `yaml:"name"`
	Role      string `yaml:"role"`
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
	// Drill declares the cluster a drill target: `nines drill` kills its
	// servers for real, and refuses any cluster without allowed: true.
	Drill Drill `yaml:"drill"`
	// AgentTokenFile (or AgentTokenEnv) holds the bearer token of the
	// nines agents on this cluster's hosts; required when any node names
	// an agent. One token per cluster: the agents of a cluster are
	// administered together.
	AgentTokenFile string `yaml:"agent_token_file"`
	AgentTokenEnv  string `yaml:"agent_token_env"`
	AgentToken     Secret `yaml:"-"`
	// AgentCAFile verifies the agents' https certificates against a
	// private CA instead of the system's roots; AgentCertFile and
	// AgentKeyFile are a client certificate the appliance presents to
	// agents that require one. AgentTLS is built from them at load.
	AgentCAFile   string      `yaml:"agent_ca_file"`
	AgentCertFile string      `yaml:"agent_cert_file"`
	AgentKeyFile  string      `yaml:"agent_key_file"`
	AgentTLS      *tls.Config `yaml:"-"`
	// Backups are the cluster's scheduled backups, one per method, taken
	// through the node agents.
	Backups []Backup `yaml:"backups"`
	// HAProxy is the HAProxy applications reach the cluster through, if
	// any: its stats are read every scrape interval into the store
	// (nines_haproxy_*, see exporter/haproxy.go).
	HAProxy *HAProxy `yaml:"haproxy"`
	// Maintenance lists declared maintenance windows: their seconds are
	// not valid for the SLO and are reported apart.
	Maintenance []Maintenance `yaml:"maintenance"`
	// DRReplicas are servers outside a Galera cluster replicating from
	// one of its nodes by GTID (a disaster-recovery site). They are
	// scraped with replica status under the cluster's name, are no
	// member (not in nodes: no probe, no quorum count), and the
	// galera-dr-follow runbook repoints one whose source died to another
	// Synced node, in the order of nodes.
	DRReplicas []DRReplica `yaml:"dr_replicas"`
	// NDB is a kind ndb cluster's management servers and data nodes
	// (ndb.go); required for kind ndb, refused for the others.
	NDB *NDB `yaml:"ndb"`
}

// DRReplica is one disaster-recovery replica of a Galera cluster.
type DRReplica struct {
	Address string `yaml:"address"`
	// Agent is the replica's host agent (galera: false there), through
	// which it is repointed; it needs a replication account.
	Agent    string `yaml:"agent"`
	Insecure bool   `yaml:"insecure"`
}

// Backup is one scheduled backup of a cluster.
type Backup struct {
	// Method is mariabackup (physical, hot) or dump (logical); for kind
	// ndb, ndb: a native backup (START BACKUP through the management
	// servers), whose files each data node writes into its BackupDataDir
	// (no dir, node or desync then).
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
	// PositionWait is how long a Galera quorum recovery waits for nodes
	// that do not answer before it may bootstrap without them (they may
	// hold the latest transactions). Default 2m.
	PositionWait Duration `yaml:"position_wait"`
}

// Drill is a cluster's drill section. Default: no drills.
type Drill struct {
	Allowed bool `yaml:"allowed"`
}

// HAProxy names an HAProxy in front of a cluster (on the appliance's
// host: its runtime API is a unix socket) and which of its backends or
// listeners are the cluster's writer and reader pools, as `nines haproxy
// config` names them (CLUSTER-writer, CLUSTER-reader).
type HAProxy struct {
	// StatsSocket is the runtime API's socket (`stats socket`), an
	// absolute path; the appliance needs read and write access to it.
	StatsSocket   string `yaml:"stats_socket"`
	WriterBackend string `yaml:"writer_backend"`
	ReaderBackend string `yaml:"reader_backend"`
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
	// Engine is the storage engine of the probe's tables: default
	// NDBCLUSTER for kind ndb (so each write reaches the data nodes; an
	// InnoDB table would stay on the SQL node and count good seconds
	// with the data nodes down), InnoDB otherwise.
	Engine string `yaml:"engine"`
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
	// Insecure allows an http:// agent URL to a host other than loopback:
	// the agent token then crosses the network in clear text.
	Insecure bool `yaml:"insecure"`
	// Priority breaks ties between equally advanced replicas when a
	// replication failover chooses the new primary: higher first, then
	// the order of nodes here. Default 0.
	Priority int `yaml:"priority"`
}

// Credentials are the SQL account nines reads status with.
type Credentials struct {
	User         string `yaml:"user"`
	PasswordFile string `yaml:"password_file"`
	PasswordEnv  string `yaml:"password_env"`
	Password     Secret `yaml:"-"`
	// TLS encrypts the exporter's and the probe's connections to the
	// nodes and checks their certificates against a private CA; set it
	// whenever those connections cross a network.
	TLS *secret.ClientTLS `yaml:"tls"`
	// TLSConfig is TLS read by validation (nil without TLS).
	TLSConfig *tls.Config `yaml:"-"`
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
	for _, d := range c.DRReplicas {
		out.DRReplicas = append(out.DRReplicas, nines.Node{Address: d.Address, Agent: d.Agent})
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
