// Package haproxy writes HAProxy 2.6 configurations that put one writer
// and a pool of readers in front of a Galera or replication cluster,
// checked by the nines agents' health endpoints (GET /v1/health/writer and
// /v1/health/reader, package agent), and talks to a running HAProxy over
// its runtime API (Runtime, runtime.go). Standard library only.
//
// The generated configuration has two TCP listeners:
//
//   - writer, Galera: the first server active, every other one `backup`.
//     HAProxy sends every connection to the one active server while its
//     check passes, and to the first backup whose check passes when it
//     fails, so every write goes to one node. When the first server comes
//     back, `on-marked-up shutdown-backup-sessions` closes the sessions
//     still on the backup, so writers never stay on two nodes.
//   - writer, replication (Config.Replication): every server active, no
//     backups: only the primary passes the writer check (read_only OFF,
//     replicating from nobody), so one server is UP at a time. With no
//     primary (dead, or fenced read_only) the pool is empty and writes are
//     refused rather than sent to a replica.
//   - reader: every server, roundrobin (for replication only healthy
//     replicas pass the reader check).
//
// Checks run every 500 ms (`default-server inter 500ms fall 2 rise 2`):
// two failed checks, about a second, take a server out, and
// `on-marked-down shutdown-sessions` closes its clients' sessions at once
// so they reconnect to the next one instead of hanging. The checks are
// httpchk against each node's agent with `Authorization: Bearer TOKEN`:
// the file holds the agents' token and must be kept 0600.
//
// `stats socket PATH mode 600 level admin` opens the runtime API
// (`set server BACKEND/SERVER state ready|drain|maint`, `show servers
// state`), for an operator today and for the remediator's writer moves
// later.
package haproxy

import (
	"errors"
	"fmt"
	"net"
	"regexp"
	"strconv"
	"strings"
)

// Health check paths on the agents.
const (
	WriterCheckPath = "/v1/health/writer"
	ReaderCheckPath = "/v1/health/reader"
)

// Timing of the checks, in the generated default-server line.
const (
	CheckInter = "500ms"
	CheckFall  = 2
	CheckRise  = 2
	// CheckTimeout is `timeout check`: the agent answers within 800 ms
	// even when the server hangs, so its 503 and reason arrive first.
	CheckTimeout = "1s"
)

// ServerName is the HAProxy server name of a cluster's i-th node (from
// 0) in configuration order: n1, n2 ... The generated configurations and
// the remediator's writer moves both name servers by it.
func ServerName(i int) string { return "n" + strconv.Itoa(i+1) }

// Server is one database node behind HAProxy.
type Server struct {
	// Name is the server's name in HAProxy (n1, db1).
	Name string
	// Address is the node's SQL endpoint, host:port.
	Address string
	// AgentHost and AgentPort are where the node's agent listens.
	AgentHost string
	AgentPort int
	// AgentTLS checks the agent over https.
	AgentTLS bool
}

// Config describes the configuration to write.
type Config struct {
	// Cluster names the listeners (CLUSTER-writer, CLUSTER-reader).
	Cluster string
	// Servers in order: the first is the writer, the others its backups
	// in this order.
	Servers []Server
	// WriterBind and ReaderBind are the listeners' addresses: host:port,
	// or :port for every address.
	WriterBind string
	ReaderBind string
	// Token is the agents' bearer token.
	Token string
	// CAFile verifies https agents' certificates; empty means the
	// system's roots (@system-ca).
	CAFile string
	// StatsSocket is the runtime API's unix socket.
	StatsSocket string
	// Log is the global log line's target and facility; empty is
	// "/dev/log local0" (the sandbox logs to stdout).
	Log string
	// Replication lists every server in the writer listener as active
	// (no `backup`): the writer check lets only the primary through.
	// False is the Galera layout, one active server and backups.
	Replication bool
}

var (
	nameRE  = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$`)
	tokenRE = regexp.MustCompile(`^[A-Za-z0-9._~+/=-]+$`) // RFC 6750 b64token
	pathRE  = regexp.MustCompile(`^/[A-Za-z0-9_./+@=:-]*$`)
	hostRE  = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9.-]*$|^[0-9a-fA-F:.]+$`)
)

// Render returns the configuration text. Every value spliced into it is
// checked first, so nothing can add a line or an option of its own.
func Render(c Config) ([]byte, error) {
	if err := c.check(); err != nil {
		return nil, err
	}
	log := c.Log
	if log == "" {
		log = "/dev/log local0"
	}
	var b strings.Builder
	w := func(format string, args ...any) { fmt.Fprintf(&b, format+"\n", args...) }
	if c.Replication {
		w("# HAProxy 2.6 configuration for replication cluster %s, written by `nines haproxy config`.", c.Cluster)
		w("# It holds the nines agents' bearer token: keep it mode 0600.")
		w("#")
		w("# %s-writer sends every connection to the primary: the one server whose", c.Cluster)
		w("# writer check passes (read_only OFF, replicating from nobody). %s-reader", c.Cluster)
		w("# spreads connections over the replicas within their lag limit. A node")
		w("# leaves the pools after two failed checks, about a second, and its")
		w("# sessions are closed then.")
	} else {
		w("# HAProxy 2.6 configuration for Galera cluster %s, written by `nines haproxy config`.", c.Cluster)
		w("# It holds the nines agents' bearer token: keep it mode 0600.")
		w("#")
		w("# %s-writer sends every connection to one node: the first server whose", c.Cluster)
		w("# check passes (the others are backups). %s-reader spreads connections", c.Cluster)
		w("# over every healthy node. A node leaves the pools after two failed")
		w("# checks, about a second, and its sessions are closed then.")
	}
	w("global")
	w("    log %s", log)
	w("    stats socket %s mode 600 level admin", c.StatsSocket)
	w("    stats timeout 30s")
	w("")
	w("defaults")
	w("    mode tcp")
	w("    log global")
	w("    option tcplog")
	w("    option dontlognull")
	w("    timeout connect 1s")
	w("    # MariaDB's own wait_timeout: idle application connections are the server's to close.")
	w("    timeout client 8h")
	w("    timeout server 8h")
	w("    timeout check %s", CheckTimeout)
	w("    default-server inter %s fall %d rise %d on-marked-down shutdown-sessions", CheckInter, CheckFall, CheckRise)
	for _, l := range []struct {
		role, bind, path string
		writer           bool
	}{
		{"writer", c.WriterBind, WriterCheckPath, true},
		{"reader", c.ReaderBind, ReaderCheckPath, false},
	} {
		w("")
		w("listen %s-%s", c.Cluster, l.role)
		w("    bind %s", l.bind)
		switch {
		case l.writer && c.Replication:
			w("    # One writer: the primary, the only server whose writer check passes.")
		case l.writer:
			w("    # One writer: the first server; the others only when it is down.")
			w("    default-server inter %s fall %d rise %d on-marked-down shutdown-sessions on-marked-up shutdown-backup-sessions",
				CheckInter, CheckFall, CheckRise)
		default:
			w("    balance roundrobin")
		}
		w("    option httpchk")
		w(`    http-check send meth GET uri %s hdr Authorization "Bearer %s"`, l.path, c.Token)
		w("    http-check expect status 200")
		for i, s := range c.Servers {
			line := fmt.Sprintf("    server %s %s check%s", s.Name, s.Address, c.checkOptions(s))
			if l.writer && i > 0 && !c.Replication {
				line += " backup"
			}
			w("%s", line)
		}
	}
	return []byte(b.String()), nil
}

// checkOptions is where a server's check goes: its agent's address and
// port, over TLS when the agent speaks https.
func (c Config) checkOptions(s Server) string {
	var b strings.Builder
	host, _, _ := net.SplitHostPort(s.Address)
	if s.AgentHost != host {
		fmt.Fprintf(&b, " addr %s", s.AgentHost)
	}
	fmt.Fprintf(&b, " port %d", s.AgentPort)
	if s.AgentTLS {
		ca := c.CAFile
		if ca == "" {
			ca = "@system-ca"
		}
		b.WriteString(" check-ssl")
		if net.ParseIP(s.AgentHost) == nil {
			fmt.Fprintf(&b, " check-sni %s verifyhost %s", s.AgentHost, s.AgentHost)
		}
		fmt.Fprintf(&b, " verify required ca-file %s", ca)
	}
	return b.String()
}

func (c Config) check() error {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	if !nameRE.MatchString(c.Cluster) {
		bad("cluster name %q: use letters, digits, '_', '.', ':' and '-'", c.Cluster)
	}
	if len(c.Servers) == 0 {
		bad("no servers")
	}
	seen := map[string]bool{}
	for i, s := range c.Servers {
		if !nameRE.MatchString(s.Name) || seen[s.Name] {
			bad("server %d: name %q: want a unique name of letters, digits, '_', '.', ':' and '-'", i+1, s.Name)
		}
		seen[s.Name] = true
		if err := checkHostPort(s.Address, false); err != nil {
			bad("server %s: address: %v", s.Name, err)
		}
		if !hostRE.MatchString(s.AgentHost) {
			bad("server %s: agent host %q is not a host name or address", s.Name, s.AgentHost)
		}
		if s.AgentPort < 1 || s.AgentPort > 65535 {
			bad("server %s: agent port %d is not a TCP port", s.Name, s.AgentPort)
		}
	}
	if err := checkHostPort(c.WriterBind, true); err != nil {
		bad("writer bind: %v", err)
	}
	if err := checkHostPort(c.ReaderBind, true); err != nil {
		bad("reader bind: %v", err)
	}
	if c.WriterBind == c.ReaderBind {
		bad("writer and reader bind to the same address %q", c.WriterBind)
	}
	if !tokenRE.MatchString(c.Token) {
		bad("agent token: empty, or characters beyond letters, digits and -._~+/= (not allowed in a bearer token)")
	}
	if c.CAFile != "" && !pathRE.MatchString(c.CAFile) {
		bad("CA file %q: want an absolute path without spaces or quotes", c.CAFile)
	}
	if !pathRE.MatchString(c.StatsSocket) {
		bad("stats socket %q: want an absolute path without spaces or quotes", c.StatsSocket)
	}
	if strings.ContainsAny(c.Log, "\n\r#\"'\\") {
		bad("log target %q: one line without quotes", c.Log)
	}
	if len(errs) > 0 {
		return fmt.Errorf("haproxy config: %w", errors.Join(errs...))
	}
	return nil
}

func checkHostPort(hp string, bind bool) error {
	host, port, err := net.SplitHostPort(hp)
	if err != nil {
		return err
	}
	if host == "" && !bind || host != "" && !hostRE.MatchString(host) {
		return fmt.Errorf("%q: host %q is not a host name or address", hp, host)
	}
	if p, err := strconv.Atoi(port); err != nil || p < 1 || p > 65535 {
		return fmt.Errorf("%q: port %q is not a TCP port", hp, port)
	}
	return nil
}
