package remediator

import "github.com/nines-project/nines"

// Runbook names: the value of an alert's remediation label and of a job's
// runbook field. Rule packs, the Alertmanager configuration and the API
// name runbooks by these; tests check that every name they use is here.
const (
	RunbookGaleraNodeRejoin          = "galera-node-rejoin"
	RunbookGaleraQuorumRecovery      = "galera-quorum-recovery"
	RunbookGaleraDRFollow            = "galera-dr-follow"
	RunbookGaleraRollingRestart      = "galera-rolling-restart"
	RunbookBackup                    = "backup"
	RunbookBackupVerify              = "backup-verify"
	RunbookReplicationFailover       = "replication-failover"
	RunbookReplicationSwitch         = "replication-switchover"
	RunbookReplicationRollingRestart = "replication-rolling-restart"
	RunbookReplicationRejoin         = "replication-rejoin"
	RunbookReplicationReseed         = "replication-reseed"
	RunbookNdbSystemRestart          = "ndb-system-restart"
	RunbookNdbDataNodeRestart        = "ndb-data-node-restart"
	RunbookNdbRollingRestart         = "ndb-rolling-restart"
)

// RunbookInfo describes a runbook nines has.
type RunbookInfo struct {
	Name string
	// Kinds are the kinds of cluster the runbook works on.
	Kinds       []nines.Kind
	Description string
}

// Runbooks lists every runbook nines has, repairs first.
var Runbooks = []RunbookInfo{
	{RunbookGaleraQuorumRecovery, []nines.Kind{nines.KindGalera}, "bootstrap a Galera cluster without a Primary component from its most advanced node"},
	{RunbookGaleraNodeRejoin, []nines.Kind{nines.KindGalera}, "start a stopped Galera node at its recovered position and wait until it is Synced"},
	{RunbookGaleraDRFollow, []nines.Kind{nines.KindGalera}, "repoint a DR replica whose source node died to another Synced node, by GTID"},
	{RunbookGaleraRollingRestart, []nines.Kind{nines.KindGalera}, "run by hand to roll out a config change or a minor upgrade: restart the nodes one at a time (the HAProxy writer's last), each only while every node is Synced and none is a donor, each back Synced by IST before the next; version, pid, IST/SST and the probe's write stall per node in the job log"},
	{RunbookReplicationFailover, []nines.Kind{nines.KindReplication}, "promote the most advanced replica when more than one observer agrees the primary is dead, after fencing it"},
	{RunbookReplicationRejoin, []nines.Kind{nines.KindReplication}, "make a node that stopped replicating (an old primary) a replica of the primary, if its history is a prefix of the primary's"},
	{RunbookReplicationReseed, []nines.Kind{nines.KindReplication}, "run by hand: rebuild a diverged node from a fresh mariadb-backup of a healthy replica, its old datadir kept and its diverged GTIDs logged"},
	{RunbookReplicationSwitch, []nines.Kind{nines.KindReplication}, "planned change of primary: old primary read-only, candidate caught up, promoted, old primary a replica; nothing lost"},
	{RunbookReplicationRollingRestart, []nines.Kind{nines.KindReplication}, "run by hand to roll out a config change or a minor upgrade: restart the replicas one at a time (each pointed at the primary again and caught up before the next), then switch over, then restart the old primary as a replica; refused while a replica does not replicate"},
	{RunbookNdbSystemRestart, []nines.Kind{nines.KindNDB}, "start every data node of a cluster that shut down (a lost node group) normally through their agents, when no data node runs and every agent answers that its process is gone, and follow the start phases until every node is STARTED"},
	{RunbookNdbDataNodeRestart, []nines.Kind{nines.KindNDB}, "start a down NDB data node normally through its agent, when the rest of its node group is STARTED, and follow its start phases until it is STARTED"},
	{RunbookNdbRollingRestart, []nines.Kind{nines.KindNDB}, "run by hand or after a config change: restart the management servers, then the data nodes one at a time (RESTART, never initial, each only while every data node is STARTED), then the SQL nodes one at a time; done when every data node runs the newest config_generation"},
	{RunbookBackup, []nines.Kind{nines.KindGalera, nines.KindReplication, nines.KindNDB}, "back up the cluster from its least loaded node (mariabackup or dump), or natively through the management server (ndb)"},
	{RunbookBackupVerify, []nines.Kind{nines.KindGalera, nines.KindReplication, nines.KindNDB}, "restore a backup into a scratch server and check it (a native ndb backup: its files only)"},
}

// LookupRunbook returns the runbook named name, if nines has it.
func LookupRunbook(name string) (RunbookInfo, bool) {
	for _, rb := range Runbooks {
		if rb.Name == name {
			return rb, true
		}
	}
	return RunbookInfo{}, false
}

// Kinds maps the job kinds the API and CLI accept to runbook names.
var Kinds = map[string]string{
	"backup":                 RunbookBackup,
	"verify":                 RunbookBackupVerify,
	"rejoin":                 RunbookGaleraNodeRejoin,
	"recover":                RunbookGaleraQuorumRecovery,
	"galera-rolling-restart": RunbookGaleraRollingRestart,
	// Replication: switchover names the new primary as the job's node
	// (optional); failover is for an admin who must force a candidate.
	"switchover":                  RunbookReplicationSwitch,
	"failover":                    RunbookReplicationFailover,
	"replication-rejoin":          RunbookReplicationRejoin,
	"reseed":                      RunbookReplicationReseed,
	"replication-rolling-restart": RunbookReplicationRollingRestart,
	// NDB: the job's node is the data node id (or params node_id).
	"ndb-restart":         RunbookNdbDataNodeRestart,
	"ndb-system-restart":  RunbookNdbSystemRestart,
	"ndb-rolling-restart": RunbookNdbRollingRestart,
}
