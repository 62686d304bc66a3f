package main

import (
	"github.com/spf13/cobra"

	"github.com/nines-project/nines/remediator"
)

func newSwitchoverCmd() *cobra.Command {
	var cfgPath, apiURL string
	var req remediator.ManualRequest
	var wait bool
	cmd := &cobra.Command{
		Use:   "switchover --cluster C [--to host:port] [--wait]",
		Short: "Hand a replication cluster's primary over to a replica, nothing lost (planned)",
		Long: `Start the replication-switchover runbook through the running appliance: the
primary is made read-only, the new primary (--to, or the most advanced
replica) catches up with it, is promoted, the other replicas and the old
primary replicate from it, and the load balancer's writer moves. If the
candidate does not catch up in time the old primary is opened again.`,
		Example: `  nines switchover --cluster billing --to 10.0.0.12:3306 --wait`,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := apiClient(cfgPath, apiURL)
			if err != nil {
				return err
			}
			req.Kind = "switchover"
			return startAndReport(cmd.Context(), cmd.OutOrStdout(), c, req, wait)
		},
	}
	cmd.Flags().StringVar(&cfgPath, "config", "nines.yaml", "appliance config (its listen address and first API token are used)")
	cmd.Flags().StringVar(&apiURL, "api", "", "the appliance's URL, when it is not the config's listen address (http://host:port)")
	cmd.Flags().StringVar(&req.Cluster, "cluster", "", "cluster name")
	cmd.Flags().StringVar(&req.Target, "to", "", "the replica to promote (host:port as configured); default: the most advanced")
	cmd.Flags().BoolVar(&req.DryRun, "dry-run", false, "record the plan without acting")
	cmd.Flags().BoolVar(&wait, "wait", false, "wait for the job to end and print its steps")
	_ = cmd.MarkFlagRequired("cluster")
	return cmd
}
