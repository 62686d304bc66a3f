//go:build cluster

package e2e

import (
	"context"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nines-project/nines/agent"
	"github.com/nines-project/nines/appliance/apiclient"
	"github.com/nines-project/nines/sandbox"
)

// TestDrillNodeCrash: `nines drill --scenario node-crash` on a declared
// drill target kills -9 a node through its agent, the remediator rejoins
// it, and the CLI prints the measured RTO (under the rejoin bound, 20 s)
// and RPO (no acknowledged write lost); the uptime report, JSON and HTML,
// shows the drill with the same figures. With the cluster no longer
// declared, the same command is refused and kills nothing.
func TestDrillNodeCrash(t *testing.T) {
	t0 := time.Now()
	sb := freshGalera(t, "drill")
	h := startHealer(t, sb, remediationOpts{mode: "auto", drill: true})
	t.Logf("measured: fresh sandbox and appliance ready in %s", time.Since(t0).Round(time.Millisecond))

	start := time.Now()
	out, err := exec.Command(ninesBin, "drill", "--config", h.cfg, "--api", h.base, "--cluster", sb.ClusterName(), "--scenario", "node-crash").CombinedOutput()
	took := time.Since(start)
	if err != nil {
		t.Fatalf("nines drill: %v\n%s", err, out)
	}
	t.Logf("nines drill (%s):\n%s", took.Round(time.Millisecond), out)
	figure := func(name string) float64 {
		m := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(name) + `: ([0-9.]+)`).FindSubmatch(out)
		if m == nil {
			t.Fatalf("nines drill printed no %q line:\n%s", name, out)
		}
		v, _ := strconv.ParseFloat(string(m[1]), 64)
		return v
	}
	rto, rpo, acked := figure("RTO"), figure("RPO"), figure("acknowledged writes")
	victim := sb.Nodes()[len(sb.Nodes())-1]
	if !strings.Contains(string(out), "killing "+victim.Address()) || !strings.Contains(string(out), "state: done") {
		t.Errorf("nines drill did not kill %s and end done:\n%s", victim.Address(), out)
	}
	if rto <= 0 || rto >= 20 {
		t.Errorf("RTO %.1f s: want above 0 and under the rejoin bound of 20 s", rto)
	}
	if rpo != 0 || acked < 20 {
		t.Errorf("RPO %v acknowledged writes lost of %v: want 0 lost of at least 20", rpo, acked)
	}
	t.Logf("measured: node-crash drill RTO %.1f s (bound 20 s), RPO %v of %v acknowledged writes", rto, rpo, acked)

	// The uptime report lists the drill with the same figures.
	req := apiclient.ReportRequest{Cluster: sb.ClusterName(), From: t0.Add(-time.Minute).UTC().Format(time.RFC3339), To: time.Now().Add(time.Second).UTC().Format(time.RFC3339)}
	var found bool
	waitFor(t, time.Now(), 15*time.Second, "the uptime report to list the drill", func() bool {
		r, err := h.api().UptimeReport(context.Background(), req)
		if err != nil {
			return false // not counted that far yet
		}
		for _, d := range r.Drills {
			if d.Scenario == "node-crash" && d.State == "done" && strconv.FormatFloat(d.RTOSeconds, 'f', 1, 64) == strconv.FormatFloat(rto, 'f', 1, 64) && d.LostWrites == 0 {
				found = true
			}
		}
		return found
	})
	req.Format = "html"
	doc, err := h.api().ReportDocument(context.Background(), req)
	if err != nil || doc.Status != http.StatusOK {
		t.Fatalf("uptime report html: %v", err)
	}
	html := string(doc.Body)
	if !strings.Contains(html, `<h2>Drills</h2>`) || !strings.Contains(html, `<td>node-crash</td>`) ||
		!strings.Contains(html, `data-key="rto_seconds">`+strconv.FormatFloat(rto, 'f', 1, 64)+`<`) || !strings.Contains(html, `data-key="lost_writes">0<`) {
		t.Errorf("the HTML report does not show the drill with RTO %.1f and 0 lost:\n%.3000s", rto, html[strings.Index(html, "<h2>Incidents"):])
	}

	// Undeclared: the same command is refused, and the record stays.
	h.stop()
	cfg, err := os.ReadFile(h.cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(h.cfg, []byte(strings.Replace(string(cfg), "    drill: {allowed: true}\n", "", 1)), 0o600); err != nil {
		t.Fatal(err)
	}
	restarted := time.Now()
	h.restart(t)
	h.waitHealthy(t, restarted, 20*time.Second)
	pidBefore := agentPid(t, sb, victim.AgentURL())
	out, err = exec.Command(ninesBin, "drill", "--config", h.cfg, "--api", h.base, "--cluster", sb.ClusterName(), "--scenario", "node-crash").CombinedOutput()
	if err == nil || !strings.Contains(string(out), "is not a drill target") || !strings.Contains(string(out), "403") {
		t.Errorf("nines drill on a cluster not declared: %v\n%s\nwant refused (403, not a drill target)", err, out)
	}
	var list struct {
		Data []struct {
			ID    string `json:"id"`
			State string `json:"state"`
		}
	}
	if code, err := h.get("/api/v1/clusters/"+url.PathEscape(sb.ClusterName())+"/drills", nil, &list); err != nil || code != http.StatusOK || len(list.Data) != 1 || list.Data[0].State != "done" {
		t.Errorf("GET drills after a restart: %d %v %+v; want the one drill, done", code, err, list.Data)
	}
	if pid := agentPid(t, sb, victim.AgentURL()); pid == 0 || pid != pidBefore {
		t.Errorf("%s's server pid went from %d to %d across a refused drill: it was killed", victim.Name, pidBefore, pid)
	}
	t.Logf("measured: TestDrillNodeCrash wall time %s", time.Since(t0).Round(time.Millisecond))
}

// agentPid is the server pid the node's agent reports (0: not running).
func agentPid(t *testing.T, sb *sandbox.Sandbox, agentURL string) int {
	t.Helper()
	tok, err := os.ReadFile(sb.AgentTokenPath())
	if err != nil {
		t.Fatal(err)
	}
	st, err := agent.NewClient(agentURL, strings.TrimSpace(string(tok)), nil).Status(context.Background())
	if err != nil {
		t.Fatalf("agent status at %s: %v", agentURL, err)
	}
	return st.Pid
}
