package ndb

import (
	"bufio"
	"context"
	"errors"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	ndbmsg "github.com/nines-project/nines/ndb"
	"github.com/nines-project/nines/sandbox/ndbsim"
)

func simulate(t *testing.T, cfg ndbsim.ServerConfig) (*ndbsim.Cluster, *ndbsim.Server, *Mgm) {
	t.Helper()
	c, err := ndbsim.NewCluster(ndbsim.Config{DataNodes: 4, Replicas: 2, SQLNodes: 2})
	if err != nil {
		t.Fatal(err)
	}
	s, err := ndbsim.Serve(c, "127.0.0.1:0", cfg)
	if err != nil {
		t.Fatal(err)
	}
	m := NewMgm(MgmConfig{Addr: s.Addr(), Timeout: 5 * time.Second})
	t.Cleanup(func() { m.Close(); s.Close() })
	return c, s, m
}

func TestStatusAfterNodeStop(t *testing.T) {
	_, _, m := simulate(t, ndbsim.ServerConfig{})
	ctx := context.Background()
	n, err := m.Stop(ctx, ndbmsg.StopRequest{Nodes: []int{2}})
	if err != nil || n != 1 {
		t.Fatalf("stop: %d %v", n, err)
	}
	nodes, err := m.GetStatus(ctx)
	if err != nil {
		t.Fatal(err)
	}
	byID := map[int]ndbmsg.Node{}
	for _, n := range nodes {
		byID[n.ID] = n
	}
	if len(nodes) != 7 || byID[2].Status != ndbmsg.StatusNoContact || byID[1].Status != ndbmsg.StatusStarted || byID[50].Status != ndbmsg.StatusConnected {
		t.Fatalf("status after stop: %+v", nodes)
	}
	// Node 1 is its group's last: refused with the server's text.
	_, err = m.Stop(ctx, ndbmsg.StopRequest{Nodes: []int{1}})
	var re *ndbmsg.ResultError
	if !errors.As(err, &re) || re.Result != "Node shutdown would cause system crash" {
		t.Fatalf("stop of a group's last node: %v", err)
	}
	data, err := m.GetStatus(ctx, ndbmsg.TypeNDB)
	if err != nil || len(data) != 4 {
		t.Fatalf("types NDB: %v %v", data, err)
	}
	v, err := m.Version(ctx)
	if err != nil || v.ID != ndbmsg.MakeVersion(8, 0, 44) || v.String != "mysql-8.0.44 ndb-8.0.44" {
		t.Fatalf("version %+v %v", v, err)
	}
}

func TestRestartNoStartThenStart(t *testing.T) {
	c, _, m := simulate(t, ndbsim.ServerConfig{})
	ctx := context.Background()
	if _, err := m.Restart(ctx, ndbmsg.RestartRequest{Nodes: []int{3}, NoStart: true}); err != nil {
		t.Fatal(err)
	}
	if n, _ := c.Node(3); n.Status != ndbmsg.StatusNotStarted {
		t.Fatalf("after restart -n: %s", n.Status)
	}
	if err := m.Start(ctx, 3); err != nil {
		t.Fatal(err)
	}
	for c.Step() > 0 {
	}
	nodes, err := m.GetStatus(ctx, ndbmsg.TypeNDB)
	if err != nil || nodes[2].Status != ndbmsg.StatusStarted || nodes[2].ConnectCount != 1 {
		t.Fatalf("node 3 after START: %+v %v", nodes, err)
	}
}

// listen starts ListenEvents and waits until the server counts it.
func listen(t *testing.T, s *ndbsim.Server, m *Mgm, filter ndbmsg.Filter) (<-chan ndbmsg.Event, <-chan error, context.CancelFunc) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	events := make(chan ndbmsg.Event, 64)
	done := make(chan error, 1)
	go func() { done <- m.ListenEvents(ctx, filter, func(e ndbmsg.Event) { events <- e }) }()
	deadline := time.Now().Add(2 * time.Second)
	for s.Listeners() == 0 {
		if time.Now().After(deadline) {
			t.Fatal("listener never registered")
		}
		time.Sleep(time.Millisecond)
	}
	t.Cleanup(cancel)
	return events, done, cancel
}

func TestEventWithin100ms(t *testing.T) {
	c, s, m := simulate(t, ndbsim.ServerConfig{})
	events, _, _ := listen(t, s, m, nil)
	start := time.Now()
	if err := c.SetStatus(4, ndbmsg.StatusNoContact, 0); err != nil {
		t.Fatal(err)
	}
	select {
	case ev := <-events:
		if ev.Type != ndbmsg.EventNodeFailRep {
			t.Fatalf("first event %s, want NODE_FAILREP", ev.Type)
		}
		if n, _ := ev.Get("failed_node"); n != 4 {
			t.Fatalf("failed_node %d", n)
		}
		if d := time.Since(start); d > 100*time.Millisecond {
			t.Fatalf("event after %s, want within 100ms", d)
		}
	case <-time.After(100 * time.Millisecond):
		t.Fatal("no event within 100ms of the node failing")
	}
}

// Pings keep an idle stream alive; without them the client gives up.
func TestPingKeepsListenerAlive(t *testing.T) {
	_, s, _ := simulate(t, ndbsim.ServerConfig{PingInterval: 10 * time.Millisecond})
	// Idle limit 15 pings long, so scheduling jitter under -race cannot
	// end a healthy stream; the silence below lasts 4 such limits.
	m := NewMgm(MgmConfig{Addr: s.Addr(), IdleTimeout: 150 * time.Millisecond})
	_, done, cancel := listen(t, s, m, nil)
	select {
	case err := <-done:
		t.Fatalf("stream with pings ended: %v", err)
	case <-time.After(600 * time.Millisecond):
	}
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("after cancel: %v", err)
	}

	_, quiet, _ := simulate(t, ndbsim.ServerConfig{PingInterval: time.Hour})
	m = NewMgm(MgmConfig{Addr: quiet.Addr(), IdleTimeout: 60 * time.Millisecond})
	_, done, _ = listen(t, quiet, m, nil)
	select {
	case err := <-done:
		if !errors.Is(err, ErrIdle) {
			t.Fatalf("silent stream ended with %v, want ErrIdle", err)
		}
	case <-time.After(2 * time.Second):
		t.Fatal("silent stream never timed out")
	}
}

func TestBackupIDsIncrease(t *testing.T) {
	c, s, m := simulate(t, ndbsim.ServerConfig{BackupDuration: 20 * time.Millisecond})
	events, _, _ := listen(t, s, m, ndbmsg.Filter{ndbmsg.CategoryBackup: 15})
	ctx := context.Background()
	a, err := m.StartBackup(ctx, ndbmsg.BackupWaitCompleted)
	if err != nil {
		t.Fatal(err)
	}
	if b, _ := c.Backup(a); !b.Completed {
		t.Fatalf("WAIT COMPLETED returned before backup %d completed", a)
	}
	b, err := m.StartBackup(ctx, ndbmsg.BackupWaitStarted)
	if err != nil || b <= a {
		t.Fatalf("second backup id %d (first %d): %v", b, a, err)
	}
	if st, _ := c.Backup(b); st.Completed {
		t.Fatal("WAIT STARTED waited for completion")
	}
	if err := m.AbortBackup(ctx, b); err != nil {
		t.Fatal(err)
	}
	if id, err := m.StartBackup(ctx, ndbmsg.BackupNoWait); err != nil || id != 0 {
		t.Fatalf("NOWAIT: id %d %v (the reply carries none)", id, err)
	}
	var seen []string
	for len(seen) < 5 {
		select {
		case ev := <-events:
			id, _ := ev.Get("backup_id")
			seen = append(seen, ev.Type.String()+":"+string(rune('0'+id)))
		case <-time.After(2 * time.Second):
			t.Fatalf("backup events so far %v", seen)
		}
	}
	if got := strings.Join(seen, " "); got != "BackupStarted:1 BackupCompleted:1 BackupStarted:2 BackupAborted:2 BackupStarted:3" {
		t.Fatalf("backup events %s", got)
	}
}

// fakeMgmd answers every request with reply, for malformed servers; a
// reply without its blank line is followed by closing the connection.
func fakeMgmd(t *testing.T, reply string) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer conn.Close()
				r := bufio.NewReader(conn)
				for {
					if _, err := ndbmsg.ReadMessage(r, ":"); err != nil {
						return
					}
					conn.Write([]byte(reply))
					if !strings.HasSuffix(reply, "\n\n") {
						return // a cut-off reply: the server goes away mid-frame
					}
				}
			}()
		}
	}()
	return ln.Addr().String()
}

func TestMalformedRepliesGiveClearErrors(t *testing.T) {
	cases := []struct{ name, reply, want string }{
		{"odd status", "node status\nnodes: 1\nnode.1.type: NDB\nnode.1.status: WOBBLY\n\n", `line 4 "node.1.status: WOBBLY": unknown node status "WOBBLY"`},
		{"invented field", "node status\nnodes: 1\nnode.1.type: NDB\nnode.1.mood: fine\n\n", `unknown field "mood"`},
		{"short", "node status\nnodes: 1\nnode.1.type: NDB\nnode.1.status: STARTED\n\n", "missing field(s) version, mysql_version"},
		{"unknown command", "result: Unknown command, 'get status'\n\n", "did not understand the request: Unknown command"},
		{"wrong header", "stop reply\nresult: Ok\n\n", `want header "node status"`},
		{"cut off", "node status\nnodes: 1\n", "unexpected EOF"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			addr := fakeMgmd(t, c.reply)
			m := NewMgm(MgmConfig{Addr: addr, Timeout: 2 * time.Second})
			defer m.Close()
			_, err := m.GetStatus(context.Background())
			if err == nil || !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), addr) {
				t.Fatalf("error %v, want it to name %s and say %s", err, addr, c.want)
			}
		})
	}
	var pe *ndbmsg.ProtocolError
	m := NewMgm(MgmConfig{Addr: fakeMgmd(t, "result: Unknown command, 'get status'\n\n")})
	defer m.Close()
	if _, err := m.GetStatus(context.Background()); !errors.As(err, &pe) || pe.Token != "get status" {
		t.Fatalf("errors.As ProtocolError: %v", err)
	}
}

func TestDialTimeoutAndContext(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	m := NewMgm(MgmConfig{Addr: addr, DialTimeout: time.Second})
	if _, err := m.GetStatus(context.Background()); err == nil || !strings.Contains(err.Error(), "connect to ndb_mgmd "+addr) {
		t.Fatalf("closed port: %v", err)
	}
	// A server that never answers: the context ends the call.
	silent := fakeMgmdSilent(t)
	m = NewMgm(MgmConfig{Addr: silent})
	defer m.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if _, err := m.GetStatus(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("silent server: %v", err)
	}
}

func fakeMgmdSilent(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var conns []net.Conn
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			c.Close()
		}
	})
	go func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, conn)
			mu.Unlock()
		}
	}()
	return ln.Addr().String()
}

// A cancelled stream ends at once, however busy: a cancellation that
// fell between two reads used to be undone by the next read's deadline,
// and pings then kept the stream alive for good (a hang seen once in a
// full test run; the appliance's shutdown would have hung the same way).
func TestListenEndsWhenCancelledUnderPings(t *testing.T) {
	_, s, _ := simulate(t, ndbsim.ServerConfig{PingInterval: time.Millisecond})
	m := NewMgm(MgmConfig{Addr: s.Addr(), IdleTimeout: time.Second})
	defer m.Close()
	for i := range 200 {
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- m.ListenEvents(ctx, nil, func(ndbmsg.Event) {}) }()
		time.Sleep(time.Duration(i%7) * time.Millisecond)
		cancel()
		select {
		case err := <-done:
			if !errors.Is(err, context.Canceled) {
				t.Fatalf("round %d: cancelled stream ended with %v", i, err)
			}
		case <-time.After(3 * time.Second):
			t.Fatalf("round %d: the stream outlived its cancelled context by 3s", i)
		}
	}
}
