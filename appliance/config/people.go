package config

import (
	"fmt"
	"net/url"
	"time"

	"go.yaml.in/yaml/v3"
	"golang.org/x/crypto/bcrypt"
)

// Roles of console users, each allowed what the one before it is, and
// admin (roles.go). A user acts with the API role APIRole gives.
const (
	RoleViewer   = "viewer"   // reads everything, changes nothing (read)
	RoleOperator = "operator" // also starts jobs and silences alerts (operate)
)

// DefaultSessionTTL is how long a console login lasts.
const DefaultSessionTTL = 12 * time.Hour

// Console configures the web console's login.
type Console struct {
	Users []User `yaml:"users"`
	// SessionTTL is how long a login lasts; default 12h.
	SessionTTL Duration `yaml:"session_ttl"`
}

// User is a console user. Only a bcrypt hash of the password is kept
// (`nines passwd` prints one); the password itself is never configured.
type User struct {
	Name         string `yaml:"name"`
	PasswordHash Secret `yaml:"password_hash"`
	Role         string `yaml:"role"`
}

// Grafana is a Grafana to provision dashboards into.
type Grafana struct {
	URL string `yaml:"url"`
	// A service account token with the Editor role (dashboards, folders)
	// and data source write permission.
	TokenFile string `yaml:"token_file"`
	TokenEnv  string `yaml:"token_env"`
	Token     Secret `yaml:"-"`
	// Folder the dashboards go into; default "nines".
	Folder string `yaml:"folder"`
	// DatasourceURL is how Grafana reaches this appliance; default
	// external_url, else the listen address.
	DatasourceURL string `yaml:"datasource_url"`
	// DatasourceToken names the api.tokens entry Grafana's data source
	// sends; it must have role read. Default: the first read token.
	DatasourceToken string `yaml:"datasource_token"`
}

// Maintenance is a declared maintenance window of a cluster.
type Maintenance struct {
	From   Time   `yaml:"from"` // RFC 3339
	To     Time   `yaml:"to"`
	Reason string `yaml:"reason"`
}

// Time is an RFC 3339 instant in the config. A bad value becomes a
// *yaml.TypeError with its line, so every problem is reported at once.
type Time struct{ time.Time }

// UnmarshalYAML parses the instant.
func (t *Time) UnmarshalYAML(n *yaml.Node) error {
	v, err := time.Parse(time.RFC3339, n.Value)
	if n.Kind != yaml.ScalarNode || err != nil {
		return &yaml.TypeError{Errors: []string{fmt.Sprintf("line %d: invalid time %q: want RFC 3339, e.g. 2026-01-31T22:00:00Z", n.Line, n.Value)}}
	}
	t.Time = v
	return nil
}

// MarshalYAML writes the instant back in RFC 3339.
func (t Time) MarshalYAML() (any, error) { return t.Format(time.RFC3339), nil }

func (c *Config) validateConsole(at func(path, format string, args ...any)) {
	if c.Console.SessionTTL.Duration < time.Minute {
		at("console.session_ttl", "must be at least 1m, got %s", c.Console.SessionTTL.Duration)
	}
	seen := map[string]bool{}
	for i, u := range c.Console.Users {
		p := fmt.Sprintf("console.users[%d]", i)
		switch {
		case u.Name == "":
			at(p+".name", "required")
		case seen[u.Name]:
			at(p+".name", "duplicate user %q", u.Name)
		}
		seen[u.Name] = true
		if APIRole(u.Role) == "" {
			at(p+".role", "%q is not one of viewer, operator, admin", u.Role)
		}
		// The hash is checked here so a typo fails at start, not at the
		// first login; the message never repeats the hash.
		if _, err := bcrypt.Cost([]byte(u.PasswordHash)); err != nil {
			at(p+".password_hash", "not a bcrypt hash (make one with `nines passwd`)")
		}
	}
}

func (c *Config) validateGrafana(at func(path, format string, args ...any)) {
	g := c.Grafana
	if g == nil {
		return
	}
	if u, err := url.Parse(g.URL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		at("grafana.url", "bad URL %q: want http(s)://host:port", g.URL)
	}
	if g.DatasourceToken == "" {
		at("grafana.datasource_token", "no api.tokens entry has role read: add one (role: read) for Grafana's data source, or name one here")
		return
	}
	t, found := c.tokenNamed(g.DatasourceToken)
	switch {
	case !found:
		at("grafana.datasource_token", "no api.tokens entry named %q", g.DatasourceToken)
	case t.Role != RoleRead:
		at("grafana.datasource_token", "token %q has role %q: Grafana's data source gets a read token (role: read)", t.Name, t.Role)
	}
}

func validateMaintenance(cl *Cluster, p string, at func(path, format string, args ...any)) {
	for i, m := range cl.Maintenance {
		mp := fmt.Sprintf("%s.maintenance[%d]", p, i)
		switch {
		case m.From.IsZero():
			at(mp+".from", "required (RFC 3339, e.g. 2026-01-31T22:00:00Z)")
		case m.To.IsZero():
			at(mp+".to", "required (RFC 3339, e.g. 2026-01-31T23:00:00Z)")
		case !m.To.After(m.From.Time):
			at(mp+".to", "%s is not after from %s", m.To.Format(time.RFC3339), m.From.Format(time.RFC3339))
		}
	}
}

// InMaintenance reports whether t falls in one of the cluster's declared
// maintenance windows [from, to).
func (cl *Cluster) InMaintenance(t time.Time) bool {
	for _, m := range cl.Maintenance {
		if !t.Before(m.From.Time) && t.Before(m.To.Time) {
			return true
		}
	}
	return false
}
