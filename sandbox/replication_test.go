//go:build cluster

package sandbox

import (
	"fmt"
	"os"
	"strings"
	"testing"
	"time"
)

// TestReplicationSandbox starts a real primary with two replicas: a row
// written on the primary must reach both, and the replicas are read_only.
func TestReplicationSandbox(t *testing.T) {
	dir := sandboxDir(t)
	stopOnCleanup(t, dir)
	ctx := testContext(t, 3*time.Minute)

	var s *Sandbox
	timed(t, "fresh replication, 2 replicas", func() {
		var err error
		s, err = StartReplication(ctx, Options{Dir: dir, Nodes: 3, BasePort: 24306, SemiSync: true, Log: t.Output(), AgentBinary: ninesBin})
		if err != nil {
			t.Fatalf("start: %v", err)
		}
	})

	want := map[string]string{"n1": StatePrimary, "n2": "replicating", "n3": "replicating"}
	for name, st := range statusByName(t, s) {
		if st.State != want[name] || st.Pid == 0 {
			t.Errorf("%s: %+v, want state %q", name, st, want[name])
		}
	}

	primary := rootDB(t, s, "n1")
	if got := queryOne[string](t, primary, "SELECT @@global.rpl_semi_sync_master_enabled"); got != "1" {
		t.Errorf("primary rpl_semi_sync_master_enabled = %s", got)
	}
	mustExec(t, primary, "CREATE TABLE nines.r (id INT PRIMARY KEY, note VARCHAR(32))")
	mustExec(t, primary, "INSERT INTO nines.r VALUES (1, 'from the primary')")
	for _, name := range []string{"n2", "n3"} {
		// Read as the monitoring user: it must exist on replicas too.
		replica := monitorDB(t, s, name)
		eventually(t, 10*time.Second, "row on "+name, func() (bool, string) {
			var note string
			err := replica.QueryRow("SELECT note FROM nines.r WHERE id = 1").Scan(&note)
			if err != nil {
				return false, err.Error()
			}
			return note == "from the primary", note
		})
		if got := queryOne[int](t, replica, "SELECT @@global.read_only"); got != 1 {
			t.Errorf("%s read_only = %d, want 1", name, got)
		}
	}

	cfg, err := os.ReadFile(s.ConfigPath())
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(cfg), "    kind: replication\n") || !strings.Contains(string(cfg), `{address: "127.0.0.1:24308", agent: "http://127.0.0.1:24508"}`) {
		t.Errorf("nines.yaml:\n%s", cfg)
	}

	// A restart keeps the data and replication resumes.
	if err := s.Stop(ctx); err != nil {
		t.Fatalf("stop: %v", err)
	}
	timed(t, "restart replication on the same dir", func() {
		// No AgentBinary: a test binary falls back to the nines binary
		// the first start recorded in sandbox.json.
		if s, err = StartReplication(ctx, Options{Dir: dir, Log: t.Output()}); err != nil {
			t.Fatalf("restart: %v", err)
		}
	})
	mustExec(t, rootDB(t, s, "n1"), "INSERT INTO nines.r VALUES (2, 'after restart')")
	replica := rootDB(t, s, "n3")
	eventually(t, 10*time.Second, "row 2 on n3", func() (bool, string) {
		var n int
		if err := replica.QueryRow("SELECT COUNT(*) FROM nines.r").Scan(&n); err != nil {
			return false, err.Error()
		}
		return n == 2, fmt.Sprintf("%d rows", n)
	})
}
