package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"github.com/nines-project/nines/appliance/apiclient"
	"github.com/nines-project/nines/appliance/report"
)

func newReportCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "report", Short: "Reports from the running appliance's store"}
	var cfgPath, apiURL, cluster, from, to, format, out string
	uptime := &cobra.Command{
		Use:   "uptime --cluster C [--from F] [--to T] [--format html|pdf|csv|json] [--out FILE]",
		Short: "A cluster's uptime report: availability, downtime, error budget, incidents, daily chart, 12 months",
		Long: `A cluster's uptime report, computed by the running appliance from the write
probe's good, bad, unknown and maintenance seconds.

--from and --to take RFC 3339 (2026-11-01T00:00:00Z) or a date (2026-11-01, UTC;
as --to it means the end of that day); --from also takes "month" (the calendar
month so far) or a duration back from --to ("30d", "7d", "12h"). Default: the
last 30 days. The report goes to standard output, or to --out.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if !report.KnownFormat(format) {
				return fmt.Errorf("--format %q: want one of %s", format, strings.Join(report.Formats, ", "))
			}
			if cluster == "" {
				return fmt.Errorf("--cluster is required")
			}
			c, err := apiClient(cfgPath, apiURL)
			if err != nil {
				return err
			}
			resp, err := c.ReportDocument(cmd.Context(), apiclient.ReportRequest{Cluster: cluster, From: from, To: to, Format: format})
			if err != nil {
				return err
			}
			body := resp.Body
			if format == "json" {
				// The document, without the API's envelope.
				var env struct{ Data json.RawMessage }
				var b bytes.Buffer
				if err := json.Unmarshal(body, &env); err != nil || json.Indent(&b, env.Data, "", "  ") != nil {
					return fmt.Errorf("uptime report: the appliance's JSON does not decode: %v", err)
				}
				body = append(b.Bytes(), '\n')
			}
			if out == "" {
				_, err = cmd.OutOrStdout().Write(body)
				return err
			}
			if err := os.WriteFile(out, body, 0o644); err != nil {
				return fmt.Errorf("write uptime report: %w", err)
			}
			return nil
		},
	}
	uptime.Flags().StringVar(&cfgPath, "config", "nines.yaml", "appliance config (its listen address and first API token are used)")
	uptime.Flags().StringVar(&apiURL, "api", "", "the appliance's URL, when it is not the config's listen address (http://host:port)")
	uptime.Flags().StringVar(&cluster, "cluster", "", "cluster name")
	uptime.Flags().StringVar(&from, "from", "", `start: RFC 3339, a date, "month" or a duration back from --to ("30d"); default 30 days before --to`)
	uptime.Flags().StringVar(&to, "to", "", "end: RFC 3339 or a date (its end); default now")
	uptime.Flags().StringVar(&format, "format", "html", "html | pdf | csv | json")
	uptime.Flags().StringVar(&out, "out", "", "write to this file instead of standard output")
	cmd.AddCommand(uptime)
	return cmd
}
