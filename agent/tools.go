package agent

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/nines-project/nines/internal/mariadbd"
)

// tool is a MariaDB program the backups run, with the Debian package
// that brings it.
type tool struct{ name, pkg string }

var (
	toolBackup    = tool{"mariadb-backup", "mariadb-backup"}
	toolMbstream  = tool{"mbstream", "mariadb-backup"}
	toolDump      = tool{"mariadb-dump", "mariadb-client"}
	toolClient    = tool{"mariadb", "mariadb-client"}
	toolMariadbd  = tool{"mariadbd", "mariadb-server"}
	toolInstallDB = tool{"mariadb-install-db", "mariadb-server"}
)

// find looks in PATH, then in /usr/bin and /usr/sbin (not in a normal
// user's PATH). A missing program is an error naming the package, so a
// host without it fails loudly instead of skipping a step.
func (t tool) find() (string, error) {
	if p, err := exec.LookPath(t.name); err == nil {
		return p, nil
	}
	for _, d := range []string{"/usr/bin", "/usr/sbin"} {
		p := filepath.Join(d, t.name)
		if fi, err := os.Stat(p); err == nil && !fi.IsDir() {
			return p, nil
		}
	}
	return "", fmt.Errorf("find %s: not in PATH nor in /usr/bin, /usr/sbin (install %s): %w", t.name, t.pkg, mariadbd.ErrNotFound)
}

func findTools(tools ...tool) (map[tool]string, error) {
	paths := map[tool]string{}
	for _, t := range tools {
		p, err := t.find()
		if err != nil {
			return nil, err
		}
		paths[t] = p
	}
	return paths, nil
}

// toolTailLines is how many lines of a tool's stderr an error quotes.
const toolTailLines = 20

// stderrTail keeps the end of a tool's stderr for error messages and calls
// onLine, if set, with each complete line as it arrives. It is safe for
// the one writer exec gives it plus readers of Tail.
type stderrTail struct {
	onLine func(line string)

	mu      sync.Mutex
	partial []byte
	lines   []string
}

func (s *stderrTail) Write(p []byte) (int, error) {
	s.mu.Lock()
	s.partial = append(s.partial, p...)
	var complete []string
	for {
		i := bytes.IndexByte(s.partial, '\n')
		if i < 0 {
			break
		}
		line := string(bytes.TrimRight(s.partial[:i], "\r"))
		s.partial = s.partial[i+1:]
		complete = append(complete, line)
		s.lines = append(s.lines, line)
		if len(s.lines) > 2*toolTailLines {
			s.lines = append(s.lines[:0], s.lines[len(s.lines)-toolTailLines:]...)
		}
	}
	if len(s.partial) > 64<<10 {
		s.partial = s.partial[len(s.partial)-(64<<10):]
	}
	s.mu.Unlock()
	if s.onLine != nil {
		for _, l := range complete {
			s.onLine(l)
		}
	}
	return len(p), nil
}

// Tail is the last lines written.
func (s *stderrTail) Tail() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	lines := s.lines
	if len(s.partial) > 0 {
		lines = append(lines[:len(lines):len(lines)], string(s.partial))
	}
	if len(lines) > toolTailLines {
		lines = lines[len(lines)-toolTailLines:]
	}
	return strings.TrimSpace(strings.Join(lines, "\n"))
}

// stepError is a failed step of a backup or restore: which step, the
// error, and the end of the tool's stderr, where the reason usually is.
type stepError struct {
	Step string
	Err  error
	Tail string
}

func (e *stepError) Error() string {
	if e.Tail == "" {
		return fmt.Sprintf("%s: %v", e.Step, e.Err)
	}
	return fmt.Sprintf("%s: %v\n--- last lines of stderr ---\n%s", e.Step, e.Err, e.Tail)
}

func (e *stepError) Unwrap() error { return e.Err }

// command builds a tool run that ctx kills, with stdin, stdout and
// stderr as given.
func command(ctx context.Context, bin string, args []string, stdin io.Reader, stdout io.Writer, stderr *stderrTail) *exec.Cmd {
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = stdin, stdout, stderr
	// After a kill, do not wait long for output copying to finish.
	cmd.WaitDelay = 5 * time.Second
	return cmd
}

// runStep runs cmd to its end; a failure is a *stepError.
func runStep(step string, cmd *exec.Cmd, stderr *stderrTail) error {
	if err := cmd.Run(); err != nil {
		return &stepError{Step: step, Err: err, Tail: stderr.Tail()}
	}
	return nil
}

// hashedFile is a file being written with its size and SHA-256 kept as
// it goes, so a backup is read once.
type hashedFile struct {
	f    *os.File
	h    hash.Hash
	size int64
}

func createHashed(path string) (*hashedFile, error) {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o640)
	if err != nil {
		return nil, err
	}
	return &hashedFile{f: f, h: sha256.New()}, nil
}

func (w *hashedFile) Write(p []byte) (int, error) {
	n, err := w.f.Write(p)
	w.h.Write(p[:n])
	w.size += int64(n)
	return n, err
}

// finish syncs and closes the file and describes it.
func (w *hashedFile) finish() (BackupFile, error) {
	err := w.f.Sync()
	if cerr := w.f.Close(); err == nil {
		err = cerr
	}
	return BackupFile{Name: filepath.Base(w.f.Name()), Size: w.size, SHA256: hex.EncodeToString(w.h.Sum(nil))}, err
}

// abort closes the file after a failure; the caller removes it.
func (w *hashedFile) abort() { _ = w.f.Close() }

// openNoFollow opens a file of a backup for reading, refusing a symlink:
// backups lie in directories others may write, and the agent reads as
// root, so a planted link must not make it read (or quote) another file.
func openNoFollow(path string) (*os.File, error) {
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NOFOLLOW, 0)
	if errors.Is(err, syscall.ELOOP) {
		return nil, fmt.Errorf("%s is a symlink: not a file of a backup", path)
	}
	return f, err
}

// readNoFollow is os.ReadFile with openNoFollow.
func readNoFollow(path string) ([]byte, error) {
	f, err := openNoFollow(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return io.ReadAll(f)
}

// fileSHA256 hashes a file.
func fileSHA256(ctx context.Context, path string) (string, int64, error) {
	f, err := openNoFollow(path)
	if err != nil {
		return "", 0, err
	}
	defer f.Close()
	h := sha256.New()
	n, err := io.Copy(h, ctxReader{ctx, f})
	if err != nil {
		return "", n, err
	}
	return hex.EncodeToString(h.Sum(nil)), n, nil
}

// ctxReader stops a long copy when ctx ends.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}

// joinErr adds the error of a cleanup to the error of the work, if any.
func joinErr(err, cleanup error) error {
	if cleanup == nil {
		return err
	}
	if err == nil {
		return cleanup
	}
	return errors.Join(err, cleanup)
}
