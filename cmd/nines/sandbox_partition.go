package main

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/spf13/cobra"

	"github.com/nines-project/nines/sandbox"
)

// partitionFlags are the flags of `nines sandbox partition`.
type partitionFlags struct {
	dir           string
	isolate, from string
	cut, mend     string
	heal          bool
	fromChanged   bool
}

// partitionAction is one validated request.
type partitionAction struct {
	kind string // isolate, cut, mend, heal
	a, b string // isolate: a is the node, b the scope
}

// parse checks the flags against the sandbox's node names: exactly one
// action, known names, a known --from.
func (f partitionFlags) parse(nodes []string) (partitionAction, error) {
	var set []string
	for _, x := range []struct {
		name string
		on   bool
	}{{"--isolate", f.isolate != ""}, {"--cut", f.cut != ""}, {"--mend", f.mend != ""}, {"--heal", f.heal}} {
		if x.on {
			set = append(set, x.name)
		}
	}
	switch {
	case len(set) == 0:
		return partitionAction{}, errors.New("give one of --isolate NODE, --cut A:B, --mend A:B or --heal")
	case len(set) > 1:
		return partitionAction{}, fmt.Errorf("give only one of %s", strings.Join(set, ", "))
	}
	if f.fromChanged && f.isolate == "" {
		return partitionAction{}, errors.New("--from goes with --isolate")
	}
	known := strings.Join(nodes, ", ")
	switch {
	case f.heal:
		return partitionAction{kind: "heal"}, nil
	case f.isolate != "":
		if !slices.Contains(nodes, f.isolate) {
			return partitionAction{}, fmt.Errorf("--isolate %q: no such node; nodes: %s", f.isolate, known)
		}
		switch f.from {
		case sandbox.PartitionNodes, sandbox.PartitionAppliance, sandbox.PartitionAll:
		default:
			return partitionAction{}, fmt.Errorf("--from %q: want %s, %s or %s", f.from, sandbox.PartitionNodes, sandbox.PartitionAppliance, sandbox.PartitionAll)
		}
		return partitionAction{kind: "isolate", a: f.isolate, b: f.from}, nil
	}
	flag, val, kind := "--cut", f.cut, "cut"
	if f.mend != "" {
		flag, val, kind = "--mend", f.mend, "mend"
	}
	a, b, ok := strings.Cut(val, ":")
	if !ok || a == "" || b == "" {
		return partitionAction{}, fmt.Errorf("%s %q: want A:B, two node names or %s (nodes: %s)", flag, val, sandbox.ApplianceName, known)
	}
	for _, x := range []string{a, b} {
		if x != sandbox.ApplianceName && !slices.Contains(nodes, x) {
			return partitionAction{}, fmt.Errorf("%s %q: no node %q; nodes: %s, or %s", flag, val, x, known, sandbox.ApplianceName)
		}
	}
	if a == b {
		return partitionAction{}, fmt.Errorf("%s %q: a link joins two different ends", flag, val)
	}
	return partitionAction{kind: kind, a: a, b: b}, nil
}

func newSandboxPartitionCmd() *cobra.Command {
	var f partitionFlags
	cmd := &cobra.Command{
		Use:   "partition --dir DIR (--isolate NODE [--from nodes|appliance|all] | --cut A:B | --mend A:B | --heal)",
		Short: "Cut and heal network links of a sandbox started with --netns",
		Long: `Cut or heal network links between the nodes of a sandbox started with
--netns, and between them and the appliance (the root namespace, named
"appliance"). A cut is a blackhole route in the node's namespace, so
connection attempts across it time out, as in a real partition; unix
sockets still work. Every change is idempotent and printed on one line.

  --isolate NODE --from nodes      cut NODE from every other node (default)
  --isolate NODE --from appliance  cut NODE from the appliance only
  --isolate NODE --from all        both
  --cut A:B / --mend A:B           one link, both ways
  --heal                           remove every cut`,
		Example: `  nines sandbox partition --dir /tmp/g3 --isolate n2
  nines sandbox partition --dir /tmp/g3 --cut n1:appliance
  nines sandbox partition --dir /tmp/g3 --heal`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			s, err := sandbox.Open(f.dir)
			if err != nil {
				return err
			}
			f.fromChanged = cmd.Flags().Changed("from")
			act, err := f.parse(sandbox.NodeNames(s.Nodes()))
			if err != nil {
				return err
			}
			lines := &lineCounter{w: cmd.OutOrStdout()}
			s.Log = lines
			ctx := cmd.Context()
			switch act.kind {
			case "heal":
				err = s.Heal(ctx)
			case "isolate":
				err = s.Isolate(ctx, act.a, act.b)
			case "cut":
				err = s.Cut(ctx, act.a, act.b)
			default:
				err = s.Mend(ctx, act.a, act.b)
			}
			if err == nil && lines.n == 0 {
				fmt.Fprintln(cmd.OutOrStdout(), "sandbox: nothing to change")
			}
			return err
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&f.dir, "dir", "", "sandbox directory (required)")
	_ = cmd.MarkFlagRequired("dir")
	fl.StringVar(&f.isolate, "isolate", "", "node to cut off")
	fl.StringVar(&f.from, "from", sandbox.PartitionNodes, "what --isolate cuts the node from: nodes, appliance or all")
	fl.StringVar(&f.cut, "cut", "", "cut one link A:B (node names or appliance)")
	fl.StringVar(&f.mend, "mend", "", "mend one link A:B")
	fl.BoolVar(&f.heal, "heal", false, "remove every cut")
	return cmd
}

// lineCounter counts the lines written through it.
type lineCounter struct {
	w io.Writer
	n int
}

func (c *lineCounter) Write(p []byte) (int, error) {
	c.n += bytes.Count(p, []byte{'\n'})
	return c.w.Write(p)
}
