package mariadbd

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"

	"github.com/nines-project/nines/galera"
)

// Recover runs `mariadbd --wsrep-recover` and returns the position InnoDB
// committed last. The server must be stopped: recovery opens the datadir.
// It takes a fraction of a second. A fresh datadir gives the undefined
// position (all-zero UUID, seqno -1).
func (s *Server) Recover(ctx context.Context) (galera.Position, error) {
	bin, err := s.mariadbd()
	if err != nil {
		return galera.Position{}, err
	}
	pid, err := s.Pid()
	if err != nil {
		return galera.Position{}, err
	}
	if pid != 0 {
		return galera.Position{}, fmt.Errorf("recover %s: pid %d: %w", s.Name, pid, ErrRunning)
	}
	// The server appends to its log; a fresh file means the position read
	// below is this run's.
	if err := removeIfExists(s.RecoverLog()); err != nil {
		return galera.Position{}, fmt.Errorf("recover %s: %w", s.Name, err)
	}
	cmd := exec.CommandContext(ctx, bin, "--defaults-file="+s.DefaultsFile, "--wsrep-recover", "--log-error="+s.RecoverLog())
	cmd.Dir = s.Dir
	out, runErr := cmd.CombinedOutput()
	log, readErr := os.ReadFile(s.RecoverLog())
	if runErr != nil {
		return galera.Position{}, fmt.Errorf("recover %s: %s --wsrep-recover: %w\n%s%s", s.Name, bin, runErr, out, tailBlock(s.RecoverLog(), 0))
	}
	if readErr != nil {
		return galera.Position{}, fmt.Errorf("recover %s: read recovery log: %w", s.Name, readErr)
	}
	pos, err := galera.ParseRecoveredPosition(log)
	if err != nil {
		return galera.Position{}, fmt.Errorf("recover %s: %w%s", s.Name, err, tailBlock(s.RecoverLog(), 0))
	}
	return pos, nil
}

// Grastate reads the server's grastate.dat. A missing file (never started
// with wsrep) wraps fs.ErrNotExist.
func (s *Server) Grastate() (galera.Grastate, error) {
	b, err := os.ReadFile(s.GrastatePath())
	if err != nil {
		return galera.Grastate{}, fmt.Errorf("read grastate of %s: %w", s.Name, err)
	}
	g, err := galera.ParseGrastate(b)
	if err != nil {
		return galera.Grastate{}, fmt.Errorf("read grastate of %s: %w", s.Name, err)
	}
	return g, nil
}

// PrepareBootstrap edits grastate.dat so the server may bootstrap a new
// Primary component at pos, keeping the cluster's history (see
// galera.BootstrapGrastate for why seqno is set too). The file is replaced
// atomically and keeps its owner, since the server, running as mysql,
// rewrites it later.
func (s *Server) PrepareBootstrap(pos galera.Position) error {
	path := s.GrastatePath()
	cur, err := os.ReadFile(path)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("prepare %s to bootstrap: %w", s.Name, err)
	}
	next, err := galera.BootstrapGrastate(cur, pos)
	if err != nil {
		return fmt.Errorf("prepare %s to bootstrap: %w", s.Name, err)
	}
	owner := path
	if cur == nil {
		owner = s.DataDir
	}
	fi, err := os.Stat(owner)
	if err != nil {
		return fmt.Errorf("prepare %s to bootstrap: %w", s.Name, err)
	}
	tmp, err := os.CreateTemp(s.DataDir, ".grastate-*")
	if err != nil {
		return fmt.Errorf("prepare %s to bootstrap: %w", s.Name, err)
	}
	defer os.Remove(tmp.Name())
	_, err = tmp.Write(next)
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Chmod(tmp.Name(), 0o660)
	}
	if st, ok := fi.Sys().(*syscall.Stat_t); ok && err == nil && os.Geteuid() == 0 {
		err = os.Chown(tmp.Name(), int(st.Uid), int(st.Gid))
	}
	if err == nil {
		err = os.Rename(tmp.Name(), filepath.Join(s.DataDir, "grastate.dat"))
	}
	if err != nil {
		return fmt.Errorf("prepare %s to bootstrap: write %q: %w", s.Name, path, err)
	}
	return nil
}
