package ndbsim

import (
	"fmt"
	"testing"
	"time"

	"github.com/nines-project/nines/internal/ndbtranscript"
	"github.com/nines-project/nines/ndb"
)

// act brings the model into the state an action names.
func act(c *Cluster, a ndbtranscript.Action) error {
	var err error
	switch a.Verb {
	case "down":
		err = c.SetStatus(a.Node, ndb.StatusNoContact, 0)
	case "restart-nostart":
		_, err = c.Restart([]int{a.Node}, StopOptions{NoStart: true})
	case "single-user":
		err = c.EnterSingleUser(a.Node)
	case "stop":
		_, err = c.Stop([]int{a.Node}, StopOptions{})
	default:
		err = fmt.Errorf("unknown action %q", a)
	}
	return err
}

// TestConformance replays every transcript of the facts (part A.2, in
// internal/ndbtranscript) against the simulator's TCP port, each on a
// fresh cluster of the transcript's shape.
func TestConformance(t *testing.T) {
	all, err := ndbtranscript.Load()
	if err != nil {
		t.Fatal(err)
	}
	if len(all) < 25 {
		t.Fatalf("read %d transcripts, want the 25 of transcripts.txt", len(all))
	}
	for _, tr := range all {
		t.Run(tr.Name, func(t *testing.T) {
			c, err := NewCluster(Config{DataNodes: tr.Cluster.DataNodes, Replicas: tr.Cluster.Replicas, SQLNodes: tr.Cluster.SQLNodes, Host: tr.Cluster.Host})
			if err != nil {
				t.Fatal(err)
			}
			s, err := Serve(c, "127.0.0.1:0", ServerConfig{PingInterval: time.Hour})
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			ndbtranscript.Replay(t, tr, ndbtranscript.Target{Addr: s.Addr(), Act: func(a ndbtranscript.Action) error { return act(c, a) }})
		})
	}
}
