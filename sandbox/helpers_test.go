//go:build cluster

package sandbox

import (
	"bytes"
	"context"
	"database/sql"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"
)

// sandboxDir returns a fresh directory the server user can reach.
// t.TempDir creates its parent directories with mode 0700, which user
// mysql cannot enter; opening them is the test's business, since the
// library must never chmod anything above the sandbox directory.
func sandboxDir(t *testing.T) string {
	watchRaces(t) // first, so the check runs after the sandbox stopped
	t.Helper()
	dir := t.TempDir()
	tmp := filepath.Clean(os.TempDir())
	for p := filepath.Dir(dir); strings.HasPrefix(p, tmp+string(filepath.Separator)); p = filepath.Dir(p) {
		if err := os.Chmod(p, 0o755); err != nil {
			t.Fatalf("open %q to the server user: %v", p, err)
		}
	}
	return dir
}

// stopOnCleanup stops whatever runs in dir when the test ends, pass or
// fail, so no server outlives the test run.
func stopOnCleanup(t *testing.T, dir string) {
	t.Helper()
	t.Cleanup(func() {
		s, err := Open(dir)
		if err != nil {
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		if err := s.Stop(ctx); err != nil {
			t.Errorf("stop sandbox in cleanup: %v", err)
		}
	})
}

func testContext(t *testing.T, d time.Duration) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// rootDB connects to a node as root over its socket.
func rootDB(t *testing.T, s *Sandbox, node string) *sql.DB {
	t.Helper()
	db, err := s.DB(node)
	if err != nil {
		t.Fatalf("connect to %s: %v", node, err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// monitorDB connects to a node over TCP as the generated `nines` user,
// the way the appliance will.
func monitorDB(t *testing.T, s *Sandbox, node string) *sql.DB {
	t.Helper()
	n, err := s.Node(node)
	if err != nil {
		t.Fatal(err)
	}
	pass, err := os.ReadFile(s.PasswordPath())
	if err != nil {
		t.Fatalf("read password file: %v", err)
	}
	cfg := mysql.NewConfig()
	cfg.User = MonitorUser
	cfg.Passwd = string(bytes.TrimSpace(pass))
	cfg.Net = "tcp"
	cfg.Addr = n.Address()
	cfg.DBName = MonitorUser
	cfg.Timeout = 5 * time.Second
	c, err := mysql.NewConnector(cfg)
	if err != nil {
		t.Fatal(err)
	}
	db := sql.OpenDB(c)
	t.Cleanup(func() { db.Close() })
	return db
}

func mustExec(t *testing.T, db *sql.DB, q string, args ...any) {
	t.Helper()
	if _, err := db.Exec(q, args...); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
}

func queryOne[T any](t *testing.T, db *sql.DB, q string, args ...any) T {
	t.Helper()
	var v T
	if err := db.QueryRow(q, args...).Scan(&v); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	return v
}

// eventually polls cond until it holds or d passes. Replication is
// asynchronous, so a row appears on a replica some milliseconds later.
func eventually(t *testing.T, d time.Duration, what string, cond func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(d)
	last := ""
	for {
		ok, state := cond()
		if ok {
			return
		}
		last = state
		if time.Now().After(deadline) {
			t.Fatalf("%s: not true after %v; last: %s", what, d, last)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func statusByName(t *testing.T, s *Sandbox) map[string]NodeStatus {
	t.Helper()
	sts, err := s.Status(context.Background())
	if err != nil {
		t.Fatalf("status: %v", err)
	}
	out := map[string]NodeStatus{}
	for _, st := range sts {
		out[st.Name] = st
	}
	return out
}

func timed(t *testing.T, what string, f func()) {
	t.Helper()
	start := time.Now()
	f()
	t.Logf("TIMING %s: %v", what, time.Since(start).Round(time.Millisecond))
}

func fileSize(t *testing.T, path string) int64 {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Size()
}

// readFrom returns what was appended to path since offset.
func readFrom(t *testing.T, path string, offset int64) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if offset > int64(len(b)) {
		offset = 0
	}
	return string(b[offset:])
}

// running reports whether pid is a live process. An exited child this
// process has not reaped yet is a zombie: it holds its pid (kill 0 still
// succeeds) but runs nothing, so it counts as gone.
func running(pid int) bool {
	b, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "stat"))
	if err != nil {
		return false
	}
	i := bytes.LastIndexByte(b, ')')
	return i >= 0 && i+2 < len(b) && b[i+2] != 'Z' && b[i+2] != 'X'
}
