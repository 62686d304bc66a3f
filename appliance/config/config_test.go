package config

import (
	"crypto/tls"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nines-project/nines/internal/testpki"
)

// writeConfig writes body as nines.yaml beside a readable password file
// and token file, and returns the config's path.
func writeConfig(t *testing.T, body string) string {
	t.Helper()
	dir := t.TempDir()
	for name, content := range map[string]string{"db.pass": "secret-db-password\n", "api-token": "0123456789abcdef0123456789abcdef\n"} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	p := filepath.Join(dir, "nines.yaml")
	if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

const good = `listen: 127.0.0.1:9104
data_dir: data
api:
  tokens:
    - {name: ops, role: admin, token_file: api-token}
scrape:
  interval: 1s
clusters:
  - name: billing
    kind: galera
    nodes:
      - {address: "127.0.0.1:3306"}
      - {address: "127.0.0.1:3307"}
    credentials: {user: nines, password_file: db.pass}
`

func TestLoadGood(t *testing.T) {
	p := writeConfig(t, good)
	cfg, err := Load(p)
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	if got, want := cfg.DataDir, filepath.Join(filepath.Dir(p), "data"); got != want {
		t.Errorf("data_dir = %q, want %q (relative to the config file)", got, want)
	}
	if cfg.Scrape.Interval.Duration != time.Second || cfg.Scrape.Timeout.Duration != 800*time.Millisecond {
		t.Errorf("scrape = %v/%v, want 1s/800ms", cfg.Scrape.Interval, cfg.Scrape.Timeout)
	}
	if cfg.Retention.Duration != 30*24*time.Hour {
		t.Errorf("retention = %v, want 30d", cfg.Retention)
	}
	if got := cfg.Clusters[0].Credentials.Password.Reveal(); got != "secret-db-password" {
		t.Errorf("password = %q", got)
	}
	if got := cfg.API.Tokens[0].Value.Reveal(); got != "0123456789abcdef0123456789abcdef" {
		t.Errorf("token = %q", got)
	}
}

// TestSecretsNeverPrint guards the rule that secrets never reach logs.
func TestSecretsNeverPrint(t *testing.T) {
	cfg, err := Load(writeConfig(t, good))
	if err != nil {
		t.Fatal(err)
	}
	for _, format := range []string{"%v", "%+v", "%#v", "%s"} {
		out := strings.Join([]string{
			sprintf(format, cfg.Clusters[0].Credentials),
			sprintf(format, cfg.API.Tokens),
			sprintf(format, *cfg),
		}, " ")
		if strings.Contains(out, "secret-db-password") || strings.Contains(out, "0123456789abcdef") {
			t.Errorf("format %s leaks a secret: %s", format, out)
		}
	}
}

func TestLoadRejects(t *testing.T) {
	tests := []struct {
		name  string
		edit  func(string) string
		line  int
		field string
		msg   string
	}{
		{"token without a role", func(s string) string {
			return strings.Replace(s, "role: admin, ", "", 1)
		}, 5, "api.tokens[0].role", "missing; give each token one of read, webhook, operate, admin"},
		{"token with an unknown role", func(s string) string {
			return strings.Replace(s, "role: admin", "role: root", 1)
		}, 5, "api.tokens[0].role", `"root" is not one of read, webhook, operate, admin`},
		{"unknown field", func(s string) string {
			return strings.Replace(s, "    kind: galera\n", "    kind: galera\n    colour: blue\n", 1)
		}, 11, "clusters[0].colour", `unknown field "colour"`},
		{"auto remediation with a Galera node without an agent", func(s string) string {
			return strings.Replace(s, `      - {address: "127.0.0.1:3307"}`, `      - {address: "127.0.0.1:3307", agent: "http://127.0.0.1:9105"}`, 1) + "    remediation: {mode: auto}\n"
		}, 12, "clusters[0].nodes[0]", "node 127.0.0.1:3306 has no agent, but clusters[0].remediation.mode is auto"},
		{"DR replica with a bad address", func(s string) string {
			return s + "    dr_replicas: [{address: \"dr1\"}]\n"
		}, 15, "clusters[0].dr_replicas[0].address", "bad address"},
		{"DR replica that is also a node", func(s string) string {
			return s + "    dr_replicas: [{address: \"127.0.0.1:3306\"}]\n"
		}, 15, "clusters[0].dr_replicas[0].address", `"127.0.0.1:3306" is already a node of clusters[0].nodes[0]`},
		{"DR replica of a replication cluster", func(s string) string {
			return strings.Replace(s, "kind: galera", "kind: replication", 1) + "    dr_replicas: [{address: \"127.0.0.1:3390\"}]\n"
		}, 15, "clusters[0].dr_replicas", "DR replicas are for galera clusters"},
		{"DR replica without an agent under auto remediation", func(s string) string {
			s = strings.Replace(s, `      - {address: "127.0.0.1:3306"}`, `      - {address: "127.0.0.1:3306", agent: "http://127.0.0.1:9105"}`, 1)
			s = strings.Replace(s, `      - {address: "127.0.0.1:3307"}`, `      - {address: "127.0.0.1:3307", agent: "http://127.0.0.1:9106"}`, 1)
			return s + "    agent_token_file: api-token\n    remediation: {mode: auto}\n    dr_replicas: [{address: \"127.0.0.1:3390\"}]\n"
		}, 17, "clusters[0].dr_replicas[0].agent", "required with remediation.mode auto"},
		{"bad position_wait", func(s string) string {
			return s + "    remediation: {position_wait: 0s}\n"
		}, 15, "clusters[0].remediation.position_wait", "must be positive"},
		{"bad node address", func(s string) string {
			return strings.Replace(s, `"127.0.0.1:3307"`, `"db2"`, 1)
		}, 13, "clusters[0].nodes[1].address", "bad address"},
		{"bad port", func(s string) string {
			return strings.Replace(s, `"127.0.0.1:3307"`, `"db2:99999"`, 1)
		}, 13, "clusters[0].nodes[1].address", "port"},
		{"bad listen", func(s string) string {
			return strings.Replace(s, "listen: 127.0.0.1:9104", "listen: nowhere", 1)
		}, 1, "listen", "bad address"},
		{"missing credentials user", func(s string) string {
			return strings.Replace(s, "{user: nines, password_file: db.pass}", "{password_file: db.pass}", 1)
		}, 14, "clusters[0].credentials.user", "missing credentials"},
		{"missing password", func(s string) string {
			return strings.Replace(s, "{user: nines, password_file: db.pass}", "{user: nines}", 1)
		}, 14, "clusters[0].credentials.password_file", "missing credentials"},
		{"duplicate cluster", func(s string) string {
			return s + "  - name: billing\n    kind: galera\n    nodes: [{address: \"127.0.0.1:3400\"}]\n    credentials: {user: nines, password_file: db.pass}\n"
		}, 15, "clusters[1].name", `duplicate cluster name "billing"`},
		{"bad interval", func(s string) string {
			return strings.Replace(s, "interval: 1s", "interval: often", 1)
		}, 7, "scrape.interval", `invalid duration "often"`},
		{"negative interval", func(s string) string {
			return strings.Replace(s, "interval: 1s", "interval: -1s", 1)
		}, 7, "scrape.interval", "must be positive"},
		{"bad probe_source", func(s string) string {
			return s + "probe_source: \"nines a\"\n"
		}, 15, "probe_source", "use at most 64 letters"},
		{"negative alert_for", func(s string) string {
			return s + "alert_for: {ConfigDrift: -1m}\n"
		}, 15, "alert_for.ConfigDrift", "must not be negative"},
		{"timeout longer than interval", func(s string) string {
			return strings.Replace(s, "interval: 1s", "interval: 1s\n  timeout: 2s", 1)
		}, 8, "scrape.timeout", "longer than scrape.interval"},
		{"unreadable password file", func(s string) string {
			return strings.Replace(s, "password_file: db.pass", "password_file: /nonexistent/db.pass", 1)
		}, 14, "clusters[0].credentials.password_file", `cannot read "/nonexistent/db.pass"`},
		{"bad kind", func(s string) string {
			return strings.Replace(s, "kind: galera", "kind: oracle", 1)
		}, 10, "clusters[0].kind", `"oracle" is not one of`},
		{"no tokens", func(s string) string {
			return strings.Replace(s, "    - {name: ops, role: admin, token_file: api-token}\n", "", 1)
		}, 4, "api.tokens", "at least one API token"},
		{"duplicate node", func(s string) string {
			return strings.Replace(s, `"127.0.0.1:3307"`, `"127.0.0.1:3306"`, 1)
		}, 13, "clusters[0].nodes[1].address", "already a node"},
		{"slo target out of range", func(s string) string {
			return strings.Replace(s, "    kind: galera\n", "    kind: galera\n    slo: {target: 100}\n", 1)
		}, 11, "clusters[0].slo.target", "not a percentage"},
		{"bad probe endpoint", func(s string) string {
			return strings.Replace(s, "    kind: galera\n", "    kind: galera\n    probe: {endpoints: [proxy]}\n", 1)
		}, 11, "clusters[0].probe.endpoints[0]", "bad address"},
		{"haproxy socket relative", func(s string) string {
			return strings.Replace(s, "    kind: galera\n", "    kind: galera\n    haproxy: {stats_socket: haproxy.sock, writer_backend: w, reader_backend: r}\n", 1)
		}, 11, "clusters[0].haproxy.stats_socket", "want the absolute path"},
		{"haproxy writer backend missing", func(s string) string {
			return strings.Replace(s, "    kind: galera\n", "    kind: galera\n    haproxy: {stats_socket: /run/h.sock, reader_backend: r}\n", 1)
		}, 11, "clusters[0].haproxy.writer_backend", "want the name of a backend"},
		{"haproxy reader backend is the writer", func(s string) string {
			return strings.Replace(s, "    kind: galera\n", "    kind: galera\n    haproxy: {stats_socket: /run/h.sock, writer_backend: w, reader_backend: w}\n", 1)
		}, 11, "clusters[0].haproxy.reader_backend", "the writer backend too"},
		{"rule file pattern matches nothing", func(s string) string {
			return s + "rule_files: [rules/*.yml]\n"
		}, 15, "rule_files[0]", "matches no file"},
		{"alertmanager both", func(s string) string {
			return s + "alertmanager: {embedded: db.pass, urls: [\"http://am:9093\"]}\n"
		}, 15, "alertmanager", "either embedded or urls"},
		{"alertmanager bad url", func(s string) string {
			return s + "alertmanager:\n  urls: [\"am:9093\"]\n"
		}, 16, "alertmanager.urls[0]", "bad URL"},
		{"alertmanager missing file", func(s string) string {
			return s + "alertmanager: {embedded: am.yml}\n"
		}, 15, "alertmanager.embedded", "cannot read"},
		{"agent without token", func(s string) string {
			return strings.Replace(s, `"127.0.0.1:3307"}`, `"127.0.0.1:3307", agent: "http://127.0.0.1:9105"}`, 1)
		}, 9, "clusters[0].agent_token_file", "required when a node names an agent"},
		{"agent token unreadable", func(s string) string {
			return strings.Replace(s, "    kind: galera\n", "    kind: galera\n    agent_token_file: nope\n", 1)
		}, 11, "clusters[0].agent_token_file", `cannot read "nope"`},
		{"bad agent URL", func(s string) string {
			return strings.Replace(s, `"127.0.0.1:3307"}`, `"127.0.0.1:3307", agent: "db2:9105"}`, 1)
		}, 13, "clusters[0].nodes[1].agent", "bad agent URL"},
		{"database tls without a CA", func(s string) string {
			return strings.Replace(s, "password_file: db.pass}", "password_file: db.pass, tls: {server_name: db1}}", 1)
		}, 14, "clusters[0].credentials.tls.ca_file", "missing"},
		{"database tls CA is not PEM", func(s string) string {
			return strings.Replace(s, "password_file: db.pass}", "password_file: db.pass, tls: {ca_file: db.pass}}", 1)
		}, 14, "clusters[0].credentials.tls", "no PEM certificate"},
		{"database tls CA missing", func(s string) string {
			return strings.Replace(s, "password_file: db.pass}", "password_file: db.pass, tls: {ca_file: ca.pem}}", 1)
		}, 14, "clusters[0].credentials.tls", "no such file"},
		{"database tls cert without key", func(s string) string {
			return strings.Replace(s, "password_file: db.pass}", "password_file: db.pass, tls: {ca_file: ca.pem, cert_file: c.pem}}", 1)
		}, 14, "clusters[0].credentials.tls", "go together"},
		{"agent over http to another host", func(s string) string {
			s = strings.Replace(s, "    kind: galera\n", "    kind: galera\n    agent_token_file: api-token\n", 1)
			return strings.Replace(s, `"127.0.0.1:3307"}`, `"127.0.0.1:3307", agent: "http://10.0.0.12:9105"}`, 1)
		}, 14, "clusters[0].nodes[1].agent", "or insecure: true on the node"},
		{"agent CA unreadable", func(s string) string {
			return strings.Replace(s, "    kind: galera\n", "    kind: galera\n    agent_ca_file: nope.pem\n", 1)
		}, 11, "clusters[0].agent_ca_file", "cannot read"},
		{"agent CA not PEM", func(s string) string {
			return strings.Replace(s, "    kind: galera\n", "    kind: galera\n    agent_ca_file: api-token\n", 1)
		}, 11, "clusters[0].agent_ca_file", "holds no PEM certificate"},
		{"agent key without cert", func(s string) string {
			return strings.Replace(s, "    kind: galera\n", "    kind: galera\n    agent_key_file: api-token\n", 1)
		}, 9, "clusters[0].agent_cert_file", "required with agent_key_file"},
		{"drill target without auto remediation", func(s string) string {
			return strings.Replace(s, "    kind: galera\n", "    kind: galera\n    drill: {allowed: true}\n", 1)
		}, 11, "clusters[0].drill.allowed", "needs remediation.mode auto"},
		{"drill target node without an agent", func(s string) string {
			return strings.Replace(s, "    kind: galera\n", "    kind: galera\n    drill: {allowed: true}\n", 1)
		}, 13, "clusters[0].nodes[0].agent", "required on a drill target"},
		{"drill on an ndb cluster", func(s string) string {
			return strings.Replace(s, "    kind: galera\n", "    kind: ndb\n    drill: {allowed: true}\n", 1)
		}, 11, "clusters[0].drill.allowed", "galera and replication clusters only"},
		{"retention too short", func(s string) string {
			return strings.Replace(s, "data_dir: data", "data_dir: data\nretention: 1h", 1)
		}, 3, "retention", "at least 1d"},
		// The YAML parser reports where it noticed the problem; any line will do.
		{"not yaml", func(s string) string { return s + "  - [unclosed\n" }, -1, "", "did not find expected"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := writeConfig(t, tt.edit(good))
			_, err := Load(p)
			var errs *Errors
			if !errors.As(err, &errs) {
				t.Fatalf("Load = %v, want *Errors", err)
			}
			var fe FieldError
			for _, e := range errs.List {
				if (e.Line == tt.line || tt.line < 0 && e.Line > 0) && e.Field == tt.field && strings.Contains(e.Msg, tt.msg) {
					fe = e
				}
			}
			if fe.File == "" {
				t.Fatalf("no error at line %d field %q containing %q; got:\n%v", tt.line, tt.field, tt.msg, err)
			}
			if want := p + ":"; !strings.HasPrefix(fe.Error(), want) {
				t.Errorf("error %q does not start with %q", fe.Error(), want)
			}
		})
	}
}

func TestLoadAgentToken(t *testing.T) {
	body := strings.Replace(good, `"127.0.0.1:3307"}`, `"127.0.0.1:3307", agent: "http://127.0.0.1:9105"}`, 1)
	body = strings.Replace(body, "    kind: galera\n", "    kind: galera\n    agent_token_file: api-token\n", 1)
	cfg, err := Load(writeConfig(t, body))
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	cl := cfg.Clusters[0]
	if got := cl.AgentToken.Reveal(); got != "0123456789abcdef0123456789abcdef" {
		t.Errorf("agent token = %q", got)
	}
	if cl.Nodes[1].Agent != "http://127.0.0.1:9105" || cl.Domain().Nodes[1].Agent != "http://127.0.0.1:9105" {
		t.Errorf("agent URL = %q", cl.Nodes[1].Agent)
	}
	if out := sprintf("%+v", cl); strings.Contains(out, "0123456789abcdef") {
		t.Errorf("cluster prints its agent token: %s", out)
	}

	t.Setenv("NINES_TEST_AGENT_TOKEN", "short")
	_, err = Load(writeConfig(t, strings.Replace(body, "agent_token_file: api-token", "agent_token_env: NINES_TEST_AGENT_TOKEN", 1)))
	if err == nil || !strings.Contains(err.Error(), "clusters[0].agent_token_env: token is 5 characters") {
		t.Errorf("short agent token: %v", err)
	}
}

func TestAgentTransport(t *testing.T) {
	body := strings.Replace(good, "    kind: galera\n", "    kind: galera\n    agent_token_file: api-token\n", 1)
	insecure := strings.Replace(body, `"127.0.0.1:3307"}`, `"127.0.0.1:3307", agent: "http://10.0.0.12:9105", insecure: true}`, 1)
	cfg, err := Load(writeConfig(t, insecure))
	if err != nil {
		t.Fatalf("insecure: true: %v", err)
	}
	if tc := cfg.Clusters[0].AgentTLS; tc == nil || tc.MinVersion != tls.VersionTLS12 || tc.RootCAs != nil {
		t.Errorf("default agent TLS: %+v", tc)
	}
	for _, u := range []string{"http://localhost:9105", "http://[::1]:9105", "https://10.0.0.12:9105"} {
		if _, err := Load(writeConfig(t, strings.Replace(body, `"127.0.0.1:3307"}`, `"127.0.0.1:3307", agent: "`+u+`"}`, 1))); err != nil {
			t.Errorf("agent %s: %v", u, err)
		}
	}
	// A private CA and a client certificate.
	p := writeConfig(t, strings.Replace(body, "    kind: galera\n",
		"    kind: galera\n    agent_ca_file: ca.pem\n    agent_cert_file: client.pem\n    agent_key_file: client.key\n", 1))
	ca := testpki.NewCA(t, "agents CA")
	client := ca.Client(t, "appliance")
	testpki.Write(t, filepath.Join(filepath.Dir(p), "ca.pem"), ca.PEM())
	testpki.Write(t, filepath.Join(filepath.Dir(p), "client.pem"), client.CertPEM)
	testpki.Write(t, filepath.Join(filepath.Dir(p), "client.key"), client.KeyPEM)
	cfg, err = Load(p)
	if err != nil {
		t.Fatal(err)
	}
	if tc := cfg.Clusters[0].AgentTLS; tc.RootCAs == nil || len(tc.Certificates) != 1 {
		t.Errorf("agent TLS with CA and client certificate: %+v", tc)
	}
	if cfg.Clusters[0].Credentials.TLSConfig != nil {
		t.Error("database TLS without credentials.tls")
	}
}

func TestAllProblemsAtOnce(t *testing.T) {
	body := strings.Replace(good, "interval: 1s", "interval: often", 1)
	body = strings.Replace(body, `"127.0.0.1:3307"`, `"db2"`, 1)
	body = strings.Replace(body, "password_file: db.pass", "password_file: nope.pass", 1)
	_, err := Load(writeConfig(t, body))
	var errs *Errors
	if !errors.As(err, &errs) {
		t.Fatalf("Load = %v", err)
	}
	// The YAML type error stops semantic checks, so only it is reported;
	// fix it and the rest appear together.
	if len(errs.List) != 1 {
		t.Fatalf("want 1 error before semantic checks, got %v", err)
	}
	body = strings.Replace(body, "interval: often", "interval: 1s", 1)
	_, err = Load(writeConfig(t, body))
	if !errors.As(err, &errs) || len(errs.List) != 2 {
		t.Fatalf("want 2 errors (address, password file), got %v", err)
	}
}

func TestParseDuration(t *testing.T) {
	for in, want := range map[string]time.Duration{"1s": time.Second, "500ms": 500 * time.Millisecond, "30d": 30 * 24 * time.Hour, "2w": 14 * 24 * time.Hour, "1.5d": 36 * time.Hour} {
		got, err := ParseDuration(in)
		if err != nil || got != want {
			t.Errorf("ParseDuration(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, in := range []string{"", "d", "xd", "1y", "often"} {
		if _, err := ParseDuration(in); err == nil {
			t.Errorf("ParseDuration(%q) succeeded", in)
		}
	}
}

func FuzzParse(f *testing.F) {
	f.Add([]byte(good))
	f.Add([]byte("clusters: [{name: a, nodes: [{address: x}]}]"))
	f.Add([]byte("listen: [\n"))
	f.Add([]byte(good + "remote_write:\n  - {name: vm, url: \"https://u:p@vm:8428/api/v1/write\", tls: {ca_file: x}, queue_max_bytes: 67108864}\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		cfg, err := Parse("fuzz.yaml", b)
		if err == nil && cfg == nil {
			t.Fatal("nil config without error")
		}
		if err != nil && !strings.HasPrefix(err.Error(), "fuzz.yaml") {
			t.Fatalf("error does not name the file: %v", err)
		}
	})
}

// withBackups is good with agents on both nodes and the backups given.
func withBackups(backups string) string {
	body := strings.Replace(good, `{address: "127.0.0.1:3306"}`, `{address: "127.0.0.1:3306", agent: "http://127.0.0.1:9105"}`, 1)
	body = strings.Replace(body, `{address: "127.0.0.1:3307"}`, `{address: "127.0.0.1:3307", agent: "http://127.0.0.1:9106"}`, 1)
	return body + "    agent_token_file: api-token\n    backups:\n" + backups
}

func TestLoadBackups(t *testing.T) {
	cfg, err := Load(writeConfig(t, withBackups(`      - {method: mariabackup, schedule: "0 3 * * *", keep: 7, verify: true}
      - {method: dump, schedule: "@daily", keep: 2, max_age: 14d, dir: /srv/dumps, node: "127.0.0.1:3307", desync: true}
`)))
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	bs := cfg.Clusters[0].Backups
	if len(bs) != 2 {
		t.Fatalf("backups = %+v", bs)
	}
	if b := bs[0]; b.Method != "mariabackup" || b.Keep != 7 || !b.Verify || b.Dir != DefaultBackupDir || b.Node != "" || b.MaxAge.Duration != 0 {
		t.Errorf("backups[0] = %+v (dir defaults to %s)", b, DefaultBackupDir)
	}
	if b := bs[1]; b.Schedule != "@daily" || b.MaxAge.Duration != 14*24*time.Hour || b.Dir != "/srv/dumps" || b.Node != "127.0.0.1:3307" || !b.Desync {
		t.Errorf("backups[1] = %+v", b)
	}
}

func TestLoadRejectsBackups(t *testing.T) {
	// The backups list starts on line 17 of withBackups' body.
	tests := []struct {
		name  string
		body  string
		line  int
		field string
		msg   string
	}{
		{"bad cron", withBackups(`      - {method: mariabackup, schedule: "0 3 * *", keep: 7}` + "\n"),
			17, "clusters[0].backups[0].schedule", `bad cron expression "0 3 * *": expected exactly 5 fields`},
		{"cron out of range", withBackups(`      - {method: mariabackup, schedule: "0 25 * * *", keep: 7}` + "\n"),
			17, "clusters[0].backups[0].schedule", "end of range (25) above maximum (23)"},
		{"no schedule", withBackups("      - {method: mariabackup, keep: 7}\n"),
			17, "clusters[0].backups[0].schedule", "required"},
		{"keep zero", withBackups(`      - {method: dump, schedule: "@daily"}` + "\n"),
			17, "clusters[0].backups[0].keep", "must be at least 1"},
		{"bad method", withBackups(`      - {method: tar, schedule: "@daily", keep: 1}` + "\n"),
			17, "clusters[0].backups[0].method", `"tar" is not one of mariabackup, dump`},
		{"method twice", withBackups(`      - {method: dump, schedule: "@daily", keep: 1}` + "\n" + `      - {method: dump, schedule: "@hourly", keep: 1}` + "\n"),
			18, "clusters[0].backups[1].method", "one schedule per method"},
		{"native backup of a galera cluster", withBackups(`      - {method: ndb, schedule: "@daily", keep: 1}` + "\n"),
			17, "clusters[0].backups[0].method", `"ndb" is the native backup of ndb clusters; this cluster is kind galera`},
		{"relative dir", withBackups(`      - {method: dump, schedule: "@daily", keep: 1, dir: backups}` + "\n"),
			17, "clusters[0].backups[0].dir", "not an absolute path"},
		{"node not in cluster", withBackups(`      - {method: dump, schedule: "@daily", keep: 1, node: "db9:3306"}` + "\n"),
			17, "clusters[0].backups[0].node", `"db9:3306" is not a node of cluster billing`},
		{"bad max_age", withBackups("      - method: dump\n        schedule: \"@daily\"\n        keep: 1\n        max_age: forever\n"),
			20, "clusters[0].backups[0].max_age", `invalid duration "forever"`},
		{"no agents", good + "    backups:\n" + `      - {method: dump, schedule: "@daily", keep: 1}` + "\n",
			15, "clusters[0].backups", "need the nodes' agents"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := writeConfig(t, tt.body)
			_, err := Load(p)
			var errs *Errors
			if !errors.As(err, &errs) {
				t.Fatalf("Load = %v, want *Errors", err)
			}
			for _, e := range errs.List {
				if e.Line == tt.line && e.Field == tt.field && strings.Contains(e.Msg, tt.msg) {
					if want := p + ":"; !strings.HasPrefix(e.Error(), want) {
						t.Errorf("error %q does not start with %q", e.Error(), want)
					}
					return
				}
			}
			t.Fatalf("no error at line %d field %q containing %q; got:\n%v", tt.line, tt.field, tt.msg, err)
		})
	}
}

// credentials.tls.ca_file is read relative to the config file into the
// tls.Config the exporter and the probe use.
func TestLoadDatabaseTLS(t *testing.T) {
	body := strings.Replace(good, "password_file: db.pass}", "password_file: db.pass, tls: {ca_file: certs/ca.pem, server_name: db.internal}}", 1)
	p := writeConfig(t, body)
	if err := os.MkdirAll(filepath.Join(filepath.Dir(p), "certs"), 0o755); err != nil {
		t.Fatal(err)
	}
	testpki.Write(t, filepath.Join(filepath.Dir(p), "certs", "ca.pem"), testpki.NewCA(t, "db CA").PEM())
	cfg, err := Load(p)
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	tc := cfg.Clusters[0].Credentials.TLSConfig
	if tc == nil || tc.RootCAs == nil || tc.ServerName != "db.internal" {
		t.Fatalf("TLSConfig = %+v, want the CA's pool and server name db.internal", tc)
	}
}

// TestAutoWithEveryAgent: auto is fine once every Galera node has an
// agent; dry-run never needs one.
func TestAutoWithEveryAgent(t *testing.T) {
	withAgents := strings.NewReplacer(`{address: "127.0.0.1:3306"}`, `{address: "127.0.0.1:3306", agent: "http://127.0.0.1:9105"}`,
		`{address: "127.0.0.1:3307"}`, `{address: "127.0.0.1:3307", agent: "http://127.0.0.1:9106"}`).Replace(good)
	cfg, err := Load(writeConfig(t, withAgents+"    agent_token_file: api-token\n    remediation: {mode: auto, position_wait: 45s}\n"))
	if err != nil {
		t.Fatal(err)
	}
	if got := cfg.Clusters[0].Remediation.PositionWait.Duration; got != 45*time.Second {
		t.Errorf("position_wait %v", got)
	}
	cfg, err = Load(writeConfig(t, good+"    remediation: {mode: dry-run}\n"))
	if err != nil {
		t.Fatal(err)
	}
	if got := cfg.Clusters[0].Remediation.PositionWait.Duration; got != DefaultPositionWait {
		t.Errorf("default position_wait %v", got)
	}
}
