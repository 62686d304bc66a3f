//go:build cluster

package e2e

import (
	"fmt"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"
)

// TestGossipTwoAppliances (issue 15): two appliances watch the shared
// sandbox and their embedded Alertmanagers gossip (alertmanager.cluster).
// A node hung with SIGSTOP makes both evaluate GaleraNodeDown; the webhook
// gets it once, not once per appliance. A silence made on one appliance
// is in the other's list within seconds and mutes the alert both send.
func TestGossipTwoAppliances(t *testing.T) {
	sb := sharedGalera(t)
	h := newHook(t)
	// GossipDrill waits 20 s before firing, time to silence it first;
	// GossipDelivered fires at once on both.
	extra := `groups:
  - name: gossip-drill
    rules:
      - alert: GossipDrill
        expr: vector(1)
        for: 20s
        labels: {severity: warning}
        annotations: {summary: s, description: d, runbook: r}
      - alert: GossipDelivered
        expr: vector(1)
        labels: {severity: warning}
        annotations: {summary: s, description: d, runbook: r}
`
	pa, pb := freePort(t), freePort(t)
	const peerTimeout = 3 * time.Second
	start := func(name string, listen, peer int) *appliance {
		cfg := alertingConfig(t, sb, h.url, extra)
		body, err := os.ReadFile(cfg)
		if err != nil {
			t.Fatal(err)
		}
		const amLine = "alertmanager: {embedded: alertmanager.yml}"
		if !strings.Contains(string(body), amLine) {
			t.Fatalf("alertingConfig no longer writes %q", amLine)
		}
		clustered := fmt.Sprintf("alertmanager: {embedded: alertmanager.yml, cluster: {listen: \"127.0.0.1:%d\", peers: [\"127.0.0.1:%d\"], name: %s, peer_timeout: %s}}", listen, peer, name, peerTimeout)
		// No probe: two appliances on one host would write the same
		// source's heartbeat rows, and the drill is about alerting.
		body = append([]byte(strings.Replace(string(body), amLine, clustered, 1)), "    probe: {disabled: true}\n"...)
		if err := os.WriteFile(cfg, body, 0o600); err != nil {
			t.Fatal(err)
		}
		return startAppliance(t, cfg, sb.TokenPath())
	}
	a := start("a", pa, pb)
	b := start("b", pb, pa)
	type amStatus struct {
		Cluster struct {
			Status string `json:"status"` // ready once gossip settled
			Peers  []struct {
				Name string `json:"name"`
			} `json:"peers"`
		} `json:"cluster"`
	}
	// Alertmanager holds notifications until gossip has settled (the
	// peer count stable over three polls, a few seconds after start).
	settled := func(x *appliance) bool {
		var st amStatus
		if code, err := x.get("/alertmanager/api/v2/status", nil, &st); err != nil || code != http.StatusOK {
			return false
		}
		return len(st.Cluster.Peers) == 2 && st.Cluster.Status == "ready"
	}
	took := waitFor(t, a.started, 30*time.Second, "both appliances healthy and their Alertmanagers meshed and settled", func() bool {
		return len(a.query("mysql_up == 1")) == 3 && len(b.query("mysql_up == 1")) == 3 && settled(a) && settled(b)
	})
	t.Logf("measured: both appliances up and gossip settled %s after the first started", took.Round(time.Millisecond))

	// A silence made on a.
	now := time.Now().UTC()
	code, out, err := a.post("/alertmanager/api/v2/silences", map[string]any{
		"matchers":  []map[string]any{{"name": "alertname", "value": "GossipDrill", "isRegex": false, "isEqual": true}},
		"startsAt":  now.Format(time.RFC3339),
		"endsAt":    now.Add(10 * time.Minute).Format(time.RFC3339),
		"createdBy": "e2e", "comment": "gossip drill",
	})
	if err != nil || code != http.StatusOK {
		t.Fatalf("silence on a: %d %s %v", code, out, err)
	}
	made := time.Now()
	waitFor(t, made, 5*time.Second, "a's silence listed by b", func() bool {
		var sils []struct {
			Status struct {
				State string `json:"state"`
			} `json:"status"`
			Comment string `json:"comment"`
		}
		code, err := b.get("/alertmanager/api/v2/silences", nil, &sils)
		if err != nil || code != http.StatusOK {
			return false
		}
		for _, s := range sils {
			if s.Comment == "gossip drill" && s.Status.State == "active" {
				return true
			}
		}
		return false
	})
	t.Logf("measured: silence made on a listed active by b after %s", time.Since(made).Round(time.Millisecond))

	// A node hung: both appliances see it.
	victim := sb.Nodes()[2]
	stopped := time.Now()
	resume := hangNode(t, sb, victim.Name)
	defer resume()
	onVictim := func(l map[string]string) bool {
		return l["alertname"] == "GaleraNodeDown" && l["instance"] == victim.Address()
	}
	waitFor(t, stopped, 5*time.Second, "GaleraNodeDown at the webhook", func() bool {
		_, ok := h.first("firing", onVictim)
		return ok
	})
	fired, _ := h.first("firing", onVictim)
	t.Logf("measured: GaleraNodeDown at the webhook %s after SIGSTOP", fired.Sub(stopped).Round(time.Millisecond))
	both := func() bool {
		fa := a.query(`ALERTS{alertname="GaleraNodeDown",alertstate="firing",instance="` + victim.Address() + `"}`)
		fb := b.query(`ALERTS{alertname="GaleraNodeDown",alertstate="firing",instance="` + victim.Address() + `"}`)
		return len(fa) == 1 && len(fb) == 1
	}
	waitFor(t, stopped, 10*time.Second, "GaleraNodeDown firing on both appliances", both)
	// The second peer notifies only after its turn (one peer_timeout) and
	// then finds the first's entry in the gossiped log.
	time.Sleep(2*peerTimeout + 2*time.Second)
	count := func(status string, match func(map[string]string) bool) int {
		h.mu.Lock()
		defer h.mu.Unlock()
		n := 0
		for _, m := range h.msgs {
			for _, al := range m.msg.Alerts {
				if al.Status == status && match(al.Labels) {
					n++
				}
			}
		}
		return n
	}
	if n := count("firing", onVictim); n != 1 {
		t.Errorf("GaleraNodeDown for %s notified %d times by two appliances, want once: %v", victim.Name, n, h.alertnames())
	}
	if n := count("firing", named("GossipDelivered")); n != 1 {
		t.Errorf("GossipDelivered notified %d times, want once: %v", n, h.alertnames())
	}
	resume()
	cont := time.Now()
	waitFor(t, cont, 60*time.Second, "the shared cluster healthy again", func() bool {
		return len(a.query(`mysql_global_status_wsrep_local_state == 4`)) == 3
	})

	// GossipDrill has fired on both by now (20 s); a's silence muted it
	// on b too.
	waitFor(t, made, 40*time.Second, "GossipDrill firing on both", func() bool {
		return len(a.query(`ALERTS{alertname="GossipDrill",alertstate="firing"}`)) == 1 && len(b.query(`ALERTS{alertname="GossipDrill",alertstate="firing"}`)) == 1
	})
	time.Sleep(2*peerTimeout + 2*time.Second)
	if n := count("firing", named("GossipDrill")); n != 0 {
		t.Errorf("GossipDrill, silenced on a, was notified %d times: %v", n, h.alertnames())
	}
}
