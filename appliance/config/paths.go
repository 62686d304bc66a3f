package config

import "path/filepath"

// resolvePaths makes every path the appliance keeps (data_dir, tls,
// clusters' credentials.tls, rule_files, alertmanager.embedded) absolute against the config file's
// directory, so the appliance's working directory never matters. It
// touches no file. Secret files are not kept: readFiles resolves them as
// it reads them, and its errors quote them as written.
func (c *Config) resolvePaths() {
	c.DataDir = c.resolve(c.DataDir)
	if c.TLS != nil {
		c.TLS.CertFile, c.TLS.KeyFile = c.resolve(c.TLS.CertFile), c.resolve(c.TLS.KeyFile)
	}
	for i, p := range c.RuleFiles {
		c.RuleFiles[i] = c.resolve(p)
	}
	c.Alertmanager.Embedded = c.resolve(c.Alertmanager.Embedded)
	if st := c.Store; st != nil {
		st.CAFile = c.resolve(st.CAFile)
	}
	if cl := c.Alertmanager.Cluster; cl != nil && cl.TLS != nil {
		t := cl.TLS
		t.CertFile, t.KeyFile, t.CAFile = c.resolve(t.CertFile), c.resolve(t.KeyFile), c.resolve(t.CAFile)
	}
	for i := range c.Clusters {
		if t := c.Clusters[i].Credentials.TLS; t != nil {
			t.CAFile, t.CertFile, t.KeyFile = c.resolve(t.CAFile), c.resolve(t.CertFile), c.resolve(t.KeyFile)
		}
		cl := &c.Clusters[i]
		cl.AgentCAFile, cl.AgentCertFile, cl.AgentKeyFile = c.resolve(cl.AgentCAFile), c.resolve(cl.AgentCertFile), c.resolve(cl.AgentKeyFile)
	}
}

// resolve makes p absolute relative to the config file's directory.
func (c *Config) resolve(p string) string {
	if p == "" || filepath.IsAbs(p) {
		return p
	}
	return filepath.Join(filepath.Dir(c.File), p)
}
