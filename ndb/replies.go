package ndb

import (
	"fmt"
	"strconv"
	"strings"
)

// Commands and reply headers [SRV-7.6 commands[] and its reply functions].
const (
	CmdGetVersion      = "get version"
	HeaderVersion      = "version"
	CmdGetMgmdNodeID   = "get mgmd nodeid"
	HeaderMgmdNodeID   = "get mgmd nodeid reply"
	CmdStop            = "stop v2"
	CmdStopAll         = "stop all"
	HeaderStop         = "stop reply"
	CmdRestart         = "restart node v2"
	CmdRestartAll      = "restart all"
	HeaderRestart      = "restart reply"
	CmdStart           = "start"
	CmdStartAll        = "start all"
	HeaderStart        = "start reply"
	CmdStartBackup     = "start backup"
	HeaderStartBackup  = "start backup reply"
	CmdAbortBackup     = "abort backup"
	HeaderAbortBackup  = "abort backup reply"
	CmdEnterSingleUser = "enter single user"
	HeaderEnterSingle  = "enter single user reply"
	CmdExitSingleUser  = "exit single user"
	HeaderExitSingle   = "exit single user reply"
	CmdListenEvent     = "listen event"
	HeaderListenEvent  = "listen event"
	CmdCheckConnection = "check connection"
	HeaderCheckConn    = "check connection reply"
	CmdEndSession      = "end session"
	HeaderEndSession   = "end session reply"
	CmdBye             = "bye"

	// ResultOk is the value of `result:` on success.
	ResultOk = "Ok"
)

// Messages of a bad-protocol reply [SRV-7.6 runSession]: the header is
// `result: <msg>, '<token>'`.
const (
	BadUnknownCommand  = "Unknown command"
	BadUnknownArgument = "Unknown argument"
	BadTypeMismatch    = "Type mismatch"
	BadArgFormat       = "Invalid arg. format"
	BadArgType         = "Unknown argument type"
	BadArgTwice        = "Argument given twice"
	BadMissingArg      = "Missing arg."
)

// ProtocolReply builds the server's answer to a request it could not
// parse, e.g. `result: Unknown command, 'foo'`.
func ProtocolReply(msg, token string) Message {
	return Message{Header: "result: " + msg + ", '" + token + "'"}
}

// ProtocolError is a bad-protocol reply received: the server did not
// understand the request.
type ProtocolError struct {
	Msg, Token string
}

func (e *ProtocolError) Error() string {
	return fmt.Sprintf("ndb_mgmd did not understand the request: %s, %q", e.Msg, e.Token)
}

// ResultError is a well-formed reply whose result is not Ok.
type ResultError struct {
	Header string // the reply it came in
	Result string // the server's text, e.g. "empty node list"
}

func (e *ResultError) Error() string {
	return fmt.Sprintf("ndb_mgmd %s: %s", e.Header, e.Result)
}

// checkHeader fails on a bad-protocol reply (as *ProtocolError) and on a
// header other than want.
func checkHeader(m Message, want string) error {
	if rest, ok := strings.CutPrefix(m.Header, "result: "); ok {
		pe := &ProtocolError{Msg: rest}
		if i := strings.LastIndex(rest, ", '"); i >= 0 && strings.HasSuffix(rest, "'") {
			pe.Msg, pe.Token = rest[:i], rest[i+3:len(rest)-1]
		}
		return pe
	}
	if m.Header != want {
		return &ParseError{Line: 1, Text: m.Header, Msg: fmt.Sprintf("want header %q", want)}
	}
	return nil
}

// checkResult checks the header and that `result:` is Ok.
func checkResult(m Message, want string) error {
	if err := checkHeader(m, want); err != nil {
		return err
	}
	r, ok := m.Get("result")
	if !ok {
		return &ParseError{Line: 1, Text: m.Header, Msg: "reply has no result line"}
	}
	if r != ResultOk {
		return &ResultError{Header: want, Result: r}
	}
	return nil
}

// intField reads a numeric field that must be present.
func intField(m Message, key string) (int, error) {
	for i, f := range m.Fields {
		if f.Key == key {
			n, err := strconv.Atoi(f.Value)
			if err != nil {
				return 0, &ParseError{Line: i + 2, Text: lineText(m, i), Msg: key + " is not a number"}
			}
			return n, nil
		}
	}
	return 0, &ParseError{Text: m.Header, Msg: "reply has no " + key + " line"}
}

// VersionInfo is the `get version` reply [SRV-7.6 getVersion].
type VersionInfo struct {
	ID                                 Version
	Major, Minor, Build                int
	String                             string
	MySQLMajor, MySQLMinor, MySQLBuild int
}

// FormatVersion builds the `get version` reply.
func FormatVersion(v VersionInfo) Message {
	m := Message{Header: HeaderVersion}
	m.Add("id", strconv.FormatUint(uint64(v.ID), 10))
	m.Add("major", strconv.Itoa(v.Major)).Add("minor", strconv.Itoa(v.Minor)).Add("build", strconv.Itoa(v.Build))
	m.Add("string", v.String)
	m.Add("mysql_major", strconv.Itoa(v.MySQLMajor)).Add("mysql_minor", strconv.Itoa(v.MySQLMinor)).Add("mysql_build", strconv.Itoa(v.MySQLBuild))
	return m
}

// ParseVersion reads the `get version` reply; every field must be there
// and id must agree with major.minor.build.
func ParseVersion(m Message) (VersionInfo, error) {
	var v VersionInfo
	if err := checkHeader(m, HeaderVersion); err != nil {
		return v, err
	}
	id, err := intField(m, "id")
	if err != nil {
		return v, err
	}
	v.ID = Version(id)
	for _, f := range []struct {
		key string
		dst *int
	}{{"major", &v.Major}, {"minor", &v.Minor}, {"build", &v.Build}, {"mysql_major", &v.MySQLMajor}, {"mysql_minor", &v.MySQLMinor}, {"mysql_build", &v.MySQLBuild}} {
		if *f.dst, err = intField(m, f.key); err != nil {
			return v, err
		}
	}
	s, ok := m.Get("string")
	if !ok {
		return v, &ParseError{Text: m.Header, Msg: "reply has no string line"}
	}
	v.String = s
	if MakeVersion(v.Major, v.Minor, v.Build) != v.ID {
		return v, &ParseError{Text: m.Header, Msg: fmt.Sprintf("id %d is not major.minor.build %d.%d.%d", id, v.Major, v.Minor, v.Build)}
	}
	return v, nil
}

func bit(b bool) string {
	if b {
		return "1"
	}
	return "0"
}

func joinIDs(ids []int) string {
	s := make([]string, len(ids))
	for i, id := range ids {
		s[i] = strconv.Itoa(id)
	}
	return strings.Join(s, " ")
}

// StopRequest is `stop v2` (ndb_mgm `N STOP [-a] [-f]`).
type StopRequest struct {
	Nodes []int
	Abort bool // -a: abort transactions, do not wait for them
	Force bool // -f: stop even if it leaves a node group empty
}

// Message builds the request as mgmapi sends it.
func (r StopRequest) Message() Message {
	m := Message{Header: CmdStop}
	m.Add("node", joinIDs(r.Nodes)).Add("abort", bit(r.Abort)).Add("force", bit(r.Force))
	return m
}

// RestartRequest is `restart node v2` (ndb_mgm `N RESTART [-n] [-i] [-a] [-f]`).
type RestartRequest struct {
	Nodes   []int
	Initial bool // -i: initial restart, the node's file system is cleared
	NoStart bool // -n: stop and wait for START
	Abort   bool // -a
	Force   bool // -f
}

// Message builds the request in the field order of the facts' transcript.
func (r RestartRequest) Message() Message {
	m := Message{Header: CmdRestart}
	m.Add("node", joinIDs(r.Nodes)).Add("abort", bit(r.Abort)).Add("initialstart", bit(r.Initial)).Add("nostart", bit(r.NoStart)).Add("force", bit(r.Force))
	return m
}

// ParseIDs reads a space-separated node list such as "2 3".
func ParseIDs(s string) ([]int, error) {
	var ids []int
	for _, f := range strings.Fields(s) {
		id, err := strconv.Atoi(f)
		if err != nil || id <= 0 || id > 255 {
			return nil, fmt.Errorf("node id %q is not a number in 1..255", f)
		}
		ids = append(ids, id)
	}
	return ids, nil
}

// FormatCountReply builds stop/restart/start replies: header, result, the
// count under key (stopped, restarted, started) and, for v2 commands,
// disconnect (1 when the management server itself is going down).
func FormatCountReply(header, result, key string, count int, v2 bool, disconnect bool) Message {
	m := Message{Header: header}
	m.Add("result", result)
	if result == ResultOk || key != "started" {
		m.Add(key, strconv.Itoa(count))
	}
	if v2 {
		m.Add("disconnect", bit(disconnect))
	}
	return m
}

// ParseCountReply reads a stop, restart or start-all reply and returns
// the count under key. A result other than Ok is a *ResultError.
func ParseCountReply(m Message, header, key string) (int, error) {
	if err := checkResult(m, header); err != nil {
		return 0, err
	}
	return intField(m, key)
}

// ResultReply builds a reply carrying only `result:`.
func ResultReply(header, result string) Message {
	m := Message{Header: header}
	m.Add("result", result)
	return m
}

// CheckResultReply checks a reply carrying `result: Ok`.
func CheckResultReply(m Message, header string) error { return checkResult(m, header) }

// BackupWait is START BACKUP's wait mode, the `completed:` argument.
type BackupWait int

const (
	BackupNoWait        BackupWait = 0
	BackupWaitStarted   BackupWait = 1
	BackupWaitCompleted BackupWait = 2 // the default
)

// StartBackupRequest is `start backup`.
type StartBackupRequest struct {
	Wait          BackupWait
	ID            int  // 0: the server picks the next id
	SnapshotStart bool // SNAPSHOTSTART instead of the default SNAPSHOTEND
}

// Message builds the request.
func (r StartBackupRequest) Message() Message {
	m := Message{Header: CmdStartBackup}
	m.Add("completed", strconv.Itoa(int(r.Wait)))
	if r.ID > 0 {
		m.Add("backupid", strconv.Itoa(r.ID))
	}
	if r.SnapshotStart {
		m.Add("backuppoint", "1")
	}
	return m
}

// FormatStartBackup builds the reply; the id line is there only when the
// client waited (completed != 0) [SRV-7.6 startBackup].
func FormatStartBackup(wait BackupWait, id int) Message {
	m := ResultReply(HeaderStartBackup, ResultOk)
	if wait != BackupNoWait {
		m.Add("id", strconv.Itoa(id))
	}
	return m
}

// ParseStartBackup returns the backup id, 0 when the server gave none
// (NOWAIT).
func ParseStartBackup(m Message) (int, error) {
	if err := checkResult(m, HeaderStartBackup); err != nil {
		return 0, err
	}
	if _, ok := m.Get("id"); !ok {
		return 0, nil
	}
	return intField(m, "id")
}

// MgmdNodeIDReply is `get mgmd nodeid reply` / `nodeid:50`, written
// without a space after the colon as ndb_mgmd does [SRV-7.6; OPER].
func MgmdNodeIDReply(id int) Message {
	return Message{Header: HeaderMgmdNodeID, Fields: []Field{{Key: "nodeid", Value: strconv.Itoa(id), Sep: ":"}}}
}
