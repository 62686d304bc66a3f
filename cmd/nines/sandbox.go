package main

import (
	"encoding/json"
	"errors"

	"github.com/spf13/cobra"

	"github.com/nines-project/nines/sandbox"
)

// newSandboxCmd is `nines sandbox`: local MariaDB clusters on 127.0.0.1.
// Everything happens in package sandbox; this only maps flags.
func newSandboxCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "sandbox",
		Short: "Run local MariaDB clusters on 127.0.0.1 for trying nines and for tests",
		Long: `Run real MariaDB clusters on 127.0.0.1, one directory per sandbox.

Servers keep running after the command returns; stop them with
"nines sandbox stop". With --netns (root only) every node gets its own
network namespace and IP, and "nines sandbox partition" cuts and heals
links between them. Running a start command again on the same directory
restarts the same cluster with its data.`,
	}
	cmd.AddCommand(newSandboxGaleraCmd(), newSandboxReplicationCmd(), newSandboxStatusCmd(), newSandboxStopCmd(), newSandboxPartitionCmd(), newSandboxNDBCmd(), newSandboxFleetCmd())
	return cmd
}

func newSandboxGaleraCmd() *cobra.Command {
	var o sandbox.Options
	cmd := &cobra.Command{
		Use:   "galera --dir DIR [--nodes N] [--base-port P] [--haproxy] [--dr-replica]",
		Short: "Start (or restart) an N-node Galera cluster",
		Long: `Start an N-node MariaDB Galera cluster on 127.0.0.1 and return once every
node is Synced. Node i (0-based) serves SQL on P+i and uses P+100+10*i
(gcomm), P+101+10*i (IST) and P+102+10*i (SST).

The directory also gets nines.yaml, a ready appliance config, with the
monitoring user's password and an API token beside it, and
app-client.cnf, the client options of an application account (user app,
SELECT, INSERT, UPDATE, DELETE on database app).

With --haproxy, Debian's haproxy runs in front of the cluster (config in
DIR/haproxy.cfg): a writer listener on 127.0.0.1:P+300 sends every
connection to one node (n1 while its agent's health check passes, else
the next), a reader listener on 127.0.0.1:P+301 spreads them over every
healthy node. nines.yaml then probes through the writer and reads
HAProxy's stats. Later starts keep it; "nines sandbox stop" stops it.

With --dr-replica (a new sandbox only), one more server dr1 outside the
cluster (SQL on P+90, agent on P+290, read_only, wsrep off) replicates
from n1 by GTID, as a disaster-recovery site would; nines.yaml declares
it under dr_replicas, and the galera-dr-follow runbook repoints it to
another Synced node when its source dies.`,
		Example: `  nines sandbox galera --dir /tmp/g3
  nines sandbox galera --dir /tmp/gdr --dr-replica
  nines sandbox galera --dir /tmp/g3 --haproxy
  nines sandbox galera --dir /tmp/g5 --nodes 5 --base-port 23306
  mariadb --defaults-extra-file=/tmp/g3/app-client.cnf -h 127.0.0.1 -P 3606 app`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			o.Log = cmd.ErrOrStderr()
			keepRecorded(cmd, &o)
			s, err := sandbox.StartGalera(cmd.Context(), o)
			if err != nil {
				return err
			}
			return s.WriteSummary(cmd.OutOrStdout())
		},
	}
	addStartFlags(cmd, &o, "nodes", sandbox.DefaultGaleraNodes, "number of Galera nodes")
	cmd.Flags().BoolVar(&o.HAProxy, "haproxy", false, "start haproxy in front of the cluster: writer on P+300 (one node), reader on P+301 (all nodes)")
	cmd.Flags().BoolVar(&o.DRReplica, "dr-replica", false, "add dr1, a read-only GTID replica of n1 outside the cluster (new sandboxes only)")
	return cmd
}

func newSandboxReplicationCmd() *cobra.Command {
	var (
		o        sandbox.Options
		replicas int
	)
	cmd := &cobra.Command{
		Use:   "replication --dir DIR [--replicas N] [--base-port P] [--semi-sync] [--haproxy]",
		Short: "Start (or restart) a GTID primary with replicas",
		Long: `Start a MariaDB primary on port P and N read-only replicas on P+1..P+N that
replicate from it with GTIDs (master_use_gtid=slave_pos), and return once
every replica has caught up. Every node's my.cnf has read_only=ON, so a
server that restarts comes back fenced; the start sets the primary's
read_only OFF once its replicas follow it.

The directory also gets nines.yaml, a ready appliance config, and
app-client.cnf, the client options of an application account (user app,
SELECT, INSERT, UPDATE, DELETE on database app; no SUPER, so read_only
fences it).

With --haproxy, Debian's haproxy runs in front of the cluster (config in
DIR/haproxy.cfg): a writer listener on 127.0.0.1:P+300 with every node as
a server, of which only the primary passes its agent's writer check
(read_only OFF, replicating from nobody), and a reader listener on
127.0.0.1:P+301 over the replicas within 10 s of lag. nines.yaml then
probes through the writer and reads HAProxy's stats. Later starts keep
it; "nines sandbox stop" stops it.`,
		Example: `  nines sandbox replication --dir /tmp/r3
  nines sandbox replication --dir /tmp/r3s --replicas 2 --base-port 24306 --semi-sync
  nines sandbox replication --dir /tmp/r3h --semi-sync --haproxy
  mariadb --defaults-extra-file=/tmp/r3h/app-client.cnf -h 127.0.0.1 -P 3606 app`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if replicas < 0 {
				return errors.New("--replicas must not be negative")
			}
			o.Log = cmd.ErrOrStderr()
			keepRecorded(cmd, &o)
			if cmd.Flags().Changed("replicas") {
				o.Nodes = 1 + replicas
			}
			s, err := sandbox.StartReplication(cmd.Context(), o)
			if err != nil {
				return err
			}
			return s.WriteSummary(cmd.OutOrStdout())
		},
	}
	addStartFlags(cmd, &o, "", 0, "")
	cmd.Flags().IntVar(&replicas, "replicas", sandbox.DefaultReplicas, "number of replicas")
	cmd.Flags().BoolVar(&o.SemiSync, "semi-sync", false, "enable semi-synchronous replication")
	cmd.Flags().BoolVar(&o.HAProxy, "haproxy", false, "start haproxy in front of the cluster: writer on P+300 (the primary), reader on P+301 (the replicas)")
	return cmd
}

// addStartFlags declares the flags both start commands share.
func addStartFlags(cmd *cobra.Command, o *sandbox.Options, nodesFlag string, nodesDefault int, nodesHelp string) {
	f := cmd.Flags()
	f.StringVar(&o.Dir, "dir", "", "sandbox directory, created if missing (required)")
	_ = cmd.MarkFlagRequired("dir")
	if nodesFlag != "" {
		f.IntVar(&o.Nodes, nodesFlag, nodesDefault, nodesHelp)
	}
	f.IntVar(&o.BasePort, "base-port", sandbox.DefaultBasePort, "first SQL port; others derive from it")
	f.StringVar(&o.ClusterName, "cluster-name", sandbox.DefaultClusterName, "cluster name (wsrep_cluster_name and in nines.yaml)")
	f.StringVar(&o.Listen, "listen", sandbox.DefaultListen, "appliance listen address written into nines.yaml")
	f.DurationVar(&o.NodeTimeout, "node-timeout", sandbox.DefaultNodeTimeout, "how long to wait for each node")
	f.BoolVar(&o.Netns, "netns", false, "run each node in its own network namespace with its own IP on a bridge, so partitions can be cut (root only; see nines sandbox partition)")
}

// keepRecorded clears the options the user did not set, so that a restart
// of an existing sandbox takes them from its sandbox.json instead of
// tripping over flag defaults that differ from it.
func keepRecorded(cmd *cobra.Command, o *sandbox.Options) {
	f := cmd.Flags()
	if f.Lookup("nodes") != nil && !f.Changed("nodes") {
		o.Nodes = 0
	}
	if !f.Changed("base-port") {
		o.BasePort = 0
	}
	if !f.Changed("cluster-name") {
		o.ClusterName = ""
	}
	if !f.Changed("listen") {
		o.Listen = ""
	}
}

func newSandboxStatusCmd() *cobra.Command {
	var (
		dir    string
		asJSON bool
	)
	cmd := &cobra.Command{
		Use:   "status --dir DIR [--json]",
		Short: "Show each node's pid and state",
		Long: `Show each node's SQL port, socket, pid (0 or "-" when stopped) and state:
for Galera the node's wsrep state (Synced, Donor/Desynced, Joiner, ...) or
non-Primary; for replication primary, replicating or the replica threads'
states; stopped or unreachable otherwise.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			s, err := sandbox.Open(dir)
			if err != nil {
				return err
			}
			sts, err := s.Status(cmd.Context())
			if err != nil {
				return err
			}
			if asJSON {
				enc := json.NewEncoder(cmd.OutOrStdout())
				enc.SetIndent("", "  ")
				return enc.Encode(sts)
			}
			return sandbox.WriteStatus(cmd.OutOrStdout(), sts)
		},
	}
	cmd.Flags().StringVar(&dir, "dir", "", "sandbox directory (required)")
	_ = cmd.MarkFlagRequired("dir")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}

func newSandboxStopCmd() *cobra.Command {
	var dir string
	cmd := &cobra.Command{
		Use:   "stop --dir DIR",
		Short: "Stop every server of a sandbox, keeping its data",
		Long: `Stop the sandbox's haproxy, if any, and every server of the sandbox, last node first: SIGTERM, then SIGKILL
after 30 s. The data stays, so starting the sandbox again brings the same
cluster back.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			s, err := sandbox.Open(dir)
			if err != nil {
				return err
			}
			s.Log = cmd.ErrOrStderr()
			return s.Stop(cmd.Context())
		},
	}
	cmd.Flags().StringVar(&dir, "dir", "", "sandbox directory (required)")
	_ = cmd.MarkFlagRequired("dir")
	return cmd
}
