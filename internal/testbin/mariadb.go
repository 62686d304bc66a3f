package testbin

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/nines-project/nines/internal/mariadbd"
)

// MariaDB is a throwaway mariadbd for one test package: no network port,
// no binary log, a small footprint, reached over its unix socket.
type MariaDB struct {
	Server *mariadbd.Server
	DB     *sql.DB // root (the socket user) over the unix socket
	dir    string
}

// StartMariaDB installs and starts a server under a new directory in /tmp
// and waits until it answers SQL. The caller must hold the machine's
// cluster lock (run under `flock /tmp/nines-cluster.lock`, as the
// Makefile runs every cluster-tagged package) and must call Stop.
func StartMariaDB(ctx context.Context, name string) (*MariaDB, error) {
	return StartMariaDBWith(ctx, name)
}

// StartMariaDBWith is StartMariaDB with extra my.cnf lines after the
// defaults; a later line wins, so they may override them
// (performance_schema=ON).
func StartMariaDBWith(ctx context.Context, name string, extra ...string) (*MariaDB, error) {
	dir, err := os.MkdirTemp("/tmp", "nines-"+name+"-")
	if err != nil {
		return nil, err
	}
	m := &MariaDB{dir: dir}
	fail := func(err error) (*MariaDB, error) {
		m.Stop()
		return nil, err
	}
	s := &mariadbd.Server{
		Name:         name,
		DefaultsFile: filepath.Join(dir, "my.cnf"),
		Dir:          dir,
		DataDir:      filepath.Join(dir, "data"),
		Socket:       filepath.Join(dir, "mysqld.sock"),
		PidFile:      filepath.Join(dir, "mysqld.pid"),
		ErrorLog:     filepath.Join(dir, "error.log"),
	}
	m.Server = s
	cnf := []string{"[mysqld]",
		"datadir=" + s.DataDir, "tmpdir=" + filepath.Join(dir, "tmp"), "socket=" + s.Socket,
		"pid-file=" + s.PidFile, "log-error=" + s.ErrorLog,
		"skip-networking", "skip-name-resolve", "performance_schema=OFF",
		"innodb_buffer_pool_size=16M", "innodb_log_file_size=8M", "innodb_flush_log_at_trx_commit=2",
	}
	cnf = append(cnf, extra...)
	if os.Geteuid() == 0 {
		// install-db and the server run as mysql; it must own the tree.
		cnf = append(cnf, "user=mysql")
	}
	for _, d := range []string{s.DataDir, filepath.Join(dir, "tmp")} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return fail(err)
		}
	}
	if err := os.WriteFile(s.DefaultsFile, []byte(strings.Join(cnf, "\n")+"\n"), 0o644); err != nil {
		return fail(err)
	}
	if os.Geteuid() == 0 {
		if err := chownTree(dir, "mysql"); err != nil {
			return fail(err)
		}
	}
	if err := s.Install(ctx); err != nil {
		return fail(err)
	}
	p, err := s.Start(mariadbd.StartOptions{})
	if err != nil {
		return fail(err)
	}
	if err := s.WaitReady(ctx, p); err != nil {
		return fail(err)
	}
	db, err := s.DB()
	if err != nil {
		return fail(err)
	}
	m.DB = db
	return m, nil
}

// Stop stops the server (SIGKILL after 10 s) and removes its directory.
func (m *MariaDB) Stop() {
	if m.DB != nil {
		m.DB.Close()
	}
	if m.Server != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		if err := m.Server.Stop(ctx, 10*time.Second); err != nil {
			fmt.Fprintf(os.Stderr, "testbin: stop %s: %v (left in %s)\n", m.Server.Name, err, m.dir)
			return
		}
	}
	os.RemoveAll(m.dir)
}

func chownTree(dir, owner string) error {
	u, err := user.Lookup(owner)
	if err != nil {
		return err
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	return filepath.Walk(dir, func(p string, _ os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		return os.Chown(p, uid, gid)
	})
}
