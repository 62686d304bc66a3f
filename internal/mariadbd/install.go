package mariadbd

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
)

// ErrInstalled means the datadir already holds system tables.
var ErrInstalled = errors.New("datadir already installed")

// Installed reports whether the datadir holds the mysql system schema.
func (s *Server) Installed() bool {
	fi, err := os.Stat(filepath.Join(s.DataDir, "mysql"))
	return err == nil && fi.IsDir()
}

// Install creates the system tables with mariadb-install-db. Root logs in
// through unix_socket and has no password; no test database is created.
//
// When this process is root, the defaults file must name user=mysql and
// Dir, DataDir and the tmpdir must already belong to mysql: install-db
// then runs the server as mysql, and fails (sometimes silently) on files it
// cannot write. That is why success is judged by the datadir, not only by
// the exit status.
func (s *Server) Install(ctx context.Context) error {
	bin, err := s.installDB()
	if err != nil {
		return err
	}
	if s.Installed() {
		return fmt.Errorf("install %s in %q: %w", s.Name, s.DataDir, ErrInstalled)
	}
	args := []string{
		"--defaults-file=" + s.DefaultsFile,
		"--auth-root-authentication-method=socket",
		"--skip-test-db",
	}
	if os.Geteuid() != 0 {
		// install-db would take the socket account's name from $USER,
		// which may be unset; SocketUser is who will connect.
		args = append(args, "--auth-root-socket-user="+SocketUser())
	}
	log, err := os.OpenFile(s.InstallLog(), os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o640)
	if err != nil {
		return fmt.Errorf("install %s: open install log: %w", s.Name, err)
	}
	defer log.Close()
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Dir = s.Dir
	cmd.Stdout = log
	cmd.Stderr = log
	runErr := cmd.Run()
	if runErr == nil && !s.Installed() {
		runErr = fmt.Errorf("no %q after a successful exit", filepath.Join(s.DataDir, "mysql"))
	}
	if runErr != nil {
		return fmt.Errorf("install %s: %s: %w%s", s.Name, bin, runErr, tailBlock(s.InstallLog(), 0))
	}
	return nil
}

// removeIfExists removes path, ignoring its absence.
func removeIfExists(path string) error {
	if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	return nil
}
