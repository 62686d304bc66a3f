package appliance

import (
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"regexp"
	"strings"
	"testing"

	"github.com/labstack/echo/v4"
	"golang.org/x/crypto/bcrypt"

	"github.com/nines-project/nines/appliance/config"
	"github.com/nines-project/nines/appliance/console"
	"github.com/nines-project/nines/remediator"
)

// One token and one console user per role.
var (
	testTokens = []config.Token{
		{Name: "grafana", Role: config.RoleRead, Value: "read-token-0123456789"},
		{Name: "alertmanager", Role: config.RoleWebhook, Value: "webhook-token-0123456789"},
		{Name: "ops", Role: config.RoleOperate, Value: "operate-token-0123456789"},
		{Name: "root", Role: config.RoleAdmin, Value: "admin-token-0123456789"},
	}
	testUsers = map[string]string{"vera": config.RoleViewer, "otto": config.RoleOperator, "ada": config.RoleAdmin}
)

// routeFixture is the appliance's router as routes() builds it (the real
// console guard, policy and table) with stub handlers, so the test needs
// no store: each answers 200, except POST /api/v1/jobs, which decodes the
// request and applies the real force_node check first.
type routeFixture struct {
	e        *echo.Echo
	sessions map[string][2]string // user: cookie value, CSRF token
}

func newRouteFixture(t *testing.T) *routeFixture {
	t.Helper()
	h, err := bcrypt.GenerateFromPassword([]byte("password-123"), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	var users []config.User
	for name, role := range testUsers {
		users = append(users, config.User{Name: name, Role: role, PasswordHash: config.Secret(h)})
	}
	e := newRouter(false)
	con := console.New(console.Options{Users: users, FailDelay: -1, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	con.Register(e)
	api := e.Group("", con.Guard(func(tok string) (string, string, bool) { return tokenOf(testTokens, tok) }, policyOf(apiRoutes)))
	registerAPI(api, apiRoutes, true, stubHandler)
	f := &routeFixture{e: e, sessions: map[string][2]string{}}
	for name := range testUsers {
		f.sessions[name] = f.login(t, name)
	}
	return f
}

func stubHandler(r route) echo.HandlerFunc {
	if r.Method == http.MethodPost && r.Path == "/api/v1/jobs" {
		return func(c echo.Context) error {
			var req remediator.ManualRequest
			if err := json.NewDecoder(c.Request().Body).Decode(&req); err != nil {
				return c.String(http.StatusBadRequest, err.Error())
			}
			if msg, refused := forceRefused(c, req); refused {
				return c.String(http.StatusForbidden, msg)
			}
			return c.NoContent(http.StatusAccepted)
		}
	}
	return func(c echo.Context) error { return c.NoContent(http.StatusOK) }
}

func (f *routeFixture) login(t *testing.T, user string) [2]string {
	t.Helper()
	r := httptest.NewRequest(http.MethodPost, "/console/login", strings.NewReader(`{"user":"`+user+`","password":"password-123"}`))
	r.Header.Set("Content-Type", "application/json")
	w := httptest.NewRecorder()
	f.e.ServeHTTP(w, r)
	var out struct{ Data struct{ CSRF string } }
	if err := json.Unmarshal(w.Body.Bytes(), &out); err != nil || w.Code != http.StatusOK {
		t.Fatalf("login %s: %d %s", user, w.Code, w.Body)
	}
	for _, c := range w.Result().Cookies() {
		if c.Name == console.CookieName {
			return [2]string{c.Value, out.Data.CSRF}
		}
	}
	t.Fatalf("login %s: no cookie", user)
	return [2]string{}
}

// concrete turns a route pattern into a path that matches it.
func concrete(pattern string) string {
	p := regexp.MustCompile(`:[a-z]+`).ReplaceAllString(pattern, "x")
	return strings.Replace(p, "*", "api/v2/status", 1)
}

// call sends method path with a bearer token (tok) or a session (user).
func (f *routeFixture) call(method, path, tok, user, body string) *httptest.ResponseRecorder {
	if body == "" && method == http.MethodPost {
		body = "{}"
	}
	r := httptest.NewRequest(method, path, strings.NewReader(body))
	r.Header.Set("Content-Type", "application/json")
	if tok != "" {
		r.Header.Set("Authorization", "Bearer "+tok)
	}
	if s, ok := f.sessions[user]; ok {
		r.AddCookie(&http.Cookie{Name: console.CookieName, Value: s[0]})
		r.Header.Set(console.HeaderCSRF, s[1])
	}
	w := httptest.NewRecorder()
	f.e.ServeHTTP(w, r)
	return w
}

// TestRouteRoles walks the route table: every route, every token role and
// every console user answers as the table says (2xx or 403), and 401
// without a credential or with a wrong one.
func TestRouteRoles(t *testing.T) {
	f := newRouteFixture(t)
	for _, r := range apiRoutes {
		path := concrete(r.Path)
		for _, cred := range []struct{ name, tok string }{{"no credential", ""}, {"a wrong token", "wrong-token-0123456789"}} {
			if w := f.call(r.Method, path, cred.tok, "", ""); w.Code != http.StatusUnauthorized {
				t.Errorf("%s %s with %s: %d, want 401", r.Method, path, cred.name, w.Code)
			}
		}
		for _, tok := range testTokens {
			checkAnswer(t, f.call(r.Method, path, tok.Value.Reveal(), "", ""), r, "token "+tok.Name, tok.Role, config.Allows(tok.Role, r.Role))
		}
		for user, role := range testUsers {
			apiRole := config.APIRole(role)
			checkAnswer(t, f.call(r.Method, path, "", user, ""), r, "user "+user, apiRole, !r.noConsole && config.Allows(apiRole, r.Role))
		}
	}
}

func checkAnswer(t *testing.T, w *httptest.ResponseRecorder, r route, who, role string, allowed bool) {
	t.Helper()
	switch {
	case allowed && (w.Code < 200 || w.Code > 299):
		t.Errorf("%s %s by %s (%s): %d %s, want 2xx (route needs %s)", r.Method, r.Path, who, role, w.Code, w.Body, r.Role)
	case !allowed && w.Code != http.StatusForbidden:
		t.Errorf("%s %s by %s (%s): %d, want 403 (route needs %s)", r.Method, r.Path, who, role, w.Code, r.Role)
	}
}

// TestRolesAreHierarchical pins the documented order: admin ⊇ operate ⊇
// read, admin ⊇ webhook, and webhook and read apart.
func TestRolesAreHierarchical(t *testing.T) {
	for _, tt := range []struct {
		have, need string
		want       bool
	}{
		{config.RoleAdmin, config.RoleRead, true}, {config.RoleAdmin, config.RoleWebhook, true}, {config.RoleAdmin, config.RoleOperate, true},
		{config.RoleOperate, config.RoleRead, true}, {config.RoleOperate, config.RoleWebhook, false}, {config.RoleOperate, config.RoleAdmin, false},
		{config.RoleRead, config.RoleOperate, false}, {config.RoleRead, config.RoleWebhook, false},
		{config.RoleWebhook, config.RoleRead, false}, {config.RoleWebhook, config.RoleWebhook, true},
		{"", config.RoleRead, false},
	} {
		if got := config.Allows(tt.have, tt.need); got != tt.want {
			t.Errorf("Allows(%q, %q) = %v, want %v", tt.have, tt.need, got, tt.want)
		}
	}
}

// TestUnroutedAlertmanagerWrites: writes to the Alertmanager API other
// than silences and (admin tokens) alerts are not routed at all.
func TestUnroutedAlertmanagerWrites(t *testing.T) {
	f := newRouteFixture(t)
	for _, p := range []string{"/alertmanager/-/reload", "/alertmanager/api/v2/status"} {
		if w := f.call(http.MethodPost, p, "admin-token-0123456789", "", ""); w.Code != http.StatusMethodNotAllowed && w.Code != http.StatusNotFound {
			t.Errorf("POST %s by admin: %d, want 404 or 405", p, w.Code)
		}
	}
	if w := f.call(http.MethodPost, "/alertmanager/api/v2/alerts", "", "ada", "[]"); w.Code != http.StatusForbidden {
		t.Errorf("console admin posting alerts into Alertmanager: %d, want 403", w.Code)
	}
}

// TestForceNodeNeedsAdmin: operate may start jobs, but naming force_node
// needs admin, for tokens and sessions alike.
func TestForceNodeNeedsAdmin(t *testing.T) {
	f := newRouteFixture(t)
	forced := `{"kind":"recover","cluster":"billing","force_node":"db1:3306"}`
	for _, tt := range []struct {
		tok, user string
		body      string
		want      int
	}{
		{tok: "operate-token-0123456789", body: `{"kind":"recover","cluster":"billing"}`, want: http.StatusAccepted},
		{tok: "operate-token-0123456789", body: forced, want: http.StatusForbidden},
		{user: "otto", body: forced, want: http.StatusForbidden},
		{tok: "admin-token-0123456789", body: forced, want: http.StatusAccepted},
		{user: "ada", body: forced, want: http.StatusAccepted},
	} {
		w := f.call(http.MethodPost, "/api/v1/jobs", tt.tok, tt.user, tt.body)
		if w.Code != tt.want {
			t.Errorf("token %q user %q %s: %d %s, want %d", tt.tok, tt.user, tt.body, w.Code, w.Body, tt.want)
		}
		if w.Code == http.StatusForbidden && !strings.Contains(w.Body.String(), "needs role admin") {
			t.Errorf("refusal does not name the role needed: %s", w.Body)
		}
	}
}

// TestREADMERouteTable: README's route table is the code's, row for row.
func TestREADMERouteTable(t *testing.T) {
	b, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	got := readmeRoutes(t, string(b))
	var want []string
	for _, r := range apiRoutes {
		want = append(want, routeRow(r))
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("README's route table differs from apiRoutes (appliance/routes.go).\nREADME:\n%s\n\ncode (paste this):\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

// routeRow is a route as README writes it.
func routeRow(r route) string {
	con := "yes"
	if r.noConsole {
		con = "no"
	}
	return fmt.Sprintf("| %s | `%s` | %s | %s |", r.Method, r.Path, r.Role, con)
}

// readmeRoutes are the rows of the table headed | method | path | role | console |.
func readmeRoutes(t *testing.T, md string) []string {
	t.Helper()
	const header = "| method | path | role | console |"
	i := strings.Index(md, header)
	if i < 0 {
		t.Fatalf("README has no table headed %q", header)
	}
	var rows []string
	for _, line := range strings.Split(md[i:], "\n")[2:] {
		if !strings.HasPrefix(line, "|") {
			break
		}
		rows = append(rows, strings.TrimSpace(line))
	}
	return rows
}
