// Package agent is the nines host agent: a small authenticated HTTP API on
// each database host that controls the local MariaDB server and reads what
// only the host can read (grastate.dat, the position --wsrep-recover finds,
// free disk). The remediator and the sandbox drive nodes through it.
//
// # API
//
// Everything under /v1/ and /metrics needs `Authorization: Bearer <token>`;
// /healthz does not. Bodies are JSON; an empty body is an empty request.
// Errors are {"error": "..."} with a status that says what to do:
//
//	400 the request is malformed (bad position, unknown field or wait mode)
//	401 no or wrong token
//	409 refused in the server's current state: running when it must be
//	    stopped or the reverse, already Primary, another action in
//	    progress, a grastate.dat of another history; nothing was done
//	500 the action failed (the server exited during a start, recovery
//	    failed); the message carries the end of the error log
//	503 the running server does not answer over its socket
//	504 a start's wait ran into its timeout; the server keeps running
//
//	GET  /v1/status            Status
//	GET  /v1/grastate          Grastate
//	GET  /v1/peers             PeersResult (vantage point: Galera peers reached)
//	GET  /v1/health/writer     text: 200 or 503 and a one-line reason
//	GET  /v1/health/reader     text: 200 or 503 and a one-line reason
//	POST /v1/recover           -> RecoverResult (409 while running)
//	POST /v1/start             StartRequest -> StartResult
//	POST /v1/stop              StopRequest -> StopResult
//	POST /v1/restart           RestartRequest -> RestartResult
//	POST /v1/bootstrap-fields  BootstrapFieldsRequest -> BootstrapFieldsResult
//	POST /v1/pc-bootstrap      -> PCBootstrapResult (409 unless non-Primary)
//	POST /v1/drill/kill        -> StopResult: kill -9 of the server, for a
//	                              failure drill; 403 unless agent.yaml has
//	                              drill: {allowed: true} (drill.go)
//
//	POST /v1/replication/diverged     DivergedRequest -> DivergedResult (GTIDs of the binary logs another state lacks)
//	POST /v1/replication/seed-stream  SeedStreamRequest -> mbstream of mariadb-backup --slave-info (a replica donor)
//	POST /v1/replication/reseed?source_host=&source_port=&semi_sync=  body: a seed stream -> ReseedResult
//
//	POST   /v1/backups                BackupRequest -> Manifest (synchronous)
//	GET    /v1/backups?dir=D          -> []BackupInfo, newest first
//	DELETE /v1/backups/{id}?dir=D     -> BackupDeleteResult
//	POST   /v1/backups/{id}/verify    VerifyRequest -> VerifyResult
//
// A backup (mariabackup or dump, gzipped, into D/{id}/ with a manifest
// written last) holds the action lock below for its whole run; cancelling
// the request stops it and removes what it wrote. A verification restores
// a backup into a scratch server of its own and answers 200 whatever it
// finds: OK false names the failed check. See backup.go and verify.go.
//
// The health checks are for HAProxy's httpchk (nines haproxy config writes
// them with the token): 200 when the node is Synced (wsrep_local_state 4)
// in a Primary component, wsrep_ready ON and wsrep_desync OFF; 503
// otherwise, and whenever the status cannot be read within 800 ms. They
// run one status query each and change nothing. Writer and reader decide
// alike: HAProxy picks the one writer by server order (one active server,
// the others backup). See health.go.
//
// Fencing (appliances in HA): a POST or DELETE may carry X-Nines-Cluster
// and X-Nines-Fencing-Token, the cluster leader's etcd token. The agent
// keeps the highest per cluster in state_dir/fencing.json (fsynced before
// acting) and answers 409 with X-Nines-Fenced: 1 to a lower one, or to a
// request without any once it has seen one. See fencing.go.
//
// An agent configured with server.ndb_data_node controls an NDB data
// node (ndbmtd) instead: GET /v1/status, POST /v1/start (initial: true
// appends --initial; a start of a running node answers already_running)
// and POST /v1/stop; every MariaDB endpoint answers 409 saying so. See
// ndb.go.
//
// The agent never starts a server on its own: a server that crashes stays
// down until someone (the remediator, an operator, a test) asks for a
// start, so a crash is always seen and handled by the one deciding.
//
// Actions that change the server (recover, start, stop, restart,
// bootstrap-fields, pc-bootstrap) and backups run one at a time; a second
// one while another runs is refused with 409 rather than queued, so a
// caller never acts on a state it did not see. A start holds that lock
// only until the server is launched: waiting for it to sync does not
// block a stop. Verifications run one at a time too, beside that lock:
// they never touch the server.
package agent

import (
	"github.com/nines-project/nines"
	"github.com/nines-project/nines/galera"
)

// Wait modes of a start.
const (
	// WaitNone returns as soon as the server process runs.
	WaitNone = "none"
	// WaitReady returns once the server answers SQL over its socket.
	WaitReady = "ready"
	// WaitSynced returns once a Galera server is Synced in a Primary
	// component.
	WaitSynced = "synced"
)

// Kinds of server an agent controls (Status.Kind).
const (
	KindMariaDB     = "mariadb"
	KindNdbDataNode = "ndb_data_node"
	KindNdbMgmd     = "ndb_mgmd"
)

// Status is GET /v1/status: the server as its host sees it.
type Status struct {
	// Name is the agent's name (agent.yaml's name, else the host name).
	Name string `json:"name"`
	// Kind is the server the agent controls: KindMariaDB or
	// KindNdbDataNode. For a data node only Running, Pid, Supervised,
	// LastExit, NdbNodeID and the disk fields (of its dir) are set.
	Kind      string `json:"kind"`
	NdbNodeID int    `json:"ndb_node_id,omitempty"`
	Mode      Mode   `json:"mode"`
	Galera    bool   `json:"galera"`
	// Running and Pid describe the server process; Pid is 0 when stopped.
	Running bool `json:"running"`
	Pid     int  `json:"pid"`
	// Supervised is true when this agent process started the server and
	// so notices at once when it exits (LastExit).
	Supervised bool `json:"supervised"`
	// DrillAllowed is agent.yaml's drill.allowed: whether this host lets
	// POST /v1/drill/kill crash its server. The appliance checks it on
	// every node a drill would kill before killing any.
	DrillAllowed bool   `json:"drill_allowed"`
	DataDir      string `json:"data_dir"`
	// FreeBytes is what an unprivileged writer may still use on the
	// datadir's file system; TotalBytes its size.
	FreeBytes  uint64 `json:"free_bytes"`
	TotalBytes uint64 `json:"total_bytes"`
	DiskError  string `json:"disk_error,omitempty"`
	// Grastate is grastate.dat; GrastateError says why it is missing.
	Grastate      *galera.Grastate `json:"grastate,omitempty"`
	GrastateError string           `json:"grastate_error,omitempty"`
	// Gvwstate is gvwstate.dat, the last Primary view the node saved;
	// GvwstateError says why it is missing ("no such file" after a
	// graceful leave is normal).
	Gvwstate      *galera.Gvwstate `json:"gvwstate,omitempty"`
	GvwstateError string           `json:"gvwstate_error,omitempty"`
	// Wsrep is the running server's wsrep status, read over the local
	// socket and parsed by galera.ParseStatus; WsrepError says why it
	// could not be read, or names the value that did not parse.
	Wsrep      *nines.GaleraStatus `json:"wsrep,omitempty"`
	WsrepError string              `json:"wsrep_error,omitempty"`
	// LastExit is how the last server this agent started ended, if it did.
	LastExit *Exit `json:"last_exit,omitempty"`
	// Error says why the agent could not tell whether the server runs.
	Error string `json:"error,omitempty"`
}

// Exit is how a server the agent started ended.
type Exit struct {
	Pid int `json:"pid"`
	// At is RFC 3339 with milliseconds.
	At string `json:"at"`
	// Status is the wait status ("signal: killed", "exit status 1").
	Status string `json:"status"`
	// Requested is true when the agent stopped it on request; false means
	// it crashed or was killed from outside.
	Requested bool `json:"requested"`
	// Reason is the first [ERROR] line the server logged during its run,
	// if any: why it aborted ("bind: Address already in use"), which an
	// operator otherwise has to dig out of the host's error log.
	Reason string `json:"reason,omitempty"`
}

// RecoverResult is the answer to /v1/recover: the recovered position
// ({uuid, seqno, gtid}) and the same as text.
type RecoverResult struct {
	galera.Position
	// Text is "uuid:seqno[,gtid]", ready for StartRequest.Position.
	Text string `json:"position"`
}

// StartRequest is POST /v1/start.
type StartRequest struct {
	// Position is "uuid:seqno" to pass as --wsrep-start-position. Empty:
	// the agent runs --wsrep-recover first and uses what it finds, so a
	// Galera server always starts at a known position. In systemd mode
	// the unit's galera_recovery recovers the position itself: the agent
	// runs --wsrep-recover first and refuses (409) a position the unit
	// would not start at.
	Position string `json:"position,omitempty"`
	// NewCluster bootstraps a new Primary component (--wsrep-new-cluster).
	NewCluster bool `json:"new_cluster,omitempty"`
	// Wait is none, ready (default) or synced (Galera only). An NDB data
	// node's start waits only until its process runs: none.
	Wait string `json:"wait,omitempty"`
	// Initial starts an NDB data node with its initial_arg (--initial),
	// which throws the node's own data away and reloads it from its node
	// group: a person's last resort, never a default. MariaDB: refused.
	Initial bool `json:"initial,omitempty"`
	// TimeoutSeconds bounds the wait; default 120.
	TimeoutSeconds int `json:"timeout_seconds,omitempty"`
}

// StartResult is the answer to a start.
type StartResult struct {
	Pid int `json:"pid"`
	// Position is the start position passed to the server, if any.
	Position string `json:"position,omitempty"`
	// State is what the wait saw last: a wsrep state ("Synced") or
	// "answering"; empty for wait none.
	State  string `json:"state,omitempty"`
	TookMs int64  `json:"took_ms"`
	// AlreadyRunning is true when nothing was started because the
	// server (an NDB data node) was running already: a start is
	// idempotent there. State is then "already running".
	AlreadyRunning bool `json:"already_running,omitempty"`
	// Initial echoes an NDB data node start with --initial.
	Initial bool `json:"initial,omitempty"`
}

// StopRequest is POST /v1/stop.
type StopRequest struct {
	// Graceful (the default, when nil) sends SIGTERM and SIGKILL only
	// after the grace period; false sends SIGKILL at once, like a crash.
	Graceful *bool `json:"graceful,omitempty"`
	// GraceSeconds defaults to 30: a graceful stop takes 1-3 s, and a
	// kill loses the seqno Galera saves on shutdown.
	GraceSeconds int `json:"grace_seconds,omitempty"`
}

// StopResult is the answer to a stop. Stopping a stopped server succeeds
// with WasRunning false.
type StopResult struct {
	WasRunning bool  `json:"was_running"`
	Pid        int   `json:"pid,omitempty"`
	Killed     bool  `json:"killed"`
	TookMs     int64 `json:"took_ms"`
}

// RestartRequest is POST /v1/restart: a graceful stop, then a start as
// StartRequest describes. Restarting a stopped server starts it.
type RestartRequest struct {
	StartRequest
	GraceSeconds int `json:"grace_seconds,omitempty"`
}

// RestartResult is the answer to a restart.
type RestartResult struct {
	Stop  StopResult  `json:"stop"`
	Start StartResult `json:"start"`
}

// BootstrapFieldsRequest is POST /v1/bootstrap-fields: make the stopped
// server the one to bootstrap a new Primary component at uuid:seqno.
type BootstrapFieldsRequest struct {
	UUID  string `json:"uuid"`
	Seqno int64  `json:"seqno"`
	// Force overrides the refusals for a grastate.dat of another history,
	// an unreadable one, or one at a higher seqno. The old file is kept
	// beside it as grastate.dat.bak-<time> when it is replaced.
	Force bool `json:"force,omitempty"`
	// Clear sets safe_to_bootstrap back to 0 and changes nothing else
	// (uuid and seqno are then ignored): the undo after a bootstrap start
	// failed, so a later plain start cannot form a second Primary.
	Clear bool `json:"clear,omitempty"`
}

// BootstrapFieldsResult is grastate.dat after the edit.
type BootstrapFieldsResult struct {
	Grastate galera.Grastate `json:"grastate"`
	// Backup is where the replaced file went, when Force replaced one.
	Backup string `json:"backup,omitempty"`
}

// PCBootstrapResult is the answer to POST /v1/pc-bootstrap: the node's
// wsrep status right before and after.
type PCBootstrapResult struct {
	Before nines.GaleraStatus `json:"before"`
	After  nines.GaleraStatus `json:"after"`
	TookMs int64              `json:"took_ms"`
	Note   string             `json:"note,omitempty"`
}

// errorBody is every error answer.
type errorBody struct {
	Error string `json:"error"`
}

// ServerInfo is GET /v1/server-info: what a planned restart records of
// the running server before and after it (galera-rolling-restart).
type ServerInfo struct {
	Pid int `json:"pid"`
	// Version is SELECT VERSION(); UptimeSeconds the Uptime status.
	Version       string `json:"version"`
	UptimeSeconds int64  `json:"uptime_seconds"`
	// StateTransfer is how the running Galera server joined its cluster,
	// galera.TransferIST or galera.TransferSST, read from its error log
	// since this agent started it (galera.JoinMethod); StateTransferLine
	// is the log line that shows it. Empty when unknown: the server was
	// not started by this agent, has not joined yet, or logs elsewhere
	// (systemd mode).
	StateTransfer     string `json:"state_transfer,omitempty"`
	StateTransferLine string `json:"state_transfer_line,omitempty"`
	// StartPosition is the --wsrep-start-position this agent started it at.
	StartPosition string `json:"start_position,omitempty"`
}
