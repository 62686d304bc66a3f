package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"

	"github.com/nines-project/nines/sandbox"
)

// newSandboxNDBCmd is `nines sandbox ndb`: the NDB Cluster simulator as
// real processes, plus its hidden process commands and fault injection.
func newSandboxNDBCmd() *cobra.Command {
	var o sandbox.NDBOptions
	cmd := &cobra.Command{
		Use:   "ndb --dir DIR [--data-nodes N] [--replicas R] [--sql-nodes S] [--base-port P]",
		Short: "Start (or restart) a simulated NDB Cluster: mgmd, data node processes, MariaDB SQL nodes",
		Long: `Start the NDB Cluster simulator in DIR as real processes and return once
every data node is STARTED:

  mgmd        the management server: the mgm protocol on P (ndb_mgm's
              get status, listen event, ...), the data nodes' link on P+1.
              Port P is served by its own process (mgm/) behind a host
              agent on P+300 (server.ndb_mgmd), so the management server
              restarts as ndb-rolling-restart restarts it; the cluster
              model behind it answers on P+2
  data1..N    one process per data node, node ids 1..N in node groups of
              R; kill -9 of one is a real node failure. Each has a host
              agent on P+300+N (server.ndb_data_node in dataN/agent.yaml)
              that starts it by the command recorded in sandbox.json:
                nines sandbox ndb datanode --dir DIR --node-id N
              and run again by the same command it rejoins (node restart);
              nines.yaml names the agents, so the remediator restarts a
              killed node (runbook ndb-data-node-restart)
  n1..nS      SQL nodes: real MariaDB servers on P+10+i, API node ids
              100+i, each with the ndbinfo schema kept current by mgmd

The SQL nodes are separate MariaDB servers: unlike real NDB they do not
share data, each holds what was written through it. When a node group has
no started node, writes through them fail with
"Got error 4009 'Cluster Failure' from NDBCLUSTER".

Faults: nines sandbox ndb fault --dir DIR <kind> [--node N] [--percent X].
A configuration change: nines sandbox ndb config --dir DIR --set Key=Value.`,
		Example: `  nines sandbox ndb --dir /tmp/ndb --data-nodes 4 --replicas 2 --sql-nodes 2 --base-port 24000
  nines sandbox ndb fault --dir /tmp/ndb kill --node 2
  nines sandbox ndb datanode --dir /tmp/ndb --node-id 2 &
  nines sandbox status --dir /tmp/ndb --json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			o.Log = cmd.ErrOrStderr()
			f := cmd.Flags()
			for name, v := range map[string]*int{"data-nodes": &o.DataNodes, "replicas": &o.Replicas, "sql-nodes": &o.SQLNodes, "base-port": &o.BasePort} {
				if !f.Changed(name) {
					*v = 0 // the recorded layout or the default
				}
			}
			n, err := sandbox.StartNDB(cmd.Context(), o)
			if err != nil {
				return err
			}
			return writeNDBSummary(cmd, n)
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.Dir, "dir", "", "sandbox directory, created if missing (required)")
	_ = cmd.MarkFlagRequired("dir")
	f.IntVar(&o.DataNodes, "data-nodes", sandbox.DefaultNDBDataNodes, "number of data nodes")
	f.IntVar(&o.Replicas, "replicas", sandbox.DefaultNDBReplicas, "NoOfReplicas: data nodes per node group")
	f.IntVar(&o.SQLNodes, "sql-nodes", sandbox.DefaultNDBSQLNodes, "number of SQL nodes (MariaDB servers)")
	f.IntVar(&o.BasePort, "base-port", sandbox.DefaultBasePort, "mgm port; the link is P+1, SQL nodes P+10.. and their agents P+200.., data node N's agent P+300+N")
	f.DurationVar(&o.Heartbeat, "heartbeat", sandbox.DefaultNDBHeartbeat, "heartbeat interval between data nodes; 4 missed make a node dead (new sandboxes only)")
	f.DurationVar(&o.NodeTimeout, "node-timeout", sandbox.DefaultNodeTimeout, "how long to wait for each node")
	cmd.AddCommand(newSandboxNDBMgmdCmd(), newSandboxNDBMgmCmd(), newSandboxNDBDataNodeCmd(), newSandboxNDBFaultCmd(), newSandboxNDBConfigCmd())
	return cmd
}

func writeNDBSummary(cmd *cobra.Command, n *sandbox.NDB) error {
	w := cmd.OutOrStdout()
	l := n.Layout()
	fmt.Fprintf(w, "NDB Cluster simulator in %s: %d data nodes (NoOfReplicas %d), %d SQL nodes\n\n", n.Dir(), len(l.DataNodes), l.Replicas, len(n.Nodes()))
	fmt.Fprintf(w, "  mgmd   node %d  mgm %s  (ndb_mgm -c %s)", l.MgmNodeID, n.MgmAddress(), n.MgmAddress())
	if u := l.MgmAgentURL(); u != "" {
		fmt.Fprintf(w, "  agent %s", u)
	}
	fmt.Fprintln(w)
	for _, d := range l.DataNodes {
		fmt.Fprintf(w, "  %s  node %d  agent %s  %s\n", d.Name, d.NodeID, l.DataNodeAgentURL(d.NodeID), strings.Join(d.Command, " "))
	}
	for i, s := range n.Nodes() {
		fmt.Fprintf(w, "  %s     node %d  sql %d  %s\n", s.Name, l.SQLNodeIDs[i], s.SQLPort, s.Socket)
	}
	fmt.Fprintf(w, "\nstatus / stop: nines sandbox status --dir %s / nines sandbox stop --dir %s\n", n.Dir(), n.Dir())
	return nil
}

func newSandboxNDBMgmdCmd() *cobra.Command {
	var dir string
	cmd := &cobra.Command{
		Use:    "mgmd --dir DIR",
		Short:  "Run the NDB sandbox's management server in the foreground",
		Hidden: true,
		Args:   cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			abs, err := filepath.Abs(dir)
			if err != nil {
				return err
			}
			lf, err := os.OpenFile(filepath.Join(abs, "mgmd", "mgmd.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
			if err != nil {
				return err
			}
			defer lf.Close()
			return sandbox.RunNDBMgmd(cmd.Context(), abs, lf)
		},
	}
	cmd.Flags().StringVar(&dir, "dir", "", "sandbox directory (required)")
	_ = cmd.MarkFlagRequired("dir")
	return cmd
}

func newSandboxNDBMgmCmd() *cobra.Command {
	var dir string
	cmd := &cobra.Command{
		Use:   "mgm --dir DIR",
		Short: "Run the NDB sandbox's management server port in the foreground (what its agent runs)",
		Long: `Serve the management server's mgm port P of the NDB sandbox in DIR, relaying
each session to the cluster model (mgmd, on P+2), until SIGTERM. Its host
agent (DIR/mgm/agent.yaml, server.ndb_mgmd) runs exactly this command, so
stopping and starting it through the agent is a management server restart
as clients see one: the port closes and opens again.`,
		Hidden: true,
		Args:   cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			abs, err := filepath.Abs(dir)
			if err != nil {
				return err
			}
			return sandbox.RunNDBMgmFront(cmd.Context(), abs, cmd.ErrOrStderr())
		},
	}
	cmd.Flags().StringVar(&dir, "dir", "", "sandbox directory (required)")
	_ = cmd.MarkFlagRequired("dir")
	return cmd
}

func newSandboxNDBConfigCmd() *cobra.Command {
	var (
		dir  string
		sets []string
	)
	cmd := &cobra.Command{
		Use:   "config --dir DIR --set Key=Value [--set ...]",
		Short: "Change the NDB sandbox's configuration: a new config generation that data nodes take at their restart",
		Long: `Make the management server of the NDB sandbox in DIR serve a new
configuration, as editing config.ini and restarting ndb_mgmd with --reload
does: its config generation goes up by one. Each data node keeps running
the generation it started with until it restarts (normally, not --initial),
so ndbinfo.nodes.config_generation disagrees, and NdbConfigGenerationMismatch
watches, until a rolling restart (runbook ndb-rolling-restart) has
restarted every data node. The simulator records the values but does not
act on them.`,
		Example: `  nines sandbox ndb config --dir /tmp/ndb --set DataMemory=256M
  nines jobs start --cluster ndb --runbook ndb-rolling-restart`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			n, err := sandbox.OpenNDB(dir)
			if err != nil {
				return err
			}
			gen, err := n.ConfigChange(cmd.Context(), sets)
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "configuration generation %d served; data nodes take it at their next restart\n", gen)
			return nil
		},
	}
	cmd.Flags().StringVar(&dir, "dir", "", "sandbox directory (required)")
	cmd.Flags().StringArrayVar(&sets, "set", nil, "a config.ini parameter, Key=Value (repeatable)")
	_ = cmd.MarkFlagRequired("dir")
	_ = cmd.MarkFlagRequired("set")
	return cmd
}

func newSandboxNDBDataNodeCmd() *cobra.Command {
	var (
		dir     string
		id      int
		initial bool
	)
	cmd := &cobra.Command{
		Use:   "datanode --dir DIR --node-id N [--initial]",
		Short: "Run one data node of the NDB sandbox in the foreground (pid in DIR/dataN/ndbd.pid, log in ndbd.log)",
		Long: `Run data node N of the NDB sandbox in DIR in the foreground. It joins the
cluster through the start phases and heartbeats the management server;
it exits 0 on SIGTERM (a graceful stop) and non-zero when the cluster
excludes it (declared dead after missed heartbeats, GCP stop), with the
reason in its log. A host agent runs exactly this command, with --initial
appended when a person asks for an initial start (as ndbmtd --initial).`,
		Hidden: true,
		Args:   cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			abs, err := filepath.Abs(dir)
			if err != nil {
				return err
			}
			return sandbox.RunNDBDataNode(cmd.Context(), abs, id, initial)
		},
	}
	cmd.Flags().StringVar(&dir, "dir", "", "sandbox directory (required)")
	cmd.Flags().IntVar(&id, "node-id", 0, "data node id (required)")
	cmd.Flags().BoolVar(&initial, "initial", false, "an initial start: the node's own file system is thrown away and reloaded from its node group")
	_ = cmd.MarkFlagRequired("dir")
	_ = cmd.MarkFlagRequired("node-id")
	return cmd
}

func newSandboxNDBFaultCmd() *cobra.Command {
	var (
		dir string
		a   sandbox.FaultArgs
	)
	cmd := &cobra.Command{
		Use:   "fault --dir DIR <kind> [--node N] [--percent X]",
		Short: "Inject a fault into the NDB sandbox",
		Long: `Inject a fault into the NDB sandbox in DIR. Kinds:

  kill --node N             SIGKILL data node N's process
  hang --node N             SIGSTOP it: declared dead after 4 missed heartbeats
  resume --node N           SIGCONT it: a node declared dead meanwhile shuts down
  datamemory --percent X    DataMemory used X% (every node, or --node N);
                            at 99% writes fail with NDB error 827
  redo-full                 redo log parts full: writes fail with error 410
  clear                     DataMemory, redo, arbitration and GCPs back to normal
  gcp-stop --node N         the node is killed for a GCP stop and reports
                            NDBStopForced with error 2303 on listen event
  gcp-slow                  global checkpoints stop completing (no
                            GlobalCheckpointCompleted event) until clear
  arbitration-split         a node (--node N, default the last) disagrees on
                            arbitrator and ticket in ndbinfo.membership
  mgmd-down / mgmd-up       close / reopen the mgm protocol port only`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			n, err := sandbox.OpenNDB(dir)
			if err != nil {
				return err
			}
			n.Log = cmd.ErrOrStderr()
			return n.Fault(cmd.Context(), args[0], a)
		},
	}
	cmd.Flags().StringVar(&dir, "dir", "", "sandbox directory (required)")
	_ = cmd.MarkFlagRequired("dir")
	cmd.Flags().IntVar(&a.Node, "node", 0, "data node id")
	cmd.Flags().IntVar(&a.Percent, "percent", 0, "datamemory: percent of DataMemory used")
	return cmd
}
