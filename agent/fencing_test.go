package agent

import (
	"context"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// A stop of a stopped server succeeds and changes nothing: the mutating
// call these tests fence.
func stopWith(ctx context.Context, c *Client) error {
	_, err := c.Stop(ctx, StopRequest{})
	return err
}

func TestFencingRefusesOlderTokens(t *testing.T) {
	a, c, base := serveStopped(t, "")
	bg := context.Background()
	c1 := func(tok int64) context.Context { return WithFence(bg, "c1", tok) }

	if err := stopWith(bg, c); err != nil {
		t.Fatalf("no token, none ever seen (a lone appliance): %v", err)
	}
	if err := stopWith(c1(5), c); err != nil {
		t.Fatalf("token 5: %v", err)
	}
	err := stopWith(c1(4), c)
	if !IsFenced(err) {
		t.Fatalf("token 4 after 5: %v, want a fencing refusal (409)", err)
	}
	if msg := err.Error(); !strings.Contains(msg, "token 4") || !strings.Contains(msg, "older than 5") || !strings.Contains(msg, `"c1"`) {
		t.Fatalf("refusal %q does not name both tokens and the cluster", msg)
	}
	for _, tok := range []int64{5, 7} {
		if err := stopWith(c1(tok), c); err != nil {
			t.Fatalf("token %d: %v", tok, err)
		}
	}
	if err := stopWith(WithFence(bg, "c2", 1), c); err != nil {
		t.Fatalf("another cluster's first token: %v", err)
	}
	if err := stopWith(bg, c); !IsFenced(err) {
		t.Fatalf("no token once tokens were seen: %v, want a fencing refusal", err)
	}
	if _, err := c.Status(c1(1)); err != nil {
		t.Fatalf("a read is never fenced: %v", err)
	}
	if st, body := call(t, "POST", base+"/v1/stop", "Bearer "+testToken, ""); st != http.StatusConflict {
		t.Fatalf("raw POST without token: %d %s", st, body)
	}
	req, _ := http.NewRequest("POST", base+"/v1/stop", nil)
	req.Header.Set("Authorization", "Bearer "+testToken)
	req.Header.Set(HeaderFenceCluster, "c1")
	req.Header.Set(HeaderFenceToken, "seven")
	if resp, err := http.DefaultClient.Do(req); err != nil || resp.StatusCode != http.StatusBadRequest {
		t.Fatalf("malformed token: %v %v, want 400", resp, err)
	}
	// An unauthenticated caller cannot raise the token.
	req, _ = http.NewRequest("POST", base+"/v1/stop", nil)
	req.Header.Set(HeaderFenceCluster, "c1")
	req.Header.Set(HeaderFenceToken, "1000")
	if resp, err := http.DefaultClient.Do(req); err != nil || resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("unauthenticated token: %v %v, want 401", resp, err)
	}

	text, err := c.Metrics(bg)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`nines_agent_fencing_refused_total{cluster="c1"} 1`, `nines_agent_fencing_refused_total{cluster=""} 2`} {
		if !strings.Contains(text, want) {
			t.Errorf("metrics lack %s", want)
		}
	}

	// The tokens survive a restart of the agent.
	path := filepath.Join(a.cfg.StateDir, FenceFile)
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var saved map[string]int64
	if err := json.Unmarshal(b, &saved); err != nil || saved["c1"] != 7 || saved["c2"] != 1 {
		t.Fatalf("%s = %s (%v), want c1 7 and c2 1", path, b, err)
	}
	_, c2, _ := serve(t, a.cfg, Options{})
	if err := stopWith(c1(6), c2); !IsFenced(err) {
		t.Fatalf("token 6 after a restart that had seen 7: %v, want refused", err)
	}
	if err := stopWith(c1(8), c2); err != nil {
		t.Fatalf("token 8 after a restart: %v", err)
	}
}

func TestFencingFileUnreadableStopsTheAgent(t *testing.T) {
	a, _, _ := serveStopped(t, "")
	path := filepath.Join(a.cfg.StateDir, FenceFile)
	if err := os.WriteFile(path, []byte("{not json"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := New(a.cfg, Options{})
	if err == nil || !strings.Contains(err.Error(), path) {
		t.Fatalf("New with a corrupt %s: %v, want an error naming it", path, err)
	}
}
