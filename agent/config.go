package agent

import (
	"bufio"
	"bytes"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/nines-project/nines/internal/secret"
	"github.com/nines-project/nines/internal/yamlfile"
)

// DefaultListen is where an agent listens when agent.yaml does not say:
// loopback, so an agent never reaches the network by accident. Agents the
// appliance calls from another host listen on a routable address with TLS.
const DefaultListen = "127.0.0.1:9105"

// DefaultDefaultsFile is the server's option file in systemd mode: Debian's
// mariadb.service reads it (and what it includes).
const DefaultDefaultsFile = "/etc/mysql/my.cnf"

// DefaultBackupDir is the one directory backups may go to when agent.yaml
// names none (backup_dirs).
const DefaultBackupDir = "/var/backups/nines"

// MinTokenLength is the shortest bearer token an agent accepts.
const MinTokenLength = 16

// Mode is how the agent controls its server.
type Mode string

const (
	// ModeProcess: the agent starts mariadbd itself, detached, and
	// finds it by its pid file (the sandbox; hosts without systemd).
	ModeProcess Mode = "process"
	// ModeSystemd: the agent starts and stops a systemd unit.
	ModeSystemd Mode = "systemd"
)

// Config is agent.yaml:
//
//	name: db1                      # optional, in logs; default the host name
//	listen: 127.0.0.1:9105
//	tls: {cert_file: agent.crt, key_file: agent.key}   # optional;
//	                               # client_ca_file: ca.crt requires client certificates
//	token_file: agent-token        # bearer token, 16 characters or more
//	insecure: false                # true: allow a non-loopback listen without tls
//	backup_dirs: [/var/backups/nines]   # the only directories backups may use
//	state_dir: /var/lib/nines-agent     # the agent's own state (fencing tokens);
//	                               # default server.process.dir, else /var/lib/nines-agent
//	server:
//	  galera: true                 # default; false for servers without wsrep (replication health checks)
//	  process:                     # or systemd: {unit: mariadb.service, ...}
//	    defaults_file: /srv/db1/my.cnf
//	    data_dir: /srv/db1/data    # optional: taken from the defaults file
//	    dir: /srv/db1              # for recover.log and mariadbd.out
//	  recover_timeout: 10m         # bounds --wsrep-recover (crash recovery)
//
// socket, pid_file and error_log may be given too (beside defaults_file);
// by default they come from the defaults file, read with my_print_defaults
// exactly as mariadbd reads it. Relative paths are relative to agent.yaml.
type Config struct {
	// File is the path the config was read from.
	File string `yaml:"-"`

	Name      string        `yaml:"name"`
	Listen    string        `yaml:"listen"`
	TLS       *TLS          `yaml:"tls"`
	TokenFile string        `yaml:"token_file"`
	Token     secret.Secret `yaml:"-"`
	Server    ServerConfig  `yaml:"server"`
	// Insecure allows listening on a non-loopback address without TLS:
	// the token and every request then cross the network in clear text.
	Insecure bool `yaml:"insecure"`
	// BackupDirs are the directories a request may name as a backup dir
	// (or a directory below one); default [DefaultBackupDir]. Requests
	// come from the network and the agent runs as root: nothing else on
	// the host may be listed, created or deleted through the backup API.
	BackupDirs []string `yaml:"backup_dirs"`
	// Replication is the account this server's replica connection logs in
	// to its source with, when nines points it at a new primary (failover,
	// switchover, rejoin). It stays on the host: requests never carry it.
	Replication *ReplicationAccount `yaml:"replication"`
	// StateDir holds what the agent itself must remember across restarts:
	// the highest fencing token per cluster (FenceFile).
	StateDir string `yaml:"state_dir"`
	// Drill is the host's own consent to failure drills: without
	// allowed: true, POST /v1/drill/kill is refused whatever token the
	// caller holds, so an appliance's token alone cannot crash a server.
	Drill Drill `yaml:"drill"`
}

// Drill is agent.yaml's drill section.
type Drill struct {
	Allowed bool `yaml:"allowed"`
}

// DefaultStateDir is the agent's state dir when agent.yaml names none and
// the server has no dir of its own.
const DefaultStateDir = "/var/lib/nines-agent"

// ReplicationAccount is a replication user and the file holding its
// password.
type ReplicationAccount struct {
	User         string        `yaml:"user"`
	PasswordFile string        `yaml:"password_file"`
	Password     secret.Secret `yaml:"-"`
}

// TLS is the agent's certificate and key, and optionally the CA whose
// client certificates it requires (client_ca_file): then only a caller
// holding such a certificate (the appliance's agent_cert_file) is served
// at all, token or not.
type TLS struct {
	secret.TLS   `yaml:",inline"`
	ClientCAFile string `yaml:"client_ca_file"`
	// ClientCAs is read from ClientCAFile at load.
	ClientCAs *x509.CertPool `yaml:"-"`
}

// ServerConfig says which server the agent controls and how: exactly one
// of Process and Systemd.
type ServerConfig struct {
	// Galera is true unless set to false. A Galera server always starts
	// at a recovered position; others start plainly.
	Galera  *bool          `yaml:"galera"`
	Process *LocalServer   `yaml:"process"`
	Systemd *SystemdServer `yaml:"systemd"`
	// NdbDataNode makes the agent control an NDB data node (ndbmtd)
	// instead of a MariaDB server; it excludes process and systemd.
	NdbDataNode *NdbDataNode `yaml:"ndb_data_node"`
	// NdbMgmd makes the agent control an NDB management server
	// (ndb_mgmd) the same way: node_id, command (run with --nodaemon),
	// pid_file, log or unit; initial_arg and backup_data_dir do not
	// apply. It excludes every other server kind.
	NdbMgmd *NdbDataNode `yaml:"ndb_mgmd"`
	// RecoverTimeout bounds one `mariadbd --wsrep-recover` run: InnoDB
	// crash recovery of a large redo log takes minutes. Default
	// DefaultRecoverTimeout, at most MaxRecoverTimeout (which the
	// appliance's client waits for).
	RecoverTimeout time.Duration `yaml:"recover_timeout"`
}

// Bounds of server.recover_timeout.
const (
	DefaultRecoverTimeout = 10 * time.Minute
	MaxRecoverTimeout     = time.Hour
)

// LocalServer locates the server's files. After Load every path is
// absolute and set, except ErrorLog for a systemd server that logs to the
// journal.
type LocalServer struct {
	DefaultsFile string `yaml:"defaults_file"`
	DataDir      string `yaml:"data_dir"`
	// Dir holds what the agent writes beside the server: recover.log of
	// --wsrep-recover runs and mariadbd.out. It must exist and be writable
	// by the OS user the server runs as.
	Dir      string `yaml:"dir"`
	Socket   string `yaml:"socket"`
	PidFile  string `yaml:"pid_file"`
	ErrorLog string `yaml:"error_log"`
}

// SystemdServer is a server run by a systemd unit.
type SystemdServer struct {
	Unit        string `yaml:"unit"`
	LocalServer `yaml:",inline"`
}

// IsNDB reports whether the agent controls an NDB process: a data node
// or a management server.
func (c *Config) IsNDB() bool { return c.Server.NdbDataNode != nil || c.Server.NdbMgmd != nil }

// ndbProcess is the NDB process the agent controls and its kind
// (KindNdbDataNode or KindNdbMgmd); nil when none.
func (c *Config) ndbProcess() (*NdbDataNode, string) {
	if c.Server.NdbMgmd != nil {
		return c.Server.NdbMgmd, KindNdbMgmd
	}
	return c.Server.NdbDataNode, KindNdbDataNode
}

// Mode is the configured way of controlling the server.
func (c *Config) Mode() Mode {
	if c.Server.Systemd != nil {
		return ModeSystemd
	}
	return ModeProcess
}

// IsGalera reports whether the server runs wsrep.
func (c *Config) IsGalera() bool { return !c.IsNDB() && (c.Server.Galera == nil || *c.Server.Galera) }

// Local returns the server's files, whichever the mode.
func (c *Config) Local() LocalServer {
	if c.Server.Systemd != nil {
		return c.Server.Systemd.LocalServer
	}
	if c.Server.Process != nil {
		return *c.Server.Process
	}
	return LocalServer{}
}

// Load reads and validates agent.yaml. Every problem is reported at once
// as a *yamlfile.Errors naming file, line and field, as the appliance's own
// config does.
func Load(path string) (*Config, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read agent config: %w", err)
	}
	return Parse(path, b)
}

// Parse is Load for bytes already read; path names them in errors and
// anchors relative paths.
func Parse(path string, b []byte) (*Config, error) {
	cfg := &Config{}
	lines, errs := yamlfile.Decode(path, b, cfg)
	if err := errs.Err(); err != nil {
		return nil, err
	}
	cfg.File = path
	cfg.validate(errs, lines)
	if err := errs.Err(); err != nil {
		return nil, err
	}
	return cfg, nil
}

func (c *Config) resolve(p string) string {
	if p == "" || filepath.IsAbs(p) {
		return p
	}
	return filepath.Join(filepath.Dir(c.File), p)
}

func (c *Config) validate(errs *yamlfile.Errors, lines yamlfile.Lines) {
	at := func(path, format string, args ...any) {
		errs.Add(lines.Line(path), path, fmt.Sprintf(format, args...))
	}
	if c.Name == "" {
		c.Name, _ = os.Hostname()
	}
	if c.Listen == "" {
		c.Listen = DefaultListen
	}
	if host, port, err := net.SplitHostPort(c.Listen); err != nil || host == "" {
		at("listen", "bad address %q: want host:port", c.Listen)
	} else if n, err := strconv.Atoi(port); err != nil || n < 0 || n > 65535 {
		// Port 0 (any free port) is for tests; Run reports the port taken.
		at("listen", "port %q is not a number in 0..65535", port)
	} else if !isLoopback(host) && c.TLS == nil && !c.Insecure {
		at("listen", "%q is not a loopback address and tls is not set: the token and every request would cross the network in clear text; set tls: {cert_file, key_file}, or insecure: true to accept that", c.Listen)
	}
	c.validateBackupDirs(at)
	c.StateDir = c.resolve(c.StateDir)
	if c.StateDir == "" {
		c.StateDir = c.resolve(c.Local().Dir)
	}
	if c.StateDir == "" {
		c.StateDir = DefaultStateDir
	}
	if c.TLS != nil {
		for _, f := range []struct {
			field string
			p     *string
		}{{"cert_file", &c.TLS.CertFile}, {"key_file", &c.TLS.KeyFile}} {
			if *f.p == "" {
				at("tls."+f.field, "required when tls is set")
				continue
			}
			*f.p = c.resolve(*f.p)
			if _, err := os.ReadFile(*f.p); err != nil {
				at("tls."+f.field, "cannot read %q: %v", *f.p, yamlfile.UnwrapPathErr(err))
			}
		}
		c.readClientCA(at)
	}
	switch tok, err := os.ReadFile(c.resolve(c.TokenFile)); {
	case c.TokenFile == "":
		at("token_file", "required: the agent never runs unauthenticated")
	case err != nil:
		at("token_file", "cannot read %q: %v", c.TokenFile, yamlfile.UnwrapPathErr(err))
	default:
		v := strings.TrimSpace(string(tok))
		if len(v) < MinTokenLength {
			at("token_file", "token is %d characters; use at least %d", len(v), MinTokenLength)
		}
		c.Token = secret.Secret(v)
	}
	c.TokenFile = c.resolve(c.TokenFile)
	if r := c.Replication; r != nil {
		if r.User == "" || strings.ContainsAny(r.User, "'\\") {
			at("replication.user", "%q: want a user name without quotes or backslashes", r.User)
		}
		switch pw, err := os.ReadFile(c.resolve(r.PasswordFile)); {
		case r.PasswordFile == "":
			at("replication.password_file", "required when replication is set")
		case err != nil:
			at("replication.password_file", "cannot read %q: %v", r.PasswordFile, yamlfile.UnwrapPathErr(err))
		default:
			r.Password = secret.Secret(strings.TrimSpace(string(pw)))
			if strings.ContainsAny(r.Password.Reveal(), "'\\") {
				at("replication.password_file", "the password holds a quote or backslash, which CHANGE MASTER cannot take here")
			}
		}
		r.PasswordFile = c.resolve(r.PasswordFile)
	}

	s := &c.Server
	switch {
	case s.RecoverTimeout == 0:
		s.RecoverTimeout = DefaultRecoverTimeout
	case s.RecoverTimeout < 0 || s.RecoverTimeout > MaxRecoverTimeout:
		at("server.recover_timeout", "%s: want more than 0 and at most %s", s.RecoverTimeout, MaxRecoverTimeout)
	}
	if s.NdbMgmd != nil {
		if s.Process != nil || s.Systemd != nil || s.Galera != nil || s.NdbDataNode != nil {
			at("server", "ndb_mgmd excludes process, systemd, galera and ndb_data_node: an agent controls one server")
			return
		}
		if s.NdbMgmd.BackupDataDir != "" {
			at("server.ndb_mgmd.backup_data_dir", "a management server holds no backup files: only data nodes have a BackupDataDir")
		}
		c.validateNdb(s.NdbMgmd, "server.ndb_mgmd", MaxNdbNodeID, at)
		return
	}
	if s.NdbDataNode != nil {
		if s.Process != nil || s.Systemd != nil || s.Galera != nil {
			at("server", "ndb_data_node excludes process, systemd and galera: an agent controls one server")
			return
		}
		c.validateNdb(s.NdbDataNode, "server.ndb_data_node", MaxNdbDataNodeID, at)
		return
	}
	var local *LocalServer
	var prefix string
	switch {
	case s.Process != nil && s.Systemd != nil:
		at("server", "set either process or systemd, not both")
		return
	case s.Process != nil:
		local, prefix = s.Process, "server.process"
	case s.Systemd != nil:
		local, prefix = &s.Systemd.LocalServer, "server.systemd"
		if s.Systemd.Unit == "" {
			at(prefix+".unit", "required (for example mariadb.service)")
		}
		if local.DefaultsFile == "" {
			local.DefaultsFile = DefaultDefaultsFile
		}
	default:
		at("server", "required: process: {defaults_file, dir}, systemd: {unit, dir} ndb_data_node: {node_id, command, pid_file, log} or ndb_mgmd: {node_id, command, pid_file, log}")
		return
	}
	c.validateLocal(local, prefix, at)
}

// readClientCA reads tls.client_ca_file, when set.
func (c *Config) readClientCA(at func(path, format string, args ...any)) {
	if c.TLS.ClientCAFile == "" {
		return
	}
	c.TLS.ClientCAFile = c.resolve(c.TLS.ClientCAFile)
	pem, err := os.ReadFile(c.TLS.ClientCAFile)
	if err != nil {
		at("tls.client_ca_file", "cannot read %q: %v", c.TLS.ClientCAFile, yamlfile.UnwrapPathErr(err))
		return
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		at("tls.client_ca_file", "%q holds no PEM certificate", c.TLS.ClientCAFile)
		return
	}
	c.TLS.ClientCAs = pool
}

// isLoopback reports whether host names this host only: "localhost" or a
// loopback IP.
func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// validateBackupDirs resolves backup_dirs (relative to agent.yaml) and
// refuses the root: a backup dir is deleted below.
func (c *Config) validateBackupDirs(at func(path, format string, args ...any)) {
	if c.BackupDirs == nil {
		c.BackupDirs = []string{DefaultBackupDir}
	}
	if len(c.BackupDirs) == 0 {
		at("backup_dirs", "empty: name at least one directory, or leave backup_dirs out for [%s]", DefaultBackupDir)
	}
	for i, d := range c.BackupDirs {
		field := fmt.Sprintf("backup_dirs[%d]", i)
		if d == "" {
			at(field, "empty")
			continue
		}
		d = filepath.Clean(c.resolve(d))
		if d == "/" {
			at(field, `"/" is not allowed: name a directory that holds backups only`)
		}
		c.BackupDirs[i] = d
	}
}

func (c *Config) validateLocal(l *LocalServer, prefix string, at func(path, format string, args ...any)) {
	for _, p := range []*string{&l.DefaultsFile, &l.DataDir, &l.Dir, &l.Socket, &l.PidFile, &l.ErrorLog} {
		*p = c.resolve(*p)
	}
	if l.DefaultsFile == "" {
		at(prefix+".defaults_file", "required: every mariadbd the agent runs is given --defaults-file")
		return
	}
	if l.Dir == "" {
		at(prefix+".dir", "required: a directory for recover.log, writable by the server's OS user")
	} else if fi, err := os.Stat(l.Dir); err != nil || !fi.IsDir() {
		at(prefix+".dir", "%q is not a directory", l.Dir)
	}
	opts, err := printDefaults(l.DefaultsFile)
	if err != nil {
		at(prefix+".defaults_file", "%v", err)
		return
	}
	datadir := opts["datadir"]
	if datadir != "" && !filepath.IsAbs(datadir) {
		at(prefix+".defaults_file", "datadir %q in %q is relative; the agent cannot tell what it is relative to", datadir, l.DefaultsFile)
		return
	}
	switch {
	case l.DataDir == "" && datadir == "":
		at(prefix+".data_dir", "not set, and %q sets no datadir", l.DefaultsFile)
		return
	case l.DataDir == "":
		l.DataDir = datadir
	case datadir != "" && filepath.Clean(datadir) != filepath.Clean(l.DataDir):
		at(prefix+".data_dir", "%q, but the server's defaults file %q says datadir=%s", l.DataDir, l.DefaultsFile, datadir)
		return
	}
	host, _ := os.Hostname()
	// mariadbd resolves a relative pid-file or log-error against the
	// datadir and names them after the host when they are not set.
	inDataDir := func(p, dflt string) string {
		switch {
		case p == "":
			return filepath.Join(l.DataDir, dflt)
		case filepath.IsAbs(p):
			return p
		}
		return filepath.Join(l.DataDir, p)
	}
	if l.Socket == "" {
		l.Socket = opts["socket"]
	}
	if l.Socket == "" {
		at(prefix+".socket", "not set, and %q sets no socket", l.DefaultsFile)
	}
	if l.PidFile == "" {
		l.PidFile = inDataDir(opts["pid_file"], host+".pid")
	}
	if l.ErrorLog == "" {
		if v, ok := opts["log_error"]; ok {
			l.ErrorLog = inDataDir(v, host+".err")
		} else if prefix == "server.process" {
			// Without log-error the server logs to stderr, which a
			// detached start sends to DIR/mariadbd.out.
			l.ErrorLog = filepath.Join(l.Dir, "mariadbd.out")
		}
	}
}

// printDefaults runs my_print_defaults, which reads the option file
// exactly as mariadbd does (groups, !include, !includedir), and returns the
// last value of each option with '-' in names turned into '_'.
func printDefaults(defaultsFile string) (map[string]string, error) {
	if _, err := os.Stat(defaultsFile); err != nil {
		return nil, fmt.Errorf("cannot read %q: %v", defaultsFile, yamlfile.UnwrapPathErr(err))
	}
	bin, err := exec.LookPath("my_print_defaults")
	if err != nil {
		return nil, fmt.Errorf("read server options of %q: my_print_defaults not found (install mariadb-client-core): %v", defaultsFile, err)
	}
	out, err := exec.Command(bin, "--defaults-file="+defaultsFile, "--mysqld").Output()
	if err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			err = fmt.Errorf("%w: %s", err, bytes.TrimSpace(ee.Stderr))
		}
		return nil, fmt.Errorf("read server options of %q: %v", defaultsFile, err)
	}
	return parseOptions(out), nil
}

// parseOptions reads my_print_defaults output: one --name[=value] a line.
func parseOptions(out []byte) map[string]string {
	opts := map[string]string{}
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		line, ok := strings.CutPrefix(strings.TrimSpace(sc.Text()), "--")
		if !ok {
			continue
		}
		name, value, _ := strings.Cut(line, "=")
		opts[strings.ReplaceAll(name, "-", "_")] = value
	}
	return opts
}
