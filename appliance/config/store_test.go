package config

import (
	"strings"
	"testing"
)

// TestLoadExternalStore: store: loads its token, and a store across the
// network without TLS, a URL with credentials or a bad URL is named.
func TestLoadExternalStore(t *testing.T) {
	cfg, err := Load(writeConfig(t, good+"store: {url: \"http://127.0.0.1:8428\", bearer_token_file: api-token, timeout: 3s}\n"))
	if err != nil {
		t.Fatalf("loopback store: %v", err)
	}
	if cfg.Store.Token.Reveal() == "" || cfg.Store.Timeout.Duration.Seconds() != 3 {
		t.Errorf("store %+v: token not read or timeout lost", cfg.Store)
	}
	for _, tc := range []struct{ store, want string }{
		{`{url: "http://vmselect.example:8481/select/0/prometheus"}`, "store.url: http:// to another host sends the fleet's data"},
		{`{url: "https://nines:secret@vmselect:8481/"}`, "store.url: credentials in the URL"},
		{`{url: "vmselect:8481"}`, "store.url: bad URL"},
		{`{url: "https://vmselect:8481/", bearer_token_file: missing-token}`, `store.bearer_token_file: cannot read "missing-token"`},
		{`{url: "https://vmselect:8481/", ca_file: missing-ca.pem}`, `store.ca_file: cannot read`},
	} {
		_, err := Load(writeConfig(t, good+"store: "+tc.store+"\n"))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("store %s: %v\nwant an error containing %q", tc.store, err, tc.want)
		}
	}
}
