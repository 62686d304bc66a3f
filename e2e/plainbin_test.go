package e2e

import (
	"sync"
	"testing"

	"github.com/nines-project/nines/internal/testbin"
)

// The plain build is shared by the benchmarks and cleaned up by TestMain,
// so it lives outside the cluster-tagged bench file: the package compiles
// with and without the tag.
var (
	plainOnce    sync.Once
	plainBin     string
	plainCleanup = func() {}
	plainErr     error
)

// plainBinary builds nines without the race detector, for measurements
// (the race detector multiplies memory use).
func plainBinary(b *testing.B) string {
	b.Helper()
	plainOnce.Do(func() {
		plainBin, plainCleanup, plainErr = testbin.Build(false)
	})
	if plainErr != nil {
		b.Fatal(plainErr)
	}
	return plainBin
}
