// Package nines holds the domain vocabulary shared by every part of the
// appliance: clusters, nodes and the per-node snapshot that the exporters
// observe and everything else reads. It has no dependencies beyond the
// standard library, so any package may import it.
package nines

import (
	"fmt"
	"time"
)

// Kind is the technology a cluster runs.
type Kind string

const (
	KindGalera      Kind = "galera"
	KindReplication Kind = "replication"
	KindNDB         Kind = "ndb"
)

// Valid reports whether k is one of the kinds nines knows.
func (k Kind) Valid() bool {
	switch k {
	case KindGalera, KindReplication, KindNDB:
		return true
	}
	return false
}

// Cluster is a monitored database cluster as configured.
type Cluster struct {
	Name  string
	Kind  Kind
	Nodes []Node
	// DRReplicas are servers outside a Galera cluster that replicate
	// from one of its nodes (a disaster-recovery site); not members.
	DRReplicas []Node
}

// Node is one database server of a cluster.
type Node struct {
	// Address is host:port of the server's SQL endpoint. It is also the
	// node's "instance" label on every series.
	Address string
	// Agent is the URL of the nines agent on the node's host, if any.
	Agent string
}

// Snapshot is what one scrape of one node saw. Metrics, the console and the
// remediator all read snapshots; nothing queries a node twice for the same
// fact. A Snapshot is immutable once published.
type Snapshot struct {
	Cluster  string
	Instance string
	// Time is when the scrape started; Duration how long it took.
	Time     time.Time
	Duration time.Duration
	// Up is false when the node could not be read at all (connect or
	// status query failed). Err then says why.
	Up  bool
	Err string
	// Scrapes and Errors count this node's scrapes and the failed ones
	// (Err set) since the process started, this one included. They are
	// counters, so a failure between two rule evaluations is not lost the
	// way a 0 of the per-scrape success gauge can be.
	Scrapes uint64
	Errors  uint64

	// Status is SHOW GLOBAL STATUS, names as the server spells them.
	Status map[string]string
	// Variables is SHOW GLOBAL VARIABLES as last read, at VariablesTime.
	// Variables change rarely, so they are read less often than status.
	Variables     map[string]string
	VariablesTime time.Time

	// Galera is set when the node runs wsrep (wsrep_on and a provider).
	Galera *GaleraStatus
	// Replicas holds one entry per replication channel; empty when the node
	// replicates from nobody or replica status is not collected.
	Replicas []ReplicaStatus
	// Replication is set on MariaDB nodes of replication clusters: GTID
	// positions and semi-sync switches, read every scrape.
	Replication *ReplicationState
	// HeartbeatLag is the node's clock minus the written_at of the newest
	// heartbeat row of this appliance's probe that the node holds; nil when
	// not read (no probe, or table or row missing: Err says which).
	HeartbeatLag *time.Duration
}

// ClusterStatus is a Galera node's view of its component
// (wsrep_cluster_status).
type ClusterStatus int

const (
	ClusterStatusUnknown ClusterStatus = iota
	ClusterStatusPrimary
	ClusterStatusNonPrimary
	ClusterStatusDisconnected
)

func (s ClusterStatus) String() string {
	switch s {
	case ClusterStatusPrimary:
		return "Primary"
	case ClusterStatusNonPrimary:
		return "non-Primary"
	case ClusterStatusDisconnected:
		return "Disconnected"
	}
	return "unknown"
}

// MarshalText writes the status as the server spells it.
func (s ClusterStatus) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// UnmarshalText reads what MarshalText wrote, so the status survives a
// JSON round trip (the agent's API, the job log). Anything else is an
// error, never a silent Unknown.
func (s *ClusterStatus) UnmarshalText(b []byte) error {
	for _, c := range []ClusterStatus{ClusterStatusUnknown, ClusterStatusPrimary, ClusterStatusNonPrimary, ClusterStatusDisconnected} {
		if string(b) == c.String() {
			*s = c
			return nil
		}
	}
	return fmt.Errorf("cluster status %q: not one of Primary, non-Primary, Disconnected, unknown", b)
}

// LocalState is the wsrep member state (wsrep_local_state), numbered as in
// the wsrep API's wsrep_member_status.
type LocalState int

const (
	LocalStateUndefined LocalState = 0
	LocalStateJoiner    LocalState = 1
	LocalStateDonor     LocalState = 2
	LocalStateJoined    LocalState = 3
	LocalStateSynced    LocalState = 4
	LocalStateError     LocalState = 5
)

func (s LocalState) String() string {
	switch s {
	case LocalStateUndefined:
		return "Initialized"
	case LocalStateJoiner:
		return "Joining"
	case LocalStateDonor:
		return "Donor/Desynced"
	case LocalStateJoined:
		return "Joined"
	case LocalStateSynced:
		return "Synced"
	case LocalStateError:
		return "Error"
	}
	return fmt.Sprintf("LocalState(%d)", int(s))
}

// GaleraStatus is the typed part of a Galera node's wsrep status that
// decisions are made on. Everything else stays in Snapshot.Status. It is
// vocabulary, defined here because Snapshot carries it; galera.ParseStatus
// is the only code that fills it from a server's status, and the
// exporter, the agent (whose API sends it as JSON), the remediator and the
// sandbox all read it.
type GaleraStatus struct {
	ClusterStatus     ClusterStatus `json:"cluster_status"`
	ClusterSize       int           `json:"cluster_size"`
	ClusterConfID     int64         `json:"cluster_conf_id"`
	ClusterStateUUID  string        `json:"cluster_state_uuid"`
	LocalStateUUID    string        `json:"local_state_uuid"`
	LocalState        LocalState    `json:"local_state"`
	LocalStateComment string        `json:"local_state_comment"`
	Ready             bool          `json:"ready"`
	Connected         bool          `json:"connected"`
	LastCommitted     int64         `json:"last_committed"`
	FlowControlPaused float64       `json:"flow_control_paused"`
	LocalRecvQueue    int64         `json:"local_recv_queue"`
	EVSState          string        `json:"evs_state"`
	EVSDelayed        string        `json:"evs_delayed,omitempty"`
	NodeName          string        `json:"node_name"`    // wsrep_node_name, from variables
	ClusterName       string        `json:"cluster_name"` // wsrep_cluster_name, from variables
}

// Primary reports whether the node is a member of a Primary component.
func (g *GaleraStatus) Primary() bool {
	return g != nil && g.ClusterStatus == ClusterStatusPrimary
}

// Synced reports whether the node is a healthy member of a Primary
// component: the state applications can write through. All three are
// needed: wsrep_ready=OFF means the node refuses queries even when its
// state says Synced (for a moment after a view change, or with
// wsrep_reject_queries).
func (g *GaleraStatus) Synced() bool {
	return g.Primary() && g.LocalState == LocalStateSynced && g.Ready
}

// ReplicaStatus is one replication channel of a replica (SHOW ALL REPLICAS
// STATUS on MariaDB, SHOW REPLICA STATUS on MySQL).
type ReplicaStatus struct {
	Channel       string // MariaDB Connection_name or MySQL Channel_Name; "" is the default
	SourceHost    string
	SourcePort    int
	IORunning     bool
	SQLRunning    bool
	IOState       string // Slave_IO_Running as reported: Yes, No, Connecting
	SecondsBehind *int64 // nil when the server reports NULL (threads stopped)
	LastIOError   string
	LastSQLError  string
	GTIDIOPos     string // Gtid_IO_Pos (MariaDB) or Retrieved_Gtid_Set (MySQL)
	// Fields is every column as the server returned it, for the
	// mysql_slave_status_* families.
	Fields map[string]string
	// IOThread and SQLThread are Slave_IO_Running and Slave_SQL_Running as
	// parsed; ThreadUnknown for a value nines cannot read.
	IOThread, SQLThread ThreadState
	// LastIOErrno and LastSQLErrno: 0 is no error.
	LastIOErrno, LastSQLErrno int
}

// AlertState is where an alert rule's alert stands.
type AlertState int

const (
	// AlertInactive: the condition does not hold (a resolved alert).
	AlertInactive AlertState = iota
	// AlertPending: the condition holds, but not yet for the rule's for.
	AlertPending
	// AlertFiring: the condition held for the rule's for; it is sent.
	AlertFiring
)

func (s AlertState) String() string {
	switch s {
	case AlertPending:
		return "pending"
	case AlertFiring:
		return "firing"
	}
	return "inactive"
}

// MarshalText writes the state as the Prometheus API names it.
func (s AlertState) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// Alert is one alert of an alerting rule: what the rules produce, what is
// sent to Alertmanager, and what the remediator receives back from it.
type Alert struct {
	// Labels identify the alert: the rule's labels, the series' labels and
	// alertname. severity is critical (pages), warning (ticket) or info.
	Labels      map[string]string `json:"labels"`
	Annotations map[string]string `json:"annotations"`
	State       AlertState        `json:"state"`
	// ActiveAt is when the condition was first seen to hold; FiredAt when
	// the alert started firing; ResolvedAt when it stopped (zero while it
	// holds).
	ActiveAt   time.Time `json:"activeAt"`
	FiredAt    time.Time `json:"firedAt,omitzero"`
	ResolvedAt time.Time `json:"resolvedAt,omitzero"`
	// Value is the expression's value when last evaluated.
	Value float64 `json:"value"`
}

// ThreadState is a replica thread's Slave_IO_Running or Slave_SQL_Running.
type ThreadState int

const (
	ThreadUnknown    ThreadState = iota // a value nines cannot read
	ThreadStopped                       // No: stopped by hand or on an error
	ThreadRunning                       // Yes
	ThreadConnecting                    // Connecting: the IO thread retries its source
)

func (t ThreadState) String() string {
	switch t {
	case ThreadStopped:
		return "No"
	case ThreadRunning:
		return "Yes"
	case ThreadConnecting:
		return "Connecting"
	}
	return "unknown"
}

// ReplicationState is a replication node's place in the GTID stream and its
// semi-sync switches, read every scrape: SHOW GLOBAL VARIABLES is read once
// a minute, too seldom for positions, and a semi-sync switch read a minute
// late would make a deliberate switch-off look like a fallback to async.
type ReplicationState struct {
	GTIDBinlogPos string // @@gtid_binlog_pos: the node's binlog
	GTIDSlavePos  string // @@gtid_slave_pos: what it applied as a replica
	// Semi-sync switches (MariaDB's built-in semi-sync, 10.3+).
	SemiSyncMasterEnabled bool
	SemiSyncSlaveEnabled  bool
	SemiSyncWaitPoint     string // AFTER_SYNC or AFTER_COMMIT
}
