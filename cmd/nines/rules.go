package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/prometheus/prometheus/model/rulefmt"
	"github.com/spf13/cobra"

	"github.com/nines-project/nines/appliance"
	"github.com/nines-project/nines/rules"
	"github.com/nines-project/nines/rules/packs"
)

func newRulesCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "rules", Short: "Work with the alerting and recording rules nines runs"}
	var cfgPath, dir string
	export := &cobra.Command{
		Use:   "export [--config FILE] [--dir DIR]",
		Short: "Write every active rule (built-in, SLO-generated, user) as Prometheus rule files",
		Long: "Without --config only the built-in packs are exported. With --dir each source is written to its own " +
			"file (built-in packs keep their comments); without it one merged rule file goes to standard output. " +
			"The output passes `promtool check rules` and runs in Prometheus or vmalert.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			srcs := packs.Sources()
			if cfgPath != "" {
				cfg, err := loadConfig(cfgPath)
				if err != nil {
					return err
				}
				if srcs, err = appliance.RuleSources(cfg); err != nil {
					return err
				}
			}
			parsed, err := rules.ParseAll(srcs)
			if err != nil {
				return err
			}
			if dir != "" {
				if err := os.MkdirAll(dir, 0o755); err != nil {
					return err
				}
				for _, src := range srcs {
					name := filepath.Join(dir, exportName(src.Name))
					if err := os.WriteFile(name, src.Content, 0o644); err != nil {
						return err
					}
					fmt.Fprintln(cmd.OutOrStdout(), name)
				}
				return nil
			}
			var all []rulefmt.RuleGroup
			for _, ps := range parsed {
				all = append(all, ps.Groups...)
			}
			b, err := rules.Marshal(all)
			if err != nil {
				return err
			}
			_, err = cmd.OutOrStdout().Write(b)
			return err
		},
	}
	export.Flags().StringVar(&cfgPath, "config", "", "appliance config whose SLO rules and rule_files to include")
	export.Flags().StringVar(&dir, "dir", "", "write one file per source into this directory")
	cmd.AddCommand(export)
	return cmd
}

// exportName flattens a source name into a file name: builtin/galera.yml
// → builtin-galera.yml, /etc/nines/rules/x.yml → user-x.yml.
func exportName(src string) string {
	switch {
	case strings.HasPrefix(src, "builtin/"), strings.HasPrefix(src, "generated/"):
		return strings.ReplaceAll(src, "/", "-")
	}
	return "user-" + filepath.Base(src)
}
