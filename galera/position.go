// Package galera is nines' Galera knowledge, the one place it lives: the
// wsrep status parser that turns SHOW GLOBAL STATUS into the typed
// nines.GaleraStatus (Synced means Primary, local state 4 and
// wsrep_ready=ON), positions, grastate.dat, gvwstate.dat, the output of
// `mariadbd --wsrep-recover`, and which node may bootstrap a new Primary
// component.
//
// It does no I/O and imports only the standard library and the module
// root's vocabulary, so the exporter, the host agent, the remediator and
// the sandbox share one implementation that is tested (and fuzzed)
// without a server. Positions are always compared together with their
// cluster state UUID: a seqno means nothing outside its history.
package galera

import (
	"bytes"
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// UndefinedUUID is the state UUID of a node that has no history: a fresh
// datadir, or a failed start that reset grastate.dat.
const UndefinedUUID = "00000000-0000-0000-0000-000000000000"

// UndefinedSeqno is the seqno of an unknown position. grastate.dat holds it
// while the server runs and after a crash.
const UndefinedSeqno int64 = -1

// Position is a point in a Galera cluster's history.
type Position struct {
	UUID  string `json:"uuid"`
	Seqno int64  `json:"seqno"`
	// GTID is the MariaDB GTID some versions print after the position
	// ("uuid:seqno,0-1-5"). It is kept so String round-trips and
	// --wsrep-start-position gets exactly what the server printed.
	GTID string `json:"gtid,omitempty"`
}

// Undefined reports whether p carries no history at all.
func (p Position) Undefined() bool {
	return p.UUID == UndefinedUUID && p.Seqno == UndefinedSeqno
}

// Known reports whether p names a committed seqno of a real history, the
// only kind of position a bootstrap node may be chosen by.
func (p Position) Known() bool {
	return p.UUID != UndefinedUUID && p.Seqno >= 0
}

// String formats p as --wsrep-start-position expects it.
func (p Position) String() string {
	s := p.UUID + ":" + strconv.FormatInt(p.Seqno, 10)
	if p.GTID != "" {
		s += "," + p.GTID
	}
	return s
}

// ErrNoRecoveredPosition means the log holds no "Recovered position" line:
// the recovery run failed, or the server runs without wsrep.
var ErrNoRecoveredPosition = errors.New("no recovered position in log")

const recoveredMarker = "WSREP: Recovered position:"

// ParseRecoveredPosition finds the last "WSREP: Recovered position:
// uuid:seqno" line in the output of `mariadbd --wsrep-recover`. The last one
// wins because the server appends to an existing log file.
func ParseRecoveredPosition(log []byte) (Position, error) {
	i := bytes.LastIndex(log, []byte(recoveredMarker))
	if i < 0 {
		return Position{}, ErrNoRecoveredPosition
	}
	rest := log[i+len(recoveredMarker):]
	if j := bytes.IndexAny(rest, "\r\n"); j >= 0 {
		rest = rest[:j]
	}
	p, err := ParsePosition(strings.TrimSpace(string(rest)))
	if err != nil {
		return Position{}, fmt.Errorf("parse recovered position: %w", err)
	}
	return p, nil
}

// ErrBadPosition is wrapped by every position and grastate syntax error.
var ErrBadPosition = errors.New("malformed position")

// ParsePosition parses "uuid:seqno" with an optional ",gtid" suffix.
func ParsePosition(s string) (Position, error) {
	body, gtid, hasGTID := strings.Cut(s, ",")
	colon := strings.LastIndexByte(body, ':')
	if colon < 0 {
		return Position{}, fmt.Errorf("%w: %q has no ':' between uuid and seqno", ErrBadPosition, s)
	}
	uuid, err := parseUUID(body[:colon])
	if err != nil {
		return Position{}, fmt.Errorf("%w: %q: %w", ErrBadPosition, s, err)
	}
	seqno, err := parseSeqno(body[colon+1:])
	if err != nil {
		return Position{}, fmt.Errorf("%w: %q: %w", ErrBadPosition, s, err)
	}
	if hasGTID {
		if err := checkGTID(gtid); err != nil {
			return Position{}, fmt.Errorf("%w: %q: %w", ErrBadPosition, s, err)
		}
	}
	return Position{UUID: uuid, Seqno: seqno, GTID: gtid}, nil
}

// parseUUID accepts the 8-4-4-4-12 hex form Galera writes and returns it in
// lower case, so two spellings of one UUID compare equal.
func parseUUID(s string) (string, error) {
	if len(s) != 36 {
		return "", fmt.Errorf("uuid %q is not 36 characters", s)
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch i {
		case 8, 13, 18, 23:
			if c != '-' {
				return "", fmt.Errorf("uuid %q lacks '-' at offset %d", s, i)
			}
		default:
			if !isHex(c) {
				return "", fmt.Errorf("uuid %q has a non-hex character at offset %d", s, i)
			}
		}
	}
	return strings.ToLower(s), nil
}

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

// parseSeqno accepts -1 (unknown) and any non-negative int64; Galera never
// writes another negative value, so one is taken as corruption.
func parseSeqno(s string) (int64, error) {
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("seqno %q is not an integer", s)
	}
	if n < UndefinedSeqno {
		return 0, fmt.Errorf("seqno %q is below -1", s)
	}
	return n, nil
}

// checkGTID accepts a MariaDB GTID list: domain-server-seqno triples
// separated by commas.
func checkGTID(s string) error {
	for _, g := range strings.Split(s, ",") {
		parts := strings.Split(g, "-")
		if len(parts) != 3 {
			return fmt.Errorf("gtid %q is not domain-server-seqno", g)
		}
		for _, p := range parts {
			if _, err := strconv.ParseUint(p, 10, 64); err != nil {
				return fmt.Errorf("gtid %q is not domain-server-seqno", g)
			}
		}
	}
	return nil
}
