package galera

import (
	"errors"
	"strings"
	"testing"

	"github.com/nines-project/nines"
	"github.com/nines-project/nines/remediator"
	"github.com/nines-project/nines/replication"
)

func drSynced(name, binlog string) DRMember {
	st, err := replication.ParseState(binlog)
	if err != nil {
		panic(err)
	}
	return DRMember{State: NodeState{Name: name, Reachable: true, Running: true, Wsrep: &nines.GaleraStatus{
		ClusterStatus: nines.ClusterStatusPrimary, LocalState: nines.LocalStateSynced, LocalStateComment: "Synced", Ready: true}}, Binlog: st}
}

func drDown(name string) DRMember {
	return DRMember{State: NodeState{Name: name, Reachable: true, Error: "the server is not running"}}
}

func drReplica(source, io, holds string) replication.Node {
	st, err := replication.ParseState(holds)
	if err != nil {
		panic(err)
	}
	return replication.Node{Name: "dr1:3390", Reachable: true, Running: true, Readable: true, ReadOnly: true, Binlog: st,
		Link: &replication.Link{Source: source, IO: io, SQLRunning: true, Received: st}}
}

func abortOf(err error) *remediator.Abort {
	var ab *remediator.Abort
	if errors.As(err, &ab) {
		return ab
	}
	return nil
}

func TestDecideDRFollowPicksTheFirstSyncedNodeInOrder(t *testing.T) {
	members := []DRMember{drDown("n1:3306"), drSynced("n2:3306", "1-1-20"), drSynced("n3:3306", "1-1-20")}
	p, err := DecideDRFollow(drReplica("n1:3306", "Connecting", "1-1-20"), members)
	if err != nil {
		t.Fatal(err)
	}
	if p.From != "n1:3306" || p.To != "n2:3306" || p.Holds != "1-1-20" {
		t.Errorf("plan %+v: want from n1 to n2 holding 1-1-20", p)
	}
	if !strings.Contains(p.Why, "not running") {
		t.Errorf("why %q does not say the source is not running", p.Why)
	}
}

func TestDecideDRFollowLeavesAFineSourceAlone(t *testing.T) {
	members := []DRMember{drSynced("n1:3306", "1-1-20"), drSynced("n2:3306", "1-1-20")}
	_, err := DecideDRFollow(drReplica("n1:3306", "Connecting", "1-1-20"), members)
	if ab := abortOf(err); ab == nil || ab.Retry || !strings.Contains(ab.Reason, "is Synced") {
		t.Errorf("got %v: want an abort saying the source is Synced", err)
	}
	// The source's agent is down, but the replica still receives from it.
	members[0] = DRMember{State: NodeState{Name: "n1:3306", Error: "connection refused"}}
	_, err = DecideDRFollow(drReplica("n1:3306", "Yes", "1-1-20"), members)
	if ab := abortOf(err); ab == nil || !strings.Contains(ab.Reason, "still receives") {
		t.Errorf("got %v: want an abort saying the replica still receives", err)
	}
	// Unreachable and the IO thread retries: follow.
	p, err := DecideDRFollow(drReplica("n1:3306", "Connecting", "1-1-20"), members)
	if err != nil || p.To != "n2:3306" {
		t.Errorf("got %+v, %v: want to follow n2", p, err)
	}
}

func TestDecideDRFollowWaitsWithoutASyncedNode(t *testing.T) {
	nonPrimary := drSynced("n2:3306", "1-1-20")
	nonPrimary.State.Wsrep.ClusterStatus = nines.ClusterStatusNonPrimary
	members := []DRMember{drDown("n1:3306"), nonPrimary, drDown("n3:3306")}
	_, err := DecideDRFollow(drReplica("n1:3306", "Connecting", "1-1-20"), members)
	ab := abortOf(err)
	if ab == nil || !ab.Retry || !strings.Contains(ab.Reason, "no node other than n1:3306 is Synced") || !strings.Contains(ab.Reason, "n2:3306: not in a Primary component") {
		t.Errorf("got %v: want not yet, naming each node's state", err)
	}
}

func TestDecideDRFollowNeverSkipsWhatTheReplicaHolds(t *testing.T) {
	// n2 has not written 1-1-21 yet, n3 has: n3 is chosen.
	members := []DRMember{drDown("n1:3306"), drSynced("n2:3306", "1-1-20"), drSynced("n3:3306", "1-1-21")}
	p, err := DecideDRFollow(drReplica("n1:3306", "Connecting", "1-1-21"), members)
	if err != nil || p.To != "n3:3306" {
		t.Fatalf("got %+v, %v: want n3", p, err)
	}
	// Neither has: lacking, observed again by the runbook.
	members[2] = drSynced("n3:3306", "1-1-20")
	_, err = DecideDRFollow(drReplica("n1:3306", "Connecting", "1-1-21"), members)
	if !errors.Is(err, errDRLacking) || !strings.Contains(err.Error(), "n2:3306 lacks 1-1-21") {
		t.Errorf("got %v: want lacking, naming the GTID", err)
	}
}

func TestDecideDRFollowRefusals(t *testing.T) {
	members := []DRMember{drDown("n1:3306"), drSynced("n2:3306", "1-1-20")}
	_, err := DecideDRFollow(drReplica("elsewhere:3306", "Connecting", "1-1-20"), members)
	var ref *remediator.Refusal
	if !errors.As(err, &ref) || !strings.Contains(ref.Reason, "not a node of the cluster") {
		t.Errorf("got %v: want a refusal for a source outside the cluster", err)
	}
	noLink := drReplica("n1:3306", "Connecting", "1-1-20")
	noLink.Link = nil
	if ab := abortOf(func() error { _, err := DecideDRFollow(noLink, members); return err }()); ab == nil || !strings.Contains(ab.Reason, "replicates from nobody") {
		t.Errorf("a replica without a connection: want an abort")
	}
	unreachable := replication.Node{Name: "dr1:3390", Error: "connection refused"}
	if _, err := DecideDRFollow(unreachable, members); err == nil || abortOf(err) != nil || !strings.Contains(err.Error(), "does not answer") {
		t.Errorf("an unreachable replica: got %v, want a failure", err)
	}
}
