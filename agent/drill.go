package agent

import (
	"context"
	"errors"
	"net/http"
)

// ErrDrillNotAllowed is the answer (403) to a drill kill on a host whose
// agent.yaml does not allow drills.
var ErrDrillNotAllowed = errors.New("drills are not allowed on this host: set drill: {allowed: true} in agent.yaml to let nines kill -9 its server")

// drillKill is POST /v1/drill/kill: SIGKILL the running server at once,
// as a crash would, for a failure drill. It needs the host's own consent
// (cfg.Drill.Allowed) besides the token: two keys. The server stays down
// (the agent never restarts one by itself), so the remediator repairs it
// as it would a real crash. A stopped server answers WasRunning false.
func (a *Agent) drillKill(ctx context.Context, _ struct{}) (StopResult, error) {
	if !a.cfg.Drill.Allowed {
		return StopResult{}, forbidden(ErrDrillNotAllowed)
	}
	release, err := a.acquire("drill kill")
	if err != nil {
		return StopResult{}, err
	}
	defer release()
	a.log.Warn("drill: killing the server with SIGKILL")
	return a.stopLocked(ctx, false, 0)
}

// DrillKill asks the agent to kill -9 its server for a failure drill.
func (c *Client) DrillKill(ctx context.Context) (StopResult, error) {
	var out StopResult
	err := c.do(ctx, "drill kill", http.MethodPost, "/v1/drill/kill", struct{}{}, &out)
	return out, err
}
