package agent

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nines-project/nines/internal/yamlfile"
)

const testToken = "0123456789abcdef0123456789abcdef"

// writeAgentFiles lays out what an agent config points at: a token file,
// a server directory and a defaults file with body (the [mysqld] part).
func writeAgentFiles(t *testing.T, mysqld string) (dir string) {
	t.Helper()
	dir = t.TempDir()
	files := map[string]string{
		"agent-token": testToken + "\n",
		"short-token": "abc\n",
		"my.cnf":      "[mysqld]\n" + mysqld,
	}
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Mkdir(filepath.Join(dir, "srv"), 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

func writeAgentConfig(t *testing.T, dir, body string) string {
	t.Helper()
	p := filepath.Join(dir, "agent.yaml")
	if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

const goodAgent = `name: db1
listen: 127.0.0.1:9105
token_file: agent-token
server:
  process:
    defaults_file: my.cnf
    dir: srv
`

func TestLoadAgentConfig(t *testing.T) {
	dir := writeAgentFiles(t, "datadir=/srv/db1/data\nsocket=/srv/db1/mysqld.sock\npid-file=mysqld.pid\nlog-error=/srv/db1/error.log\n")
	cfg, err := Load(writeAgentConfig(t, dir, goodAgent))
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	l := cfg.Local()
	want := LocalServer{
		DefaultsFile: filepath.Join(dir, "my.cnf"),
		DataDir:      "/srv/db1/data",
		Dir:          filepath.Join(dir, "srv"),
		Socket:       "/srv/db1/mysqld.sock",
		PidFile:      "/srv/db1/data/mysqld.pid", // relative to the datadir, as mariadbd reads it
		ErrorLog:     "/srv/db1/error.log",
	}
	if l != want {
		t.Errorf("paths:\n got %+v\nwant %+v", l, want)
	}
	if cfg.Mode() != ModeProcess || !cfg.IsGalera() || cfg.Token.Reveal() != testToken || cfg.Name != "db1" {
		t.Errorf("config: %+v", cfg)
	}
	if strings.Contains(sprintf("%+v", cfg), testToken) {
		t.Error("config prints its token")
	}

	// No log-error: the server logs to stderr, which a detached start
	// writes to DIR/mariadbd.out.
	dir = writeAgentFiles(t, "datadir=/d\nsocket=/s.sock\n")
	cfg, err = Load(writeAgentConfig(t, dir, goodAgent+"  galera: false\n"))
	if err != nil {
		t.Fatal(err)
	}
	if got := cfg.Local().ErrorLog; got != filepath.Join(dir, "srv", "mariadbd.out") {
		t.Errorf("error log without log-error = %q", got)
	}
	if host, _ := os.Hostname(); cfg.Local().PidFile != "/d/"+host+".pid" {
		t.Errorf("default pid file = %q", cfg.Local().PidFile)
	}
	if cfg.IsGalera() {
		t.Error("galera: false ignored")
	}
	if cfg.Server.RecoverTimeout != DefaultRecoverTimeout {
		t.Errorf("default recover_timeout = %v, want %v", cfg.Server.RecoverTimeout, DefaultRecoverTimeout)
	}
	cfg, err = Load(writeAgentConfig(t, dir, goodAgent+"  recover_timeout: 25m\n"))
	if err != nil || cfg.Server.RecoverTimeout != 25*time.Minute {
		t.Errorf("recover_timeout: 25m read as %v, %v", cfg.Server.RecoverTimeout, err)
	}
}

func TestLoadAgentConfigRejects(t *testing.T) {
	const cnf = "datadir=/srv/db1/data\nsocket=/srv/db1/mysqld.sock\n"
	tests := []struct {
		name  string
		cnf   string
		edit  func(string) string
		line  int
		field string
		msg   string
	}{
		{"unknown field", cnf, func(s string) string {
			return strings.Replace(s, "    dir: srv\n", "    dir: srv\n    colour: blue\n", 1)
		}, 8, "server.process.colour", `unknown field "colour"`},
		{"bad listen", cnf, func(s string) string {
			return strings.Replace(s, "127.0.0.1:9105", "nowhere", 1)
		}, 2, "listen", "bad address"},
		{"no token file", cnf, func(s string) string {
			return strings.Replace(s, "token_file: agent-token\n", "", 1)
		}, 0, "token_file", "never runs unauthenticated"},
		{"unreadable token", cnf, func(s string) string {
			return strings.Replace(s, "token_file: agent-token", "token_file: nope", 1)
		}, 3, "token_file", `cannot read "nope"`},
		{"short token", cnf, func(s string) string {
			return strings.Replace(s, "token_file: agent-token", "token_file: short-token", 1)
		}, 3, "token_file", "token is 3 characters; use at least 16"},
		{"no server", cnf, func(s string) string {
			return s[:strings.Index(s, "server:")]
		}, 0, "server", "process: {defaults_file, dir}"},
		{"both modes", cnf, func(s string) string {
			return s + "  systemd: {unit: mariadb.service, dir: srv}\n"
		}, 4, "server", "either process or systemd"},
		{"systemd without unit", cnf, func(s string) string {
			return strings.Replace(s, "  process:\n    defaults_file: my.cnf", "  systemd:\n    defaults_file: my.cnf", 1)
		}, 5, "server.systemd.unit", "required"},
		{"no dir", cnf, func(s string) string {
			return strings.Replace(s, "    dir: srv\n", "", 1)
		}, 5, "server.process.dir", "required"},
		{"missing dir", cnf, func(s string) string {
			return strings.Replace(s, "dir: srv", "dir: gone", 1)
		}, 7, "server.process.dir", "is not a directory"},
		{"missing defaults file", cnf, func(s string) string {
			return strings.Replace(s, "defaults_file: my.cnf", "defaults_file: gone.cnf", 1)
		}, 6, "server.process.defaults_file", "cannot read"},
		{"no datadir anywhere", "socket=/s.sock\n", func(s string) string { return s },
			5, "server.process.data_dir", "sets no datadir"},
		{"datadir contradicts the server's", cnf, func(s string) string {
			return s + "    data_dir: /elsewhere\n"
		}, 8, "server.process.data_dir", "datadir=/srv/db1/data"},
		{"no socket", "datadir=/d\n", func(s string) string { return s },
			5, "server.process.socket", "sets no socket"},
		{"clear text on the network", cnf, func(s string) string {
			return strings.Replace(s, "127.0.0.1:9105", "10.0.0.11:9105", 1)
		}, 2, "listen", "set tls: {cert_file, key_file}, or insecure: true"},
		{"backup dir root", cnf, func(s string) string {
			return s + "backup_dirs:\n  - /var/backups/nines\n  - /\n"
		}, 10, "backup_dirs[1]", `"/" is not allowed`},
		{"backup dirs empty", cnf, func(s string) string {
			return s + "backup_dirs: []\n"
		}, 8, "backup_dirs", "name at least one directory"},
		{"recover timeout too long", cnf, func(s string) string {
			return s + "  recover_timeout: 2h\n"
		}, 8, "server.recover_timeout", "at most 1h0m0s"},
		{"recover timeout not a duration", cnf, func(s string) string {
			return s + "  recover_timeout: soon\n"
		}, 8, "server.recover_timeout", ""},
		{"not yaml", cnf, func(s string) string { return s + "  - [unclosed\n" }, -1, "", "did not find expected"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := writeAgentFiles(t, tt.cnf)
			p := writeAgentConfig(t, dir, tt.edit(goodAgent))
			_, err := Load(p)
			var errs *yamlfile.Errors
			if !errors.As(err, &errs) {
				t.Fatalf("Load = %v, want *yamlfile.Errors", err)
			}
			found := false
			for _, e := range errs.List {
				if (e.Line == tt.line || tt.line < 0 && e.Line > 0) && e.Field == tt.field && strings.Contains(e.Msg, tt.msg) {
					found = strings.HasPrefix(e.Error(), p+":")
				}
			}
			if !found {
				t.Fatalf("no error at %s:%d field %q containing %q; got:\n%v", p, tt.line, tt.field, tt.msg, err)
			}
		})
	}
}

func TestAgentConfigNetworkAndBackupDirs(t *testing.T) {
	dir := writeAgentFiles(t, "datadir=/d\nsocket=/s.sock\n")
	cfg, err := Load(writeAgentConfig(t, dir, goodAgent))
	if err != nil {
		t.Fatal(err)
	}
	if len(cfg.BackupDirs) != 1 || cfg.BackupDirs[0] != DefaultBackupDir {
		t.Errorf("default backup_dirs = %v", cfg.BackupDirs)
	}
	body := strings.Replace(goodAgent, "127.0.0.1:9105", "10.0.0.11:9105", 1) + "insecure: true\nbackup_dirs: [bk, /srv/backups/../b2/]\n"
	cfg, err = Load(writeAgentConfig(t, dir, body))
	if err != nil {
		t.Fatalf("insecure: true: %v", err)
	}
	if want := []string{filepath.Join(dir, "bk"), "/srv/b2"}; strings.Join(cfg.BackupDirs, " ") != strings.Join(want, " ") {
		t.Errorf("backup_dirs = %v, want %v", cfg.BackupDirs, want)
	}
	for _, listen := range []string{"localhost:9105", `"[::1]:9105"`, "127.0.0.2:9105"} {
		if _, err := Load(writeAgentConfig(t, dir, strings.Replace(goodAgent, "127.0.0.1:9105", listen, 1))); err != nil {
			t.Errorf("loopback %s refused: %v", listen, err)
		}
	}
}

func TestParseOptions(t *testing.T) {
	got := parseOptions([]byte("--datadir=/a\n--log-error\n--wsrep_provider_options=a=1;b=2\n--datadir=/b\nnoise\n"))
	want := map[string]string{"datadir": "/b", "log_error": "", "wsrep_provider_options": "a=1;b=2"}
	if len(got) != len(want) {
		t.Fatalf("got %v", got)
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s = %q, want %q", k, got[k], v)
		}
	}
}

func FuzzParse(f *testing.F) {
	f.Add([]byte(goodAgent))
	f.Add([]byte("server: {process: {defaults_file: x}}"))
	f.Add([]byte("listen: [\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		cfg, err := Parse("fuzz.yaml", b)
		if err == nil && cfg == nil {
			t.Fatal("nil config without error")
		}
		if err != nil && !strings.HasPrefix(err.Error(), "fuzz.yaml") && !strings.Contains(err.Error(), "fuzz.yaml") {
			t.Fatalf("error does not name the file: %v", err)
		}
	})
}
