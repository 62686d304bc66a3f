package main

import (
	"github.com/spf13/cobra"

	"github.com/nines-project/nines/remediator"
	replrb "github.com/nines-project/nines/remediator/replication"
)

func newReseedCmd() *cobra.Command {
	var cfgPath, apiURL, from string
	var req remediator.ManualRequest
	var wait, force bool
	cmd := &cobra.Command{
		Use:   "reseed --cluster C --node host:port [--from host:port] [--wait]",
		Short: "Rebuild a diverged replication node from a fresh backup of a replica (run by hand)",
		Long: `Start the replication-reseed runbook through the running appliance: the
node's diverged GTIDs (what it holds that the primary lacks) are written to
the job log, a healthy replica (--from, or the most advanced) streams a
mariadb-backup to the node's agent through the appliance, the node's old
datadir is moved aside (kept, named with the time) and the node replicates
from the primary from the backup's position. The primary is never rebuilt
nor copied from. A node that is not diverged is rebuilt only with --force
(needs role admin).`,
		Example: `  nines reseed --cluster billing --node 10.0.0.11:3306 --wait`,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := apiClient(cfgPath, apiURL)
			if err != nil {
				return err
			}
			req.Kind = "reseed"
			if from != "" {
				req.Params = map[string]string{replrb.ParamDonor: from}
			}
			if force {
				req.Force = req.Target
			}
			return startAndReport(cmd.Context(), cmd.OutOrStdout(), c, req, wait)
		},
	}
	cmd.Flags().StringVar(&cfgPath, "config", "nines.yaml", "appliance config (its listen address and first API token are used)")
	cmd.Flags().StringVar(&apiURL, "api", "", "the appliance's URL, when it is not the config's listen address (http://host:port)")
	cmd.Flags().StringVar(&req.Cluster, "cluster", "", "cluster name")
	cmd.Flags().StringVar(&req.Target, "node", "", "the node to rebuild (host:port as configured)")
	cmd.Flags().StringVar(&from, "from", "", "the replica to copy from (host:port as configured); default: the most advanced healthy replica")
	cmd.Flags().BoolVar(&force, "force", false, "rebuild the node even if it is not diverged or cannot be read")
	cmd.Flags().BoolVar(&req.DryRun, "dry-run", false, "record the plan without acting")
	cmd.Flags().BoolVar(&wait, "wait", false, "wait for the job to end and print its steps")
	_ = cmd.MarkFlagRequired("cluster")
	_ = cmd.MarkFlagRequired("node")
	return cmd
}
