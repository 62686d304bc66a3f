package sandbox

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"
)

// ninesBin is a nines binary built for the node agents: a test binary
// cannot run `agent`, so the tests build the real command once, as the
// e2e tests do.
var ninesBin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "nines-sandbox-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "sandbox tests:", err)
		os.Exit(1)
	}
	ninesBin = filepath.Join(dir, "nines")
	start := time.Now()
	build := exec.Command("go", "build", "-o", ninesBin, "../../cmd/nines")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "sandbox tests: build nines for the node agents:", err)
		os.Exit(1)
	}
	fmt.Fprintf(os.Stderr, "sandbox tests: built %s in %v\n", ninesBin, time.Since(start).Round(time.Millisecond))
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}
