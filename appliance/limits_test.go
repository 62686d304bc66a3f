package appliance

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/nines-project/nines/appliance/config"
)

// TestBodyLimits: API bodies over 1 MiB get 413 before any handler reads
// them; the webhook takes up to 4 MiB (Alertmanager's batches).
func TestBodyLimits(t *testing.T) {
	f := newRouteFixture(t)
	const admin = "admin-token-0123456789"
	big := func(n int) string { return `{"pad":"` + strings.Repeat("x", n) + `"}` }
	for _, tt := range []struct {
		method, path string
		size         int
		want         int
	}{
		{http.MethodPost, "/api/v1/jobs", 2 << 20, http.StatusRequestEntityTooLarge},
		{http.MethodPost, "/api/v1/query", 2 << 20, http.StatusRequestEntityTooLarge},
		{http.MethodPost, "/alertmanager/api/v2/silences", 2 << 20, http.StatusRequestEntityTooLarge},
		{http.MethodPost, "/console/login", 2 << 20, http.StatusRequestEntityTooLarge},
		{http.MethodPost, "/api/v1/alerts/webhook", 2 << 20, http.StatusOK},
		{http.MethodPost, "/api/v1/alerts/webhook", 5 << 20, http.StatusRequestEntityTooLarge},
		{http.MethodPost, "/api/v1/query", 1000, http.StatusOK},
	} {
		if w := f.call(tt.method, tt.path, admin, "", big(tt.size)); w.Code != tt.want {
			t.Errorf("%s %s with %d bytes: %d, want %d", tt.method, tt.path, tt.size, w.Code, tt.want)
		}
	}
	// The same without a Content-Length (chunked), including a route
	// whose handler never reads its body: still 413, not 200 or a 400
	// from a handler that hit the limit halfway.
	for _, tt := range []struct {
		path string
		size int
		want int
	}{
		{"/api/v1/jobs", 2 << 20, http.StatusRequestEntityTooLarge},
		{"/api/v1/remediation/c1/resume", 2 << 20, http.StatusRequestEntityTooLarge},
		{"/alertmanager/api/v2/silences", 2 << 20, http.StatusRequestEntityTooLarge},
		{"/api/v1/alerts/webhook", 5 << 20, http.StatusRequestEntityTooLarge},
	} {
		r := httptest.NewRequest(http.MethodPost, tt.path, io.MultiReader(strings.NewReader(big(tt.size))))
		r.ContentLength = -1
		r.Header.Set("Content-Type", "application/json")
		r.Header.Set("Authorization", "Bearer "+admin)
		w := httptest.NewRecorder()
		f.e.ServeHTTP(w, r)
		if w.Code != tt.want {
			t.Errorf("POST %s with %d bytes, chunked: %d %s, want %d", tt.path, tt.size, w.Code, w.Body, tt.want)
		}
	}
}

// TestServerTimeouts: the listener bounds slow clients, headers and idle
// connections.
func TestServerTimeouts(t *testing.T) {
	s := newServer(http.NotFoundHandler())
	if s.ReadHeaderTimeout <= 0 || s.ReadTimeout != 30*time.Second || s.IdleTimeout != 2*time.Minute || s.WriteTimeout != 2*time.Minute {
		t.Errorf("timeouts: header %s, read %s, write %s, idle %s", s.ReadHeaderTimeout, s.ReadTimeout, s.WriteTimeout, s.IdleTimeout)
	}
	if s.MaxHeaderBytes != 64<<10 {
		t.Errorf("MaxHeaderBytes %d, want 64 KiB", s.MaxHeaderBytes)
	}
}

// TestSecureCookieFollowsExternalURL: behind an HTTPS proxy the listener
// has no TLS, yet browsers use HTTPS: external_url's scheme decides.
func TestSecureCookieFollowsExternalURL(t *testing.T) {
	for _, tt := range []struct {
		external string
		tls      bool
		want     bool
	}{
		{"", false, false},
		{"", true, true},
		{"https://nines.example.net", false, true},
		{"http://nines.internal:9104", false, false},
		{"https://nines.example.net", true, true},
	} {
		cfg := &config.Config{ExternalURL: tt.external}
		if tt.tls {
			cfg.TLS = &config.TLS{CertFile: "c", KeyFile: "k"}
		}
		if got := secureCookie(cfg); got != tt.want {
			t.Errorf("external_url %q, tls %v: Secure %v, want %v", tt.external, tt.tls, got, tt.want)
		}
	}
}

// TestHSTSWithTLS: with TLS every answer, API and pages, carries
// Strict-Transport-Security; without TLS none does (browsers ignore it
// over HTTP, and it must not pin a plain-HTTP appliance).
func TestHSTSWithTLS(t *testing.T) {
	for _, tls := range []bool{true, false} {
		e := newRouter(tls)
		e.GET("/healthz", func(c echo.Context) error { return c.String(http.StatusOK, "ok") })
		w := httptest.NewRecorder()
		e.ServeHTTP(w, httptest.NewRequest(http.MethodGet, "/healthz", nil))
		got := w.Header().Get("Strict-Transport-Security")
		if tls && !strings.HasPrefix(got, "max-age=") || !tls && got != "" {
			t.Errorf("tls %v: Strict-Transport-Security %q", tls, got)
		}
	}
}
