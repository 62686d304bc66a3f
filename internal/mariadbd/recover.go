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

// GvwstatePath is where Galera saves the last Primary view (pc.recovery).
func (s *Server) GvwstatePath() string { return filepath.Join(s.DataDir, "gvwstate.dat") }

// Gvwstate reads the server's gvwstate.dat. A missing file (the node left
// gracefully, or was never in a Primary component) wraps fs.ErrNotExist.
func (s *Server) Gvwstate() (galera.Gvwstate, error) {
	b, err := os.ReadFile(s.GvwstatePath())
	if err != nil {
		return galera.Gvwstate{}, fmt.Errorf("read gvwstate of %s: %w", s.Name, err)
	}
	g, err := galera.ParseGvwstate(b)
	if err != nil {
		return galera.Gvwstate{}, fmt.Errorf("read gvwstate of %s: %w", s.Name, err)
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
	if err := s.writeGrastate(next, owner); err != nil {
		return fmt.Errorf("prepare %s to bootstrap: %w", s.Name, err)
	}
	return nil
}

// ClearBootstrap sets safe_to_bootstrap back to 0 in grastate.dat, after a
// bootstrap start failed: left at 1, a later plain start of this node
// could form a second Primary component.
func (s *Server) ClearBootstrap() error {
	cur, err := os.ReadFile(s.GrastatePath())
	if errors.Is(err, fs.ErrNotExist) {
		return nil // nothing marks it safe
	}
	if err != nil {
		return fmt.Errorf("clear safe_to_bootstrap on %s: %w", s.Name, err)
	}
	next, err := galera.ClearBootstrapGrastate(cur)
	if err == nil {
		err = s.writeGrastate(next, s.GrastatePath())
	}
	if err != nil {
		return fmt.Errorf("clear safe_to_bootstrap on %s: %w", s.Name, err)
	}
	return nil
}

// writeGrastate replaces grastate.dat atomically with next, owned like
// owner (the old file, or the datadir), since the server running as mysql
// rewrites it later.
func (s *Server) writeGrastate(next []byte, owner string) error {
	path := s.GrastatePath()
	fi, err := os.Stat(owner)
	if err != nil {
		return err
	}
	tmp, err := os.CreateTemp(s.DataDir, ".grastate-*")
	if err != nil {
		return err
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
		err = os.Rename(tmp.Name(), path)
	}
	if err != nil {
		return fmt.Errorf("write %q: %w", path, err)
	}
	return nil
}
