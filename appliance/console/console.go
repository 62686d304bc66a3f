// Package console is the appliance's web console: static pages (plain
// HTML, CSS and JavaScript modules embedded in the binary, no build step,
// nothing fetched from elsewhere) that read the JSON API, and the login
// that guards it. Users come from the config with bcrypt password hashes
// and a role (viewer, operator, admin); sessions are kept in memory.
//
// The same guard admits API callers with a bearer token (its role) or a
// console session (the user's role, and a CSRF header on every request that
// changes something); the appliance's route table decides what each role
// may call.
package console

import (
	"embed"
	"io/fs"
	"log/slog"
	"net/http"
	"net/netip"
	"time"

	"github.com/labstack/echo/v4"
	"golang.org/x/crypto/bcrypt"

	"github.com/nines-project/nines/appliance/config"
)

//go:embed static
var static embed.FS

// Names shared with the pages.
const (
	CookieName = "nines_session"
	// HeaderCSRF carries the session's CSRF token on every request that
	// changes something. A cross-site form cannot set a header, and a
	// cross-site script cannot read the token; SameSite=Strict alone
	// does not protect users of older browsers.
	HeaderCSRF = "X-Nines-CSRF"
)

// Options configure a Console.
type Options struct {
	Users []config.User
	// TTL is how long a login lasts; config.DefaultSessionTTL if zero.
	TTL time.Duration
	// Secure marks the cookie Secure: set it when browsers reach the
	// console over HTTPS (TLS here, or an HTTPS proxy in front).
	Secure bool
	// TrustedProxies are the peers whose X-Forwarded-For names the
	// client (for the login limits and logs); nobody else's counts.
	TrustedProxies []netip.Prefix
	// FailDelay is added to every failed login, slowing guessing; 300 ms
	// if zero, none if negative.
	FailDelay time.Duration
	Logger    *slog.Logger
	Now       func() time.Time
}

// Console serves the pages and owns the sessions.
type Console struct {
	opts     Options
	users    map[string]config.User
	sessions *sessions
	fails    *failures
	perAddr  *addrLimiter
	// dummyHash is compared against when the user name is unknown, so a
	// wrong name takes as long as a wrong password and names cannot be
	// probed by timing.
	dummyHash []byte
	assets    fs.FS
	// checks bounds the bcrypt comparisons running at once: each costs
	// tens of milliseconds of CPU, and a flood of logins (any names) must
	// not starve the scrapes and probes the appliance is there for.
	checks chan struct{}
}

// Password checks at once, and how long a login waits for a free slot
// before it is turned away with 429.
const (
	maxChecks = 2
	checkWait = 2 * time.Second
)

// New builds a console for the configured users (validated by config).
func New(o Options) *Console {
	if o.TTL <= 0 {
		o.TTL = config.DefaultSessionTTL
	}
	if o.FailDelay == 0 {
		o.FailDelay = 300 * time.Millisecond
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	c := &Console{opts: o, users: map[string]config.User{}, sessions: newSessions(o.TTL, o.Now),
		fails: &failures{now: o.Now, m: map[string]failCount{}}, perAddr: newAddrLimiter(o.Now), checks: make(chan struct{}, maxChecks)}
	cost := bcrypt.DefaultCost
	for _, u := range o.Users {
		c.users[u.Name] = u
		if n, err := bcrypt.Cost([]byte(u.PasswordHash.Reveal())); err == nil {
			cost = n
		}
	}
	c.dummyHash, _ = bcrypt.GenerateFromPassword([]byte(randomID()), cost)
	c.assets, _ = fs.Sub(static, "static")
	return c
}

// Register mounts the console on e: the pages at / and /static/, and the
// login endpoints under /console/. None of them needs a login; the data
// the pages show comes from the guarded API.
func (c *Console) Register(e *echo.Echo) {
	g := e.Group("", securityHeaders)
	g.GET("/", c.index)
	files := http.StripPrefix("/static/", http.FileServer(http.FS(c.assets)))
	g.GET("/static/*", echo.WrapHandler(files))
	g.POST("/console/login", c.login)
	g.POST("/console/logout", c.logout)
	g.GET("/console/session", c.session)
}

// securityHeaders keeps the pages to their own origin's scripts and out
// of other sites' frames, and makes the browser revalidate the assets so
// an upgraded appliance serves its new pages at once.
func securityHeaders(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		h := c.Response().Header()
		h.Set("Content-Security-Policy", "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'; base-uri 'none'; form-action 'self'")
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("X-Frame-Options", "DENY")
		h.Set("Referrer-Policy", "same-origin")
		h.Set("Cache-Control", "no-cache")
		return next(c)
	}
}

// index serves the single page, or, when no user is configured, a page
// saying how to add one (the API still works with tokens).
func (c *Console) index(ec echo.Context) error {
	name := "index.html"
	if len(c.users) == 0 {
		name = "setup.html"
	}
	b, err := fs.ReadFile(c.assets, name)
	if err != nil {
		return ec.String(http.StatusInternalServerError, "console page missing from the binary: "+err.Error())
	}
	return ec.HTMLBlob(http.StatusOK, b)
}
