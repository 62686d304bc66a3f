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
