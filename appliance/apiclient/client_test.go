package apiclient

import (
	"context"
	"encoding/json"
	"encoding/pem"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nines-project/nines/appliance/config"
	"github.com/nines-project/nines/remediator"
)

const token = "0123456789abcdef"

// server is an appliance stand-in: h answers after the token was checked.
func server(t *testing.T, h http.HandlerFunc) *httptest.Server {
	t.Helper()
	s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer "+token {
			w.WriteHeader(http.StatusUnauthorized)
			_, _ = w.Write([]byte(`{"message":"Unauthorized"}`))
			return
		}
		h(w, r)
	}))
	t.Cleanup(s.Close)
	return s
}

func client(t *testing.T, base string, o Options) *Client {
	t.Helper()
	o.BaseURL, o.Token = base, token
	c, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestDecodesTheDataOfTheEnvelope(t *testing.T) {
	s := server(t, func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost || r.URL.Path != "/api/v1/jobs" || r.Header.Get("Content-Type") != "application/json" {
			t.Errorf("request: %s %s %q", r.Method, r.URL.Path, r.Header.Get("Content-Type"))
		}
		var req remediator.ManualRequest
		if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
			t.Errorf("request body: %v", err)
		}
		w.WriteHeader(http.StatusAccepted)
		_ = json.NewEncoder(w).Encode(map[string]any{"status": "success", "data": remediator.Job{ID: "j1", Cluster: req.Cluster, Runbook: req.Runbook}})
	})
	j, err := client(t, s.URL, Options{}).StartJob(context.Background(), remediator.ManualRequest{Cluster: "prod", Runbook: "galera-node-rejoin"})
	if err != nil {
		t.Fatal(err)
	}
	if j.ID != "j1" || j.Cluster != "prod" || j.Runbook != "galera-node-rejoin" {
		t.Errorf("job: %+v", j)
	}
}

// TestErrorEnvelope: an answer other than 2xx is an *Error naming the
// request, the status and the appliance's message, whatever its shape.
func TestErrorEnvelope(t *testing.T) {
	for _, tc := range []struct {
		name, body, ctype string
		code              int
		want              string
		wantType          string
	}{
		{"envelope", `{"status":"error","errorType":"conflict","error":"cluster prod is busy with job j7"}`, "application/json", 409,
			"POST /api/v1/jobs: 409 Conflict: conflict: cluster prod is busy with job j7", "conflict"},
		{"echo message", `{"message":"Not Found"}`, "application/json", 404,
			"POST /api/v1/jobs: 404 Not Found: Not Found", ""},
		{"plain text", "upstream exploded\n", "text/plain", 502,
			"POST /api/v1/jobs: 502 Bad Gateway: upstream exploded", ""},
		{"empty", "", "text/plain", 500,
			"POST /api/v1/jobs: 500 Internal Server Error: (empty answer)", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := server(t, func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", tc.ctype)
				w.WriteHeader(tc.code)
				_, _ = w.Write([]byte(tc.body))
			})
			_, err := client(t, s.URL, Options{}).StartJob(context.Background(), remediator.ManualRequest{Cluster: "prod"})
			var ae *Error
			if !errors.As(err, &ae) {
				t.Fatalf("error %v (%T): want an *Error", err, err)
			}
			if ae.Error() != tc.want || ae.Status != tc.code || ae.Type != tc.wantType {
				t.Errorf("error %q (status %d, type %q), want %q (%d, %q)", ae, ae.Status, ae.Type, tc.want, tc.code, tc.wantType)
			}
		})
	}
}

func TestWrongTokenIsAnError(t *testing.T) {
	s := server(t, func(w http.ResponseWriter, r *http.Request) { t.Error("handler reached without the token") })
	c, err := New(Options{BaseURL: s.URL, Token: "wrong"})
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.Jobs(context.Background(), "", 0)
	var ae *Error
	if !errors.As(err, &ae) || ae.Status != http.StatusUnauthorized || !strings.Contains(err.Error(), "401 Unauthorized: Unauthorized") {
		t.Errorf("wrong token: %v", err)
	}
	if strings.Contains(err.Error(), "wrong") {
		t.Errorf("the error shows the token: %v", err)
	}
}

// TestRefusedConnection: a CLI command run while nines is not running
// says so, with the address it tried, and never shows the token.
func TestRefusedConnection(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	_, err = client(t, "http://"+addr, Options{}).Jobs(context.Background(), "", 0)
	if err == nil || !strings.Contains(err.Error(), "GET /api/v1/jobs: nothing listens at http://"+addr+": is the appliance running") {
		t.Fatalf("call to a closed port: %v", err)
	}
	if !errors.Is(err, ErrNotRunning) {
		t.Errorf("errors.Is(%v, ErrNotRunning) = false", err)
	}
	if strings.Contains(err.Error(), token) {
		t.Errorf("the error shows the token: %v", err)
	}
}

// TestTimeouts: an appliance that does not answer costs the call its
// timeout, not forever; a report gets its own, longer one.
func TestTimeouts(t *testing.T) {
	release := make(chan struct{})
	s := server(t, func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/api/v1/reports/uptime" {
			time.Sleep(300 * time.Millisecond) // longer than Timeout, shorter than ReportTimeout
			_, _ = w.Write([]byte(`{"status":"success","data":{"cluster":"prod"}}`))
			return
		}
		<-release
	})
	defer close(release) // before s.Close, which waits for the handler
	c := client(t, s.URL, Options{Timeout: 100 * time.Millisecond, ReportTimeout: 5 * time.Second})
	start := time.Now()
	_, err := c.Jobs(context.Background(), "", 0)
	took := time.Since(start)
	if err == nil || !strings.Contains(err.Error(), "no answer within 100ms") || !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("hanging server: %v", err)
	}
	if took > 2*time.Second {
		t.Errorf("the call took %s with a 100ms timeout", took)
	}
	r, err := c.UptimeReport(context.Background(), ReportRequest{Cluster: "prod"})
	if err != nil || r.Cluster != "prod" {
		t.Errorf("a report slower than Timeout but within ReportTimeout: %v %+v", err, r)
	}
}

// TestConnectTimeout: a peer that accepts but never completes the TLS
// handshake is given up after the connect timeout.
func TestConnectTimeout(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			defer c.Close() // hold it open, say nothing
		}
	}()
	c := client(t, "https://"+ln.Addr().String(), Options{ConnectTimeout: 100 * time.Millisecond, Timeout: 10 * time.Second})
	start := time.Now()
	_, err = c.Jobs(context.Background(), "", 0)
	if err == nil || !strings.Contains(err.Error(), "handshake timeout") {
		t.Errorf("silent TLS peer: %v", err)
	}
	if took := time.Since(start); took > 5*time.Second {
		t.Errorf("gave up after %s with a 100ms connect timeout", took)
	}
}

// TestBodyLimit: an answer larger than the limit is an error, not a
// memory blow-up; one at the limit is read.
func TestBodyLimit(t *testing.T) {
	const limit = 1 << 10
	size := 0
	s := server(t, func(w http.ResponseWriter, r *http.Request) {
		_, _ = w.Write([]byte(strings.Repeat("x", size)))
	})
	c := client(t, s.URL, Options{MaxBody: limit})
	size = limit + 1
	_, err := c.Raw(context.Background(), http.MethodGet, "/api/v1/dashboards", nil)
	if !errors.Is(err, ErrTooLarge) || !strings.Contains(err.Error(), "more than 1024 bytes") {
		t.Errorf("answer of %d bytes: %v", size, err)
	}
	size = limit
	r, err := c.Raw(context.Background(), http.MethodGet, "/api/v1/dashboards", nil)
	if err != nil || len(r.Body) != limit {
		t.Errorf("answer of %d bytes: %v", size, err)
	}
}

func TestQuery(t *testing.T) {
	s := server(t, func(w http.ResponseWriter, r *http.Request) {
		if got := r.URL.Query().Get("query"); got != `up{cluster="prod"}` {
			t.Errorf("query %q", got)
		}
		_, _ = w.Write([]byte(`{"status":"success","data":{"resultType":"vector","result":[
			{"metric":{"__name__":"up","instance":"db1"},"value":[1700000000.5,"1"]},
			{"metric":{"__name__":"up","instance":"db2"},"value":[1700000000.5,"0"]}]}}`))
	})
	got, err := client(t, s.URL, Options{}).Query(context.Background(), `up{cluster="prod"}`)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got[0].Labels["instance"] != "db1" || got[0].Value != 1 || got[1].Value != 0 ||
		!got[0].At.Equal(time.UnixMilli(1700000000500)) {
		t.Errorf("samples: %+v", got)
	}
}

// TestFromConfig: the config's listen address, HTTPS trusting the
// appliance's own (self-signed) certificate, the first token.
func TestFromConfig(t *testing.T) {
	s := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer "+token {
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		_, _ = w.Write([]byte(`{"status":"success","data":[]}`))
	}))
	defer s.Close()
	cert := filepath.Join(t.TempDir(), "tls.crt")
	if err := os.WriteFile(cert, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: s.Certificate().Raw}), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := &config.Config{File: "nines.yaml", Listen: strings.TrimPrefix(s.URL, "https://"), TLS: &config.TLS{CertFile: cert}}
	if _, err := FromConfig(cfg, ""); err == nil || !strings.Contains(err.Error(), "nines.yaml has no API token to call the appliance with: add one with role admin") {
		t.Errorf("config without tokens: %v", err)
	}
	cfg.API.Tokens = []config.Token{{Name: "hook", Role: config.RoleWebhook, Value: "y"}, {Name: "grafana", Role: config.RoleRead, Value: "z"}}
	if c, err := FromConfig(cfg, ""); err != nil || c.token != "z" {
		t.Errorf("config with a webhook and a read token: %v, want the read token", err)
	}
	cfg.API.Tokens = append(cfg.API.Tokens, config.Token{Name: "ops", Role: config.RoleAdmin, Value: token}, config.Token{Name: "other", Role: config.RoleAdmin, Value: "x"})
	c, err := FromConfig(cfg, "")
	if err != nil {
		t.Fatal(err)
	}
	if c.Base() != s.URL {
		t.Errorf("base %q, want %q", c.Base(), s.URL)
	}
	if _, err := c.Jobs(context.Background(), "", 0); err != nil {
		t.Errorf("HTTPS with the appliance's certificate: %v", err)
	}
	// Without the certificate the same server is not trusted.
	plain, err := New(Options{BaseURL: s.URL, Token: token})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := plain.Jobs(context.Background(), "", 0); err == nil || !strings.Contains(err.Error(), "certificate") {
		t.Errorf("HTTPS without trusting the certificate: %v", err)
	}
}

func TestDialAddress(t *testing.T) {
	for in, want := range map[string]string{
		":9104": "127.0.0.1:9104", "0.0.0.0:9104": "127.0.0.1:9104", "[::]:9104": "[::1]:9104",
		"10.0.0.5:9104": "10.0.0.5:9104", "nines.example:443": "nines.example:443",
	} {
		if got := dialAddress(in); got != want {
			t.Errorf("dialAddress(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestBadBaseURL(t *testing.T) {
	for _, u := range []string{"", "127.0.0.1:9104", "ftp://x:1", "http://"} {
		if _, err := New(Options{BaseURL: u}); err == nil || !strings.Contains(err.Error(), "want http://host:port") {
			t.Errorf("New(%q): %v", u, err)
		}
	}
}
