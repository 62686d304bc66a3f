package store

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/http/httputil"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// Remote is an external Prometheus-compatible query API (a VictoriaMetrics
// cluster's vmselect, Prometheus): several appliances that remote_write
// into one store read the whole fleet from it. It answers the same
// instant queries as the embedded Store and proxies the read endpoints.
type Remote struct {
	base   *url.URL
	token  string
	client *http.Client
}

// RemoteOptions configure a Remote.
type RemoteOptions struct {
	// URL is the API's root: /api/v1/query is appended to its path, e.g.
	// https://vmselect:8481/select/0/prometheus.
	URL string
	// Token, when set, is sent as a bearer token.
	Token string
	// RootCAs checks the server's certificate; nil is the system's.
	RootCAs *x509.CertPool
	// Timeout bounds one query (default 5 s).
	Timeout time.Duration
}

// NewRemote checks o and returns the client; it does not connect.
func NewRemote(o RemoteOptions) (*Remote, error) {
	u, err := url.Parse(o.URL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("store: external URL %q: want http(s)://host[:port][/path]", o.URL)
	}
	if o.Timeout <= 0 {
		o.Timeout = 5 * time.Second
	}
	u.Path = strings.TrimSuffix(u.Path, "/")
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.TLSClientConfig = &tls.Config{MinVersion: tls.VersionTLS12, RootCAs: o.RootCAs}
	return &Remote{base: u, token: o.Token, client: &http.Client{Transport: tr, Timeout: o.Timeout}}, nil
}

// URL is the API's root, for logs (it carries no credentials).
func (r *Remote) URL() string { return r.base.String() }

// apiAnswer is the envelope of a Prometheus API answer.
type apiAnswer struct {
	Status    string `json:"status"`
	ErrorType string `json:"errorType"`
	Error     string `json:"error"`
	Data      struct {
		ResultType string          `json:"resultType"`
		Result     json.RawMessage `json:"result"`
	} `json:"data"`
}

// Query evaluates expr at one instant on the external store, as Store.Query
// does on the embedded one: NaN values are left out.
func (r *Remote) Query(ctx context.Context, expr string, at time.Time) ([]Sample, error) {
	q := url.Values{"query": {expr}, "time": {strconv.FormatFloat(float64(at.UnixMilli())/1000, 'f', 3, 64)}}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, r.base.String()+"/api/v1/query", strings.NewReader(q.Encode()))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if r.token != "" {
		req.Header.Set("Authorization", "Bearer "+r.token)
	}
	resp, err := r.client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("external store %s: query %q: %w", r.base.Host, expr, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return nil, fmt.Errorf("external store %s: query %q: read answer: %w", r.base.Host, expr, err)
	}
	var ans apiAnswer
	if err := json.Unmarshal(body, &ans); err != nil {
		return nil, fmt.Errorf("external store %s: query %q: HTTP %d, not a Prometheus API answer: %.200s", r.base.Host, expr, resp.StatusCode, body)
	}
	if ans.Status != "success" {
		return nil, fmt.Errorf("external store %s: query %q: HTTP %d: %s: %s", r.base.Host, expr, resp.StatusCode, ans.ErrorType, ans.Error)
	}
	return decodeResult(ans.Data.ResultType, ans.Data.Result)
}

// decodeResult turns a vector or scalar into samples.
func decodeResult(kind string, raw json.RawMessage) ([]Sample, error) {
	value := func(p [2]any) (float64, error) {
		s, ok := p[1].(string)
		if !ok {
			return 0, fmt.Errorf("sample value %v is not a string", p[1])
		}
		return strconv.ParseFloat(s, 64)
	}
	switch kind {
	case "vector":
		var rs []struct {
			Metric map[string]string `json:"metric"`
			Value  [2]any            `json:"value"`
		}
		if err := json.Unmarshal(raw, &rs); err != nil {
			return nil, fmt.Errorf("decode vector: %w", err)
		}
		out := make([]Sample, 0, len(rs))
		for _, s := range rs {
			v, err := value(s.Value)
			if err != nil {
				return nil, err
			}
			if math.IsNaN(v) {
				continue
			}
			if s.Metric == nil {
				s.Metric = map[string]string{}
			}
			out = append(out, Sample{Labels: s.Metric, Value: v})
		}
		return out, nil
	case "scalar":
		var p [2]any
		if err := json.Unmarshal(raw, &p); err != nil {
			return nil, fmt.Errorf("decode scalar: %w", err)
		}
		v, err := value(p)
		if err != nil || math.IsNaN(v) {
			return nil, err
		}
		return []Sample{{Labels: map[string]string{}, Value: v}}, nil
	}
	return nil, fmt.Errorf("result type %q: want vector or scalar", kind)
}

// Handler proxies the Prometheus read endpoints to the external store,
// with the external store's credentials, never the caller's: the caller
// authenticated to nines with a nines token or session, and that goes no
// further.
func (r *Remote) Handler() http.Handler {
	return &httputil.ReverseProxy{
		Transport: r.client.Transport,
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.SetURL(r.base)
			// SetURL joins the base path and the request's: /api/v1/...
			pr.Out.Header.Del("Authorization")
			pr.Out.Header.Del("Cookie")
			if r.token != "" {
				pr.Out.Header.Set("Authorization", "Bearer "+r.token)
			}
		},
		ErrorHandler: func(w http.ResponseWriter, _ *http.Request, err error) {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusBadGateway)
			msg, _ := json.Marshal(fmt.Sprintf("external store %s: %v", r.base.Host, err))
			fmt.Fprintf(w, `{"status":"error","errorType":"unavailable","error":%s}`, msg)
		},
	}
}
