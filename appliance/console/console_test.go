package console

import (
	"bytes"
	"encoding/json"
	"io/fs"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/labstack/echo/v4"
	"golang.org/x/crypto/bcrypt"

	"github.com/nines-project/nines/appliance/config"
)

const testToken = "0123456789abcdef0123456789abcdef"

// clock is a settable time source for session expiry.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time          { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) advance(d time.Duration) { c.mu.Lock(); c.t = c.t.Add(d); c.mu.Unlock() }

// fixture is a console in front of routes shaped like the appliance's:
// each answers with who the guard said the caller is.
type fixture struct {
	t     *testing.T
	e     *echo.Echo
	clock *clock
	logs  *bytes.Buffer
	con   *Console
}

var passwords = map[string]string{"vera": "viewer-pass-1", "otto": "operator-pass-2", "ada": "admin-pass-3"}

func hash(t *testing.T, pw string) config.Secret {
	t.Helper()
	h, err := bcrypt.GenerateFromPassword([]byte(pw), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	return config.Secret(h)
}

func newFixture(t *testing.T, users []config.User, secure bool) *fixture {
	t.Helper()
	f := &fixture{t: t, e: echo.New(), clock: &clock{t: time.Date(2026, 11, 26, 3, 0, 0, 0, time.UTC)}, logs: &bytes.Buffer{}}
	con := New(Options{Users: users, TTL: time.Hour, Secure: secure, FailDelay: -1,
		Logger: slog.New(slog.NewTextHandler(f.logs, nil)), Now: f.clock.now})
	f.con = con
	con.Register(f.e)
	api := f.e.Group("", con.Guard(func(tok string) (string, string, bool) { return "ci", config.RoleAdmin, tok == testToken }, testPolicy))
	who := func(code int) echo.HandlerFunc {
		return func(c echo.Context) error { return c.JSON(code, map[string]any{"who": c.Get("token")}) }
	}
	api.GET("/api/v1/jobs", who(http.StatusOK))
	api.POST("/api/v1/jobs", who(http.StatusAccepted))
	api.GET("/api/v1/query", who(http.StatusOK))
	api.POST("/api/v1/query", who(http.StatusOK))
	api.POST("/api/v1/remediation/:cluster/resume", who(http.StatusOK))
	api.Any("/alertmanager/*", who(http.StatusOK))
	return f
}

// testPolicy is shaped like the appliance's route table (which has its
// own test in package appliance): reads need read, resuming needs admin,
// anything else operate.
func testPolicy(method, route, role string, session bool) (string, bool) {
	need := config.RoleOperate
	switch {
	case method == http.MethodGet, route == "/api/v1/query":
		need = config.RoleRead
	case route == "/api/v1/remediation/:cluster/resume":
		need = config.RoleAdmin
	}
	return need, config.Allows(role, need)
}

func defaultUsers(t *testing.T) []config.User {
	return []config.User{
		{Name: "vera", Role: config.RoleViewer, PasswordHash: hash(t, passwords["vera"])},
		{Name: "otto", Role: config.RoleOperator, PasswordHash: hash(t, passwords["otto"])},
		{Name: "ada", Role: config.RoleAdmin, PasswordHash: hash(t, passwords["ada"])},
	}
}

type req struct {
	method, path string
	body         string
	cookie       *http.Cookie
	csrf         string
	bearer       string
	remote       string
	xff          string
	contentType  string
}

func (f *fixture) do(r req) *httptest.ResponseRecorder {
	f.t.Helper()
	hr := httptest.NewRequest(r.method, r.path, strings.NewReader(r.body))
	if r.body != "" {
		ct := r.contentType
		if ct == "" {
			ct = "application/json"
		}
		hr.Header.Set("Content-Type", ct)
	}
	if r.cookie != nil {
		hr.AddCookie(r.cookie)
	}
	if r.csrf != "" {
		hr.Header.Set(HeaderCSRF, r.csrf)
	}
	if r.bearer != "" {
		hr.Header.Set("Authorization", "Bearer "+r.bearer)
	}
	if r.remote != "" {
		hr.RemoteAddr = r.remote
	}
	if r.xff != "" {
		hr.Header.Set("X-Forwarded-For", r.xff)
	}
	w := httptest.NewRecorder()
	f.e.ServeHTTP(w, hr)
	return w
}

func loginBody(user, pw string) string {
	b, _ := json.Marshal(map[string]string{"user": user, "password": pw})
	return string(b)
}

// login logs user in and returns the session cookie and CSRF token.
func (f *fixture) login(user string) (*http.Cookie, string) {
	f.t.Helper()
	w := f.do(req{method: http.MethodPost, path: "/console/login", body: loginBody(user, passwords[user])})
	if w.Code != http.StatusOK {
		f.t.Fatalf("login %s: %d %s", user, w.Code, w.Body)
	}
	var out struct{ Data sessionInfo }
	if err := json.Unmarshal(w.Body.Bytes(), &out); err != nil {
		f.t.Fatal(err)
	}
	for _, c := range w.Result().Cookies() {
		if c.Name == CookieName {
			return c, out.Data.CSRF
		}
	}
	f.t.Fatalf("login %s set no %s cookie", user, CookieName)
	return nil, ""
}

func errorOf(t *testing.T, w *httptest.ResponseRecorder) string {
	t.Helper()
	var e apiError
	if err := json.Unmarshal(w.Body.Bytes(), &e); err != nil {
		t.Fatalf("decode error answer %q: %v", w.Body, err)
	}
	return e.Error
}

func TestLoginFailuresLookAlike(t *testing.T) {
	f := newFixture(t, defaultUsers(t), false)
	wrong := f.do(req{method: http.MethodPost, path: "/console/login", body: loginBody("otto", "not-his-password")})
	unknown := f.do(req{method: http.MethodPost, path: "/console/login", body: loginBody("mallory", "whatever-pass")})
	for name, w := range map[string]*httptest.ResponseRecorder{"wrong password": wrong, "unknown user": unknown} {
		if w.Code != http.StatusUnauthorized {
			t.Errorf("%s: status %d, want 401", name, w.Code)
		}
		if got := errorOf(t, w); got != loginFailed {
			t.Errorf("%s: message %q, want the generic %q", name, got, loginFailed)
		}
		for _, c := range w.Result().Cookies() {
			if c.Name == CookieName {
				t.Errorf("%s: a failed login set a session cookie", name)
			}
		}
	}
	logs := f.logs.String()
	if !strings.Contains(logs, "console login failed") || !strings.Contains(logs, "user=otto") || !strings.Contains(logs, "user=mallory") || !strings.Contains(logs, "remote=192.0.2.1") {
		t.Errorf("failed logins not logged with user and remote address:\n%s", logs)
	}
	for _, secret := range []string{"not-his-password", "whatever-pass", passwords["otto"], "$2a$"} {
		if strings.Contains(logs, secret) {
			t.Errorf("log holds %q:\n%s", secret, logs)
		}
	}
}

func TestLoginSetsAStrictCookie(t *testing.T) {
	for _, secure := range []bool{false, true} {
		f := newFixture(t, defaultUsers(t), secure)
		c, csrf := f.login("vera")
		if !c.HttpOnly || c.SameSite != http.SameSiteStrictMode || c.Path != "/" || c.Secure != secure {
			t.Errorf("secure listener %v: cookie HttpOnly=%v SameSite=%v Path=%q Secure=%v", secure, c.HttpOnly, c.SameSite, c.Path, c.Secure)
		}
		if len(c.Value) != 64 || len(csrf) != 64 || c.Value == csrf {
			t.Errorf("session id %q and CSRF token %q: want two different 32-byte hex values", c.Value, csrf)
		}
		if want := f.clock.now().Add(time.Hour); !c.Expires.Equal(want.Truncate(time.Second)) {
			t.Errorf("cookie expires %s, want %s (the session TTL)", c.Expires, want)
		}
		if !strings.Contains(f.logs.String(), "console login") || strings.Contains(f.logs.String(), passwords["vera"]) {
			t.Errorf("login log:\n%s", f.logs)
		}
	}
}

func TestLoginAcceptsOnlyJSON(t *testing.T) {
	f := newFixture(t, defaultUsers(t), false)
	w := f.do(req{method: http.MethodPost, path: "/console/login", body: "user=otto&password=" + passwords["otto"], contentType: "application/x-www-form-urlencoded"})
	if w.Code != http.StatusUnsupportedMediaType {
		t.Errorf("form login: status %d, want 415 (a cross-site form must not log anyone in)", w.Code)
	}
}

func TestSessionExpires(t *testing.T) {
	f := newFixture(t, defaultUsers(t), false)
	c, _ := f.login("vera")
	if w := f.do(req{method: http.MethodGet, path: "/api/v1/jobs", cookie: c}); w.Code != http.StatusOK {
		t.Fatalf("fresh session: %d %s", w.Code, w.Body)
	}
	f.clock.advance(59 * time.Minute)
	if w := f.do(req{method: http.MethodGet, path: "/console/session", cookie: c}); w.Code != http.StatusOK {
		t.Fatalf("session before its TTL: %d", w.Code)
	}
	f.clock.advance(time.Minute)
	for _, p := range []string{"/api/v1/jobs", "/console/session"} {
		if w := f.do(req{method: http.MethodGet, path: p, cookie: c}); w.Code != http.StatusUnauthorized {
			t.Errorf("GET %s with an expired session: %d, want 401", p, w.Code)
		}
	}
}

func TestRolesAndCSRF(t *testing.T) {
	f := newFixture(t, defaultUsers(t), false)
	sessions := map[string][2]any{}
	for _, u := range []string{"vera", "otto", "ada"} {
		c, csrf := f.login(u)
		sessions[u] = [2]any{c, csrf}
	}
	for _, tt := range []struct {
		user, method, path string
		noCSRF, wrongCSRF  bool
		want               int
	}{
		{user: "vera", method: http.MethodGet, path: "/api/v1/jobs", want: http.StatusOK},
		{user: "vera", method: http.MethodPost, path: "/api/v1/jobs", want: http.StatusForbidden},
		{user: "vera", method: http.MethodPost, path: "/alertmanager/api/v2/silences", want: http.StatusForbidden},
		{user: "vera", method: http.MethodGet, path: "/alertmanager/api/v2/silences", want: http.StatusOK},
		{user: "vera", method: http.MethodPost, path: "/api/v1/query", want: http.StatusOK},
		{user: "otto", method: http.MethodPost, path: "/api/v1/jobs", want: http.StatusAccepted},
		{user: "otto", method: http.MethodPost, path: "/api/v1/jobs", noCSRF: true, want: http.StatusForbidden},
		{user: "otto", method: http.MethodPost, path: "/api/v1/jobs", wrongCSRF: true, want: http.StatusForbidden},
		{user: "otto", method: http.MethodPost, path: "/alertmanager/api/v2/silences", want: http.StatusOK},
		{user: "otto", method: http.MethodDelete, path: "/alertmanager/api/v2/silence/abc", want: http.StatusOK},
		{user: "otto", method: http.MethodDelete, path: "/alertmanager/api/v2/silence/abc", noCSRF: true, want: http.StatusForbidden},
		{user: "otto", method: http.MethodPost, path: "/api/v1/remediation/billing/resume", want: http.StatusForbidden},
		{user: "ada", method: http.MethodPost, path: "/api/v1/remediation/billing/resume", want: http.StatusOK},
		{user: "ada", method: http.MethodPost, path: "/api/v1/jobs", want: http.StatusAccepted},
	} {
		s := sessions[tt.user]
		r := req{method: tt.method, path: tt.path, cookie: s[0].(*http.Cookie), csrf: s[1].(string), body: "{}"}
		if tt.noCSRF {
			r.csrf = ""
		}
		if tt.wrongCSRF {
			r.csrf = strings.Repeat("0", 64)
		}
		w := f.do(r)
		if w.Code != tt.want {
			t.Errorf("%s %s %s (no CSRF %v, wrong CSRF %v): %d %s, want %d", tt.user, tt.method, tt.path, tt.noCSRF, tt.wrongCSRF, w.Code, w.Body, tt.want)
			continue
		}
		if w.Code < 300 {
			var out struct{ Who string }
			_ = json.Unmarshal(w.Body.Bytes(), &out)
			if out.Who != tt.user {
				t.Errorf("%s %s: handler saw caller %q, want the user name for the job log", tt.method, tt.path, out.Who)
			}
		}
	}
}

func TestBearerTokens(t *testing.T) {
	f := newFixture(t, defaultUsers(t), false)
	c, csrf := f.login("otto")
	for _, tt := range []struct {
		name   string
		r      req
		want   int
		caller string
	}{
		{"token, no CSRF needed", req{method: http.MethodPost, path: "/api/v1/remediation/b/resume", bearer: testToken}, http.StatusOK, "ci"},
		{"wrong token", req{method: http.MethodGet, path: "/api/v1/jobs", bearer: "nope"}, http.StatusUnauthorized, ""},
		{"wrong token beside a valid session", req{method: http.MethodGet, path: "/api/v1/jobs", bearer: "nope", cookie: c, csrf: csrf}, http.StatusUnauthorized, ""},
		{"nothing", req{method: http.MethodGet, path: "/api/v1/jobs"}, http.StatusUnauthorized, ""},
		{"forged session", req{method: http.MethodGet, path: "/api/v1/jobs", cookie: &http.Cookie{Name: CookieName, Value: strings.Repeat("a", 64)}}, http.StatusUnauthorized, ""},
	} {
		w := f.do(tt.r)
		if w.Code != tt.want {
			t.Errorf("%s: %d %s, want %d", tt.name, w.Code, w.Body, tt.want)
			continue
		}
		if tt.caller != "" && !strings.Contains(w.Body.String(), `"who":"`+tt.caller+`"`) {
			t.Errorf("%s: caller not recorded: %s", tt.name, w.Body)
		}
	}
}

func TestLogout(t *testing.T) {
	f := newFixture(t, defaultUsers(t), false)
	c, csrf := f.login("otto")
	if w := f.do(req{method: http.MethodPost, path: "/console/logout", cookie: c}); w.Code != http.StatusForbidden {
		t.Errorf("logout without CSRF header: %d, want 403", w.Code)
	}
	w := f.do(req{method: http.MethodPost, path: "/console/logout", cookie: c, csrf: csrf})
	if w.Code != http.StatusOK {
		t.Fatalf("logout: %d %s", w.Code, w.Body)
	}
	cleared := false
	for _, ck := range w.Result().Cookies() {
		cleared = cleared || (ck.Name == CookieName && ck.Value == "" && ck.Expires.Before(f.clock.now()))
	}
	if !cleared {
		t.Errorf("logout did not clear the cookie: %v", w.Result().Cookies())
	}
	// The old cookie is dead on the server, not just in the browser.
	if w := f.do(req{method: http.MethodGet, path: "/api/v1/jobs", cookie: c}); w.Code != http.StatusUnauthorized {
		t.Errorf("API with a logged-out session: %d, want 401", w.Code)
	}
}

func TestRepeatedFailuresAreRefused(t *testing.T) {
	f := newFixture(t, defaultUsers(t), false)
	for range maxFailures {
		f.do(req{method: http.MethodPost, path: "/console/login", body: loginBody("otto", "guess-guess"), remote: "198.51.100.7:4000"})
	}
	right := req{method: http.MethodPost, path: "/console/login", body: loginBody("otto", passwords["otto"]), remote: "198.51.100.7:4001"}
	if w := f.do(right); w.Code != http.StatusTooManyRequests {
		t.Errorf("login after %d failures: %d, want 429 even with the right password", maxFailures, w.Code)
	}
	// Another address is not locked out by the guesser.
	if w := f.do(req{method: http.MethodPost, path: "/console/login", body: right.body, remote: "203.0.113.9:5000"}); w.Code != http.StatusOK {
		t.Errorf("login from another address: %d, want 200", w.Code)
	}
	f.clock.advance(failWindow)
	if w := f.do(right); w.Code != http.StatusOK {
		t.Errorf("login once the window passed: %d, want 200", w.Code)
	}
}

func TestWithoutUsers(t *testing.T) {
	f := newFixture(t, nil, false)
	w := f.do(req{method: http.MethodGet, path: "/"})
	if w.Code != http.StatusOK || !strings.Contains(w.Body.String(), "nines passwd") || !strings.Contains(w.Body.String(), "console:") {
		t.Errorf("GET / without users: %d, want the page on adding one:\n%s", w.Code, w.Body)
	}
	if w := f.do(req{method: http.MethodPost, path: "/console/login", body: loginBody("x", "y-y-y-y-y")}); w.Code != http.StatusNotFound {
		t.Errorf("login without users: %d, want 404", w.Code)
	}
	if w := f.do(req{method: http.MethodGet, path: "/api/v1/jobs", bearer: testToken}); w.Code != http.StatusOK {
		t.Errorf("API with a token and no console users: %d, want 200", w.Code)
	}
}

func TestPagesAreServedFromTheBinary(t *testing.T) {
	f := newFixture(t, defaultUsers(t), false)
	w := f.do(req{method: http.MethodGet, path: "/"})
	if w.Code != http.StatusOK || !strings.Contains(w.Body.String(), `src="/static/js/app.js"`) {
		t.Fatalf("GET /: %d\n%s", w.Code, w.Body)
	}
	if csp := w.Header().Get("Content-Security-Policy"); !strings.Contains(csp, "default-src 'self'") || !strings.Contains(csp, "frame-ancestors 'none'") {
		t.Errorf("Content-Security-Policy %q", csp)
	}
	// Every module a page imports is in the binary: nothing comes from a
	// CDN and nothing needs building.
	importRE := regexp.MustCompile(`from '\./([a-z]+\.js)'`)
	js, err := fs.Glob(New(Options{}).assets, "js/*.js")
	if err != nil || len(js) == 0 {
		t.Fatalf("embedded modules: %v %v", js, err)
	}
	for _, name := range js {
		w := f.do(req{method: http.MethodGet, path: "/static/" + name})
		if w.Code != http.StatusOK || !strings.Contains(w.Header().Get("Content-Type"), "javascript") {
			t.Errorf("GET /static/%s: %d %q", name, w.Code, w.Header().Get("Content-Type"))
		}
		for _, m := range importRE.FindAllStringSubmatch(w.Body.String(), -1) {
			if w := f.do(req{method: http.MethodGet, path: "/static/js/" + m[1]}); w.Code != http.StatusOK {
				t.Errorf("%s imports %s: %d", name, m[1], w.Code)
			}
		}
		// The SVG namespace is a name, not a place anything is fetched from.
		src := strings.ReplaceAll(w.Body.String(), "'http://www.w3.org/2000/svg'", "")
		if strings.Contains(src, "http://") || strings.Contains(src, "https://") {
			t.Errorf("%s refers to another origin", name)
		}
	}
}

// TestLoginFloodIsBounded: password checks run at most maxChecks at once;
// a login that finds every slot taken for checkWait is turned away (429)
// rather than queueing CPU the scrapes and probes need.
func TestLoginFloodIsBounded(t *testing.T) {
	f := newFixture(t, defaultUsers(t), false)
	for range maxChecks {
		f.con.checks <- struct{}{} // checks in progress elsewhere
	}
	start := time.Now()
	right := req{method: http.MethodPost, path: "/console/login", body: loginBody("ada", passwords["ada"]), remote: "192.0.2.1:1234"}
	if w := f.do(right); w.Code != http.StatusTooManyRequests || !strings.Contains(errorOf(t, w), "too many logins in progress") {
		t.Errorf("login with every check slot taken: %d %s, want 429", w.Code, errorOf(t, w))
	}
	if waited := time.Since(start); waited < checkWait {
		t.Errorf("turned away after %s, want a wait of %s for a slot", waited, checkWait)
	}
	<-f.con.checks // one check ends
	if w := f.do(right); w.Code != http.StatusOK {
		t.Errorf("login with a free slot: %d, want 200", w.Code)
	}
	if len(f.con.checks) != maxChecks-1 {
		t.Errorf("%d slots taken after the login, want %d: a login must free its slot", len(f.con.checks), maxChecks-1)
	}
}
