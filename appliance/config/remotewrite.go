package config

import (
	"crypto/tls"
	"fmt"
	"net/url"

	"github.com/nines-project/nines/internal/secret"
	"github.com/nines-project/nines/internal/yamlfile"
)

// DefaultRemoteWriteQueueMaxBytes bounds a remote's disk queue when
// queue_max_bytes is left out: about 4 hours of a 3-node cluster's
// samples (see appliance/remotewrite).
const DefaultRemoteWriteQueueMaxBytes = 1 << 30

// minRemoteWriteQueueBytes is the smallest queue accepted. The queue's
// files pad to the next chunk when one fills, and the padding (up to 32
// MiB) counts as queued until the reader passes it: a smaller bound would
// report the queue full while it holds little.
const minRemoteWriteQueueBytes = 64 << 20

// RemoteWrite is one Prometheus remote-write receiver that gets every
// sample the appliance stores.
type RemoteWrite struct {
	// Name labels the remote's metrics (remote="...") and names its
	// queue; default the URL without credentials.
	Name string `yaml:"name"`
	// URL is the receiver's write endpoint, e.g.
	// http://vm:8428/api/v1/write or http://prom:9090/api/v1/write.
	URL string `yaml:"url"`
	// BearerTokenFile (or BearerTokenEnv) holds a token sent as
	// Authorization: Bearer.
	BearerTokenFile string `yaml:"bearer_token_file"`
	BearerTokenEnv  string `yaml:"bearer_token_env"`
	BearerToken     Secret `yaml:"-"`
	// TLS checks an https receiver against a private CA and presents a
	// client certificate if the receiver asks for one; without it the
	// system's roots are used.
	TLS       *secret.ClientTLS `yaml:"tls"`
	TLSConfig *tls.Config       `yaml:"-"`
	// QueueMaxBytes bounds the queue on disk; when full, new samples are
	// dropped, counted and alerted on. Default 1 GiB.
	QueueMaxBytes int64 `yaml:"queue_max_bytes"`
}

// Label is how the remote is named in metrics, logs and the API: its name,
// or its URL without user info or query.
func (r RemoteWrite) Label() string {
	if r.Name != "" {
		return r.Name
	}
	u, err := url.Parse(r.URL)
	if err != nil {
		return ""
	}
	u.User, u.RawQuery, u.Fragment = nil, "", ""
	return u.String()
}

func (c *Config) checkRemoteWrite(at func(path, format string, args ...any)) {
	labels := map[string]bool{}
	urls := map[string]bool{}
	for i := range c.RemoteWrite {
		r := &c.RemoteWrite[i]
		p := fmt.Sprintf("remote_write[%d]", i)
		if r.Name != "" && !validName(r.Name) {
			at(p+".name", "%q: use letters, digits, '-' and '_' only", r.Name)
		}
		u, err := url.Parse(r.URL)
		switch {
		case r.URL == "":
			at(p+".url", "required")
		case err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "":
			// The URL may carry credentials: do not quote it whole.
			at(p+".url", "bad URL: want http(s)://host:port/path")
		case urls[r.URL]:
			at(p+".url", "duplicate: another remote_write entry sends to the same URL")
		case labels[r.Label()]:
			at(p+".name", "duplicate remote %q", r.Label())
		}
		urls[r.URL], labels[r.Label()] = true, true
		if u != nil && u.Scheme == "http" && r.TLS != nil {
			at(p+".tls", "set for an http:// URL; use https://")
		}
		if r.QueueMaxBytes < minRemoteWriteQueueBytes {
			at(p+".queue_max_bytes", "%d is below the minimum of %d (64 MiB)", r.QueueMaxBytes, minRemoteWriteQueueBytes)
		}
	}
}

// readRemoteWrite reads each remote's bearer token and TLS files.
func (c *Config) readRemoteWrite(at func(path, format string, args ...any)) {
	for i := range c.RemoteWrite {
		r := &c.RemoteWrite[i]
		p := fmt.Sprintf("remote_write[%d]", i)
		if r.BearerTokenFile != "" || r.BearerTokenEnv != "" {
			v, field, err := c.readSecret(r.BearerTokenFile, r.BearerTokenEnv, "bearer_token_file", "bearer_token_env")
			switch {
			case err != nil:
				at(p+"."+field, "%v", err)
			case v == "":
				at(p+"."+field, "the token is empty")
			default:
				r.BearerToken = Secret(v)
			}
		}
		if r.TLS == nil {
			continue
		}
		r.TLSConfig = c.readClientTLS(r.TLS, p+".tls", at)
	}
}

// readClientTLS reads the files of t (the tls: block at path p) into a
// client tls.Config: the CA that checks the server, and a client
// certificate when both cert_file and key_file are given. Problems are
// reported at p; the config returned is then incomplete and never used,
// since the whole config fails.
func (c *Config) readClientTLS(t *secret.ClientTLS, p string, at func(path, format string, args ...any)) *tls.Config {
	conf := &tls.Config{MinVersion: tls.VersionTLS12, ServerName: t.ServerName}
	if t.CAFile != "" {
		if pool, ok := readCAFile(c.resolve(t.CAFile), p+".ca_file", at); ok {
			conf.RootCAs = pool
		}
	}
	switch cert, key := t.CertFile, t.KeyFile; {
	case cert == "" && key == "":
	case cert == "":
		at(p+".cert_file", "required with key_file")
	case key == "":
		at(p+".key_file", "required with cert_file")
	default:
		pair, err := tls.LoadX509KeyPair(c.resolve(cert), c.resolve(key))
		if err != nil {
			at(p+".cert_file", "load the client certificate %q with key %q: %v", cert, key, yamlfile.UnwrapPathErr(err))
			break
		}
		conf.Certificates = []tls.Certificate{pair}
	}
	return conf
}
