package config

// API roles. read ⊂ operate ⊂ admin; webhook is apart: the Alertmanager
// that holds it may post alerts and nothing else, and a read token cannot
// post alerts. admin may do everything, the webhook included.
const (
	RoleRead    = "read"    // queries, metrics, clusters, jobs, reports, Alertmanager GETs
	RoleWebhook = "webhook" // POST /api/v1/alerts/webhook only
	RoleOperate = "operate" // read, and start jobs, create and delete silences
	// RoleAdmin is every route, resuming halted remediation and force_node
	// in a job request included (shared with console users).
	RoleAdmin = "admin"
)

// TokenRoles are the roles an API token may have, in the order errors list them.
var TokenRoles = []string{RoleRead, RoleWebhook, RoleOperate, RoleAdmin}

// Allows reports whether a caller with role have may call a route that
// needs role need.
func Allows(have, need string) bool {
	switch {
	case have == "" || need == "":
		return false
	case have == need, have == RoleAdmin:
		return true
	}
	return have == RoleOperate && need == RoleRead
}

// APIRole is the API role of a console user's role: viewer reads,
// operator operates, admin is admin. The API spellings are accepted too.
func APIRole(userRole string) string {
	switch userRole {
	case RoleViewer, RoleRead:
		return RoleRead
	case RoleOperator, RoleOperate:
		return RoleOperate
	case RoleAdmin:
		return RoleAdmin
	}
	return ""
}

func validTokenRole(r string) bool {
	for _, x := range TokenRoles {
		if r == x {
			return true
		}
	}
	return false
}

// checkTokenRole reports a token's missing or unknown role with the fix.
func checkTokenRole(t Token, p string, at func(path, format string, args ...any)) {
	switch {
	case t.Role == "":
		at(p+".role", "missing; give each token one of read, webhook, operate, admin (Grafana needs read, Alertmanager's webhook needs webhook, the CLI needs operate or admin)")
	case !validTokenRole(t.Role):
		at(p+".role", "%q is not one of read, webhook, operate, admin", t.Role)
	}
}

// firstTokenWithRole is the name of the first token with exactly role.
func (c *Config) firstTokenWithRole(role string) string {
	for _, t := range c.API.Tokens {
		if t.Role == role {
			return t.Name
		}
	}
	return ""
}

// tokenNamed is the api.tokens entry called name.
func (c *Config) tokenNamed(name string) (Token, bool) {
	for _, t := range c.API.Tokens {
		if t.Name == name {
			return t, true
		}
	}
	return Token{}, false
}
