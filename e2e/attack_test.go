//go:build cluster

package e2e

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nines-project/nines/agent"
	ninesapp "github.com/nines-project/nines/appliance"
	"github.com/nines-project/nines/appliance/config"
	"github.com/nines-project/nines/sandbox"
)

// TestAttacks runs, against a real appliance and the sandbox's real agents,
// what someone holding a token (or none) would try: paths outside the
// backup allowlist on every agent route that takes one, each API role on
// each route, oversized bodies, a client that never finishes its request,
// a forged webhook with a read token and a planted backup whose dump
// carries a shell escape. Every answer must be a 4xx (or a closed
// connection), and afterwards nothing may have changed: the victim files
// are there, the servers and agents run with the same pids, the job log is
// empty and the shell escape wrote no marker.
func TestAttacks(t *testing.T) {
	waitsSideBySide(t) // 30 s of it is a slow client's timeout
	sb := sharedGalera(t)
	before := processIDs(t, sb)

	// A directory outside every allowlist that looks like a backup
	// directory (a manifest and a dump), and a file beside it.
	victim := t.TempDir()
	victimBackup := filepath.Join(victim, "b1")
	if err := os.MkdirAll(victimBackup, 0o755); err != nil {
		t.Fatal(err)
	}
	victimFiles := []string{filepath.Join(victimBackup, agent.ManifestFile), filepath.Join(victimBackup, agent.DumpFile), filepath.Join(victim, "precious.txt")}
	for _, f := range victimFiles {
		if err := os.WriteFile(f, []byte("{}"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	allowed := sandboxBackupDir(t, sb)
	// Symlinks inside the allowlist that lead out of it.
	for name, target := range map[string]string{"to-etc": "/etc", "to-victim": victim, "to-datadir": filepath.Dir(sb.Nodes()[0].DataDir)} {
		link := filepath.Join(allowed, name)
		_ = os.Remove(link)
		if err := os.Symlink(target, link); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { os.Remove(link) })
	}
	marker := filepath.Join(t.TempDir(), "shell-escape-ran")
	plantBackup(t, allowed, "planted", marker)
	t.Cleanup(func() { os.RemoveAll(filepath.Join(allowed, "planted")) })

	t.Run("agent", func(t *testing.T) { attackAgent(t, sb, allowed, victim) })
	t.Run("planted dump", func(t *testing.T) { attackPlantedDump(t, sb, allowed, marker) })

	a, tokens := startRolesAppliance(t, sb)
	t.Run("roles", func(t *testing.T) { attackRoles(t, a, tokens) })
	t.Run("forged webhook", func(t *testing.T) { attackWebhook(t, a, tokens, sb) })
	t.Run("oversized bodies", func(t *testing.T) { attackBodies(t, a, tokens, sb) })
	t.Run("slow clients", func(t *testing.T) { attackSlowClients(t, a, tokens["admin"], sb) })
	t.Run("own probe rows", func(t *testing.T) { probesAsItself(t, a, sb) })

	// Nothing changed.
	for _, f := range victimFiles {
		if _, err := os.Stat(f); err != nil {
			t.Errorf("victim file: %v", err)
		}
	}
	if _, err := os.Stat(sb.Nodes()[0].DataDir); err != nil {
		t.Errorf("datadir of %s: %v", sb.Nodes()[0].Name, err)
	}
	if _, err := os.Stat(marker); err == nil {
		t.Errorf("the planted dump's shell escape ran: %s exists", marker)
	}
	if after := processIDs(t, sb); fmt.Sprint(after) != fmt.Sprint(before) {
		t.Errorf("server and agent pids changed: before %v, after %v", before, after)
	}
	var jobs struct{ Data []json.RawMessage }
	if code, err := a.get("/api/v1/jobs", nil, &jobs); err != nil || code != http.StatusOK {
		t.Fatalf("GET /api/v1/jobs: %d %v", code, err)
	}
	if len(jobs.Data) != 0 {
		t.Errorf("the job log holds %d jobs after the attacks, want none: %s", len(jobs.Data), jobs.Data)
	}
}

// processIDs is every server's and agent's pid in the sandbox.
func processIDs(t *testing.T, sb *sandbox.Sandbox) map[string][2]int {
	t.Helper()
	st, err := sb.Status(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	out := map[string][2]int{}
	for _, n := range st {
		if n.Pid == 0 || n.AgentPid == 0 {
			t.Fatalf("node %s: server pid %d, agent pid %d: the sandbox is not healthy", n.Name, n.Pid, n.AgentPid)
		}
		out[n.Name] = [2]int{n.Pid, n.AgentPid}
	}
	return out
}

// agentRequest sends one request to node n's agent with the agent token
// and returns the status and body (status 0: the connection was closed).
func agentRequest(t *testing.T, sb *sandbox.Sandbox, n sandbox.Node, method, path string, body io.Reader) (int, string) {
	t.Helper()
	tok, err := os.ReadFile(sb.AgentTokenPath())
	if err != nil {
		t.Fatal(err)
	}
	req, err := http.NewRequest(method, n.AgentURL()+path, body)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+strings.TrimSpace(string(tok)))
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := (&http.Client{Timeout: 2 * time.Minute}).Do(req)
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	return resp.StatusCode, string(b)
}

func jsonBody(v any) io.Reader {
	b, _ := json.Marshal(v)
	return bytes.NewReader(b)
}

// attackAgent: every agent route that takes a directory, with paths that
// leave the allowlist by every way there is.
func attackAgent(t *testing.T, sb *sandbox.Sandbox, allowed, victim string) {
	n := sb.Nodes()[0]
	outside := []string{
		"/etc",
		"/var/lib",
		victim,
		filepath.Dir(n.DataDir),
		allowed + "/../..",
		filepath.Join(allowed, "to-etc"),
		filepath.Join(allowed, "to-victim"),
		filepath.Join(allowed, "to-datadir"),
		"relative/dir",
		"",
	}
	newDir := filepath.Join(victim, "created-by-attack")
	outside = append(outside, newDir)
	for _, dir := range outside {
		q := "?dir=" + url.QueryEscape(dir)
		for _, c := range []struct {
			method, path string
			body         any
		}{
			{http.MethodGet, "/v1/backups" + q, nil},
			{http.MethodDelete, "/v1/backups/b1" + q, nil},
			{http.MethodDelete, "/v1/backups/data" + q, nil},
			{http.MethodPost, "/v1/backups", agent.BackupRequest{Method: agent.MethodDump, Dir: dir, ID: "attack"}},
			{http.MethodPost, "/v1/backups/b1/verify", agent.VerifyRequest{Dir: dir}},
		} {
			var body io.Reader
			if c.body != nil {
				body = jsonBody(c.body)
			}
			code, out := agentRequest(t, sb, n, c.method, c.path, body)
			if code < 400 || code >= 500 {
				t.Errorf("%s %s (dir %q): %d %.200s, want a 4xx", c.method, c.path, dir, code, out)
			}
			if strings.Contains(out, "passwd") || strings.Contains(out, "precious") {
				t.Errorf("%s %s (dir %q) leaked a listing: %.300s", c.method, c.path, dir, out)
			}
		}
	}
	// IDs that climb out of an allowed directory.
	for _, id := range []string{"..", "../..", "..%2F..%2Fetc", ".verify-x", "to-victim"} {
		code, out := agentRequest(t, sb, n, http.MethodDelete, "/v1/backups/"+id+"?dir="+url.QueryEscape(allowed), nil)
		if code < 400 || code >= 500 {
			t.Errorf("DELETE /v1/backups/%s in the allowlist: %d %.200s, want a 4xx", id, code, out)
		}
	}
	if _, err := os.Stat(newDir); err == nil {
		t.Errorf("POST /v1/backups created %s outside the allowlist", newDir)
	}
	// A body larger than any request the agent takes.
	code, out := agentRequest(t, sb, n, http.MethodPost, "/v1/recover", bytes.NewReader(bytes.Repeat([]byte(" "), 4<<20)))
	if code != http.StatusRequestEntityTooLarge && code != 0 {
		t.Errorf("POST /v1/recover with 4 MiB: %d %.200s, want 413", code, out)
	}
}

// plantBackup writes a complete-looking dump backup (valid manifest and
// checksums) whose dump runs a shell command through the client's \!.
func plantBackup(t *testing.T, dir, id, marker string) {
	t.Helper()
	bdir := filepath.Join(dir, id)
	if err := os.MkdirAll(bdir, 0o755); err != nil {
		t.Fatal(err)
	}
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	fmt.Fprintf(zw, "\\! touch %s\nCREATE DATABASE planted;\nCREATE TABLE planted.t (id INT PRIMARY KEY);\n", marker)
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(bdir, agent.DumpFile), gz.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(gz.Bytes())
	now := time.Now().UTC()
	m := agent.Manifest{
		Version: 1, ID: id, Method: agent.MethodDump, Node: "n1", Host: "attacker",
		StartedAt: now.Add(-time.Minute), EndedAt: now, SizeBytes: int64(gz.Len()),
		Files:  []agent.BackupFile{{Name: agent.DumpFile, Size: int64(gz.Len()), SHA256: hex.EncodeToString(sum[:])}},
		Tables: map[string]int{"planted": 1}, RowCounts: map[string]int64{},
	}
	b, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(bdir, agent.ManifestFile), b, 0o644); err != nil {
		t.Fatal(err)
	}
}

// attackPlantedDump verifies the planted backup through the agent: the
// restore must not run the shell escape, and the backup must not pass.
func attackPlantedDump(t *testing.T, sb *sandbox.Sandbox, allowed, marker string) {
	code, out := agentRequest(t, sb, sb.Nodes()[0], http.MethodPost, "/v1/backups/planted/verify", jsonBody(agent.VerifyRequest{Dir: allowed}))
	if _, err := os.Stat(marker); err == nil {
		t.Fatalf("verifying the planted dump ran its shell escape (%s exists); answer %d %.300s", marker, code, out)
	}
	if code == http.StatusOK {
		var res agent.VerifyResult
		if err := json.Unmarshal([]byte(out), &res); err != nil {
			t.Fatalf("verify answer: %v: %.300s", err, out)
		}
		if res.OK {
			t.Errorf("the planted dump verified OK: %.500s", out)
		}
		t.Logf("planted dump: verification failed as it must: %.300s", out)
	} else if code < 400 || code >= 500 {
		t.Errorf("verify of the planted dump: %d %.300s, want a failed verification or a 4xx", code, out)
	}
}

// roleTokens are the appliance's API tokens by role.
type roleTokens map[string]string

// startRolesAppliance runs an appliance with one token per role and
// remediation on, so a webhook that got through would start a job.
func startRolesAppliance(t *testing.T, sb *sandbox.Sandbox) (*appliance, roleTokens) {
	t.Helper()
	dir := t.TempDir()
	tokens := roleTokens{}
	var b strings.Builder
	addr := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	fmt.Fprintf(&b, "listen: %s\ndata_dir: data\napi:\n  tokens:\n", addr)
	for _, role := range []string{"read", "webhook", "operate", "admin"} {
		tok := fmt.Sprintf("%s-token-%d-%s", role, time.Now().UnixNano(), strings.Repeat("x", 8))
		f := filepath.Join(dir, role+"-token")
		if err := os.WriteFile(f, []byte(tok+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		tokens[role] = tok
		fmt.Fprintf(&b, "    - {name: %s, role: %s, token_file: %s}\n", role, role, f)
	}
	full := clusterConfig(sb, addr, "unused", true).String()
	// clusterConfig's own api section is replaced by the one above.
	full = full[strings.Index(full, "clusters:"):]
	b.WriteString(full)
	b.WriteString("    remediation: {mode: auto}\n")
	// It runs beside another appliance probing the shared sandbox from
	// this host: probe_source keeps their heartbeat rows apart.
	fmt.Fprintf(&b, "probe_source: %s\n", attackProbeSource)
	// The embedded Alertmanager, so its API's routes exist; its alerts go
	// nowhere (the attacks play the webhook's part themselves).
	if err := os.WriteFile(filepath.Join(dir, "alertmanager.yml"), []byte("route: {receiver: none}\nreceivers: [{name: none}]\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	b.WriteString("alertmanager: {embedded: alertmanager.yml}\n")
	cfg := filepath.Join(dir, "nines.yaml")
	if err := os.WriteFile(cfg, []byte(b.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	adminFile := filepath.Join(dir, "admin-token")
	a := startApplianceOn(t, ninesBin, addr, cfg, adminFile)
	waitFor(t, a.started, 30*time.Second, "ready", func() bool {
		resp, err := http.Get(a.base + "/readyz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})
	return a, tokens
}

// rawAPI sends one request with token (none when empty).
func rawAPI(t *testing.T, a *appliance, token, method, path string, body io.Reader) (int, string) {
	t.Helper()
	req, err := http.NewRequest(method, a.base+path, body)
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := (&http.Client{Timeout: 30 * time.Second}).Do(req)
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	return resp.StatusCode, string(b)
}

// attackRoles walks the appliance's route table with each role's token
// and none. A route a role may not use must answer 403 (401 without a
// token); one it may use must get past authorization. Changing routes get
// an empty body, so those that let the role through refuse the request
// itself (400) and nothing runs.
func attackRoles(t *testing.T, a *appliance, tokens roleTokens) {
	for _, r := range ninesapp.Routes() {
		path := concretePath(r.Path)
		var body func() io.Reader
		if r.Method == http.MethodPost || r.Method == http.MethodPut || r.Method == http.MethodDelete {
			body = func() io.Reader { return strings.NewReader("{}") }
		}
		mk := func() io.Reader {
			if body == nil {
				return nil
			}
			return body()
		}
		if code, out := rawAPI(t, a, "", r.Method, path, mk()); code != http.StatusUnauthorized {
			t.Errorf("%s %s without a token: %d %.200s, want 401", r.Method, path, code, out)
		}
		for role, tok := range tokens {
			code, out := rawAPI(t, a, tok, r.Method, path, mk())
			allowed := config.Allows(role, r.Role)
			switch {
			case !allowed && code != http.StatusForbidden:
				t.Errorf("%s %s with a %s token: %d %.200s, want 403", r.Method, path, role, code, out)
			case allowed && (code == http.StatusForbidden || code == http.StatusUnauthorized || code >= 500):
				t.Errorf("%s %s with a %s token: %d %.200s, want it past authorization", r.Method, path, role, code, out)
			}
		}
	}
}

// concretePath fills a route's parameters with harmless values.
func concretePath(p string) string {
	r := strings.NewReplacer(":name", "nosuchcluster", ":cluster", "nosuchcluster", ":id", "nosuchjob", ":uid", "nosuchdashboard", "*", "api/v2/status")
	return r.Replace(p)
}

// attackWebhook posts what Alertmanager would post for a down node, with
// a read token: it must be refused, and no job may start.
func attackWebhook(t *testing.T, a *appliance, tokens roleTokens, sb *sandbox.Sandbox) {
	n := sb.Nodes()[1]
	payload := map[string]any{
		"version": "4", "status": "firing", "receiver": "nines-remediator", "groupKey": "{}:{alertname=\"GaleraNodeDown\"}",
		"alerts": []map[string]any{{
			"status":      "firing",
			"labels":      map[string]string{"alertname": "GaleraNodeDown", "cluster": sb.ClusterName(), "instance": n.Address(), "remediation": "galera-rejoin", "severity": "page"},
			"annotations": map[string]string{},
			"startsAt":    time.Now().Add(-time.Minute).UTC().Format(time.RFC3339),
			"fingerprint": "forged0000000001",
		}},
	}
	for _, role := range []string{"read", ""} {
		code, out := rawAPI(t, a, tokens[role], http.MethodPost, "/api/v1/alerts/webhook", jsonBody(payload))
		want := http.StatusForbidden
		if role == "" {
			want = http.StatusUnauthorized
		}
		if code != want {
			t.Errorf("forged webhook with token %q: %d %.200s, want %d", role, code, out, want)
		}
	}
}

// attackBodies sends bodies far beyond any real request to the changing
// routes, with a token that may use them.
func attackBodies(t *testing.T, a *appliance, tokens roleTokens, sb *sandbox.Sandbox) {
	huge := func() io.Reader {
		return io.MultiReader(strings.NewReader(`{"alerts": [`), bytes.NewReader(bytes.Repeat([]byte(`{"labels": {"a": "b"}},`), 1<<20)), strings.NewReader(`{}]}`))
	}
	for _, c := range []struct{ role, path string }{
		{"webhook", "/api/v1/alerts/webhook"},
		{"admin", "/api/v1/jobs"},
		{"admin", "/api/v1/remediation/" + sb.ClusterName() + "/resume"},
	} {
		code, out := rawAPI(t, a, tokens[c.role], http.MethodPost, c.path, huge())
		if code != http.StatusRequestEntityTooLarge && code != 0 {
			t.Errorf("POST %s with 23 MiB: %d %.200s, want 413 or a closed connection", c.path, code, out)
		}
	}
}

// attackSlowClients opens connections to the appliance and an agent that
// send their headers (with a token, so the handler waits for the body)
// and then the body a byte a second: each server must close the
// connection by its read timeout rather than hold it for as long as the
// client likes.
func attackSlowClients(t *testing.T, a *appliance, adminToken string, sb *sandbox.Sandbox) {
	agentToken, err := os.ReadFile(sb.AgentTokenPath())
	if err != nil {
		t.Fatal(err)
	}
	const limit = 45 * time.Second // the servers' read timeouts are 30 s
	var wg sync.WaitGroup
	for _, target := range []struct{ name, base, path, token string }{
		{"appliance", a.base, "/api/v1/jobs", adminToken},
		{"agent", sb.Nodes()[0].AgentURL(), "/v1/recover", strings.TrimSpace(string(agentToken))},
	} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			u, err := url.Parse(target.base)
			if err != nil {
				t.Error(err)
				return
			}
			conn, err := net.Dial("tcp", u.Host)
			if err != nil {
				t.Error(err)
				return
			}
			defer conn.Close()
			start := time.Now()
			fmt.Fprintf(conn, "POST %s HTTP/1.1\r\nHost: %s\r\nAuthorization: Bearer %s\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{", target.path, u.Host, target.token)
			closed := make(chan time.Duration, 1)
			go func() {
				_, _ = io.Copy(io.Discard, bufio.NewReader(conn))
				closed <- time.Since(start)
			}()
			tick := time.NewTicker(time.Second)
			defer tick.Stop()
			for {
				select {
				case took := <-closed:
					t.Logf("measured: %s closed a client that dribbled its body after %s", target.name, took.Round(100*time.Millisecond))
					return
				case <-tick.C:
					if time.Since(start) > limit {
						t.Errorf("%s still holds a client dribbling its body after %s", target.name, limit)
						return
					}
					_, _ = conn.Write([]byte(" "))
				}
			}
		}()
	}
	wg.Wait()
}

// sandboxBackupDir is the backup directory the sandbox's agents allow.
func sandboxBackupDir(t *testing.T, sb *sandbox.Sandbox) string {
	t.Helper()
	d := sb.BackupDir()
	if err := os.MkdirAll(d, 0o755); err != nil {
		t.Fatal(err)
	}
	return d
}

// attackProbeSource is the attack appliance's probe_source.
const attackProbeSource = "attacks"

// probesAsItself: the attack appliance, beside another appliance on this
// host, probes the shared sandbox under its own probe_source: its probe
// succeeds and its heartbeat rows carry that name.
func probesAsItself(t *testing.T, a *appliance, sb *sandbox.Sandbox) {
	waitFor(t, time.Now(), 15*time.Second, "the probe succeeding", func() bool {
		s := a.query(`nines_probe_success{cluster="` + sb.ClusterName() + `"} == 1`)
		return len(s) > 0
	})
	db, err := sb.DB(sb.Nodes()[0].Name)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var rows int
	if err := db.QueryRow("SELECT COUNT(*) FROM nines.heartbeat WHERE source = ?", attackProbeSource).Scan(&rows); err != nil {
		t.Fatal(err)
	}
	if rows == 0 {
		t.Errorf("no heartbeat row with source %q: the probe wrote under another name", attackProbeSource)
	}
}
