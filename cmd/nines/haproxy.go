package main

import (
	"fmt"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strconv"

	"github.com/spf13/cobra"

	"github.com/nines-project/nines"
	"github.com/nines-project/nines/appliance/config"
	"github.com/nines-project/nines/haproxy"
)

func newHAProxyCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "haproxy", Short: "Put HAProxy in front of a cluster: one writer, many readers"}
	var (
		cfgPath, cluster, out, bind, socket string
		writerPort, readerPort              int
	)
	gen := &cobra.Command{
		Use:   "config --config nines.yaml --cluster C [--out FILE] [--writer-port P --reader-port Q] [--stats-socket PATH]",
		Short: "Write an HAProxy 2.6 configuration for a Galera or replication cluster",
		Long: `Write an HAProxy 2.6 configuration for a Galera or replication cluster of
nines.yaml:

  CLUSTER-writer  (--writer-port) Galera: every connection goes to the first
                  node whose agent says it may write; the other nodes are
                  backups. Replication: every node is a server, and only
                  the primary (read_only OFF, replicating from nobody)
                  passes the writer check
  CLUSTER-reader  (--reader-port) connections spread over every healthy node
                  (replication: replicas within 10 s of lag)

Each node is checked through its nines agent (GET /v1/health/writer and
/v1/health/reader, with the agents' bearer token) every 500 ms; two
failed checks (about a second) take it out and close its sessions. https
agents are checked with TLS, verified against agent_ca_file or the
system's roots. The runtime API listens on --stats-socket (mode 600,
level admin).

The file holds the agents' token: it is written mode 0600, and without
--out the configuration goes to standard output.`,
		Example: `  nines haproxy config --config /etc/nines/nines.yaml --cluster billing --out /etc/haproxy/haproxy.cfg
  haproxy -c -f /etc/haproxy/haproxy.cfg`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := loadConfig(cfgPath)
			if err != nil {
				return err
			}
			var cl *config.Cluster
			for i := range cfg.Clusters {
				if cfg.Clusters[i].Name == cluster {
					cl = &cfg.Clusters[i]
				}
			}
			if cl == nil {
				return fmt.Errorf("no cluster %q in %s", cluster, cfgPath)
			}
			if socket == "" {
				socket = "/run/haproxy/nines-" + cluster + ".sock"
			}
			hc, err := haproxyConfig(cl, bind, writerPort, readerPort, socket)
			if err != nil {
				return err
			}
			b, err := haproxy.Render(hc)
			if err != nil {
				return err
			}
			if out == "" {
				_, err = cmd.OutOrStdout().Write(b)
				return err
			}
			if err := writeSecretFile(out, b); err != nil {
				return err
			}
			fmt.Fprintf(cmd.ErrOrStderr(), "wrote %s (mode 0600: it holds the agents' token); check it with: haproxy -c -f %s\n", out, out)
			return nil
		},
	}
	f := gen.Flags()
	f.StringVar(&cfgPath, "config", "nines.yaml", "appliance config naming the cluster's nodes and agents")
	f.StringVar(&cluster, "cluster", "", "the Galera or replication cluster to balance (required)")
	_ = gen.MarkFlagRequired("cluster")
	f.StringVar(&out, "out", "", "write the configuration to this file (mode 0600) instead of standard output")
	f.StringVar(&bind, "bind", "", "address the listeners bind to; empty is every address")
	f.IntVar(&writerPort, "writer-port", 3306, "port of the writer listener")
	f.IntVar(&readerPort, "reader-port", 3307, "port of the reader listener")
	f.StringVar(&socket, "stats-socket", "", "the runtime API's unix socket (default /run/haproxy/nines-CLUSTER.sock)")
	cmd.AddCommand(gen)
	return cmd
}

// haproxyConfig maps a Galera or replication cluster of nines.yaml onto
// the generator's input: servers in the config's order, named n1, n2 ...
// (Galera: n1 is the writer; replication: whichever is the primary), each
// checked at its agent's host and port.
func haproxyConfig(cl *config.Cluster, bind string, writerPort, readerPort int, socket string) (haproxy.Config, error) {
	if cl.Kind != nines.KindGalera && cl.Kind != nines.KindReplication {
		return haproxy.Config{}, fmt.Errorf("cluster %s is %s: only Galera and replication clusters can be balanced", cl.Name, cl.Kind)
	}
	if cl.AgentCertFile != "" {
		return haproxy.Config{}, fmt.Errorf("cluster %s: agents requiring client certificates (agent_cert_file) cannot be checked by the generated config yet", cl.Name)
	}
	hc := haproxy.Config{
		Cluster:     cl.Name,
		WriterBind:  net.JoinHostPort(bind, strconv.Itoa(writerPort)),
		ReaderBind:  net.JoinHostPort(bind, strconv.Itoa(readerPort)),
		Token:       cl.AgentToken.Reveal(),
		StatsSocket: socket,
		Replication: cl.Kind == nines.KindReplication,
	}
	if cl.AgentCAFile != "" {
		ca, err := filepath.Abs(cl.AgentCAFile)
		if err != nil {
			return hc, err
		}
		hc.CAFile = ca
	}
	for i, n := range cl.Nodes {
		if n.Agent == "" {
			return hc, fmt.Errorf("cluster %s: node %s has no agent: HAProxy checks nodes through their agents", cl.Name, n.Address)
		}
		u, err := url.Parse(n.Agent)
		if err != nil {
			return hc, fmt.Errorf("cluster %s: node %s: agent URL: %w", cl.Name, n.Address, err)
		}
		port := u.Port()
		if port == "" {
			port = map[string]string{"http": "80", "https": "443"}[u.Scheme]
		}
		p, err := strconv.Atoi(port)
		if err != nil {
			return hc, fmt.Errorf("cluster %s: node %s: agent URL %q has no port", cl.Name, n.Address, n.Agent)
		}
		hc.Servers = append(hc.Servers, haproxy.Server{
			Name: haproxy.ServerName(i), Address: n.Address,
			AgentHost: u.Hostname(), AgentPort: p, AgentTLS: u.Scheme == "https",
		})
	}
	return hc, nil
}

// writeSecretFile writes b to path mode 0600, replacing it atomically.
func writeSecretFile(path string, b []byte) error {
	dir := filepath.Dir(path)
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(path)+"-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	_, err = tmp.Write(b)
	if err == nil {
		err = tmp.Chmod(0o600)
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), path)
	}
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}
