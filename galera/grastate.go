package galera

import (
	"bytes"
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// Grastate is the content of a node's grastate.dat, the provider's record
// of the last position it saved.
//
// While a server runs, and after it crashed, Seqno is -1 even though UUID
// holds the real history: the committed seqno then has to come from
// `--wsrep-recover`. Only a graceful shutdown writes the real seqno.
type Grastate struct {
	Version string `json:"version,omitempty"`
	UUID    string `json:"uuid"`
	Seqno   int64  `json:"seqno"`
	// SafeToBootstrap is set by Galera on the last node to leave a
	// Primary component gracefully. Galera refuses --wsrep-new-cluster on a
	// node without it.
	SafeToBootstrap bool `json:"safe_to_bootstrap"`
}

// Position is the saved position as a Position.
func (g Grastate) Position() Position { return Position{UUID: g.UUID, Seqno: g.Seqno} }

// ErrBadGrastate is wrapped by every grastate.dat syntax error.
var ErrBadGrastate = errors.New("malformed grastate.dat")

// ParseGrastate parses grastate.dat. Unknown keys are ignored, as Galera
// ignores them, so a newer file version still parses; uuid and seqno are
// required because no decision can be made without them.
func ParseGrastate(b []byte) (Grastate, error) {
	var g Grastate
	seen := map[string]bool{}
	for n, line := range strings.Split(string(b), "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		key, val, ok := strings.Cut(line, ":")
		if !ok {
			return Grastate{}, fmt.Errorf("%w: line %d %q is not \"key: value\"", ErrBadGrastate, n+1, line)
		}
		key, val = strings.TrimSpace(key), strings.TrimSpace(val)
		if seen[key] {
			return Grastate{}, fmt.Errorf("%w: line %d repeats key %q", ErrBadGrastate, n+1, key)
		}
		seen[key] = true
		var err error
		switch key {
		case "version":
			g.Version = val
		case "uuid":
			g.UUID, err = parseUUID(val)
		case "seqno":
			g.Seqno, err = parseSeqno(val)
		case "safe_to_bootstrap":
			switch val {
			case "0":
				g.SafeToBootstrap = false
			case "1":
				g.SafeToBootstrap = true
			default:
				err = fmt.Errorf("safe_to_bootstrap %q is neither 0 nor 1", val)
			}
		}
		if err != nil {
			return Grastate{}, fmt.Errorf("%w: line %d: %w", ErrBadGrastate, n+1, err)
		}
	}
	for _, k := range []string{"uuid", "seqno"} {
		if !seen[k] {
			return Grastate{}, fmt.Errorf("%w: no %q line", ErrBadGrastate, k)
		}
	}
	return g, nil
}

// BootstrapGrastate returns grastate.dat content that lets the node
// bootstrap at pos: safe_to_bootstrap set AND seqno set to the recovered
// seqno. Setting only safe_to_bootstrap while seqno is -1 makes Galera start
// a new history with a new cluster UUID, and every joiner then needs a full
// state transfer.
//
// cur is the current file (empty if there is none). It is refused when it
// belongs to another history than pos, because that node's data is not the
// data pos describes. Lines the function does not manage are kept.
func BootstrapGrastate(cur []byte, pos Position) ([]byte, error) {
	if !pos.Known() {
		return nil, fmt.Errorf("bootstrap at %q: %w", pos.String(), ErrUnknownPosition)
	}
	if len(bytes.TrimSpace(cur)) == 0 {
		cur = []byte("# GALERA saved state\nversion: 2.1\n")
	} else {
		g, err := ParseGrastate(cur)
		if err != nil {
			return nil, err
		}
		if g.UUID != UndefinedUUID && g.UUID != pos.UUID {
			return nil, fmt.Errorf("bootstrap at %q: grastate.dat holds cluster %q: %w", pos.String(), g.UUID, ErrUUIDMismatch)
		}
	}
	want := []struct{ key, val string }{
		{"uuid", "uuid:    " + pos.UUID},
		{"seqno", "seqno:   " + strconv.FormatInt(pos.Seqno, 10)},
		{"safe_to_bootstrap", "safe_to_bootstrap: 1"},
	}
	lines := strings.Split(strings.TrimRight(string(cur), "\n"), "\n")
	done := map[string]bool{}
	for i, line := range lines {
		key, _, ok := strings.Cut(strings.TrimSpace(line), ":")
		if !ok || strings.HasPrefix(key, "#") {
			continue
		}
		for _, w := range want {
			if strings.TrimSpace(key) == w.key {
				lines[i] = w.val
				done[w.key] = true
			}
		}
	}
	for _, w := range want {
		if !done[w.key] {
			lines = append(lines, w.val)
		}
	}
	return []byte(strings.Join(lines, "\n") + "\n"), nil
}

// ClearBootstrapGrastate returns cur with safe_to_bootstrap set to 0, the
// rest kept: the undo of BootstrapGrastate's flag after a failed start.
func ClearBootstrapGrastate(cur []byte) ([]byte, error) {
	if _, err := ParseGrastate(cur); err != nil {
		return nil, err
	}
	lines := strings.Split(strings.TrimRight(string(cur), "\n"), "\n")
	found := false
	for i, line := range lines {
		key, _, ok := strings.Cut(strings.TrimSpace(line), ":")
		if ok && strings.TrimSpace(key) == "safe_to_bootstrap" {
			lines[i] = "safe_to_bootstrap: 0"
			found = true
		}
	}
	if !found {
		lines = append(lines, "safe_to_bootstrap: 0")
	}
	return []byte(strings.Join(lines, "\n") + "\n"), nil
}
