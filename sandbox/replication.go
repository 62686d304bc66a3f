package sandbox

import (
	"context"
	"database/sql"
	"fmt"
	"time"

	"github.com/nines-project/nines"
	"github.com/nines-project/nines/agent"
	"github.com/nines-project/nines/internal/mariadbd"
)

// StartReplication starts the GTID replication sandbox in o.Dir, creating
// it first if the directory holds none: n1 is the primary, the other nodes
// (o.Nodes-1 of them) replicate from it with master_use_gtid=slave_pos and
// are read_only. It returns once every replica runs both replication
// threads and has applied everything the primary had when it was pointed.
// Every node's my.cnf says read_only=ON, so a server that restarts comes
// back fenced; this call sets n1's read_only OFF at run time once its
// replicas are pointed at it. With o.HAProxy, haproxy runs in front (see
// Options.HAProxy) and the call returns once its writer pool holds n1
// alone and its reader pool the replicas.
//
// On an existing sandbox the data is kept, stopped servers are started and
// every replica is pointed at n1 again, which restores the original shape
// after a failover drill promoted a replica.
//
// On error, the servers this call started are stopped again.
func StartReplication(ctx context.Context, o Options) (*Sandbox, error) {
	o, err := o.normalize()
	if err != nil {
		return nil, err
	}
	s, err := prepare(ctx, o, nines.KindReplication, 1+DefaultReplicas)
	if err != nil {
		return nil, err
	}
	start := time.Now()
	started, err := s.startReplication(ctx)
	if err == nil && s.HAProxy() {
		err = s.ensureHAProxy(ctx)
	}
	if err != nil {
		s.abandon(ctx, started)
		return nil, err
	}
	s.logf("replication %q: primary and %d replicas running in %v", s.ClusterName(), len(s.Nodes())-1, time.Since(start).Round(time.Millisecond))
	return s, nil
}

func (s *Sandbox) startReplication(ctx context.Context) ([]string, error) {
	var started []string
	nodes := s.Nodes()
	for _, n := range nodes {
		ok, err := s.startPlain(ctx, n)
		if ok {
			started = append(started, n.Name)
		}
		if err != nil {
			return started, err
		}
	}
	// n1 replicates from nobody: a drill may have pointed it at a
	// promoted replica.
	for _, q := range []string{"STOP ALL SLAVES", "RESET SLAVE ALL"} {
		if err := s.exec(ctx, nodes[0], q); err != nil {
			return started, fmt.Errorf("make %s the primary: %w", nodes[0].Name, err)
		}
	}
	semiSync := s.snapshot().SemiSync
	if semiSync {
		// A semi-sync primary without a connected replica holds every
		// commit for rpl_semi_sync_master_timeout (10 s) before falling
		// back to async, so it stays async until the replicas are back.
		if err := s.exec(ctx, nodes[0], "SET GLOBAL rpl_semi_sync_master_enabled=OFF"); err != nil {
			return started, err
		}
	}
	// The replication account must exist before replicas connect; the
	// monitoring account reaches the replicas through replication.
	if err := s.provision(ctx); err != nil {
		return started, err
	}
	// Before the replicas are pointed: they wait until they have it.
	if err := s.provisionApp(ctx); err != nil {
		return started, err
	}
	for _, n := range nodes[1:] {
		if err := s.pointReplica(ctx, n); err != nil {
			return started, err
		}
	}
	if semiSync {
		if err := s.exec(ctx, nodes[0], "SET GLOBAL rpl_semi_sync_master_enabled=ON"); err != nil {
			return started, err
		}
	}
	// Only now, with its replicas following it, does n1 take writes.
	if err := s.exec(ctx, nodes[0], "SET GLOBAL read_only=OFF"); err != nil {
		return started, fmt.Errorf("make %s the writable primary: %w", nodes[0].Name, err)
	}
	return started, s.writeApplianceFiles()
}

// startPlain starts a server without wsrep through its agent, if it is
// not running, and waits until it answers SQL. started says whether this
// call started it.
func (s *Sandbox) startPlain(ctx context.Context, n Node) (started bool, err error) {
	srv := server(n)
	pid, err := srv.Pid()
	if err != nil {
		return false, err
	}
	if pid != 0 {
		s.logf("%s already running (pid %d)", n.Name, pid)
		wctx, cancel := context.WithTimeout(ctx, s.nodeTimeout)
		defer cancel()
		if err := srv.WaitReady(wctx, nil); err != nil {
			return false, fmt.Errorf("start %s: %w", n.Name, err)
		}
		return false, nil
	}
	if err := checkPortsFree(n); err != nil {
		return false, fmt.Errorf("start %s: %w", n.Name, err)
	}
	res, err := s.agentStart(ctx, n, agent.StartRequest{Wait: agent.WaitReady, TimeoutSeconds: s.timeoutSeconds()})
	if err != nil {
		return true, err
	}
	s.logf("%s (%s) answering in %v (pid %d)", n.Name, n.Role, time.Duration(res.TookMs)*time.Millisecond, res.Pid)
	return true, nil
}

// pointReplica makes n replicate from the primary n1 and waits until it
// has caught up with the primary's binlog position as of now. Waiting for
// the catch-up means the accounts created on the primary exist on the
// replica before the caller, typically the appliance, logs in there.
func (s *Sandbox) pointReplica(ctx context.Context, n Node) error {
	return s.pointReplicaAt(ctx, n, s.Nodes()[0])
}

// pointReplicaAt is pointReplica with the source given: n1 of a
// replication sandbox, a Galera node for a DR replica.
func (s *Sandbox) pointReplicaAt(ctx context.Context, n, primary Node) error {
	rpass, err := ensureSecret(s.replPasswordPath(), passwordBytes)
	if err != nil {
		return fmt.Errorf("point %s at %s: %w", n.Name, primary.Name, err)
	}
	target, err := s.queryString(ctx, primary, "SELECT @@global.gtid_binlog_pos")
	if err != nil {
		return fmt.Errorf("point %s at %s: read primary position: %w", n.Name, primary.Name, err)
	}
	stmts := []string{"SET GLOBAL read_only=ON", "STOP SLAVE"}
	if s.snapshot().SemiSync {
		stmts = append(stmts, "SET GLOBAL rpl_semi_sync_slave_enabled=ON")
	}
	stmts = append(stmts,
		fmt.Sprintf("CHANGE MASTER TO master_host='%s', master_port=%d, master_user='repl', "+
			"master_password='%s', master_use_gtid=slave_pos, master_connect_retry=1", primary.host(), primary.SQLPort, rpass),
		"START SLAVE",
	)
	for _, q := range stmts {
		if err := s.exec(ctx, n, q); err != nil {
			return fmt.Errorf("point %s at %s: %w", n.Name, primary.Name, err)
		}
	}
	t0 := time.Now()
	wctx, cancel := context.WithTimeout(ctx, s.nodeTimeout)
	defer cancel()
	err = server(n).Wait(wctx, nil, "replication", func(ctx context.Context, db *sql.DB) (bool, string, error) {
		st, found, err := mariadbd.QueryRow(ctx, db, "SHOW SLAVE STATUS")
		if err != nil || !found {
			return false, "not replicating", err
		}
		state := replicaState(st)
		if state != stateReplicating {
			return false, state, nil
		}
		var reached int
		if err := db.QueryRowContext(ctx, "SELECT MASTER_GTID_WAIT(?, 0)", target).Scan(&reached); err != nil {
			return false, state, err
		}
		if reached != 0 {
			return false, fmt.Sprintf("catching up: at %s, primary at %s", st["Gtid_Slave_Pos"], target), nil
		}
		return true, state, nil
	})
	if err != nil {
		return fmt.Errorf("point %s at %s: %w", n.Name, primary.Name, err)
	}
	s.logf("%s replicating from %s, caught up to %q in %v", n.Name, primary.Name, target, time.Since(t0).Round(time.Millisecond))
	return nil
}

// startReplicationNode is StartNode for replication sandboxes. The
// primary comes back read_only, as its my.cnf says: a replica may have
// been promoted while it was down, so making it writable is for a
// failover's rejoin or for StartReplication, not for a restart.
func (s *Sandbox) startReplicationNode(ctx context.Context, n Node) error {
	started, err := s.startPlain(ctx, n)
	if err == nil && n.Role == RoleReplica {
		err = s.pointReplica(ctx, n)
	}
	if err != nil && started {
		s.stopAfterFailure(ctx, []string{n.Name})
	}
	return err
}

const stateReplicating = "replicating"

// replicaState is one word for SHOW SLAVE STATUS: "replicating" when both
// threads run, else the threads' states and the last error.
func replicaState(st map[string]string) string {
	io, sqlt := st["Slave_IO_Running"], st["Slave_SQL_Running"]
	if io == "Yes" && sqlt == "Yes" {
		return stateReplicating
	}
	state := fmt.Sprintf("io=%s sql=%s", io, sqlt)
	for _, k := range []string{"Last_IO_Error", "Last_SQL_Error"} {
		if e := st[k]; e != "" {
			state += ": " + e
		}
	}
	return state
}

func (s *Sandbox) exec(ctx context.Context, n Node, q string) error {
	db, err := server(n).DB()
	if err != nil {
		return err
	}
	defer db.Close()
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if _, err := db.ExecContext(ctx, q); err != nil {
		return fmt.Errorf("on %s: %w", n.Name, err)
	}
	return nil
}

func (s *Sandbox) queryString(ctx context.Context, n Node, q string) (string, error) {
	db, err := server(n).DB()
	if err != nil {
		return "", err
	}
	defer db.Close()
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	var v sql.NullString
	if err := db.QueryRowContext(ctx, q).Scan(&v); err != nil {
		return "", fmt.Errorf("on %s: %w", n.Name, err)
	}
	return v.String, nil
}
