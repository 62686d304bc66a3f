package agent

import (
	"context"
	"net/http"
	"strings"
	"testing"
)

// TestDrillKillNeedsTheHostsConsent: the appliance's token alone cannot
// crash a server; agent.yaml must allow drills too.
func TestDrillKillNeedsTheHostsConsent(t *testing.T) {
	_, c, base := serveStopped(t, "")
	_, err := c.DrillKill(context.Background())
	if !hasStatus(err, http.StatusForbidden) || !strings.Contains(err.Error(), "drill: {allowed: true}") {
		t.Fatalf("drill kill without drill.allowed: got %v, want 403 naming drill: {allowed: true}", err)
	}
	if st, _ := call(t, "POST", base+"/v1/drill/kill", "", ""); st != http.StatusUnauthorized {
		t.Fatalf("drill kill without a token: status %d, want 401", st)
	}

	if st, err := c.Status(context.Background()); err != nil || st.DrillAllowed {
		t.Fatalf("status without drill.allowed: drill_allowed %v, %v; want false", st.DrillAllowed, err)
	}

	// Allowed: a stopped server is nothing to kill, and says so.
	_, c, _ = serveStopped(t, "drill: {allowed: true}\n")
	if st, err := c.Status(context.Background()); err != nil || !st.DrillAllowed {
		t.Fatalf("status with drill.allowed: drill_allowed %v, %v; want true", st.DrillAllowed, err)
	}
	res, err := c.DrillKill(context.Background())
	if err != nil || res.WasRunning {
		t.Fatalf("drill kill of a stopped server with drills allowed: %+v, %v; want was_running false", res, err)
	}
}
