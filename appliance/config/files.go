package config

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/nines-project/nines/internal/yamlfile"
)

// readFiles is validation's last step and the only one that touches the
// file system and the environment: it reads every secret (API tokens,
// agent tokens, database passwords, the Grafana token) into its Secret
// field, and checks that the TLS files, rule files and Alertmanager
// config it names exist. Paths are already resolved (resolvePaths).
func (c *Config) readFiles(at func(path, format string, args ...any)) {
	if c.TLS != nil {
		for field, p := range map[string]string{"cert_file": c.TLS.CertFile, "key_file": c.TLS.KeyFile} {
			if p == "" {
				continue // checkFields reports it
			}
			if _, err := os.ReadFile(p); err != nil {
				at("tls."+field, "cannot read %q: %v", p, yamlfile.UnwrapPathErr(err))
			}
		}
	}
	if cl := c.Alertmanager.Cluster; cl != nil && cl.TLS != nil {
		for field, p := range map[string]string{"cert_file": cl.TLS.CertFile, "key_file": cl.TLS.KeyFile, "ca_file": cl.TLS.CAFile} {
			if p == "" {
				continue // checkFields reports it
			}
			if _, err := os.ReadFile(p); err != nil {
				at("alertmanager.cluster.tls."+field, "cannot read %q: %v", p, yamlfile.UnwrapPathErr(err))
			}
		}
	}
	if st := c.Store; st != nil {
		if st.TokenFile != "" || st.TokenEnv != "" {
			v, field, err := c.readSecret(st.TokenFile, st.TokenEnv, "bearer_token_file", "bearer_token_env")
			if err != nil {
				at("store."+field, "%v", err)
			}
			st.Token = Secret(v)
		}
		if st.CAFile != "" {
			st.CAs, _ = readCAFile(st.CAFile, "store.ca_file", at)
		}
	}
	for i := range c.API.Tokens {
		t := &c.API.Tokens[i]
		p := fmt.Sprintf("api.tokens[%d]", i)
		v, field, err := c.readSecret(t.TokenFile, t.TokenEnv, "token_file", "token_env")
		if err != nil {
			at(p+"."+field, "%v", err)
			continue
		}
		if len(v) < 16 {
			at(p+"."+field, "token is %d characters; use at least 16", len(v))
		}
		t.Value = Secret(v)
	}
	for i := range c.Clusters {
		cl := &c.Clusters[i]
		p := fmt.Sprintf("clusters[%d]", i)
		agents := false
		for _, n := range cl.Nodes {
			agents = agents || n.Agent != ""
		}
		for _, d := range cl.DRReplicas {
			agents = agents || d.Agent != ""
		}
		if cl.NDB != nil {
			for _, d := range cl.NDB.DataNodes {
				agents = agents || d.Agent != ""
			}
			for _, m := range cl.NDB.Management {
				agents = agents || m.Agent != ""
			}
		}
		if agents || cl.AgentTokenFile != "" || cl.AgentTokenEnv != "" {
			v, field, err := c.readSecret(cl.AgentTokenFile, cl.AgentTokenEnv, "agent_token_file", "agent_token_env")
			switch {
			case err != nil && cl.AgentTokenFile == "" && cl.AgentTokenEnv == "":
				at(p+"."+field, "required when a node names an agent: %v", err)
			case err != nil:
				at(p+"."+field, "%v", err)
			case len(v) < 16:
				at(p+"."+field, "token is %d characters; use at least 16", len(v))
			default:
				cl.AgentToken = Secret(v)
			}
		}
		readAgentTLS(cl, p, at)
		cr := &cl.Credentials
		v, field, err := c.readSecret(cr.PasswordFile, cr.PasswordEnv, "password_file", "password_env")
		if err != nil {
			at(p+".credentials."+field, "%v", err)
		}
		cr.Password = Secret(v)
		if cr.TLS != nil && cr.TLS.CAFile != "" {
			tc, err := cr.TLS.Config()
			if err != nil {
				at(p+".credentials.tls", "%v", err)
			}
			cr.TLSConfig = tc
		}
	}
	for i, pat := range c.RuleFiles {
		matches, err := filepath.Glob(pat)
		switch {
		case err != nil:
			at(fmt.Sprintf("rule_files[%d]", i), "bad pattern %q: %v", pat, err)
		case len(matches) == 0:
			at(fmt.Sprintf("rule_files[%d]", i), "%q matches no file", pat)
		}
	}
	if am := c.Alertmanager; am.Embedded != "" && len(am.URLs) == 0 {
		if _, err := os.Stat(am.Embedded); err != nil {
			at("alertmanager.embedded", "cannot read %q: %v", am.Embedded, yamlfile.UnwrapPathErr(err))
		}
	}
	if g := c.Grafana; g != nil {
		v, field, err := c.readSecret(g.TokenFile, g.TokenEnv, "token_file", "token_env")
		if err != nil {
			at("grafana."+field, "%v", err)
		}
		g.Token = Secret(v)
	}
	c.readRemoteWrite(at)
	c.readHATLS(at)
}

// readSecret reads a secret from exactly one of a file (relative to the
// config's directory) or an environment variable. Surrounding whitespace
// (a trailing newline) is dropped.
func (c *Config) readSecret(file, env, fileField, envField string) (string, string, error) {
	switch {
	case file != "" && env != "":
		return "", fileField, fmt.Errorf("set only one of %s and %s", fileField, envField)
	case file != "":
		b, err := os.ReadFile(c.resolve(file))
		if err != nil {
			return "", fileField, fmt.Errorf("cannot read %q: %v", file, yamlfile.UnwrapPathErr(err))
		}
		return strings.TrimSpace(string(b)), fileField, nil
	case env != "":
		v, ok := os.LookupEnv(env)
		if !ok {
			return "", envField, fmt.Errorf("environment variable %q is not set", env)
		}
		return strings.TrimSpace(v), envField, nil
	}
	return "", fileField, fmt.Errorf("missing credentials: set %s or %s", fileField, envField)
}

// readCAFile reads a PEM CA file into a pool; problems are reported at
// field.
func readCAFile(path, field string, at func(path, format string, args ...any)) (*x509.CertPool, bool) {
	pem, err := os.ReadFile(path)
	if err != nil {
		at(field, "cannot read %q: %v", path, yamlfile.UnwrapPathErr(err))
		return nil, false
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		at(field, "%q holds no PEM certificate", path)
		return nil, false
	}
	return pool, true
}

// readAgentTLS builds the TLS settings of the appliance's agent client:
// TLS 1.2 at least, the private CA of agent_ca_file if set (else the
// system's roots), and the client certificate if set (both files or
// neither).
func readAgentTLS(cl *Cluster, p string, at func(path, format string, args ...any)) {
	conf := &tls.Config{MinVersion: tls.VersionTLS12}
	cl.AgentTLS = conf
	if cl.AgentCAFile != "" {
		if pool, ok := readCAFile(cl.AgentCAFile, p+".agent_ca_file", at); ok {
			conf.RootCAs = pool
		}
	}
	switch {
	case cl.AgentCertFile == "" && cl.AgentKeyFile == "":
	case cl.AgentCertFile == "":
		at(p+".agent_cert_file", "required with agent_key_file")
	case cl.AgentKeyFile == "":
		at(p+".agent_key_file", "required with agent_cert_file")
	default:
		cert, err := tls.LoadX509KeyPair(cl.AgentCertFile, cl.AgentKeyFile)
		if err != nil {
			at(p+".agent_cert_file", "load the client certificate %q with key %q: %v", cl.AgentCertFile, cl.AgentKeyFile, yamlfile.UnwrapPathErr(err))
			return
		}
		conf.Certificates = []tls.Certificate{cert}
	}
}
