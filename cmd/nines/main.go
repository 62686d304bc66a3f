// Command nines is the appliance, its sandbox and its tools in one binary.
// main stays thin: it parses arguments and calls into the packages.
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"runtime/debug"
	"syscall"

	"github.com/spf13/cobra"
)

// exitError carries a process exit code out of a command.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string { return e.err.Error() }
func (e *exitError) Unwrap() error { return e.err }

// defaultMemoryLimit is the Go heap's soft limit when GOMEMLIMIT is not
// set. The appliance's live heap is a few tens of MB for a site; without a
// limit the store's flushes let garbage pile up to twice that before a
// collection. Measured on a 3-node sandbox: 84-93 MB RSS with the limit,
// 109-135 MB without, for about one more per cent of a core. Large fleets
// raise it with GOMEMLIMIT.
const defaultMemoryLimit = 64 << 20

func main() {
	if os.Getenv("GOMEMLIMIT") == "" {
		debug.SetMemoryLimit(defaultMemoryLimit)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := newRootCmd().ExecuteContext(ctx)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "nines:", err)
		var ee *exitError
		if errors.As(err, &ee) {
			os.Exit(ee.code)
		}
		os.Exit(1)
	}
}

func newRootCmd() *cobra.Command {
	root := &cobra.Command{
		Use:           "nines",
		Short:         "Keep MySQL and MariaDB clusters at five nines",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.AddCommand(newRunCmd(), newCheckCmd(), newDemoCmd(), newSandboxCmd(), newRulesCmd(), newJobsCmd(), newAgentCmd(), newBackupCmd())
	root.AddCommand(newReportCmd())
	root.AddCommand(newPasswdCmd())
	root.AddCommand(newDashboardsCmd())
	root.AddCommand(newHAProxyCmd())
	root.AddCommand(newDrillCmd())
	root.AddCommand(newSwitchoverCmd())
	root.AddCommand(newReseedCmd())
	return root
}
