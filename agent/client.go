package agent

import (
	"github.com/nines-project/nines/galera"

	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// Client calls one agent. Calls take their deadline from ctx only: a
// start that waits for Synced legitimately takes minutes, so there is no
// client-wide timeout. A Client is safe for concurrent use.
type Client struct {
	base  string
	token string
	http  *http.Client
}

// NewClient returns a client for the agent at baseURL
// ("https://db1:9105"). tlsConf is used for https URLs; nil means the
// system's roots.
func NewClient(baseURL, token string, tlsConf *tls.Config) *Client {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	// A copy: HTTP/2 set-up writes to the config at the first request, and
	// one config is shared by every agent of a cluster.
	tr.TLSClientConfig = tlsConf.Clone()
	return &Client{
		base:  strings.TrimRight(baseURL, "/"),
		token: token,
		http:  &http.Client{Transport: tr},
	}
}

// URL is the agent's base URL.
func (c *Client) URL() string { return c.base }

// Error is an answer of the agent other than 200: Status is the HTTP
// status and Message the agent's own explanation. Decide on Status (409:
// refused in the current state, nothing was done), never on the message.
type Error struct {
	Op      string // "start"
	URL     string
	Status  int
	Message string
	// Fenced: the 409 is the agent refusing a stale fencing token (or a
	// missing one once appliances in HA use it): another leader acts.
	Fenced bool
}

func (e *Error) Error() string {
	return fmt.Sprintf("agent %s: %s: %d %s: %s", e.URL, e.Op, e.Status, http.StatusText(e.Status), e.Message)
}

// IsConflict reports whether err is the agent refusing an action in the
// server's current state (HTTP 409), such as starting a running server.
func IsConflict(err error) bool { return hasStatus(err, http.StatusConflict) }

// IsUnauthorized reports whether the agent rejected the token (HTTP 401).
func IsUnauthorized(err error) bool { return hasStatus(err, http.StatusUnauthorized) }

func hasStatus(err error, status int) bool {
	var e *Error
	return errors.As(err, &e) && e.Status == status
}

// Healthz checks that the agent answers; it needs no token.
func (c *Client) Healthz(ctx context.Context) error {
	return c.do(ctx, "healthz", http.MethodGet, "/healthz", nil, nil)
}

// Status reads the server's state.
func (c *Client) Status(ctx context.Context) (Status, error) {
	var out Status
	err := c.do(ctx, "status", http.MethodGet, "/v1/status", nil, &out)
	return out, err
}

// ServerInfo reads the running server's pid, version, uptime and how it
// joined its Galera cluster.
func (c *Client) ServerInfo(ctx context.Context) (ServerInfo, error) {
	var out ServerInfo
	err := c.do(ctx, "server-info", http.MethodGet, "/v1/server-info", nil, &out)
	return out, err
}

// Peers says which Galera peers the agent's host reaches.
func (c *Client) Peers(ctx context.Context) (PeersResult, error) {
	var out PeersResult
	err := c.do(ctx, "peers", http.MethodGet, "/v1/peers", nil, &out)
	return out, err
}

// Grastate reads grastate.dat; a missing file is an *Error with 404.
func (c *Client) Grastate(ctx context.Context) (galera.Grastate, error) {
	var out galera.Grastate
	err := c.do(ctx, "grastate", http.MethodGet, "/v1/grastate", nil, &out)
	return out, err
}

// Recover runs --wsrep-recover on the stopped server.
func (c *Client) Recover(ctx context.Context) (RecoverResult, error) {
	var out RecoverResult
	err := c.do(ctx, "recover", http.MethodPost, "/v1/recover", struct{}{}, &out)
	return out, err
}

// Start starts the stopped server and waits as req says.
func (c *Client) Start(ctx context.Context, req StartRequest) (StartResult, error) {
	var out StartResult
	err := c.do(ctx, "start", http.MethodPost, "/v1/start", req, &out)
	return out, err
}

// Stop stops the server; StopRequest{} is a graceful stop with the
// default grace, StopRequest{Graceful: new(false)} a SIGKILL.
func (c *Client) Stop(ctx context.Context, req StopRequest) (StopResult, error) {
	var out StopResult
	err := c.do(ctx, "stop", http.MethodPost, "/v1/stop", req, &out)
	return out, err
}

// Restart stops the server gracefully and starts it as req says.
func (c *Client) Restart(ctx context.Context, req RestartRequest) (RestartResult, error) {
	var out RestartResult
	err := c.do(ctx, "restart", http.MethodPost, "/v1/restart", req, &out)
	return out, err
}

// SetBootstrapFields edits the stopped server's grastate.dat so it may
// bootstrap at uuid:seqno.
func (c *Client) SetBootstrapFields(ctx context.Context, req BootstrapFieldsRequest) (BootstrapFieldsResult, error) {
	var out BootstrapFieldsResult
	err := c.do(ctx, "bootstrap-fields", http.MethodPost, "/v1/bootstrap-fields", req, &out)
	return out, err
}

// PCBootstrap makes the running, non-Primary node form a Primary
// component.
func (c *Client) PCBootstrap(ctx context.Context) (PCBootstrapResult, error) {
	var out PCBootstrapResult
	err := c.do(ctx, "pc-bootstrap", http.MethodPost, "/v1/pc-bootstrap", struct{}{}, &out)
	return out, err
}

// Backup runs a backup as req says and returns its manifest. It is
// synchronous: give ctx a deadline as long as the backup may take.
// Cancelling ctx makes the agent stop the backup and remove what it wrote.
func (c *Client) Backup(ctx context.Context, req BackupRequest) (Manifest, error) {
	var out Manifest
	err := c.do(ctx, "backup", http.MethodPost, "/v1/backups", req, &out)
	return out, err
}

// Backups lists the backups in dir on the agent's host, newest first.
func (c *Client) Backups(ctx context.Context, dir string) ([]BackupInfo, error) {
	var out []BackupInfo
	err := c.do(ctx, "backups", http.MethodGet, "/v1/backups?"+url.Values{"dir": {dir}}.Encode(), nil, &out)
	return out, err
}

// DeleteBackup removes backup id from dir; a missing one is an *Error
// with 404.
func (c *Client) DeleteBackup(ctx context.Context, dir, id string) error {
	return c.do(ctx, "backup-delete", http.MethodDelete,
		"/v1/backups/"+url.PathEscape(id)+"?"+url.Values{"dir": {dir}}.Encode(), nil, &BackupDeleteResult{})
}

// VerifyBackup restores backup id into a scratch server and checks it. A
// backup that fails verification is a result with OK false, not an error.
func (c *Client) VerifyBackup(ctx context.Context, id string, req VerifyRequest) (VerifyResult, error) {
	var out VerifyResult
	err := c.do(ctx, "verify", http.MethodPost, "/v1/backups/"+url.PathEscape(id)+"/verify", req, &out)
	return out, err
}

// Metrics returns the agent's /metrics text.
func (c *Client) Metrics(ctx context.Context) (string, error) {
	var out strings.Builder
	err := c.do(ctx, "metrics", http.MethodGet, "/metrics", nil, &out)
	return out.String(), err
}

// do sends in as JSON (nil: no body) and decodes a 200 answer into out;
// a *strings.Builder gets the raw body.
func (c *Client) do(ctx context.Context, op, method, path string, in, out any) error {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return fmt.Errorf("agent %s: %s: %w", c.base, op, err)
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, body)
	if err != nil {
		return fmt.Errorf("agent %s: %s: %w", c.base, op, err)
	}
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("Authorization", "Bearer "+c.token)
	setFence(ctx, req)
	start := time.Now()
	resp, err := c.http.Do(req)
	if err != nil {
		return fmt.Errorf("agent %s: %s: %w", c.base, op, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if err != nil {
		return fmt.Errorf("agent %s: %s: read answer after %v: %w", c.base, op, time.Since(start).Round(time.Millisecond), err)
	}
	if resp.StatusCode != http.StatusOK {
		var eb errorBody
		msg := strings.TrimSpace(string(b))
		if json.Unmarshal(b, &eb) == nil && eb.Error != "" {
			msg = eb.Error
		}
		return &Error{Op: op, URL: c.base, Status: resp.StatusCode, Message: msg, Fenced: resp.Header.Get(headerFenced) != ""}
	}
	switch o := out.(type) {
	case nil:
		return nil
	case *strings.Builder:
		o.Write(b)
		return nil
	}
	if err := json.Unmarshal(b, out); err != nil {
		return fmt.Errorf("agent %s: %s: decode answer: %w", c.base, op, err)
	}
	return nil
}

// Health asks the writer or reader health check (HealthWriter,
// HealthReader): ok is true on 200, false on 503, and reason is the
// agent's one-line explanation either way. Any other answer is an error.
func (c *Client) Health(ctx context.Context, role string) (ok bool, reason string, err error) {
	var out strings.Builder
	err = c.do(ctx, "health", http.MethodGet, "/v1/health/"+url.PathEscape(role), nil, &out)
	var e *Error
	switch {
	case err == nil:
		return true, strings.TrimSpace(out.String()), nil
	case errors.As(err, &e) && e.Status == http.StatusServiceUnavailable:
		return false, e.Message, nil
	}
	return false, "", err
}

// Replication reads the server's GTID state, replica connection and
// semi-sync settings.
func (c *Client) Replication(ctx context.Context) (ReplicationStatus, error) {
	var out ReplicationStatus
	err := c.do(ctx, "replication", http.MethodGet, "/v1/replication", nil, &out)
	return out, err
}

// Fence makes the server refuse application writes (read_only=ON), and
// stops it when req.Stop is set or read_only cannot be set.
func (c *Client) Fence(ctx context.Context, req FenceRequest) (FenceResult, error) {
	var out FenceResult
	err := c.do(ctx, "fence", http.MethodPost, "/v1/replication/fence", req, &out)
	return out, err
}

// WaitApplied waits until the replica applied what it received (or
// req.Until).
func (c *Client) WaitApplied(ctx context.Context, req WaitAppliedRequest) (WaitAppliedResult, error) {
	var out WaitAppliedResult
	err := c.do(ctx, "wait-applied", http.MethodPost, "/v1/replication/wait-applied", req, &out)
	return out, err
}

// Promote makes the server a source (and, with req.Open, writable).
func (c *Client) Promote(ctx context.Context, req PromoteRequest) (PromoteResult, error) {
	var out PromoteResult
	err := c.do(ctx, "promote", http.MethodPost, "/v1/replication/promote", req, &out)
	return out, err
}

// Replicate points the server at a new source with GTID.
func (c *Client) Replicate(ctx context.Context, req ReplicateRequest) (ReplicateResult, error) {
	var out ReplicateResult
	err := c.do(ctx, "replicate", http.MethodPost, "/v1/replication/replicate", req, &out)
	return out, err
}

// SeedStream starts the donor's stream (POST /v1/replication/seed-stream).
// The reader returns an error instead of EOF when the donor's trailer does
// not say the backup finished, so a relay never passes a cut stream off as
// whole. Close it to stop the donor's backup.
func (c *Client) SeedStream(ctx context.Context, req SeedStreamRequest) (io.ReadCloser, error) {
	b, err := json.Marshal(req)
	if err != nil {
		return nil, fmt.Errorf("agent %s: seed-stream: %w", c.base, err)
	}
	hr, err := http.NewRequestWithContext(ctx, http.MethodPost, c.base+"/v1/replication/seed-stream", bytes.NewReader(b))
	if err != nil {
		return nil, fmt.Errorf("agent %s: seed-stream: %w", c.base, err)
	}
	hr.Header.Set("Content-Type", "application/json")
	hr.Header.Set("Authorization", "Bearer "+c.token)
	setFence(ctx, hr)
	resp, err := c.http.Do(hr)
	if err != nil {
		return nil, fmt.Errorf("agent %s: seed-stream: %w", c.base, err)
	}
	if resp.StatusCode != http.StatusOK {
		defer resp.Body.Close()
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
		var eb errorBody
		msg := strings.TrimSpace(string(b))
		if json.Unmarshal(b, &eb) == nil && eb.Error != "" {
			msg = eb.Error
		}
		return nil, &Error{Op: "seed-stream", URL: c.base, Status: resp.StatusCode, Message: msg, Fenced: resp.Header.Get(headerFenced) != ""}
	}
	return &seedReader{resp: resp, url: c.base}, nil
}

type seedReader struct {
	resp *http.Response
	url  string
	n    int64
}

func (s *seedReader) Read(p []byte) (int, error) {
	n, err := s.resp.Body.Read(p)
	s.n += int64(n)
	if err == io.EOF {
		// Trailers are read with the body's end.
		if st := s.resp.Trailer.Get(SeedStatusTrailer); st != "ok" {
			if st == "" {
				st = "the stream ended without its status trailer (cut short)"
			}
			return n, fmt.Errorf("agent %s: seed-stream after %d bytes: %s", s.url, s.n, st)
		}
	}
	return n, err
}

func (s *seedReader) Close() error { return s.resp.Body.Close() }

// Reseed rebuilds the server from stream (a SeedStream of another agent)
// and points it at req's source.
func (c *Client) Reseed(ctx context.Context, req ReseedRequest, stream io.Reader) (ReseedResult, error) {
	var out ReseedResult
	q := url.Values{}
	q.Set("source_host", req.SourceHost)
	q.Set("source_port", fmt.Sprint(req.SourcePort))
	q.Set("semi_sync", fmt.Sprint(req.SemiSync))
	hr, err := http.NewRequestWithContext(ctx, http.MethodPost, c.base+reseedPath+"?"+q.Encode(), stream)
	if err != nil {
		return out, fmt.Errorf("agent %s: reseed: %w", c.base, err)
	}
	hr.Header.Set("Content-Type", "application/octet-stream")
	hr.Header.Set("Authorization", "Bearer "+c.token)
	setFence(ctx, hr)
	resp, err := c.http.Do(hr)
	if err != nil {
		return out, fmt.Errorf("agent %s: reseed: %w", c.base, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return out, fmt.Errorf("agent %s: reseed: read answer: %w", c.base, err)
	}
	if resp.StatusCode != http.StatusOK {
		var eb errorBody
		msg := strings.TrimSpace(string(b))
		if json.Unmarshal(b, &eb) == nil && eb.Error != "" {
			msg = eb.Error
		}
		return out, &Error{Op: "reseed", URL: c.base, Status: resp.StatusCode, Message: msg, Fenced: resp.Header.Get(headerFenced) != ""}
	}
	if err := json.Unmarshal(b, &out); err != nil {
		return out, fmt.Errorf("agent %s: reseed: decode answer: %w", c.base, err)
	}
	return out, nil
}

// Diverged lists the GTIDs of the server's binary logs that req.Than
// lacks.
func (c *Client) Diverged(ctx context.Context, req DivergedRequest) (DivergedResult, error) {
	var out DivergedResult
	err := c.do(ctx, "diverged", http.MethodPost, "/v1/replication/diverged", req, &out)
	return out, err
}
