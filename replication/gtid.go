// Package replication holds what nines knows about MariaDB GTID
// replication, as pure functions: GTID states and their comparison, who
// the primary is, whether it is dead, which replica to promote and
// whether an old primary may rejoin. The runbooks in remediator/replication
// act on these decisions; the agent and the appliance only carry the
// observations.
package replication

import (
	"fmt"
	"sort"
	"strconv"
	"strings"
)

// Stream is one (domain, server_id) sequence of MariaDB GTIDs. Within a
// domain, sequence numbers grow across servers; a server's own stream
// holds the transactions it wrote as a primary (or errantly as a
// replica).
type Stream struct {
	Domain uint32 `json:"domain"`
	Server uint32 `json:"server"`
}

// State is the last sequence number per stream: MariaDB's
// @@gtid_binlog_state (every stream the binary log holds), or a position
// such as @@gtid_slave_pos or Gtid_IO_Pos (the last GTID per domain).
type State map[Stream]uint64

// ParseState reads "0-1-100,0-2-104,1-3-7". Whitespace and newlines (SHOW
// SLAVE STATUS wraps long positions) are ignored; an empty string is an
// empty state. Errors name the part that is wrong.
func ParseState(s string) (State, error) {
	st := State{}
	for _, part := range strings.Split(s, ",") {
		part = strings.Join(strings.Fields(part), "")
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
		k := Stream{uint32(d), uint32(srv)}
		st[k] = max(st[k], seq)
	}
	return st, nil
}

// String writes the state sorted by domain and server, as MariaDB does.
func (s State) String() string {
	keys := s.Streams()
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = fmt.Sprintf("%d-%d-%d", k.Domain, k.Server, s[k])
	}
	return strings.Join(parts, ",")
}

// Streams are the state's streams by domain, then server.
func (s State) Streams() []Stream {
	keys := make([]Stream, 0, len(s))
	for k := range s {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool {
		if keys[i].Domain != keys[j].Domain {
			return keys[i].Domain < keys[j].Domain
		}
		return keys[i].Server < keys[j].Server
	})
	return keys
}

// Merge returns the union of s and o, the larger sequence per stream.
func (s State) Merge(o State) State {
	out := make(State, len(s)+len(o))
	for k, v := range s {
		out[k] = v
	}
	for k, v := range o {
		out[k] = max(out[k], v)
	}
	return out
}

// Lacking lists, per stream, the transactions s holds that o does not, as
// "domain-server-first..domain-server-last" (or one GTID): what a server
// at o would lose of s. Empty when o covers s.
func (s State) Lacking(o State) []string {
	var out []string
	for _, k := range s.Streams() {
		have, want := o[k], s[k]
		if want <= have {
			continue
		}
		if want == have+1 {
			out = append(out, fmt.Sprintf("%d-%d-%d", k.Domain, k.Server, want))
			continue
		}
		out = append(out, fmt.Sprintf("%d-%d-%d..%d-%d-%d", k.Domain, k.Server, have+1, k.Domain, k.Server, want))
	}
	return out
}

// Errant lists the last GTID of each stream s (a replica's position)
// holds past primary, its primary's, leaving out the primary's own
// stream on purpose: the two are read at slightly different times, and a
// replica is legitimately ahead of a stale reading of its source, never
// of another server's history. What remains was written on the replica,
// or is an old primary's history the primary never had.
func (s State) Errant(primary State, primaryServerID uint32) []string {
	var out []string
	for _, k := range s.Streams() {
		if k.Server != primaryServerID && s[k] > primary[k] {
			out = append(out, fmt.Sprintf("%d-%d-%d", k.Domain, k.Server, s[k]))
		}
	}
	return out
}

// Covers reports whether s holds every transaction of o.
func (s State) Covers(o State) bool { return len(o.Lacking(s)) == 0 }

// Count is how many transactions the ranges of Lacking hold.
func (s State) Count(o State) uint64 {
	var n uint64
	for k, want := range s {
		if have := o[k]; want > have {
			n += want - have
		}
	}
	return n
}

// Domains is the highest sequence number per domain. With
// gtid_strict_mode, sequence numbers within a domain only grow, whichever
// server wrote them: comparing replicas of one primary by domain is
// comparing how far each got.
func (s State) Domains() map[uint32]uint64 {
	out := map[uint32]uint64{}
	for k, v := range s {
		out[k.Domain] = max(out[k.Domain], v)
	}
	return out
}

// Ahead compares two states by domain: 1 when s is at or past o in every
// domain and past it in one, -1 the other way round, 0 when equal, and
// ok false when each is past the other somewhere (two histories).
func (s State) Ahead(o State) (cmp int, ok bool) {
	a, b := s.Domains(), o.Domains()
	past, behind := false, false
	for d, v := range a {
		if v > b[d] {
			past = true
		}
	}
	for d, v := range b {
		if v > a[d] {
			behind = true
		}
	}
	switch {
	case past && behind:
		return 0, false
	case past:
		return 1, true
	case behind:
		return -1, true
	}
	return 0, true
}
