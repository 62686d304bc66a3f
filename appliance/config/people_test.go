package config

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"
)

// TestPeopleSectionsRejected: console users, Grafana and maintenance
// windows name file:line and field of each problem.
func TestPeopleSectionsRejected(t *testing.T) {
	hash, err := bcrypt.GenerateFromPassword([]byte("long-enough-password"), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		name, add string
		line      int
		field     string
		msg       string
	}{
		{"bad role", "console:\n  users:\n    - {name: a, role: boss, password_hash: \"" + string(hash) + "\"}\n", 17, "console.users[0].role", `"boss" is not one of`},
		{"not a hash", "console:\n  users:\n    - {name: a, role: admin, password_hash: plaintext}\n", 17, "console.users[0].password_hash", "not a bcrypt hash"},
		{"duplicate user", "console:\n  users:\n    - {name: a, role: admin, password_hash: \"" + string(hash) + "\"}\n    - {name: a, role: viewer, password_hash: \"" + string(hash) + "\"}\n", 18, "console.users[1].name", `duplicate user "a"`},
		{"short session", "console:\n  session_ttl: 10s\n", 16, "console.session_ttl", "at least 1m"},
		{"grafana url", "grafana: {url: grafana, token_file: api-token}\n", 15, "grafana.url", "bad URL"},
		{"grafana token", "grafana: {url: \"http://g:3000\"}\n", 15, "grafana.token_file", "missing credentials"},
		{"grafana without a read token", "grafana: {url: \"http://g:3000\", token_file: api-token}\n", 15, "grafana.datasource_token", "no api.tokens entry has role read: add one (role: read)"},
		{"grafana datasource token not read", "grafana: {url: \"http://g:3000\", token_file: api-token, datasource_token: ops}\n", 15, "grafana.datasource_token", `token "ops" has role "admin": Grafana's data source gets a read token`},
		{"grafana datasource token", "grafana: {url: \"http://g:3000\", token_file: api-token, datasource_token: nobody}\n", 15, "grafana.datasource_token", `no api.tokens entry named "nobody"`},
		{"window backwards", "    maintenance:\n      - {from: 2026-12-07T22:00:00Z, to: 2026-12-07T21:00:00Z}\n", 16, "clusters[0].maintenance[0].to", "is not after from"},
		{"window time", "    maintenance:\n      - {from: tonight, to: 2026-12-07T21:00:00Z}\n", 16, "clusters[0].maintenance[0].from", `invalid time "tonight"`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			p := writeConfig(t, good+tt.add)
			_, err := Load(p)
			errs, ok := err.(*Errors)
			if !ok {
				t.Fatalf("Load = %v, want *Errors", err)
			}
			found := false
			for _, e := range errs.List {
				found = found || e.Line == tt.line && e.Field == tt.field && strings.Contains(e.Msg, tt.msg)
			}
			if !found {
				t.Fatalf("no error at line %d field %q containing %q; got:\n%v", tt.line, tt.field, tt.msg, err)
			}
			if strings.Contains(err.Error(), string(hash)) {
				t.Errorf("the error repeats a password hash: %v", err)
			}
		})
	}
}

func TestPeopleSectionsLoad(t *testing.T) {
	hash, err := bcrypt.GenerateFromPassword([]byte("long-enough-password"), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	p := writeConfig(t, strings.Replace(good, "role: admin", "role: read", 1)+"    maintenance:\n      - {from: 2026-12-06T22:00:00Z, to: 2026-12-06T23:00:00Z, reason: upgrade}\n"+
		"console:\n  users:\n    - {name: alice, role: operator, password_hash: \""+string(hash)+"\"}\n"+
		"grafana: {url: \"https://grafana:3000\", token_file: api-token}\n")
	cfg, err := Load(p)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Console.SessionTTL.Duration != DefaultSessionTTL || cfg.Console.Users[0].Role != RoleOperator {
		t.Errorf("console = %+v", cfg.Console)
	}
	if g := cfg.Grafana; g.Folder != "nines" || g.DatasourceURL != "http://127.0.0.1:9104" || g.DatasourceToken != "ops" {
		t.Errorf("grafana defaults = folder %q, datasource %q, token %q", g.Folder, g.DatasourceURL, g.DatasourceToken)
	}
	cl := &cfg.Clusters[0]
	at := func(s string) time.Time { v, _ := time.Parse(time.RFC3339, s); return v }
	for s, want := range map[string]bool{"2026-12-06T21:59:59Z": false, "2026-12-06T22:00:00Z": true, "2026-12-06T22:59:59Z": true, "2026-12-06T23:00:00Z": false} {
		if got := cl.InMaintenance(at(s)); got != want {
			t.Errorf("InMaintenance(%s) = %v, want %v", s, got, want)
		}
	}
}

// TestTrustedProxies: CIDRs and bare addresses load; a bad one names
// file:line and the entry.
func TestTrustedProxies(t *testing.T) {
	cfg, err := Load(writeConfig(t, good+"trusted_proxies: [10.0.0.0/8, \"192.0.2.7\", \"2001:db8::/32\"]\n"))
	if err != nil {
		t.Fatal(err)
	}
	if got := fmt.Sprint(cfg.TrustedProxies); got != "[10.0.0.0/8 192.0.2.7/32 2001:db8::/32]" {
		t.Errorf("trusted_proxies = %s", got)
	}
	_, err = Load(writeConfig(t, good+"trusted_proxies: [10.0.0.0/8, proxy.local]\n"))
	if err == nil || !strings.Contains(err.Error(), `:15`) || !strings.Contains(err.Error(), `"proxy.local" is not a CIDR`) {
		t.Errorf("bad entry: %v", err)
	}
}
