//go:build cluster

package e2e

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// Drill 6: the appliance killed with -9 during each act step of a quorum
// recovery in turn, after a whole-cluster crash each time. The job
// resumes, never two bootstraps in one crash, each act step once,
// nothing acknowledged lost.
func TestQuorumRecoveryApplianceKilledAtEachStep(t *testing.T) {
	waitsSideBySide(t) // eight crash-and-resume cycles, each bounded at 90 s
	sb := freshGalera(t, "resumedrill")
	h := startHealer(t, sb, remediationOpts{mode: "auto", maxRecoveries: 50})
	waitProbeWrites(t, h.appliance, sb.ClusterName(), 3, 3)
	chk, w := startSplitBrainChecker(t, sb), startDrillWriter(t, sb)
	w.waitAcked(t, 20, 10*time.Second)

	for k := 0; ; k++ {
		seen := map[string]bool{}
		for _, j := range h.jobs(t) {
			seen[j.ID] = true
		}
		killed := kill(t, sb, nodeNames(sb)...)
		var job jobView
		var step, runningStep string
		waitFor(t, killed, 60*time.Second, fmt.Sprintf("act step %d of the recovery job", k+1), func() bool {
			for _, j := range h.jobs(t) {
				if seen[j.ID] || j.Runbook != "galera-quorum-recovery" {
					continue
				}
				acts := 0
				for _, s := range j.Steps {
					if s.Kind != "act" {
						continue
					}
					if acts == k && (s.State == "running" || s.State == "done") {
						job, step = j, s.Name+" ("+s.State+")"
						return true
					}
					acts++
				}
				if j.State != "running" && j.State != "pending" {
					job, step = j, ""
					return true // ended with fewer than k+1 act steps
				}
			}
			return false
		})
		if step == "" {
			t.Logf("job %s has %d act steps: every one was interrupted in turn", job.ID, k)
			if k < 3 {
				t.Errorf("only %d act steps seen: %+v", k, job)
			}
			h.waitHealthy(t, killed, 60*time.Second)
			break
		}
		h.kill()
		// The job went on between the look above and the kill: which act
		// step the kill interrupted is what the job log holds now, before
		// the restart resumes it.
		runningStep = interruptedAct(t, h, job.ID)
		t.Logf("appliance killed with -9 at act step %d, %s, of job %s, %s after the crash; running at the kill: %q", k+1, step, job.ID, time.Since(killed).Round(time.Millisecond), runningStep)
		h.restart(t)
		took := h.waitHealthy(t, killed, 90*time.Second)
		var ended jobView
		waitFor(t, time.Now(), 60*time.Second, "the interrupted job to end", func() bool {
			for _, j := range h.jobs(t) {
				if j.ID == job.ID && j.State != "running" && j.State != "pending" {
					ended = j
					return true
				}
			}
			return false
		})
		t.Logf("measured: crash %d: all three Synced %s after the crash; job %s ended %s after %d resume(s)", k+1, took.Round(time.Millisecond), ended.ID, ended.State, ended.Resumes)
		if ended.State != "succeeded" && ended.State != "aborted" {
			t.Errorf("interrupted job %s ended %s: %s", ended.ID, ended.State, ended.Reason)
		}
		// A step done before the kill is never run again; the one the kill
		// interrupted is run again at most once (the log cannot tell
		// whether it finished: every act step checks the node first).
		acts := 0
		for _, s := range ended.Steps {
			if s.Kind != "act" {
				continue
			}
			acts++
			if want := 1; s.Attempts != want && !(s.Name == runningStep && s.Attempts == 2) {
				t.Errorf("job %s: act step %s ran %d times (state %s); interrupted: %q", ended.ID, s.Name, s.Attempts, s.State, runningStep)
			}
		}
		if acts == 0 {
			t.Errorf("job %s has no act steps", ended.ID)
		}
		var boots []string
		for _, j := range h.jobs(t) {
			if seen[j.ID] {
				continue
			}
			for _, s := range j.Steps {
				if strings.HasPrefix(s.Name, "bootstrap:") && s.State == "done" {
					boots = append(boots, j.ID+":"+s.Name)
				}
			}
		}
		if len(boots) > 1 {
			t.Errorf("crash %d: %d bootstraps: %v", k+1, len(boots), boots)
		}
		if k > 12 {
			t.Fatalf("more act steps than a 3-node recovery has: %+v", ended)
		}
	}
	chk.check(t)
	w.check(t)
}

// interruptedAct reads job id from the job log of the killed appliance
// and returns its act step left running ("" when none was).
func interruptedAct(t *testing.T, h *healer, id string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(filepath.Dir(h.cfg), "data", "jobs", id+".json"))
	if err != nil {
		t.Fatalf("job log of the killed appliance: %v", err)
	}
	var j jobView
	if err := json.Unmarshal(b, &j); err != nil {
		t.Fatalf("job %s: %v", id, err)
	}
	for _, s := range j.Steps {
		if s.Kind == "act" && s.State == "running" {
			return s.Name
		}
	}
	return ""
}
