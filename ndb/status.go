package ndb

import (
	"fmt"
	"sort"
	"strconv"
	"strings"
)

// Headers and commands of `get status` [SRV-7.6 getStatus].
const (
	CmdGetStatus    = "get status"
	HeaderStatus    = "node status"
	statusFieldNode = "node"
)

// StatusFields are the per-node fields of the `get status` reply in the
// order ndb_mgmd prints them [SRV-7.6 printNodeStatus]. is_single_user is
// accepted on input only (an 8.x addition seen in the client, not in the
// server source [facts C]), so the simulator never invents it.
var StatusFields = []string{"type", "status", "version", "mysql_version", "startphase", "dynamic_id", "node_group", "connect_count", "address"}

const fieldIsSingleUser = "is_single_user"

// StatusRequest builds `get status`, optionally limited to node types
// (the reply then lists only those, in the order given).
func StatusRequest(types ...NodeType) Message {
	m := Message{Header: CmdGetStatus}
	if len(types) > 0 {
		names := make([]string, len(types))
		for i, t := range types {
			names[i] = t.String()
		}
		m.Add("types", strings.Join(names, " "))
	}
	return m
}

// FormatStatus builds the `get status` reply for nodes, in the order given
// (ndb_mgmd lists NDB, then MGM, then API nodes, each by id).
func FormatStatus(nodes []Node) Message {
	m := Message{Header: HeaderStatus}
	m.Add("nodes", strconv.Itoa(len(nodes)))
	for _, n := range nodes {
		p := "node." + strconv.Itoa(n.ID) + "."
		m.Add(p+"type", n.Type.String())
		m.Add(p+"status", n.Status.String())
		m.Add(p+"version", strconv.FormatUint(uint64(n.Version), 10))
		m.Add(p+"mysql_version", strconv.FormatUint(uint64(n.MySQLVersion), 10))
		m.Add(p+"startphase", strconv.Itoa(n.StartPhase))
		m.Add(p+"dynamic_id", strconv.Itoa(n.DynamicID))
		m.Add(p+"node_group", strconv.Itoa(n.NodeGroup))
		m.Add(p+"connect_count", strconv.Itoa(n.ConnectCount))
		// ndb_mgmd prints "address: %s", so an unconnected node's line
		// ends in ": " with nothing after it.
		m.Add(p+"address", n.Address)
	}
	return m
}

// ParseStatus reads a `get status` reply into nodes, sorted as the reply
// listed them. Every error names the line (1 = header) and what is wrong:
// a wrong header, an unknown field (mgmapi fails on those too), a bad
// number or status, a node missing a field, or a `nodes:` count that
// disagrees with the nodes listed.
func ParseStatus(m Message) ([]Node, error) {
	if err := checkHeader(m, HeaderStatus); err != nil {
		return nil, err
	}
	if len(m.Fields) == 0 || m.Fields[0].Key != "nodes" {
		return nil, &ParseError{Line: 2, Text: lineText(m, 0), Msg: "want `nodes: N` first"}
	}
	count, err := strconv.Atoi(m.Fields[0].Value)
	if err != nil || count < 0 {
		return nil, &ParseError{Line: 2, Text: lineText(m, 0), Msg: "node count is not a number"}
	}
	byID := map[int]*Node{}
	seen := map[int]map[string]bool{}
	var order []int
	for i, f := range m.Fields[1:] {
		line := i + 3
		bad := func(msg string) error { return &ParseError{Line: line, Text: lineText(m, i+1), Msg: msg} }
		parts := strings.SplitN(f.Key, ".", 3)
		if len(parts) != 3 || parts[0] != statusFieldNode {
			return nil, bad("want node.<id>.<field>")
		}
		id, err := strconv.Atoi(parts[1])
		if err != nil || id <= 0 || id > 255 {
			return nil, bad("node id is not a number in 1..255")
		}
		n, ok := byID[id]
		if !ok {
			n = &Node{ID: id}
			byID[id] = n
			seen[id] = map[string]bool{}
			order = append(order, id)
		}
		name := parts[2]
		if seen[id][name] {
			return nil, bad("field given twice")
		}
		seen[id][name] = true
		v := f.Value
		num := func(dst *int) error {
			x, err := strconv.Atoi(v)
			if err != nil {
				return bad(name + " is not a number")
			}
			*dst = x
			return nil
		}
		switch name {
		case "type":
			t, err := ParseNodeType(v)
			if err != nil {
				return nil, bad(err.Error())
			}
			n.Type = t
		case "status":
			s, err := ParseNodeStatus(v)
			if err != nil {
				return nil, bad(err.Error())
			}
			n.Status = s
		case "version", "mysql_version":
			x, err := strconv.ParseUint(v, 10, 32)
			if err != nil {
				return nil, bad(name + " is not an unsigned number")
			}
			if name == "version" {
				n.Version = Version(x)
			} else {
				n.MySQLVersion = Version(x)
			}
		case "startphase":
			err = num(&n.StartPhase)
		case "dynamic_id":
			err = num(&n.DynamicID)
		case "node_group":
			err = num(&n.NodeGroup)
		case "connect_count":
			err = num(&n.ConnectCount)
		case "address":
			n.Address = v
		case fieldIsSingleUser:
			b := v == "1"
			if v != "0" && v != "1" {
				return nil, bad("is_single_user is not 0 or 1")
			}
			n.IsSingleUser = &b
		default:
			return nil, bad("unknown field " + strconv.Quote(name))
		}
		if err != nil {
			return nil, err
		}
	}
	if len(order) != count {
		return nil, &ParseError{Line: 2, Text: lineText(m, 0), Msg: fmt.Sprintf("reply lists %d nodes", len(order))}
	}
	out := make([]Node, 0, len(order))
	for _, id := range order {
		var missing []string
		for _, f := range StatusFields {
			if !seen[id][f] {
				missing = append(missing, f)
			}
		}
		if len(missing) > 0 {
			return nil, &ParseError{Text: "node." + strconv.Itoa(id), Msg: "missing field(s) " + strings.Join(missing, ", ")}
		}
		out = append(out, *byID[id])
	}
	return out, nil
}

// SortNodes orders nodes as ndb_mgmd's `get status` does with no types
// argument: data nodes, then management, then API, each by id.
func SortNodes(nodes []Node) {
	rank := map[NodeType]int{TypeNDB: 0, TypeMGM: 1, TypeAPI: 2}
	sort.SliceStable(nodes, func(i, j int) bool {
		if rank[nodes[i].Type] != rank[nodes[j].Type] {
			return rank[nodes[i].Type] < rank[nodes[j].Type]
		}
		return nodes[i].ID < nodes[j].ID
	})
}

// lineText rebuilds field i's line for error messages.
func lineText(m Message, i int) string {
	if i >= len(m.Fields) {
		return ""
	}
	f := m.Fields[i]
	sep := f.Sep
	if sep == "" {
		sep = ": "
	}
	return f.Key + sep + f.Value
}
