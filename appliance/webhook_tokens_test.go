package appliance

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/nines-project/nines/appliance/config"
)

// TestCheckWebhookTokens: the embedded Alertmanager must post to the
// remediator with a webhook token: none, or a read or admin token of this
// config, fails `nines check` with the fix.
func TestCheckWebhookTokens(t *testing.T) {
	dir := t.TempDir()
	for name, tok := range map[string]string{"webhook-token": "webhook-token-0123456789\n", "admin-token": "admin-token-0123456789\n", "other": "someone-elses-token-0123\n"} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(tok), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	for _, tt := range []struct {
		name, auth, want string
	}{
		{"webhook token", "        http_config: {authorization: {type: Bearer, credentials_file: webhook-token}}\n", ""},
		{"another appliance's token", "        http_config: {authorization: {type: Bearer, credentials_file: other}}\n", ""},
		{"admin token", "        http_config: {authorization: {type: Bearer, credentials_file: admin-token}}\n", `sends api.tokens entry "root" (role admin)`},
		{"inline read token", "        http_config: {authorization: {type: Bearer, credentials: read-token-0123456789}}\n", `"grafana" (role read)`},
		{"no token", "", "without a bearer token"},
	} {
		am := "route: {receiver: remediator}\nreceivers:\n  - name: remediator\n    webhook_configs:\n      - url: http://127.0.0.1:9104/api/v1/alerts/webhook\n" + tt.auth
		p := filepath.Join(dir, "alertmanager.yml")
		if err := os.WriteFile(p, []byte(am), 0o600); err != nil {
			t.Fatal(err)
		}
		cfg := &config.Config{Alertmanager: config.Alertmanager{Embedded: p}, API: config.API{Tokens: testTokens}}
		err := checkWebhookTokens(cfg)
		switch {
		case tt.want == "" && err != nil:
			t.Errorf("%s: %v", tt.name, err)
		case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want) || !strings.Contains(err.Error(), "role webhook")):
			t.Errorf("%s: %v, want an error with %q naming the fix", tt.name, err, tt.want)
		}
	}
}

// TestRemediatorRouteProblem: alertmanager.yml posting to a remediator at
// another address than the appliance listens on is found (the remediator
// would hear nothing); the same address in other spellings is not.
func TestRemediatorRouteProblem(t *testing.T) {
	dir := t.TempDir()
	write := func(url string) *config.Config {
		am := "route: {receiver: remediator}\nreceivers:\n  - name: remediator\n    webhook_configs:\n      - url: " + url + "\n"
		p := filepath.Join(dir, "alertmanager.yml")
		if err := os.WriteFile(p, []byte(am), 0o600); err != nil {
			t.Fatal(err)
		}
		return &config.Config{Alertmanager: config.Alertmanager{Embedded: p}}
	}
	for _, tt := range []struct {
		url, listen string
		deaf        bool
	}{
		{"http://127.0.0.1:9104/api/v1/alerts/webhook", "127.0.0.1:9104", false},
		{"http://localhost:9104/api/v1/alerts/webhook", "127.0.0.1:9104", false},
		{"http://127.0.0.1:9104/api/v1/alerts/webhook", "0.0.0.0:9104", false},
		{"http://127.0.0.1:9104/api/v1/alerts/webhook", ":9104", false},
		{"http://127.0.0.1:9104/api/v1/alerts/webhook", "127.0.0.1:9200", true},
		{"http://10.0.0.5:9104/api/v1/alerts/webhook", "127.0.0.1:9104", true},
		{"https://127.0.0.1/api/v1/alerts/webhook", "127.0.0.1:443", false},
		// Not a remediator webhook: nothing to say.
		{"http://127.0.0.1:9999/hook", "127.0.0.1:9104", false},
	} {
		got := RemediatorRouteProblem(write(tt.url), tt.listen)
		if (got != "") != tt.deaf {
			t.Errorf("webhook %s, listen %s: %q, want deaf=%v", tt.url, tt.listen, got, tt.deaf)
		}
		if tt.deaf && !strings.Contains(got, tt.listen) {
			t.Errorf("the problem does not name the listen address %s: %s", tt.listen, got)
		}
	}
}
