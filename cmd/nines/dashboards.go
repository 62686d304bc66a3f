package main

import (
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/spf13/cobra"

	"github.com/nines-project/nines/appliance"
	"github.com/nines-project/nines/dashboards"
)

func newDashboardsCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "dashboards", Short: "Export or provision nines' Grafana dashboards"}

	var cfgPath, dir string
	export := &cobra.Command{
		Use:   "export --dir DIR [--config FILE]",
		Short: "Write every generated Grafana dashboard as DIR/<uid>.json",
		Long: "The files import into Grafana as they are (Dashboards > New > Import). Their queries go to the " +
			"data source chosen in the dashboard's datasource variable, by default the one named nines that " +
			"provisioning creates; any Prometheus data source pointing at nines works. With --config the " +
			"cluster variable selects the config's first cluster by default.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var o dashboards.Options
			if cfgPath != "" {
				cfg, err := loadConfig(cfgPath)
				if err != nil {
					return err
				}
				o = appliance.DashboardOptions(cfg)
			}
			if err := os.MkdirAll(dir, 0o755); err != nil {
				return fmt.Errorf("create %s: %w", dir, err)
			}
			for _, s := range dashboards.All() {
				b, err := s.JSON(o)
				if err != nil {
					return err
				}
				name := filepath.Join(dir, s.UID+".json")
				if err := os.WriteFile(name, append(b, '\n'), 0o644); err != nil {
					return fmt.Errorf("write dashboard %s: %w", s.UID, err)
				}
				fmt.Fprintln(cmd.OutOrStdout(), name)
			}
			return nil
		},
	}
	export.Flags().StringVar(&dir, "dir", "", "directory to write the dashboards into (created if missing)")
	export.Flags().StringVar(&cfgPath, "config", "", "appliance config; its first cluster becomes the default selection")
	_ = export.MarkFlagRequired("dir")

	var provCfg string
	provision := &cobra.Command{
		Use:   "provision --config FILE",
		Short: "Create the data source, folder and dashboards in the Grafana the config names, once",
		Long: "What the appliance does at start when grafana: is configured, run once in the foreground: " +
			"the Prometheus data source (uid nines) pointing at datasource_url with the named API token, the " +
			"folder, and every dashboard, overwriting earlier versions.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := loadConfig(provCfg)
			if err != nil {
				return err
			}
			g, err := appliance.GrafanaTarget(cfg)
			if err != nil {
				return err
			}
			start := time.Now()
			p, err := g.Provision(cmd.Context(), dashboards.All(), appliance.DashboardOptions(cfg))
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "provisioned %d dashboards into folder %s of %s in %s (data source %s %s)\n",
				len(p.Dashboards), p.FolderUID, g.URL, time.Since(start).Round(time.Millisecond), dashboards.DatasourceUID,
				map[bool]string{true: "created", false: "updated"}[p.DatasourceCreated])
			return nil
		},
	}
	provision.Flags().StringVar(&provCfg, "config", "", "appliance config with a grafana: section")
	_ = provision.MarkFlagRequired("config")

	cmd.AddCommand(export, provision)
	return cmd
}
