// Package backup holds the backup runbooks and what schedules and keeps
// track of them: a backup job chooses a node, has its host agent take the
// backup, restores it on the side to verify it, and applies retention;
// the Scheduler starts those jobs at their cron times; the Catalog merges
// what every agent holds into the list and the nines_backup_* series.
//
// Backups are remediator jobs: they share the job log, the one-job-per-
// cluster slot and the jobs API with the repairs. A backup job is
// preemptible: an automatic repair of the cluster cancels it instead of
// waiting for it (see remediator.Preemptible).
//
// Like the Galera runbooks, everything here acts only through Agent,
// which the appliance implements over each host's nines agent.
package backup

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/nines-project/nines"
	"github.com/nines-project/nines/galera"
)

// Methods are the backup methods nines knows.
const (
	// MethodMariabackup is a physical hot backup with mariadb-backup.
	MethodMariabackup = "mariabackup"
	// MethodDump is a logical backup with mariadb-dump.
	MethodDump = "dump"
)

// ValidMethod reports whether m is a backup method nines knows.
func ValidMethod(m string) bool { return m == MethodMariabackup || m == MethodDump || m == MethodNDB }

// Backup states in an agent's list.
const (
	StateComplete   = "complete"
	StateIncomplete = "incomplete"
)

// Plan is one configured backup schedule of a cluster: one per method.
type Plan struct {
	Cluster string
	Kind    nines.Kind
	Method  string
	// Schedule is the cron expression (5 fields or a descriptor such as
	// @daily), in the appliance's local time zone unless it starts with
	// CRON_TZ=.
	Schedule string
	// Keep is how many complete backups of the method to keep; MaxAge,
	// when set, removes older ones too, but never the newest complete one.
	Keep   int
	MaxAge time.Duration
	// Verify restores each new backup on the side and checks it.
	Verify bool
	// Dir is where backups live on the database hosts.
	Dir string
	// Node pins the backups to one node (host:port); empty lets each job
	// choose the least loaded healthy node.
	Node string
	// Desync has a Galera node leave flow control (wsrep_desync) during
	// the backup, so a slow backup never slows the cluster down.
	Desync bool
}

// Request is what a host agent is asked to back up.
type Request struct {
	Method string `json:"method"`
	Dir    string `json:"dir"`
	Desync bool   `json:"desync"`
	ID     string `json:"id"`
}

// File is one file of a backup.
type File struct {
	Name   string `json:"name"`
	Size   int64  `json:"size"`
	SHA256 string `json:"sha256"`
}

// PositionText is p as uuid:seqno, or "" when the backup has none.
func PositionText(p *galera.Position) string {
	if p == nil || p.UUID == "" {
		return ""
	}
	return p.String()
}

// Manifest describes one backup as the agent that made it wrote it down.
type Manifest struct {
	ID              string    `json:"id"`
	Method          string    `json:"method"`
	Node            string    `json:"node"`
	Host            string    `json:"host,omitempty"`
	StartedAt       time.Time `json:"started_at"`
	EndedAt         time.Time `json:"ended_at,omitzero"`
	DurationSeconds float64   `json:"duration_seconds"`
	SizeBytes       int64     `json:"size_bytes"`
	Files           []File    `json:"files,omitempty"`
	// Galera is the node's uuid:seqno at the backup point (mariabackup on
	// Galera): what grastate.dat of a node seeded from it must say.
	Galera     *galera.Position `json:"galera,omitempty"`
	GTID       string           `json:"gtid,omitempty"`
	BinlogFile string           `json:"binlog_file,omitempty"`
	BinlogPos  int64            `json:"binlog_pos,omitempty"`
	Desynced   bool             `json:"desynced,omitempty"`
	// Tables (per schema) and RowCounts (of the largest tables) were read
	// on the source for the verification to compare; FactsExact says they
	// are the backup point's own.
	Tables        map[string]int   `json:"tables,omitempty"`
	RowCounts     map[string]int64 `json:"row_counts,omitempty"`
	FactsExact    bool             `json:"facts_exact,omitempty"`
	ServerVersion string           `json:"server_version,omitempty"`
	// NDB is a native NDB backup's id and files per data node (ndb.go).
	NDB *NDBBackup `json:"ndb,omitempty"`
}

// Info is a backup in an agent's list: its manifest and whether it is
// complete. An incomplete one was interrupted or failed.
type Info struct {
	Manifest
	State string `json:"state"`
	// Running marks the incomplete backup its agent is writing now.
	Running bool `json:"running,omitempty"`
	// Error says why the agent could not read a manifest that exists.
	Error string `json:"error,omitempty"`
	// Holder is the node whose agent listed it (set by nines, not by the
	// agent): retention deletes it through that agent.
	Holder string `json:"holder,omitempty"`
	Dir    string `json:"dir,omitempty"`
}

// Complete reports whether the backup finished.
func (i Info) Complete() bool { return i.State == StateComplete }

// Check is one check of a verification.
type Check struct {
	Name   string `json:"name"`
	OK     bool   `json:"ok"`
	Detail string `json:"detail,omitempty"`
}

// VerifyResult is what restoring a backup on the side found.
type VerifyResult struct {
	ID string `json:"id"`
	OK bool   `json:"ok"`
	// ChecksumSeconds hashes every file; RestoreSeconds restores until
	// the scratch server answers with the data; CheckSeconds checks it.
	ChecksumSeconds float64 `json:"checksum_seconds"`
	RestoreSeconds  float64 `json:"restore_seconds"`
	CheckSeconds    float64 `json:"check_seconds"`
	Checks          []Check `json:"checks,omitempty"`
	Error           string  `json:"error,omitempty"`
	// Scope is empty for a restore on the side; ScopeFiles when only the
	// files were checked (a native NDB backup without ndb_restore), with
	// Note saying so in words.
	Scope string `json:"scope,omitempty"`
	Note  string `json:"note,omitempty"`
}

// Failure says, in words, why a verification failed: the first failing
// check and its detail, or the error.
func (v VerifyResult) Failure() string {
	if v.OK {
		return ""
	}
	for _, c := range v.Checks {
		if !c.OK {
			if c.Detail != "" {
				return fmt.Sprintf("check %s failed: %s", c.Name, c.Detail)
			}
			return fmt.Sprintf("check %s failed", c.Name)
		}
	}
	if v.Error != "" {
		return v.Error
	}
	return "verification failed without saying why"
}

// Agent is a host agent as the backup runbooks use it.
type Agent interface {
	Backup(ctx context.Context, req Request) (Manifest, error)
	// List returns the backups under dir on the host.
	List(ctx context.Context, dir string) ([]Info, error)
	Delete(ctx context.Context, dir, id string) error
	// Verify restores backup id of dir into a scratch server on the host
	// and checks it.
	Verify(ctx context.Context, dir, id string) (VerifyResult, error)
}

// Host is one node of a cluster that has an agent.
type Host struct {
	Node  string // the node's SQL address, its instance label
	Agent Agent
	// NDBNodeID is set on the host of an NDB data node (native backups):
	// its node id. Node is then DataNodeName(NDBNodeID).
	NDBNodeID int
}

// DataNodeName names NDB data node id as a backup host.
func DataNodeName(id int) string { return fmt.Sprintf("data-node-%d", id) }

// Hosts returns the nodes of a cluster that have an agent.
type Hosts func(cluster string) ([]Host, error)

func findHost(hosts []Host, node string) (Host, bool) {
	for _, h := range hosts {
		if h.Node == node {
			return h, true
		}
	}
	return Host{}, false
}

// NewID names a backup: when it started (UTC, to the millisecond, so two
// quick runs on one node never collide), its method and the node it was
// taken from, in characters safe in a file name:
// 20261126T031500.250Z-mariabackup-db1-3306.
func NewID(at time.Time, method, node string) string {
	var b strings.Builder
	for _, r := range node {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '.', r == '-':
			b.WriteRune(r)
		default:
			b.WriteByte('-')
		}
	}
	return fmt.Sprintf("%s-%s-%s", at.UTC().Format("20060102T150405.000Z"), method, b.String())
}

// validID accepts what NewID makes and what an operator may type back.
func validID(id string) bool {
	if id == "" || len(id) > 200 || strings.HasPrefix(id, ".") {
		return false
	}
	for _, r := range id {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '.' || r == '-' || r == '_') {
			return false
		}
	}
	return true
}
