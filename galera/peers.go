package galera

import (
	"bufio"
	"bytes"
	"fmt"
	"net"
	"strings"
)

// DefaultGcommPort is Galera's group communication port when an address
// names none.
const DefaultGcommPort = "4567"

// ClusterAddressOf returns wsrep_cluster_address as an option file (my.cnf)
// sets it in a server section; "" when it sets none. Later settings win,
// as they do for the server. !include directives are not followed.
func ClusterAddressOf(cnf []byte) string {
	section, addr := "", ""
	sc := bufio.NewScanner(bytes.NewReader(cnf))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		switch {
		case line == "" || line[0] == '#' || line[0] == ';':
		case line[0] == '[':
			section = strings.Trim(line, "[] ")
		case serverSection(section):
			key, val, ok := strings.Cut(line, "=")
			if ok && strings.ReplaceAll(strings.TrimSpace(key), "-", "_") == "wsrep_cluster_address" {
				addr = strings.Trim(strings.TrimSpace(val), `"'`)
			}
		}
	}
	return addr
}

func serverSection(s string) bool {
	switch s {
	case "mysqld", "server", "mariadb", "mariadbd", "galera":
		return true
	}
	return false
}

// ParseClusterAddress returns the host:port peers of a gcomm:// address
// ("gcomm://db1,db2:4577?pc.wait_prim=no"), the default port added where
// none is named. "gcomm://" (a bootstrap address) has no peers.
func ParseClusterAddress(s string) ([]string, error) {
	rest, ok := strings.CutPrefix(strings.TrimSpace(s), "gcomm://")
	if !ok {
		return nil, fmt.Errorf("cluster address %q does not start with gcomm://", s)
	}
	rest, _, _ = strings.Cut(rest, "?")
	var peers []string
	for _, p := range strings.Split(rest, ",") {
		p = strings.TrimSpace(p)
		if p == "" {
			continue
		}
		if _, _, err := net.SplitHostPort(p); err != nil {
			p = net.JoinHostPort(strings.Trim(p, "[]"), DefaultGcommPort)
		}
		peers = append(peers, p)
	}
	return peers, nil
}
