package sandbox

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"strconv"
	"strings"
	"time"
)

// The link is the simulator's own line protocol on P+1, not NDB's: it
// stands in for the data nodes' transporters and heartbeats, and carries
// the sandbox's control requests to mgmd.
//
// A data node sends "hello <node id> <pid>", then "hb" every 100 ms and
// "bye" when it stops gracefully. mgmd answers "welcome" or
// "refuse <text>", then sends "status <STATUS> <phase>" as the model
// walks it and "shutdown <text>" when the node must exit (declared dead,
// GCP stop). A control client sends one "ctl <verb> [args]" line and
// reads one reply, "ok <json>" or "err <text>".

// ndbCtlNode is one node in a ctl status reply.
type ndbCtlNode struct {
	ID     int    `json:"id"`
	Type   string `json:"type"` // NDB, MGM, API
	Status string `json:"status"`
	Phase  int    `json:"phase"`
	Group  int    `json:"group"`
}

// ndbCtlStatus is mgmd's answer to "ctl status".
type ndbCtlStatus struct {
	Nodes []ndbCtlNode `json:"nodes"`
	// MgmUp: the mgm protocol listener serves (false after mgmd-down).
	MgmUp bool `json:"mgm_up"`
	// SQLReady: by API node id, ndbinfo installed and synced last tick.
	SQLReady map[string]bool `json:"sql_ready"`
}

func (st ndbCtlStatus) status(id int) string {
	for _, n := range st.Nodes {
		if n.ID == id {
			return n.Status
		}
	}
	return ""
}

// ctl sends one control request to mgmd and returns its JSON payload.
func (s *Sandbox) ctl(ctx context.Context, req string) (string, error) {
	addr := fmt.Sprintf("127.0.0.1:%d", s.ndb().LinkPort)
	d := net.Dialer{Timeout: 2 * time.Second}
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return "", fmt.Errorf("reach mgmd on %s: %w", addr, err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := fmt.Fprintf(conn, "ctl %s\n", req); err != nil {
		return "", fmt.Errorf("mgmd %s: %w", req, err)
	}
	line, err := bufio.NewReader(conn).ReadString('\n')
	if err != nil {
		return "", fmt.Errorf("mgmd %s: %w", req, err)
	}
	verb, rest, _ := strings.Cut(strings.TrimRight(line, "\n"), " ")
	if verb != "ok" {
		return "", fmt.Errorf("mgmd %s: %s", req, rest)
	}
	return rest, nil
}

func (s *Sandbox) ctlStatus(ctx context.Context) (ndbCtlStatus, error) {
	var st ndbCtlStatus
	b, err := s.ctl(ctx, "status")
	if err != nil {
		return st, err
	}
	if err := json.Unmarshal([]byte(b), &st); err != nil {
		return st, fmt.Errorf("mgmd status: %w", err)
	}
	return st, nil
}

// parseHello reads a data node's "hello <id> <pid>".
func parseHello(line string) (id, pid int, err error) {
	f := strings.Fields(line)
	if len(f) != 3 || f[0] != "hello" {
		return 0, 0, fmt.Errorf("want \"hello <node id> <pid>\", got %q", line)
	}
	if id, err = strconv.Atoi(f[1]); err != nil || id <= 0 {
		return 0, 0, fmt.Errorf("hello: node id %q is not a positive number", f[1])
	}
	if pid, err = strconv.Atoi(f[2]); err != nil || pid <= 0 {
		return 0, 0, fmt.Errorf("hello: pid %q is not a positive number", f[2])
	}
	return id, pid, nil
}
