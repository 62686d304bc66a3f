package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"runtime/debug"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/nines-project/nines/appliance"
	"github.com/nines-project/nines/appliance/config"
)

func newRunCmd() *cobra.Command {
	var cfgPath, listen string
	cmd := &cobra.Command{
		Use:   "run --config FILE",
		Short: "Run the appliance: scrape every node, store, serve the API",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := loadConfig(cfgPath)
			if err != nil {
				return err
			}
			log := slog.New(slog.NewTextHandler(os.Stderr, nil))
			if limit, ok := memoryLimitFor(cfg); ok {
				debug.SetMemoryLimit(limit)
				log.Info("heap soft limit set for the fleet (GOMEMLIMIT overrides)", "limit_mib", limit>>20)
			}
			return appliance.Run(cmd.Context(), cfg, appliance.Options{Listen: listen, Logger: log, Reload: hangups(cmd.Context())})
		},
	}
	cmd.Flags().StringVar(&cfgPath, "config", "nines.yaml", "appliance config file, e.g. /etc/nines/nines.yaml")
	cmd.Flags().StringVar(&listen, "listen", "", "listen address overriding the config's, e.g. 127.0.0.1:9104")
	return cmd
}

// perNodeMemory is the heap a monitored node adds: its scraper's last
// snapshot and metrics, the ingester's memory of its series, the store's
// buffers for its ~1,100 series a second. Measured with the fleet
// benchmark: about 1.2 MB a node of live heap at 300 nodes.
const perNodeMemory = 3 << 19 // 1.5 MiB

// memoryLimitFor raises the heap's soft limit (defaultMemoryLimit, set in
// main for every command) with the size of the fleet: with a thousand
// nodes the live heap is far above 64 MiB, and a limit below it makes the
// collector run without pause (half the CPU went to it). Not when the
// operator set GOMEMLIMIT.
func memoryLimitFor(cfg *config.Config) (int64, bool) {
	if os.Getenv("GOMEMLIMIT") != "" {
		return 0, false
	}
	nodes := 0
	for _, c := range cfg.Clusters {
		nodes += len(c.Nodes)
	}
	return defaultMemoryLimit + int64(nodes)*perNodeMemory, true
}

func newCheckCmd() *cobra.Command {
	var cfgPath string
	cmd := &cobra.Command{
		Use:   "check --config FILE",
		Short: "Validate a config file; exit 2 and name file:line and field of every problem",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := loadConfig(cfgPath)
			if err != nil {
				return err
			}
			nodes := 0
			for _, c := range cfg.Clusters {
				nodes += len(c.Nodes)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "%s: ok (%d clusters, %d nodes)\n", cfgPath, len(cfg.Clusters), nodes)
			if cfg.Alertmanager.Embedded == "" && len(cfg.Alertmanager.URLs) == 0 {
				fmt.Fprintf(cmd.OutOrStdout(), "%s: warning: no alertmanager configured: alerts will be shown but never sent\n", cfgPath)
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&cfgPath, "config", "nines.yaml", "appliance config file to check")
	return cmd
}

// hangups delivers on every SIGHUP until ctx ends: the conventional
// "reload your configuration" signal.
func hangups(ctx context.Context) <-chan struct{} {
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGHUP)
	out := make(chan struct{}, 1)
	go func() {
		defer signal.Stop(sig)
		for {
			select {
			case <-ctx.Done():
				return
			case <-sig:
				select {
				case out <- struct{}{}:
				default:
				}
			}
		}
	}()
	return out
}

// loadConfig loads and validates a config. Any problem exits with code 2,
// the convention of config checkers (promtool, amtool), so scripts can
// tell a bad config from a failed run.
func loadConfig(path string) (*config.Config, error) {
	cfg, err := config.Load(path)
	if err != nil {
		var ce *config.Errors
		if errors.As(err, &ce) {
			return nil, &exitError{code: 2, err: fmt.Errorf("invalid config:\n%w", err)}
		}
		return nil, &exitError{code: 2, err: err}
	}
	// What the config points at (rule files, SLO rules, the Alertmanager
	// config) is checked too: a broken rule file never starts the appliance.
	if err := appliance.Check(cfg); err != nil {
		return nil, &exitError{code: 2, err: fmt.Errorf("invalid config:\n%w", err)}
	}
	return cfg, nil
}
