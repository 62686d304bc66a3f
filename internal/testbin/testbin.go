// Package testbin builds the nines command for tests that run it as its
// own process: node agents under a sandbox, the appliance in end-to-end
// tests. A Go test binary cannot be either.
package testbin

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"time"
)

// Build compiles nines (with the race detector when race is set) into a
// new temporary directory and returns the binary's path and a function
// that removes it. Progress goes to standard error, so a slow first build
// is not mistaken for a hang.
func Build(race bool) (string, func(), error) {
	dir, err := os.MkdirTemp("", "nines-test-bin-")
	if err != nil {
		return "", nil, err
	}
	bin := filepath.Join(dir, "nines")
	args := []string{"build", "-o", bin}
	if race {
		args = append(args, "-race")
	}
	cmd := exec.Command("go", append(args, "github.com/nines-project/nines/cmd/nines")...)
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	start := time.Now()
	if err := cmd.Run(); err != nil {
		os.RemoveAll(dir)
		return "", nil, fmt.Errorf("build nines: %w", err)
	}
	fmt.Fprintf(os.Stderr, "testbin: built %s (race %v) in %s\n", bin, race, time.Since(start).Round(time.Millisecond))
	return bin, func() { os.RemoveAll(dir) }, nil
}
