package galera

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// Gvwstate is the content of a node's gvwstate.dat: the last Primary
// component view the node saw, which Galera saves while pc.recovery is on
// (the default) and a node is in a Primary component. After every node
// crashed at once, the nodes whose files name the same view can form that
// component again by themselves; a node without the file (it left
// gracefully, or was never Primary) cannot.
type Gvwstate struct {
	// MyUUID is the node's own member UUID in the view (not the cluster
	// state UUID of grastate.dat).
	MyUUID string `json:"my_uuid"`
	View   ViewID `json:"view"`
	// Bootstrap is set when the view was formed by bootstrap.
	Bootstrap bool     `json:"bootstrap,omitempty"`
	Members   []Member `json:"members"`
}

// ViewID is a view's identity: its type, the UUID of the member that
// formed it, and its sequence number.
type ViewID struct {
	Type ViewType `json:"type"`
	UUID string   `json:"uuid"`
	Seq  int64    `json:"seq"`
}

// ViewType is gcomm's view type as the file numbers it.
type ViewType int

const (
	ViewRegular    ViewType = 0
	ViewTransition ViewType = 1
	ViewNonPrimary ViewType = 2
	ViewPrimary    ViewType = 3
)

// Member is one member of the saved view.
type Member struct {
	UUID    string `json:"uuid"`
	Segment int    `json:"segment"` // gmcast.segment, 0 to 255
}

// Has reports whether the view lists uuid as a member.
func (g Gvwstate) Has(uuid string) bool {
	for _, m := range g.Members {
		if m.UUID == uuid {
			return true
		}
	}
	return false
}

// ErrBadGvwstate is wrapped by every gvwstate.dat syntax error.
var ErrBadGvwstate = errors.New("malformed gvwstate.dat")

// ParseGvwstate parses gvwstate.dat:
//
//	my_uuid: <uuid>
//	#vwbeg
//	view_id: <type> <uuid> <seq>
//	bootstrap: <0|1>
//	member: <uuid> <segment>
//	...
//	#vwend
//
// my_uuid, the view block and view_id are required, the view must be a
// Primary one (Galera saves no other) and must list my_uuid among its
// members; a file that says otherwise was damaged, and a recovery must not
// act on it.
func ParseGvwstate(b []byte) (Gvwstate, error) {
	var g Gvwstate
	const (
		before = iota
		inView
		after
	)
	block := before
	seen := map[string]bool{}
	bad := func(n int, format string, args ...any) (Gvwstate, error) {
		return Gvwstate{}, fmt.Errorf("%w: line %d: %s", ErrBadGvwstate, n, fmt.Sprintf(format, args...))
	}
	for i, line := range strings.Split(string(b), "\n") {
		n := i + 1
		line = strings.TrimSpace(line)
		switch line {
		case "":
			continue
		case "#vwbeg":
			if block != before {
				return bad(n, "a second #vwbeg")
			}
			block = inView
			continue
		case "#vwend":
			if block != inView {
				return bad(n, "#vwend without #vwbeg")
			}
			block = after
			continue
		}
		if strings.HasPrefix(line, "#") {
			continue
		}
		key, val, ok := strings.Cut(line, ":")
		if !ok {
			return bad(n, "%q is not \"key: value\"", line)
		}
		key, val = strings.TrimSpace(key), strings.TrimSpace(val)
		if key != "member" {
			if seen[key] {
				return bad(n, "repeats key %q", key)
			}
			seen[key] = true
		}
		inside := block == inView
		switch key {
		case "my_uuid":
			if block != before {
				return bad(n, "my_uuid inside or after the view block")
			}
			u, err := parseUUID(val)
			if err != nil {
				return bad(n, "my_uuid: %v", err)
			}
			g.MyUUID = u
		case "view_id":
			if !inside {
				return bad(n, "view_id outside #vwbeg/#vwend")
			}
			f := strings.Fields(val)
			if len(f) != 3 {
				return bad(n, "view_id %q is not \"type uuid seq\"", val)
			}
			t, err := strconv.Atoi(f[0])
			if err != nil || t < int(ViewRegular) || t > int(ViewPrimary) {
				return bad(n, "view_id type %q is not 0 to 3", f[0])
			}
			u, err := parseUUID(f[1])
			if err != nil {
				return bad(n, "view_id: %v", err)
			}
			seq, err := strconv.ParseInt(f[2], 10, 64)
			if err != nil || seq < 0 {
				return bad(n, "view_id seq %q is not a non-negative integer", f[2])
			}
			g.View = ViewID{Type: ViewType(t), UUID: u, Seq: seq}
		case "bootstrap":
			if !inside {
				return bad(n, "bootstrap outside #vwbeg/#vwend")
			}
			switch val {
			case "0":
			case "1":
				g.Bootstrap = true
			default:
				return bad(n, "bootstrap %q is neither 0 nor 1", val)
			}
		case "member":
			if !inside {
				return bad(n, "member outside #vwbeg/#vwend")
			}
			f := strings.Fields(val)
			if len(f) != 2 {
				return bad(n, "member %q is not \"uuid segment\"", val)
			}
			u, err := parseUUID(f[0])
			if err != nil {
				return bad(n, "member: %v", err)
			}
			seg, err := strconv.Atoi(f[1])
			if err != nil || seg < 0 || seg > 255 {
				return bad(n, "member segment %q is not 0 to 255", f[1])
			}
			if g.Has(u) {
				return bad(n, "member %s listed twice", u)
			}
			g.Members = append(g.Members, Member{UUID: u, Segment: seg})
		default:
			// Unknown keys are skipped, as Galera skips them, so a newer
			// file version still parses.
		}
	}
	switch {
	case g.MyUUID == "":
		return Gvwstate{}, fmt.Errorf("%w: no my_uuid line", ErrBadGvwstate)
	case block == before:
		return Gvwstate{}, fmt.Errorf("%w: no #vwbeg view block", ErrBadGvwstate)
	case block == inView:
		return Gvwstate{}, fmt.Errorf("%w: the view block has no #vwend (truncated file?)", ErrBadGvwstate)
	case !seen["view_id"]:
		return Gvwstate{}, fmt.Errorf("%w: no view_id line", ErrBadGvwstate)
	case g.View.Type != ViewPrimary:
		return Gvwstate{}, fmt.Errorf("%w: view type %d is not Primary (%d)", ErrBadGvwstate, g.View.Type, ViewPrimary)
	case !g.Has(g.MyUUID):
		return Gvwstate{}, fmt.Errorf("%w: my_uuid %s is not a member of the view", ErrBadGvwstate, g.MyUUID)
	}
	return g, nil
}
