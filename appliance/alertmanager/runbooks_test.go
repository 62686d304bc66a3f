package alertmanager

import (
	"slices"
	"testing"

	"github.com/nines-project/nines/remediator"
)

// TestInhibitionCheckNamesRegisteredRunbooks fails when the inhibit-rule
// check tries a runbook nines does not have, or misses one it has.
func TestInhibitionCheckNamesRegisteredRunbooks(t *testing.T) {
	for _, v := range runbookValues {
		if _, ok := remediator.LookupRunbook(v); !ok && v != "any-runbook" {
			t.Errorf("runbookValues names %q, which is not a runbook nines has", v)
		}
	}
	for _, rb := range remediator.Runbooks {
		if !slices.Contains(runbookValues, rb.Name) {
			t.Errorf("runbookValues misses runbook %s", rb.Name)
		}
	}
}
