package sandbox

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/nines-project/nines"
)

// Sizes of generated secrets, in random bytes (hex doubles them).
const (
	passwordBytes = 16
	tokenBytes    = 32
)

// MonitorUser is the SQL account the appliance reads status and runs its
// write probe with.
const MonitorUser = "nines"

// ensureSecret returns the hex secret in path, creating it (0600) with
// fresh random bytes if the file does not exist. Reusing an existing file
// keeps a start that was interrupted before the accounts were created
// consistent with the files the appliance will read.
func ensureSecret(path string, n int) (string, error) {
	b, err := os.ReadFile(path)
	if err == nil {
		v := strings.TrimSpace(string(b))
		if !isHex(v) || len(v) < 2*n {
			return "", fmt.Errorf("secret file %q does not hold %d hex characters; remove it to have a new one made", path, 2*n)
		}
		return v, nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return "", fmt.Errorf("read secret: %w", err)
	}
	buf := make([]byte, n)
	_, _ = rand.Read(buf) // never fails since Go 1.24
	v := hex.EncodeToString(buf)
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return "", fmt.Errorf("create secret: %w", err)
	}
	_, err = f.WriteString(v + "\n")
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return "", fmt.Errorf("write secret %q: %w", path, err)
	}
	return v, nil
}

var hexRE = regexp.MustCompile(`^[0-9a-f]+$`)

// isHex guards every secret that is spliced into SQL: account statements
// cannot take placeholders, so only hex ever reaches them.
func isHex(s string) bool { return hexRE.MatchString(s) }

// provision creates, once per sandbox, the monitoring account and its
// schema on the first node (Galera and replication carry them to the
// others), and for replication the replication account. The monitoring
// grants are what the exporter needs to read status, variables and replica
// status (SLAVE MONITOR, which REPLICA MONITOR is another name for since
// MariaDB 10.5.9), plus all rights on schema nines for the write probe.
func (s *Sandbox) provision(ctx context.Context) error {
	pass, err := ensureSecret(s.PasswordPath(), passwordBytes)
	if err != nil {
		return fmt.Errorf("provision: %w", err)
	}
	for _, p := range []string{s.TokenPath(), s.WebhookTokenPath(), s.ReadTokenPath()} {
		if _, err := ensureSecret(p, tokenBytes); err != nil {
			return fmt.Errorf("provision: %w", err)
		}
	}
	m := s.snapshot()
	if m.Provisioned {
		return nil
	}
	stmts := []string{"CREATE DATABASE IF NOT EXISTS " + MonitorUser}
	hosts := []string{"127.0.0.1", "localhost"}
	if m.Netns {
		// The appliance connects from the bridge address, replicas from
		// their own: both in the sandbox's /24.
		hosts = append(hosts, subnetHostPattern(m.Subnet))
	}
	for _, host := range hosts {
		acct := fmt.Sprintf("'%s'@'%s'", MonitorUser, host)
		stmts = append(stmts,
			// OR REPLACE: a start interrupted after this point repeats it
			// with the same password file.
			"CREATE OR REPLACE USER "+acct+" IDENTIFIED VIA mysql_native_password USING PASSWORD('"+pass+"')",
			"GRANT PROCESS, BINLOG MONITOR, SLAVE MONITOR ON *.* TO "+acct,
			"GRANT SELECT ON performance_schema.* TO "+acct,
			"GRANT ALL ON "+MonitorUser+".* TO "+acct,
		)
		if m.Kind == nines.KindNDB {
			// The ndbinfo collectors, as the config's kind ndb asks of
			// the monitoring account on a real SQL node.
			stmts = append(stmts, "GRANT SELECT ON ndbinfo.* TO "+acct)
		}
	}
	// A Galera sandbox with a DR replica needs the account too: created on
	// n1, Galera carries it to every node the replica may follow.
	if m.Kind == nines.KindReplication || len(m.DRReplicas) > 0 {
		rpass, err := ensureSecret(s.replPasswordPath(), passwordBytes)
		if err != nil {
			return fmt.Errorf("provision: %w", err)
		}
		replHost := "127.0.0.1"
		if m.Netns {
			replHost = subnetHostPattern(m.Subnet)
		}
		stmts = append(stmts,
			"CREATE OR REPLACE USER 'repl'@'"+replHost+"' IDENTIFIED BY '"+rpass+"'",
			"GRANT REPLICATION SLAVE, BINLOG MONITOR ON *.* TO 'repl'@'"+replHost+"'",
		)
	}
	first := m.Nodes[0]
	for _, n := range provisionTargets(m) {
		if err := execOn(ctx, n, "provision accounts", stmts); err != nil {
			return err
		}
	}
	s.mu.Lock()
	s.m.Provisioned = true
	s.mu.Unlock()
	if err := s.saveManifest(); err != nil {
		return fmt.Errorf("provision: %w", err)
	}
	s.logf("created SQL user %q and database %q on %s", MonitorUser, MonitorUser, first.Name)
	return nil
}

// execOn runs stmts on node n through its socket, within 30 s. An error
// names what was being done and the statement, cut before any password.
func execOn(ctx context.Context, n Node, what string, stmts []string) error {
	db, err := server(n).DB()
	if err != nil {
		return err
	}
	defer db.Close()
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	for _, q := range stmts {
		if _, err := db.ExecContext(ctx, q); err != nil {
			return fmt.Errorf("%s on %s: %s: %w", what, n.Name, strings.SplitN(q, " IDENTIFIED", 2)[0], err)
		}
	}
	return nil
}

// finish creates what the appliance and applications need once the
// servers run.
func (s *Sandbox) finish(ctx context.Context) error {
	if err := s.provision(ctx); err != nil {
		return err
	}
	if err := s.provisionApp(ctx); err != nil {
		return err
	}
	return s.writeApplianceFiles()
}

// The application account the sandbox creates, and its database.
const (
	AppUser     = "app"
	AppDatabase = "app"
)

// AppClientConfigPath is DIR/app-client.cnf, the application account's
// client option file: mariadb --defaults-extra-file=DIR/app-client.cnf
// -h HOST -P PORT (a node, or HAProxy's writer or reader).
func (s *Sandbox) AppClientConfigPath() string { return filepath.Join(s.dir, "app-client.cnf") }

// AppPasswordPath is the file holding the application account's password.
func (s *Sandbox) AppPasswordPath() string { return filepath.Join(s.dir, "app.pass") }

// provisionApp creates, once per sandbox, the account applications (and
// drills writing as an application would) use: `app` with SELECT,
// INSERT, UPDATE and DELETE on database app, over TCP from this host (and
// from the sandbox's /24 in a netns sandbox, where HAProxy's connections
// come from the bridge). Tables in app are created by an administrator.
// app-client.cnf is written at every start.
func (s *Sandbox) provisionApp(ctx context.Context) error {
	pass, err := ensureSecret(s.AppPasswordPath(), passwordBytes)
	if err != nil {
		return fmt.Errorf("provision: %w", err)
	}
	cnf := fmt.Sprintf("# The sandbox's application account; written by `nines sandbox`.\n"+
		"# mariadb --defaults-extra-file=%s -h 127.0.0.1 -P PORT %s\n[client]\nuser=%s\npassword=%s\n",
		s.AppClientConfigPath(), AppDatabase, AppUser, pass)
	if err := writeFileAtomic(s.AppClientConfigPath(), []byte(cnf), 0o600); err != nil {
		return fmt.Errorf("provision: %w", err)
	}
	m := s.snapshot()
	if m.AppProvisioned {
		return nil
	}
	stmts := []string{"CREATE DATABASE IF NOT EXISTS " + AppDatabase}
	hosts := []string{"127.0.0.1", "localhost"}
	if m.Netns {
		hosts = append(hosts, subnetHostPattern(m.Subnet))
	}
	for _, host := range hosts {
		acct := fmt.Sprintf("'%s'@'%s'", AppUser, host)
		stmts = append(stmts,
			"CREATE OR REPLACE USER "+acct+" IDENTIFIED BY '"+pass+"'",
			"GRANT SELECT, INSERT, UPDATE, DELETE ON "+AppDatabase+".* TO "+acct,
		)
	}
	for _, n := range provisionTargets(m) {
		if err := execOn(ctx, n, "provision the application account", stmts); err != nil {
			return err
		}
	}
	s.mu.Lock()
	s.m.AppProvisioned = true
	s.mu.Unlock()
	if err := s.saveManifest(); err != nil {
		return fmt.Errorf("provision: %w", err)
	}
	s.logf("created SQL user %q with SELECT, INSERT, UPDATE, DELETE on database %q (%s)", AppUser, AppDatabase, s.AppClientConfigPath())
	return nil
}

// writeApplianceFiles writes the appliance's data directory, nines.yaml
// and alertmanager.yml. The two files are generated: they are written again
// at every start so a newer nines brings its defaults (console users, safer
// inhibit rules), unless the operator edited one since the sandbox wrote it
// (its hash is kept in the manifest): an edited file is left alone. A file
// from a nines that kept no hash is kept beside the new one as <file>.old.
func (s *Sandbox) writeApplianceFiles() error {
	m := s.snapshot()
	if err := os.MkdirAll(filepath.Join(s.dir, "appliance"), 0o700); err != nil {
		return fmt.Errorf("create appliance data directory: %w", err)
	}
	s.mu.Lock()
	listenChanged := s.listenChanged
	s.listenChanged = false
	s.mu.Unlock()

	console, err := s.renderConsole()
	if err != nil {
		return err
	}
	files := []struct {
		path, content string
		perm          os.FileMode
	}{
		// 0600: the console's password hash is in it.
		{s.ConfigPath(), renderConfig(m, s.HAProxyConfigKeys()) + console, 0o600},
		// alertmanager.yml names the appliance's address for the
		// remediator's webhook, so it follows nines.yaml.
		{s.AlertmanagerConfigPath(), renderAlertmanagerConfig(m.Listen), 0o644},
	}
	generated := map[string]string{}
	for _, f := range files {
		name := filepath.Base(f.path)
		old, err := os.ReadFile(f.path)
		switch {
		case errors.Is(err, fs.ErrNotExist):
		case err != nil:
			return fmt.Errorf("read %s: %w", name, err)
		case m.Generated[name] == "":
			if err := writeFileAtomic(f.path+".old", old, f.perm); err != nil {
				return fmt.Errorf("keep %s: %w", name, err)
			}
			s.logf("%s was written by an older nines: regenerated, the old one kept as %s.old", name, name)
		case m.Generated[name] != digest(old) && !listenChanged:
			s.logf("%s was edited by hand: left as is", name)
			generated[name] = m.Generated[name]
			continue
		}
		if err := writeFileAtomic(f.path, []byte(f.content), f.perm); err != nil {
			return fmt.Errorf("write %s: %w", name, err)
		}
		generated[name] = digest([]byte(f.content))
	}
	s.mu.Lock()
	s.m.Generated = generated
	s.mu.Unlock()
	return s.saveManifest()
}

// digest identifies a generated file's content.
func digest(b []byte) string {
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// renderAlertmanagerConfig routes alerts that name a runbook to the
// appliance's remediator (nines heals the sandbox by itself) and every
// alert to a receiver with no integrations: alerts show in the embedded
// Alertmanager's API (amtool, the console) and go nowhere else until the
// operator adds a receiver. The remediator's route has no group_wait: each
// alert is its own group there (group_by '...'), so waiting batches
// nothing and only delays a failover; the 1 s group_interval is nines'
// rule for anything that may trigger a repair (the stock 30 s and 5 m
// would spend a month's budget). Its repeat_interval is 10 s: the
// notification log outlives a restart of the appliance, the remediator's
// memory does not, and an alert delivered just before a restart would
// otherwise reach the new remediator only an hour later (repeats never
// start a second job).
func renderAlertmanagerConfig(listen string) string {
	return fmt.Sprintf(`# Alertmanager configuration of the sandbox's embedded Alertmanager.
# Add receivers (email, Slack, PagerDuty, webhook) and routes as usual.
route:
  receiver: console
  group_by: [alertname, cluster]
  group_wait: 1s
  group_interval: 1s
  repeat_interval: 4h
  routes:
    - receiver: remediator
      matchers: ['remediation!=""']
      group_by: ['...']
      group_wait: 0s
      repeat_interval: 10s
      continue: true
    - receiver: console
receivers:
  - name: console
  - name: remediator
    webhook_configs:
      - url: http://%s/api/v1/alerts/webhook
        send_resolved: true
        http_config:
          authorization: {type: Bearer, credentials_file: webhook-token}
inhibit_rules:
  # Alerts that name a runbook are never inhibited: the remediator must hear
  # of them while a page fires.
  - source_matchers: [severity="critical"]
    target_matchers: [severity="warning", remediation=""]
    equal: [cluster]
`, listen)
}

// renderConfig is the appliance config for the sandbox. Paths are relative:
// the config loader resolves them against the file's directory, so the
// sandbox directory can be read from anywhere. more is added to the
// cluster's entry as it is.
func renderConfig(m manifest, more string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "listen: %s\n", yamlScalar(m.Listen))
	b.WriteString("data_dir: appliance\n")
	// The CLI, the demo's user and the tests use the admin token;
	// Alertmanager gets one that can only post to the webhook, Grafana
	// one that can only read.
	b.WriteString("api:\n  tokens:\n    - {name: sandbox, role: admin, token_file: api-token}\n    - {name: alertmanager, role: webhook, token_file: webhook-token}\n    - {name: grafana, role: read, token_file: read-token}\n")
	b.WriteString("clusters:\n")
	fmt.Fprintf(&b, "  - name: %s\n    kind: %s\n    nodes:\n", m.ClusterName, m.Kind)
	for _, n := range m.Nodes {
		if n.IP != "" {
			// Network namespaces: the agents speak plain HTTP across the
			// sandbox's own bridge on this machine (agent.yaml has
			// insecure too); production agents take https://.
			fmt.Fprintf(&b, "      - {address: %q, agent: %q, insecure: true}\n", n.Address(), n.AgentURL())
			continue
		}
		fmt.Fprintf(&b, "      - {address: %q, agent: %q}\n", n.Address(), n.AgentURL())
	}
	b.WriteString("    agent_token_file: agent-token\n")
	// The sandbox heals itself: that is what it is for.
	b.WriteString("    remediation: {mode: auto}\n")
	fmt.Fprintf(&b, "    credentials: {user: %s, password_file: nines.pass}\n", MonitorUser)
	if len(m.DRReplicas) > 0 {
		// Outside the cluster: scraped and repointed, never a member.
		b.WriteString("    dr_replicas:\n")
		for _, n := range m.DRReplicas {
			fmt.Fprintf(&b, "      - {address: %q, agent: %q}\n", n.Address(), n.AgentURL())
		}
	}
	if m.NDB != nil {
		b.WriteString(renderNDBConfig(*m.NDB))
	}
	b.WriteString(more)
	b.WriteString("alertmanager: {embedded: alertmanager.yml}\n")
	return b.String()
}

// HAProxyConfigKeys continues the cluster's entry of nines.yaml for a
// sandbox with HAProxy: the probe writes through HAProxy's writer, so the
// SLI counts what applications see, and the appliance reads HAProxy's
// stats (an absolute socket path: the key takes no relative one).
func (s *Sandbox) HAProxyConfigKeys() string {
	m := s.snapshot()
	if !m.HAProxy {
		return ""
	}
	return fmt.Sprintf("    probe: {endpoints: [%q]}\n    haproxy: {stats_socket: %q, writer_backend: %s-writer, reader_backend: %s-reader}\n",
		s.WriterAddress(), s.HAProxySocket(), m.ClusterName, m.ClusterName)
}

var plainYAML = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9.:_-]*$`)

// yamlScalar leaves host:port plain, as the documented format shows it,
// and quotes anything YAML could read as something else ("[::1]:9104").
func yamlScalar(s string) string {
	if plainYAML.MatchString(s) {
		return s
	}
	return strconv.Quote(s)
}

// provisionTargets are the servers accounts are created on: the first,
// which replication or Galera carries them from, or every SQL node of an
// NDB sandbox, whose servers share nothing.
func provisionTargets(m manifest) []Node {
	if m.Kind == nines.KindNDB {
		return m.Nodes
	}
	return m.Nodes[:1]
}
