package agent

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strings"
	"testing"
	"time"
)

// runStopped runs a stopped server's agent through Run on a free port,
// with opts, and returns its address.
func runStopped(t *testing.T, opts Options) string {
	t.Helper()
	dir := writeAgentFiles(t, "datadir="+t.TempDir()+"\nsocket=/nonexistent/mysqld.sock\npid-file=/nonexistent/mysqld.pid\n")
	cfg, err := Load(writeAgentConfig(t, dir, strings.Replace(goodAgent, "127.0.0.1:9105", "127.0.0.1:0", 1)))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	ready := make(chan string, 1)
	done := make(chan error, 1)
	opts.Logger = slog.New(slog.NewTextHandler(t.Output(), nil))
	opts.Ready = func(addr string) { ready <- addr }
	go func() { done <- Run(ctx, cfg, opts) }()
	t.Cleanup(func() { cancel(); <-done })
	select {
	case addr := <-ready:
		return addr
	case err := <-done:
		t.Fatalf("Run: %v", err)
	}
	return ""
}

// TestSlowClientCutOff: a client that sends its headers, then dribbles
// its body, is disconnected once the read timeout has passed.
func TestSlowClientCutOff(t *testing.T) {
	addr := runStopped(t, Options{readTimeout: time.Second})
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	fmt.Fprintf(conn, "POST /v1/stop HTTP/1.1\r\nHost: agent\r\nAuthorization: Bearer %s\r\nContent-Type: application/json\r\nContent-Length: 100000\r\n\r\n{", testToken)
	closed := make(chan time.Time, 1)
	go func() {
		_, _ = io.Copy(io.Discard, conn)
		closed <- time.Now()
	}()
	start := time.Now()
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case at := <-closed:
			if took := at.Sub(start); took > 3*time.Second {
				t.Errorf("disconnected after %v, want about 1 s", took)
			}
			return
		case <-tick.C:
			if time.Since(start) > 6*time.Second {
				t.Fatal("a dribbling client still connected after 6 s; the read timeout is 1 s")
			}
			_, _ = conn.Write([]byte(" "))
		}
	}
}

// TestOversizeBody: a body above maxBodyBytes is answered 413 before
// anything acts.
func TestOversizeBody(t *testing.T) {
	_, _, base := serveStopped(t, "")
	body := `{"grace_seconds": 1` + strings.Repeat(" ", maxBodyBytes) + `}`
	code, resp := call(t, "POST", base+"/v1/stop", "Bearer "+testToken, body)
	if code != 413 || !strings.Contains(resp, "larger than") {
		t.Errorf("oversize body: %d %s, want 413", code, resp)
	}
	code, resp = call(t, "POST", base+"/v1/stop", "Bearer "+testToken, `{}`)
	if code == 413 {
		t.Errorf("small body: %d %s", code, resp)
	}
}
