package mariadbd

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/nines-project/nines/galera"
)

// ErrRunning means the server is already running.
var ErrRunning = errors.New("already running")

// ErrExited means the server process ended while it was being waited for.
var ErrExited = errors.New("server exited")

// StartOptions says how to start a server.
type StartOptions struct {
	// NewCluster bootstraps a new Primary component (--wsrep-new-cluster).
	NewCluster bool
	// Position, when set, is passed as --wsrep-start-position. Galera
	// servers get what Recover returned; servers without wsrep get nil.
	Position *galera.Position
	// Args are extra mariadbd options, placed after the defaults file.
	Args []string
}

// Process is a server started by Start. Its exit is noticed at once, so a
// wait fails when the server dies instead of running into its timeout.
type Process struct {
	Pid int
	// LogOffset is the error log's size before the start, so error
	// messages can quote what this start logged and nothing older.
	LogOffset int64

	done chan struct{}
	err  error
}

// Done is closed when the process has exited. It is nil (never ready) for
// a nil Process, so waits on servers started elsewhere simply never see an
// exit.
func (p *Process) Done() <-chan struct{} {
	if p == nil {
		return nil
	}
	return p.done
}

// Err is the exit status; valid after Done is closed.
func (p *Process) Err() error {
	<-p.done
	return p.err
}

// Start runs mariadbd detached: in its own session, with no terminal, and
// with its output in OutputLog, so it outlives the calling process and a
// Ctrl-C on the caller's terminal does not reach it. The caller waits for
// readiness separately (WaitSynced, Wait).
func (s *Server) Start(opts StartOptions) (*Process, error) {
	bin, err := s.mariadbd()
	if err != nil {
		return nil, err
	}
	pid, err := s.Pid()
	if err != nil {
		return nil, err
	}
	if pid != 0 {
		return nil, fmt.Errorf("start %s: pid %d: %w", s.Name, pid, ErrRunning)
	}
	args := []string{"--defaults-file=" + s.DefaultsFile}
	if opts.NewCluster {
		args = append(args, "--wsrep-new-cluster")
	}
	if opts.Position != nil {
		args = append(args, "--wsrep-start-position="+opts.Position.String())
	}
	args = append(args, opts.Args...)

	out, err := os.OpenFile(s.OutputLog(), os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o640)
	if err != nil {
		return nil, fmt.Errorf("start %s: open output log: %w", s.Name, err)
	}
	defer out.Close()
	fmt.Fprintf(out, "--- %s %s\n", time.Now().Format(time.RFC3339), strings.Join(append([]string{bin}, args...), " "))

	cmd := exec.Command(bin, args...)
	cmd.Dir = s.Dir
	cmd.Stdout = out
	cmd.Stderr = out
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	offset := fileSize(s.ErrorLog)
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", s.Name, err)
	}
	p := &Process{Pid: cmd.Process.Pid, LogOffset: offset, done: make(chan struct{})}
	// Reaping keeps an exited server from lingering as a zombie of this
	// process, which would look alive to kill(pid, 0).
	go func() {
		p.err = cmd.Wait()
		if p.err == nil {
			p.err = errors.New("exit status 0")
		}
		close(p.done)
	}()
	return p, nil
}

// Pid returns the pid of the running server, or 0 when it is not running.
// The pid file alone is not trusted: a server killed with -9 leaves it
// behind and the pid may since belong to another process, so the process
// must also be a live mariadbd started with this server's defaults file.
func (s *Server) Pid() (int, error) {
	b, err := os.ReadFile(s.PidFile)
	if errors.Is(err, fs.ErrNotExist) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("read pid file of %s: %w", s.Name, err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || pid <= 0 {
		// A server writes its pid file early but not atomically; an empty
		// or torn file belongs to no process we could signal.
		return 0, nil
	}
	if !s.Owns(pid) {
		return 0, nil
	}
	return pid, nil
}

// Owns reports whether pid is a live (not zombie) mariadbd or mysqld
// started with this server's defaults file.
func (s *Server) Owns(pid int) bool {
	argv, ok := ProcessArgs(pid)
	if !ok {
		return false
	}
	switch filepath.Base(argv[0]) {
	case "mariadbd", "mysqld":
	default:
		return false
	}
	want := "--defaults-file=" + s.DefaultsFile
	for _, a := range argv[1:] {
		if a == want {
			return true
		}
	}
	return false
}

// ProcessArgs returns the command line of a live process. It is false for
// a pid that does not exist or is a zombie (whose cmdline is empty), so
// callers that identify a process by its arguments never mistake an exited
// one, or an unrelated process that reused a stale pid, for theirs.
func ProcessArgs(pid int) ([]string, bool) {
	if pid <= 0 {
		return nil, false
	}
	if err := syscall.Kill(pid, 0); err != nil && !errors.Is(err, syscall.EPERM) {
		return nil, false
	}
	b, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "cmdline"))
	if err != nil || len(b) == 0 {
		return nil, false
	}
	return strings.Split(string(bytes.TrimRight(b, "\x00")), "\x00"), true
}

// Stop stops the running server, if any; see StopPID.
func (s *Server) Stop(ctx context.Context, grace time.Duration) error {
	pid, err := s.Pid()
	if err != nil || pid == 0 {
		return err
	}
	_, err = s.StopPID(ctx, pid, grace)
	return err
}

// StopPID sends SIGTERM to the server with pid, waits up to grace for it
// to exit, then sends SIGKILL; killed reports that it had to. A graceful
// stop lets Galera save the real seqno in grastate.dat; SIGKILL is the
// fallback for a hung server (or a donor stuck in a state transfer). Before
// each signal the pid is checked again to still be this server.
func (s *Server) StopPID(ctx context.Context, pid int, grace time.Duration) (killed bool, err error) {
	if !s.Owns(pid) {
		return false, nil
	}
	if err := syscall.Kill(pid, syscall.SIGTERM); err != nil {
		if errors.Is(err, syscall.ESRCH) {
			return false, nil
		}
		return false, fmt.Errorf("stop %s: SIGTERM pid %d: %w", s.Name, pid, err)
	}
	if s.waitGone(ctx, pid, grace) {
		return false, nil
	}
	if ctx.Err() != nil {
		return false, fmt.Errorf("stop %s: wait for pid %d to exit: %w", s.Name, pid, ctx.Err())
	}
	if s.Owns(pid) {
		if err := syscall.Kill(pid, syscall.SIGKILL); err != nil && !errors.Is(err, syscall.ESRCH) {
			return false, fmt.Errorf("stop %s: SIGKILL pid %d after %v: %w", s.Name, pid, grace, err)
		}
	}
	if !s.waitGone(ctx, pid, 10*time.Second) {
		return true, fmt.Errorf("stop %s: pid %d still alive after SIGKILL", s.Name, pid)
	}
	return true, nil
}

func (s *Server) waitGone(ctx context.Context, pid int, limit time.Duration) bool {
	deadline := time.NewTimer(limit)
	defer deadline.Stop()
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	// Owns alone is not enough: an exiting process's cmdline reads empty
	// as soon as its memory is released, a moment before its files (the
	// listening socket, the datadir lock) are closed. Wait for the exit
	// itself: the pid gone or a zombie.
	for s.Owns(pid) || exiting(pid) {
		select {
		case <-ctx.Done():
			return false
		case <-deadline.C:
			return false
		case <-tick.C:
		}
	}
	return true
}

// exiting reports whether pid exists and is not yet a zombie: it has not
// finished exiting.
func exiting(pid int) bool {
	b, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "stat"))
	if err != nil {
		return false
	}
	// The state follows the command name, which is in parentheses.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 || i+2 >= len(b) {
		return false
	}
	return b[i+2] != 'Z' && b[i+2] != 'X'
}

func fileSize(path string) int64 {
	fi, err := os.Stat(path)
	if err != nil {
		return 0
	}
	return fi.Size()
}
