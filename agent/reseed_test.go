package agent

import (
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestSeedPositionPrefersTheReplicaPosition(t *testing.T) {
	files := map[string][]byte{
		slaveInfoFile:  []byte("SET GLOBAL gtid_slave_pos = '0-1-42';\nCHANGE MASTER TO master_use_gtid = slave_pos\n"),
		binlogInfoFile: []byte("binlog.000003\t1234\t0-1-42\n"),
	}
	slave, binlog, err := seedPosition(files)
	if err != nil || slave != "0-1-42" || binlog != "0-1-42" {
		t.Fatalf("got %q %q %v", slave, binlog, err)
	}
	// Several domains, spaced as the tool may write them.
	files[slaveInfoFile] = []byte("SET GLOBAL gtid_slave_pos = '0-1-42, 1-2-7';")
	if slave, _, err := seedPosition(files); err != nil || slave != "0-1-42,1-2-7" {
		t.Errorf("two domains: %q %v", slave, err)
	}
	// A primary's backup has no slave info: its binlog position it is.
	delete(files, slaveInfoFile)
	if slave, _, err := seedPosition(files); err != nil || slave != "0-1-42" {
		t.Errorf("no slave info: %q %v", slave, err)
	}
	if _, _, err := seedPosition(map[string][]byte{}); err == nil || !strings.Contains(err.Error(), "no GTID position") {
		t.Errorf("no position files: %v", err)
	}
	// Anything but a position is refused: it is written into a statement.
	if _, _, err := seedPosition(map[string][]byte{binlogInfoFile: []byte("binlog.000001 4 0-1-1';DROP")}); err == nil {
		t.Error("a quote in the position: want an error")
	}
	if _, _, err := seedPosition(map[string][]byte{slaveInfoFile: []byte("SET GLOBAL gtid_slave_pos = '0-1-1 2';")}); err == nil {
		t.Error("a position with a space inside: want an error")
	}
	if gtidPosition.MatchString("0-1-1'; DROP") || !gtidPosition.MatchString("0-1-1,2-3-4") {
		t.Error("gtidPosition")
	}
}

// serveReplica runs an agent for a stopped replication server whose
// datadir holds one file, with a replication account unless noAccount.
func serveReplica(t *testing.T, noAccount bool) (*Client, string, string) {
	t.Helper()
	data := filepath.Join(t.TempDir(), "data")
	if err := os.MkdirAll(data, 0o750); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(data, "ibdata1"), []byte("old data"), 0o640); err != nil {
		t.Fatal(err)
	}
	dir := writeAgentFiles(t, "datadir="+data+"\nsocket=/nonexistent/mysqld.sock\npid-file=/nonexistent/mysqld.pid\n")
	extra := "  galera: false\n"
	if !noAccount {
		if err := os.WriteFile(filepath.Join(dir, "repl.pass"), []byte("s3cret\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		extra += "replication: {user: repl, password_file: repl.pass}\n"
	}
	cfg, err := Load(writeAgentConfig(t, dir, goodAgent+extra))
	if err != nil {
		t.Fatal(err)
	}
	_, c, base := serve(t, cfg, Options{})
	return c, base, data
}

func TestReseedRefusalsLeaveTheDatadirAlone(t *testing.T) {
	src := ReseedRequest{SourceHost: "127.0.0.1", SourcePort: 3306}
	_, c, _ := serveStopped(t, "")
	if _, err := c.Reseed(t.Context(), src, strings.NewReader("x")); !hasStatus(err, http.StatusBadRequest) || !strings.Contains(err.Error(), "Galera") {
		t.Errorf("reseed of a Galera node: %v, want 400", err)
	}
	c, _, _ = serveReplica(t, true)
	if _, err := c.Reseed(t.Context(), src, strings.NewReader("x")); !IsConflict(err) || !strings.Contains(err.Error(), "replication account") {
		t.Errorf("reseed without a replication account: %v, want 409", err)
	}
	c, base, data := serveReplica(t, false)
	if code, body := call(t, "POST", base+reseedPath+"?source_host=h&source_port=x", "Bearer "+testToken, ""); code != http.StatusBadRequest || !strings.Contains(body, "source_port") {
		t.Errorf("a bad port: %d %s", code, body)
	}
	// A stream that is not one fails in mbstream; the old datadir stays
	// as it was and nothing is left beside it.
	_, err := c.Reseed(t.Context(), src, strings.NewReader(strings.Repeat("not an xbstream ", 1<<16)))
	if err == nil || !strings.Contains(err.Error(), "receive the stream") {
		t.Fatalf("reseed from garbage: %v", err)
	}
	if b, err := os.ReadFile(filepath.Join(data, "ibdata1")); err != nil || string(b) != "old data" {
		t.Errorf("the datadir changed: %q %v", b, err)
	}
	if left, _ := filepath.Glob(data + ".*"); len(left) != 0 {
		t.Errorf("left beside the datadir: %v", left)
	}
	// A stopped server is no donor.
	if _, err := c.SeedStream(t.Context(), SeedStreamRequest{}); !IsConflict(err) || !strings.Contains(err.Error(), "seed stream refused") {
		t.Errorf("seed stream from a stopped server: %v, want 409", err)
	}
}

func TestSeedReaderNeedsTheTrailer(t *testing.T) {
	for _, tt := range []struct{ trailer, want string }{
		{"ok", ""},
		{"", "cut short"},
		{"failed: mariadb-backup: exit status 1", "exit status 1"},
	} {
		hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("Trailer", SeedStatusTrailer)
			w.WriteHeader(http.StatusOK)
			io.WriteString(w, "XBSTCK01 and so on")
			if tt.trailer != "" {
				w.Header().Set(SeedStatusTrailer, tt.trailer)
			}
		}))
		s, err := NewClient(hs.URL, "t", nil).SeedStream(t.Context(), SeedStreamRequest{})
		if err != nil {
			t.Fatal(err)
		}
		b, err := io.ReadAll(s)
		s.Close()
		hs.Close()
		switch {
		case string(b) != "XBSTCK01 and so on":
			t.Errorf("trailer %q: read %q", tt.trailer, b)
		case tt.want == "" && err != nil:
			t.Errorf("trailer ok: %v", err)
		case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)):
			t.Errorf("trailer %q: %v, want an error saying %q", tt.trailer, err, tt.want)
		}
	}
}
