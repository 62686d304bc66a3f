package remediator

import (
	"testing"
	"time"
)

func TestNodeRestartTimesPairStartWithSynced(t *testing.T) {
	at := time.Date(2026, 12, 7, 1, 0, 0, 0, time.UTC)
	step := func(name string, state StepState, from, to float64) Step {
		return Step{Name: name, State: state, StartedAt: at.Add(time.Duration(from * float64(time.Second))), EndedAt: at.Add(time.Duration(to * float64(time.Second)))}
	}
	j := &Job{Steps: []Step{
		step("observe-cluster", StepDone, 0, 0.1),
		step("start:n2:3306", StepDone, 1, 1.2),
		step("wait-synced:n2:3306", StepDone, 1.2, 4.5), // 3.5 s
		step("start:n3:3306", StepDone, 5, 5.1),
		step("wait-synced:n3:3306", StepFailed, 5.1, 60), // never Synced: not a measurement
		step("wait-synced:n1:3306", StepDone, 61, 62),    // no start of its own
	}}
	got := NodeRestartTimes(j)
	if len(got) != 1 || got[0] != 3500*time.Millisecond {
		t.Fatalf("NodeRestartTimes = %v, want [3.5s]", got)
	}
}
