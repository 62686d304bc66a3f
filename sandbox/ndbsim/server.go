package ndbsim

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/nines-project/nines/ndb"
)

// ServerConfig tunes the simulated ndb_mgmd. Zero values take defaults.
type ServerConfig struct {
	// PingInterval is how often listeners get <PING>. ndb_mgmd pings from
	// its check_listeners loop [SRV-7.6]; the facts give no period, so
	// the default of 1 s is an assumption.
	PingInterval time.Duration
	// PhaseInterval walks starting data nodes one start phase per tick
	// (Cluster.Step); 0 leaves phases to the caller.
	PhaseInterval time.Duration
	// BackupDuration is how long a backup runs between BackupStarted and
	// BackupCompleted; 0 completes it at once.
	BackupDuration time.Duration
	// GCPInterval runs a global checkpoint (Cluster.CompleteGCP) per
	// tick, as TimeBetweenGlobalCheckpoints does (default 2000 ms [DOC8
	// config]); 0 runs none.
	GCPInterval time.Duration
	// WriteTimeout drops a listener that cannot take an event in time,
	// as ndb_mgmd drops listeners whose socket fails; default 5 s.
	WriteTimeout time.Duration
}

// Server is a simulated ndb_mgmd on a TCP port.
type Server struct {
	c   *Cluster
	cfg ServerConfig
	ln  net.Listener

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu        sync.Mutex
	conns     map[net.Conn]struct{}
	listeners map[*listener]struct{}
}

// Serve starts a server for c on addr (e.g. 127.0.0.1:0) and returns once
// it listens. Close stops it.
func Serve(c *Cluster, addr string, cfg ServerConfig) (*Server, error) {
	if cfg.PingInterval == 0 {
		cfg.PingInterval = time.Second
	}
	if cfg.WriteTimeout == 0 {
		cfg.WriteTimeout = 5 * time.Second
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("ndbsim: listen on %q: %w", addr, err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	s := &Server{c: c, cfg: cfg, ln: ln, ctx: ctx, cancel: cancel,
		conns: map[net.Conn]struct{}{}, listeners: map[*listener]struct{}{}}
	c.SetEmitter(s.broadcast)
	s.wg.Add(2)
	go s.accept()
	go s.tick()
	return s, nil
}

// Listeners is how many sessions currently stream events.
func (s *Server) Listeners() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.listeners)
}

// Addr is the address the server listens on.
func (s *Server) Addr() string { return s.ln.Addr().String() }

// Close stops accepting, closes every session and waits for them.
func (s *Server) Close() error {
	s.cancel()
	err := s.ln.Close()
	s.mu.Lock()
	for conn := range s.conns {
		conn.Close()
	}
	s.mu.Unlock()
	s.wg.Wait()
	s.c.SetEmitter(func(ndb.Event) {})
	return err
}

func (s *Server) accept() {
	defer s.wg.Done()
	for {
		conn, err := s.ln.Accept()
		if err != nil {
			return
		}
		s.mu.Lock()
		if s.ctx.Err() != nil {
			s.mu.Unlock()
			conn.Close()
			return
		}
		s.conns[conn] = struct{}{}
		s.mu.Unlock()
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			s.session(conn)
			s.mu.Lock()
			delete(s.conns, conn)
			s.mu.Unlock()
			conn.Close()
		}()
	}
}

// tick pings listeners, walks start phases and runs global checkpoints.
func (s *Server) tick() {
	defer s.wg.Done()
	ping := time.NewTicker(s.cfg.PingInterval)
	defer ping.Stop()
	var phase, gcp <-chan time.Time
	if s.cfg.PhaseInterval > 0 {
		t := time.NewTicker(s.cfg.PhaseInterval)
		defer t.Stop()
		phase = t.C
	}
	if s.cfg.GCPInterval > 0 {
		t := time.NewTicker(s.cfg.GCPInterval)
		defer t.Stop()
		gcp = t.C
	}
	for {
		select {
		case <-s.ctx.Done():
			return
		case <-ping.C:
			s.mu.Lock()
			for l := range s.listeners {
				l.send([]byte(ndb.Ping + "\n"))
			}
			s.mu.Unlock()
		case <-phase:
			s.c.Step()
		case <-gcp:
			s.c.CompleteGCP()
		}
	}
}

// listener is a session turned event stream. Events queue in out so the
// model never waits on a slow socket; a full queue drops the listener.
type listener struct {
	filter ndb.Filter
	out    chan []byte
	gone   chan struct{}
	once   sync.Once
}

func (l *listener) send(b []byte) {
	select {
	case l.out <- b:
	default:
		l.drop()
	}
}

func (l *listener) drop() { l.once.Do(func() { close(l.gone) }) }

// broadcast is the Cluster's emitter: called with the model locked, it
// only queues.
func (s *Server) broadcast(ev ndb.Event) {
	b := ev.Message().Bytes()
	cat := ndb.CategoryOf(ev.Type)
	s.mu.Lock()
	defer s.mu.Unlock()
	for l := range s.listeners {
		// A category listed at level 0 is off. Each event's own threshold
		// level is not modelled: any level above 0 receives it.
		if l.filter[cat] > 0 {
			l.send(b)
		}
	}
}

// session serves one client until it leaves, says bye, or turns into a
// listener (which then lives until the socket fails or the server stops).
func (s *Server) session(conn net.Conn) {
	r := bufio.NewReader(conn)
	for {
		req, err := ndb.ReadMessage(r, ":")
		if err != nil {
			var pe *ndb.ParseError
			if errors.As(err, &pe) {
				conn.Write(ndb.ProtocolReply(ndb.BadArgFormat, pe.Text).Bytes())
				continue
			}
			if errors.Is(err, ndb.ErrEmpty) {
				continue // stray blank lines between requests
			}
			return
		}
		if req.Header == ndb.CmdBye {
			return
		}
		if req.Header == ndb.CmdListenEvent {
			if ok := s.listen(conn, req); ok {
				return
			}
			continue
		}
		reply := s.handle(req)
		if _, err := reply.WriteTo(conn); err != nil {
			return
		}
	}
}

// spec lists a command's arguments: name → mandatory.
type spec map[string]bool

var commands = map[string]spec{
	ndb.CmdGetStatus:       {"types": false},
	ndb.CmdGetVersion:      {},
	ndb.CmdGetMgmdNodeID:   {},
	"get nodeid":           {"version": true, "nodetype": true, "transporter": false, "nodeid": false, "user": true, "password": true, "public key": true, "endian": false, "name": false, "timeout": false, "log_event": false},
	ndb.CmdStop:            {"node": true, "abort": true, "force": false},
	ndb.CmdStopAll:         {"abort": true, "stop": false},
	ndb.CmdRestart:         {"node": true, "initialstart": false, "nostart": false, "abort": false, "force": false},
	ndb.CmdRestartAll:      {"initialstart": false, "nostart": false, "abort": false},
	ndb.CmdStart:           {"node": true},
	ndb.CmdStartAll:        {},
	ndb.CmdStartBackup:     {"completed": false, "backupid": false, "backuppoint": false, "encryption_password": false, "password_length": false},
	ndb.CmdAbortBackup:     {"id": true},
	ndb.CmdEnterSingleUser: {"nodeId": true},
	ndb.CmdExitSingleUser:  {},
	ndb.CmdListenEvent:     {"node": false, "parsable": false, "filter": true},
	ndb.CmdCheckConnection: {},
	ndb.CmdEndSession:      {},
}

// numeric arguments: a non-number is a Type mismatch.
var numeric = map[string]bool{"abort": true, "force": true, "initialstart": true, "nostart": true,
	"completed": true, "backupid": true, "backuppoint": true, "id": true, "nodeId": true,
	"version": true, "nodetype": true, "nodeid": true, "timeout": true, "log_event": true, "parsable": true, "password_length": true}

// check answers a request the server's parser would refuse, or nil.
func check(req ndb.Message) *ndb.Message {
	sp, ok := commands[req.Header]
	if !ok {
		m := ndb.ProtocolReply(ndb.BadUnknownCommand, req.Header)
		return &m
	}
	seen := map[string]bool{}
	for _, f := range req.Fields {
		if _, ok := sp[f.Key]; !ok {
			m := ndb.ProtocolReply(ndb.BadUnknownArgument, f.Key)
			return &m
		}
		if seen[f.Key] {
			m := ndb.ProtocolReply(ndb.BadArgTwice, f.Key)
			return &m
		}
		seen[f.Key] = true
		if numeric[f.Key] {
			if _, err := strconv.Atoi(f.Value); err != nil {
				m := ndb.ProtocolReply(ndb.BadTypeMismatch, f.Key)
				return &m
			}
		}
	}
	for k, must := range sp {
		if must && !seen[k] {
			m := ndb.ProtocolReply(ndb.BadMissingArg, k)
			return &m
		}
	}
	return nil
}

func num(req ndb.Message, key string, def int) int {
	v, ok := req.Get(key)
	if !ok {
		return def
	}
	n, _ := strconv.Atoi(v) // checked by check
	return n
}

// handle answers one request.
func (s *Server) handle(req ndb.Message) ndb.Message {
	if bad := check(req); bad != nil {
		return *bad
	}
	c := s.c
	switch req.Header {
	case ndb.CmdGetStatus:
		return s.status(req)
	case ndb.CmdGetVersion:
		v := c.cfg.Version
		return ndb.FormatVersion(ndb.VersionInfo{ID: v, Major: v.Major(), Minor: v.Minor(), Build: v.Build(),
			String:     "mysql-" + v.String() + " ndb-" + v.String(),
			MySQLMajor: v.Major(), MySQLMinor: v.Minor(), MySQLBuild: v.Build()})
	case ndb.CmdGetMgmdNodeID:
		return ndb.MgmdNodeIDReply(c.cfg.MgmNodeID)
	case "get nodeid":
		return s.getNodeID(req)
	case ndb.CmdStop:
		ids, err := ndb.ParseIDs(v(req, "node"))
		if err != nil {
			return ndb.ResultReply(ndb.HeaderStop, err.Error())
		}
		if len(ids) == 0 {
			return ndb.ResultReply(ndb.HeaderStop, "empty node list")
		}
		n, err := c.Stop(ids, StopOptions{Abort: num(req, "abort", 0) == 1, Force: num(req, "force", 0) == 1})
		return ndb.FormatCountReply(ndb.HeaderStop, resultText(err, false), "stopped", n, true, false)
	case ndb.CmdStopAll:
		// stop: "db", "mgm" or "db mgm"; the simulated mgmd never stops
		// itself, so "mgm" only sets disconnect as ndb_mgmd would.
		what, given := req.Get("stop")
		if !given {
			what = "db"
		}
		n := 0
		var err error
		if strings.Contains(what, "db") {
			n, err = c.Stop(c.dataIDs(), StopOptions{Abort: num(req, "abort", 0) == 1, Force: true})
		}
		return ndb.FormatCountReply(ndb.HeaderStop, resultText(err, false), "stopped", n, given, strings.Contains(what, "mgm"))
	case ndb.CmdRestart:
		ids, err := ndb.ParseIDs(v(req, "node"))
		if err != nil || len(ids) == 0 {
			return ndb.FormatCountReply(ndb.HeaderRestart, "empty node list", "restarted", 0, true, false)
		}
		n, err := c.Restart(ids, StopOptions{Abort: num(req, "abort", 0) == 1, Force: num(req, "force", 0) == 1,
			Initial: num(req, "initialstart", 0) == 1, NoStart: num(req, "nostart", 0) == 1})
		return ndb.FormatCountReply(ndb.HeaderRestart, resultText(err, true), "restarted", n, true, false)
	case ndb.CmdRestartAll:
		n, err := c.Restart(c.dataIDs(), StopOptions{Abort: num(req, "abort", 0) == 1, Force: true,
			Initial: num(req, "initialstart", 0) == 1, NoStart: num(req, "nostart", 0) == 1})
		return ndb.FormatCountReply(ndb.HeaderRestart, resultText(err, true), "restarted", n, false, false)
	case ndb.CmdStart:
		ids, err := ndb.ParseIDs(v(req, "node"))
		if err == nil && len(ids) == 1 {
			err = c.Start(ids[0])
		} else if err == nil {
			err = fmt.Errorf("start takes one node, got %q", v(req, "node"))
		}
		return ndb.ResultReply(ndb.HeaderStart, resultText(err, false))
	case ndb.CmdStartAll:
		return ndb.FormatCountReply(ndb.HeaderStart, ndb.ResultOk, "started", c.StartAll(), false, false)
	case ndb.CmdStartBackup:
		return s.startBackup(req)
	case ndb.CmdAbortBackup:
		c.AbortBackup(num(req, "id", 0))
		return ndb.ResultReply(ndb.HeaderAbortBackup, ndb.ResultOk)
	case ndb.CmdEnterSingleUser:
		return ndb.ResultReply(ndb.HeaderEnterSingle, resultText(c.EnterSingleUser(num(req, "nodeId", 0)), false))
	case ndb.CmdExitSingleUser:
		c.ExitSingleUser()
		return ndb.ResultReply(ndb.HeaderExitSingle, ndb.ResultOk)
	case ndb.CmdCheckConnection:
		return ndb.ResultReply(ndb.HeaderCheckConn, ndb.ResultOk)
	case ndb.CmdEndSession:
		return ndb.Message{Header: ndb.HeaderEndSession}
	}
	return ndb.ProtocolReply(ndb.BadUnknownCommand, req.Header)
}

func v(req ndb.Message, key string) string { s, _ := req.Get(key); return s }

// resultText is `result:`'s value: Ok, or the error's text; restart
// prefixes the code as "<code>-<text>" [SRV-7.6 restart].
func resultText(err error, withCode bool) string {
	if err == nil {
		return ndb.ResultOk
	}
	var ce *CodeError
	if withCode && errors.As(err, &ce) {
		return strconv.Itoa(ce.Code) + "-" + ce.Text
	}
	return err.Error()
}

// status answers `get status`: all nodes (NDB, MGM, API), or those of the
// listed types in the order listed.
func (s *Server) status(req ndb.Message) ndb.Message {
	nodes := s.c.Nodes()
	types, given := req.Get("types")
	if !given {
		return ndb.FormatStatus(nodes)
	}
	var out []ndb.Node
	for _, name := range strings.Fields(types) {
		t, err := ndb.ParseNodeType(name)
		if err != nil {
			return ndb.ProtocolReply(ndb.BadArgFormat, name)
		}
		for _, n := range nodes {
			if n.Type == t {
				out = append(out, n)
			}
		}
	}
	return ndb.FormatStatus(out)
}

// getNodeID reserves a node id for a connecting node [SRV-7.6 get_nodeid]:
// the id asked for (or the first free one of the type when 0) must be of
// that type and not connected.
func (s *Server) getNodeID(req ndb.Message) ndb.Message {
	reply := func(id int, result string) ndb.Message {
		m := ndb.Message{Header: "get nodeid reply"}
		if result == ndb.ResultOk {
			m.Add("nodeid", strconv.Itoa(id))
		}
		return *m.Add("result", result)
	}
	if e, ok := req.Get("endian"); ok && e != "little" {
		return reply(0, "Node does not have the same endianness as the management server.")
	}
	// nodetype numbers are enum ndb_mgm_node_type: 0 NDB, 1 API, 2 MGM.
	types := map[int]ndb.NodeType{0: ndb.TypeNDB, 1: ndb.TypeAPI, 2: ndb.TypeMGM}
	nt, ok := types[num(req, "nodetype", -1)]
	if !ok {
		return reply(0, fmt.Sprintf("unknown nodetype %d", num(req, "nodetype", -1)))
	}
	want := num(req, "nodeid", 0)
	if want < 0 || want > 255 {
		return reply(0, fmt.Sprintf("illegal nodeid %d", want))
	}
	id, err := s.c.reserve(want, nt)
	if err != nil {
		return reply(0, err.Error())
	}
	return reply(id, ndb.ResultOk)
}

// startBackup answers `start backup` per its wait mode: NOWAIT at once
// without an id, WAIT STARTED once started, WAIT COMPLETED once done.
func (s *Server) startBackup(req ndb.Message) ndb.Message {
	wait := ndb.BackupWait(num(req, "completed", int(ndb.BackupWaitCompleted)))
	id, err := s.c.BeginBackup(num(req, "backupid", 0))
	if err != nil {
		return ndb.ResultReply(ndb.HeaderStartBackup, resultText(err, false))
	}
	finish := func() { s.c.FinishBackup(id) }
	if s.cfg.BackupDuration == 0 {
		finish()
	} else {
		done := make(chan struct{})
		t := time.AfterFunc(s.cfg.BackupDuration, func() { finish(); close(done) })
		if wait == ndb.BackupWaitCompleted {
			select {
			case <-done:
			case <-s.ctx.Done():
				t.Stop()
				return ndb.ResultReply(ndb.HeaderStartBackup, "management server shutting down")
			}
		}
	}
	b, _ := s.c.Backup(id)
	if wait == ndb.BackupWaitCompleted && b.Aborted && b.FilesError != "" {
		return ndb.ResultReply(ndb.HeaderStartBackup, "Backup failed: "+b.FilesError)
	}
	if wait == ndb.BackupWaitCompleted && b.Aborted {
		return ndb.ResultReply(ndb.HeaderStartBackup, "1321-Backup aborted by user request")
	}
	return ndb.FormatStartBackup(wait, id)
}

// listen answers `listen event` and, on success, turns the session into
// an event stream; it returns true when the session is over.
func (s *Server) listen(conn net.Conn, req ndb.Message) bool {
	if bad := check(req); bad != nil {
		conn.Write(bad.Bytes())
		return false
	}
	if p, _ := req.Get("parsable"); p != "1" {
		// parsable defaults to 0, human-readable text, which is not
		// simulated; say so rather than send parsable events to a client
		// that cannot read them.
		conn.Write(ndb.ListenReply(errors.New("ndbsim serves parsable listeners only")).Bytes())
		return false
	}
	f, err := ndb.ParseFilter(v(req, "filter"))
	if err != nil {
		conn.Write(ndb.ListenReply(err).Bytes())
		return false
	}
	// Registered before the reply is written: an event raised in between
	// queues behind the reply instead of being lost.
	l := &listener{filter: f, out: make(chan []byte, 256), gone: make(chan struct{})}
	s.mu.Lock()
	s.listeners[l] = struct{}{}
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		delete(s.listeners, l)
		s.mu.Unlock()
	}()
	if _, err := ndb.ListenReply(nil).WriteTo(conn); err != nil {
		return true
	}
	// A listener sends nothing more; reading tells us when it leaves.
	go func() {
		io.Copy(io.Discard, conn)
		l.drop()
	}()
	for {
		select {
		case <-s.ctx.Done():
			return true
		case <-l.gone:
			return true
		case b := <-l.out:
			conn.SetWriteDeadline(time.Now().Add(s.cfg.WriteTimeout))
			if _, err := conn.Write(b); err != nil {
				return true
			}
		}
	}
}
