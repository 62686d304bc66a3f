// Package apiclient calls a running appliance's HTTP API: the one client
// that the CLI (cmd/nines) and the end-to-end tests share.
//
// Every call has a deadline (a connect timeout and an overall one, longer
// for reports), reads at most a bounded answer, and turns the API's error
// envelope ({"status":"error","errorType":…,"error":…}) into an *Error
// that names the request, the HTTP status and the appliance's message. A
// refused connection says that nothing listens at the address tried.
package apiclient

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
	"syscall"
	"time"

	"github.com/nines-project/nines/appliance/config"
)

// Defaults for Options' zero values.
const (
	// DefaultConnectTimeout bounds the TCP connect and the TLS handshake:
	// an appliance on the same host or LAN answers in milliseconds, and a
	// dropped SYN should not hang a CLI for the kernel's two minutes.
	DefaultConnectTimeout = 5 * time.Second
	// DefaultTimeout bounds a whole API call, answer included.
	DefaultTimeout = 30 * time.Second
	// DefaultReportTimeout bounds a report: a year of daily figures takes
	// the appliance a few seconds of queries, a PDF a little more.
	DefaultReportTimeout = 5 * time.Minute
	// DefaultMaxBody is the largest JSON answer read: a month of jobs or a
	// dashboard is well under a megabyte; more is a wrong URL or a bug.
	DefaultMaxBody = 64 << 20
	// DefaultMaxReport is the largest report read (a PDF with charts).
	DefaultMaxReport = 256 << 20
)

// Options configure a Client. Zero durations and sizes take the defaults.
type Options struct {
	// BaseURL is the appliance's URL, scheme://host:port (no path).
	BaseURL string
	// Token is sent as "Authorization: Bearer <token>"; empty sends none.
	Token string
	// RootCAs verify an HTTPS appliance; nil uses the system's roots.
	RootCAs *x509.CertPool

	ConnectTimeout time.Duration
	Timeout        time.Duration
	ReportTimeout  time.Duration
	MaxBody        int64
	MaxReport      int64
}

// Client calls one appliance. It is safe for concurrent use.
type Client struct {
	base  string
	token string
	http  *http.Client
	opt   Options
}

// New returns a client for o.BaseURL.
func New(o Options) (*Client, error) {
	u, err := url.Parse(o.BaseURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("appliance URL %q: want http://host:port or https://host:port", o.BaseURL)
	}
	if o.ConnectTimeout <= 0 {
		o.ConnectTimeout = DefaultConnectTimeout
	}
	if o.Timeout <= 0 {
		o.Timeout = DefaultTimeout
	}
	if o.ReportTimeout <= 0 {
		o.ReportTimeout = DefaultReportTimeout
	}
	if o.MaxBody <= 0 {
		o.MaxBody = DefaultMaxBody
	}
	if o.MaxReport <= 0 {
		o.MaxReport = DefaultMaxReport
	}
	tr := &http.Transport{
		Proxy:               http.ProxyFromEnvironment,
		DialContext:         (&net.Dialer{Timeout: o.ConnectTimeout, KeepAlive: 30 * time.Second}).DialContext,
		TLSHandshakeTimeout: o.ConnectTimeout,
		TLSClientConfig:     &tls.Config{RootCAs: o.RootCAs, MinVersion: tls.VersionTLS12},
		MaxIdleConnsPerHost: 4,
		IdleConnTimeout:     90 * time.Second,
		ForceAttemptHTTP2:   true,
	}
	return &Client{
		base:  strings.TrimRight(o.BaseURL, "/"),
		token: o.Token,
		// No http.Client.Timeout: each call sets its own deadline on the
		// context, so a report may take longer than a job lookup.
		http: &http.Client{Transport: tr},
		opt:  o,
	}, nil
}

// cliToken is the first token of the most capable role the CLI can use;
// a webhook token can do nothing the CLI does.
func cliToken(tokens []config.Token) (config.Token, bool) {
	for _, role := range []string{config.RoleAdmin, config.RoleOperate, config.RoleRead} {
		for _, t := range tokens {
			if t.Role == role {
				return t, true
			}
		}
	}
	return config.Token{}, false
}

// FromConfig returns a client for the appliance that cfg configures: its
// listen address (an unspecified host means this host), HTTPS when it
// has tls, trusting the appliance's certificate besides the system's
// roots (a self-signed certificate is its own CA), and the most capable
// API token (admin, else operate, else read: the CLI starts jobs). base,
// when not empty, replaces the listen address.
func FromConfig(cfg *config.Config, base string) (*Client, error) {
	tok, ok := cliToken(cfg.API.Tokens)
	if !ok {
		return nil, fmt.Errorf("%s has no API token to call the appliance with: add one with role admin or operate to api.tokens", cfg.File)
	}
	o := Options{BaseURL: base, Token: tok.Value.Reveal()}
	if o.BaseURL == "" {
		scheme := "http"
		if cfg.TLS != nil {
			scheme = "https"
		}
		o.BaseURL = scheme + "://" + dialAddress(cfg.Listen)
	}
	if cfg.TLS != nil && cfg.TLS.CertFile != "" {
		pool, err := trust(cfg.TLS.CertFile)
		if err != nil {
			return nil, err
		}
		o.RootCAs = pool
	}
	return New(o)
}

// dialAddress is where a client on this host reaches a listener bound to
// listen: a wildcard host (":9104", "0.0.0.0:9104", "[::]:9104") is
// reached on loopback.
func dialAddress(listen string) string {
	host, port, err := net.SplitHostPort(listen)
	if err != nil {
		return listen
	}
	switch host {
	case "", "0.0.0.0":
		host = "127.0.0.1"
	case "::":
		host = "::1"
	}
	return net.JoinHostPort(host, port)
}

// trust is the system's roots plus the PEM certificates in file.
func trust(file string) (*x509.CertPool, error) {
	pem, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("read the appliance's certificate to trust it: %w", err)
	}
	pool, err := x509.SystemCertPool()
	if err != nil || pool == nil {
		pool = x509.NewCertPool()
	}
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("%s: no PEM certificate in it", file)
	}
	return pool, nil
}

// Base is the appliance URL the client calls.
func (c *Client) Base() string { return c.base }

// Error is an answer other than 2xx. Message is the appliance's error text
// (the envelope's error field), or the start of the body when the answer
// is not the envelope.
type Error struct {
	Method, Path string
	Status       int    // HTTP status code
	StatusText   string // as the server sent it: "404 Not Found"
	Type         string // the envelope's errorType: bad_data, not_found, conflict, …
	Message      string
	Body         []byte // the answer as read (bounded)
}

func (e *Error) Error() string {
	msg := e.Message
	if e.Type != "" {
		msg = e.Type + ": " + msg
	}
	return fmt.Sprintf("%s %s: %s: %s", e.Method, e.Path, e.StatusText, msg)
}

// ErrNotRunning is wrapped by the error of a call whose connection was
// refused: nothing listens at the address.
var ErrNotRunning = errors.New("is the appliance running (nines run --config ...)?")

// ErrTooLarge is wrapped by the error of a call whose answer exceeded the
// body limit.
var ErrTooLarge = errors.New("answer too large")

// Response is an answer as it came, for documents (reports) and tests that
// check headers.
type Response struct {
	Status int
	Header http.Header
	Body   []byte
}

// Do sends in as JSON (nil: no body) and decodes the answer's data field
// into out (nil: ignore it). An answer other than 2xx is an *Error.
func (c *Client) Do(ctx context.Context, method, path string, in, out any) error {
	r, err := c.do(ctx, method, path, in, c.opt.Timeout, c.opt.MaxBody)
	if err != nil {
		return err
	}
	if out == nil {
		return nil
	}
	if err := decodeData(r.Body, out); err != nil {
		return fmt.Errorf("%s %s: %w", method, path, err)
	}
	return nil
}

// decodeData decodes the data field of the API's envelope
// ({"status":"success","data":…}) into out.
func decodeData(b []byte, out any) error {
	var env struct {
		Data json.RawMessage `json:"data"`
	}
	if err := json.Unmarshal(b, &env); err != nil {
		return fmt.Errorf("decode the answer: %w", err)
	}
	if len(env.Data) == 0 {
		return errors.New("the answer has no data field")
	}
	if err := json.Unmarshal(env.Data, out); err != nil {
		return fmt.Errorf("decode the answer's data: %w", err)
	}
	return nil
}

// Get is Do with GET; query may be nil.
func (c *Client) Get(ctx context.Context, path string, query url.Values, out any) error {
	return c.Do(ctx, http.MethodGet, withQuery(path, query), nil, out)
}

// Post is Do with POST.
func (c *Client) Post(ctx context.Context, path string, in, out any) error {
	return c.Do(ctx, http.MethodPost, path, in, out)
}

// Raw sends the request and returns the answer undecoded, within the
// normal timeout and body limit. An answer other than 2xx is an *Error
// (its Status and Body tell what came back).
func (c *Client) Raw(ctx context.Context, method, path string, in any) (*Response, error) {
	return c.do(ctx, method, path, in, c.opt.Timeout, c.opt.MaxBody)
}

func withQuery(path string, q url.Values) string {
	if len(q) == 0 {
		return path
	}
	sep := "?"
	if strings.Contains(path, "?") {
		sep = "&"
	}
	return path + sep + q.Encode()
}

func (c *Client) do(ctx context.Context, method, path string, in any, timeout time.Duration, limit int64) (*Response, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return nil, fmt.Errorf("%s %s: encode the request: %w", method, path, err)
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, body)
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", method, path, err)
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, c.reachErr(method, path, timeout, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, limit+1))
	if err != nil {
		return nil, c.reachErr(method, path, timeout, fmt.Errorf("read the answer: %w", err))
	}
	if int64(len(b)) > limit {
		return nil, fmt.Errorf("%s %s: %s: %w: more than %d bytes", method, path, resp.Status, ErrTooLarge, limit)
	}
	r := &Response{Status: resp.StatusCode, Header: resp.Header, Body: b}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return r, envelopeError(method, path, resp, b)
	}
	return r, nil
}

// envelopeError reads the API's error envelope; Echo's own errors (an
// unknown route, a wrong method) carry "message" instead.
func envelopeError(method, path string, resp *http.Response, b []byte) *Error {
	e := &Error{Method: method, Path: path, Status: resp.StatusCode, StatusText: resp.Status, Body: b}
	var env struct {
		ErrorType string `json:"errorType"`
		Error     string `json:"error"`
		Message   string `json:"message"`
	}
	if json.Unmarshal(b, &env) == nil && (env.Error != "" || env.Message != "") {
		e.Type, e.Message = env.ErrorType, env.Error
		if e.Message == "" {
			e.Message = env.Message
		}
		return e
	}
	msg := strings.TrimSpace(string(b))
	if len(msg) > 300 {
		msg = msg[:300] + "…"
	}
	if msg == "" {
		msg = "(empty answer)"
	}
	e.Message = msg
	return e
}

// reachErr explains a request the appliance did not answer; a refused
// connection almost always means nines is not running at that address.
func (c *Client) reachErr(method, path string, timeout time.Duration, err error) error {
	if errors.Is(err, syscall.ECONNREFUSED) {
		return fmt.Errorf("%s %s: nothing listens at %s: %w %w", method, path, c.base, ErrNotRunning, err)
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("%s %s at %s: no answer within %s: %w", method, path, c.base, timeout, err)
	}
	return fmt.Errorf("%s %s at %s: %w", method, path, c.base, err)
}
