package main

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/nines-project/nines/appliance"
	"github.com/nines-project/nines/sandbox"
)

func newDemoCmd() *cobra.Command {
	var dir, listen string
	var basePort int
	cmd := &cobra.Command{
		Use:   "demo [--dir DIR] [--listen ADDR]",
		Short: "Start a 3-node Galera sandbox behind HAProxy and the appliance monitoring it; Ctrl-C stops both",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			out := cmd.OutOrStdout()
			fmt.Fprintf(out, "starting a 3-node Galera sandbox behind HAProxy in %s (SQL ports %d-%d) ...\n", dir, basePort, basePort+2)
			// HAProxy in front, as applications should reach a cluster:
			// the probe writes through its writer listener (the sandbox's
			// nines.yaml says so), so the SLI counts what they would see.
			sb, err := sandbox.StartGalera(ctx, sandbox.Options{Dir: dir, Nodes: 3, BasePort: basePort, ClusterName: "demo", Listen: listen, Log: out, HAProxy: true})
			if err != nil {
				return fmt.Errorf("demo sandbox: %w", err)
			}
			// Stop the sandbox however the appliance ends; ctx is already
			// cancelled by then, so use a fresh one.
			defer func() {
				fmt.Fprintln(out, "stopping the sandbox ...")
				stopCtx, cancel := context.WithTimeout(context.Background(), time.Minute)
				defer cancel()
				if err := sb.Stop(stopCtx); err != nil {
					fmt.Fprintln(os.Stderr, "nines: stop sandbox:", err)
				}
			}()

			cfg, err := loadConfig(sb.ConfigPath())
			if err != nil {
				return err
			}
			token, err := os.ReadFile(sb.TokenPath())
			if err != nil {
				return fmt.Errorf("read demo API token: %w", err)
			}
			console := fmt.Sprintf("user %s, password in %s", sandbox.ConsoleUser, sb.ConsolePasswordPath())
			if len(cfg.Console.Users) == 0 {
				// nines.yaml was edited by hand, so the sandbox left it
				// alone; a new one is written when it is removed.
				console = "no console user in " + sb.ConfigPath() + " (edited by hand: remove it and restart the demo to have one made)"
			}
			whost, wport, _ := net.SplitHostPort(sb.WriterAddress())
			log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
			return appliance.Run(ctx, cfg, appliance.Options{Listen: listen, Logger: log, Ready: func(addr string) {
				base := "http://" + addr
				fmt.Fprintf(out, `
nines demo is up.
  Console:          %[1]s/   (%[6]s)
  API:              %[1]s/api/v1/
  Query endpoint:   %[1]s/api/v1/query   (Grafana: a Prometheus data source at %[1]s with header "Authorization: Bearer <the read token in %[7]s>")
  API token:        %[2]s   (also in %[3]s)
  Config:           %[4]s
  Try:              curl -H "Authorization: Bearer %[2]s" '%[1]s/api/v1/query?query=mysql_global_status_wsrep_cluster_size'
  Connect to node:  mariadb --defaults-file=%[5]s
  HAProxy writer:   %[8]s   (one node takes every write: n1, another while n1 is down; the probe writes here)
  HAProxy reader:   %[9]s   (every healthy node, round robin)
  As the app:       mariadb --defaults-extra-file=%[10]s -h %[11]s -P %[12]s app
Press Ctrl-C to stop the appliance and the sandbox.
`, base, strings.TrimSpace(string(token)), sb.TokenPath(), sb.ConfigPath(), filepath.Join(dir, "n1", "my.cnf"), console, sb.ReadTokenPath(),
					sb.WriterAddress(), sb.ReaderAddress(), sb.AppClientConfigPath(), whost, wport)
			}})
		},
	}
	cmd.Flags().StringVar(&dir, "dir", filepath.Join(os.TempDir(), "nines-demo"), "sandbox directory; reused with its data when it exists")
	cmd.Flags().StringVar(&listen, "listen", "127.0.0.1:9104", "appliance listen address")
	cmd.Flags().IntVar(&basePort, "base-port", 13306, "first SQL port of the sandbox nodes")
	return cmd
}
