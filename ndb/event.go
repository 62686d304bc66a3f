package ndb

import (
	"bufio"
	"fmt"
	"strconv"
	"strings"
)

// Listening for events [SRV-7.6 listen_event, logevent2str]. After a
// successful `listen event` the socket carries parsable events (a
// `log event reply` header and `name=value` lines, ending with an empty
// line) and `<PING>` keep-alive lines.

// Ping is the keep-alive line ndb_mgmd writes to listeners.
const Ping = "<PING>"

// HeaderEvent starts each parsable event.
const HeaderEvent = "log event reply"

// EventType is an Ndb_logevent_type number (mgmapi ndb_logevent.h).
type EventType int

// The event types nines reads or the simulator sends.
const (
	EventConnected           EventType = 0
	EventDisconnected        EventType = 1
	EventNDBStartStarted     EventType = 10
	EventNDBStartCompleted   EventType = 11
	EventStartPhaseCompleted EventType = 13
	EventNDBStopStarted      EventType = 17
	EventNDBStopAborted      EventType = 18
	EventNodeFailCompleted   EventType = 27
	EventNodeFailRep         EventType = 28
	EventArbitState          EventType = 29
	EventArbitResult         EventType = 30
	EventSingleUser          EventType = 52
	EventNDBStopCompleted    EventType = 53
	EventBackupStarted       EventType = 54
	EventBackupFailedToStart EventType = 55
	EventBackupCompleted     EventType = 56
	EventBackupAborted       EventType = 57
	EventNDBStopForced       EventType = 59
)

// GlobalCheckpointStarted/Completed: the master data node started or
// completed global checkpoint gci (body token gci). Category CHECKPOINT;
// EventLogger's matrix sends them at levels 9 and 10, so a listener
// needs CHECKPOINT at 10 or more to get both (mgmapi ndb_logevent.h
// NDB_LE_GlobalCheckpointStarted = 4, ..Completed = 5; EventLogger.cpp
// "Global checkpoint %u completed"; Oracle's mysql-ndb-operator
// pkg/mgmapi lists them too). A global checkpoint normally completes
// every TimeBetweenGlobalCheckpoints (default 2000 ms) [DOC8 config].
const (
	EventGlobalCheckpointStarted   EventType = 4
	EventGlobalCheckpointCompleted EventType = 5
)

// ExitGCPStop is the error a data node shuts down on when it was killed
// for a GCP stop: its log reads "Node %d killed this node because GCP
// stop was detected" (Ndbcntr::execSYSTEM_ERROR, SystemError::
// GCPStopDetected) and the manual calls it error 2303, "GCP stop
// errors" [facts A.4, DOC8 config "Disk Data and GCP Stop errors"].
const ExitGCPStop = 2303

// ForcedStop is the NDBStopForced event of data node id that shut itself
// down on error code (an ndbd exit code such as ExitGCPStop). The body
// tokens are the members of ndb_logevent_NDBStopForced (action, signum,
// error, sphase, extra), as the facts say bodies are [A.2.3 listen
// event]; the facts name neither the members nor their values, so both
// are assumptions (the members from mgmapi's ndb_logevent.h): action 0
// (the node stays down), signum 0 (no signal), sphase 255 (meant as "not
// during a start") and extra 0. Readers should rely on error only.
func ForcedStop(id, code int) Event {
	return Event{Type: EventNDBStopForced, SourceNodeID: id}.With("action", 0, "signum", 0, "error", code, "sphase", 255, "extra", 0)
}

var eventNames = map[EventType]string{
	EventConnected: "Connected", EventDisconnected: "Disconnected",
	EventGlobalCheckpointStarted: "GlobalCheckpointStarted", EventGlobalCheckpointCompleted: "GlobalCheckpointCompleted",
	EventNDBStartStarted: "NDBStartStarted", EventNDBStartCompleted: "NDBStartCompleted",
	EventStartPhaseCompleted: "StartPhaseCompleted", EventNDBStopStarted: "NDBStopStarted",
	EventNDBStopAborted: "NDBStopAborted", EventNodeFailCompleted: "NodeFailCompleted",
	EventNodeFailRep: "NODE_FAILREP", EventArbitState: "ArbitState", EventArbitResult: "ArbitResult",
	EventSingleUser: "SingleUser", EventNDBStopCompleted: "NDBStopCompleted",
	EventBackupStarted: "BackupStarted", EventBackupFailedToStart: "BackupFailedToStart",
	EventBackupCompleted: "BackupCompleted", EventBackupAborted: "BackupAborted",
	EventNDBStopForced: "NDBStopForced",
}

func (t EventType) String() string {
	if n, ok := eventNames[t]; ok {
		return n
	}
	return "EventType(" + strconv.Itoa(int(t)) + ")"
}

// Category is a log-level category, 250..262 on the wire [SRV-7.6
// getClusterLogLevel names with CFG_MIN_LOGLEVEL 250].
type Category int

const (
	CategoryStartup     Category = 250
	CategoryShutdown    Category = 251
	CategoryStatistics  Category = 252
	CategoryCheckpoint  Category = 253
	CategoryNodeRestart Category = 254
	CategoryConnection  Category = 255
	CategoryInfo        Category = 256
	CategoryWarning     Category = 257
	CategoryError       Category = 258
	CategoryCongestion  Category = 259
	CategoryDebug       Category = 260
	CategoryBackup      Category = 261
	CategorySchema      Category = 262
)

var categoryNames = []string{"STARTUP", "SHUTDOWN", "STATISTICS", "CHECKPOINT", "NODERESTART", "CONNECTION", "INFO", "WARNING", "ERROR", "CONGESTION", "DEBUG", "BACKUP", "SCHEMA"}

func (c Category) String() string {
	if c >= CategoryStartup && c <= CategorySchema {
		return categoryNames[c-CategoryStartup]
	}
	return "Category(" + strconv.Itoa(int(c)) + ")"
}

// ParseCategory reads a category as a number (250..262) or a name
// (case-insensitive), both accepted by ndb_mgmd.
func ParseCategory(s string) (Category, error) {
	if n, err := strconv.Atoi(s); err == nil {
		if c := Category(n); c >= CategoryStartup && c <= CategorySchema {
			return c, nil
		}
		return 0, fmt.Errorf("unknown category %q", s)
	}
	for i, n := range categoryNames {
		if strings.EqualFold(n, s) {
			return CategoryStartup + Category(i), nil
		}
	}
	return 0, fmt.Errorf("unknown category %q", s)
}

// CategoryOf gives the category an event type belongs to (ndb_logevent.h
// groups them), which listen filters select on.
func CategoryOf(t EventType) Category {
	switch t {
	case EventConnected, EventDisconnected:
		return CategoryConnection
	case EventGlobalCheckpointStarted, EventGlobalCheckpointCompleted:
		return CategoryCheckpoint
	case EventNDBStartStarted, EventNDBStartCompleted, EventStartPhaseCompleted, EventNDBStopStarted, EventNDBStopAborted, EventNDBStopCompleted, EventNDBStopForced:
		return CategoryStartup
	case EventNodeFailCompleted, EventNodeFailRep, EventArbitState, EventArbitResult:
		return CategoryNodeRestart
	case EventBackupStarted, EventBackupFailedToStart, EventBackupCompleted, EventBackupAborted:
		return CategoryBackup
	}
	return CategoryInfo
}

// Filter is a listen filter: the highest level wanted per category.
type Filter map[Category]int

// String is the wire form `category=level` pairs separated by spaces,
// sorted by category for a stable request.
func (f Filter) String() string {
	var parts []string
	for c := CategoryStartup; c <= CategorySchema; c++ {
		if l, ok := f[c]; ok {
			parts = append(parts, fmt.Sprintf("%d=%d", int(c), l))
		}
	}
	return strings.Join(parts, " ")
}

// ParseFilter reads a filter as ndb_mgmd does: pairs split on space or
// comma, each pair on `=` or `:`, category a number or name, level 0..15.
// Its errors carry the server's texts [SRV-7.6 listen_event].
func ParseFilter(s string) (Filter, error) {
	f := Filter{}
	for _, spec := range strings.FieldsFunc(s, func(r rune) bool { return r == ' ' || r == ',' }) {
		parts := strings.FieldsFunc(spec, func(r rune) bool { return r == '=' || r == ':' })
		if len(parts) != 2 {
			return nil, fmt.Errorf("Invalid filter specification: >%s< >%s<", spec, s)
		}
		c, err := ParseCategory(parts[0])
		if err != nil {
			return nil, fmt.Errorf("Unknown category: >%s<", parts[0])
		}
		l, err := strconv.Atoi(parts[1])
		if err != nil || l < 0 || l > 15 {
			return nil, fmt.Errorf("Invalid level: >%s<", parts[1])
		}
		f[c] = l
	}
	if len(f) == 0 {
		return nil, fmt.Errorf("Empty filter specification")
	}
	return f, nil
}

// ListenRequest builds `listen event` for parsable events.
func ListenRequest(f Filter) Message {
	m := Message{Header: CmdListenEvent}
	m.Add("parsable", "1").Add("filter", f.String())
	return m
}

// ListenReply builds the server's answer: result 0, or -1 with msg.
func ListenReply(err error) Message {
	m := Message{Header: HeaderListenEvent}
	if err == nil {
		m.Add("result", "0")
		return m
	}
	m.Add("result", "-1").Add("msg", err.Error())
	return m
}

// CheckListenReply checks the answer to `listen event`.
func CheckListenReply(m Message) error {
	if err := checkHeader(m, HeaderListenEvent); err != nil {
		return err
	}
	r, ok := m.Get("result")
	if !ok {
		return &ParseError{Line: 1, Text: m.Header, Msg: "reply has no result line"}
	}
	if r != "0" {
		msg, _ := m.Get("msg")
		return &ResultError{Header: HeaderListenEvent, Result: r + " " + msg}
	}
	return nil
}

// Event is one parsable log event.
type Event struct {
	Type         EventType
	Time         int // ndb_mgmd writes 0 here [SRV-7.6 logevent2str]
	SourceNodeID int
	// Data is the event body in the order sent, e.g. failed_node=2.
	// Token names are the ndb_logevent_<Type> struct members.
	Data []Field
}

// Get returns a body value as a number.
func (e Event) Get(key string) (int, bool) {
	for _, f := range e.Data {
		if f.Key == key {
			n, err := strconv.Atoi(f.Value)
			return n, err == nil
		}
	}
	return 0, false
}

// With appends body fields key=value (ints), for building.
func (e Event) With(kv ...any) Event {
	for i := 0; i+1 < len(kv); i += 2 {
		e.Data = append(e.Data, Field{Key: fmt.Sprint(kv[i]), Value: fmt.Sprint(kv[i+1]), Sep: "="})
	}
	return e
}

// Message is the event framed for the wire.
func (e Event) Message() Message {
	m := Message{Header: HeaderEvent}
	m.Fields = append(m.Fields,
		Field{Key: "type", Value: strconv.Itoa(int(e.Type)), Sep: "="},
		Field{Key: "time", Value: strconv.Itoa(e.Time), Sep: "="},
		Field{Key: "source_nodeid", Value: strconv.Itoa(e.SourceNodeID), Sep: "="})
	for _, f := range e.Data {
		f.Sep = "="
		m.Fields = append(m.Fields, f)
	}
	return m
}

// ParseEvent reads a parsable event frame: type, time and source_nodeid
// must come first and be numbers.
func ParseEvent(m Message) (Event, error) {
	var e Event
	if err := checkHeader(m, HeaderEvent); err != nil {
		return e, err
	}
	want := []string{"type", "time", "source_nodeid"}
	for i, k := range want {
		if i >= len(m.Fields) || m.Fields[i].Key != k {
			return e, &ParseError{Line: i + 2, Text: lineText(m, i), Msg: "want " + k + "=<number>"}
		}
		n, err := strconv.Atoi(m.Fields[i].Value)
		if err != nil {
			return e, &ParseError{Line: i + 2, Text: lineText(m, i), Msg: k + " is not a number"}
		}
		switch i {
		case 0:
			e.Type = EventType(n)
		case 1:
			e.Time = n
		case 2:
			e.SourceNodeID = n
		}
	}
	e.Data = append(e.Data, m.Fields[len(want):]...)
	return e, nil
}

// ReadStreamItem reads the next item of an event stream: an event, or a
// ping (ping true, event zero).
func ReadStreamItem(r *bufio.Reader) (ev Event, ping bool, err error) {
	line, err := r.Peek(len(Ping) + 1)
	if err == nil && string(line) == Ping+"\n" {
		_, err = r.Discard(len(line))
		return Event{}, true, err
	}
	m, err := ReadMessage(r, "=")
	if err != nil {
		return Event{}, false, err
	}
	ev, err = ParseEvent(m)
	return ev, false, err
}
