package main

import (
	"context"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/nines-project/nines/appliance/apiclient"
	"github.com/nines-project/nines/remediator"
	"github.com/nines-project/nines/remediator/backup"
)

func newBackupCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "backup", Short: "Backups through the running appliance: run, list, verify, restore-plan"}
	var cfgPath, apiURL string
	cmd.PersistentFlags().StringVar(&cfgPath, "config", "nines.yaml", "appliance config (its listen address and first API token are used)")
	cmd.PersistentFlags().StringVar(&apiURL, "api", "", "the appliance's URL, when it is not the config's listen address (http://host:port)")
	client := func() (*apiclient.Client, error) { return apiClient(cfgPath, apiURL) }

	var runReq remediator.ManualRequest
	var wait bool
	run := &cobra.Command{
		Use:   "run --cluster C [--method mariabackup|dump|ndb] [--node host:port] [--wait]",
		Short: "Take a backup now, as its schedule would (the cluster's plan for the method: dir, verify, retention)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := client()
			if err != nil {
				return err
			}
			runReq.Kind = "backup"
			return startAndReport(cmd.Context(), cmd.OutOrStdout(), c, runReq, wait)
		},
	}
	run.Flags().StringVar(&runReq.Cluster, "cluster", "", "cluster name")
	run.Flags().StringVar(&runReq.Method, "method", "", "mariabackup | dump | ndb (an ndb cluster's native backup; default: the cluster's first configured backup)")
	run.Flags().StringVar(&runReq.Target, "node", "", "back up this node (host:port); default: the least loaded Synced node")
	run.Flags().BoolVar(&wait, "wait", false, "wait for the job to end and print its steps")

	var listCluster string
	list := &cobra.Command{
		Use:   "list [--cluster C]",
		Short: "List the backups the agents hold, newest first, with their verification",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := client()
			if err != nil {
				return err
			}
			l, err := c.Backups(cmd.Context(), listCluster)
			if err != nil {
				return err
			}
			return writeBackupList(cmd.OutOrStdout(), l, listCluster == "")
		},
	}
	list.Flags().StringVar(&listCluster, "cluster", "", "only this cluster")

	var verifyReq remediator.ManualRequest
	var verifyWait bool
	verify := &cobra.Command{
		Use:   "verify --cluster C --id ID [--wait]",
		Short: "Restore a backup into a scratch server on the host that holds it, and check it",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := client()
			if err != nil {
				return err
			}
			verifyReq.Kind = "verify"
			return startAndReport(cmd.Context(), cmd.OutOrStdout(), c, verifyReq, verifyWait)
		},
	}
	verify.Flags().StringVar(&verifyReq.Cluster, "cluster", "", "cluster name")
	verify.Flags().StringVar(&verifyReq.BackupID, "id", "", "the backup's id (nines backup list)")
	verify.Flags().BoolVar(&verifyWait, "wait", false, "wait for the verification to end and print its result")

	var planCluster, planID string
	plan := &cobra.Command{
		Use:   "restore-plan --cluster C --id ID",
		Short: "Print the manual steps to restore a backup onto a node (nines never restores by itself)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := loadConfig(cfgPath)
			if err != nil {
				return err
			}
			c, err := apiclient.FromConfig(cfg, apiURL)
			if err != nil {
				return err
			}
			l, err := c.Backups(cmd.Context(), planCluster)
			if err != nil {
				return err
			}
			for _, b := range l.Backups {
				if b.ID != planID {
					continue
				}
				for _, cl := range cfg.Clusters {
					if cl.Name == planCluster {
						return backup.WriteRestorePlan(cmd.OutOrStdout(), cl.Kind, planCluster, b.Entry)
					}
				}
			}
			return fmt.Errorf("cluster %s has no backup %q (nines backup list --cluster %s)", planCluster, planID, planCluster)
		},
	}
	plan.Flags().StringVar(&planCluster, "cluster", "", "cluster name")
	plan.Flags().StringVar(&planID, "id", "", "the backup's id (nines backup list)")
	for _, c := range []*cobra.Command{run, verify, plan} {
		_ = c.MarkFlagRequired("cluster")
	}
	_ = verify.MarkFlagRequired("id")
	_ = plan.MarkFlagRequired("id")
	cmd.AddCommand(run, list, verify, plan)
	return cmd
}

// startAndReport starts a job through the API and prints it; with wait,
// it follows the job until it ends and fails when the job did not
// succeed.
func startAndReport(ctx context.Context, out io.Writer, c *apiclient.Client, req remediator.ManualRequest, wait bool) error {
	j, err := c.StartJob(ctx, req)
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "job %s started: %s on cluster %s", j.ID, j.Runbook, j.Cluster)
	if j.Target != "" {
		fmt.Fprintf(out, ", node %s", j.Target)
	}
	if len(j.Params) > 0 {
		fmt.Fprintf(out, " %v", j.Params)
	}
	fmt.Fprintln(out)
	if !wait {
		fmt.Fprintf(out, "follow it with: nines jobs show %s\n", j.ID)
		return nil
	}
	if j, err = c.WaitJob(ctx, j.ID, time.Second); err != nil {
		return err
	}
	for _, s := range j.Steps {
		took := ""
		if !s.EndedAt.IsZero() {
			took = s.EndedAt.Sub(s.StartedAt).Round(time.Millisecond).String()
		}
		fmt.Fprintf(out, "  %-7s %-40s %-7s %9s", s.Kind, s.Name, s.State, took)
		if s.Error != "" {
			fmt.Fprintf(out, "  %s", s.Error)
		}
		fmt.Fprintln(out)
	}
	fmt.Fprintf(out, "job %s %s", j.ID, j.State)
	if j.Reason != "" {
		fmt.Fprintf(out, ": %s", j.Reason)
	}
	fmt.Fprintln(out)
	if j.State != remediator.JobSucceeded {
		return fmt.Errorf("job %s %s", j.ID, j.State)
	}
	return nil
}

func writeBackupList(out io.Writer, l *apiclient.Backups, withCluster bool) error {
	w := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	head := "ID\tNODE\tMETHOD\tSTARTED\tTOOK\tSIZE\tPOSITION\tVERIFIED\tRESTORE"
	if withCluster {
		head = "CLUSTER\t" + head
	}
	fmt.Fprintln(w, head)
	for _, b := range l.Backups {
		pos := backup.PositionText(b.Galera)
		if pos == "" && b.GTID != "" {
			pos = "gtid " + b.GTID
		}
		verified, restore := "-", "-"
		switch v := b.Verification; {
		case !b.Complete():
			verified = b.State
			if b.Running {
				verified += " (running)"
			}
		case v != nil && v.OK && v.Scope == backup.ScopeFiles:
			// Not restored: say so where the verification is shown.
			verified = "files ok (not restored)"
		case v != nil && v.Scope == backup.ScopeFiles:
			verified = "FAILED (files): " + v.Failure
		case v != nil && v.OK:
			verified, restore = "ok", fmt.Sprintf("%.1fs", v.RestoreSeconds)
		case v != nil:
			verified, restore = "FAILED: "+v.Failure, fmt.Sprintf("%.1fs", v.RestoreSeconds)
		}
		took := "-"
		if b.DurationSeconds > 0 {
			took = fmt.Sprintf("%.1fs", b.DurationSeconds)
		}
		row := fmt.Sprintf("%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s", b.ID, b.Source, b.Method, b.StartedAt.Local().Format("2006-01-02 15:04:05"),
			took, backup.HumanBytes(b.SizeBytes), pos, verified, restore)
		if withCluster {
			row = b.Cluster + "\t" + row
		}
		fmt.Fprintln(w, row)
	}
	if err := w.Flush(); err != nil {
		return err
	}
	if len(l.Backups) == 0 {
		fmt.Fprintln(out, "no backups")
	}
	writeNDBFiles(out, l)
	for _, s := range l.Schedules {
		line := fmt.Sprintf("schedule %s %s %q: next %s, %d started, %d skipped", s.Cluster, s.Method, s.Schedule, s.Next.Local().Format("2006-01-02 15:04:05"), s.Started, s.Skipped)
		if !s.Due.IsZero() {
			line += fmt.Sprintf(", run due %s waiting: %s", s.Due.Local().Format("15:04:05"), s.LastError)
		}
		fmt.Fprintln(out, strings.TrimSpace(line))
	}
	return nil
}

// writeNDBFiles lists each native NDB backup's files per data node, with
// their sizes and sha256, and what its verification checked.
func writeNDBFiles(out io.Writer, l *apiclient.Backups) {
	for _, b := range l.Backups {
		if b.NDB == nil {
			continue
		}
		fmt.Fprintf(out, "\nnative backup %d of %s (%s): %d data node(s)\n", b.NDB.BackupID, b.Cluster, b.State, len(b.NDB.Nodes))
		for _, n := range b.NDB.Nodes {
			fmt.Fprintf(out, "  data node %d (%s):\n", n.NodeID, n.Holder)
			for _, f := range n.Files {
				fmt.Fprintf(out, "    %s  %s  sha256:%s\n", f.Name, backup.HumanBytes(f.Size), f.SHA256)
			}
			for _, m := range n.Missing {
				fmt.Fprintf(out, "    %s  MISSING\n", m)
			}
		}
		if v := b.Verification; v != nil && v.Note != "" {
			fmt.Fprintf(out, "  verification: %s\n", v.Note)
		}
	}
}
