package alertmanager

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/alertmanager/notify/webhook"

	"github.com/nines-project/nines"
	"github.com/nines-project/nines/internal/testbin"
	"github.com/nines-project/nines/internal/testpki"
)

// gossipPorts is this package's block for gossip listeners (TCP and UDP),
// apart from every other package's.
var gossipPorts = testbin.NewPorts(30700, 30800)

// meshRoute pages through one receiver and tells the remediator through
// another, as the appliance's alertmanager.yml does.
const meshRoute = `
route:
  receiver: page
  group_by: ['...']
  group_wait: 0s
  group_interval: 1s
  repeat_interval: 1h
  routes:
    - receiver: remediator
      continue: true
    - receiver: page
receivers:
  - name: page
    webhook_configs:
      - url: PAGE
  - name: remediator
    webhook_configs:
      - url: REMEDIATOR
`

// meshHook records who was notified of what: pages, and each peer's
// remediator webhook (told apart by a query parameter).
type meshHook struct {
	srv *httptest.Server

	mu    sync.Mutex
	pages []string            // alertnames paged
	heard map[string][]string // peer -> alertnames its remediator heard
}

func newMeshHook(t *testing.T) *meshHook {
	h := &meshHook{heard: map[string][]string{}}
	h.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var m webhook.Message
		if err := json.NewDecoder(r.Body).Decode(&m); err != nil {
			t.Errorf("webhook: decode: %v", err)
			return
		}
		h.mu.Lock()
		defer h.mu.Unlock()
		for _, a := range m.Alerts {
			if r.URL.Path == WebhookPath {
				p := r.URL.Query().Get("peer")
				h.heard[p] = append(h.heard[p], a.Labels["alertname"])
			} else {
				h.pages = append(h.pages, a.Labels["alertname"])
			}
		}
	}))
	t.Cleanup(h.srv.Close)
	return h
}

func count(names []string, name string) int {
	n := 0
	for _, s := range names {
		if s == name {
			n++
		}
	}
	return n
}

func (h *meshHook) paged(name string) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return count(h.pages, name)
}

func (h *meshHook) heardBy(peer, name string) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return count(h.heard[peer], name)
}

// meshPeer starts a clustered Embedded named name with a certificate of
// ca, gossiping with peers.
func meshPeer(t *testing.T, h *meshHook, ca *testpki.CA, name string, port int, peers ...int) *Embedded {
	t.Helper()
	dir := t.TempDir()
	pair := ca.Peer(t, name)
	cfg := writeConfig(t, dir, meshRoute, "PAGE", h.srv.URL+"/page", "REMEDIATOR", h.srv.URL+WebhookPath+"?peer="+name)
	c := &Cluster{
		Listen:         fmt.Sprintf("127.0.0.1:%d", port),
		Name:           name,
		Label:          "nines-test",
		PeerTimeout:    2 * time.Second,
		GossipInterval: 50 * time.Millisecond,
		TLS: &ClusterTLS{
			CertFile: testpki.Write(t, filepath.Join(dir, "peer.crt"), pair.CertPEM),
			KeyFile:  testpki.Write(t, filepath.Join(dir, "peer.key"), pair.KeyPEM),
			CAFile:   testpki.Write(t, filepath.Join(dir, "ca.crt"), ca.PEM()),
		},
	}
	for _, p := range peers {
		c.Peers = append(c.Peers, fmt.Sprintf("127.0.0.1:%d", p))
	}
	e, err := New(Options{ConfigFile: cfg, DataDir: filepath.Join(dir, "data"), ExternalURL: "http://" + name + ".test/alertmanager", Logger: testLogger(t), Cluster: c})
	if err != nil {
		t.Fatalf("peer %s: %v", name, err)
	}
	t.Cleanup(func() { _ = e.Close() })
	return e
}

func members(t *testing.T, e *Embedded) []string {
	t.Helper()
	st, err := e.ClusterStatus()
	if err != nil {
		t.Fatal(err)
	}
	return st.Peers
}

// TestGossipPagesOnceAndSharesSilences is issue 15's "One GaleraNodeDown
// reaches the test webhook once, not once per appliance; a silence made
// on one appliance mutes the other", on two embedded Alertmanagers
// gossiping over mutual TLS, while each appliance's remediator still
// hears every alert.
func TestGossipPagesOnceAndSharesSilences(t *testing.T) {
	ports := make([]int, 3)
	for i := range ports {
		p, err := gossipPorts.Next()
		if err != nil {
			t.Fatal(err)
		}
		ports[i] = p
	}
	ca := testpki.NewCA(t, "nines gossip CA")
	h := newMeshHook(t)
	a := meshPeer(t, h, ca, "a", ports[0], ports[1])
	b := meshPeer(t, h, ca, "b", ports[1], ports[0])

	start := time.Now()
	eventually(t, 10*time.Second, "both peers in each other's member list", func() bool {
		return len(members(t, a)) == 2 && len(members(t, b)) == 2
	})
	t.Logf("mesh of 2 formed in %s: %v", time.Since(start).Round(time.Millisecond), members(t, a))

	// A peer whose certificate another CA signed is not let in.
	other := testpki.NewCA(t, "someone else's CA")
	intruder := meshPeer(t, h, other, "c", ports[2], ports[0])
	time.Sleep(3 * time.Second)
	if m := members(t, a); len(m) != 2 {
		t.Errorf("a peer with a foreign certificate joined: a's members %v", m)
	}
	if m := members(t, intruder); len(m) != 1 {
		t.Errorf("the intruder sees members %v, want only itself", m)
	}
	_ = intruder.Close()

	// Both appliances evaluate the same rule and send the same alert.
	down := firingAlert(map[string]string{"alertname": "GaleraNodeDown", "cluster": "billing", "instance": "n2", "remediation": "galera-node-rejoin"})
	sent := time.Now()
	for _, e := range []*Embedded{a, b} {
		if err := e.Send(t.Context(), []nines.Alert{down}); err != nil {
			t.Fatal(err)
		}
	}
	eventually(t, 5*time.Second, "the page", func() bool { return h.paged("GaleraNodeDown") > 0 })
	t.Logf("paged %s after the alert", time.Since(sent).Round(time.Millisecond))
	eventually(t, 5*time.Second, "both remediators told", func() bool {
		return h.heardBy("a", "GaleraNodeDown") > 0 && h.heardBy("b", "GaleraNodeDown") > 0
	})
	t.Logf("both remediators told within %s", time.Since(sent).Round(time.Millisecond))
	// b notifies only after its turn (one PeerTimeout) and finds a's entry
	// in the gossiped log; wait past its turn before counting.
	time.Sleep(2*2*time.Second + time.Second)
	if n := h.paged("GaleraNodeDown"); n != 1 {
		t.Errorf("GaleraNodeDown paged %d times by two appliances, want once", n)
	}

	// A silence made on a mutes b.
	srv := serve(t, a)
	postSilence(t, srv, "GaleraNodeLagging")
	labels := map[string]string{"alertname": "GaleraNodeLagging", "cluster": "billing"}
	made := time.Now()
	eventually(t, 5*time.Second, "a's silence on b", func() bool { return b.Silenced(labels) })
	t.Logf("silence made on a active on b after %s", time.Since(made).Round(time.Millisecond))
	if err := b.Send(t.Context(), []nines.Alert{firingAlert(labels)}); err != nil {
		t.Fatal(err)
	}

	// a gone: b pages alone, its turn now first.
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	alone := firingAlert(map[string]string{"alertname": "GaleraClusterDegraded", "cluster": "billing"})
	sent = time.Now()
	if err := b.Send(t.Context(), []nines.Alert{alone}); err != nil {
		t.Fatal(err)
	}
	eventually(t, 2*time.Second+5*time.Second, "b's page with a gone", func() bool { return h.paged("GaleraClusterDegraded") == 1 })
	t.Logf("b paged alone after %s", time.Since(sent).Round(time.Millisecond))
	if n := h.paged("GaleraNodeLagging"); n != 0 {
		t.Errorf("the alert silenced on a was paged %d times by b", n)
	}
}

// TestGossipRefusesMixedRemediatorReceiver: a receiver that pages and
// tells the remediator at once cannot be both deduplicated across peers
// and heard by every remediator; New says which and how to fix it.
func TestGossipRefusesMixedRemediatorReceiver(t *testing.T) {
	port, err := gossipPorts.Next()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	cfg := writeConfig(t, dir, `
route:
  receiver: ops
receivers:
  - name: ops
    webhook_configs:
      - url: http://127.0.0.1:9/page
      - url: http://127.0.0.1:9104`+WebhookPath+`
`)
	_, err = New(Options{ConfigFile: cfg, DataDir: filepath.Join(dir, "data"), Logger: testLogger(t),
		Cluster: &Cluster{Listen: fmt.Sprintf("127.0.0.1:%d", port), Name: "a"}})
	if err == nil || !strings.Contains(err.Error(), "[ops]") || !strings.Contains(err.Error(), "receiver of its own") {
		t.Fatalf("New = %v, want a refusal naming receiver ops", err)
	}
	// Alone, the same file is fine.
	e, err := New(Options{ConfigFile: cfg, DataDir: filepath.Join(dir, "data2"), Logger: testLogger(t)})
	if err != nil {
		t.Fatalf("unclustered New: %v", err)
	}
	_ = e.Close()
}
