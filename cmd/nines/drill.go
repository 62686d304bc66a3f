package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/nines-project/nines/appliance/report"
)

func newDrillCmd() *cobra.Command {
	var cfgPath, apiURL, cluster, scenario string
	var timeout time.Duration
	cmd := &cobra.Command{
		Use:   "drill --cluster C --scenario node-crash|two-crash|whole-crash|writer-kill|primary-kill",
		Short: "Run a failure drill (a real kill -9) on a cluster declared a drill target, and print its measured RTO and RPO",
		Long: `Asks the running appliance to run a failure drill: it writes through the
cluster with an independent writer, kills -9 the scenario's servers through
their agents, lets the remediator repair them, and measures detection, repair
(RTO), the longest write stall and the acknowledged writes lost (RPO). The
cluster must have drill: {allowed: true} in nines.yaml, and each host's
agent.yaml drill: {allowed: true}; the appliance refuses a cluster that is not
healthy or whose remediation is not auto. Needs an admin token.
writer-kill kills the node the cluster's HAProxy sends writes to (the cluster
needs its haproxy: key). primary-kill (kind replication) kills the primary;
the remediator's failover promotes a replica (the drill never promotes nor
fences), the drill then starts the old primary again, as an operator would,
and the remediator makes it a replica of the new one. It prints when writes
were acknowledged again ("writes back", the failover) besides the RTO (the
old primary a replica again).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if cluster == "" || scenario == "" {
				return errors.New("--cluster and --scenario are required")
			}
			c, err := apiClient(cfgPath, apiURL)
			if err != nil {
				return err
			}
			d, err := c.StartDrill(cmd.Context(), cluster, scenario)
			if err != nil {
				return fmt.Errorf("drill %s on %s: %w", scenario, cluster, err)
			}
			out := cmd.OutOrStdout()
			fmt.Fprintf(out, "drill %s on cluster %s: %s, killing %s\n", d.ID, cluster, d.Scenario, strings.Join(d.Victims, ", "))
			ctx, cancel := context.WithTimeout(cmd.Context(), timeout)
			defer cancel()
			d, err = c.WaitDrill(ctx, cluster, d.ID, 500*time.Millisecond)
			if err != nil {
				return fmt.Errorf("follow drill: %w", err)
			}
			printDrill(out, d)
			if d.State != "done" {
				return fmt.Errorf("drill %s %s: %s", d.ID, d.State, d.Reason)
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&cfgPath, "config", "nines.yaml", "appliance config (its API address and token)")
	cmd.Flags().StringVar(&apiURL, "api", "", "the appliance's URL, when it is not the config's listen address (http://host:port)")
	cmd.Flags().StringVar(&cluster, "cluster", "", "cluster name (declared with drill: {allowed: true})")
	cmd.Flags().StringVar(&scenario, "scenario", "", "galera: node-crash (one node), two-crash (two of three), whole-crash (every node), writer-kill (HAProxy's writer); replication: primary-kill (the primary)")
	cmd.Flags().DurationVar(&timeout, "timeout", 15*time.Minute, "how long to follow the drill")
	return cmd
}

// printDrill writes the drill's figures, one per line, as "name: value".
func printDrill(w io.Writer, d *report.Drill) {
	fmt.Fprintf(w, "state: %s", d.State)
	if d.Reason != "" {
		fmt.Fprintf(w, " (%s)", d.Reason)
	}
	fmt.Fprintf(w, "\ndetection: %.1f s\n", d.DetectionSeconds)
	if d.FailoverSeconds > 0 {
		fmt.Fprintf(w, "writes back: %.1f s\n", d.FailoverSeconds)
	}
	fmt.Fprintf(w, "RTO: %.1f s\nlongest write stall: %.1f s\nacknowledged writes: %d\nRPO: %d acknowledged writes lost\n",
		d.RTOSeconds, d.StallSeconds, d.AckedWrites, d.LostWrites)
}
