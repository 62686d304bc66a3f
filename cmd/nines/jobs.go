package main

import (
	"encoding/json"
	"fmt"
	"path/filepath"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/nines-project/nines/remediator"
)

// openJobLog opens the job log of the appliance configured in cfgPath,
// under its data_dir.
func openJobLog(cfgPath string) (*remediator.JobLog, error) {
	cfg, err := loadConfig(cfgPath)
	if err != nil {
		return nil, err
	}
	return remediator.OpenJobLog(filepath.Join(cfg.DataDir, "jobs"))
}

func newJobsCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "jobs", Short: "The remediator's job log: list, show, start"}
	var cfgPath, apiURL string
	cmd.PersistentFlags().StringVar(&cfgPath, "config", "nines.yaml", "appliance config (its data_dir holds the job log)")

	list := &cobra.Command{
		Use:   "list",
		Short: "List jobs, newest first (read from the durable job log; works while the appliance is down)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			log, err := openJobLog(cfgPath)
			if err != nil {
				return err
			}
			jobs, err := log.List()
			w := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
			fmt.Fprintln(w, "ID\tCLUSTER\tRUNBOOK\tTARGET\tSTATE\tTRIGGER\tTOOK\tREASON")
			for _, j := range jobs {
				took := ""
				if !j.EndedAt.IsZero() && !j.StartedAt.IsZero() {
					took = j.EndedAt.Sub(j.StartedAt).Round(10 * time.Millisecond).String()
				}
				trigger := j.Trigger.Source
				if j.Trigger.Alert != "" {
					trigger += ":" + j.Trigger.Alert
				}
				state := string(j.State)
				if j.DryRun {
					state += " (dry-run)"
				}
				fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", j.ID, j.Cluster, j.Runbook, j.Target, state, trigger, took, j.Reason)
			}
			if ferr := w.Flush(); ferr != nil {
				return ferr
			}
			return err
		},
	}
	show := &cobra.Command{
		Use:   "show ID",
		Short: "Show one job with every step, its input, output and timing",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			log, err := openJobLog(cfgPath)
			if err != nil {
				return err
			}
			j, err := log.Get(args[0])
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			fmt.Fprintf(out, "job %s: %s on cluster %s", j.ID, j.Runbook, j.Cluster)
			if j.Target != "" {
				fmt.Fprintf(out, " (node %s)", j.Target)
			}
			fmt.Fprintf(out, "\nstate: %s", j.State)
			if j.Reason != "" {
				fmt.Fprintf(out, ": %s", j.Reason)
			}
			fmt.Fprintf(out, "\ntrigger: %s %s, dry-run %v, resumed %d time(s)\ncreated %s\n\n",
				j.Trigger.Source, j.Trigger.Alert, j.DryRun, j.Resumes, j.CreatedAt.Format(time.RFC3339Nano))
			for i, s := range j.Steps {
				took := ""
				if !s.EndedAt.IsZero() {
					took = s.EndedAt.Sub(s.StartedAt).Round(time.Millisecond).String()
				}
				fmt.Fprintf(out, "%2d. %-6s %-32s %-8s %8s", i+1, s.Kind, s.Name, s.State, took)
				if s.Attempts > 1 {
					fmt.Fprintf(out, "  (attempt %d)", s.Attempts)
				}
				fmt.Fprintln(out)
				if len(s.Input) > 0 && string(s.Input) != "null" {
					fmt.Fprintf(out, "      in:  %s\n", s.Input)
				}
				if len(s.Output) > 0 && string(s.Output) != "null" {
					fmt.Fprintf(out, "      out: %s\n", truncate(string(s.Output), 400))
				}
				if s.Error != "" {
					fmt.Fprintf(out, "      err: %s\n", s.Error)
				}
			}
			return nil
		},
	}
	var req remediator.ManualRequest
	start := &cobra.Command{
		Use:   "start --cluster C --runbook R [--node N] [--force-node N] [--dry-run]",
		Short: "Start a runbook by hand through the running appliance's API",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := apiClient(cfgPath, apiURL)
			if err != nil {
				return err
			}
			j, err := c.StartJob(cmd.Context(), req)
			if err != nil {
				return fmt.Errorf("start job: %w", err)
			}
			b, err := json.MarshalIndent(j, "", "  ")
			if err != nil {
				return err
			}
			_, err = cmd.OutOrStdout().Write(append(b, '\n'))
			return err
		},
	}
	start.Flags().StringVar(&req.Cluster, "cluster", "", "cluster name")
	start.Flags().StringVar(&req.Runbook, "runbook", "", "the runbook: "+remediator.RunbookGaleraNodeRejoin+", "+remediator.RunbookGaleraQuorumRecovery+", "+remediator.RunbookGaleraRollingRestart+", "+remediator.RunbookNdbRollingRestart+" … (README: runbooks)")
	start.Flags().StringVar(&req.Target, "node", "", "the node (host:port) for node runbooks")
	start.Flags().StringVar(&req.Force, "force-node", "", "bootstrap from this node even when safety checks refuse")
	start.Flags().BoolVar(&req.DryRun, "dry-run", false, "record the plan, touch nothing")
	start.Flags().StringVar(&apiURL, "api", "", "the appliance's URL, when it is not the config's listen address (http://host:port)")
	cmd.AddCommand(list, show, start)
	return cmd
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
