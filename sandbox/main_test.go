//go:build cluster

package sandbox

import (
	"fmt"
	"os"
	"testing"

	"github.com/nines-project/nines/internal/testbin"
)

// ninesBin is a nines binary built for the node agents: a test binary
// cannot run `agent`. It is built with the race detector, and races holds
// the agents' race reports.
var (
	ninesBin string
	races    *testbin.Races
)

func TestMain(m *testing.M) {
	var err error
	if races, err = testbin.WatchRaces(); err != nil {
		fmt.Fprintln(os.Stderr, "sandbox tests:", err)
		os.Exit(1)
	}
	bin, cleanup, err := testbin.Build(true)
	if err != nil {
		fmt.Fprintln(os.Stderr, "sandbox tests:", err)
		os.Exit(1)
	}
	ninesBin = bin
	code := m.Run()
	for _, rep := range races.New() {
		fmt.Fprintf(os.Stderr, "sandbox tests: FAIL: data race in an agent:\n%s\n", rep)
		code = 1
	}
	races.Close()
	cleanup()
	os.Exit(code)
}

// watchRaces fails t with the race reports the agents wrote during it.
// Call it first in a test, so its cleanup runs after the sandbox stopped.
func watchRaces(t *testing.T) {
	t.Cleanup(func() { races.Check(t) })
}

// sideBySide runs a test after the package's others, two at a time
// (-parallel 2 in the Makefile): the sandboxes these start have ports of
// their own (fixed, or from testbin.ClusterPorts) and their waits are
// generous; one after the other they cost minutes of CI.
func sideBySide(t *testing.T) { t.Parallel() }
