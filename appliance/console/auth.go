package console

import (
	"crypto/subtle"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/labstack/echo/v4"
	"golang.org/x/crypto/bcrypt"

	"github.com/nines-project/nines/appliance/config"
)

// apiError is the Prometheus API's error shape, which every JSON error of
// the appliance uses.
type apiError struct {
	Status    string `json:"status"`
	ErrorType string `json:"errorType"`
	Error     string `json:"error"`
}

func jsonError(c echo.Context, code int, kind, msg string) error {
	return c.JSON(code, apiError{Status: "error", ErrorType: kind, Error: msg})
}

// loginFailed is the one message every failed login gets, whether the
// name or the password was wrong.
const loginFailed = "wrong user name or password"

// sessionInfo is what the page learns about its session.
type sessionInfo struct {
	User      string    `json:"user"`
	Role      string    `json:"role"`
	CSRF      string    `json:"csrf"`
	ExpiresAt time.Time `json:"expires_at"`
}

func infoOf(s Session) sessionInfo {
	return sessionInfo{User: s.User, Role: s.Role, CSRF: s.CSRF, ExpiresAt: s.Expires.UTC()}
}

// login is POST /console/login with {"user", "password"} as JSON. Only
// JSON is accepted: a cross-site HTML form cannot send it without the
// browser asking this origin first, so no other site can log a visitor in.
func (c *Console) login(ec echo.Context) error {
	r := ec.Request()
	if len(c.users) == 0 {
		return jsonError(ec, http.StatusNotFound, "not_found", "no console users are configured: add one under console.users (hash its password with `nines passwd`)")
	}
	if ct := r.Header.Get(echo.HeaderContentType); !strings.HasPrefix(ct, echo.MIMEApplicationJSON) {
		return jsonError(ec, http.StatusUnsupportedMediaType, "bad_data", "log in with a JSON body {\"user\": ..., \"password\": ...}")
	}
	remote := clientAddr(r, c.opts.TrustedProxies)
	if !c.perAddr.allow(remote) {
		c.opts.Logger.Warn("console login refused: too many attempts from this address", "remote", remote)
		return jsonError(ec, http.StatusTooManyRequests, "too_many_requests", "too many login attempts from your address: wait a few seconds and try again")
	}
	var req struct {
		User     string `json:"user"`
		Password string `json:"password"`
	}
	if err := json.NewDecoder(http.MaxBytesReader(ec.Response(), r.Body, 4<<10)).Decode(&req); err != nil {
		return jsonError(ec, http.StatusBadRequest, "bad_data", "decode login request: "+err.Error())
	}
	key := req.User + "\x00" + remote
	log := c.opts.Logger.With("user", req.User, "remote", remote)
	if c.fails.blocked(key) {
		log.Warn("console login refused: too many failed attempts")
		return jsonError(ec, http.StatusTooManyRequests, "too_many_requests", fmt.Sprintf("too many failed logins: wait %s and try again", failWindow))
	}
	u, known := c.users[req.User]
	hash := c.dummyHash
	if known {
		hash = []byte(u.PasswordHash.Reveal())
	}
	select {
	case c.checks <- struct{}{}:
	case <-time.After(checkWait):
		log.Warn("console login refused: too many logins in progress")
		return jsonError(ec, http.StatusTooManyRequests, "too_many_requests", "too many logins in progress: try again in a few seconds")
	case <-r.Context().Done():
		return r.Context().Err()
	}
	// bcrypt compares in constant time; the unknown name is compared
	// against a dummy hash so both failures take as long.
	err := bcrypt.CompareHashAndPassword(hash, []byte(req.Password))
	<-c.checks
	if err != nil || !known {
		c.fails.fail(key)
		log.Warn("console login failed")
		if c.opts.FailDelay > 0 {
			time.Sleep(c.opts.FailDelay)
		}
		return jsonError(ec, http.StatusUnauthorized, "unauthorized", loginFailed)
	}
	c.fails.reset(key)
	s := c.sessions.create(u.Name, u.Role)
	ec.SetCookie(c.cookie(s.ID, s.Expires))
	log.Info("console login", "role", u.Role)
	return ec.JSON(http.StatusOK, map[string]any{"status": "success", "data": infoOf(s)})
}

func (c *Console) cookie(value string, expires time.Time) *http.Cookie {
	return &http.Cookie{Name: CookieName, Value: value, Path: "/", Expires: expires, HttpOnly: true,
		Secure: c.opts.Secure, SameSite: http.SameSiteStrictMode}
}

// logout is POST /console/logout; it needs the CSRF header, so another
// site cannot log the user out either.
func (c *Console) logout(ec echo.Context) error {
	s, ok := c.sessionOf(ec.Request())
	if !ok {
		return jsonError(ec, http.StatusUnauthorized, "unauthorized", "not logged in")
	}
	if !csrfOK(ec.Request(), s) {
		return jsonError(ec, http.StatusForbidden, "forbidden", "missing or wrong "+HeaderCSRF+" header")
	}
	c.sessions.delete(s.ID)
	ec.SetCookie(c.cookie("", time.Unix(0, 0)))
	c.opts.Logger.Info("console logout", "user", s.User, "remote", clientAddr(ec.Request(), c.opts.TrustedProxies))
	return ec.JSON(http.StatusOK, map[string]any{"status": "success"})
}

// session is GET /console/session: who is logged in, with the CSRF token
// the page must send back.
func (c *Console) session(ec echo.Context) error {
	s, ok := c.sessionOf(ec.Request())
	if !ok {
		return jsonError(ec, http.StatusUnauthorized, "unauthorized", "not logged in")
	}
	return ec.JSON(http.StatusOK, map[string]any{"status": "success", "data": infoOf(s)})
}

func (c *Console) sessionOf(r *http.Request) (Session, bool) {
	ck, err := r.Cookie(CookieName)
	if err != nil || ck.Value == "" {
		return Session{}, false
	}
	return c.sessions.get(ck.Value)
}

func csrfOK(r *http.Request, s Session) bool {
	got := r.Header.Get(HeaderCSRF)
	return got != "" && subtle.ConstantTimeCompare([]byte(got), []byte(s.CSRF)) == 1
}

func safeMethod(m string) bool {
	return m == http.MethodGet || m == http.MethodHead || m == http.MethodOptions
}

// Policy decides whether a caller with an API role (config.RoleRead ...)
// may call method on the route pattern; session is true for a console
// login, false for a bearer token. need is the role the route asks for,
// named in the refusal.
type Policy func(method, route, role string, session bool) (need string, ok bool)

// Guard is the API's authentication and authorization. A request with an
// Authorization header is decided by bearer alone: the token's role, its
// name recorded as "token" for the job log. Otherwise a live session
// admits it with the user's role (config.APIRole), and a request that is
// not a read must carry the session's CSRF token. policy then decides;
// the caller's role is recorded as "role" for handlers that check more
// (force_node needs admin).
func (c *Console) Guard(bearer func(token string) (name, role string, ok bool), policy Policy) echo.MiddlewareFunc {
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(ec echo.Context) error {
			name, role, session, err := c.authenticate(ec, bearer)
			if err != nil || name == "" {
				return err
			}
			r := ec.Request()
			if need, ok := policy(r.Method, ec.Path(), role, session); !ok {
				who := "token " + strconv.Quote(name)
				if session {
					who = "user " + strconv.Quote(name)
				}
				return jsonError(ec, http.StatusForbidden, "forbidden", fmt.Sprintf("%s has role %s; %s %s needs %s", who, role, r.Method, r.URL.Path, need))
			}
			ec.Set("token", name)
			ec.Set("role", role)
			return next(ec)
		}
	}
}

// authenticate finds the caller: a bearer token or a session. When it
// returns no name it has already answered the request (401 or 403).
func (c *Console) authenticate(ec echo.Context, bearer func(string) (string, string, bool)) (name, role string, session bool, err error) {
	r := ec.Request()
	if h := r.Header.Get(echo.HeaderAuthorization); h != "" {
		if tok, ok := strings.CutPrefix(h, "Bearer "); ok {
			if name, role, ok := bearer(tok); ok {
				return name, role, false, nil
			}
		}
		return "", "", false, unauthorized(ec)
	}
	s, ok := c.sessionOf(r)
	if !ok {
		return "", "", false, unauthorized(ec)
	}
	if !safeMethod(r.Method) && !csrfOK(r, s) {
		return "", "", false, jsonError(ec, http.StatusForbidden, "forbidden", "missing or wrong "+HeaderCSRF+" header")
	}
	return s.User, config.APIRole(s.Role), true, nil
}

func unauthorized(ec echo.Context) error {
	ec.Response().Header().Set("WWW-Authenticate", `Bearer realm="nines"`)
	return jsonError(ec, http.StatusUnauthorized, "unauthorized", "a valid bearer token or console login is required")
}
