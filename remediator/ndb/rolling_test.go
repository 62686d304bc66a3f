package ndb

import (
	"context"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nines-project/nines/ndb"
	"github.com/nines-project/nines/remediator"
)

func (s *simCluster) rolling() RollingRestart {
	return RollingRestart{
		Mgm:  func(string) (Restarter, error) { return FailoverRestarter(s.mgm), nil },
		Poll: 5 * time.Millisecond,
	}
}

func runRolling(t *testing.T, rb RollingRestart) *remediator.Job {
	t.Helper()
	log, rem := newRemediator(t, func(*remediator.JobLog) remediator.Runbook { return rb })
	job, err := rem.Start(context.Background(), remediator.ManualRequest{Cluster: "c1", Runbook: remediator.RunbookNdbRollingRestart})
	if err != nil {
		t.Fatal(err)
	}
	return waitJob(t, log, job.ID)
}

func TestRollingRestartOneNodeAtATime(t *testing.T) {
	sim := newSim(t, 10*time.Millisecond)
	// The invariant, checked while the job runs: never more than one
	// data node out of STARTED, so no node group is ever without a
	// serving node.
	var worst atomic.Int32
	stop := make(chan struct{})
	watched := make(chan struct{})
	go func() {
		defer close(watched)
		for {
			select {
			case <-stop:
				return
			default:
			}
			down := int32(0)
			for _, n := range sim.c.Nodes() {
				if n.Type == ndb.TypeNDB && n.Status != ndb.StatusStarted {
					down++
				}
			}
			if down > worst.Load() {
				worst.Store(down)
			}
			time.Sleep(time.Millisecond)
		}
	}()
	j := runRolling(t, sim.rolling())
	close(stop)
	<-watched
	if j.State != remediator.JobSucceeded {
		t.Fatalf("job %s: %s", j.State, j.Reason)
	}
	if w := worst.Load(); w != 1 {
		t.Errorf("at worst %d data nodes were not STARTED at once; want exactly 1", w)
	}
	var order []string
	for _, s := range j.Steps {
		if strings.HasPrefix(s.Name, "restart:node-") {
			order = append(order, s.Name)
		}
	}
	if got := strings.Join(order, " "); got != "restart:node-1 restart:node-2 restart:node-3 restart:node-4" {
		t.Errorf("restart order %s", got)
	}
	for id := 1; id <= 4; id++ {
		n, _ := sim.c.Node(id)
		if n.Status != ndb.StatusStarted || n.ConnectCount != 1 || sim.c.LastStartInitial(id) {
			t.Errorf("node %d after the rolling restart: %s, connect_count %d (want 1 restart), initial %v", id, n.Status, n.ConnectCount, sim.c.LastStartInitial(id))
		}
	}
	if len(steps(j, fmt.Sprintf("phase:node-%d:STARTING", 3))) == 0 {
		t.Error("node 3's start phases were not logged")
	}
}

func TestRollingRestartRefusedWhileNodeDown(t *testing.T) {
	sim := newSim(t, 0)
	sim.kill(t, 2)
	j := runRolling(t, sim.rolling())
	if j.State != remediator.JobFailed || !strings.Contains(j.Reason, "node 2 is NO_CONTACT") {
		t.Errorf("job %s: %s", j.State, j.Reason)
	}
	for _, id := range []int{1, 3, 4} {
		if n, _ := sim.c.Node(id); n.ConnectCount != 0 {
			t.Errorf("node %d was restarted (connect_count %d) while node 2 was down", id, n.ConnectCount)
		}
	}
}
