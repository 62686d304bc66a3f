//go:build cluster

package probe

import (
	"fmt"
	"os"
	"testing"

	"github.com/nines-project/nines/internal/testbin"
)

// ninesBin runs the sandbox's node agents (a test binary cannot).
var ninesBin string

func TestMain(m *testing.M) {
	bin, cleanup, err := testbin.Build(false)
	if err != nil {
		fmt.Fprintln(os.Stderr, "probe tests:", err)
		os.Exit(1)
	}
	ninesBin = bin
	code := m.Run()
	cleanup()
	os.Exit(code)
}
