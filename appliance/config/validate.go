package config

import (
	"fmt"
	"net"
	"net/url"
	"path/filepath"
	"strings"
	"time"

	"github.com/robfig/cron/v3"

	"github.com/nines-project/nines"
	"github.com/nines-project/nines/internal/yamlfile"
)

// validate runs after applyDefaults, in three steps: resolvePaths (no
// I/O), checkFields (the values alone, no I/O) and readFiles (secrets and
// named files). Every step runs even when an earlier one found problems,
// so one pass reports them all, each as file:line: field: message.
func (c *Config) validate(errs *Errors, lines yamlfile.Lines) {
	at := func(path, format string, args ...any) {
		errs.Add(lines.Line(path), path, fmt.Sprintf(format, args...))
	}
	c.resolvePaths()
	c.checkFields(at)
	c.readFiles(at)
}

// checkFields checks the values as written: addresses, durations, names,
// modes, URLs, schedules. It reads no file and no environment variable.
func (c *Config) checkFields(at func(path, format string, args ...any)) {
	if err := checkHostPort(c.Listen); err != nil {
		at("listen", "bad address %q: %v", c.Listen, err)
	}
	if c.TLS != nil {
		for field, p := range map[string]string{"cert_file": c.TLS.CertFile, "key_file": c.TLS.KeyFile} {
			if p == "" {
				at("tls."+field, "required when tls is set")
			}
		}
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
	if c.ProbeSource != "" && (!validName(c.ProbeSource) || len(c.ProbeSource) > 64) {
		at("probe_source", "%q: use at most 64 letters, digits, '-' and '_'", c.ProbeSource)
	}
	for name, d := range c.AlertFor {
		if d.Duration < 0 {
			at("alert_for."+name, "must not be negative, got %s", d.Duration)
		}
	}
	if c.Scrape.Timeout.Duration > c.Scrape.Interval.Duration {
		at("scrape.timeout", "%s is longer than scrape.interval %s: a hung node would delay every scrape", c.Scrape.Timeout.Duration, c.Scrape.Interval.Duration)
	}

	if len(c.API.Tokens) == 0 {
		at("api.tokens", "at least one API token is required: the API never runs unauthenticated")
	}
	tokenNames := map[string]bool{}
	for i, t := range c.API.Tokens {
		p := fmt.Sprintf("api.tokens[%d]", i)
		if t.Name == "" {
			at(p+".name", "required")
		} else if tokenNames[t.Name] {
			at(p+".name", "duplicate token name %q", t.Name)
		}
		tokenNames[t.Name] = true
		checkTokenRole(t, p, at)
	}

	if len(c.Clusters) == 0 {
		at("clusters", "no clusters configured")
	}
	names := map[string]bool{}
	addrs := map[string]string{}
	for i := range c.Clusters {
		c.checkCluster(&c.Clusters[i], fmt.Sprintf("clusters[%d]", i), names, addrs, at)
	}

	am := c.Alertmanager
	if am.Embedded != "" && len(am.URLs) > 0 {
		at("alertmanager", "set either embedded or urls, not both")
	}
	if am.Cluster != nil {
		checkGossip(am, at)
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
	c.checkHA(at)
	c.checkRemoteWrite(at)
	if c.Store != nil {
		checkExternalStore(c.Store, at)
	}
}

// checkExternalStore checks store as written: a URL, over TLS unless it
// stays on this host.
func checkExternalStore(st *ExternalStore, at func(path, format string, args ...any)) {
	u, err := url.Parse(st.URL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		at("store.url", "bad URL %q: want https://host:port/path of a Prometheus-compatible API", st.URL)
		return
	}
	if u.User != nil {
		at("store.url", "credentials in the URL would be logged; use bearer_token_file")
	}
	host := u.Hostname()
	if ip := net.ParseIP(host); u.Scheme == "http" && host != "localhost" && (ip == nil || !ip.IsLoopback()) {
		at("store.url", "http:// to another host sends the fleet's data and the token in clear text; use https://")
	}
	if st.Timeout.Duration < 0 {
		at("store.timeout", "must not be negative")
	}
}

// checkCluster checks one cluster's fields; names and addrs collect the
// cluster names and node addresses seen so far, which must be unique
// across the config.
func (c *Config) checkCluster(cl *Cluster, p string, names map[string]bool, addrs map[string]string, at func(path, format string, args ...any)) {
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
		checkServer(np, n.Address, n.Agent, n.Insecure, addrs, at)
	}
	if len(cl.DRReplicas) > 0 && cl.Kind != nines.KindGalera {
		at(p+".dr_replicas", "DR replicas are for galera clusters; a %s cluster's replicas are its nodes", cl.Kind)
	}
	for j, d := range cl.DRReplicas {
		dp := fmt.Sprintf("%s.dr_replicas[%d]", p, j)
		checkServer(dp, d.Address, d.Agent, d.Insecure, addrs, at)
		if d.Agent == "" && cl.Remediation.Mode == "auto" {
			at(dp+".agent", "required with remediation.mode auto: nines repoints a DR replica through its agent")
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
	if cl.Remediation.PositionWait.Duration <= 0 {
		at(p+".remediation.position_wait", "must be positive, got %s", cl.Remediation.PositionWait.Duration)
	}
	checkAutoAgents(cl, p, at)
	checkDrill(cl, p, at)
	checkNDB(cl, p, at)
	if cl.Probe.Timeout.Duration <= 0 || cl.Probe.Timeout.Duration > 10*time.Second {
		at(p+".probe.timeout", "must be between 0 and 10s, got %s", cl.Probe.Timeout.Duration)
	}
	if !validName(cl.Probe.Engine) || strings.Contains(cl.Probe.Engine, "-") {
		at(p+".probe.engine", "%q is not a storage engine name (such as InnoDB or NDBCLUSTER)", cl.Probe.Engine)
	}
	for j, ep := range cl.Probe.Endpoints {
		if err := checkHostPort(ep); err != nil {
			at(fmt.Sprintf("%s.probe.endpoints[%d]", p, j), "bad address %q: %v", ep, err)
		}
	}
	c.validateBackups(cl, p, agents, at)
	if h := cl.HAProxy; h != nil {
		if !filepath.IsAbs(h.StatsSocket) {
			at(p+".haproxy.stats_socket", "%q: want the absolute path of HAProxy's stats socket", h.StatsSocket)
		}
		for _, b := range []struct{ key, name string }{{"writer_backend", h.WriterBackend}, {"reader_backend", h.ReaderBackend}} {
			if strings.TrimSpace(b.name) == "" || strings.ContainsAny(b.name, " \t\n/") {
				at(p+".haproxy."+b.key, "%q: want the name of a backend or listen section (such as %s-writer)", b.name, cl.Name)
			}
		}
		if h.WriterBackend != "" && h.WriterBackend == h.ReaderBackend {
			at(p+".haproxy.reader_backend", "%q is the writer backend too: the writer and reader pools are different backends", h.ReaderBackend)
		}
	}
	validateMaintenance(cl, p, at)
	if cl.Credentials.User == "" {
		at(p+".credentials.user", "missing credentials: a user is required")
	}
	if t := cl.Credentials.TLS; t != nil {
		if t.CAFile == "" {
			at(p+".credentials.tls.ca_file", "missing: nines checks each node's certificate against this CA")
		}
		if (t.CertFile == "") != (t.KeyFile == "") {
			at(p+".credentials.tls", "cert_file and key_file go together (a client certificate needs its key)")
		}
	}
}

// checkServer checks one server's address (unique across the config;
// addrs records it under path p) and agent URL.
func checkServer(p, address, agentURL string, insecure bool, addrs map[string]string, at func(path, format string, args ...any)) {
	if err := checkHostPort(address); err != nil {
		at(p+".address", "bad address %q: %v", address, err)
	} else if other, dup := addrs[address]; dup {
		at(p+".address", "%q is already a node of %s", address, other)
	} else {
		addrs[address] = p
	}
	checkAgentURL(p, agentURL, insecure, at)
}

// isLoopback reports whether host names this host only: "localhost" or a
// loopback IP.
func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// validateBackups checks a cluster's backups: methods known and each
// once, schedules that parse, retention that keeps something, an absolute
// directory, a pinned node of the cluster with an agent, and agents to act
// through.
func (c *Config) validateBackups(cl *Cluster, p string, agents bool, at func(path, format string, args ...any)) {
	if len(cl.Backups) == 0 {
		return
	}
	ndbKind := cl.Kind == nines.KindNDB
	switch {
	case ndbKind:
		// Native backups run through the management server; the data
		// nodes' agents list, check and delete their files.
		if cl.NDB != nil && len(cl.NDB.DataNodes) == 0 {
			at(p+".ndb.data_nodes", "native backups need the data nodes' agents: list each data node with its agent ({node_id: N, agent: https://HOST:9105})")
		}
		if cl.NDB != nil {
			for i, d := range cl.NDB.DataNodes {
				if d.Agent == "" {
					at(fmt.Sprintf("%s.ndb.data_nodes[%d].agent", p, i), "required for native backups: nines lists, checks and deletes data node %d's backup files through its agent", d.NodeID)
				}
			}
		}
	case !agents:
		at(p+".backups", "backups need the nodes' agents: no node of %s names an agent", cl.Name)
	}
	methods := map[string]bool{}
	for j, b := range cl.Backups {
		bp := fmt.Sprintf("%s.backups[%d]", p, j)
		switch {
		case ndbKind && b.Method != "ndb":
			at(bp+".method", "%q: an ndb cluster is backed up natively (START BACKUP through the management server): use method: ndb", b.Method)
		case !ndbKind && b.Method == "ndb":
			at(bp+".method", "\"ndb\" is the native backup of ndb clusters; this cluster is kind %s: use mariabackup or dump", cl.Kind)
		case !ndbKind && b.Method != "mariabackup" && b.Method != "dump":
			at(bp+".method", "%q is not one of mariabackup, dump", b.Method)
		case methods[b.Method]:
			at(bp+".method", "a %s backup is already scheduled for this cluster: one schedule per method", b.Method)
		}
		if b.Method == "ndb" {
			// Where the files go and which nodes write them is NDB's
			// config (BackupDataDir; every data node takes part).
			if b.Dir != "" {
				at(bp+".dir", "not for method ndb: each data node writes its backup files into its own BackupDataDir (the agent's server.ndb_data_node.backup_data_dir)")
			}
			if b.Node != "" {
				at(bp+".node", "not for method ndb: every data node takes part in a native backup")
			}
			if b.Desync {
				at(bp+".desync", "not for method ndb: desync is a Galera setting")
			}
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
		if b.Method != "ndb" && !filepath.IsAbs(b.Dir) {
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

// checkDrill refuses a drill target the drill cannot crash or repair: the
// crash is a kill -9 through each node's agent, and the repair is the
// remediator's (auto), so a drill never leaves an outage nobody repairs.
func checkDrill(cl *Cluster, p string, at func(path, format string, args ...any)) {
	if !cl.Drill.Allowed {
		return
	}
	if cl.Kind != nines.KindGalera && cl.Kind != nines.KindReplication {
		at(p+".drill.allowed", "drills run on galera and replication clusters only so far, not on kind %s", cl.Kind)
	}
	if cl.Remediation.Mode != "auto" {
		at(p+".drill.allowed", "needs remediation.mode auto (it is %q): a drill whose crash nobody repairs is an outage", cl.Remediation.Mode)
	}
	for j, n := range cl.Nodes {
		if n.Agent == "" {
			at(fmt.Sprintf("%s.nodes[%d].agent", p, j), "required on a drill target: node %s is crashed through its agent", n.Address)
		}
	}
}

// checkAutoAgents refuses remediation.mode auto on a Galera cluster with a
// node that has no agent: nines could neither read nor act on that node,
// and a bootstrap decided without it could split the brain or drop its
// transactions.
func checkAutoAgents(cl *Cluster, p string, at func(path, format string, args ...any)) {
	if cl.Kind != nines.KindGalera || cl.Remediation.Mode != "auto" {
		return
	}
	for j, n := range cl.Nodes {
		if n.Agent == "" {
			at(fmt.Sprintf("%s.nodes[%d]", p, j), "node %s has no agent, but %s.remediation.mode is auto: automatic Galera recovery must read every node (one it cannot read may be Primary); add agent: https://HOST:9105 to the node, or set remediation.mode: dry-run", n.Address, p)
		}
	}
}

// checkGossip checks alertmanager.cluster as written.
func checkGossip(am Alertmanager, at func(path, format string, args ...any)) {
	const p = "alertmanager.cluster"
	cl := am.Cluster
	if am.Embedded == "" {
		at(p, "needs alertmanager.embedded: only the embedded Alertmanager gossips (an external cluster is configured on its own)")
	}
	addrs := map[string]string{"listen": cl.Listen}
	if cl.Listen == "" {
		at(p+".listen", "required, host:port")
	}
	if cl.Advertise != "" {
		addrs["advertise"] = cl.Advertise
	}
	for i, peer := range cl.Peers {
		addrs[fmt.Sprintf("peers[%d]", i)] = peer
	}
	allLoopback := true
	for field, a := range addrs {
		if a == "" {
			continue
		}
		host, _, err := net.SplitHostPort(a)
		if err != nil || checkHostPort(a) != nil {
			at(p+"."+field, "bad address %q: want host:port", a)
			continue
		}
		if ip := net.ParseIP(host); host != "localhost" && (ip == nil || !ip.IsLoopback()) {
			allLoopback = false
		}
	}
	if cl.PeerTimeout.Duration < 0 {
		at(p+".peer_timeout", "must not be negative")
	}
	if cl.TLS == nil {
		if !allLoopback {
			at(p+".tls", "required: the gossip carries silences and alert state across the network; set cert_file, key_file and ca_file (mutual TLS)")
		}
		return
	}
	for field, f := range map[string]string{"cert_file": cl.TLS.CertFile, "key_file": cl.TLS.KeyFile, "ca_file": cl.TLS.CAFile} {
		if f == "" {
			at(p+".tls."+field, "required when tls is set")
		}
	}
}
