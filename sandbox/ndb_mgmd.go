package sandbox

import (
	"bufio"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/nines-project/nines/ndb"
	"github.com/nines-project/nines/sandbox/ndbsim"
)

// Cadences of mgmd's loops.
const (
	ndbPhaseInterval = 250 * time.Millisecond // one start phase per tick
	ndbSyncInterval  = 250 * time.Millisecond // ndbinfo and write gate into each SQL node
	ndbTriggerEvery  = time.Second            // look for new user tables to gate
	// ndbGCPInterval is TimeBetweenGlobalCheckpoints' default, 2000 ms
	// [DOC8 config]: a global checkpoint completes this often.
	ndbGCPInterval = 2 * time.Second
)

// Texts data nodes log when told to shut down. The facts give the GCP
// stop text (A.4, Ndbcntr); they are silent on the message of a node
// excluded after missed heartbeats, so that one follows ndbd's
// "Forced node shutdown completed. Caused by error ..." form and its
// error number 2315 is an assumption.
const (
	ndbDeclaredDeadText = "Forced node shutdown completed. Caused by error 2315: 'Node declared dead. See error log for details(Arbitration error). Temporary error, restart node'."
	// ndbClusterFailureText: a survivor of a lost node group. The
	// ArbitResult text is the facts' (A.4); the error number 2305 and
	// the wrapping are assumed.
	ndbClusterFailureText = "Forced node shutdown completed. Caused by error 2305: 'Arbitration check failed: missing node group(Arbitration error). Temporary error, restart node'."
	ndbGCPStopFormat      = "Forced node shutdown completed. Caused by error 2303: 'Node %d killed this node because GCP stop was detected(Internal error, programming error or missing error message, please report a bug). Temporary error, restart node'."
)

// The errors of those texts, which the node's NDBStopForced event
// carries (ndb.ForcedStop) once its process has ended.
const (
	ndbDeclaredDeadError   = 2315
	ndbClusterFailureError = 2305
)

// mgmd is the management server process's state.
type mgmd struct {
	s   *Sandbox
	l   NDBLayout
	c   *ndbsim.Cluster
	log *log.Logger

	mu    sync.Mutex
	srv   *ndbsim.Server // nil while mgmd-down
	links map[int]*dataLink
	ready map[int]bool // SQL nodes synced, by API node id
	// What rows written take, and what faults force (see applyUsage).
	rowBytes  map[int]int64 // user table bytes by SQL node's API id
	faultDM   map[int]int   // DataMemory pages forced, by data node
	faultRedo map[int]bool  // redo forced full, by data node
}

// dataLink is one data node process's connection.
type dataLink struct {
	id   int
	conn net.Conn
	wmu  sync.Mutex
	seen time.Time // last heartbeat; under mgmd.mu
	sent string    // last status line sent; under mgmd.mu
	// forced is the error the node was told to shut down on, 0 if
	// none; under mgmd.mu. When its link ends the node reports it in
	// NDBStopForced, as a data node's angel does for its node.
	forced int
}

func (d *dataLink) send(line string) {
	d.wmu.Lock()
	defer d.wmu.Unlock()
	d.conn.SetWriteDeadline(time.Now().Add(time.Second))
	fmt.Fprintf(d.conn, "%s\n", line)
}

// RunNDBMgmd is `nines sandbox ndb mgmd --dir DIR`: the simulated
// management server of the NDB sandbox in dir, until ctx ends.
func RunNDBMgmd(ctx context.Context, dir string, logw io.Writer) error {
	nd, err := OpenNDB(dir)
	if err != nil {
		return err
	}
	l := nd.ndb()
	if err := os.WriteFile(l.Mgmd.PidFile, []byte(strconv.Itoa(os.Getpid())+"\n"), 0o644); err != nil {
		return fmt.Errorf("mgmd: %w", err)
	}
	// Each data node's BackupDataDir is its directory (NDB's default is
	// its FileSystemPath, the DataDir): a backup's files land in
	// DIR/dataN/BACKUP/BACKUP-<id>/, where the node's agent lists them.
	backupDataDir := func(id int) string {
		d, err := l.dataNode(id)
		if err != nil {
			return ""
		}
		return d.Dir
	}
	c, err := ndbsim.NewCluster(ndbsim.Config{DataNodes: len(l.DataNodes), Replicas: l.Replicas, SQLNodes: len(l.SQLNodeIDs), MgmNodeID: l.MgmNodeID,
		BackupDataDir: backupDataDir})
	if err != nil {
		return fmt.Errorf("mgmd: %w", err)
	}
	c.MarkAbsent()
	m := &mgmd{s: nd.Sandbox, l: l, c: c, log: log.New(logw, "", log.LstdFlags|log.Lmicroseconds),
		links: map[int]*dataLink{}, ready: map[int]bool{},
		rowBytes: map[int]int64{}, faultDM: map[int]int{}, faultRedo: map[int]bool{}}
	ln, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", l.LinkPort))
	if err != nil {
		return fmt.Errorf("mgmd: data node link: %w", err)
	}
	defer ln.Close()
	if err := m.mgmUp(); err != nil {
		return err
	}
	m.log.Printf("mgmd: mgm protocol on 127.0.0.1:%d, data node link on %s, heartbeat %v", l.MgmPort, ln.Addr(), l.heartbeat())
	go func() {
		<-ctx.Done()
		ln.Close()
	}()
	var wg sync.WaitGroup
	wg.Add(2 + len(nd.Nodes()))
	go func() { defer wg.Done(); m.stepLoop(ctx) }()
	go func() { defer wg.Done(); m.heartbeatLoop(ctx) }()
	for i, n := range nd.Nodes() {
		go func() { defer wg.Done(); m.sqlLoop(ctx, n, l.SQLNodeIDs[i]) }()
	}
	for {
		conn, err := ln.Accept()
		if err != nil {
			break
		}
		go m.serveLink(ctx, conn)
	}
	wg.Wait()
	m.mu.Lock()
	if m.srv != nil {
		m.srv.Close()
	}
	for _, d := range m.links {
		d.conn.Close()
	}
	m.mu.Unlock()
	m.log.Printf("mgmd: stopped")
	return nil
}

func (m *mgmd) mgmUp() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.srv != nil {
		return nil
	}
	srv, err := ndbsim.Serve(m.c, fmt.Sprintf("127.0.0.1:%d", m.l.modelMgmPort()), ndbsim.ServerConfig{GCPInterval: ndbGCPInterval})
	if err != nil {
		return fmt.Errorf("mgmd: %w", err)
	}
	m.srv = srv
	return nil
}

// stepLoop walks starting nodes through their phases and tells each
// data node process where it is.
func (m *mgmd) stepLoop(ctx context.Context) {
	t := time.NewTicker(ndbPhaseInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		m.c.Step()
		m.mu.Lock()
		for id, d := range m.links {
			n, _ := m.c.Node(id)
			if n.Status == ndb.StatusNoContact {
				// Failed by the model while its process runs: the
				// cluster lost a node group and shuts down, as every
				// survivor does then. A STOP ordered through the mgm
				// port also ends here; that is no forced stop (the
				// model sent NDBStopCompleted).
				delete(m.links, id)
				if !m.c.StopOrdered(id) {
					d.forced = ndbClusterFailureError
				}
				m.log.Printf("mgmd: node %d: cluster failure or STOP, shutting it down", id)
				go d.send("shutdown " + ndbClusterFailureText)
				continue
			}
			line := fmt.Sprintf("status %s %d", strings.ReplaceAll(n.Status.String(), " ", "_"), n.StartPhase)
			if n.Status == ndb.StatusStarting {
				// The start type, for the node's log.
				line += " " + strings.ReplaceAll(m.c.StartKind(id), " ", "_")
			}
			if line != d.sent {
				d.sent = line
				go d.send(line)
			}
		}
		m.mu.Unlock()
	}
}

// heartbeatLoop declares dead every node that missed 4 heartbeats: the
// model fails it and the process is told to shut down, which it reads
// when it runs again.
func (m *mgmd) heartbeatLoop(ctx context.Context) {
	hb := m.l.heartbeat()
	t := time.NewTicker(hb / 5)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		m.mu.Lock()
		for id, d := range m.links {
			if time.Since(d.seen) > ndbMissedHeartbeats*hb {
				delete(m.links, id)
				m.log.Printf("mgmd: node %d missed %d heartbeats (%v): declared dead", id, ndbMissedHeartbeats, time.Since(d.seen).Round(time.Millisecond))
				m.c.SetStatus(id, ndb.StatusNoContact, 0)
				d.forced = ndbDeclaredDeadError
				go d.send("shutdown " + ndbDeclaredDeadText)
			}
		}
		m.mu.Unlock()
	}
}

func (m *mgmd) serveLink(ctx context.Context, conn net.Conn) {
	defer conn.Close()
	r := bufio.NewReader(conn)
	conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	line, err := r.ReadString('\n')
	if err != nil {
		return
	}
	line = strings.TrimSpace(line)
	if rest, ok := strings.CutPrefix(line, "ctl "); ok {
		conn.SetWriteDeadline(time.Now().Add(5 * time.Second))
		out, err := m.control(rest)
		if err != nil {
			fmt.Fprintf(conn, "err %s\n", strings.ReplaceAll(err.Error(), "\n", " "))
			return
		}
		fmt.Fprintf(conn, "ok %s\n", out)
		return
	}
	id, pid, err := parseHello(line)
	if err != nil {
		fmt.Fprintf(conn, "refuse %v\n", err)
		return
	}
	d := &dataLink{id: id, conn: conn, seen: time.Now()}
	if err := m.join(d); err != nil {
		m.log.Printf("mgmd: refused node %d (pid %d): %v", id, pid, err)
		d.send("refuse " + err.Error())
		return
	}
	m.log.Printf("mgmd: node %d (pid %d) connected; %s through the start phases", id, pid, m.c.StartKind(id))
	d.send("welcome")
	for {
		conn.SetReadDeadline(time.Time{})
		line, err := r.ReadString('\n')
		if err != nil {
			m.leave(d, "connection lost ("+err.Error()+")", false)
			return
		}
		switch strings.TrimSpace(line) {
		case "hb":
			m.mu.Lock()
			d.seen = time.Now()
			m.mu.Unlock()
		case "bye":
			m.leave(d, "stopped by its process", true)
			return
		}
	}
}

// join registers a data node process and starts it in the model.
func (m *mgmd) join(d *dataLink) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, err := m.l.dataNode(d.id); err != nil {
		return fmt.Errorf("No node defined with id=%d in config file.", d.id)
	}
	if m.links[d.id] != nil {
		return fmt.Errorf("Id %d already allocated by another node.", d.id)
	}
	n, _ := m.c.Node(d.id)
	if n.Status != ndb.StatusNoContact {
		m.c.SetStatus(d.id, ndb.StatusNoContact, 0)
	}
	if err := m.c.Boot(d.id, false); err != nil {
		return err
	}
	m.links[d.id] = d
	return nil
}

// leave handles a data node whose link ended: a lost connection is a
// node failure at once (the process died); a graceful stop is a STOP; a
// node told to shut down on an error (GCP stop, declared dead, cluster
// failure) reports NDBStopForced with that error as its process ends.
func (m *mgmd) leave(d *dataLink, why string, graceful bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.links[d.id] != d {
		// Already failed in the model (declared dead, or its cluster
		// failed): only the event of its end is left to send.
		if d.forced != 0 {
			m.log.Printf("mgmd: node %d %s after it was told to shut down (error %d)", d.id, why, d.forced)
			m.c.Emit(ndb.ForcedStop(d.id, d.forced))
		}
		return
	}
	delete(m.links, d.id)
	m.log.Printf("mgmd: node %d %s", d.id, why)
	switch {
	case d.forced != 0:
		m.c.ForcedStop(d.id, d.forced)
	case graceful:
		m.c.Stop([]int{d.id}, ndbsim.StopOptions{Force: true})
	default:
		m.c.SetStatus(d.id, ndb.StatusNoContact, 0)
	}
}

// control runs one ctl request.
func (m *mgmd) control(req string) (string, error) {
	f := strings.Fields(req)
	if len(f) == 0 {
		return "", errors.New("empty request")
	}
	if f[0] == "status" {
		return m.statusJSON()
	}
	if f[0] == "config" {
		return m.configChange(f[1:])
	}
	if f[0] != "fault" || len(f) != 4 {
		return "", fmt.Errorf("unknown request %q", req)
	}
	kind := f[1]
	node, _ := strconv.Atoi(f[2])
	pct, _ := strconv.Atoi(f[3])
	m.log.Printf("mgmd: fault %s node %d percent %d", kind, node, pct)
	cfg := m.c.Config()
	targets := func() []int {
		if node != 0 {
			return []int{node}
		}
		var ids []int
		for _, d := range m.l.DataNodes {
			ids = append(ids, d.NodeID)
		}
		return ids
	}
	switch kind {
	case FaultDataMemory:
		m.mu.Lock()
		for _, id := range targets() {
			m.faultDM[id] = cfg.DataMemoryPages * pct / 100
		}
		m.mu.Unlock()
		m.applyUsage()
	case FaultRedoFull:
		m.mu.Lock()
		for _, id := range targets() {
			m.faultRedo[id] = true
		}
		m.mu.Unlock()
		m.applyUsage()
	case FaultClear:
		m.mu.Lock()
		clear(m.faultDM)
		clear(m.faultRedo)
		m.mu.Unlock()
		for _, d := range m.l.DataNodes {
			m.c.SetArbitration(d.NodeID, nil)
		}
		m.c.SetGCPStalled(false)
		m.applyUsage()
	case FaultGCPSlow:
		// Global checkpoints stop completing, as when redo does not
		// reach disk; the nodes are not killed (that is gcp-stop).
		m.c.SetGCPStalled(true)
	case FaultGCPStop:
		m.mu.Lock()
		d := m.links[node]
		m.mu.Unlock()
		if d == nil {
			return "", fmt.Errorf("gcp-stop: data node %d is not connected", node)
		}
		killer := ndb.Master(m.c.Nodes())
		if killer == 0 {
			killer = node
		}
		// The node exits on this; its link's end fails it and sends its
		// NDBStopForced with error 2303 (leave).
		m.mu.Lock()
		d.forced = ndb.ExitGCPStop
		m.mu.Unlock()
		d.send("shutdown " + fmt.Sprintf(ndbGCPStopFormat, killer))
	case FaultArbitrationSplit:
		if node == 0 {
			node = m.l.DataNodes[len(m.l.DataNodes)-1].NodeID
		}
		// This node believes in another arbitrator and ticket, still
		// looking for one (ARBIT_FIND 2) while the others run theirs.
		if err := m.c.SetArbitration(node, &ndbsim.Arbitration{Arbitrator: m.l.SQLNodeIDs[0], Ticket: "0a1b2c3d00020003", State: 2}); err != nil {
			return "", err
		}
	case FaultMgmdDown:
		m.mu.Lock()
		srv := m.srv
		m.srv = nil
		m.mu.Unlock()
		m.c.SetStatus(m.l.MgmNodeID, ndb.StatusNoContact, 0)
		if srv != nil {
			srv.Close()
		}
	case FaultMgmdUp:
		m.c.SetStatus(m.l.MgmNodeID, ndb.StatusConnected, 0)
		if err := m.mgmUp(); err != nil {
			return "", err
		}
	default:
		return "", fmt.Errorf("unknown fault %q", kind)
	}
	return "{}", nil
}

// configChange installs a new configuration: the parameters are only
// logged (the model does not act on them), the generation goes up by one
// and each data node takes it at its next start, as after editing
// config.ini and restarting ndb_mgmd with --reload [DOC8 §25.6.5].
func (m *mgmd) configChange(params []string) (string, error) {
	if len(params) == 0 {
		return "", errors.New("config: no parameter")
	}
	gen := m.c.ConfigGeneration() + 1
	m.c.SetConfigGeneration(gen)
	m.log.Printf("mgmd: configuration generation %d: %s; data nodes take it at their next restart", gen, strings.Join(params, " "))
	return fmt.Sprintf(`{"generation":%d}`, gen), nil
}

func (m *mgmd) statusJSON() (string, error) {
	st := ndbCtlStatus{SQLReady: map[string]bool{}}
	for _, n := range m.c.Nodes() {
		st.Nodes = append(st.Nodes, ndbCtlNode{ID: n.ID, Type: n.Type.String(), Status: n.Status.String(), Phase: n.StartPhase, Group: n.NodeGroup})
	}
	m.mu.Lock()
	st.MgmUp = m.srv != nil
	for id, ok := range m.ready {
		st.SQLReady[strconv.Itoa(id)] = ok
	}
	m.mu.Unlock()
	b, err := json.Marshal(st)
	return string(b), err
}

// sqlLoop keeps one SQL node's ndbinfo and write gate current. A node
// that is down is retried every tick; once back it is set up again.
func (m *mgmd) sqlLoop(ctx context.Context, n Node, apiID int) {
	var (
		db        *sql.DB
		installed bool
		lastGate  ndbGate
		lastTrig  time.Time
		lastSize  time.Time
	)
	defer func() {
		if db != nil {
			db.Close()
		}
	}()
	syncer := &ndbsim.Syncer{Source: m.c, Config: m.c.Config()}
	t := time.NewTicker(ndbSyncInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		err := func() error {
			if db == nil {
				var err error
				if db, err = server(n).DB(); err != nil {
					return err
				}
				db.SetMaxOpenConns(2)
				syncer.DB = db
			}
			cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
			defer cancel()
			if !installed {
				if err := ndbsim.InstallNdbinfo(cctx, db); err != nil {
					return err
				}
				if err := installGate(cctx, db); err != nil {
					return err
				}
				installed, lastGate, lastTrig = true, ndbGate{Errno: -1}, time.Time{}
				m.log.Printf("mgmd: ndbinfo and write gate installed on %s (API node %d)", n.Name, apiID)
			}
			if err := syncer.Sync(cctx); err != nil {
				return err
			}
			g := gateFor(m.c)
			if g != lastGate {
				if err := setGate(cctx, db, g); err != nil {
					return err
				}
				m.log.Printf("mgmd: writes through %s: %s", n.Name, g)
				lastGate = g
			}
			if time.Since(lastTrig) > ndbTriggerEvery {
				if err := gateNewTables(cctx, db); err != nil {
					return err
				}
				lastTrig = time.Now()
			}
			if time.Since(lastSize) > ndbSampleEvery {
				if err := m.sampleRows(cctx, db, apiID); err != nil {
					return err
				}
				lastSize = time.Now()
			}
			return nil
		}()
		m.mu.Lock()
		was := m.ready[apiID]
		m.ready[apiID] = err == nil
		m.mu.Unlock()
		switch {
		case err != nil && was:
			m.log.Printf("mgmd: SQL node %s: %v", n.Name, err)
			m.c.SetStatus(apiID, ndb.StatusNoContact, 0)
			installed = false
		case err != nil:
			installed = false
		case !was:
			if nd, _ := m.c.Node(apiID); nd.Status != ndb.StatusConnected {
				m.c.SetStatus(apiID, ndb.StatusConnected, 0)
			}
		}
	}
}

// ndbSampleEvery is how often mgmd reads how much the SQL nodes' user
// tables hold.
const ndbSampleEvery = 3 * time.Second

// applyUsage sets each data node's DataMemory and redo use in the model:
// what the SQL nodes' user tables hold, spread over the node groups as
// NDB partitions tables over them (each node of a group holds its
// group's share), unless a fault forces a value. The redo log grows with
// the same data, a quarter of it in each part; the model runs no local
// checkpoints that would free it, so this is only a rough picture.
func (m *mgmd) applyUsage() {
	cfg := m.c.Config()
	m.mu.Lock()
	var total int64
	for _, b := range m.rowBytes {
		total += b
	}
	groups := int64(len(m.l.DataNodes) / m.l.Replicas)
	share := total / groups
	pages := int((share + dataPageSize - 1) / dataPageSize)
	if pages > cfg.DataMemoryPages {
		pages = cfg.DataMemoryPages
	}
	redo := min(share/int64(cfg.RedoLogParts), cfg.RedoPartBytes)
	type use struct {
		id, pages int
		redo      int64
	}
	var uses []use
	for _, d := range m.l.DataNodes {
		u := use{d.NodeID, pages, redo}
		if f, ok := m.faultDM[d.NodeID]; ok {
			u.pages = f
		}
		if m.faultRedo[d.NodeID] {
			u.redo = cfg.RedoPartBytes
		}
		uses = append(uses, u)
	}
	m.mu.Unlock()
	for _, u := range uses {
		m.c.SetDataMemoryUsed(u.id, u.pages)
		for p := 0; p < cfg.RedoLogParts; p++ {
			m.c.SetRedoUsed(u.id, p, u.redo)
		}
	}
}

// dataPageSize is a DataMemory page, 32 KB [DOC8 §25.6.16.45].
const dataPageSize = 32 << 10

// sampleRows reads how many bytes the SQL node's user tables hold.
func (m *mgmd) sampleRows(ctx context.Context, db *sql.DB, apiID int) error {
	var b int64
	err := db.QueryRowContext(ctx, `SELECT COALESCE(SUM(data_length+index_length),0) FROM information_schema.tables
		WHERE table_type='BASE TABLE' AND table_schema NOT IN ('mysql','information_schema','performance_schema','sys','ndbinfo','ndbsim')`).Scan(&b)
	if err != nil {
		return fmt.Errorf("sample table sizes: %w", err)
	}
	m.mu.Lock()
	changed := m.rowBytes[apiID] != b
	m.rowBytes[apiID] = b
	m.mu.Unlock()
	if changed {
		m.applyUsage()
	}
	return nil
}
