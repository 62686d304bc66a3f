package haproxy

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// haproxyBin is Debian's haproxy, which scripts/install-deps.sh
// installs. Tests never skip without it: they fail naming the package.
const haproxyBin = "/usr/sbin/haproxy"

func requireHAProxy(t *testing.T) {
	t.Helper()
	if _, err := os.Stat(haproxyBin); err != nil {
		t.Fatalf("%v: install the Debian package haproxy (scripts/install-deps.sh does)", err)
	}
}

// section is one parsed section of a configuration: its header and its
// lines, comments dropped.
type section struct {
	header string
	lines  []string
}

func parse(text string) map[string]*section {
	out := map[string]*section{}
	var cur *section
	for _, l := range strings.Split(text, "\n") {
		if i := strings.Index(l, "#"); i >= 0 && !strings.Contains(l[:i], `"`) {
			l = l[:i]
		}
		if strings.TrimSpace(l) == "" {
			continue
		}
		if !strings.HasPrefix(l, " ") {
			cur = &section{header: strings.TrimSpace(l)}
			out[cur.header] = cur
			continue
		}
		cur.lines = append(cur.lines, strings.Join(strings.Fields(l), " "))
	}
	return out
}

// servers maps each server line's name to its words after the address.
func (s *section) servers() (names []string, opts map[string][]string, addrs map[string]string) {
	opts, addrs = map[string][]string{}, map[string]string{}
	for _, l := range s.lines {
		f := strings.Fields(l)
		if f[0] == "server" {
			names = append(names, f[1])
			addrs[f[1]] = f[2]
			opts[f[1]] = f[3:]
		}
	}
	return names, opts, addrs
}

func (s *section) has(line string) bool {
	for _, l := range s.lines {
		if l == line {
			return true
		}
	}
	return false
}

func has(words []string, w string) bool {
	for _, x := range words {
		if x == w {
			return true
		}
	}
	return false
}

func after(words []string, w string) string {
	for i, x := range words {
		if x == w && i+1 < len(words) {
			return words[i+1]
		}
	}
	return ""
}

const token = "0123456789abcdef0123456789abcdef"

func sandboxLike() Config {
	c := Config{Cluster: "billing", WriterBind: "127.0.0.1:3396", ReaderBind: "127.0.0.1:3397", Token: token,
		StatsSocket: "/run/haproxy/nines-billing.sock"}
	for i, n := range []string{"n1", "n2", "n3"} {
		c.Servers = append(c.Servers, Server{Name: n, Address: "127.0.0.1:" + []string{"3306", "3307", "3308"}[i],
			AgentHost: "127.0.0.1", AgentPort: 3506 + i})
	}
	return c
}

func TestRenderListeners(t *testing.T) {
	b, err := Render(sandboxLike())
	if err != nil {
		t.Fatal(err)
	}
	secs := parse(string(b))
	if g := secs["global"]; g == nil || !g.has("stats socket /run/haproxy/nines-billing.sock mode 600 level admin") {
		t.Errorf("no admin stats socket in global: %+v", g)
	}
	if d := secs["defaults"]; d == nil || !d.has("mode tcp") ||
		!d.has("default-server inter 500ms fall 2 rise 2 on-marked-down shutdown-sessions") || !d.has("timeout check 1s") {
		t.Errorf("defaults: %+v", d)
	}
	w, r := secs["listen billing-writer"], secs["listen billing-reader"]
	if w == nil || r == nil {
		t.Fatalf("want listeners billing-writer and billing-reader, got %v", secs)
	}
	if !w.has("bind 127.0.0.1:3396") || !r.has("bind 127.0.0.1:3397") {
		t.Errorf("binds: writer %v reader %v", w.lines, r.lines)
	}
	for _, l := range []struct {
		s    *section
		path string
	}{{w, WriterCheckPath}, {r, ReaderCheckPath}} {
		if !l.s.has("option httpchk") || !l.s.has(`http-check send meth GET uri `+l.path+` hdr Authorization "Bearer `+token+`"`) ||
			!l.s.has("http-check expect status 200") {
			t.Errorf("%s: checks: %v", l.s.header, l.s.lines)
		}
	}
	if !w.has("default-server inter 500ms fall 2 rise 2 on-marked-down shutdown-sessions on-marked-up shutdown-backup-sessions") {
		t.Errorf("writer does not close backup sessions when the writer comes back: %v", w.lines)
	}
	if !r.has("balance roundrobin") {
		t.Errorf("reader not roundrobin: %v", r.lines)
	}
	names, opts, addrs := w.servers()
	if strings.Join(names, " ") != "n1 n2 n3" {
		t.Fatalf("writer servers %v", names)
	}
	for i, n := range names {
		o := opts[n]
		if has(o, "backup") != (i > 0) {
			t.Errorf("writer %s: backup=%v, want %v: %v", n, has(o, "backup"), i > 0, o)
		}
		if !has(o, "check") || after(o, "port") != []string{"3506", "3507", "3508"}[i] || has(o, "addr") || has(o, "check-ssl") {
			t.Errorf("writer %s: check options %v", n, o)
		}
	}
	if addrs["n2"] != "127.0.0.1:3307" {
		t.Errorf("n2 address %q", addrs["n2"])
	}
	rnames, ropts, _ := r.servers()
	if strings.Join(rnames, " ") != "n1 n2 n3" {
		t.Fatalf("reader servers %v", rnames)
	}
	for _, n := range rnames {
		if has(ropts[n], "backup") {
			t.Errorf("reader %s is a backup: %v", n, ropts[n])
		}
	}
	check(t, b, "")
}

func TestRenderTLSAgents(t *testing.T) {
	c := sandboxLike()
	dir := t.TempDir()
	ca := filepath.Join(dir, "ca.crt")
	// Any PEM certificate will do for haproxy -c: take the system's first.
	pem := readSomeCert(t)
	if err := os.WriteFile(ca, pem, 0o644); err != nil {
		t.Fatal(err)
	}
	c.CAFile = ca
	c.Servers[0].AgentHost, c.Servers[0].AgentTLS = "localhost", true
	c.Servers[1].AgentTLS = true
	b, err := Render(c)
	if err != nil {
		t.Fatal(err)
	}
	_, opts, _ := parse(string(b))["listen billing-writer"].servers()
	o := opts["n1"]
	if after(o, "addr") != "localhost" || !has(o, "check-ssl") || after(o, "verify") != "required" || after(o, "ca-file") != ca ||
		after(o, "check-sni") != "localhost" || after(o, "verifyhost") != "localhost" {
		t.Errorf("n1 (https agent named by host name): %v", o)
	}
	if o := opts["n2"]; !has(o, "check-ssl") || has(o, "check-sni") || after(o, "ca-file") != ca {
		t.Errorf("n2 (https agent on an address): %v", o)
	}
	if o := opts["n3"]; has(o, "check-ssl") {
		t.Errorf("n3 (http agent) checked with TLS: %v", o)
	}
	check(t, b, "")

	c.CAFile = ""
	b, err = Render(c)
	if err != nil {
		t.Fatal(err)
	}
	if _, opts, _ := parse(string(b))["listen billing-reader"].servers(); after(opts["n1"], "ca-file") != "@system-ca" {
		t.Errorf("without a CA file: %v, want the system's roots", opts["n1"])
	}
	check(t, b, "")
}

func readSomeCert(t *testing.T) []byte {
	t.Helper()
	b, err := os.ReadFile("/etc/ssl/certs/ca-certificates.crt")
	if err != nil {
		t.Fatalf("%v (package ca-certificates)", err)
	}
	end := "-----END CERTIFICATE-----\n"
	i := strings.Index(string(b), end)
	if i < 0 {
		t.Fatal("no certificate in the system bundle")
	}
	return b[:i+len(end)]
}

// check runs haproxy -c on the text and wants it accepted.
func check(t *testing.T, b []byte, _ string) {
	t.Helper()
	requireHAProxy(t)
	f := filepath.Join(t.TempDir(), "haproxy.cfg")
	if err := os.WriteFile(f, b, 0o600); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(haproxyBin, "-c", "-f", f).CombinedOutput()
	if err != nil {
		t.Fatalf("haproxy -c: %v\n%s\n--- config ---\n%s", err, out, b)
	}
	if strings.Contains(string(out), "[WARNING]") {
		t.Errorf("haproxy -c warns:\n%s", out)
	}
}

func TestRenderRefuses(t *testing.T) {
	for _, tt := range []struct {
		name string
		edit func(*Config)
		want string
	}{
		{"token with a quote", func(c *Config) { c.Token = `abc"def` }, "agent token"},
		{"token with a newline", func(c *Config) { c.Token = "abc\nstats socket /tmp/x level admin" }, "agent token"},
		{"no token", func(c *Config) { c.Token = "" }, "agent token"},
		{"no servers", func(c *Config) { c.Servers = nil }, "no servers"},
		{"duplicate server", func(c *Config) { c.Servers[1].Name = "n1" }, "unique name"},
		{"server name with space", func(c *Config) { c.Servers[0].Name = "n 1" }, "unique name"},
		{"address without port", func(c *Config) { c.Servers[0].Address = "127.0.0.1" }, "address"},
		{"agent port", func(c *Config) { c.Servers[2].AgentPort = 0 }, "agent port 0"},
		{"same binds", func(c *Config) { c.ReaderBind = c.WriterBind }, "same address"},
		{"relative socket", func(c *Config) { c.StatsSocket = "admin.sock" }, "stats socket"},
		{"CA with space", func(c *Config) { c.CAFile = "/etc/my ca.crt" }, "CA file"},
		{"cluster name", func(c *Config) { c.Cluster = "a b" }, "cluster name"},
	} {
		c := sandboxLike()
		tt.edit(&c)
		if _, err := Render(c); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: %v, want an error naming %q", tt.name, err, tt.want)
		}
	}
}

// TestRenderReplication: the writer pool has no backups (the check picks
// the primary), and the header says which cluster kind it balances.
func TestRenderReplication(t *testing.T) {
	c := sandboxLike()
	c.Replication = true
	b, err := Render(c)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(b), "for replication cluster billing") {
		t.Errorf("header does not name a replication cluster:\n%s", b)
	}
	secs := parse(string(b))
	w, r := secs["listen billing-writer"], secs["listen billing-reader"]
	if w == nil || r == nil {
		t.Fatalf("want listeners billing-writer and billing-reader, got %v", secs)
	}
	names, opts, _ := w.servers()
	if strings.Join(names, " ") != "n1 n2 n3" {
		t.Fatalf("writer servers %v", names)
	}
	for _, n := range names {
		if has(opts[n], "backup") {
			t.Errorf("writer %s is a backup in a replication config: %v", n, opts[n])
		}
	}
	for _, l := range w.lines {
		if strings.Contains(l, "shutdown-backup-sessions") || strings.HasPrefix(l, "balance") {
			t.Errorf("writer line %q has no place without backups", l)
		}
	}
	if !w.has(`http-check send meth GET uri `+WriterCheckPath+` hdr Authorization "Bearer `+token+`"`) || !r.has("balance roundrobin") {
		t.Errorf("checks or balance: writer %v reader %v", w.lines, r.lines)
	}
	check(t, b, "")
}
