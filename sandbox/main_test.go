//go:build cluster

package sandbox

import (
	"fmt"
	"os"
	"testing"

	"github.com/nines-project/nines/internal/testbin"
)

// ninesBin is a nines binary built for the node agents: a test binary
// cannot run `agent`.
var ninesBin string

func TestMain(m *testing.M) {
	bin, cleanup, err := testbin.Build(false)
	if err != nil {
		fmt.Fprintln(os.Stderr, "sandbox tests:", err)
		os.Exit(1)
	}
	ninesBin = bin
	code := m.Run()
	cleanup()
	os.Exit(code)
}
