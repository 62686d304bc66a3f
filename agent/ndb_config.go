package agent

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// DefaultNdbInitialArg is what a start with initial: true appends to an
// NDB data node's command: ndbmtd's and ndbd's --initial, which throws the
// node's file system and redo log away and reloads it from its node group.
const DefaultNdbInitialArg = "--initial"

// MaxNdbDataNodeID is the highest data node id NDB 8.x allows;
// MaxNdbNodeID the highest node id of any type (a management server's).
const (
	MaxNdbDataNodeID = 144
	MaxNdbNodeID     = 255
)

// NdbDataNode is an NDB data node the agent runs as a detached process:
//
//	server:
//	  ndb_data_node:
//	    node_id: 3
//	    command: [/usr/sbin/ndbmtd, --ndb-connectstring=mgm1:1186, --ndb-nodeid=3]
//	    initial_arg: --initial      # appended only when a start asks for it
//	    pid_file: /var/lib/mysql-cluster/ndb_3.pid
//	    log: /var/log/nines/ndbd-3.out
//
// The command must start the node normally: the agent never adds
// initial_arg on its own. Run ndbmtd with --nodaemon so the process the
// agent starts is the node and its exit is seen at once. Relative paths
// are relative to agent.yaml.
//
// Or the node runs as a systemd unit (then command, pid_file and log are
// not used):
//
//	ndb_data_node: {node_id: 3, unit: ndbmtd@3.service}
//
// An initial start then sets the manager environment variable
// NINES_NDB_INITIAL to initial_arg for the start and unsets it after, so
// the unit's ExecStart must end with $NINES_NDB_INITIAL (empty, hence no
// argument, otherwise).
type NdbDataNode struct {
	NodeID     int      `yaml:"node_id"`
	Command    []string `yaml:"command"`
	InitialArg string   `yaml:"initial_arg"`
	// PidFile is where the node writes its pid (ndbmtd: ndb_<id>.pid in
	// its DataDir). The agent trusts it only for a live process started
	// by the same command, so a stale file never names another program.
	PidFile string `yaml:"pid_file"`
	// Log receives the process's stdout and stderr, appended.
	Log string `yaml:"log"`
	// Dir is the working directory; default the pid file's directory.
	Dir string `yaml:"dir"`
	// Unit is the systemd unit running the node, instead of Command.
	Unit string `yaml:"unit"`
	// BackupDataDir is the node's BackupDataDir (config.ini; NDB's
	// default is its FileSystemPath, itself DataDir by default): native
	// backups are in its BACKUP/ subdirectory. Without it the agent
	// cannot list or delete them. An existing directory.
	BackupDataDir string `yaml:"backup_data_dir"`
}

// NdbInitialEnv is the systemd manager environment variable an initial
// start of a data node unit sets to initial_arg.
const NdbInitialEnv = "NINES_NDB_INITIAL"

// validateNdb checks server.ndb_data_node or server.ndb_mgmd (prefix)
// and resolves its paths.
func (c *Config) validateNdb(n *NdbDataNode, prefix string, maxID int, at func(path, format string, args ...any)) {
	if n.NodeID < 1 || n.NodeID > maxID {
		what := "a data node id"
		if maxID != MaxNdbDataNodeID {
			what = "a node id"
		}
		at(prefix+".node_id", "%d: want %s from 1 to %d", n.NodeID, what, maxID)
	}
	if n.InitialArg == "" {
		n.InitialArg = DefaultNdbInitialArg
	}
	if !strings.HasPrefix(n.InitialArg, "-") {
		at(prefix+".initial_arg", "%q: want an option such as --initial", n.InitialArg)
	}
	if n.BackupDataDir != "" {
		n.BackupDataDir = filepath.Clean(c.resolve(n.BackupDataDir))
		if fi, err := os.Stat(n.BackupDataDir); err != nil || !fi.IsDir() {
			at(prefix+".backup_data_dir", "%q is not a directory: want the data node's BackupDataDir", n.BackupDataDir)
		} else if n.BackupDataDir == "/" {
			at(prefix+".backup_data_dir", `"/" is not allowed: native backups are deleted below it`)
		}
	}
	if n.Unit != "" {
		if len(n.Command) > 0 || n.PidFile != "" || n.Log != "" {
			at(prefix+".unit", "set either unit or command (with pid_file and log), not both")
		}
		if n.Dir != "" {
			n.Dir = c.resolve(n.Dir)
		}
		return
	}
	switch {
	case len(n.Command) == 0:
		at(prefix+".command", "required (or unit): the program and arguments that start the node normally, e.g. [/usr/sbin/ndbmtd, --nodaemon, --ndb-connectstring=mgm1:1186, --ndb-nodeid=%d]", n.NodeID)
	case n.Command[0] == "":
		at(prefix+".command", "the program (first element) is empty")
	default:
		prog := n.Command[0]
		if strings.Contains(prog, "/") {
			prog = c.resolve(prog)
		}
		if p, err := exec.LookPath(prog); err != nil {
			at(prefix+".command", "program %q: %v", n.Command[0], err)
		} else {
			n.Command[0] = p
		}
		for i, a := range n.Command[1:] {
			if a == n.InitialArg || a == "--initial" || a == "-i" {
				at(fmt.Sprintf("%s.command[%d]", prefix, i+1), "%q: the standing command must start the node normally; the agent appends %s only when a start request says initial: true", a, n.InitialArg)
			}
		}
	}
	for _, f := range []struct {
		field string
		p     *string
	}{{"pid_file", &n.PidFile}, {"log", &n.Log}} {
		if *f.p == "" {
			at(prefix+"."+f.field, "required")
			continue
		}
		*f.p = c.resolve(*f.p)
		if fi, err := os.Stat(filepath.Dir(*f.p)); err != nil || !fi.IsDir() {
			at(prefix+"."+f.field, "%q: its directory does not exist", *f.p)
		}
	}
	if n.Dir == "" && n.PidFile != "" {
		n.Dir = filepath.Dir(n.PidFile)
	}
	n.Dir = c.resolve(n.Dir)
	if fi, err := os.Stat(n.Dir); n.Dir != "" && (err != nil || !fi.IsDir()) {
		at(prefix+".dir", "%q is not a directory", n.Dir)
	}
}
