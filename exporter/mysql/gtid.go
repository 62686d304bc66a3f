package mysql

import (
	"fmt"
	"sort"
	"strconv"
	"strings"
)

// GTIDPos is a MariaDB GTID position (@@gtid_binlog_pos): the last
// sequence number seen per replication domain and originating server.
type GTIDPos map[GTIDKey]uint64

// GTIDKey is a (domain, server) pair of a MariaDB GTID.
type GTIDKey struct {
	Domain, Server uint32
}

// ParseGTIDPos parses "0-1-100,1-2-7". Whitespace is ignored; an empty
// string is an empty position.
func ParseGTIDPos(s string) (GTIDPos, error) {
	pos := GTIDPos{}
	for _, part := range strings.Split(s, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		f := strings.Split(part, "-")
		if len(f) != 3 {
			return nil, fmt.Errorf("gtid %q: want domain-server-sequence", part)
		}
		d, err1 := strconv.ParseUint(f[0], 10, 32)
		srv, err2 := strconv.ParseUint(f[1], 10, 32)
		seq, err3 := strconv.ParseUint(f[2], 10, 64)
		if err1 != nil || err2 != nil || err3 != nil {
			return nil, fmt.Errorf("gtid %q: not three unsigned numbers", part)
		}
		k := GTIDKey{uint32(d), uint32(srv)}
		if seq > pos[k] {
			pos[k] = seq
		}
	}
	return pos, nil
}

// Errant returns the replica's GTIDs (as "domain-server-seq" of the last
// one) that the primary does not have, for servers other than the primary
// itself. The primary's own transactions are left out on purpose: the two
// positions are read at slightly different times, and a replica is
// legitimately ahead of a stale reading of its source, never of another
// server's history.
func Errant(primary, replica GTIDPos, primaryServerID uint32) []string {
	var out []string
	for k, seq := range replica {
		if k.Server == primaryServerID {
			continue
		}
		if seq > primary[k] {
			out = append(out, fmt.Sprintf("%d-%d-%d", k.Domain, k.Server, seq))
		}
	}
	sort.Strings(out)
	return out
}
