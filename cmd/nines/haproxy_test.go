package main

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

const haproxyTestToken = "0123456789abcdef0123456789abcdef"

func writeHAProxyTestConfig(t *testing.T, kind, agentScheme string) string {
	t.Helper()
	dir := t.TempDir()
	for name, content := range map[string]string{"agent-token": haproxyTestToken + "\n", "db.pass": "secret\n"} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	cfg := `listen: 127.0.0.1:9104
data_dir: data
api:
  tokens:
    - {name: t, role: admin, token_file: agent-token}
clusters:
  - name: billing
    kind: ` + kind + `
    nodes:
      - {address: "127.0.0.1:3306", agent: "` + agentScheme + `://127.0.0.1:3506"}
      - {address: "127.0.0.1:3307", agent: "` + agentScheme + `://127.0.0.1:3507"}
      - {address: "127.0.0.1:3308", agent: "` + agentScheme + `://127.0.0.1:3508"}
    agent_token_file: agent-token
    credentials: {user: nines, password_file: db.pass}
`
	p := filepath.Join(dir, "nines.yaml")
	if err := os.WriteFile(p, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func runNines(t *testing.T, args ...string) (string, string, error) {
	t.Helper()
	cmd := newRootCmd()
	var out, errb bytes.Buffer
	cmd.SetOut(&out)
	cmd.SetErr(&errb)
	cmd.SetArgs(args)
	err := cmd.Execute()
	return out.String(), errb.String(), err
}

// TestHAProxyConfigCommand writes the file for a config's cluster: mode
// 0600 (the token is in it), the agents' ports as check ports, n1 the
// writer, and haproxy -c accepts it.
func TestHAProxyConfigCommand(t *testing.T) {
	cfg := writeHAProxyTestConfig(t, "galera", "http")
	out := filepath.Join(t.TempDir(), "haproxy.cfg")
	_, stderr, err := runNines(t, "haproxy", "config", "--config", cfg, "--cluster", "billing", "--out", out,
		"--writer-port", "4306", "--reader-port", "4307", "--bind", "127.0.0.1", "--stats-socket", "/run/haproxy/test.sock")
	if err != nil {
		t.Fatalf("%v\n%s", err, stderr)
	}
	if !strings.Contains(stderr, "0600") {
		t.Errorf("stderr does not say the file is private: %q", stderr)
	}
	fi, err := os.Stat(out)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("mode %04o, want 0600", fi.Mode().Perm())
	}
	b, _ := os.ReadFile(out)
	text := string(b)
	for _, want := range []string{
		"listen billing-writer\n    bind 127.0.0.1:4306\n",
		"listen billing-reader\n    bind 127.0.0.1:4307\n",
		"server n1 127.0.0.1:3306 check port 3506\n",
		"server n2 127.0.0.1:3307 check port 3507 backup\n",
		"server n3 127.0.0.1:3308 check port 3508 backup\n",
		`hdr Authorization "Bearer ` + haproxyTestToken + `"`,
		"stats socket /run/haproxy/test.sock mode 600 level admin",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("no %q in\n%s", want, text)
		}
	}
	if o, err := exec.Command("/usr/sbin/haproxy", "-c", "-f", out).CombinedOutput(); err != nil {
		t.Fatalf("haproxy -c (package haproxy): %v\n%s", err, o)
	}
}

func TestHAProxyConfigRefuses(t *testing.T) {
	// Replication: no backups, the writer check picks the primary.
	stdout, _, err := runNines(t, "haproxy", "config", "--config", writeHAProxyTestConfig(t, "replication", "http"), "--cluster", "billing")
	if err != nil || !strings.Contains(stdout, "for replication cluster billing") || strings.Contains(stdout, " backup\n") ||
		!strings.Contains(stdout, "server n2 127.0.0.1:3307 check port 3507\n") {
		t.Errorf("replication cluster: %v\n%s", err, stdout)
	}
	if _, _, err := runNines(t, "haproxy", "config", "--config", writeHAProxyTestConfig(t, "galera", "http"), "--cluster", "nope"); err == nil ||
		!strings.Contains(err.Error(), `no cluster "nope"`) {
		t.Errorf("unknown cluster: %v", err)
	}
	stdout, _, err = runNines(t, "haproxy", "config", "--config", writeHAProxyTestConfig(t, "galera", "https"), "--cluster", "billing")
	if err != nil || !strings.Contains(stdout, "check port 3506 check-ssl verify required ca-file @system-ca") {
		t.Errorf("https agents: %v\n%s", err, stdout)
	}
}
