// Package mariadbd controls one MariaDB server on the local host: installing
// its system tables, recovering its Galera position, starting it detached,
// finding and stopping it by its pid file, and waiting for it over its unix
// socket.
//
// A Server is identified by its defaults file: every mariadbd and
// mariadb-install-db call passes --defaults-file first, so /etc/mysql is
// never read and two servers on one host never share settings by accident.
// The package does not write defaults files; the caller (the sandbox, the
// host agent) owns the layout and tells the Server where things are.
//
// Galera servers are always started the way MariaDB's galera_recovery does
// it: `--wsrep-recover` first, then `--wsrep-start-position` with what it
// printed. A plain restart after a crash would otherwise start from an
// unknown position and need a full state transfer, or, after a whole-cluster
// crash, form a Primary component that has forgotten its history.
package mariadbd

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
)

// Server is one local mariadbd. All paths must be absolute and match what
// the defaults file sets; Dir must be writable by the OS user the server
// runs as, since recovery runs write their log there.
type Server struct {
	// Name is how messages and errors refer to the server ("n2").
	Name         string
	DefaultsFile string
	// Dir holds the files this package writes next to the server:
	// mariadbd.out (stdout and stderr of detached servers), install.log and
	// recover.log.
	Dir      string
	DataDir  string
	Socket   string
	PidFile  string
	ErrorLog string

	// Mariadbd and InstallDB are the programs to run; empty means the one
	// found in PATH or in Debian's /usr/sbin and /usr/bin.
	Mariadbd  string
	InstallDB string
}

// OutputLog is where a detached server's stdout and stderr go. Most of what
// a server says goes to ErrorLog; this catches what it prints before the
// error log is open.
func (s *Server) OutputLog() string { return filepath.Join(s.Dir, "mariadbd.out") }

// RecoverLog is the error log of the last --wsrep-recover run.
func (s *Server) RecoverLog() string { return filepath.Join(s.Dir, "recover.log") }

// InstallLog is the output of mariadb-install-db.
func (s *Server) InstallLog() string { return filepath.Join(s.Dir, "install.log") }

// GrastatePath is the Galera provider's saved state file.
func (s *Server) GrastatePath() string { return filepath.Join(s.DataDir, "grastate.dat") }

// ErrNotFound means a MariaDB program is not installed.
var ErrNotFound = errors.New("not installed")

func (s *Server) mariadbd() (string, error) {
	return findProgram(s.Mariadbd, "mariadbd", "/usr/sbin/mariadbd", "mariadb-server")
}

func (s *Server) installDB() (string, error) {
	return findProgram(s.InstallDB, "mariadb-install-db", "/usr/bin/mariadb-install-db", "mariadb-server")
}

// findProgram looks in PATH first and then at Debian's location, because
// /usr/sbin is not in a normal user's PATH.
func findProgram(explicit, name, debianPath, pkg string) (string, error) {
	if explicit != "" {
		return explicit, nil
	}
	if p, err := exec.LookPath(name); err == nil {
		return p, nil
	}
	if _, err := os.Stat(debianPath); err == nil {
		return debianPath, nil
	}
	return "", fmt.Errorf("find %s: not in PATH nor at %q (install %s): %w", name, debianPath, pkg, ErrNotFound)
}

// CheckInstalled reports, as an error naming the package to install, the
// first program a server needs that is missing.
func (s *Server) CheckInstalled() error {
	if _, err := s.mariadbd(); err != nil {
		return err
	}
	_, err := s.installDB()
	return err
}

// SocketUser is the account the package connects as over the unix socket:
// the OS user running this process, since mariadb-install-db gives root and
// the installing user unix_socket authentication and no password.
func SocketUser() string {
	if os.Geteuid() == 0 {
		return "root"
	}
	if u, err := user.Current(); err == nil {
		return u.Username
	}
	return "root"
}
