package mariadbd

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/nines-project/nines/galera"
)

// fakeServerEnv makes the test binary act as a server process: started as
// argv[0] "mariadbd" with a --defaults-file argument, it looks like one in
// /proc without MariaDB being involved.
const fakeServerEnv = "MARIADBD_TEST_FAKE_SERVER"

func TestMain(m *testing.M) {
	switch os.Getenv(fakeServerEnv) {
	case "":
		os.Exit(m.Run())
	case "ignore-term":
		signal.Ignore(syscall.SIGTERM)
	}
	time.Sleep(time.Minute)
	os.Exit(0)
}

// startFake runs the test binary as argv0 with args and returns its pid;
// the process is killed and reaped when the test ends.
func startFake(t *testing.T, mode, argv0 string, args ...string) int {
	t.Helper()
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmd := &exec.Cmd{Path: self, Args: append([]string{argv0}, args...), Env: append(os.Environ(), fakeServerEnv+"="+mode)}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-done
	})
	// Let the signal disposition settle before a test sends SIGTERM.
	time.Sleep(100 * time.Millisecond)
	return cmd.Process.Pid
}

func testServer(t *testing.T) *Server {
	t.Helper()
	dir := t.TempDir()
	return &Server{
		Name:         "n1",
		Dir:          dir,
		DefaultsFile: filepath.Join(dir, "my.cnf"),
		DataDir:      filepath.Join(dir, "data"),
		Socket:       filepath.Join(dir, "mysqld.sock"),
		PidFile:      filepath.Join(dir, "mysqld.pid"),
		ErrorLog:     filepath.Join(dir, "error.log"),
	}
}

func writePid(t *testing.T, s *Server, content string) {
	t.Helper()
	if err := os.WriteFile(s.PidFile, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestPidTrustsOnlyThisServer(t *testing.T) {
	s := testServer(t)
	if pid, err := s.Pid(); pid != 0 || err != nil {
		t.Fatalf("no pid file: %d, %v", pid, err)
	}
	for _, garbage := range []string{"", "abc", "-5", "0"} {
		writePid(t, s, garbage)
		if pid, err := s.Pid(); pid != 0 || err != nil {
			t.Fatalf("pid file %q: %d, %v", garbage, pid, err)
		}
	}

	// A stale pid file naming some other live process.
	other := startFake(t, "sleep", "sleep", "60")
	writePid(t, s, strconv.Itoa(other)+"\n")
	if pid, _ := s.Pid(); pid != 0 {
		t.Fatalf("stale pid file: Pid() = %d, want 0 (pid %d is not a mariadbd)", pid, other)
	}
	if err := s.Stop(context.Background(), time.Second); err != nil {
		t.Fatal(err)
	}
	if syscall.Kill(other, 0) != nil {
		t.Fatal("Stop signalled the unrelated process of a stale pid file")
	}

	// A mariadbd, but another server's.
	foreign := startFake(t, "sleep", "mariadbd", "--defaults-file=/elsewhere/my.cnf")
	writePid(t, s, strconv.Itoa(foreign))
	if pid, _ := s.Pid(); pid != 0 {
		t.Fatalf("another server's pid: Pid() = %d, want 0", pid)
	}

	mine := startFake(t, "sleep", "/usr/sbin/mariadbd", "--defaults-file="+s.DefaultsFile, "--wsrep-new-cluster")
	writePid(t, s, strconv.Itoa(mine))
	if pid, err := s.Pid(); pid != mine || err != nil {
		t.Fatalf("own server: Pid() = %d, %v, want %d", pid, err, mine)
	}
}

func TestStopEscalatesToSIGKILL(t *testing.T) {
	for _, tt := range []struct {
		mode    string
		atLeast time.Duration
	}{
		{mode: "sleep"}, // dies on SIGTERM
		{mode: "ignore-term", atLeast: 300 * time.Millisecond}, // needs SIGKILL after the grace
	} {
		t.Run(tt.mode, func(t *testing.T) {
			s := testServer(t)
			pid := startFake(t, tt.mode, "mariadbd", "--defaults-file="+s.DefaultsFile)
			writePid(t, s, strconv.Itoa(pid))
			start := time.Now()
			if err := s.Stop(context.Background(), 300*time.Millisecond); err != nil {
				t.Fatal(err)
			}
			if took := time.Since(start); took < tt.atLeast {
				t.Fatalf("stopped after %v, expected the %v grace first", took, tt.atLeast)
			}
			if s.Owns(pid) {
				t.Fatal("still running after Stop")
			}
		})
	}
}

func TestPrepareBootstrapKeepsHistory(t *testing.T) {
	s := testServer(t)
	if err := os.MkdirAll(s.DataDir, 0o755); err != nil {
		t.Fatal(err)
	}
	uuid := "3651e510-e928-11f1-86ba-aac8c65e26fb"
	crashed := "# GALERA saved state\nversion: 2.1\nuuid:    " + uuid + "\nseqno:   -1\nsafe_to_bootstrap: 0\n"
	if err := os.WriteFile(s.GrastatePath(), []byte(crashed), 0o660); err != nil {
		t.Fatal(err)
	}
	if err := s.PrepareBootstrap(galera.Position{UUID: uuid, Seqno: 22}); err != nil {
		t.Fatal(err)
	}
	g, err := s.Grastate()
	if err != nil {
		t.Fatal(err)
	}
	if g.UUID != uuid || g.Seqno != 22 || !g.SafeToBootstrap {
		t.Fatalf("grastate after edit: %+v", g)
	}
	if err := s.PrepareBootstrap(galera.Position{UUID: "00000000-0000-0000-0000-000000000001", Seqno: 30}); err == nil {
		t.Fatal("accepted a position of another history")
	}
	entries, _ := os.ReadDir(s.DataDir)
	if len(entries) != 1 {
		t.Fatalf("datadir holds %d files, want only grastate.dat (temp files left behind?)", len(entries))
	}
}

func TestLogTailStartsAtOffset(t *testing.T) {
	s := testServer(t)
	old := "old line 1\nold line 2\n"
	if err := os.WriteFile(s.ErrorLog, []byte(old+"new line\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if got := s.LogTail(int64(len(old))); got != "new line" {
		t.Fatalf("tail from offset = %q", got)
	}
	var b strings.Builder
	for i := range 50 {
		b.WriteString("line " + strconv.Itoa(i) + "\n")
	}
	if err := os.WriteFile(s.ErrorLog, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	got := strings.Split(s.LogTail(0), "\n")
	if len(got) != tailLines || got[len(got)-1] != "line 49" {
		t.Fatalf("tail of 50 lines: %q", got)
	}
	// An offset past the end (log truncated since) reads the file.
	if s.LogTail(1<<20) == "" {
		t.Fatal("truncated log gave an empty tail")
	}
}

func TestWaitFailsFastWhenServerExits(t *testing.T) {
	s := testServer(t)
	if err := os.WriteFile(s.ErrorLog, []byte("[ERROR] Aborting\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	p := &Process{Pid: 1, done: make(chan struct{}), err: errors.New("exit status 1")}
	close(p.done)
	start := time.Now()
	err := s.WaitSynced(context.Background(), p)
	var we *WaitError
	if !errors.As(err, &we) || !errors.Is(err, ErrExited) {
		t.Fatalf("err = %v, want a *WaitError wrapping ErrExited", err)
	}
	if !strings.Contains(err.Error(), "[ERROR] Aborting") || !strings.Contains(err.Error(), "n1") {
		t.Fatalf("error lacks the node or its log: %v", err)
	}
	if time.Since(start) > 2*time.Second {
		t.Fatalf("took %v to notice the exit", time.Since(start))
	}
}
