package main

import (
	"fmt"
	"log/slog"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/nines-project/nines/sandbox/fleetsim"
)

// newSandboxFleetCmd is `nines sandbox fleet`: many simulated Galera nodes
// in one process, for fleet benchmarks and tests.
func newSandboxFleetCmd() *cobra.Command {
	var (
		dir, listen string
		o           = fleetsim.Options{User: "nines"}
	)
	cmd := &cobra.Command{
		Use:   "fleet --dir DIR [--nodes N] [--cluster-size S] [--base-port P]",
		Short: "Serve N simulated Galera nodes (MySQL protocol) in the foreground, for fleet benchmarks",
		Long: `Serve N simulated MariaDB Galera nodes from this one process until
interrupted: node i on 127.0.0.1:P+i, in clusters of S (fleet-0001, ...).
Each speaks the MySQL protocol as far as nines' scraper needs (login,
SHOW GLOBAL STATUS and VARIABLES with a real node's ~600 rows each,
counters that grow, Galera values a healthy cluster shows) and refuses
every other statement. It is not a database: it is for measuring what an
appliance costs per node, not for testing failover.

DIR gets nines.yaml for the whole fleet (no agents, probe off), the
monitoring password and an API token:
  nines run --config DIR/nines.yaml`,
		Example: `  nines sandbox fleet --dir /tmp/fleet --nodes 999 --base-port 40000`,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			pass, err := fleetsim.NewSecret()
			if err != nil {
				return err
			}
			o.Password = pass
			o.Logger = slog.New(slog.NewTextHandler(cmd.ErrOrStderr(), &slog.HandlerOptions{Level: slog.LevelWarn}))
			f, err := fleetsim.Start(o)
			if err != nil {
				return err
			}
			cfg, err := f.WriteConfig(dir, listen)
			if err != nil {
				_ = f.Close()
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "fleet: %d nodes in %d clusters on 127.0.0.1:%d-%d\nappliance config: %s\n",
				o.Nodes, len(f.Clusters()), o.BasePort, o.BasePort+o.Nodes-1, cfg)
			ctx, stop := signal.NotifyContext(cmd.Context(), syscall.SIGINT, syscall.SIGTERM)
			defer stop()
			err = f.Run(ctx)
			fmt.Fprintf(cmd.OutOrStdout(), "fleet: stopped after %d logins and %d statements\n", f.Connections(), f.Queries())
			return err
		},
	}
	f := cmd.Flags()
	f.StringVar(&dir, "dir", "", "directory for nines.yaml and its secrets (required)")
	_ = cmd.MarkFlagRequired("dir")
	f.IntVar(&o.Nodes, "nodes", 999, "number of simulated nodes")
	f.IntVar(&o.ClusterSize, "cluster-size", 3, "nodes per cluster")
	f.IntVar(&o.BasePort, "base-port", 40000, "node i listens on P+i")
	f.StringVar(&listen, "listen", "127.0.0.1:9104", "the appliance's listen address, written into nines.yaml")
	return cmd
}
