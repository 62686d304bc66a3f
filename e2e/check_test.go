//go:build cluster

package e2e

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

const checkGood = `listen: 127.0.0.1:9104
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
      - {address: "db1:3306"}
      - {address: "db2:3306"}
    credentials: {user: nines, password_file: db.pass}
`

// TestCheckRejectsBrokenConfigs: `nines check` exits 2 on each kind of
// broken config and names file, line and field; a good config passes.
func TestCheckRejectsBrokenConfigs(t *testing.T) {
	dir := t.TempDir()
	for name, content := range map[string]string{"db.pass": "pw\n", "api-token": "0123456789abcdef0123456789abcdef\n", "unreadable.pass": "pw\n"} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	// root reads any file, so make "unreadable" a directory instead.
	os.Remove(filepath.Join(dir, "unreadable.pass"))
	if err := os.Mkdir(filepath.Join(dir, "unreadable.pass"), 0o700); err != nil {
		t.Fatal(err)
	}

	check := func(body string) (int, string) {
		p := filepath.Join(dir, "nines.yaml")
		if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		out, err := exec.Command(ninesBin, "check", "--config", p).CombinedOutput()
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			return ee.ExitCode(), string(out)
		}
		if err != nil {
			t.Fatal(err)
		}
		return 0, string(out)
	}

	if code, out := check(checkGood); code != 0 || !strings.Contains(out, "ok (1 clusters, 2 nodes)") {
		t.Fatalf("good config: exit %d: %s", code, out)
	}
	tests := []struct {
		name, from, to, want string
	}{
		{"unknown field", "    kind: galera\n", "    kind: galera\n    colour: blue\n", `nines.yaml:11: clusters[0].colour: unknown field "colour"`},
		{"bad address", `"db2:3306"`, `"db2"`, `nines.yaml:13: clusters[0].nodes[1].address: bad address "db2"`},
		{"missing credentials", "{user: nines, password_file: db.pass}", "{}", `nines.yaml:14: clusters[0].credentials.user: missing credentials`},
		{"duplicate cluster name", "", "  - name: billing\n    kind: galera\n    nodes: [{address: \"db3:3306\"}]\n    credentials: {user: nines, password_file: db.pass}\n", `nines.yaml:15: clusters[1].name: duplicate cluster name "billing"`},
		{"bad interval", "interval: 1s", "interval: 1 second", `nines.yaml:7: scrape.interval: invalid duration "1 second"`},
		{"unreadable password file", "password_file: db.pass", "password_file: unreadable.pass", `nines.yaml:14: clusters[0].credentials.password_file: cannot read "unreadable.pass"`},
		{"missing password file", "password_file: db.pass", "password_file: /etc/nines/none.pass", `nines.yaml:14: clusters[0].credentials.password_file: cannot read "/etc/nines/none.pass": no such file or directory`},
		{"bad kind", "kind: galera", "kind: postgres", `nines.yaml:10: clusters[0].kind: "postgres" is not one of galera, replication, ndb`},
		{"token without a role", "{name: ops, role: admin, token_file: api-token}", "{name: ops, token_file: api-token}", `nines.yaml:5: api.tokens[0].role: missing; give each token one of read, webhook, operate, admin`},
		{"grafana without a read token", "", "grafana: {url: \"http://g:3000\", token_file: api-token}\n", `grafana.datasource_token: no api.tokens entry has role read`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			body := checkGood + tt.to
			if tt.from != "" {
				body = strings.Replace(checkGood, tt.from, tt.to, 1)
			}
			code, out := check(body)
			if code != 2 {
				t.Errorf("exit %d, want 2; output:\n%s", code, out)
			}
			if !strings.Contains(out, tt.want) {
				t.Errorf("output lacks %q:\n%s", tt.want, out)
			}
		})
	}

	// A broken config never starts the appliance.
	p := filepath.Join(dir, "nines.yaml")
	_ = os.WriteFile(p, []byte(strings.Replace(checkGood, `"db2:3306"`, `"db2"`, 1)), 0o600)
	out, err := exec.Command(ninesBin, "run", "--config", p).CombinedOutput()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 2 || !strings.Contains(string(out), "bad address") {
		t.Errorf("nines run with a broken config: %v\n%s", err, out)
	}
	if _, err := os.Stat(filepath.Join(dir, "data")); err == nil {
		t.Error("nines run created the data dir from a broken config")
	}
}
