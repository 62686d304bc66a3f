package main

import (
	"errors"
	"fmt"
	"log/slog"
	"os"

	"github.com/spf13/cobra"

	"github.com/nines-project/nines/agent"
	"github.com/nines-project/nines/appliance/config"
)

// newAgentCmd is `nines agent`: the host agent on a database host.
// Everything happens in package agent; this only maps flags.
func newAgentCmd() *cobra.Command {
	var cfgPath, level string
	cmd := &cobra.Command{
		Use:   "agent --config FILE",
		Short: "Run the host agent: control the local MariaDB server over an authenticated API",
		Long: `Run the nines agent on a database host. It serves an authenticated HTTP API
(bearer token; TLS when configured) to start, stop and restart the local
server, read grastate.dat, run --wsrep-recover, set the bootstrap fields,
run pc.bootstrap and report free disk, plus its own /metrics.

The agent never restarts a server by itself: a crashed server stays down
until someone asks for a start. SIGTERM or SIGINT stop the agent; the
database server keeps running.`,
		Example: `  nines agent --config /etc/nines/agent.yaml`,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var lvl slog.Level
			if err := lvl.UnmarshalText([]byte(level)); err != nil {
				return &exitError{code: 2, err: fmt.Errorf("--log-level %q: want debug, info, warn or error", level)}
			}
			cfg, err := agent.Load(cfgPath)
			if err != nil {
				var ce *config.Errors
				if errors.As(err, &ce) {
					return &exitError{code: 2, err: fmt.Errorf("invalid agent config:\n%w", err)}
				}
				return &exitError{code: 2, err: err}
			}
			log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: lvl}))
			return agent.Run(cmd.Context(), cfg, agent.Options{Logger: log})
		},
	}
	cmd.Flags().StringVar(&cfgPath, "config", "agent.yaml", "agent config file, e.g. /etc/nines/agent.yaml")
	cmd.Flags().StringVar(&level, "log-level", "info", "debug logs every status read too")
	return cmd
}
