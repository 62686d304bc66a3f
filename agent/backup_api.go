package agent

import (
	"time"

	"github.com/nines-project/nines/galera"
)

// Backup methods.
const (
	// MethodMariabackup is a physical backup: mariadb-backup's mbstream,
	// gzipped. On Galera it carries the node's uuid:seqno, so a node can be
	// seeded from it.
	MethodMariabackup = "mariabackup"
	// MethodDump is a logical backup: mariadb-dump of all databases in one
	// transaction, gzipped.
	MethodDump = "dump"
)

// Backup states in a listing.
const (
	// BackupComplete has a manifest: every file was written and synced.
	BackupComplete = "complete"
	// BackupIncomplete has none: a backup running now (BackupInfo.Running)
	// or one interrupted by a crash of the agent or the host.
	BackupIncomplete = "incomplete"
)

// Files a backup directory holds.
const (
	// ManifestFile is written last, atomically: it exists only for a
	// complete backup.
	ManifestFile = "manifest.json"
	// MarkerFile is written first into a new backup directory: DELETE
	// removes only directories holding it or a manifest.
	MarkerFile       = ".nines-backup"
	MariabackupFile  = "backup.mbstream.gz"
	DumpFile         = "dump.sql.gz"
	manifestVersion  = 1
	verifyDirPrefix  = ".verify-"
	maxBackupIDChars = 128
)

// BackupRequest is POST /v1/backups.
type BackupRequest struct {
	// Method is "mariabackup" or "dump".
	Method string `json:"method"`
	// Dir is an absolute directory on the agent's host; the backup goes
	// into Dir/ID/. Dir is created if missing. Verification runs a
	// scratch server under it as the server's OS user (mysql), so Dir and
	// its parents must be searchable (x) by that user.
	Dir string `json:"dir"`
	// Desync sets wsrep_desync=ON for the backup's duration (mariabackup
	// on Galera only), so the node's copy does not hold the cluster back
	// through flow control. It is set OFF again whatever happens.
	Desync bool `json:"desync,omitempty"`
	// ID names the backup: 1 to 128 of [A-Za-z0-9._-], not starting with
	// a dot. It must not exist in Dir yet.
	ID string `json:"id"`
}

// Manifest describes one complete backup; it is Dir/ID/manifest.json.
type Manifest struct {
	// Version is the manifest format, 1.
	Version int    `json:"version"`
	ID      string `json:"id"`
	Method  string `json:"method"`
	// Node is the agent's name, Host the host name.
	Node            string    `json:"node"`
	Host            string    `json:"host"`
	StartedAt       time.Time `json:"started_at"`
	EndedAt         time.Time `json:"ended_at"`
	DurationSeconds float64   `json:"duration_seconds"`
	// SizeBytes is the sum of Files' sizes (compressed, on disk).
	SizeBytes int64        `json:"size_bytes"`
	Files     []BackupFile `json:"files"`
	// Galera is the node's position in its cluster's history at the
	// backup point (mariabackup on Galera): what grastate.dat of a node
	// seeded from this backup must say.
	Galera *galera.Position `json:"galera,omitempty"`
	// GTID is the MariaDB GTID position at the backup point (empty when
	// the server writes no binary log). BinlogFile and BinlogPos are the
	// binary log coordinates of the same point.
	GTID       string `json:"gtid"`
	BinlogFile string `json:"binlog_file,omitempty"`
	BinlogPos  int64  `json:"binlog_pos,omitempty"`
	// Desynced reports that wsrep_desync was ON during the backup.
	Desynced bool `json:"desynced"`
	// Tables is the number of tables (and views) per schema, and
	// RowCounts the exact row count of up to 5 largest tables
	// ("schema.table"), both read on the source for verification. The
	// system schemas and the appliance's own nines schema are left out.
	Tables    map[string]int   `json:"tables"`
	RowCounts map[string]int64 `json:"row_counts"`
	// FactsExact is true when Tables and RowCounts were read in a
	// snapshot shown to be the backup's own (same binary log position).
	// When false they were read as close to the backup point as the agent
	// could, and writes in between may make a verification differ.
	FactsExact    bool   `json:"facts_exact"`
	ServerVersion string `json:"server_version"`
	// NDB is set on a native NDB backup (Method "ndb") listed by a data
	// node's agent: the backup id and this node's part of it.
	NDB *NdbBackup `json:"ndb,omitempty"`
}

// BackupFile is one file of a backup.
type BackupFile struct {
	Name   string `json:"name"`
	Size   int64  `json:"size"`
	SHA256 string `json:"sha256"`
}

// BackupInfo is one entry of GET /v1/backups: the manifest of a complete
// backup, or what can be told of an incomplete one (ID, Method guessed
// from its files, StartedAt the directory's modification time, SizeBytes).
type BackupInfo struct {
	Manifest
	// State is "complete" or "incomplete".
	State string `json:"state"`
	// Running is true for the backup this agent is writing now; it is
	// also incomplete, and DELETE refuses it.
	Running bool `json:"running,omitempty"`
	// Error says why a manifest that exists could not be read.
	Error string `json:"error,omitempty"`
}

// BackupDeleteResult is the answer to DELETE /v1/backups/{id}.
type BackupDeleteResult struct {
	ID         string `json:"id"`
	FreedBytes int64  `json:"freed_bytes"`
}

// VerifyRequest is POST /v1/backups/{id}/verify.
type VerifyRequest struct {
	// Dir is the directory the backup is in (as in BackupRequest).
	Dir string `json:"dir"`
	// Port is the TCP port of the scratch server on 127.0.0.1; 0 picks a
	// free one.
	Port int `json:"port,omitempty"`
}

// VerifyResult is the answer to a verification that ran. OK false with
// the failed check is a backup that did not verify; errors of the agent
// itself are HTTP errors instead.
type VerifyResult struct {
	ID     string `json:"id"`
	Method string `json:"method"`
	OK     bool   `json:"ok"`
	// Port is the scratch server's port.
	Port int `json:"port,omitempty"`
	// ChecksumSeconds is the time to hash every file; RestoreSeconds from
	// the start of the restore until the scratch server answered with the
	// data loaded; CheckSeconds the checks after that.
	ChecksumSeconds float64       `json:"checksum_seconds"`
	RestoreSeconds  float64       `json:"restore_seconds"`
	CheckSeconds    float64       `json:"check_seconds"`
	Checks          []VerifyCheck `json:"checks"`
	// Error is the first failed check, "name: detail"; empty when OK.
	Error string `json:"error,omitempty"`
}

// VerifyCheck is one check of a verification. Names are stable:
// "checksum:<file>", "restore", "server_starts", "tables",
// "row_count:<schema.table>", "check_table:<schema.table>".
type VerifyCheck struct {
	Name   string `json:"name"`
	OK     bool   `json:"ok"`
	Detail string `json:"detail,omitempty"`
}
