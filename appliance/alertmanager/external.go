package alertmanager

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/go-openapi/strfmt"
	"github.com/prometheus/alertmanager/api/v2/models"
	"github.com/prometheus/common/model"

	"github.com/nines-project/nines"
)

// defaultExternalTimeout bounds one POST when the caller gives no client.
const defaultExternalTimeout = 10 * time.Second

// External sends alerts to an existing Alertmanager cluster. Like
// Prometheus it posts every alert to every member, and gossip inside the
// cluster deduplicates the notifications. Its methods are safe for
// concurrent use.
type External struct {
	endpoints []endpoint
	client    *http.Client
	validity  time.Duration
	logger    *slog.Logger
}

type endpoint struct {
	alerts string // …/api/v2/alerts
	name   string // the configured URL, password redacted, for errors
}

// NewExternal makes a Sender for the Alertmanagers at urls, each the base
// URL an amtool user would give (http://am1:9093, or with a path prefix).
// A nil client means a plain one with a 10 s timeout; the caller's client
// brings TLS and authentication. Zero validity means DefaultValidity.
// A nil logger discards the per-URL failures that Send does not return.
func NewExternal(urls []string, client *http.Client, validity time.Duration, logger *slog.Logger) (*External, error) {
	if len(urls) == 0 {
		return nil, errors.New("alertmanager: no external URLs")
	}
	x := &External{client: client, validity: validity, logger: logger}
	if x.client == nil {
		x.client = &http.Client{Timeout: defaultExternalTimeout}
	}
	if x.validity == 0 {
		x.validity = DefaultValidity
	}
	if x.logger == nil {
		x.logger = slog.New(slog.DiscardHandler)
	}
	for i, s := range urls {
		u, err := url.Parse(s)
		if err != nil {
			// url.Error quotes the URL, password and all.
			var ue *url.Error
			if errors.As(err, &ue) {
				err = ue.Err
			}
			return nil, fmt.Errorf("alertmanager: external URL #%d: %w", i+1, err)
		}
		if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return nil, fmt.Errorf("alertmanager: external URL %q: want http(s)://host[:port][/path]", u.Redacted())
		}
		x.endpoints = append(x.endpoints, endpoint{
			alerts: u.JoinPath("api", "v2", "alerts").String(),
			name:   u.Redacted(),
		})
	}
	return x, nil
}

// Send posts the alerts to every Alertmanager at once. It succeeds when at
// least one accepted them (gossip spreads them to the rest), logging the
// others; when none did, the error names every URL and why.
func (x *External) Send(ctx context.Context, alerts []nines.Alert) error {
	ms := toModel(alerts, time.Now(), x.validity)
	if len(ms) == 0 {
		return nil
	}
	body, err := json.Marshal(postable(ms))
	if err != nil {
		return fmt.Errorf("alertmanager: encode alerts: %w", err)
	}
	errs := make([]error, len(x.endpoints))
	var wg sync.WaitGroup
	for i, ep := range x.endpoints {
		wg.Go(func() { errs[i] = x.post(ctx, ep, body) })
	}
	wg.Wait()
	ok := 0
	for i, err := range errs {
		if err == nil {
			ok++
			continue
		}
		x.logger.Warn("send alerts to Alertmanager", "url", x.endpoints[i].name, "err", err)
	}
	if ok == 0 {
		return fmt.Errorf("alertmanager: no Alertmanager accepted %d alerts: %w", len(ms), errors.Join(errs...))
	}
	return nil
}

func (x *External) post(ctx context.Context, ep endpoint, body []byte) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, ep.alerts, bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("%s: %w", ep.name, err)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := x.client.Do(req)
	if err != nil {
		// The client's error quotes the request URL; ours is redacted.
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return fmt.Errorf("%s: %w", ep.name, err)
	}
	defer resp.Body.Close()
	msg, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("%s: %s: %s", ep.name, resp.Status, strings.TrimSpace(string(msg)))
	}
	return nil
}

// postable converts to the API v2 wire type.
func postable(ms []model.Alert) models.PostableAlerts {
	out := make(models.PostableAlerts, 0, len(ms))
	for _, m := range ms {
		pa := &models.PostableAlert{
			Alert: models.Alert{
				Labels:       make(models.LabelSet, len(m.Labels)),
				GeneratorURL: strfmt.URI(m.GeneratorURL),
			},
			Annotations: make(models.LabelSet, len(m.Annotations)),
			StartsAt:    strfmt.DateTime(m.StartsAt),
			EndsAt:      strfmt.DateTime(m.EndsAt),
		}
		for k, v := range m.Labels {
			pa.Labels[string(k)] = string(v)
		}
		for k, v := range m.Annotations {
			pa.Annotations[string(k)] = string(v)
		}
		out = append(out, pa)
	}
	return out
}
