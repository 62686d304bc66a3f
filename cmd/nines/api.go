package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"syscall"

	"github.com/nines-project/nines/appliance/config"
)

// apiClient calls the running appliance's API with the config's first
// token, at the config's listen address (or the one given).
type apiClient struct {
	base  string
	token string
}

func newAPIClient(cfg *config.Config, base string) (*apiClient, error) {
	if len(cfg.API.Tokens) == 0 {
		return nil, fmt.Errorf("%s has no API token to call the appliance with", cfg.File)
	}
	if base == "" {
		scheme := "http"
		if cfg.TLS != nil {
			scheme = "https"
		}
		base = fmt.Sprintf("%s://%s", scheme, cfg.Listen)
	}
	return &apiClient{base: strings.TrimRight(base, "/"), token: cfg.API.Tokens[0].Value.Reveal()}, nil
}

// call sends in as JSON (nil: no body) and decodes the answer's data
// field into out. An answer other than want is an error carrying the
// appliance's message.
func (c *apiClient) call(ctx context.Context, method, path string, in any, want int, out any) error {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return err
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, body)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+c.token)
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return reachErr(method+" "+path, c.base, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return fmt.Errorf("%s %s: %w", method, path, err)
	}
	if resp.StatusCode != want {
		var e struct{ Error string }
		if json.Unmarshal(b, &e) == nil && e.Error != "" {
			return fmt.Errorf("%s %s: %s: %s", method, path, resp.Status, e.Error)
		}
		return fmt.Errorf("%s %s: %s: %s", method, path, resp.Status, strings.TrimSpace(string(b)))
	}
	if out == nil {
		return nil
	}
	var env struct{ Data json.RawMessage }
	if err := json.Unmarshal(b, &env); err != nil {
		return fmt.Errorf("%s %s: decode answer: %w", method, path, err)
	}
	if err := json.Unmarshal(env.Data, out); err != nil {
		return fmt.Errorf("%s %s: decode answer: %w", method, path, err)
	}
	return nil
}

// reachErr explains a request the appliance did not answer; a refused
// connection almost always means nines is not running at that address.
func reachErr(what, base string, err error) error {
	if errors.Is(err, syscall.ECONNREFUSED) {
		return fmt.Errorf("%s: nothing listens at %s: is the appliance running (nines run --config ...)? %w", what, base, err)
	}
	return fmt.Errorf("%s: %w", what, err)
}
