package appliance

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/nines-project/nines/agent"
	"github.com/nines-project/nines/appliance/config"
	"github.com/nines-project/nines/internal/testpki"
)

// TestAgentClientOverTLS: the agent client the appliance builds from
// nines.yaml (agent_ca_file, agent_cert_file, agent_key_file) talks to a
// real agent that serves HTTPS and requires client certificates of the
// appliance's CA; without the client certificate, or trusting another
// CA, it gets no answer.
func TestAgentClientOverTLS(t *testing.T) {
	dir := t.TempDir()
	agentsCA, applianceCA := testpki.NewCA(t, "agents CA"), testpki.NewCA(t, "appliance CA")
	srv, client := agentsCA.Server(t), applianceCA.Client(t, "nines appliance")
	write := func(name string, b []byte) { testpki.Write(t, filepath.Join(dir, name), b) }
	write("agents-ca.pem", agentsCA.PEM())
	write("appliance-ca.pem", applianceCA.PEM())
	write("other-ca.pem", testpki.NewCA(t, "another CA").PEM())
	write("agent.crt", srv.CertPEM)
	write("agent.key", srv.KeyPEM)
	write("appliance.crt", client.CertPEM)
	write("appliance.key", client.KeyPEM)
	write("agent-token", []byte("agent-token-0123456789abcdef\n"))
	write("api-token", []byte("api-token-0123456789abcdef\n"))
	write("db.pass", []byte("pw\n"))
	write("my.cnf", []byte("[mysqld]\ndatadir="+filepath.Join(dir, "data")+"\nsocket=/nonexistent/mysqld.sock\n"))

	agentYAML := "listen: 127.0.0.1:0\n" +
		"tls: {cert_file: agent.crt, key_file: agent.key, client_ca_file: appliance-ca.pem}\n" +
		"token_file: agent-token\nserver:\n  process: {defaults_file: my.cnf, dir: srv}\n"
	write("agent.yaml", []byte(agentYAML))
	if err := os.Mkdir(filepath.Join(dir, "srv"), 0o755); err != nil {
		t.Fatal(err)
	}
	acfg, err := agent.Load(filepath.Join(dir, "agent.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	ready, done := make(chan string, 1), make(chan error, 1)
	go func() {
		done <- agent.Run(ctx, acfg, agent.Options{Logger: slog.New(slog.NewTextHandler(t.Output(), nil)), Ready: func(a string) { ready <- a }})
	}()
	var addr string
	select {
	case addr = <-ready:
	case err := <-done:
		t.Fatal(err)
	}
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("agent shutdown: %v", err)
		}
	}()

	status := func(tlsLines string) error {
		t.Helper()
		body := fmt.Sprintf("listen: 127.0.0.1:9104\ndata_dir: data\napi:\n  tokens: [{name: ops, role: admin, token_file: api-token}]\n"+
			"clusters:\n  - name: c1\n    kind: galera\n    nodes:\n      - {address: \"127.0.0.1:3306\", agent: \"https://%s\"}\n"+
			"    credentials: {user: nines, password_file: db.pass}\n    agent_token_file: agent-token\n%s", addr, tlsLines)
		p := filepath.Join(dir, "nines.yaml")
		if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		cfg, err := config.Load(p)
		if err != nil {
			t.Fatal(err)
		}
		c := cfg.Clusters[0]
		_, err = agent.NewClient(c.Nodes[0].Agent, c.AgentToken.Reveal(), c.AgentTLS).Status(ctx)
		return err
	}
	full := "    agent_ca_file: agents-ca.pem\n    agent_cert_file: appliance.crt\n    agent_key_file: appliance.key\n"
	if err := status(full); err != nil {
		t.Fatalf("status through the appliance's configured client: %v", err)
	}
	if err := status("    agent_ca_file: agents-ca.pem\n"); err == nil {
		t.Error("a client without its certificate got an answer from an agent that requires one")
	}
	if err := status(strings.Replace(full, "agents-ca.pem", "other-ca.pem", 1)); err == nil || !strings.Contains(err.Error(), "certificate") {
		t.Errorf("a client trusting another CA: %v, want a certificate error", err)
	}
}
