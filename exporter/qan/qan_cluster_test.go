//go:build cluster

package qan_test

import (
	"context"
	"database/sql"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"

	"github.com/nines-project/nines/exporter/qan"
	"github.com/nines-project/nines/internal/mariadbd"
	"github.com/nines-project/nines/internal/testbin"
)

// psSettings are the sandbox's performance_schema lines (sandbox/mycnf.go).
const psSettings = `performance_schema=ON
performance-schema-consumer-events-statements-current=ON
performance-schema-consumer-events-statements-history=ON
performance-schema-instrument='wait/lock/metadata/sql/mdl=ON'
performance_schema_digests_size=1000
performance_schema_max_memory_classes=0
`

// startServer runs a throwaway MariaDB with extra my.cnf lines and
// returns a pool on its socket without read timeout (sessions here wait
// for locks).
func startServer(t *testing.T, extra string) *sql.DB {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	lines := append(strings.Split(strings.TrimSpace(extra), "\n"), "max_connections=50", "innodb_buffer_pool_size=32M")
	srv, err := testbin.StartMariaDBWith(ctx, "qan", lines...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Stop)
	cfg := mysql.NewConfig()
	cfg.User, cfg.Net, cfg.Addr = mariadbd.SocketUser(), "unix", srv.Server.Socket
	c, err := mysql.NewConnector(cfg)
	if err != nil {
		t.Fatal(err)
	}
	db := sql.OpenDB(c)
	t.Cleanup(func() { db.Close() })
	return db
}

func exec(t *testing.T, db interface {
	ExecContext(context.Context, string, ...any) (sql.Result, error)
}, q string) {
	t.Helper()
	if _, err := db.ExecContext(context.Background(), q); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
}

// TestDigestsAndBlockingOnMariaDB: on a real MariaDB with the sandbox's
// settings, a statement run between two reads is that interval's delta
// with its text and an example; a row lock wait shows both sessions'
// statements; an ALTER waiting for a metadata lock shows as PENDING with
// the holder GRANTED.
func TestDigestsAndBlockingOnMariaDB(t *testing.T) {
	db := startServer(t, psSettings)
	ctx := context.Background()
	exec(t, db, "CREATE DATABASE d")
	exec(t, db, "CREATE TABLE d.t (id INT PRIMARY KEY, v INT)")
	exec(t, db, "INSERT INTO d.t VALUES (1, 0), (2, 0)")

	var tr qan.Tracker
	rows, err := qan.ReadDigests(ctx, db)
	if err != nil {
		t.Fatal(err)
	}
	tr.Observe(rows, 20)
	for range 3 {
		exec(t, db, "SELECT SLEEP(0.2), v FROM d.t WHERE id = 2")
	}
	if rows, err = qan.ReadDigests(ctx, db); err != nil {
		t.Fatal(err)
	}
	deltas := tr.Observe(rows, 20)
	if len(deltas) == 0 || deltas[0].Calls != 3 || deltas[0].Seconds < 0.6 || deltas[0].Seconds > 1 {
		t.Fatalf("deltas %+v: want the SLEEP statement first, 3 calls, about 0.6 s", deltas)
	}
	t.Logf("measured: top delta %+v", deltas[0])
	texts, err := qan.ReadTexts(ctx, db, []qan.Key{deltas[0].Key})
	if err != nil {
		t.Fatal(err)
	}
	txt := texts[deltas[0].Key]
	if !strings.Contains(txt.Normalized, "SLEEP") || txt.Example != "SELECT SLEEP(0.2), v FROM d.t WHERE id = 2" {
		t.Errorf("text %+v: want the normalized SLEEP statement and the example as run", txt)
	}

	// Session A holds row 1 and idles; B waits for it. C holds a shared
	// metadata lock on d.t in an open transaction; D's ALTER waits.
	a, err := db.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	exec(t, a, "BEGIN")
	exec(t, a, "UPDATE d.t SET v = 1 WHERE id = 1")
	bDone := make(chan error, 1)
	go func() { _, err := db.ExecContext(ctx, "UPDATE d.t SET v = 2 WHERE id = 1"); bDone <- err }()
	var b *qan.Blocking
	deadline := time.Now().Add(10 * time.Second)
	for {
		if b, err = qan.ReadBlocking(ctx, db); err != nil {
			t.Fatal(err)
		}
		if len(b.LockWaits) > 0 || time.Now().After(deadline) {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if len(b.LockWaits) != 1 {
		t.Fatalf("lock waits %+v, want B waiting for A", b.LockWaits)
	}
	w := b.LockWaits[0]
	if w.WaitingStatement != "UPDATE d.t SET v = 2 WHERE id = 1" || w.BlockingStatement != "" ||
		len(w.BlockingRecent) == 0 || w.BlockingRecent[0] != "UPDATE d.t SET v = 1 WHERE id = 1" || !strings.Contains(w.Table, "`d`.`t`") {
		t.Errorf("lock wait %+v: want B's statement waiting, A idle with its UPDATE as latest statement, on d.t", w)
	}
	if !b.PerformanceSchema || b.Galera != nil || len(b.Transactions) != 2 {
		t.Errorf("performance_schema %v, galera %v, %d transactions: want on, none, 2", b.PerformanceSchema, b.Galera, len(b.Transactions))
	}
	exec(t, a, "ROLLBACK")
	if err := <-bDone; err != nil {
		t.Fatal(err)
	}

	c, err := db.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	exec(t, c, "BEGIN")
	exec(t, c, "SELECT v FROM d.t WHERE id = 1")
	dDone := make(chan error, 1)
	go func() { _, err := db.ExecContext(ctx, "ALTER TABLE d.t ADD COLUMN w INT"); dDone <- err }()
	pending := func(b *qan.Blocking) bool {
		for _, m := range b.MetadataLocks {
			if m.Status == "PENDING" && m.Name == "t" && strings.HasPrefix(m.Statement, "ALTER TABLE") {
				return true
			}
		}
		return false
	}
	deadline = time.Now().Add(10 * time.Second)
	for {
		if b, err = qan.ReadBlocking(ctx, db); err != nil {
			t.Fatal(err)
		}
		if pending(b) || time.Now().After(deadline) {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	granted := false
	for _, m := range b.MetadataLocks {
		granted = granted || m.Status == "GRANTED" && m.Statement == "SELECT v FROM d.t WHERE id = 1"
	}
	if !pending(b) || !granted {
		t.Errorf("metadata locks %+v: want the ALTER PENDING and the reader's lock GRANTED with its statement", b.MetadataLocks)
	}
	exec(t, c, "COMMIT")
	if err := <-dDone; err != nil {
		t.Fatal(err)
	}
}

// TestDigestsWithPerformanceSchemaOff: the reader says why there is
// nothing, and the blocking read still answers what InnoDB knows.
func TestDigestsWithPerformanceSchemaOff(t *testing.T) {
	db := startServer(t, "performance_schema=OFF\n")
	_, err := qan.ReadDigests(context.Background(), db)
	var off *qan.ErrDisabled
	if !errors.As(err, &off) || !strings.Contains(off.Why, "performance_schema is OFF") {
		t.Fatalf("ReadDigests with performance_schema off: %v, want ErrDisabled saying so", err)
	}
	b, err := qan.ReadBlocking(context.Background(), db)
	if err != nil || b.PerformanceSchema {
		t.Fatalf("ReadBlocking with performance_schema off: %+v, %v; want an answer saying it is off", b, err)
	}
}
