//go:build cluster

package ndb

import (
	"context"
	"database/sql"
	"io"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/nines-project/nines/sandbox/ndbsim"
)

// BenchmarkNDBRound is the cost of one poll round of an NDB cluster (4
// data nodes, 2 replicas): its wall time, the statements it runs on the
// SQL node it reads (from the server's Questions counter) and its round
// trips to the management server (requests counted on the wire). make
// bench prints them. The SQL node is a real mariadbd carrying the
// simulator's ndbinfo views, so the statement count is the poller's
// real one; the time of a real NDB's ndbinfo (which asks the data nodes)
// is not measured here.
func BenchmarkNDBRound(b *testing.B) {
	c, err := ndbsim.NewCluster(ndbsim.Config{DataNodes: 4, Replicas: 2})
	if err != nil {
		b.Fatal(err)
	}
	srv, err := ndbsim.Serve(c, "127.0.0.1:0", ndbsim.ServerConfig{})
	if err != nil {
		b.Fatal(err)
	}
	defer srv.Close()
	mgm := countRequests(b, srv.Addr())
	mirror(b, c)
	exec(b, "CREATE OR REPLACE USER nines@localhost IDENTIFIED BY 'ndb-bench'", "GRANT SELECT ON ndbinfo.* TO nines@localhost")
	sqlFwd := forward(b, sqlNode.Server.Socket)
	p, err := NewPoller(PollerConfig{Cluster: "tel", Mgm: []string{mgm.addr}, SQL: []SQLNode{{Address: sqlFwd.Addr(), User: "nines", Password: "ndb-bench"}}})
	if err != nil {
		b.Fatal(err)
	}
	defer p.Close()
	ctx := context.Background()
	if r := p.Poll(ctx); r.Info == nil || r.Status == nil { // connections open, as in steady state
		b.Fatalf("first round read nothing: mgm %+v sql %+v", r.MgmTried, r.SQLTried)
	}
	q0, m0 := questions(b, sqlNode.DB), mgm.requests.Load()
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		if r := p.Poll(ctx); r.Info == nil || r.Status == nil {
			b.Fatalf("a round read nothing: mgm %+v sql %+v", r.MgmTried, r.SQLTried)
		}
	}
	b.StopTimer()
	// The Questions read itself is one statement.
	stmts := float64(questions(b, sqlNode.DB)-q0-1) / float64(b.N)
	trips := float64(mgm.requests.Load()-m0) / float64(b.N)
	b.ReportMetric(stmts, "sql-statements/round")
	b.ReportMetric(trips, "mgm-requests/round")
	b.Logf("measured: one NDB round: %.1f statements on the SQL node, %.1f management server requests", stmts, trips)
}

func questions(tb testing.TB, db *sql.DB) int64 {
	tb.Helper()
	var name, v string
	if err := db.QueryRow("SHOW GLOBAL STATUS LIKE 'Questions'").Scan(&name, &v); err != nil {
		tb.Fatal(err)
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil {
		tb.Fatal(err)
	}
	return n
}

// mgmCounter is a TCP proxy in front of a management server that counts
// the requests clients send: an mgm request ends with an empty line.
type mgmCounter struct {
	addr     string
	requests atomic.Int64
}

func countRequests(tb testing.TB, target string) *mgmCounter {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	m := &mgmCounter{addr: ln.Addr().String()}
	var wg sync.WaitGroup
	var mu sync.Mutex
	var conns []net.Conn
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			s, err := net.Dial("tcp", target)
			if err != nil {
				c.Close()
				continue
			}
			mu.Lock()
			conns = append(conns, c, s)
			mu.Unlock()
			wg.Add(2)
			go func() { defer wg.Done(); io.Copy(c, s); c.Close(); s.Close() }()
			go func() {
				defer wg.Done()
				defer s.Close()
				buf := make([]byte, 4096)
				var last byte
				for {
					n, err := c.Read(buf)
					for _, ch := range buf[:n] {
						if ch == '\n' && last == '\n' {
							m.requests.Add(1)
						}
						last = ch
					}
					if n > 0 {
						if _, werr := s.Write(buf[:n]); werr != nil {
							return
						}
					}
					if err != nil {
						return
					}
				}
			}()
		}
	}()
	tb.Cleanup(func() {
		ln.Close()
		mu.Lock()
		for _, c := range conns {
			c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	return m
}
